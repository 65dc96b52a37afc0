//! tcpq against the kernel: retransmissions under wire loss, and under a
//! firewall in the sender's own output path.
//!
//! Ground truth, all from the kernel itself:
//! - `TcpRetransSegs` of the client (sender) namespace, read with `nstat`
//!   before and after: `__tcp_retransmit_skb()` adds `tcp_skb_pcount(skb)`
//!   for every attempt that gets past its early exits, sent or not, so the
//!   sum of tcpq's `segs` must equal the delta. The namespace holds only our
//!   connection, so the delta is exact. `TcpExtTCPRetransFail` adds the
//!   `segs` of those the send path then refused (err != 0).
//! - the `tcp:tcp_retransmit_skb` tracepoint read through a private tracefs
//!   instance filtered on the server port. Since 6.17 it fires for every
//!   attempt with its `err`; the ones with an err the kernel gives before
//!   counting (`tcpq_abi::retransmit::NOT_COUNTED`, e.g. -16 = -EBUSY: the
//!   original was still queued in the host) are not retransmissions, every
//!   other one is one tcpq event, in the same order.
//! - the writer's pid and comm (`tcpq-writer`) from its own log.
//!
//! Loss is "on the wire": nft drops 10% of the client's non-SYN TCP packets
//! as they arrive in the server namespace (a drop in the client's own output
//! hook is reported to TCP as a local error, and an original dropped there
//! is sent again, not retransmitted; see `NetnsPair::add_loss`). GSO is
//! limited to 4 MSS per packet so 1 MiB makes ~180 packets and the loss is
//! statistically certain. The writer keeps its socket open until everything
//! is acknowledged (and a while longer), so every retransmission happens
//! while it owns the socket and none is pending when the counters are read.
//!
//! `firewall_refused_retransmissions_count_like_the_kernel` adds a firewall
//! in the sender's output hook while only retransmissions are being sent,
//! so that the kernel counts retransmissions that never left the host
//! (err -EPERM): see there.

use crate::common;
use tcpq_kernel_test::kernel_test;

use common::tcpq::{field_str, field_u64, json_lines};
use common::tracefs::TraceEvent;
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
    /// `TcpExtTCPLossProbes` delta: probes sent, of new data or not.
    loss_probes: u64,
    /// tracefs tcp_retransmit_skb events the kernel counted (no err, or one
    /// it gives after the count) / all of them.
    trace_ok: usize,
    trace_all: usize,
    /// err values of the attempts the kernel did not count (e.g. -16 =
    /// -EBUSY: the original skb was still in a host queue), for failure
    /// messages.
    trace_failed: Vec<String>,
    pair_addrs: (String, String),
}

/// The tracepoint's `err` (0 on kernels whose tracepoint has none).
fn trace_err(e: &TraceEvent) -> i64 {
    let err = e.get("err");
    if err.is_empty() {
        0
    } else {
        err.parse()
            .unwrap_or_else(|_| panic!("err={err:?} in {}", e.line))
    }
}

/// Did the kernel count this attempt in TcpRetransSegs?
fn counted(e: &TraceEvent) -> bool {
    tcpq_abi::retransmit::counted(trace_err(e))
}

/// [`lossy_transfer_once`], rerun (up to three times) while a traced
/// event fired on pid 1's threads, where this VM runs no BPF program (see
/// `TraceEvent::unobservable`); a last run with such events fails here.
fn lossy_transfer(program: impl Fn(u16) -> String) -> Run {
    let (run, hidden) = common::tracefs::retry_unobservable(3, || lossy_transfer_once(&program));
    assert_eq!(
        hidden, 0,
        "three runs in a row had events on pid 1's threads, which no BPF program sees here"
    );
    run
}

