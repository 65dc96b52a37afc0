//! The prebuilt template objects, embedded in the binary.
//!
//! They are built from `probe-templates/ebpf` by `probe-templates/build.sh`
//! with a pinned nightly and committed with checksums, so a stable
//! `cargo build` needs no eBPF toolchain. `include_bytes_aligned!` (not
//! `include_bytes!`) because the ELF parser needs aligned data.
use aya::include_bytes_aligned;

static TCP_SELECT_WINDOW: &[u8] = include_bytes_aligned!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../probe-templates/prebuilt/tcp_select_window.bpfel.o"
));
static TCP_PROBE: &[u8] = include_bytes_aligned!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../probe-templates/prebuilt/tcp_probe.bpfel.o"
));
static TCP_RETRANSMIT: &[u8] = include_bytes_aligned!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../probe-templates/prebuilt/tcp_retransmit.bpfel.o"
));

/// Names of the embedded templates (`ClausePlan::template`).
pub const NAMES: [&str; 3] = ["tcp_select_window", "tcp_probe", "tcp_retransmit"];

/// The object bytes of a template.
pub fn get(name: &str) -> Option<&'static [u8]> {
    match name {
        "tcp_select_window" => Some(TCP_SELECT_WINDOW),
        "tcp_probe" => Some(TCP_PROBE),
        "tcp_retransmit" => Some(TCP_RETRANSMIT),
        _ => None,
    }
}
