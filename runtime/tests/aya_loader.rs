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