fn lossy_transfer_once(program: &impl Fn(u16) -> String) -> (Run, usize) {
    let (k, (status, stdout, stderr)) = lossy_transfer_watched(
        |port| {
            let mut tcpq = Tcpq::spawn(&["-e", &program(port), "--format", "json"]);
            tcpq.wait_attached(Duration::from_secs(10));
            tcpq
        },
        |mut tcpq| tcpq.stop(Duration::from_secs(5)),
    );
    assert_ne!(
        status.signal(),
        Some(libc::SIGKILL),
        "tcpq ignored SIGINT; stderr:\n{stderr}"
    );
    let hidden = k.hidden;
    let run = Run {
        stdout,
        stderr,
        writer_pid: k.writer_pid,
        writer_port: k.writer_port,
        port: k.port,
        retrans_segs: k.retrans_segs,
        loss_probes: k.loss_probes,
        trace_ok: k.trace_ok,
        trace_all: k.trace_all,
        trace_failed: k.trace_failed,
        pair_addrs: k.pair_addrs,
    };
    (run, hidden)
}

/// The kernel's side of one lossy transfer, whatever watched it.
pub(crate) struct Lossy {
    pub writer_pid: u64,
    pub writer_port: u64,
    pub port: u16,
    /// `TcpRetransSegs` delta of the sender's namespace.
    pub retrans_segs: u64,
    /// `TcpExtTCPLossProbes` delta: probes sent, of new data or not.
    pub loss_probes: u64,
    pub trace_ok: usize,
    pub trace_all: usize,
    pub trace_failed: Vec<String>,
    pub pair_addrs: (String, String),
    /// Traced events on pid 1's threads, which no BPF program sees here
    /// (`TraceEvent::unobservable`): the run cannot be exact when not 0.
    pub hidden: usize,
}

/// One lossy transfer of 1 MiB to a port of a fresh pair (see the
/// module's doc), watched by what `start` attaches for that port before
/// the traffic and `finish` stops once every byte is acknowledged and the
/// kernel's counters are read (the writer holds its socket 1.5 s more, so
/// nothing of this connection is retransmitted meanwhile).
pub(crate) fn lossy_transfer_watched<W, T>(
    start: impl FnOnce(u16) -> W,
    finish: impl FnOnce(W) -> T,
) -> (Lossy, T) {
    let pair = NetnsPair::new();
    let port = pair.port();
    let dir = TempDir::new("krt");
    pair.set_gso_max_segs(&pair.cli, 4);
    let _loss = pair.add_loss(&pair.cli, 10);

    let watcher = start(port);
    let trace = TraceInstance::new(&[("tcp/tcp_retransmit_skb", &format!("dport == {port}"))]);
    let before = nstat(&pair.cli, &["TcpRetransSegs", "TcpExtTCPLossProbes"]);

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
    let after = nstat(&pair.cli, &["TcpRetransSegs", "TcpExtTCPLossProbes"]);
    trace.stop();
    std::thread::sleep(Duration::from_millis(200));
    let watched = finish(watcher);
    client.wait(Duration::from_secs(5));
    let rlog = server.wait(Duration::from_secs(5));

    assert_eq!(wlog.bytes(), 1 << 20, "writer {wlog:?}");
    assert_eq!(wlog.get("done").unwrap()["unacked"], 0, "writer {wlog:?}");
    assert_eq!(rlog.bytes(), 1 << 20, "reader {rlog:?}");
    let events = trace.events();
    let lossy = Lossy {
        writer_pid: wlog.pid() as u64,
        writer_port: wlog.lport() as u64,
        port,
        retrans_segs: after["TcpRetransSegs"] - before["TcpRetransSegs"],
        loss_probes: after["TcpExtTCPLossProbes"] - before["TcpExtTCPLossProbes"],
        trace_ok: events.iter().filter(|e| counted(e)).count(),
        trace_all: events.len(),
        trace_failed: events
            .iter()
            .filter(|e| !counted(e))
            .map(|e| e.get("err").to_string())
            .collect(),
        pair_addrs: (pair.cli_v4().to_string(), pair.srv_v4().to_string()),
        hidden: events.iter().filter(|e| e.unobservable()).count(),
    };
    (lossy, watched)
}

