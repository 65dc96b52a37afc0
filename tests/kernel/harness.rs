//! Self-test of the kernel-test harness (tests/kernel/common): no tcpq involved.
//!
//! Ground truth used here is the kernel's and the wire's own:
//! - the packets tcpdump captured on the server's veth (zero-window ACKs,
//!   the SYN-ACK's options),
//! - the namespace's SNMP counters via `nstat` (TcpExtTCPToZeroWindowAdv,
//!   TcpRetransSegs),
//! - the `tcp:tcp_retransmit_skb` tracepoint in a private tracefs instance,
//! - the nft rule's own drop counter.

use crate::common;
use tcpq_kernel_test::kernel_test;

use common::capture::{summary, tcpdump_read};
use common::tcpgen::slow_reader_exchange;
use common::{nstat, ss_ti, sysctl, Capture, Client, NetnsPair, Server, TempDir, TraceInstance};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Filter for zero-window segments sent by the server on `port`: window
/// field 0, not a SYN (handshake) and not a RST (a RST's window is 0).
fn zero_window_filter(port: u16) -> String {
    format!("tcp src port {port} and tcp[14:2] == 0 and tcp[tcpflags] & (tcp-syn|tcp-rst) == 0")
}

fn assert_namespaces_gone(names: &[String]) {
    let left: Vec<String> = common::netns::list_namespaces()
        .into_iter()
        .filter(|n| names.contains(n))
        .collect();
    assert!(left.is_empty(), "namespaces not removed: {left:?}");
}

/// The seed outage: window scaling off on the receiving host, a reader that
/// accepts but does not read for a while and then reads slowly, a fast
/// writer. The receiver must advertise a zero window, say so in its
/// counters, and its SYN-ACK must carry no window-scale option.
#[kernel_test]
fn zero_window_reproduced_with_wscale_off() {
    let t0 = Instant::now();
    let pair = NetnsPair::new();
    let names = vec![pair.cli.clone(), pair.srv.clone()];
    sysctl(&pair.srv, "net.ipv4.tcp_window_scaling", "0");
    let port = pair.port();
    let dir = TempDir::new("zw");
    let pcap = dir.join("srv.pcap");

    let before = nstat(
        &pair.srv,
        &["TcpExtTCPToZeroWindowAdv", "TcpExtTCPWantZeroWindowAdv"],
    );
    let mut cap = Capture::start(&pair.srv, pair.srv_if(), &format!("tcp port {port}"), &pcap);
    let (wlog, rlog) = slow_reader_exchange(&pair, port, "1.0", dir.path());
    let ss = ss_ti(&pair.srv);
    let stats = cap.stop();
    let after = nstat(
        &pair.srv,
        &["TcpExtTCPToZeroWindowAdv", "TcpExtTCPWantZeroWindowAdv"],
    );

    assert_eq!(wlog.bytes(), 1 << 20, "writer log {wlog:?}");
    assert_eq!(rlog.bytes(), 1 << 20, "reader log {rlog:?}");
    assert_eq!(rlog.comm(), "tcpq-reader");
    assert_eq!(wlog.comm(), "tcpq-writer");
    assert_eq!(
        stats.dropped_by_kernel, 0,
        "tcpdump dropped packets: {}",
        stats.stderr
    );
    assert_eq!(
        common::count(&pcap, "") as u64,
        stats.captured,
        "the pcap file lacks packets tcpdump captured: {}",
        stats.stderr
    );

    // The wire: zero-window segments from the server, counted two ways.
    let zw_tcpdump = common::count(&pcap, &zero_window_filter(port));
    let pkts = common::packets(&pcap);
    let zw_decoded = pkts
        .iter()
        .filter(|p| p.sport == port && p.win == 0 && !p.syn() && !p.rst())
        .count();
    assert!(
        zw_tcpdump > 0,
        "no zero-window segments captured\n{}\nss:\n{ss}",
        summary(&pkts)
    );
    assert_eq!(
        zw_tcpdump, zw_decoded,
        "tcpdump filter and pcap decoder disagree"
    );

    // The SYN-ACK carries no wscale (the client's SYN does).
    let synack_text = tcpdump_read(
        &pcap,
        &["-v"],
        &format!("tcp src port {port} and tcp[tcpflags] & tcp-syn != 0"),
    );
    assert!(
        synack_text.contains("mss"),
        "SYN-ACK options not shown: {synack_text}"
    );
    assert!(
        !synack_text.contains("wscale"),
        "SYN-ACK has wscale: {synack_text}"
    );
    let syn = pkts
        .iter()
        .find(|p| p.dport == port && p.syn())
        .expect("client SYN");
    assert!(
        syn.wscale.is_some(),
        "client SYN should offer wscale: {syn:?}"
    );
    let synack = pkts
        .iter()
        .find(|p| p.sport == port && p.syn())
        .expect("SYN-ACK");
    assert_eq!(synack.wscale, None);
    // Without scaling the advertised window is the byte count: capped at
    // 65535 although the receive buffer is larger.
    let max_win = pkts
        .iter()
        .filter(|p| p.sport == port)
        .map(|p| p.win)
        .max()
        .unwrap_or(0);

    // The counters: the namespace says it went to zero window.
    let to_zero = after["TcpExtTCPToZeroWindowAdv"] - before["TcpExtTCPToZeroWindowAdv"];
    let want_zero = after["TcpExtTCPWantZeroWindowAdv"] - before["TcpExtTCPWantZeroWindowAdv"];
    assert!(
        to_zero > 0,
        "TcpExtTCPToZeroWindowAdv did not move: {before:?} -> {after:?}"
    );
    eprintln!(
        "zero-window: {zw_tcpdump} segments on the wire, TCPToZeroWindowAdv +{to_zero}, \
         TCPWantZeroWindowAdv +{want_zero}, {} packets captured, max server window {max_win}, {:?} total",
        pkts.len(),
        t0.elapsed()
    );
    drop(cap);
    drop(pair);
    assert_namespaces_gone(&names);
}

