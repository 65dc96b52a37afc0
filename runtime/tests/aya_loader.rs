//! tcpq builds against the vendored aya 0.14 (`vendor/README.md`), whose
//! `EbpfLoader::new()` does not parse the kernel's BTF. Without the patch
//! (say, `[patch.crates-io]` dropped by mistake) start-up grows by ~20 ms
//! and peak RSS by ~15 MiB, and nothing else would fail.

/// Bytes this thread has read so far (`rchar` of `/proc/thread-self/io`:
/// per thread, so other tests reading BTF meanwhile do not count).
fn bytes_read() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/io")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("rchar:"))?
        .trim()
        .parse()
        .ok()
}

#[test]
fn the_loader_does_not_read_the_kernel_btf() {
    let btf = std::path::Path::new("/sys/kernel/btf/vmlinux");
    let (Some(before), Ok(meta)) = (bytes_read(), btf.metadata()) else {
        eprintln!("no /proc/thread-self/io or no kernel BTF; skipping");
        return;
    };
    let mut loader = aya::EbpfLoader::new();
    loader.btf(None);
    let read = bytes_read().unwrap() - before;
    assert!(
        read < meta.len() / 2,
        "EbpfLoader::new() read {read} bytes: is aya the patched copy in vendor/aya?"
    );
}

/// The second tcpq patch: `EbpfLoader::reuse_map` makes every later object
/// use an earlier object's map instead of creating its own, which is how
/// the clauses of a session share one set of owner maps and programs.
#[test]
fn a_reused_map_is_the_same_kernel_map() {
    use std::os::fd::AsFd;
    if !nix_is_root() {
        eprintln!("needs root (or CAP_BPF) to create maps; skipping");
        return;
    }
    let bytes = tcpq_runtime::templates::get("tcp_retransmit").expect("embedded template");
    let name = tcpq_abi::maps::OWNERS;
    let id = |e: &aya::Ebpf| match e.map(name).expect("owner map") {
        aya::maps::Map::LruHashMap(m) => m.info().expect("map info").id(),
        other => panic!("{name} is {other:?}"),
    };
    let mut loader = aya::EbpfLoader::new();
    loader.btf(None);
    let first = loader.load(bytes).expect("load");
    let fd = match first.map(name).unwrap() {
        aya::maps::Map::LruHashMap(m) => m.fd().as_fd().try_clone_to_owned().unwrap(),
        _ => unreachable!(),
    };
    loader.reuse_map(name, fd);
    let second = loader.load(bytes).expect("load with a reused map");
    let mut fresh = aya::EbpfLoader::new();
    fresh.btf(None);
    let third = fresh.load(bytes).expect("load");
    assert_eq!(
        id(&first),
        id(&second),
        "the second object made its own map"
    );
    assert_ne!(id(&first), id(&third));
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