#[kernel_test]
fn retransmit_events_sum_to_tcp_retrans_segs() {
    let t0 = Instant::now();
    let run = lossy_transfer(|port| {
        format!("on tcp_retransmit where dport == {port} print pid, comm, segs, state, saddr, daddr, sport, dport, tlp")
    });
    assert!(
        run.retrans_segs > 0,
        "the lossy transfer retransmitted nothing (TcpRetransSegs +0)"
    );
    let events = json_lines(&run.stdout);
    let segs: u64 = events.iter().map(|e| field_u64(e, "segs")).sum();
    let ctx = format!(
        "\n{} tcpq events (sum segs {segs}); kernel: TcpRetransSegs +{}, tracefs \
         tcp_retransmit_skb {} counted of {} (uncounted attempts' err: {:?}; the kernel does \
         not count those in TcpRetransSegs, tcpq must not report them)\ntcpq stdout:\n{}\ntcpq stderr:\n{}",
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
        "events != counted tcp_retransmit_skb{ctx}"
    );
    // Every probe the kernel sent is in TCPLossProbes; those that resent
    // data (and only those) are events with tlp.
    let probes = events.iter().filter(|e| e["tlp"] == true).count() as u64;
    assert!(
        probes <= run.loss_probes,
        "{probes} events with tlp, but TCPLossProbes +{}{ctx}",
        run.loss_probes
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
        "retransmit: {} events ({probes} tlp, TCPLossProbes +{}), sum segs {segs} == \
         TcpRetransSegs +{}, tracefs {} ok / {} all, {:?}",
        events.len(),
        run.loss_probes,
        run.retrans_segs,
        run.trace_ok,
        run.trace_all,
        t0.elapsed()
    );
}

