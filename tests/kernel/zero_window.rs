//! tcpq against the kernel: zero-window advertisements (the seed outage).
//!
//! Ground truth: the packets on the wire. tcpdump on the server's veth
//! records every segment the server sends; the zero-window ones are those
//! from the server port with window field 0 that are neither SYN nor RST.
//! Each is one transmission through `__tcp_transmit_skb` and thus one
//! `tcp_select_window` returning 0, so tcpq must report exactly that many
//! events, with the same absolute (seq, ack) pairs. Pure ACKs are never GSO,
//! so the capture's count is exact. The owning process comes from the
//! reader's own log (its pid; comm `tcpq-reader` set via prctl).
//! `nstat`'s TcpExtTCPToZeroWindowAdv is printed for context only: it counts
//! transitions to zero, not zero-window segments (a repeated zero-window ACK,
//! e.g. the answer to a window probe, is not counted again).
//!
//! Scenario: window scaling off in the server namespace, a reader that
//! accepts and then does not read for 1 s (the receive queue fills, the
//! window closes while the socket is accepted but unread: attribution must
//! already hold then), then reads slowly; a fast writer of 1 MiB.

use crate::common;
use tcpq_kernel_test::kernel_test;

use common::tcpgen::slow_reader_exchange;
use common::tcpq::{field_bool, field_str, field_u64, json_lines};
use common::{nstat, ss_ti, sysctl, Capture, NetnsPair, Tcpq, TempDir};
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

const FIELDS: &str = "pid, comm, task_pid, task_comm, saddr, sport, daddr, dport, \
                      win, win_bytes, rcv_wnd, wscale_ok, rcv_wscale, seq, ack_seq";

