//! The one gate of the kernel tests: what they all need, checked once
//! before any runs. Each check asks the kernel itself (a program load, a
//! map creation, a mount), never a version number.
//!
//! When everything is there, the gate also prepares the machine once for
//! the whole binary: it mounts tracefs if absent (it is not at boot on our
//! VMs) and removes namespaces and tracefs instances left by crashed
//! earlier runs (those of live processes are left alone).
use crate::common;
use std::path::Path;
use std::process::{Command, Stdio};

/// The tools the tests run, with the package that has each (Debian).
const TOOLS: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("ss", "iproute2"),
    ("nstat", "iproute2"),
    ("nft", "nftables"),
    ("tcpdump", "tcpdump"),
    ("bpftool", "bpftool"),
    ("sysctl", "procps"),
    ("setpriv", "util-linux"),
    // `tcpq serve`'s proof (serve.rs): a real Prometheus, and promtool.
    ("prometheus", "prometheus"),
    ("promtool", "prometheus"),
];

/// Ok when every kernel test can run; otherwise what is missing, each
/// with why the tests need it.
pub fn open() -> Result<(), Vec<String>> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        // Nothing else can be checked (or prepared) without root.
        return Err(vec![format!(
            "not root (euid {euid}): the tests create network namespaces, nft \
             tables and tracefs instances, and load eBPF programs"
        )]);
    }
    let mut missing = Vec::new();
    if let Err(e) = bpf_loads() {
        missing.push(format!("eBPF: {e}"));
    }
    if let Err(e) = tracefs() {
        missing.push(format!("tracefs: {e}"));
    }
    for (tool, package) in TOOLS {
        if !on_path(tool) {
            missing.push(format!("`{tool}` is not installed (package {package})"));
        }
    }
    if !missing.is_empty() {
        return Err(missing);
    }
    common::sweep_stale();
    Ok(())
}

/// tracefs at /sys/kernel/tracing, mounted here if it is not, with the
/// `tcp` tracepoints the templates' format files come from.
fn tracefs() -> Result<(), String> {
    let events = Path::new("/sys/kernel/tracing/events");
    if !events.is_dir() {
        let out = Command::new("mount")
            .args(["-t", "tracefs", "tracefs", "/sys/kernel/tracing"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !events.is_dir() {
            return Err(format!(
                "not mounted, and `mount -t tracefs tracefs /sys/kernel/tracing` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    if !events.join("tcp").is_dir() {
        return Err(
            "no events/tcp in /sys/kernel/tracing (a kernel without TCP tracepoints)".into(),
        );
    }
    Ok(())
}

/// `bpf(2)` attributes of BPF_PROG_LOAD, as far as this check needs them.
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

/// `bpf(2)` attributes of BPF_MAP_CREATE, likewise.
#[repr(C)]
#[derive(Default)]
struct MapCreate {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
}

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TYPE_RAW_TRACEPOINT: u32 = 17;
const BPF_MAP_TYPE_RINGBUF: u32 = 27;

fn bpf<T>(cmd: libc::c_long, attr: &T) -> Result<(), std::io::Error> {
    // SAFETY: bpf(2) reads `size_of::<T>()` bytes of a live, initialised
    // #[repr(C)] attribute struct; the fd it returns is closed at once.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *const T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the fd was just returned to us and nothing else owns it.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
}

/// A raw tracepoint program (`r0 = 0; exit`) loads, and a ring buffer map
/// can be created: what every template needs from the kernel.
fn bpf_loads() -> Result<(), String> {
    let insns: [u64; 2] = [0xb7, 0x95]; // mov64 r0, 0; exit
    let license = c"GPL";
    let prog = ProgLoad {
        prog_type: BPF_PROG_TYPE_RAW_TRACEPOINT,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..ProgLoad::default()
    };
    bpf(BPF_PROG_LOAD, &prog)
        .map_err(|e| format!("loading a two-instruction raw tracepoint program failed: {e}"))?;
    let map = MapCreate {
        map_type: BPF_MAP_TYPE_RINGBUF,
        max_entries: 4096,
        ..MapCreate::default()
    };
    bpf(BPF_MAP_CREATE, &map).map_err(|e| format!("creating a ring buffer map failed: {e}"))
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            use std::os::unix::fs::PermissionsExt;
            d.join(tool)
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}