/// Wire loss of 10% of what the client sends makes the client retransmit;
/// its namespace counts it, the tracepoint sees it, the nft rule counted
/// drops.
#[kernel_test]
fn loss_makes_the_sender_retransmit() {
    let t0 = Instant::now();
    let pair = NetnsPair::new();
    let names = vec![pair.cli.clone(), pair.srv.clone()];
    let port = pair.port();
    let dir = TempDir::new("loss");
    // ~4 MSS per packet: ~180 packets for 1 MiB, so 10% loss drops some.
    pair.set_gso_max_segs(&pair.cli, 4);
    let loss = pair.add_loss(&pair.cli, 10);
    assert_eq!(
        loss.ns, pair.srv,
        "wire loss is installed on the receiving side"
    );
    let trace = TraceInstance::new(&[("tcp/tcp_retransmit_skb", &format!("dport == {port}"))]);
    let before = nstat(&pair.cli, &["TcpRetransSegs", "TcpOutSegs"]);
    let srv_before = nstat(&pair.srv, &["TcpExtTCPOFOQueue"]);

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
        &["--max-seconds", "8", "--hold-seconds", "8"],
        dir.path(),
    );
    let wlog = client.wait_event("done", Duration::from_secs(10));
    // All data acked and the socket still open: no retransmission pending.
    let after = nstat(&pair.cli, &["TcpRetransSegs", "TcpOutSegs"]);
    trace.stop();
    let wlog_final = client.wait(Duration::from_secs(10));
    let rlog = server.wait(Duration::from_secs(10));
    let dropped = loss.dropped();
    let srv_after = nstat(&pair.srv, &["TcpExtTCPOFOQueue"]);
    let ofo = srv_after["TcpExtTCPOFOQueue"] - srv_before["TcpExtTCPOFOQueue"];

    assert_eq!(wlog.bytes(), 1 << 20, "writer {wlog:?}");
    assert_eq!(wlog.get("done").unwrap()["unacked"], 0, "writer {wlog:?}");
    assert_eq!(rlog.bytes(), 1 << 20, "reader {rlog:?}");
    assert!(wlog_final.get("closed").is_some());
    let retrans = after["TcpRetransSegs"] - before["TcpRetransSegs"];
    let out = after["TcpOutSegs"] - before["TcpOutSegs"];
    let events = trace.events();
    let ok_events = events.iter().filter(|e| e.get("err") == "0").count();
    let mut errs: Vec<&str> = events.iter().map(|e| e.get("err")).collect();
    errs.sort();
    errs.dedup();
    assert!(dropped > 0, "the nft rule dropped nothing");
    // Wire loss leaves holes: later segments arrive before the lost one.
    // (The output-hook test below asserts the opposite.)
    assert!(
        ofo > 0,
        "{dropped} packets lost on the wire but the receiver queued nothing out of order"
    );
    assert!(
        retrans > 0,
        "TcpRetransSegs did not move: {before:?} -> {after:?}\n{}",
        ss_ti(&pair.cli)
    );
    assert!(
        ok_events > 0,
        "tracefs saw no tcp_retransmit_skb for dport {port}"
    );
    assert!(
        ok_events as u64 <= retrans,
        "more successful retransmit events ({ok_events}) than retransmitted segments ({retrans})"
    );
    assert!(events
        .iter()
        .all(|e| e.get("sport") == wlog.lport().to_string()));
    eprintln!(
        "loss 10%: nft dropped {dropped} packets, receiver TcpExtTCPOFOQueue +{ofo}, \
         TcpRetransSegs +{retrans} of TcpOutSegs +{out}, \
         tcp_retransmit_skb events {} ({ok_events} with err=0; err values {errs:?}; overruns {}), {:?} total",
        events.len(),
        trace.overruns(),
        t0.elapsed()
    );
    drop(trace);
    drop(loss);
    drop(server);
    drop(client);
    drop(pair);
    assert_namespaces_gone(&names);
}

