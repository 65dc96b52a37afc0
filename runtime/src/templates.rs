//! The prebuilt template objects, embedded in the binary.
//!
//! They are built from `probe-templates/ebpf` by `probe-templates/build.sh`
//! with a pinned nightly and committed with checksums, so a stable
//! `cargo build` needs no eBPF toolchain. `include_bytes_aligned!` (not
//! `include_bytes!`) because the ELF parser needs aligned data.
use aya::include_bytes_aligned;

/// Embed `probe-templates/prebuilt/<name>.bpfel.o`.
macro_rules! template {
    ($name:literal) => {
        (
            $name,
            include_bytes_aligned!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../probe-templates/prebuilt/",
                $name,
                ".bpfel.o"
            )) as &[u8],
        )
    };
}

/// Every embedded template, by name (`ClausePlan::template`).
static TEMPLATES: &[(&str, &[u8])] = &[
    template!("tcp_select_window"),
    template!("tcp_probe"),
    template!("tcp_retransmit"),
    template!("tcp_state"),
    template!("tcp_reset"),
    template!("tcp_drop"),
    template!("tcp_sock_event"),
    template!("tcp_io"),
];

/// Names of the embedded templates.
pub fn names() -> impl Iterator<Item = &'static str> {
    TEMPLATES.iter().map(|(n, _)| *n)
}

/// The object bytes of a template.
pub fn get(name: &str) -> Option<&'static [u8]> {
    TEMPLATES.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}
