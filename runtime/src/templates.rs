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
///
/// Debug builds (the ones `cargo test` runs) also honour
/// `TCPQ_TEST_TEMPLATE=NAME=PATH`: the object at PATH stands for template
/// NAME, so that a test can hand tcpq a template the verifier rejects and
/// check what the user sees. Release builds ignore the variable.
pub fn get(name: &str) -> Option<&'static [u8]> {
    #[cfg(debug_assertions)]
    if let Some(bytes) = test_override(name) {
        return Some(bytes);
    }
    TEMPLATES.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// `TCPQ_TEST_TEMPLATE`'s object for `name`, read into 8-byte aligned
/// memory (the ELF parser needs it) that lives as long as the process.
#[cfg(debug_assertions)]
fn test_override(name: &str) -> Option<&'static [u8]> {
    let var = std::env::var("TCPQ_TEST_TEMPLATE").ok()?;
    let (template, path) = var.split_once('=')?;
    if template != name {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    let words: &'static mut [u64] =
        Box::leak(vec![0u64; bytes.len().div_ceil(8)].into_boxed_slice());
    // SAFETY: `words` spans at least `bytes.len()` bytes, and u8 has no
    // alignment or validity requirements.
    let out =
        unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), bytes.len()) };
    out.copy_from_slice(&bytes);
    Some(out)
}