/// A test that panics halfway still removes its namespaces (Drop guards
/// run during unwinding), including a process left running inside.
#[kernel_test]
fn panicking_test_cleans_up() {
    let names = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let stray = std::sync::Arc::new(std::sync::Mutex::new(None));
    let (n2, s2) = (names.clone(), stray.clone());
    let r = std::thread::spawn(move || {
        let pair = NetnsPair::new();
        n2.lock()
            .unwrap()
            .extend([pair.cli.clone(), pair.srv.clone()]);
        let _loss = pair.add_loss(&pair.srv, 50);
        // A stray process inside the namespace, not owned by any guard.
        let child = std::process::Command::new("ip")
            .args(["netns", "exec", &pair.srv, "sleep", "30"])
            .spawn()
            .unwrap();
        *s2.lock().unwrap() = Some(child);
        panic!("deliberate panic inside a test with live namespaces");
    })
    .join();
    assert!(r.is_err());
    let names = names.lock().unwrap().clone();
    assert_eq!(names.len(), 2);
    assert_namespaces_gone(&names);
    // The namespace's Drop killed the stray process.
    let mut child = stray.lock().unwrap().take().expect("stray child");
    let st = common::wait_for(Duration::from_secs(2), || child.try_wait().ok().flatten());
    if st.is_none() {
        let _ = child.kill();
    }
    let _ = child.wait();
    assert!(
        st.is_some(),
        "a process inside the deleted namespace survived"
    );
}

