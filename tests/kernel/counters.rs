//! `tcpq counters` against the kernel's own `nstat`.
//!
//! Ground truth: `nstat -asz` (absolute values, no history file) inside each
//! test namespace, read right after tcpq's first reading and again once the
//! traffic is over and the namespaces are quiet; the difference is nstat's
//! delta over exactly tcpq's interval. tcpq must report the same names and
//! the same delta for every Tcp*/TcpExt* counter.
//!
//! Scenario: the seed story's slow reader (`tcpgen::slow_reader_exchange`):
//! window scaling off in the server namespace, a reader that waits 1 s and
//! then reads slowly, a writer of 1 MiB; plus 5% wire loss on the writer's
//! data (nft in the server's prerouting hook) with GSO limited to 4 MSS, so
//! the writer (client namespace) retransmits and the reader (server
//! namespace) advertises zero windows. Both namespaces are read by one tcpq.

use crate::common;
use tcpq_kernel_test::kernel_test;

use common::tcpgen::slow_reader_exchange;
use common::tcpq::json_lines;
use common::{nstat, sysctl, NetnsPair, Tcpq, TempDir};
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

/// nstat's TCP counters (`Tcp*`, which includes `TcpExt*`).
fn tcp_counters(ns: &str) -> BTreeMap<String, u64> {
    nstat(ns, &[])
        .into_iter()
        .filter(|(k, _)| k.starts_with("Tcp"))
        .collect()
}

/// Wait until `ns` holds no TCP socket that still has work to do (only
/// TIME-WAIT or none) and its TCP counters stay put for two readings in a
/// row, 200 ms apart; then return them. Delayed ACKs, FIN retransmissions
/// and the like are over by then.
fn quiet_counters(ns: &str) -> BTreeMap<String, u64> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = tcp_counters(ns);
    let mut stable = 0;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let ss = common::exec_ok(ns, &["ss", "-tanH"]);
        let busy = ss
            .lines()
            .any(|l| !l.trim().is_empty() && !l.starts_with("TIME-WAIT"));
        let now = tcp_counters(ns);
        stable = if !busy && now == last { stable + 1 } else { 0 };
        last = now;
        if stable >= 2 {
            return last;
        }
        assert!(
            Instant::now() < deadline,
            "{ns} did not become quiet in 20 s; ss:\n{ss}"
        );
    }
}

