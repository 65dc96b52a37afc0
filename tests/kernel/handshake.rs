//! The handshake: what each side offers in its SYN (`tcp_syn`), and how
//! each connection attempt ends (`tcp_connect_attempt`), against the
//! kernel's own view.
//!
//! Each test builds its own pair of network namespaces and compares tcpq
//! with ground truth that never comes from tcpq:
//! - tcpdump's own rendering of every SYN and SYN-ACK (flags, sequence
//!   numbers, window, options);
//! - `nstat` of the client namespace: TcpActiveOpens (every connect()
//!   that sent a SYN), TcpAttemptFails (SYN_SENT -> CLOSE), TcpExtTCPSynRetrans
//!   (SYNs retransmitted);
//! - the generator's log: each failed connect() with the errno the kernel
//!   returned to it, its local port, its pid;
//! - the nft rule counter of the drop or reject rule.

use crate::common;
use tcpq_kernel_test::kernel_test;

use common::tcpq::{field_bool, field_str, field_u64};
use common::{
    exec, exec_ok, nstat, tcpdump_syns, Capture, Client, Loss, NetnsPair, Server, TcpGenLog,
    TcpdumpSyn, Tcpq, TempDir,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

fn tcpq(program: &str) -> Tcpq {
    common::tcpq::attached_json(program)
}

/// Stop tcpq, which must exit cleanly, and return its events with its
/// output for failure messages.
fn finish(t: Tcpq) -> (Vec<Value>, String) {
    let (events, st, ctx) = common::tcpq::finish_json(t);
    assert!(st.success(), "tcpq failed{ctx}");
    (events, ctx)
}

use common::netns::inode as netns_inode;
use common::tcpq::of_probe as of;

/// `err` as printed: an errno's name, or 0.
fn err_of(e: &Value) -> String {
    match &e["err"] {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

const ATTEMPT_FIELDS: &str =
    "pid, comm, netns, sport, dport, oldstate, newstate, err, duration, total_retrans";

/// The client's SYN retries, bounded: one retransmission, and (6.5+) no
/// linear timeouts before the exponential ones, so that an unanswered
/// connect() gives up after about 3 s (1 s + 2 s).
fn few_syn_retries(ns: &str) {
    common::sysctl(ns, "net.ipv4.tcp_syn_retries", "1");
    let linear = exec(ns, &["sysctl", "-n", "net.ipv4.tcp_syn_linear_timeouts"]);
    if linear.status.success() {
        common::sysctl(ns, "net.ipv4.tcp_syn_linear_timeouts", "0");
    }
}

/// Seconds between the generator's `connecting` and the record that ended
/// each attempt, in order.
fn attempt_seconds(log: &TcpGenLog, end: &str) -> Vec<f64> {
    let starts = log.all("connecting");
    let ends = log.all(end);
    starts
        .iter()
        .zip(&ends)
        .map(|(s, e)| e["t"].as_f64().unwrap() - s["t"].as_f64().unwrap())
        .collect()
}

#[kernel_test]
fn a_refused_connect_is_an_attempt_that_failed_with_econnrefused() {
    let t0 = Instant::now();
    const N: usize = 3;
    let pair = NetnsPair::new();
    let port = pair.port();
    let dir = TempDir::new("khr");
    let pcap = dir.join("cli.pcap");
    let t = tcpq(&format!(
        "on tcp_connect_attempt where dport == {port} print {ATTEMPT_FIELDS}\n\
         on tcp_connect where dport == {port} print sport"
    ));
    let counters = ["TcpActiveOpens", "TcpAttemptFails", "TcpExtTCPSynRetrans"];
    let before = nstat(&pair.cli, &counters);
    let mut cap = Capture::start(&pair.cli, pair.cli_if(), &format!("tcp port {port}"), &pcap);
    // Nobody listens in the server namespace: each SYN is answered by a reset.
    let mut client = Client::start(
        &pair.cli,
        IpAddr::V4(pair.srv_v4()),
        port,
        0,
        &["--connections", &N.to_string(), "--connect-timeout", "2"],
        dir.path(),
    );
    let log = client.wait(Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(200));
    cap.stop();
    let (events, ctx) = finish(t);
    let after = nstat(&pair.cli, &counters);
    let d = |c: &str| after[c] - before[c];
    let syns = tcpdump_syns(&pcap);
    let rsts = common::count(
        &pcap,
        &format!("tcp[tcpflags] & tcp-rst != 0 and src port {port}"),
    );
    let ctx = format!(
        "{ctx}\nnstat deltas: {:?}\ngenerator: {log:?}\nSYNs: {syns:#?}\nRSTs from the port: {rsts}",
        counters.map(|c| (c, d(c)))
    );

    // The generator's own view: every connect() refused, by the kernel.
    let refused = log.all("refused");
    assert_eq!(refused.len(), N, "{ctx}");
    assert!(
        refused.iter().all(|r| r["errno"] == "ECONNREFUSED"),
        "{ctx}"
    );
    assert_eq!(syns.len(), N, "one SYN per attempt on the wire{ctx}");
    assert_eq!(rsts, N, "one reset per SYN{ctx}");
    assert_eq!(d("TcpActiveOpens") as usize, N, "{ctx}");
    assert_eq!(d("TcpAttemptFails") as usize, N, "{ctx}");
    assert_eq!(d("TcpExtTCPSynRetrans"), 0, "{ctx}");

    let attempts = of(&events, "tcp_connect_attempt");
    assert_eq!(attempts.len(), N, "one event per attempt{ctx}");
    assert!(
        of(&events, "tcp_connect").is_empty(),
        "tcp_connect reports established connections only{ctx}"
    );
    let lports: BTreeSet<u64> = refused
        .iter()
        .map(|r| r["lport"].as_u64().unwrap())
        .collect();
    let got: BTreeSet<u64> = attempts.iter().map(|e| field_u64(e, "sport")).collect();
    assert_eq!(got, lports, "the generator's local ports{ctx}");
    let cli_ns = netns_inode(&pair.cli);
    let took = attempt_seconds(&log, "refused");
    let mut durations: Vec<u64> = Vec::new();
    for e in &attempts {
        assert_eq!(field_str(e, "oldstate"), "SYN_SENT", "{e}{ctx}");
        assert_eq!(field_str(e, "newstate"), "CLOSE", "{e}{ctx}");
        assert_eq!(err_of(e), "ECONNREFUSED", "{e}{ctx}");
        assert_eq!(field_u64(e, "total_retrans"), 0, "{e}{ctx}");
        assert_eq!(field_u64(e, "netns"), cli_ns, "{e}{ctx}");
        assert_eq!(field_u64(e, "pid"), log.pid() as u64, "{e}{ctx}");
        assert_eq!(field_str(e, "comm"), "tcpq-writer", "{e}{ctx}");
        durations.push(field_u64(e, "duration"));
    }
    // Each attempt began (SYN_SENT) and ended (CLOSE) inside its connect().
    for (us, s) in durations.iter().zip(&took) {
        assert!(
            *us > 0 && (*us as f64) <= s * 1e6,
            "duration {us} us vs connect() {s} s{ctx}"
        );
    }
    eprintln!(
        "refused: {N} attempts, err ECONNREFUSED == the generator's, TcpAttemptFails +{}, \
         durations {durations:?} us, {:?}",
        d("TcpAttemptFails"),
        t0.elapsed()
    );
}

/// One connect() to the pair's server port that the server namespace's
/// nft `rule` (for SYNs to the port) answers badly, with the client's SYN
/// retries bounded: the attempt tcpq reports, the generator's log, the
/// capture of the client's side and the nstat deltas.
struct Failed {
    attempts: Vec<Value>,
    syn_events: Vec<Value>,
    log: TcpGenLog,
    syns: Vec<TcpdumpSyn>,
    rule_hits: u64,
    delta: std::collections::HashMap<&'static str, u64>,
    ctx: String,
    cli_ns: u64,
}

fn failed_attempt(rule: &str, client_args: &[&str]) -> Failed {
    let pair = NetnsPair::new();
    few_syn_retries(&pair.cli);
    let port = pair.port();
    let dir = TempDir::new("khf");
    let pcap = dir.join("cli.pcap");
    let table = "tcpq_handshake";
    exec_ok(
        &pair.srv,
        &[
            "nft",
            &format!(
                "table inet {table} {{ chain input {{ type filter hook input priority 0; \
                 policy accept; tcp dport {port} tcp flags & syn == syn counter {rule}; }}; }}"
            ),
        ],
    );
    let guard = Loss::adopt(&pair.srv, table);
    let t = tcpq(&format!(
        "on tcp_connect_attempt where dport == {port} print {ATTEMPT_FIELDS}\n\
         on tcp_syn where dport == {port} print sport, dport, ack, seq, pid, comm"
    ));
    let counters = ["TcpActiveOpens", "TcpAttemptFails", "TcpExtTCPSynRetrans"];
    let before = nstat(&pair.cli, &counters);
    let mut cap = Capture::start(&pair.cli, pair.cli_if(), &format!("tcp port {port}"), &pcap);
    let mut client = Client::start(
        &pair.cli,
        IpAddr::V4(pair.srv_v4()),
        port,
        0,
        client_args,
        dir.path(),
    );
    let log = client.wait(Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(200));
    cap.stop();
    let rule_hits = guard.dropped();
    drop(guard);
    let (events, ctx) = finish(t);
    let after = nstat(&pair.cli, &counters);
    let delta = counters
        .iter()
        .map(|c| (*c, after[*c] - before[*c]))
        .collect();
    let syns = tcpdump_syns(&pcap);
    let ctx = format!(
        "{ctx}\nnstat deltas: {delta:?}\nnft rule hits: {rule_hits}\ngenerator: {log:?}\nSYNs: {syns:#?}"
    );
    Failed {
        attempts: of(&events, "tcp_connect_attempt")
            .into_iter()
            .cloned()
            .collect(),
        syn_events: of(&events, "tcp_syn").into_iter().cloned().collect(),
        log,
        syns,
        rule_hits,
        delta,
        ctx,
        cli_ns: netns_inode(&pair.cli),
    }
}

/// What a failed attempt has in common, whatever the error: one event,
/// from SYN_SENT to CLOSE, with the generator's port, owner and errno, the
/// kernel's counts, and every SYN on the wire as a `tcp_syn` event.
fn check_failed(f: &Failed, end: &str, errno: &str) {
    let ctx = &f.ctx;
    let ended = f.log.all(end);
    assert_eq!(ended.len(), 1, "the generator's `{end}`{ctx}");
    assert_eq!(ended[0]["errno"], errno, "the errno connect() got{ctx}");
    assert_eq!(f.attempts.len(), 1, "{ctx}");
    let e = &f.attempts[0];
    assert_eq!(field_str(e, "oldstate"), "SYN_SENT", "{ctx}");
    assert_eq!(field_str(e, "newstate"), "CLOSE", "{ctx}");
    assert_eq!(err_of(e), errno, "err vs the generator's errno{ctx}");
    assert_eq!(
        field_u64(e, "sport"),
        ended[0]["lport"].as_u64().unwrap(),
        "{ctx}"
    );
    assert_eq!(field_u64(e, "pid"), f.log.pid() as u64, "{ctx}");
    assert_eq!(field_u64(e, "netns"), f.cli_ns, "{ctx}");
    assert_eq!(f.delta["TcpActiveOpens"], 1, "{ctx}");
    assert_eq!(f.delta["TcpAttemptFails"], 1, "{ctx}");
    // Every SYN sent reached the rule, and the wire.
    let sent: Vec<&TcpdumpSyn> = f.syns.iter().filter(|s| !s.is_synack()).collect();
    assert!(!sent.is_empty(), "{ctx}");
    assert_eq!(
        f.rule_hits as usize,
        sent.len(),
        "nft rule vs the wire{ctx}"
    );
    // The SYNs after the first are the retransmissions the kernel counts.
    assert_eq!(
        field_u64(e, "total_retrans"),
        f.delta["TcpExtTCPSynRetrans"],
        "total_retrans vs TcpExtTCPSynRetrans{ctx}"
    );
    assert_eq!(
        field_u64(e, "total_retrans") as usize,
        sent.len() - 1,
        "total_retrans vs the SYNs on the wire{ctx}"
    );
    // tcp_syn saw each of them: the same ISN every time.
    assert_eq!(f.syn_events.len(), sent.len(), "tcp_syn vs the wire{ctx}");
    for (ev, wire) in f.syn_events.iter().zip(&sent) {
        assert!(!field_bool(ev, "ack"), "{ev}{ctx}");
        assert_eq!(field_u64(ev, "seq"), wire.seq, "{ev}{ctx}");
        assert_eq!(field_u64(ev, "sport"), wire.sport as u64, "{ev}{ctx}");
        assert_eq!(field_u64(ev, "pid"), f.log.pid() as u64, "{ev}{ctx}");
    }
    let took = attempt_seconds(&f.log, end)[0];
    let us = field_u64(e, "duration");
    assert!(
        us > 0 && us as f64 <= took * 1e6,
        "duration {us} us vs connect() {took} s{ctx}"
    );
}

#[kernel_test]
fn a_syn_to_a_blackholed_port_times_out_after_the_syns_on_the_wire() {
    let t0 = Instant::now();
    // The client's own timeout far beyond the kernel's (about 3 s).
    let f = failed_attempt("drop", &["--connect-timeout", "20", "--max-seconds", "25"]);
    check_failed(&f, "timeout", "ETIMEDOUT");
    eprintln!(
        "blackholed: err ETIMEDOUT == the generator's, after {} SYNs (total_retrans {}), \
         duration {} us, {:?}",
        f.syns.len(),
        field_u64(&f.attempts[0], "total_retrans"),
        field_u64(&f.attempts[0], "duration"),
        t0.elapsed()
    );
}

#[kernel_test]
fn a_syn_answered_by_icmp_host_unreachable_fails_with_ehostunreach() {
    let t0 = Instant::now();
    // tcp_v4_err() ends the attempt at once, or, when the ICMP error
    // arrives while connect() still holds the socket (on a veth the reply
    // can come back within the send), only notes it (sk_err_soft,
    // TcpExtLockDroppedIcmps) and the kernel fails the attempt with it at
    // the next answer or when the SYN retries run out: EHOSTUNREACH
    // either way. A blocking connect(): with a timeout Python polls and
    // reads SO_ERROR, which hands it the noted error at once, and then it
    // is the application that closes the SYN_SENT socket (err 0 here).
    let f = failed_attempt(
        "reject with icmpx type host-unreachable",
        &["--blocking-connect", "--max-seconds", "25"],
    );
    check_failed(&f, "connect_error", "EHOSTUNREACH");
    eprintln!(
        "ICMP host unreachable: err EHOSTUNREACH == the generator's, {} SYNs, {:?}",
        f.syns.len(),
        t0.elapsed()
    );
}

#[kernel_test]
fn syn_options_match_tcpdump_with_window_scaling_and_timestamps_off_on_the_server() {
    let t0 = Instant::now();
    let pair = NetnsPair::new();
    // The seed's server: no window scaling. Timestamps off there too, so
    // the two SYNs differ in two options (and Linux lays the SYN-ACK's out
    // differently: `mss,nop,nop,sackOK`).
    common::sysctl(&pair.srv, "net.ipv4.tcp_window_scaling", "0");
    common::sysctl(&pair.srv, "net.ipv4.tcp_timestamps", "0");
    let port = pair.port();
    let dir = TempDir::new("khs");
    let pcap = dir.join("cli.pcap");
    let syn_fields = "sport, dport, ack, win, opt_mss, opt_wscale_ok, opt_wscale, opt_sack_ok, \
                      opt_ts, tcp_flags, seq, ack_seq, state, pid, comm, netns, rcv_wnd";
    let t = tcpq(&format!(
        "on tcp_syn where sport == {port} or dport == {port} print {syn_fields}\n\
         on tcp_connect where dport == {port} print sport, wscale_ok, snd_wscale, err\n\
         on tcp_connect_attempt where dport == {port} print sport, newstate, err"
    ));
    let mut cap = Capture::start(&pair.cli, pair.cli_if(), &format!("tcp port {port}"), &pcap);
    // One server on both families; a client over IPv4, then one over IPv6.
    let mut server = Server::start(
        &pair.srv,
        "::".parse().unwrap(),
        port,
        &["--accept", "2"],
        dir.path(),
    );
    let mut logs = Vec::new();
    for addr in [IpAddr::V4(pair.srv_v4()), IpAddr::V6(pair.srv_v6())] {
        let mut c = Client::start(&pair.cli, addr, port, 1000, &[], dir.path());
        logs.push(c.wait(Duration::from_secs(10)));
    }
    let slog = server.wait(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(200));
    cap.stop();
    let (events, ctx) = finish(t);
    let wire = tcpdump_syns(&pcap);
    let ctx = format!("{ctx}\ntcpdump:\n{wire:#?}");

    let lports: BTreeSet<u64> = logs.iter().map(|l| l.lport() as u64).collect();
    assert_eq!(lports.len(), 2, "{logs:?}");
    assert_eq!(wire.len(), 4, "a SYN and a SYN-ACK per connection{ctx}");
    let syns = of(&events, "tcp_syn");
    assert_eq!(syns.len(), wire.len(), "tcp_syn vs the wire{ctx}");
    let (cli_ns, srv_ns) = (netns_inode(&pair.cli), netns_inode(&pair.srv));
    for w in &wire {
        let found: Vec<&&Value> = syns
            .iter()
            .filter(|e| {
                field_u64(e, "sport") == w.sport as u64
                    && field_u64(e, "dport") == w.dport as u64
                    && field_u64(e, "seq") == w.seq
            })
            .collect();
        assert_eq!(found.len(), 1, "the event of {}{ctx}", w.line);
        let e = found[0];
        let at = format!("\n{e}\nvs tcpdump {}{ctx}", w.line);
        assert_eq!(field_bool(e, "ack"), w.is_synack(), "{at}");
        assert_eq!(field_u64(e, "win"), w.win, "{at}");
        assert_eq!(Some(field_u64(e, "opt_mss")), w.mss(), "{at}");
        assert_eq!(field_bool(e, "opt_wscale_ok"), w.wscale().is_some(), "{at}");
        assert_eq!(field_u64(e, "opt_wscale"), w.wscale().unwrap_or(0), "{at}");
        assert_eq!(field_bool(e, "opt_sack_ok"), w.sack_ok(), "{at}");
        assert_eq!(field_bool(e, "opt_ts"), w.ts(), "{at}");
        let ack_seq = field_u64(e, "ack_seq");
        match w.ack {
            Some(a) => assert_eq!(ack_seq, a, "{at}"),
            None => assert_eq!(ack_seq, 0, "{at}"),
        }
        if w.is_synack() {
            // Sent by the request socket, in the server namespace, on
            // behalf of the listener.
            assert_eq!(field_u64(e, "tcp_flags") & 0x12, 0x12, "{at}");
            assert_eq!(field_str(e, "state"), "NEW_SYN_RECV", "{at}");
            assert_eq!(field_u64(e, "netns"), srv_ns, "{at}");
            assert_eq!(field_u64(e, "pid"), slog.pid() as u64, "{at}");
            assert_eq!(field_u64(e, "rcv_wnd"), 0, "no tcp_sock behind it{at}");
        } else {
            assert_eq!(field_u64(e, "tcp_flags") & 0x12, 0x02, "{at}");
            assert_eq!(field_str(e, "state"), "SYN_SENT", "{at}");
            assert_eq!(field_u64(e, "netns"), cli_ns, "{at}");
            assert!(lports.contains(&field_u64(e, "sport")), "{at}");
            assert_eq!(field_str(e, "comm"), "tcpq-writer", "{at}");
            assert!(field_u64(e, "rcv_wnd") > 0, "the client's socket{at}");
        }
    }
    // The seed's evidence in one look: the client offered scaling, the
    // server's answer did not.
    assert!(
        wire.iter()
            .filter(|w| !w.is_synack())
            .all(|w| w.wscale().is_some()),
        "{ctx}"
    );
    assert!(
        wire.iter()
            .filter(|w| w.is_synack())
            .all(|w| w.wscale().is_none()),
        "{ctx}"
    );

    // Successful connects are reported as before, and as attempts.
    let connects = of(&events, "tcp_connect");
    assert_eq!(connects.len(), 2, "{ctx}");
    let got: BTreeSet<u64> = connects.iter().map(|e| field_u64(e, "sport")).collect();
    assert_eq!(got, lports, "{ctx}");
    for e in &connects {
        assert!(!field_bool(e, "wscale_ok"), "{e}{ctx}");
        assert_eq!(err_of(e), "0", "{e}{ctx}");
    }
    let attempts = of(&events, "tcp_connect_attempt");
    assert_eq!(attempts.len(), 2, "{ctx}");
    for e in &attempts {
        assert_eq!(field_str(e, "newstate"), "ESTABLISHED", "{e}{ctx}");
        assert_eq!(err_of(e), "0", "{e}{ctx}");
    }
    eprintln!(
        "SYN options: {} SYN/SYN-ACK events == tcpdump's, {:?}",
        syns.len(),
        t0.elapsed()
    );
}