/// The surprise behind `add_loss`'s design: drops in the sender's own nft
/// output hook are reported to TCP as local errors (`tcp_transmit_skb`
/// fails), so the segment stays queued and is sent again without being
/// counted as a retransmission. The same 10% drop rate, once in the sender's
/// output hook and once on the receiving side, on the same pair, compared
/// per drop in one run because the absolute numbers vary. Measured on the
/// dev VM (2026-12-05, 4 MiB transfers, 12 runs): retransmissions per drop
/// 0.04-0.73 in the output hook against 3.8-4.5 on the receiving side. The
/// receiver's out-of-order count is printed but not asserted: local drops
/// leave holes too (0.05-1.6 out-of-order segments per drop against
/// 1.9-3.4 for receiving-side drops, nearly overlapping), an
/// earlier version of this test that compared holes failed on CI.
#[kernel_test]
fn output_hook_drops_are_not_wire_loss() {
    let pair = NetnsPair::new();
    let dir = TempDir::new("outdrop");
    pair.set_gso_max_segs(&pair.cli, 4);
    // One transfer under `loss`; returns (dropped, ofo, retrans).
    const BYTES: u64 = 4 << 20;
    let transfer = |loss: common::Loss, port: u16, tag: &str| -> (u64, u64, u64) {
        let before = nstat(&pair.cli, &["TcpRetransSegs"]);
        let srv_before = nstat(&pair.srv, &["TcpExtTCPOFOQueue"]);
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
            BYTES,
            &["--max-seconds", "8", "--hold-seconds", "8"],
            dir.path(),
        );
        let wlog = client.wait_event("done", Duration::from_secs(10));
        let after = nstat(&pair.cli, &["TcpRetransSegs"]);
        let srv_after = nstat(&pair.srv, &["TcpExtTCPOFOQueue"]);
        client.wait(Duration::from_secs(10));
        let rlog = server.wait(Duration::from_secs(10));
        let dropped = loss.dropped();
        drop(loss);
        assert_eq!(rlog.bytes(), BYTES, "{tag}: {wlog:?} {rlog:?}");
        assert!(dropped > 0, "{tag}: the rule dropped nothing");
        let retrans = after["TcpRetransSegs"] - before["TcpRetransSegs"];
        let ofo = srv_after["TcpExtTCPOFOQueue"] - srv_before["TcpExtTCPOFOQueue"];
        eprintln!(
            "{tag} 10%: dropped {dropped} packets, receiver TcpExtTCPOFOQueue +{ofo}, \
             sender TcpRetransSegs +{retrans}"
        );
        (dropped, ofo, retrans)
    };
    let port = pair.port();
    let (out_d, out_ofo, out_re) =
        transfer(pair.add_output_drop(&pair.cli, 10), port, "output hook");
    let (wire_d, wire_ofo, wire_re) =
        transfer(pair.add_loss(&pair.cli, 10), port + 1, "receiving side");
    // Per-drop rates, compared by cross-multiplying (no float rounding).
    assert!(
        wire_ofo > 0,
        "{wire_d} lost on the wire but the receiver queued nothing out of order"
    );
    assert!(
        out_re * wire_d * 2 < wire_re * out_d,
        "output-hook drops were retransmitted like wire loss: {out_re} per {out_d} drops, \
         against {wire_re} per {wire_d} on the wire (out-of-order: {out_ofo} against {wire_ofo})"
    );
}

/// The pair is wired as documented: a TCP transfer over IPv6 (client to
/// server), and per-netns sysctls really are per netns.
#[kernel_test]
fn pair_ipv6_and_sysctls() {
    let pair = NetnsPair::new();
    let dir = TempDir::new("v6");
    let port = pair.port();
    let addrs = common::exec_ok(
        &pair.srv,
        &["ip", "-br", "addr", "show", "dev", pair.srv_if()],
    );
    assert!(addrs.contains(&format!("{}/24", pair.srv_v4())), "{addrs}");
    assert!(addrs.contains(&format!("{}/64", pair.srv_v6())), "{addrs}");
    let mut server = Server::start(
        &pair.srv,
        IpAddr::V6(pair.srv_v6()),
        port,
        &["--max-seconds", "5"],
        dir.path(),
    );
    let mut client = Client::start(
        &pair.cli,
        IpAddr::V6(pair.srv_v6()),
        port,
        100_000,
        &["--max-seconds", "5"],
        dir.path(),
    );
    assert_eq!(client.wait(Duration::from_secs(6)).bytes(), 100_000);
    let rlog = server.wait(Duration::from_secs(6));
    assert_eq!(rlog.bytes(), 100_000);
    assert_eq!(
        rlog.get("accepted").unwrap()["peer"],
        pair.cli_v6().to_string()
    );

    sysctl(&pair.srv, "net.ipv4.tcp_window_scaling", "0");
    assert_eq!(
        common::exec_ok(&pair.cli, &["sysctl", "-n", "net.ipv4.tcp_window_scaling"]).trim(),
        "1"
    );
    let counters = nstat(&pair.cli, &[]);
    assert!(counters.contains_key("TcpRetransSegs"), "{counters:?}");
}