#[kernel_test]
fn zero_window_events_match_the_wire_and_name_the_reader() {
    let t0 = Instant::now();
    let pair = NetnsPair::new();
    sysctl(&pair.srv, "net.ipv4.tcp_window_scaling", "0");
    let port = pair.port();
    let dir = TempDir::new("kzw");
    let pcap = dir.join("srv.pcap");

    let program = format!("on tcp_select_window where win == 0 and sport == {port} print {FIELDS}");
    let mut tcpq = Tcpq::spawn(&["-e", &program, "--format", "json"]);
    // The seed's own one-liner, filtering on `win` alone: the template runs
    // that filter before it reads the socket (filter_early). It sees every
    // namespace, so its events are narrowed to this test's port below.
    let seed = format!("on tcp_select_window where win == 0 print {FIELDS}");
    let mut early = Tcpq::spawn(&["-e", &seed, "--format", "json"]);
    tcpq.wait_attached(Duration::from_secs(10));
    early.wait_attached(Duration::from_secs(10));

    let before = nstat(&pair.srv, &["TcpExtTCPToZeroWindowAdv"]);
    let mut cap = Capture::start(&pair.srv, pair.srv_if(), &format!("tcp port {port}"), &pcap);
    let (wlog, rlog) = slow_reader_exchange(&pair, port, "1.0", dir.path());
    let stats = cap.stop();
    let after = nstat(&pair.srv, &["TcpExtTCPToZeroWindowAdv"]);
    // Let tcpq drain its ring buffer before it is told to stop.
    std::thread::sleep(Duration::from_millis(200));
    let (status, stdout, stderr) = tcpq.stop(Duration::from_secs(5));
    let (_, early_stdout, early_stderr) = early.stop(Duration::from_secs(5));

    assert_eq!(rlog.bytes(), 1 << 20, "reader {rlog:?}");
    assert_eq!(wlog.bytes(), 1 << 20, "writer {wlog:?}");
    assert_ne!(
        status.signal(),
        Some(libc::SIGKILL),
        "tcpq ignored SIGINT; stderr:\n{stderr}"
    );
    assert_eq!(
        stats.dropped_by_kernel, 0,
        "tcpdump dropped packets: {}",
        stats.stderr
    );

    let reader_pid = rlog.pid() as u64;
    let writer_port = wlog.lport() as u64;
    let first_read = rlog.get("first_read").expect("reader never read")["wall"]
        .as_f64()
        .unwrap();

    // The wire.
    let wire: Vec<_> = common::packets(&pcap)
        .into_iter()
        .filter(|p| p.sport == port && p.win == 0 && !p.syn() && !p.rst())
        .collect();
    let idle_phase = wire
        .iter()
        .filter(|p| p.ts.parse::<f64>().unwrap() < first_read)
        .count();
    assert!(
        !wire.is_empty(),
        "the scenario produced no zero-window segment; ss:\n{}",
        ss_ti(&pair.srv)
    );
    assert!(
        idle_phase > 0,
        "no zero-window segment while the reader was idle"
    );

    // tcpq.
    let events = json_lines(&stdout);
    let ctx = format!(
        "\n{} tcpq events, {} zero-window segments on the wire ({idle_phase} before the first read)\n\
         tcpq stdout:\n{stdout}\ntcpq stderr:\n{stderr}",
        events.len(),
        wire.len()
    );
    assert_eq!(events.len(), wire.len(), "event count != wire count{ctx}");
    // The early-filtered seed one-liner reports the same segments, with the
    // same owner.
    let seed_events: Vec<_> = json_lines(&early_stdout)
        .into_iter()
        .filter(|e| field_u64(e, "sport") == port as u64)
        .collect();
    // Each run stamps `time` in its own program: the same segment, a few
    // microseconds apart. Everything else is equal.
    let untimed = |evs: &[serde_json::Value]| -> Vec<serde_json::Value> {
        evs.iter()
            .map(|e| {
                let mut e = e.clone();
                e.as_object_mut().unwrap().remove("time");
                e
            })
            .collect()
    };
    assert_eq!(
        untimed(&seed_events),
        untimed(&events),
        "the seed one-liner (filter before the socket is read) disagrees; its stderr:\n{early_stderr}{ctx}"
    );
    // Microseconds of the day of `2026-12-07T08:41:15.846097Z`.
    let us_of_day = |t: &str| -> i64 {
        let n = |r: std::ops::Range<usize>| -> i64 { t[r].parse().unwrap() };
        ((n(11..13) * 60 + n(14..16)) * 60 + n(17..19)) * 1_000_000 + n(20..26)
    };
    for (a, b) in seed_events.iter().zip(&events) {
        let (ta, tb) = (field_str(a, "time"), field_str(b, "time"));
        let apart = (us_of_day(&ta) - us_of_day(&tb)).rem_euclid(86_400_000_000);
        let apart = apart.min(86_400_000_000 - apart);
        assert!(
            apart <= 1000,
            "the two runs stamp one segment {apart} us apart: {ta} vs {tb}{ctx}"
        );
    }

    let mut wire_pairs: BTreeMap<(u64, u64), i64> = BTreeMap::new();
    for p in &wire {
        *wire_pairs.entry((p.seq as u64, p.ack as u64)).or_default() += 1;
    }
    let mut event_pairs: BTreeMap<(u64, u64), i64> = BTreeMap::new();
    for ev in &events {
        *event_pairs
            .entry((field_u64(ev, "seq"), field_u64(ev, "ack_seq")))
            .or_default() += 1;
    }
    assert_eq!(
        event_pairs, wire_pairs,
        "(seq, ack_seq) multisets differ (tcpq vs wire){ctx}"
    );

    for ev in &events {
        let who = format!(
            "event {ev}: on-CPU task was {} (pid {}) — the segment is sent from softirq, so the \
             owner must come from the socket, not the current task{ctx}",
            field_str(ev, "task_comm"),
            field_str(ev, "task_pid")
        );
        assert_eq!(
            field_u64(ev, "pid"),
            reader_pid,
            "pid is not the reader's: {who}"
        );
        assert_eq!(
            field_str(ev, "comm"),
            "tcpq-reader",
            "comm is not the reader's: {who}"
        );
        assert_eq!(field_u64(ev, "win"), 0, "{ev}");
        assert_eq!(
            field_u64(ev, "win_bytes"),
            field_u64(ev, "win"),
            "win_bytes != win: {ev}"
        );
        assert!(
            !field_bool(ev, "wscale_ok"),
            "wscale_ok with scaling off: {ev}"
        );
        assert_eq!(field_u64(ev, "rcv_wscale"), 0, "{ev}");
        assert_eq!(field_u64(ev, "sport"), port as u64, "{ev}");
        assert_eq!(field_u64(ev, "dport"), writer_port, "{ev}");
        assert_eq!(field_str(ev, "saddr"), pair.srv_v4().to_string(), "{ev}");
        assert_eq!(field_str(ev, "daddr"), pair.cli_v4().to_string(), "{ev}");
    }
    eprintln!(
        "zero-window: {} events == {} wire segments ({idle_phase} while idle), \
         TCPToZeroWindowAdv +{}, {:?}",
        events.len(),
        wire.len(),
        after["TcpExtTCPToZeroWindowAdv"] - before["TcpExtTCPToZeroWindowAdv"],
        t0.elapsed()
    );
}
