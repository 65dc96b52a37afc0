//! tcpq against the kernel: retransmissions under wire loss.
//!
//! Ground truth, all from the kernel itself:
//! - `TcpRetransSegs` of the client (sender) namespace, read with `nstat`
//!   before and after: the kernel adds `tcp_skb_pcount(skb)` per successful
//!   retransmission, so the sum of tcpq's `segs` must equal the delta. The
//!   namespace holds only our connection, so the delta is exact.
//! - the `tcp:tcp_retransmit_skb` tracepoint read through a private tracefs
//!   instance filtered on the server port: its events with `err=0` are the
//!   successful retransmissions, one per tcpq event. (On 6.18 the tracepoint
//!   also fires for failed attempts, `err != 0`, which TcpRetransSegs does not
//!   count: tcpq must not count them as retransmissions.)
//! - the writer's pid and comm (`tcpq-writer`) from its own log.
//!
//! Loss is "on the wire": nft drops 10% of the client's non-SYN TCP packets
//! as they arrive in the server namespace (a drop in the client's own output
//! hook is reported to TCP as a local error and is never retransmitted; see
//! `NetnsPair::add_loss`). GSO is limited to 4 MSS per packet so 1 MiB makes
//! ~180 packets and the loss is statistically certain. The writer keeps its
//! socket open until everything is acknowledged (and a while longer), so
//! every retransmission happens while it owns the socket and none is pending
//! when the counters are read.
//!
//! Needs root; skipped otherwise, and failing instead when `CI` is set.

mod common;

use common::tcpq::{field_str, field_u64, json_lines};
use common::{nstat, Client, NetnsPair, Server, Tcpq, TempDir, TraceInstance};
use std::net::IpAddr;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

/// What one lossy transfer produced, with tcpq's output.
struct Run {
    stdout: String,
    stderr: String,
    writer_pid: u64,
    writer_port: u64,
    port: u16,
    retrans_segs: u64,
    /// tracefs tcp_retransmit_skb events with err=0 / all of them.
    trace_ok: usize,
    trace_all: usize,
    /// err values of the failed attempts (e.g. -16 = -EBUSY: the original
    /// skb was still in a host queue), for failure messages.
    trace_failed: Vec<String>,
    pair_addrs: (String, String),
}

fn lossy_transfer(program: impl Fn(u16) -> String) -> Run {
    let pair = NetnsPair::new();
    let port = pair.port();
    let dir = TempDir::new("krt");
    pair.set_gso_max_segs(&pair.cli, 4);
    let _loss = pair.add_loss(&pair.cli, 10);

    let mut tcpq = Tcpq::spawn(&["-e", &program(port), "--format", "json"]);
    tcpq.wait_attached(Duration::from_secs(10));
    let trace = TraceInstance::new(&[("tcp/tcp_retransmit_skb", &format!("dport == {port}"))]);
    let before = nstat(&pair.cli, &["TcpRetransSegs"]);

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
        1 << 20,
        &[
            "--max-seconds",
            "8",
            "--hold-seconds",
            "8",
            "--hold-after-ack",
            "1.5",
        ],
        dir.path(),
    );
    // "done" is logged once every byte is acknowledged; the socket stays
    // open (owned by the writer) for 1.5 s more.
    let wlog = client.wait_event("done", Duration::from_secs(10));
    let after = nstat(&pair.cli, &["TcpRetransSegs"]);
    trace.stop();
    std::thread::sleep(Duration::from_millis(200));
    let (status, stdout, stderr) = tcpq.stop(Duration::from_secs(5));
    client.wait(Duration::from_secs(5));
    let rlog = server.wait(Duration::from_secs(5));

    assert_eq!(wlog.bytes(), 1 << 20, "writer {wlog:?}");
    assert_eq!(wlog.get("done").unwrap()["unacked"], 0, "writer {wlog:?}");
    assert_eq!(rlog.bytes(), 1 << 20, "reader {rlog:?}");
    assert_ne!(
        status.signal(),
        Some(libc::SIGKILL),
        "tcpq ignored SIGINT; stderr:\n{stderr}"
    );
    let events = trace.events();
    Run {
        stdout,
        stderr,
        writer_pid: wlog.pid() as u64,
        writer_port: wlog.lport() as u64,
        port,
        retrans_segs: after["TcpRetransSegs"] - before["TcpRetransSegs"],
        trace_ok: events.iter().filter(|e| e.get("err") == "0").count(),
        trace_all: events.len(),
        trace_failed: events
            .iter()
            .filter(|e| e.get("err") != "0")
            .map(|e| e.get("err").to_string())
            .collect(),
        pair_addrs: (pair.cli_v4().to_string(), pair.srv_v4().to_string()),
    }
}

