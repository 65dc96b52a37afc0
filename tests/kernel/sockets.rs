//! `tcpq sockets` against the kernel's own listing, `ss -tinOepm`, on real
//! connections between network namespaces: every socket, every value.
use crate::common;
use tcpq_kernel_test::kernel_test;

use common::{ss_all, sysctl, Client, NetnsPair, Server, SsLine, TempDir};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

/// `tcpq sockets ARGS...`: (exit code, stdout, stderr).
fn tcpq_sockets(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(common::Tcpq::bin())
        .arg("sockets")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run tcpq sockets");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_rows(ns: &str, query: &str) -> Vec<Value> {
    let (code, out, err) = tcpq_sockets(&["--netns", ns, "--format", "json", query]);
    assert_eq!(code, 0, "tcpq sockets --netns {ns} {query}: {err}");
    common::tcpq::json_lines(&out)
}

/// Every field of `tcpq sockets`, as a print list.
fn all_fields() -> String {
    tcpq_dsl::sockets::SOCKETS_FIELDS
        .iter()
        .map(|f| f.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// C's `printf("%g", x)`, which ss uses for milliseconds: six significant
/// digits, trailing zeros removed.
fn g(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let e: i32 = format!("{x:.5e}")
        .split('e')
        .nth(1)
        .and_then(|e| e.parse().ok())
        .unwrap_or(0);
    assert!((-4..6).contains(&e), "{x} needs an exponent");
    let s = format!("{x:.*}", (5 - e) as usize);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn ms(us: u64) -> String {
    g(us as f64 / 1000.0)
}

/// ss's state names, tcpq's.
fn state(ss: &str) -> &'static str {
    match ss {
        "ESTAB" => "ESTABLISHED",
        "LISTEN" => "LISTEN",
        "TIME-WAIT" => "TIME_WAIT",
        "SYN-SENT" => "SYN_SENT",
        "SYN-RECV" => "SYN_RECV",
        "FIN-WAIT-1" => "FIN_WAIT1",
        "FIN-WAIT-2" => "FIN_WAIT2",
        "CLOSE-WAIT" => "CLOSE_WAIT",
        "LAST-ACK" => "LAST_ACK",
        "CLOSING" => "CLOSING",
        "UNCONN" | "CLOSE" => "CLOSE",
        other => panic!("ss state {other}"),
    }
}

type Key = (String, u16, String, u16);
/// One namespace's sockets: tcpq's rows and ss's lines, by 4-tuple.
type Seen = (BTreeMap<Key, Value>, BTreeMap<Key, SsLine>);

fn key_of_row(r: &Value) -> Key {
    let s = |k: &str| {
        r[k].as_str()
            .unwrap_or_else(|| panic!("{k}: {r}"))
            .to_string()
    };
    let p = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k}: {r}")) as u16;
    (s("saddr"), p("sport"), s("daddr"), p("dport"))
}

fn key_of_ss(s: &SsLine) -> Key {
    (s.local.clone(), s.lport, s.peer.clone(), s.rport)
}

fn u(r: &Value, k: &str) -> u64 {
    r[k].as_u64()
        .unwrap_or_else(|| panic!("tcpq shows no number {k}: {r}"))
}

/// One socket, tcpq's row against ss's line: every value ss prints.
fn compare(r: &Value, s: &SsLine) -> usize {
    let ctx = format!("\ntcpq: {r}\nss:   {}", s.text);
    let mut n = 0;
    let mut eq = |what: &str, a: String, b: String| {
        assert_eq!(a, b, "{what}{ctx}");
        n += 1;
    };
    let st = state(&s.state);
    eq("state", r["state"].as_str().unwrap_or("").into(), st.into());
    eq(
        "cookie",
        u(r, "sock_cookie").to_string(),
        u64::from_str_radix(s.get("sk").expect("ss -e sk"), 16)
            .unwrap()
            .to_string(),
    );
    // Owner: the highest pid holding the socket, as owners.rs documents.
    match s.users.iter().max_by_key(|(_, p)| *p) {
        Some((comm, pid)) => {
            eq("pid", u(r, "pid").to_string(), pid.to_string());
            eq(
                "comm",
                r["comm"].as_str().unwrap_or("").into(),
                comm.clone(),
            );
        }
        None => {
            eq("pid", u(r, "pid").to_string(), "0".into());
            eq("comm", r["comm"].to_string(), "null".into());
        }
    }
    if st == "TIME_WAIT" {
        for k in ["srtt", "uid", "recv_q", "wscale_ok", "rcvbuf"] {
            eq(k, r[k].to_string(), "null".into());
        }
        return n;
    }
    eq(
        "uid",
        u(r, "uid").to_string(),
        s.num("uid").unwrap_or(0).to_string(),
    );
    eq(
        "rcvbuf",
        u(r, "rcvbuf").to_string(),
        s.get("skmem.rb").unwrap().into(),
    );
    eq(
        "sndbuf",
        u(r, "sndbuf").to_string(),
        s.get("skmem.tb").unwrap().into(),
    );
    eq(
        "cwnd",
        u(r, "snd_cwnd").to_string(),
        s.num("cwnd").unwrap_or(0).to_string(),
    );
    if st == "LISTEN" {
        eq("backlog", u(r, "backlog").to_string(), s.recv_q.to_string());
        eq(
            "backlog_max",
            u(r, "backlog_max").to_string(),
            s.send_q.to_string(),
        );
        for k in ["srtt", "rto", "mss", "wscale_ok", "recv_q", "unacked"] {
            eq(k, r[k].to_string(), "null".into());
        }
        return n;
    }
    eq("recv_q", u(r, "recv_q").to_string(), s.recv_q.to_string());
    eq("send_q", u(r, "send_q").to_string(), s.send_q.to_string());
    match s.get("wscale") {
        Some(w) => {
            eq("wscale_ok", r["wscale_ok"].to_string(), "true".into());
            let ws = format!("{},{}", u(r, "snd_wscale"), u(r, "rcv_wscale"));
            eq("wscale", ws, w.into());
        }
        None => {
            eq("wscale_ok", r["wscale_ok"].to_string(), "false".into());
            eq("snd_wscale", u(r, "snd_wscale").to_string(), "0".into());
            eq("rcv_wscale", u(r, "rcv_wscale").to_string(), "0".into());
        }
    }
    match s.get("rto") {
        Some(v) => eq("rto", ms(u(r, "rto")), v.into()),
        None => assert!(
            [0, 3_000_000].contains(&u(r, "rto")),
            "ss omits only 0 or 3 s{ctx}"
        ),
    }
    match s.get("rtt") {
        Some(v) => eq(
            "rtt",
            format!("{}/{}", ms(u(r, "srtt")), ms(u(r, "mdev"))),
            v.into(),
        ),
        None => eq("srtt", u(r, "srtt").to_string(), "0".into()),
    }
    match s.get("minrtt") {
        Some(v) => eq("minrtt", ms(u(r, "min_rtt")), v.into()),
        None => assert!(r["min_rtt"].is_null() || u(r, "min_rtt") == 0, "{ctx}"),
    }
    eq(
        "rcv_rtt",
        ms(u(r, "rcv_rtt")),
        s.get("rcv_rtt").unwrap_or("0").into(),
    );
    let ss_th = s.num("ssthresh").unwrap_or(0);
    let th = u(r, "ssthresh");
    eq(
        "ssthresh",
        (if th < 0xffff { th } else { 0 }).to_string(),
        ss_th.to_string(),
    );
    let (retrans, total) = match s.get("retrans") {
        Some(v) => v.split_once('/').expect("retrans:x/y"),
        None => ("0", "0"),
    };
    eq("retrans", u(r, "retrans").to_string(), retrans.into());
    eq(
        "total_retrans",
        u(r, "total_retrans").to_string(),
        total.into(),
    );
    let busy = |k: &str| {
        s.get(k)
            .map(|v| v.split("ms").next().unwrap().to_string())
            .unwrap_or_else(|| "0".into())
    };
    eq("busy", (u(r, "busy_time") / 1000).to_string(), busy("busy"));
    if u(r, "busy_time") > 0 {
        eq(
            "rwnd_limited",
            (u(r, "rwnd_limited") / 1000).to_string(),
            busy("rwnd_limited"),
        );
        eq(
            "sndbuf_limited",
            (u(r, "sndbuf_limited") / 1000).to_string(),
            busy("sndbuf_limited"),
        );
    }
    // ss prints these as `key:N`, only when N is not 0.
    for (field, key) in [
        ("mss", "mss"),
        ("bytes_acked", "bytes_acked"),
        ("bytes_received", "bytes_received"),
        ("bytes_retrans", "bytes_retrans"),
        ("segs_out", "segs_out"),
        ("segs_in", "segs_in"),
        ("snd_wnd", "snd_wnd"),
        ("rcv_wnd", "rcv_wnd"),
        ("rcv_space", "rcv_space"),
        ("rcv_ssthresh", "rcv_ssthresh"),
        ("unacked", "unacked"),
        ("lost", "lost"),
        ("sacked", "sacked"),
        ("notsent_bytes", "notsent"),
        ("rcv_mss", "rcvmss"),
        ("advmss", "advmss"),
        ("pmtu", "pmtu"),
        ("backoff", "backoff"),
        ("rcv_ooopack", "rcv_ooopack"),
    ] {
        if field == "rcv_wnd" && s.get(key).is_none() {
            // iproute2 before 6.2 does not print it: checked against the
            // peer's snd_wnd instead (see the caller).
            assert!(r[field].is_u64(), "this kernel's tcp_info has rcv_wnd{ctx}");
            continue;
        }
        eq(
            field,
            u(r, field).to_string(),
            s.num(key).unwrap_or(0).to_string(),
        );
    }
    n
}

#[kernel_test]
fn every_socket_and_value_equals_ss() {
    let pair = NetnsPair::new();
    // The server's side does not scale windows: connections to it
    // negotiate no scaling, the loopback one inside the client's does.
    sysctl(&pair.srv, "net.ipv4.tcp_window_scaling", "0");
    let dir = TempDir::new("ksock");
    let port = pair.port();
    let (v4, v6) = (IpAddr::V4(pair.srv_v4()), IpAddr::V6(pair.srv_v6()));
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    let long = ["--max-seconds", "40"];
    let hold = [
        "--max-seconds",
        "40",
        "--hold-seconds",
        "10",
        "--hold-after-ack",
        "30",
    ];
    // A connection that is over: the client closed first, so its end
    // waits in TIME_WAIT (60 s) with no owner and no tcp_info.
    let mut s_tw = Server::start(&pair.srv, v4, port + 3, &long, dir.path());
    let mut c_tw = Client::start(&pair.cli, v4, port + 3, 50_000, &[], dir.path());
    c_tw.wait(Duration::from_secs(10));
    s_tw.wait(Duration::from_secs(10));
    let _s1 = Server::start(&pair.srv, v4, port, &long, dir.path());
    let _s2 = Server::start(&pair.srv, v6, port + 1, &long, dir.path());
    // A small receive buffer on this listener gives the connection it
    // accepts a smaller window scale than its client's: the two sides
    // scale differently, so a swapped snd/rcv_wscale cannot pass.
    let _s3 = Server::start(
        &pair.cli,
        lo,
        port + 2,
        &["--max-seconds", "40", "--rcvbuf", "32768"],
        dir.path(),
    );
    let mut clients = vec![
        Client::start(&pair.cli, v4, port, 300_000, &hold, dir.path()),
        Client::start(&pair.cli, v6, port + 1, 200_000, &hold, dir.path()),
        Client::start(&pair.cli, lo, port + 2, 400_000, &hold, dir.path()),
    ];
    for c in &mut clients {
        c.wait_event("done", Duration::from_secs(15));
    }
    // Every byte is acknowledged: let the readers drain and the last
    // window updates and delayed ACKs go out; then the sockets are idle.
    std::thread::sleep(Duration::from_millis(600));

    let fields = all_fields();
    let mut by_ns: BTreeMap<String, Seen> = BTreeMap::new();
    let mut compared = 0;
    for ns in [&pair.cli, &pair.srv] {
        let rows = json_rows(ns, &format!("print {fields}"));
        let ss = ss_all(ns);
        let tq: BTreeMap<Key, Value> = rows.into_iter().map(|r| (key_of_row(&r), r)).collect();
        let ssm: BTreeMap<Key, SsLine> = ss.into_iter().map(|s| (key_of_ss(&s), s)).collect();
        assert_eq!(
            tq.keys().collect::<Vec<_>>(),
            ssm.keys().collect::<Vec<_>>(),
            "the same sockets in {ns}:\n{}",
            ssm.values()
                .map(|s| s.text.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
        for (k, r) in &tq {
            compared += compare(r, &ssm[k]);
        }
        by_ns.insert(ns.clone(), (tq, ssm));
    }
    let (cli, cli_ss) = &by_ns[&pair.cli];
    let (srv, _) = &by_ns[&pair.srv];
    // What we made is there: 3 listeners, 3 connections (the loopback one
    // with both ends in the client's namespace), one TIME_WAIT.
    let count =
        |m: &BTreeMap<Key, Value>, st: &str| m.values().filter(|r| r["state"] == st).count();
    assert_eq!(
        (count(cli, "ESTABLISHED"), count(srv, "ESTABLISHED")),
        (4, 2),
        "{cli:?}"
    );
    assert_eq!((count(cli, "LISTEN"), count(srv, "LISTEN")), (1, 2));
    assert_eq!(count(cli, "TIME_WAIT"), 1);
    let scaled: Vec<&str> = cli_ss.values().filter_map(|s| s.get("wscale")).collect();
    assert_eq!(scaled.len(), 2, "the loopback connection's ends");
    assert!(
        scaled
            .iter()
            .all(|w| w.split(',').collect::<BTreeSet<_>>().len() == 2),
        "each end scales differently: {scaled:?}"
    );
    assert!(cli_ss
        .values()
        .any(|s| s.state == "ESTAB" && s.get("wscale").is_none()));
    // rcv_wnd, which this ss does not print: what this end last advertised
    // is what its peer holds as snd_wnd. tcp_select_window() keeps the
    // whole window in rcv_wnd but puts at most 65535 << rcv_wscale on the
    // wire: without scaling, rcv_wnd can be far above the 64 KiB the peer
    // sees (the seed story's cap).
    let all: BTreeMap<&Key, &Value> = cli.iter().chain(srv.iter()).collect();
    let mut windows = 0;
    for (k, r) in &all {
        if r["state"] != "ESTABLISHED" {
            continue;
        }
        let peer_key = (k.2.clone(), k.3, k.0.clone(), k.1);
        let peer = all.get(&peer_key).expect("both ends");
        let wire = u(r, "rcv_wnd").min(65535 << u(r, "rcv_wscale"));
        assert_eq!(wire, u(peer, "snd_wnd"), "{r}\n{peer}");
        windows += 1;
    }
    assert_eq!(windows, 6);
    eprintln!(
        "tcpq sockets == ss: {compared} values over {} sockets",
        all.len()
    );

    // The same `where` as a probe's selects exactly the expected sockets.
    let keys = |rows: Vec<Value>| rows.iter().map(key_of_row).collect::<BTreeSet<Key>>();
    let unscaled: BTreeSet<Key> = cli_ss
        .iter()
        .filter(|(_, s)| s.state == "ESTAB" && s.get("wscale").is_none())
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(unscaled.len(), 2, "the v4 and v6 clients");
    // rcv_wscale 0 is also a negotiated scale of 0 (the small-buffer
    // loopback server's end): not the same question as `not wscale_ok`.
    let rcv0: BTreeSet<Key> = cli_ss
        .iter()
        .filter(|(_, s)| s.state == "ESTAB" && s.get("wscale").is_none_or(|w| w.ends_with(",0")))
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(rcv0.len(), 3, "{rcv0:?}");
    assert_eq!(keys(json_rows(&pair.cli, "where rcv_wscale == 0")), rcv0);
    assert_eq!(
        keys(json_rows(
            &pair.cli,
            "where state == ESTABLISHED and not wscale_ok"
        )),
        unscaled
    );
    let q = format!("where dport == {port} and state == ESTABLISHED");
    let one = keys(json_rows(&pair.cli, &q));
    assert_eq!(one.len(), 1, "{one:?}");
    assert_eq!(one.iter().next().unwrap().3, port);
    // Several arguments are one query, and without --netns every namespace
    // is listed: ours among them, found by its inode.
    let inode = u(&cli.values().next().unwrap().clone(), "netns");
    let (code, out, err) = tcpq_sockets(&[
        "--format",
        "json",
        "where",
        "netns",
        "==",
        &inode.to_string(),
        "and",
        "dport",
        "==",
        &port.to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    let rows = common::tcpq::json_lines(&out);
    assert_eq!(keys(rows), one);
    // TIME_WAIT has no tcp_info: a filter on it does not list it, and
    // pid 0 finds what nobody holds.
    let tw = keys(json_rows(&pair.cli, "where state == TIME_WAIT"));
    assert_eq!(tw.len(), 1);
    assert!(keys(json_rows(
        &pair.cli,
        "where srtt < 10s and state == TIME_WAIT"
    ))
    .is_empty());
    assert_eq!(keys(json_rows(&pair.cli, "where pid == 0")), tw);
    // Text: a header and one aligned row per socket.
    let (code, out, _) = tcpq_sockets(&["--netns", &pair.cli]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1 + cli.len(), "{out}");
    assert!(
        lines[0]
            .split_whitespace()
            .eq(tcpq_dsl::sockets::DEFAULT_COLUMNS.iter().copied()),
        "{out}"
    );
}

/// A namespace listed a moment ago that is gone when its turn comes (a
/// test's or a container's, deleted meanwhile) is skipped with a note when
/// tcpq lists every namespace, and is an error when it was asked for.
#[kernel_test]
fn a_namespace_gone_since_it_was_listed_is_skipped_unless_asked_for() {
    let pair = NetnsPair::new();
    let all = tcpq_runtime::netns::list().unwrap();
    let gone = all
        .iter()
        .find(|n| n.names.contains(&pair.srv))
        .expect("the test's namespace is listed")
        .clone();
    common::run_ok("ip", &["netns", "del", &pair.srv]);
    let query = tcpq_dsl::compile_sockets("where state == LISTEN").unwrap();
    let listing = tcpq_runtime::sockets::list(&query, &all, true).expect("every namespace");
    assert!(
        listing
            .notes
            .iter()
            .any(|n| n.contains("could not be entered")),
        "{:?}",
        listing.notes
    );
    assert!(!listing.namespaces.iter().any(|(i, _)| *i == gone.inode));
    let asked = tcpq_runtime::sockets::list(&query, std::slice::from_ref(&gone), false);
    assert!(asked.is_err(), "a namespace asked for and gone is an error");
}