#[kernel_test]
fn retransmit_count_by_comm() {
    let t0 = Instant::now();
    let run =
        lossy_transfer(|port| format!("on tcp_retransmit where dport == {port} count by comm"));
    let lines = json_lines(&run.stdout);
    let ctx = format!(
        "\nkernel: {} counted tcp_retransmit_skb ({} incl. uncounted, err {:?}), TcpRetransSegs +{}\n\
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

#[kernel_test]
fn retransmit_aggregations_sum_to_tcp_retrans_segs() {
    let t0 = Instant::now();
    let run = lossy_transfer(|port| {
        let on = format!("on tcp_retransmit where dport == {port}");
        format!("{on} sum segs\n{on} stats segs by comm\n{on} hist segs\n{on} count every 50ms")
    });
    let rows = json_lines(&run.stdout);
    let ctx = format!(
        "\nkernel: {} counted tcp_retransmit_skb ({} incl. uncounted), TcpRetransSegs +{}\n\
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

/// `TcpRetransSegs` and `TcpExtTCPRetransFail` of `ns`.
fn retrans_counters(ns: &str) -> (u64, u64) {
    counter_pair(ns, "TcpRetransSegs", "TcpExtTCPRetransFail")
}

/// Two of `ns`'s counters, read at once.
fn counter_pair(ns: &str, a: &str, b: &str) -> (u64, u64) {
    let c = nstat(ns, &[a, b]);
    (c[a], c[b])
}

/// Run `attempt` until it returns true, at most three times; the third
/// is told it is the `last` and asserts whatever it saw. An attempt
/// returns false (without asserting) when a traced event fired on pid 1's
/// threads, where this VM runs no BPF program (see
/// `TraceEvent::unobservable`).
fn rerun_unobservable(attempt: fn(bool) -> bool) {
    for n in 1..=3 {
        if attempt(n == 3) {
            return;
        }
    }
}

/// Wait (polling nstat, at most `timeout`) until `pick` of the sender's
/// counters exceeds `base`; panics with `what` otherwise.
fn wait_counter(ns: &str, pick: fn((u64, u64)) -> u64, base: u64, what: &str) {
    common::wait_for(Duration::from_secs(10), || {
        std::thread::sleep(Duration::from_millis(20));
        (pick(retrans_counters(ns)) > base).then_some(())
    })
    .unwrap_or_else(|| panic!("{what} within 10 s: {:?}", retrans_counters(ns)));
}

/// Retransmissions that a firewall in the sender's own output hook refuses
/// are retransmissions for the kernel: `__tcp_retransmit_skb()` has counted
/// them in TcpRetransSegs before `tcp_transmit_skb()` returns -EPERM, and
/// then adds their segs to TCPRetransFail too. tcpq must report them, with
/// `err` EPERM, and nothing the kernel did not count.
///
/// The phases make the refused retransmissions certain instead of likely
/// (a random output drop hits originals mostly, which TCP sends again
/// without counting a retransmission): (1) every client segment but SYNs
/// is lost on the wire (`add_loss` 100%), until the kernel has retransmitted
/// (TcpRetransSegs moved: the originals were sent, and lost); (2) the
/// firewall (`add_output_drop` 100% in the client) refuses everything, until
/// a retransmission was refused (TCPRetransFail moved: the timer retransmits
/// the head of the queue and gets -EPERM); (3) both go and 10% wire loss
/// stays, for retransmissions that are sent. Each phase ends on a counter of
/// the kernel, not on a sleep, so a slow machine only makes it longer.
///
/// Asserted, all exact (on a kernel whose tracepoint has no `err`, before
/// 6.17, only sum(segs) == ΔTcpRetransSegs - ΔTCPRetransFail):
/// - sum(segs) of the printed events == ΔTcpRetransSegs;
/// - the `err != 0` clause's sum(segs) == ΔTCPRetransFail: every counted
///   attempt that the send path refused, and nothing else, counts there
///   (`err != 0 && err != -EBUSY`, and the early exits skip that line too;
///   here nothing returns -EBUSY or another early errno after the count: no
///   TCP-AO, no route change; see `tcpq_abi::retransmit`);
/// - the `err == EPERM` clause counts as many events as were printed with
///   EPERM, and there is at least one (phase 2 guarantees it);
/// - event by event, tcpq's (err, state, sport) sequence is tracefs's
///   sequence of counted attempts: retransmissions of one socket run under
///   its lock, one after the other, and the instance's clock is global.
///
/// About 2-4 s: RTOs of 200 ms and more, doubled while nothing is
/// acknowledged.
#[kernel_test]
fn firewall_refused_retransmissions_count_like_the_kernel() {
    rerun_unobservable(firewall_attempt);
}

/// One run of the firewall scenario: false (without asserting) when an
/// event fired where BPF programs do not run and this is not the `last`
/// attempt.
fn firewall_attempt(last: bool) -> bool {
    let t0 = Instant::now();
    let format =
        std::fs::read_to_string("/sys/kernel/tracing/events/tcp/tcp_retransmit_skb/format")
            .expect("tcp_retransmit_skb format");
    let has_err = format.contains("field:int err;");
    let pair = NetnsPair::new();
    let port = pair.port();
    let dir = TempDir::new("krt-fw");
    pair.set_gso_max_segs(&pair.cli, 4);

    let on = format!("on tcp_retransmit where dport == {port}");
    let program = format!(
        "{on} print err, segs, state, sport\n{on} and err != 0 sum segs\n{on} and err == EPERM count"
    );
    let mut tcpq = Tcpq::spawn(&["-e", &program, "--format", "json"]);
    tcpq.wait_attached(Duration::from_secs(10));
    let trace = TraceInstance::new(&[("tcp/tcp_retransmit_skb", &format!("dport == {port}"))]);
    let (segs0, fail0) = retrans_counters(&pair.cli);

    let blackhole = pair.add_loss(&pair.cli, 100);
    let mut server = Server::start(
        &pair.srv,
        IpAddr::V4(pair.srv_v4()),
        port,
        &["--max-seconds", "25"],
        dir.path(),
    );
    let mut client = Client::start(
        &pair.cli,
        IpAddr::V4(pair.srv_v4()),
        port,
        1 << 20,
        &[
            "--max-seconds",
            "20",
            "--hold-seconds",
            "20",
            "--hold-after-ack",
            "1",
        ],
        dir.path(),
    );
    wait_counter(
        &pair.cli,
        |c| c.0,
        segs0,
        "no retransmission into the blackhole",
    );
    let firewall = pair.add_output_drop(&pair.cli, 100);
    wait_counter(
        &pair.cli,
        |c| c.1,
        fail0,
        "the firewall refused no retransmission (TCPRetransFail)",
    );
    let refused = firewall.dropped();
    drop(firewall);
    drop(blackhole);
    let _loss = pair.add_loss(&pair.cli, 10);

    let wlog = client.wait_event("done", Duration::from_secs(25));
    let (segs1, fail1) = retrans_counters(&pair.cli);
    trace.stop();
    std::thread::sleep(Duration::from_millis(200));
    let (status, stdout, stderr) = tcpq.stop(Duration::from_secs(5));
    client.wait(Duration::from_secs(5));
    let rlog = server.wait(Duration::from_secs(5));
    assert_eq!(wlog.bytes(), 1 << 20, "writer {wlog:?}");
    assert_eq!(wlog.get("done").unwrap()["unacked"], 0, "writer {wlog:?}");
    assert_eq!(rlog.bytes(), 1 << 20, "reader {rlog:?}");
    assert!(status.success(), "tcpq failed: {status:?}\n{stderr}");
    assert_eq!(trace.overruns(), 0, "the tracefs instance lost events");

    let (d_segs, d_fail) = (segs1 - segs0, fail1 - fail0);
    let rows = json_lines(&stdout);
    let has = |r: &serde_json::Value, k: &str| r.get(k).is_some();
    let events: Vec<_> = rows.iter().filter(|r| has(r, "err")).collect();
    let sum_row: Vec<_> = rows.iter().filter(|r| has(r, "sum")).collect();
    let count_row: Vec<_> = rows.iter().filter(|r| has(r, "count")).collect();
    // err as tcpq prints it: 0, or a name.
    let err_of = |e: &serde_json::Value| match &e["err"] {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => panic!("err is {other} in {e}"),
    };
    let traced = trace.events();
    let hidden = traced.iter().filter(|e| e.unobservable()).count();
    if hidden > 0 && !last {
        eprintln!("firewall: rerun, {hidden} traced event(s) on pid 1's threads");
        return false;
    }
    let ctx = format!(
        "\nkernel: TcpRetransSegs +{d_segs}, TCPRetransFail +{d_fail}; firewall dropped \
         {refused} packets; {hidden} traced event(s) on pid 1's threads, where no BPF program \
         runs on this VM\ntracefs:\n{}\ntcpq stdout:\n{stdout}\ntcpq stderr:\n{stderr}",
        traced
            .iter()
            .map(|e| e.line.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let segs: u64 = events.iter().map(|e| field_u64(e, "segs")).sum();
    assert!(d_fail > 0, "no refused retransmission{ctx}");
    if !has_err {
        // Before 6.17 the tracepoint fires only for sent retransmissions
        // and err reads 0: what the firewall refused is in the counters
        // only, so sum segs is TcpRetransSegs less TCPRetransFail.
        assert_eq!(
            segs,
            d_segs - d_fail,
            "sum(segs) != TcpRetransSegs - TCPRetransFail (a kernel without err){ctx}"
        );
        assert!(events.iter().all(|e| err_of(e) == "0"), "{ctx}");
        eprintln!("firewall, kernel without err: sum segs {segs} == {d_segs} - {d_fail}");
        return true;
    }
    assert_eq!(segs, d_segs, "sum(segs) != TcpRetransSegs delta{ctx}");

    let refused_segs: u64 = events
        .iter()
        .filter(|e| err_of(e) != "0")
        .map(|e| field_u64(e, "segs"))
        .sum();
    assert_eq!(sum_row.len(), 1, "one `err != 0 sum segs` row{ctx}");
    assert_eq!(
        field_u64(sum_row[0], "sum"),
        d_fail,
        "`where err != 0 sum segs` != TCPRetransFail delta{ctx}"
    );
    assert_eq!(
        refused_segs, d_fail,
        "printed err != 0 segs != TCPRetransFail{ctx}"
    );
    let eperm = events.iter().filter(|e| err_of(e) == "EPERM").count();
    assert!(eperm > 0, "no event with err EPERM{ctx}");
    assert_eq!(count_row.len(), 1, "one `err == EPERM count` row{ctx}");
    assert_eq!(field_u64(count_row[0], "count") as usize, eperm, "{ctx}");

    // Event by event: tracefs's counted attempts, in order, are tcpq's.
    let name = |v: i64| match v {
        0 => "0".to_string(),
        v => tcpq_dsl::errno::name(v)
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string()),
    };
    let want: Vec<(String, String, u64)> = traced
        .iter()
        .filter(|e| counted(e))
        .map(|e| {
            (
                name(trace_err(e)),
                e.get("state").trim_start_matches("TCP_").to_string(),
                e.get("sport").parse().expect("sport"),
            )
        })
        .collect();
    let have: Vec<(String, String, u64)> = events
        .iter()
        .map(|e| (err_of(e), field_str(e, "state"), field_u64(e, "sport")))
        .collect();
    assert_eq!(
        have, want,
        "tcpq's events are not tracefs's counted attempts{ctx}"
    );
    let uncounted: Vec<i64> = traced
        .iter()
        .filter(|e| !counted(e))
        .map(trace_err)
        .collect();
    eprintln!(
        "firewall: {} events (EPERM {eperm}), sum segs {segs} == TcpRetransSegs +{d_segs}, \
         err != 0 segs {refused_segs} == TCPRetransFail +{d_fail}; tracefs {} attempts, \
         uncounted err {uncounted:?}; firewall dropped {refused}; {:?}",
        events.len(),
        traced.len(),
        t0.elapsed()
    );
    true
}

/// `TcpRetransSegs`, `TcpExtTCPLossProbes` of `ns`.
fn probe_counters(ns: &str) -> (u64, u64) {
    counter_pair(ns, "TcpRetransSegs", "TcpExtTCPLossProbes")
}

/// A lost tail: the writer sends 4 KiB (3 segments, all in the initial
/// window, so nothing is left unsent) and every one of them is lost on the
/// wire. The kernel's probe timer fires first: `tcp_send_loss_probe()` has
/// no new data, so it retransmits the last segment and counts
/// TCPLossProbes. Nothing is acknowledged, so the retransmission timer
/// fires next and resends from the head (no probe in loss recovery). Then
/// the loss stops and the transfer completes.
///
/// Asserted, exact: the events with `tlp` are as many as TCPLossProbes
/// moved (at least one, and each a single segment: the probe resends one
/// MSS), the first event is a probe, at least one retransmission is not,
/// and sum(segs) == ΔTcpRetransSegs. The probe phase ends on the kernel's
/// counters, not on a sleep.
#[kernel_test]
fn tail_loss_probes_are_tlp_events_like_tcp_loss_probes() {
    rerun_unobservable(tail_loss_attempt);
}

/// One run of the tail-loss scenario: false (without asserting) when an
/// event fired where BPF programs do not run and this is not the `last`
/// attempt.
fn tail_loss_attempt(last: bool) -> bool {
    let t0 = Instant::now();
    let pair = NetnsPair::new();
    let port = pair.port();
    let dir = TempDir::new("krt-tlp");
    let on = format!("on tcp_retransmit where dport == {port}");
    let program = format!("{on} print tlp, segs, state, err\n{on} and tlp count");
    let mut tcpq = Tcpq::spawn(&["-e", &program, "--format", "json"]);
    tcpq.wait_attached(Duration::from_secs(10));
    // The built-in recipe, as text: BCC's letters in the tlp column.
    let port_param = format!("port={port}");
    let mut recipe = Tcpq::spawn(&["tcpretrans", "--param", &port_param]);
    recipe.wait_attached(Duration::from_secs(10));
    let trace = TraceInstance::new(&[("tcp/tcp_retransmit_skb", &format!("dport == {port}"))]);
    let (segs0, probes0) = probe_counters(&pair.cli);

    let blackhole = pair.add_loss(&pair.cli, 100);
    let mut server = Server::start(
        &pair.srv,
        IpAddr::V4(pair.srv_v4()),
        port,
        &["--max-seconds", "20"],
        dir.path(),
    );
    let mut client = Client::start(
        &pair.cli,
        IpAddr::V4(pair.srv_v4()),
        port,
        4096,
        &[
            "--max-seconds",
            "15",
            "--hold-seconds",
            "15",
            "--hold-after-ack",
            "0.5",
        ],
        dir.path(),
    );
    // The probe, then a retransmission that is not one (the RTO).
    common::wait_for(Duration::from_secs(10), || {
        std::thread::sleep(Duration::from_millis(20));
        let (segs, probes) = probe_counters(&pair.cli);
        (probes > probes0 && segs - segs0 > probes - probes0).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "no probe and timeout within 10 s: {:?} from {:?}",
            probe_counters(&pair.cli),
            (segs0, probes0)
        )
    });
    drop(blackhole);
    let wlog = client.wait_event("done", Duration::from_secs(15));
    let (segs1, probes1) = probe_counters(&pair.cli);
    trace.stop();
    std::thread::sleep(Duration::from_millis(200));
    let (status, stdout, stderr) = tcpq.stop(Duration::from_secs(5));
    let (rstatus, rstdout, rstderr) = recipe.stop(Duration::from_secs(5));
    client.wait(Duration::from_secs(5));
    let rlog = server.wait(Duration::from_secs(5));
    assert_eq!(wlog.bytes(), 4096, "writer {wlog:?}");
    assert!(
        rstatus.success(),
        "tcpretrans failed: {rstatus:?}\n{rstderr}"
    );
    assert_eq!(rlog.bytes(), 4096, "reader {rlog:?}");
    assert!(status.success(), "tcpq failed: {status:?}\n{stderr}");

    let traced = trace.events();
    let hidden = traced.iter().filter(|e| e.unobservable()).count();
    if hidden > 0 && !last {
        eprintln!("tail loss: rerun, {hidden} traced event(s) on pid 1's threads");
        return false;
    }
    let (d_segs, d_probes) = (segs1 - segs0, probes1 - probes0);
    let rows = json_lines(&stdout);
    let events: Vec<_> = rows.iter().filter(|r| r.get("tlp").is_some()).collect();
    let counts: Vec<_> = rows.iter().filter(|r| r.get("count").is_some()).collect();
    let ctx = format!(
        "\nkernel: TcpRetransSegs +{d_segs}, TCPLossProbes +{d_probes}; {hidden} traced \
         event(s) on pid 1's threads\ntracefs:\n{}\ntcpq stdout:\n{stdout}\ntcpq stderr:\n{stderr}",
        traced
            .iter()
            .map(|e| e.line.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let tlp: Vec<_> = events.iter().filter(|e| e["tlp"] == true).collect();
    assert!(d_probes >= 1, "the kernel sent no probe{ctx}");
    assert_eq!(
        tlp.len() as u64,
        d_probes,
        "events with tlp != TCPLossProbes delta{ctx}"
    );
    assert!(
        tlp.iter().all(|e| field_u64(e, "segs") == 1),
        "a probe resends one segment{ctx}"
    );
    assert_eq!(events[0]["tlp"], true, "the probe comes first{ctx}");
    assert!(
        events.iter().any(|e| e["tlp"] == false),
        "no retransmission other than probes{ctx}"
    );
    let segs: u64 = events.iter().map(|e| field_u64(e, "segs")).sum();
    assert_eq!(segs, d_segs, "sum(segs) != TcpRetransSegs delta{ctx}");
    // tcpretrans's text: a header naming `tlp`, then one line per event,
    // in the same order, with L for the probes and R for the others.
    let mut lines = rstdout.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let col = header
        .iter()
        .position(|h| *h == "tlp")
        .unwrap_or_else(|| panic!("no tlp column in tcpretrans's header {header:?}{ctx}"));
    let letters: Vec<String> = lines
        .map(|l| {
            l.split_whitespace()
                .nth(col)
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let want: Vec<String> = events
        .iter()
        .map(|e| if e["tlp"] == true { "L" } else { "R" }.to_string())
        .collect();
    assert_eq!(
        letters, want,
        "tcpretrans's T> letters{ctx}\ntcpretrans:\n{rstdout}"
    );
    assert_eq!(counts.len(), 1, "one `tlp count` row{ctx}");
    assert_eq!(field_u64(counts[0], "count"), d_probes, "{ctx}");
    eprintln!(
        "tail loss: {} events, {} tlp == TCPLossProbes +{d_probes}, sum segs {segs} == \
         TcpRetransSegs +{d_segs}; {:?}",
        events.len(),
        tlp.len(),
        t0.elapsed()
    );
    true
}