#[test]
fn retransmit_events_sum_to_tcp_retrans_segs() {
    if !common::require_root() {
        return;
    }
    let t0 = Instant::now();
    let run = lossy_transfer(|port| {
        format!("on tcp_retransmit where dport == {port} print pid, comm, segs, state, saddr, daddr, sport, dport")
    });
    assert!(
        run.retrans_segs > 0,
        "the lossy transfer retransmitted nothing (TcpRetransSegs +0)"
    );
    let events = json_lines(&run.stdout);
    let segs: u64 = events.iter().map(|e| field_u64(e, "segs")).sum();
    let ctx = format!(
        "\n{} tcpq events (sum segs {segs}); kernel: TcpRetransSegs +{}, tracefs \
         tcp_retransmit_skb {} ok of {} (failed attempts' err: {:?}; the kernel does not \
         count those in TcpRetransSegs, tcpq must not report them)\ntcpq stdout:\n{}\ntcpq stderr:\n{}",
        events.len(),
        run.retrans_segs,
        run.trace_ok,
        run.trace_all,
        run.trace_failed,
        run.stdout,
        run.stderr
    );
    assert!(!events.is_empty(), "no events{ctx}");
    assert_eq!(
        segs, run.retrans_segs,
        "sum(segs) != TcpRetransSegs delta{ctx}"
    );
    assert_eq!(
        events.len(),
        run.trace_ok,
        "events != successful tcp_retransmit_skb{ctx}"
    );
    for ev in &events {
        assert_eq!(
            field_u64(ev, "pid"),
            run.writer_pid,
            "pid is not the writer's: {ev}{ctx}"
        );
        assert_eq!(field_str(ev, "comm"), "tcpq-writer", "{ev}{ctx}");
        assert_eq!(field_u64(ev, "dport"), run.port as u64, "{ev}");
        assert_eq!(field_u64(ev, "sport"), run.writer_port, "{ev}");
        assert_eq!(field_str(ev, "saddr"), run.pair_addrs.0, "{ev}");
        assert_eq!(field_str(ev, "daddr"), run.pair_addrs.1, "{ev}");
        assert!(field_u64(ev, "segs") >= 1, "{ev}");
        assert!(!field_str(ev, "state").is_empty(), "{ev}");
    }
    eprintln!(
        "retransmit: {} events, sum segs {segs} == TcpRetransSegs +{}, tracefs {} ok / {} all, {:?}",
        events.len(),
        run.retrans_segs,
        run.trace_ok,
        run.trace_all,
        t0.elapsed()
    );
}