fn wait_stderr(tcpq: &mut Tcpq, needle: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !tcpq.stderr_so_far().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "tcpq never said `{needle}`; stderr:\n{}",
            tcpq.stderr_so_far()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn inode(ns: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/run/netns/{ns}")).unwrap().ino()
}

#[kernel_test]
fn counter_deltas_equal_nstats_under_loss_and_a_zero_window() {
    let pair = NetnsPair::new();
    sysctl(&pair.srv, "net.ipv4.tcp_window_scaling", "0");
    pair.set_gso_max_segs(&pair.cli, 4);
    let loss = pair.add_loss(&pair.cli, 5);
    let dir = TempDir::new("kcnt");
    let port = pair.port();

    let mut tcpq = Tcpq::spawn(&[
        "counters",
        "--netns",
        &pair.cli,
        "--netns",
        &pair.srv,
        "--duration",
        "120s",
        "--format",
        "json",
        "-z",
    ]);
    wait_stderr(&mut tcpq, "first reading taken", Duration::from_secs(10));
    // Nothing runs in the namespaces yet: these equal tcpq's first reading.
    let before = [tcp_counters(&pair.cli), tcp_counters(&pair.srv)];

    let (wlog, rlog) = slow_reader_exchange(&pair, port, "1.0", dir.path());
    let dropped = loss.dropped();
    // Let the last FINs through without loss, then wait for silence.
    drop(loss);
    let after = [quiet_counters(&pair.cli), quiet_counters(&pair.srv)];
    let (status, stdout, stderr) = tcpq.stop(Duration::from_secs(5));

    assert_eq!(wlog.bytes(), 1 << 20, "writer {wlog:?}");
    assert_eq!(rlog.bytes(), 1 << 20, "reader {rlog:?}");
    assert_ne!(status.signal(), Some(libc::SIGKILL), "{stderr}");
    assert!(status.success(), "tcpq {status}: {stderr}");
    assert!(dropped > 0, "the loss rule dropped nothing");

    let objects = json_lines(&stdout);
    assert_eq!(objects.len(), 2, "one object per namespace:\n{stdout}");
    for (i, ns) in [&pair.cli, &pair.srv].into_iter().enumerate() {
        let o = &objects[i];
        assert_eq!(o["netns_label"], ns.as_str(), "{o}");
        assert_eq!(o["netns"], inode(ns), "{o}");
        assert_eq!(o["interval"], 1, "{o}");
        let tcpq: BTreeMap<String, u64> = o["counters"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
            .collect();
        let nstat: BTreeMap<String, u64> = after[i]
            .iter()
            .map(|(k, v)| (k.clone(), v - before[i][k]))
            .collect();
        let names = |m: &BTreeMap<String, u64>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            names(&tcpq),
            names(&nstat),
            "{ns}: tcpq names the TCP counters as nstat does"
        );
        let differ: Vec<_> = nstat
            .iter()
            .filter(|(k, v)| tcpq[*k] != **v)
            .map(|(k, v)| format!("{k}: nstat {v}, tcpq {}", tcpq[k]))
            .collect();
        assert!(
            differ.is_empty(),
            "{ns}: deltas differ from nstat's:\n{}\ntcpq: {o}",
            differ.join("\n")
        );
        let moved: Vec<_> = nstat.iter().filter(|(_, v)| **v > 0).collect();
        eprintln!("{ns}: {} TCP counters moved: {moved:?}", moved.len());
    }
    let cli = objects[0]["counters"].clone();
    let srv = objects[1]["counters"].clone();
    let get = |o: &Value, k: &str| o[k].as_u64().unwrap();
    assert!(
        get(&cli, "TcpRetransSegs") > 0,
        "the writer retransmitted nothing ({dropped} packets dropped): {cli}"
    );
    assert!(
        get(&srv, "TcpExtTCPToZeroWindowAdv") > 0,
        "the reader never advertised a zero window: {srv}"
    );
    assert!(get(&cli, "TcpActiveOpens") >= 1 && get(&srv, "TcpPassiveOpens") >= 1);
}

/// `--every` prints one block per interval, stamped `@ TIME interval N`,
/// each with its header and one row per counter asked for (with -z, even
/// when nothing moved), plus the last, shorter interval at --duration.
#[kernel_test]
fn every_prints_stamped_intervals_in_text() {
    let pair = NetnsPair::new();
    let out = std::process::Command::new(Tcpq::bin())
        .args([
            "counters",
            "--netns",
            &pair.srv,
            "--every",
            "300ms",
            "--duration",
            "1s",
            "-z",
            "TCPToZeroWindowAdv",
            "retranssegs",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("first reading taken"), "{stderr}");
    let banners: Vec<&str> = stdout.lines().filter(|l| l.starts_with("@ ")).collect();
    assert_eq!(
        banners.len(),
        4,
        "300, 600, 900 ms and the last 100 ms:\n{stdout}"
    );
    for (i, b) in banners.iter().enumerate() {
        assert!(b.ends_with(&format!(" interval {}", i + 1)), "{b}");
        assert!(b.contains('T') && b.contains('Z'), "RFC 3339: {b}");
    }
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with(pair.srv.as_str()))
        .collect();
    assert_eq!(rows.len(), 8, "{stdout}");
    for pair_of_rows in rows.chunks(2) {
        assert!(pair_of_rows[0].contains("TcpRetransSegs"), "{stdout}");
        assert!(
            pair_of_rows[1].contains("TcpExtTCPToZeroWindowAdv"),
            "{stdout}"
        );
        assert!(
            pair_of_rows[1].contains("zero-window episodes started"),
            "the meaning is beside it: {stdout}"
        );
    }
}
