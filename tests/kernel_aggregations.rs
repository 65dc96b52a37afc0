//! tcpq's in-kernel aggregations against the kernel's own view.
//!
//! - `hist win`, `lhist win`, `stats win` and `count` of the windows a slow
//!   reader advertises (`tcp_select_window`, window scaling off so `win` is
//!   bytes) against the windows in a packet capture of the same segments,
//!   bucketed by the test itself. The reader's side sends only ACKs (no
//!   TSO), so one segment is one event.
//! - `limit 3` of the same probe: tcpq stops by itself after three events.
//! - `stats mss` and `stats srtt` of the writer's socket on the segments it
//!   sends (`tcp_select_window`) against `ss -ti` of the live connection
//!   once every byte is acknowledged: the MSS is constant, so min and max
//!   equal ss's `mss`; the FIN sent when the writer closes carries the
//!   srtt ss saw (no RTT sample arrives in between), so ss's value lies
//!   between tcpq's least and greatest. (`tcp_probe` would not do: its
//!   tracepoint fires before the ACK it reports updates srtt.)
//!
//! (Retransmission sums are in `kernel_retransmit.rs`.) Needs root; skipped
//! otherwise, and failing instead when `CI` is set.

mod common;

use common::tcpq::{field_u64, json_lines};
use common::{ss_ti, sysctl, Capture, Client, NetnsPair, Server, Tcpq, TempDir};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Buckets of a JSON histogram row: (min, max) → count, empty ones left out.
fn buckets(row: &Value) -> BTreeMap<(Option<u64>, Option<u64>), u64> {
    row["buckets"]
        .as_array()
        .unwrap_or_else(|| panic!("no buckets in {row}"))
        .iter()
        .map(|b| {
            (
                (b["min"].as_u64(), b["max"].as_u64()),
                b["count"].as_u64().unwrap(),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[test]
fn window_histograms_match_the_capture() {
    if !common::require_root() {
        return;
    }
    let t0 = Instant::now();
    let pair = NetnsPair::new();
    sysctl(&pair.srv, "net.ipv4.tcp_window_scaling", "0");
    let port = pair.port();
    let dir = TempDir::new("kagg");
    let pcap = dir.join("srv.pcap");

    let on = format!("on tcp_select_window where sport == {port}");
    let programs = [
        format!("{on} hist win"),
        format!("{on} lhist win, 0, 65536, 8192"),
        format!("{on} stats win"),
        format!("{on} count by dport"),
    ];
    let mut runs: Vec<Tcpq> = programs
        .iter()
        .map(|p| Tcpq::spawn(&["-e", p, "--format", "json"]))
        .collect();
    let limit_program = format!("{on} print win limit 3");
    let mut limited = Tcpq::spawn(&["-e", &limit_program, "--format", "json"]);
    for t in runs.iter_mut().chain(std::iter::once(&mut limited)) {
        t.wait_attached(Duration::from_secs(10));
    }

    let mut cap = Capture::start(&pair.srv, pair.srv_if(), &format!("tcp port {port}"), &pcap);
    let mut server = Server::start(
        &pair.srv,
        IpAddr::V4(pair.srv_v4()),
        port,
        &[
            "--idle-before-read",
            "0.5",
            "--read-size",
            "16384",
            "--read-delay-ms",
            "2",
            "--max-seconds",
            "8",
        ],
        dir.path(),
    );
    let mut client = Client::start(
        &pair.cli,
        IpAddr::V4(pair.srv_v4()),
        port,
        1 << 20,
        &["--max-seconds", "8"],
        dir.path(),
    );
    let wlog = client.wait(Duration::from_secs(10));
    let rlog = server.wait(Duration::from_secs(10));
    let stats = cap.stop();
    std::thread::sleep(Duration::from_millis(200));
    let outs: Vec<(String, String)> = runs
        .iter_mut()
        .map(|t| {
            let (status, out, err) = t.stop(Duration::from_secs(5));
            assert!(status.success(), "{:?}: {status}\n{err}", t.args);
            (out, err)
        })
        .collect();
    // `limit 3` ended on its own long before.
    let (lstatus, lout, lerr) = limited.wait(Duration::from_secs(1));

    assert_eq!(rlog.bytes(), 1 << 20, "reader {rlog:?}");
    assert_eq!(wlog.bytes(), 1 << 20, "writer {wlog:?}");
    assert_eq!(
        stats.dropped_by_kernel, 0,
        "tcpdump dropped: {}",
        stats.stderr
    );

    let wire: Vec<u64> = common::packets(&pcap)
        .into_iter()
        .filter(|p| p.sport == port && !p.syn())
        .map(|p| u64::from(p.win))
        .collect();
    assert!(
        wire.len() > 10,
        "too few segments on the wire: {}",
        wire.len()
    );
    let ctx = |i: usize| {
        format!(
            "\nwire: {} segments from the reader\ntcpq {:?} stdout:\n{}\nstderr:\n{}",
            wire.len(),
            programs[i],
            outs[i].0,
            outs[i].1
        )
    };

    // hist win: power-of-two buckets, computed here from the capture.
    let mut want: BTreeMap<(Option<u64>, Option<u64>), u64> = BTreeMap::new();
    for &w in &wire {
        let (lo, hi) = match w {
            0 => (0, 0),
            w => {
                let b = 63 - w.leading_zeros();
                (1 << b, (2 << b) - 1)
            }
        };
        *want.entry((Some(lo), Some(hi))).or_default() += 1;
    }
    let rows = json_lines(&outs[0].0);
    assert_eq!(rows.len(), 1, "{}", ctx(0));
    assert_eq!(buckets(&rows[0]), want, "hist win != capture{}", ctx(0));

    // lhist win, 0, 65536, 8192: eight buckets of 8 KiB and one for 64 KiB
    // and above (none: the window field is 16 bits, at most 65535).
    let mut want: BTreeMap<(Option<u64>, Option<u64>), u64> = BTreeMap::new();
    for &w in &wire {
        let lo = w / 8192 * 8192;
        *want.entry((Some(lo), Some(lo + 8191))).or_default() += 1;
    }
    let rows = json_lines(&outs[1].0);
    assert_eq!(rows.len(), 1, "{}", ctx(1));
    assert_eq!(buckets(&rows[0]), want, "lhist win != capture{}", ctx(1));

    // stats win.
    let rows = json_lines(&outs[2].0);
    assert_eq!(rows.len(), 1, "{}", ctx(2));
    let n = wire.len() as u64;
    let sum: u64 = wire.iter().sum();
    assert_eq!(field_u64(&rows[0], "count"), n, "{}", ctx(2));
    assert_eq!(field_u64(&rows[0], "avg"), sum / n, "{}", ctx(2));
    assert_eq!(
        field_u64(&rows[0], "min"),
        *wire.iter().min().unwrap(),
        "{}",
        ctx(2)
    );
    assert_eq!(
        field_u64(&rows[0], "max"),
        *wire.iter().max().unwrap(),
        "{}",
        ctx(2)
    );

    // count by dport: one key, the writer's port.
    let rows = json_lines(&outs[3].0);
    assert_eq!(rows.len(), 1, "{}", ctx(3));
    assert_eq!(
        field_u64(&rows[0], "dport"),
        u64::from(wlog.lport()),
        "{}",
        ctx(3)
    );
    assert_eq!(field_u64(&rows[0], "count"), n, "{}", ctx(3));

    // limit 3.
    assert!(lstatus.success(), "limit: {lstatus}\n{lerr}");
    let rows = json_lines(&lout);
    assert_eq!(
        rows.len(),
        3,
        "limit 3 printed {}:\n{lout}\n{lerr}",
        rows.len()
    );
    for (row, w) in rows.iter().zip(&wire) {
        assert_eq!(field_u64(row, "win"), *w, "limit: first windows differ");
    }
    eprintln!(
        "aggregations: {} segments, hist/lhist/stats/count agree with the capture, limit 3 \
         stopped by itself, {:?}",
        wire.len(),
        t0.elapsed()
    );
}

/// `rto:204` (ms) from an `ss -ti` line for `port`.
fn ss_rto(ss: &str, port: u16) -> Option<f64> {
    let needle = format!(":{port} ");
    let mut lines = ss.lines();
    while let Some(l) = lines.next() {
        if l.starts_with("ESTAB") && l.contains(&needle) {
            return lines
                .next()?
                .split_whitespace()
                .find_map(|w| w.strip_prefix("rto:"))?
                .parse()
                .ok();
        }
    }
    None
}

/// `mss:1448` and `rtt:0.123/0.05` from an `ss -ti` line for `port`.
fn ss_mss_rtt(ss: &str, port: u16) -> Option<(u64, f64)> {
    let needle = format!(":{port} ");
    let mut lines = ss.lines();
    while let Some(l) = lines.next() {
        if !(l.starts_with("ESTAB") && l.contains(&needle)) {
            continue;
        }
        let info = lines.next()?;
        let mss = info
            .split_whitespace()
            .find_map(|w| w.strip_prefix("mss:"))?
            .parse()
            .ok()?;
        let rtt = info
            .split_whitespace()
            .find_map(|w| w.strip_prefix("rtt:"))?
            .split('/')
            .next()?
            .parse()
            .ok()?;
        return Some((mss, rtt));
    }
    None
}

#[test]
fn socket_stats_match_ss() {
    if !common::require_root() {
        return;
    }
    let pair = NetnsPair::new();
    let port = pair.port();
    let dir = TempDir::new("kss");
    let program = format!(
        "on tcp_select_window where dport == {port} stats mss\n\
         on tcp_select_window where dport == {port} stats srtt\n\
         on tcp_select_window where dport == {port} stats rto"
    );
    let mut tcpq = Tcpq::spawn(&["-e", &program, "--format", "json"]);
    tcpq.wait_attached(Duration::from_secs(10));
    let mut server = Server::start(
        &pair.srv,
        IpAddr::V4(pair.srv_v4()),
        port,
        &["--max-seconds", "10"],
        dir.path(),
    );
    let mut client = Client::start(
        &pair.cli,
        IpAddr::V4(pair.srv_v4()),
        port,
        4 << 20,
        &[
            "--max-seconds",
            "8",
            "--hold-seconds",
            "3",
            "--hold-after-ack",
            "2",
        ],
        dir.path(),
    );
    // Every byte acknowledged, the socket still open: ss sees the final
    // state that the last tcp_probe event saw.
    client.wait_event("done", Duration::from_secs(10));
    let ss = ss_ti(&pair.cli);
    client.wait(Duration::from_secs(10));
    server.wait(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(200));
    let (status, out, err) = tcpq.stop(Duration::from_secs(5));
    assert!(status.success(), "{status}\n{err}");
    let (mss, rtt_ms) =
        ss_mss_rtt(&ss, port).unwrap_or_else(|| panic!("no connection to :{port} in\n{ss}"));
    let rows = json_lines(&out);
    let ctx = format!("\nss:\n{ss}\ntcpq:\n{out}\n{err}");
    assert_eq!(rows.len(), 3, "{ctx}");
    let (m, s, r) = (&rows[0], &rows[1], &rows[2]);
    assert!(field_u64(m, "count") > 10, "{ctx}");
    assert_eq!(field_u64(m, "min"), mss, "mss min != ss mss{ctx}");
    assert_eq!(field_u64(m, "max"), mss, "mss max != ss mss{ctx}");
    assert_eq!(field_u64(s, "count"), field_u64(m, "count"), "{ctx}");
    // ss prints srtt in ms with three decimals, i.e. whole microseconds
    // like tcpq; allow one for rounding.
    let rtt_us = rtt_ms * 1000.0;
    let (lo, hi) = (field_u64(s, "min") as f64, field_u64(s, "max") as f64);
    assert!(
        lo - 1.0 <= rtt_us && rtt_us <= hi + 1.0,
        "ss rtt {rtt_us}us outside tcpq's srtt range [{lo}, {hi}]{ctx}"
    );
    // rto: the kernel keeps jiffies, ss prints jiffies_to_usecs / 1000 and
    // tcpq converts with the HZ it found; on a sub-millisecond path it sits
    // at the 200 ms floor plus a few jiffies, the same before and after the
    // last send.
    let rto_ms = ss_rto(&ss, port).unwrap_or_else(|| panic!("no rto for :{port} in\n{ss}"));
    let rto_us = rto_ms * 1000.0;
    let (rlo, rhi) = (field_u64(r, "min") as f64, field_u64(r, "max") as f64);
    assert!(
        rlo <= rto_us && rto_us <= rhi,
        "ss rto {rto_us}us outside tcpq's rto range [{rlo}, {rhi}]{ctx}"
    );
    assert!(rlo >= 200_000.0, "rto below the kernel's 200 ms floor{ctx}");
    eprintln!(
        "socket stats: mss {mss} == ss, ss rtt {rtt_us}us in [{lo}, {hi}]us, \
         ss rto {rto_us}us in [{rlo}, {rhi}]us"
    );
}