#[test]
fn retransmit_count_by_comm() {
    if !common::require_root() {
        return;
    }
    let t0 = Instant::now();
    let run =
        lossy_transfer(|port| format!("on tcp_retransmit where dport == {port} count by comm"));
    let lines = json_lines(&run.stdout);
    let ctx = format!(
        "\nkernel: {} successful tcp_retransmit_skb ({} incl. failed, err {:?}), TcpRetransSegs +{}\n\
         tcpq stdout:\n{}\ntcpq stderr:\n{}",
        run.trace_ok, run.trace_all, run.trace_failed, run.retrans_segs, run.stdout, run.stderr
    );
    assert!(
        run.trace_ok > 0,
        "the lossy transfer retransmitted nothing{ctx}"
    );
    assert_eq!(lines.len(), 1, "expected one aggregate line{ctx}");
    let row = &lines[0];
    assert_eq!(
        row.as_object().unwrap().len(),
        2,
        "expected exactly comm and count: {row}{ctx}"
    );
    assert_eq!(field_str(row, "comm"), "tcpq-writer", "{ctx}");
    let n = field_u64(row, "count");
    assert!(n > 0, "{ctx}");
    assert_eq!(
        n as usize, run.trace_ok,
        "count != number of retransmit events{ctx}"
    );
    eprintln!(
        "count by comm: {row} == {} kernel events, {:?}",
        run.trace_ok,
        t0.elapsed()
    );
}

#[test]
fn retransmit_aggregations_sum_to_tcp_retrans_segs() {
    if !common::require_root() {
        return;
    }
    let t0 = Instant::now();
    let run = lossy_transfer(|port| {
        let on = format!("on tcp_retransmit where dport == {port}");
        format!("{on} sum segs\n{on} stats segs by comm\n{on} hist segs\n{on} count every 50ms")
    });
    let rows = json_lines(&run.stdout);
    let ctx = format!(
        "\nkernel: {} successful tcp_retransmit_skb ({} incl. failed), TcpRetransSegs +{}\n\
         tcpq stdout:\n{}\ntcpq stderr:\n{}",
        run.trace_ok, run.trace_all, run.retrans_segs, run.stdout, run.stderr
    );
    assert!(run.retrans_segs > 0, "nothing retransmitted{ctx}");
    let has = |r: &serde_json::Value, k: &str| r.get(k).is_some();
    // Several clauses: each row names its probe; the keys tell them apart.
    let sum: Vec<_> = rows.iter().filter(|r| has(r, "sum")).collect();
    assert_eq!(sum.len(), 1, "{ctx}");
    assert_eq!(
        field_u64(sum[0], "sum"),
        run.retrans_segs,
        "sum segs != TcpRetransSegs{ctx}"
    );
    let stats: Vec<_> = rows.iter().filter(|r| has(r, "avg")).collect();
    assert_eq!(stats.len(), 1, "{ctx}");
    assert_eq!(field_str(stats[0], "comm"), "tcpq-writer", "{ctx}");
    let n = field_u64(stats[0], "count");
    assert_eq!(n as usize, run.trace_ok, "stats count != events{ctx}");
    assert_eq!(field_u64(stats[0], "avg"), run.retrans_segs / n, "{ctx}");
    assert!(field_u64(stats[0], "min") >= 1, "{ctx}");
    let hist: Vec<_> = rows.iter().filter(|r| has(r, "buckets")).collect();
    assert_eq!(hist.len(), 1, "{ctx}");
    let buckets = hist[0]["buckets"].as_array().unwrap();
    let total: u64 = buckets.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(total, n, "hist total != events{ctx}");
    let lo = buckets[0]["min"].as_u64().unwrap();
    let hi = buckets.last().unwrap()["max"].as_u64().unwrap();
    assert!(
        lo <= field_u64(stats[0], "min") && field_u64(stats[0], "max") <= hi,
        "hist buckets do not cover stats min/max{ctx}"
    );
    // `every 50ms`: intervals numbered from 1; their counts add up.
    let every: Vec<_> = rows.iter().filter(|r| has(r, "interval")).collect();
    assert!(every.len() >= 2, "one interval only{ctx}");
    for (i, r) in every.iter().enumerate() {
        assert_eq!(field_u64(r, "interval"), i as u64 + 1, "{ctx}");
    }
    let counted: u64 = every.iter().map(|r| field_u64(r, "count")).sum();
    assert_eq!(counted, n, "every: counts over intervals != events{ctx}");
    eprintln!(
        "retransmit aggregations: sum {} == TcpRetransSegs, {n} events in stats/hist/{} \
         intervals, {:?}",
        run.retrans_segs,
        every.len(),
        t0.elapsed()
    );
}
