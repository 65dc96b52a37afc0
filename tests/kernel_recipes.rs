//! Every recipe in `recipes/` runs in the kernel suite, against real
//! traffic, and its output is checked: the declared columns are present and,
//! where a value has ground truth, it matches (the generator's log, nstat,
//! the nft loss counter).
//!
//! One scenario exercises them all at once: window scaling off on the
//! server, a reader that idles 1 s (zero windows), 10% wire loss on the
//! writer's data (retransmissions), a 1 MiB transfer held open until
//! acknowledged, then a connection attempt to the same port once nobody
//! listens (a reset and a NO_SOCKET drop). A recipe whose port is optional
//! (`tcpretrans`, `tcpconnect`) runs both with the port and without it,
//! and this pair's rows agree. A second test runs the
//! negotiation recipe over two pairs, with and without scaling.
//!
//! Needs root; skipped otherwise, and failing instead when `CI` is set.

mod common;

use common::tcpq::{field_bool, field_str, field_u64, json_lines};
use common::{nstat, sysctl, Client, NetnsPair, Server, Tcpq, TempDir};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn recipes() -> Vec<PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("recipes/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "tcpq"))
        .collect();
    v.sort();
    v
}

fn name(p: &std::path::Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

/// The columns a recipe prints (its `print` lists), from the file.
fn columns(p: &std::path::Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(p).unwrap();
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ");
    body.split(" on ")
        .filter_map(|c| c.split_once("print ").map(|(_, f)| f))
        .map(|f| f.split(',').map(|s| s.trim().to_string()).collect())
        .collect()
}

fn takes_port(p: &std::path::Path) -> bool {
    std::fs::read_to_string(p)
        .unwrap()
        .contains("# @param port:")
}

/// Whether the recipe's port is optional (`# @param port: port?`): it
/// then runs a second time, without it.
fn port_optional(p: &std::path::Path) -> bool {
    std::fs::read_to_string(p)
        .unwrap()
        .contains("# @param port: port?")
}

#[test]
fn every_recipe_runs_against_real_traffic() {
    if !common::require_root() {
        return;
    }
    let t0 = Instant::now();
    const N: u64 = 1 << 20;
    let pair = NetnsPair::new();
    sysctl(&pair.srv, "net.ipv4.tcp_window_scaling", "0");
    pair.set_gso_max_segs(&pair.cli, 4);
    let port = pair.port();
    let dir = TempDir::new("krc");
    let port_s = format!("port={port}");
    let mut running: Vec<(PathBuf, Tcpq)> = recipes()
        .into_iter()
        .map(|r| {
            let mut args = vec![r.to_str().unwrap(), "--format", "json"];
            if takes_port(&r) {
                args.extend(["--param", &port_s]);
            }
            let t = Tcpq::spawn(&args);
            (r, t)
        })
        .collect();
    // Recipes whose port is optional, also without it: every port.
    let mut unfiltered: Vec<(String, Tcpq)> = recipes()
        .into_iter()
        .filter(|r| port_optional(r))
        .map(|r| {
            let t = Tcpq::spawn(&[r.to_str().unwrap(), "--format", "json"]);
            (name(&r), t)
        })
        .collect();
    assert!(
        unfiltered.len() >= 2,
        "tcpretrans and tcpconnect take an optional port"
    );
    for t in running
        .iter_mut()
        .map(|(_, t)| t)
        .chain(unfiltered.iter_mut().map(|(_, t)| t))
    {
        t.wait_attached(Duration::from_secs(10));
    }
    let cli0 = nstat(&pair.cli, &["TcpRetransSegs"]);
    let srv0 = nstat(&pair.srv, &["TcpRetransSegs"]);
    let loss = pair.add_loss(&pair.cli, 10);
    let mut server = Server::start(
        &pair.srv,
        IpAddr::V4(pair.srv_v4()),
        port,
        &["--idle-before-read", "1.0", "--read-size", "16384"],
        dir.path(),
    );
    let mut client = Client::start(
        &pair.cli,
        IpAddr::V4(pair.srv_v4()),
        port,
        N,
        &[
            "--max-seconds",
            "10",
            "--hold-seconds",
            "10",
            "--hold-after-ack",
            "0.5",
        ],
        dir.path(),
    );
    let wlog = client.wait(Duration::from_secs(15));
    let rlog = server.wait(Duration::from_secs(10));
    drop(loss);
    // Nobody listens any more: refused, with a reset and a NO_SOCKET drop.
    let mut refused = Client::start(
        &pair.cli,
        IpAddr::V4(pair.srv_v4()),
        port,
        0,
        &["--connect-timeout", "2"],
        dir.path(),
    );
    let flog = refused.wait(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(wlog.bytes(), N, "{wlog:?}");
    assert_eq!(rlog.bytes(), N, "{rlog:?}");
    assert_eq!(flog.all("refused").len(), 1, "{flog:?}");
    let (lport, rpid, wpid) = (wlog.lport() as u64, rlog.pid() as u64, wlog.pid() as u64);
    // Both ends retransmit (the receiver its FIN, when the ACK of it was
    // lost), possibly after the transfer: wait until no socket of the pair
    // can retransmit any more (only TIME_WAIT left), then count both
    // namespaces, before tcpq stops watching.
    let settled = common::wait_for(Duration::from_secs(15), || {
        let busy = [&pair.cli, &pair.srv].iter().any(|ns| {
            common::exec_ok(
                ns,
                &[
                    "ss",
                    "-tanH",
                    "state",
                    "fin-wait-1",
                    "state",
                    "last-ack",
                    "state",
                    "closing",
                ],
            )
            .lines()
            .any(|l| !l.trim().is_empty())
        });
        (!busy).then_some(())
    });
    assert!(settled.is_some(), "sockets still closing after 15 s");
    let retrans = nstat(&pair.cli, &["TcpRetransSegs"])["TcpRetransSegs"] - cli0["TcpRetransSegs"]
        + nstat(&pair.srv, &["TcpRetransSegs"])["TcpRetransSegs"]
        - srv0["TcpRetransSegs"];

    // Without the port: every connection on the machine (another test's
    // traffic too), so only this pair's rows are compared.
    let mut all_ports: BTreeMap<String, (Vec<Value>, String)> = BTreeMap::new();
    for (r, mut t) in unfiltered {
        let (st, stdout, stderr) = t.stop(Duration::from_secs(5));
        assert!(st.success(), "{r} without a port: {st}\n{stderr}");
        all_ports.insert(r, (json_lines(&stdout), stdout));
    }
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (r, mut t) in running {
        let (st, stdout, stderr) = t.stop(Duration::from_secs(5));
        let ev = json_lines(&stdout);
        let ctx = format!(
            "\n{} ({st})\nstdout:\n{stdout}\nstderr:\n{stderr}",
            r.display()
        );
        assert!(!ev.is_empty(), "recipe printed nothing{ctx}");
        // Every printed line carries the columns its clause declares.
        let cols = columns(&r);
        for e in &ev {
            let obj = e.as_object().unwrap();
            assert!(
                cols.is_empty() || cols.iter().any(|c| c.iter().all(|k| obj.contains_key(k))),
                "columns {cols:?} missing in {e}{ctx}"
            );
        }
        out.insert(name(&r), ev);
    }
    let ctx = |r: &str| format!("\n{r}: {:#?}", out[r]);
    let srv_events = |r: &str| -> Vec<&Value> {
        out[r]
            .iter()
            .filter(|e| field_u64(e, "sport") == port as u64)
            .collect()
    };

    // Ground truth per recipe.
    for e in &out["zero-window"] {
        assert_eq!(field_u64(e, "pid"), rpid, "{}", ctx("zero-window"));
        assert!(!field_bool(e, "wscale_ok"));
    }
    for e in &out["window-scaling"] {
        assert!(!field_bool(e, "wscale_ok"), "{}", ctx("window-scaling"));
        assert!(
            field_u64(e, "win_bytes") <= 65535,
            "{}",
            ctx("window-scaling")
        );
    }
    let neg = &out["wscale-negotiation"];
    let (syns, settled): (Vec<&Value>, Vec<&Value>) =
        neg.iter().partition(|e| e["probe"] == "tcp_syn");
    assert_eq!(
        settled.len(),
        2,
        "one connect, one accept{}",
        ctx("wscale-negotiation")
    );
    assert!(
        settled.iter().all(|e| !field_bool(e, "wscale_ok")),
        "{}",
        ctx("wscale-negotiation")
    );
    // The transfer's SYN offers scaling, the server's SYN-ACK does not;
    // the refused attempt's SYN offers it too.
    let offers: Vec<(bool, bool)> = {
        let mut v: Vec<_> = syns
            .iter()
            .map(|e| (field_bool(e, "ack"), field_bool(e, "opt_wscale_ok")))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        offers,
        [(false, true), (false, true), (true, false)],
        "{}",
        ctx("wscale-negotiation")
    );
    for e in &out["socket-summary"] {
        assert!(!field_bool(e, "wscale_ok"), "{}", ctx("socket-summary"));
        assert!(field_u64(e, "snd_cwnd") > 0, "{}", ctx("socket-summary"));
    }
    let mut read_total = 0i64;
    for e in &out["windows-on-read"] {
        assert_eq!(field_u64(e, "pid"), rpid, "{}", ctx("windows-on-read"));
        assert!(field_u64(e, "rcvbuf") > 0, "{}", ctx("windows-on-read"));
        let ret = e["ret"].as_i64().expect("ret");
        assert!(
            ret <= field_u64(e, "size") as i64,
            "{}",
            ctx("windows-on-read")
        );
        read_total += ret.max(0);
    }
    // Every byte the reader's log counts came through a receive call.
    assert_eq!(
        read_total as u64,
        rlog.bytes(),
        "{}",
        ctx("windows-on-read")
    );
    // Size histograms against the generator's own call sizes: the writer
    // asks for min(65536, bytes left) per send(), the reader offers
    // --read-size 16384 per recv().
    let hist_of = |recipe: &str, comm: &str| -> Vec<(u64, u64, u64)> {
        out[recipe]
            .iter()
            .filter(|e| e["comm"] == comm)
            .flat_map(|e| e["buckets"].as_array().cloned().unwrap_or_default())
            .map(|b| {
                (
                    field_u64(&b, "min"),
                    field_u64(&b, "max"),
                    field_u64(&b, "count"),
                )
            })
            .collect()
    };
    let sends = hist_of("send-sizes", "tcpq-writer");
    let n_sends: u64 = sends.iter().map(|b| b.2).sum();
    assert!(n_sends >= N / 65536, "{n_sends} sends{}", ctx("send-sizes"));
    assert!(
        sends
            .iter()
            .all(|&(min, _, count)| count == 0 || min <= 65536),
        "a send asked for more than 64 KiB{}",
        ctx("send-sizes")
    );
    let recvs = hist_of("recv-sizes", "tcpq-reader");
    let n_recvs: u64 = recvs.iter().map(|b| b.2).sum();
    assert!(n_recvs >= N / 16384, "{n_recvs} reads{}", ctx("recv-sizes"));
    assert!(
        recvs
            .iter()
            .all(|&(min, max, count)| count == 0 || (min <= 16384 && 16384 <= max)),
        "a read offered other than 16384 bytes{}",
        ctx("recv-sizes")
    );
    // Two attempts on the port: the transfer's, established, and the
    // refused one, each with its own process and local port.
    let attempt = |c: &[Value]| -> Vec<(u64, u64, String, String)> {
        let mut v: Vec<_> = c
            .iter()
            .map(|e| {
                let err = match &e["err"] {
                    Value::String(n) => n.clone(),
                    v => v.to_string(),
                };
                (
                    field_u64(e, "pid"),
                    field_u64(e, "dport"),
                    field_str(e, "newstate"),
                    err,
                )
            })
            .collect();
        v.sort();
        v
    };
    let mut want_attempts = vec![
        (
            wpid,
            port as u64,
            "ESTABLISHED".to_string(),
            "0".to_string(),
        ),
        (
            flog.pid() as u64,
            port as u64,
            "CLOSE".to_string(),
            flog.get("refused").unwrap()["errno"]
                .as_str()
                .unwrap()
                .to_string(),
        ),
    ];
    want_attempts.sort();
    let c = &out["tcpconnect"];
    assert_eq!(attempt(c), want_attempts, "{}", ctx("tcpconnect"));
    assert!(
        c.iter()
            .all(|e| field_str(e, "daddr") == pair.srv_v4().to_string()),
        "{}",
        ctx("tcpconnect")
    );
    let a = &out["tcpaccept"];
    assert_eq!(a.len(), 1, "{}", ctx("tcpaccept"));
    assert_eq!(field_u64(&a[0], "dport"), lport, "{}", ctx("tcpaccept"));
    // One event per retransmitted skb, each of >= 1 segment.
    let rt = &out["tcpretrans"];
    let segs: u64 = rt.iter().map(|e| field_u64(e, "segs")).sum();
    assert!(retrans > 0, "the lossy transfer retransmitted nothing");
    assert_eq!(
        segs,
        retrans,
        "sum(segs) vs TcpRetransSegs{}",
        ctx("tcpretrans")
    );
    // The recipe takes no port: other traffic on the machine may count
    // too, so only this pair's rows are compared.
    // The optional port, both ways: with it, only this pair's
    // retransmissions; without it, this pair's are the same ones (and
    // other connections' may come too).
    let ours =
        |e: &Value| field_u64(e, "sport") == port as u64 || field_u64(e, "dport") == port as u64;
    assert!(rt.iter().all(ours), "{}", ctx("tcpretrans"));
    let (every, text) = &all_ports["tcpretrans"];
    let pair_rows: Vec<&Value> = every.iter().filter(|e| ours(e)).collect();
    assert_eq!(
        pair_rows.len(),
        rt.len(),
        "tcpretrans without a port: this pair's rows != with --param port\n{text}{}",
        ctx("tcpretrans")
    );
    let every_segs: u64 = pair_rows.iter().map(|e| field_u64(e, "segs")).sum();
    assert_eq!(every_segs, retrans, "tcpretrans without a port\n{text}");
    let (every, text) = &all_ports["tcpconnect"];
    let pair_rows: Vec<&Value> = every
        .iter()
        .filter(|e| {
            field_u64(e, "dport") == port as u64
                && field_str(e, "daddr") == pair.srv_v4().to_string()
        })
        .collect();
    let pair_rows: Vec<Value> = pair_rows.into_iter().cloned().collect();
    assert_eq!(
        attempt(&pair_rows),
        want_attempts,
        "tcpconnect without a port\n{text}"
    );
    let count: u64 = out["retransmits"]
        .iter()
        .filter(|e| field_u64(e, "dport") == port as u64 || field_u64(e, "dport") == lport)
        .map(|e| field_u64(e, "count"))
        .sum();
    assert_eq!(count as usize, rt.len(), "{}", ctx("retransmits"));
    let life = &out["tcplife"];
    // Three closes: both ends of the transfer and the refused attempt
    // (SYN_SENT -> CLOSE), which moved nothing.
    assert_eq!(life.len(), 3, "{}", ctx("tcplife"));
    let cli_life = life
        .iter()
        .find(|e| field_u64(e, "sport") == lport)
        .unwrap();
    let srv_life = life
        .iter()
        .find(|e| field_u64(e, "sport") == port as u64)
        .unwrap();
    let refused_port = flog.get("refused").unwrap()["lport"].as_u64().unwrap();
    let no_life = life
        .iter()
        .find(|e| field_u64(e, "sport") == refused_port)
        .unwrap();
    assert_eq!(field_u64(no_life, "bytes_acked"), 0, "{}", ctx("tcplife"));
    assert_eq!(
        field_u64(cli_life, "bytes_acked"),
        N + 2,
        "SYN + data + FIN{}",
        ctx("tcplife")
    );
    assert_eq!(
        field_u64(srv_life, "bytes_received"),
        N + 1,
        "data + FIN{}",
        ctx("tcplife")
    );
    let drops: Vec<_> = srv_events("tcpdrop")
        .into_iter()
        .filter(|e| field_str(e, "reason") == "NO_SOCKET")
        .collect();
    assert_eq!(drops.len(), 1, "the refused SYN{}", ctx("tcpdrop"));
    assert!(
        out["tcprtt"].iter().all(|e| field_u64(e, "srtt") > 0),
        "{}",
        ctx("tcprtt")
    );
    // tcpstates: the moves of four sockets end in CLOSE (both ends of the
    // transfer, the refused attempt, the listener). The three alive at the
    // same time have three skaddrs (the refused attempt's socket came after
    // the listener was freed and may reuse its address: seen here).
    let moves: Vec<(String, String)> = out["tcpstates"]
        .iter()
        .map(|e| (field_str(e, "oldstate"), field_str(e, "newstate")))
        .collect();
    let n = |o: &str, nw: &str| moves.iter().filter(|m| m.0 == o && m.1 == nw).count();
    assert_eq!(
        moves.iter().filter(|m| m.1 == "CLOSE").count(),
        4,
        "{}",
        ctx("tcpstates")
    );
    assert_eq!(n("SYN_SENT", "ESTABLISHED"), 1, "{}", ctx("tcpstates"));
    assert_eq!(n("SYN_RECV", "ESTABLISHED"), 1, "{}", ctx("tcpstates"));
    assert_eq!(
        n("SYN_SENT", "CLOSE"),
        1,
        "the refused attempt{}",
        ctx("tcpstates")
    );
    assert_eq!(n("LISTEN", "CLOSE"), 1, "{}", ctx("tcpstates"));
    let closed: std::collections::BTreeSet<String> = out["tcpstates"]
        .iter()
        .filter(|e| field_str(e, "newstate") == "CLOSE")
        .filter(|e| {
            ["FIN_WAIT2", "LAST_ACK", "LISTEN"].contains(&field_str(e, "oldstate").as_str())
        })
        .map(|e| field_str(e, "skaddr"))
        .collect();
    assert_eq!(closed.len(), 3, "three sockets{}", ctx("tcpstates"));
    assert!(!closed.contains("0x0"), "{}", ctx("tcpstates"));
    // tcpsynbl: the one connection found an empty queue on a listener whose
    // limit is the generator's listen(16) (somaxconn is larger).
    let synbl = &out["tcpsynbl"];
    assert_eq!(synbl.len(), 1, "{}", ctx("tcpsynbl"));
    assert_eq!(field_u64(&synbl[0], "sport"), port as u64);
    assert_eq!(
        field_u64(&synbl[0], "backlog_max"),
        16,
        "{}",
        ctx("tcpsynbl")
    );
    let buckets = synbl[0]["buckets"].as_array().unwrap();
    let nonzero: Vec<&Value> = buckets
        .iter()
        .filter(|b| field_u64(b, "count") > 0)
        .collect();
    assert_eq!(nonzero.len(), 1, "{}", ctx("tcpsynbl"));
    assert_eq!(field_u64(nonzero[0], "count"), 1, "{}", ctx("tcpsynbl"));
    assert_eq!(
        field_u64(nonzero[0], "max"),
        0,
        "backlog 0{}",
        ctx("tcpsynbl")
    );
    eprintln!(
        "{} recipes checked ({} events), TcpRetransSegs +{retrans}, {:?}",
        out.len(),
        out.values().map(Vec::len).sum::<usize>(),
        t0.elapsed()
    );
}

#[test]
fn negotiation_recipe_flags_exactly_the_connections_without_scaling() {
    if !common::require_root() {
        return;
    }
    let t0 = Instant::now();
    const N: usize = 3;
    let off = NetnsPair::new();
    let on = NetnsPair::new();
    sysctl(&off.srv, "net.ipv4.tcp_window_scaling", "0");
    // The same port in both pairs: it is `off`'s, which no other test uses,
    // and ports are per namespace.
    let port = off.port();
    let recipe =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes/wscale-negotiation.tcpq");
    let port_s = format!("port={port}");
    let mut t = Tcpq::spawn(&[
        recipe.to_str().unwrap(),
        "--param",
        &port_s,
        "--format",
        "json",
    ]);
    t.wait_attached(Duration::from_secs(10));
    let mut logs = Vec::new();
    for pair in [&off, &on] {
        // Per pair: the server's files are named after the port.
        let dir = TempDir::new("krn");
        let mut s = Server::start(
            &pair.srv,
            IpAddr::V4(pair.srv_v4()),
            port,
            &["--accept", &N.to_string()],
            dir.path(),
        );
        let mut c = Client::start(
            &pair.cli,
            IpAddr::V4(pair.srv_v4()),
            port,
            1000,
            &["--connections", &N.to_string()],
            dir.path(),
        );
        logs.push(c.wait(Duration::from_secs(10)));
        s.wait(Duration::from_secs(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    let (_, stdout, stderr) = t.stop(Duration::from_secs(5));
    let events = json_lines(&stdout);
    let ctx = format!("\nstdout:\n{stdout}\nstderr:\n{stderr}");
    // Sockets are told apart by the client's port and address (10.213.N.1).
    let off_addr = off.cli_v4().to_string();
    let on_addr = on.cli_v4().to_string();
    let mut seen: BTreeMap<(bool, String), usize> = BTreeMap::new();
    for e in &events {
        // The client's SYN and tcp_connect are the client's side; the
        // SYN-ACK and tcp_accept the server's.
        let syn = e["probe"] == "tcp_syn";
        let client_side = e["probe"] == "tcp_connect" || (syn && !field_bool(e, "ack"));
        let client_addr = if client_side {
            field_str(e, "saddr")
        } else {
            field_str(e, "daddr")
        };
        assert!(
            client_addr == off_addr || client_addr == on_addr,
            "unexpected connection {e}{ctx}"
        );
        let (scaled, what) = if syn {
            let what = if client_side { "SYN" } else { "SYN-ACK" };
            (field_bool(e, "opt_wscale_ok"), what.to_string())
        } else {
            (field_bool(e, "wscale_ok"), field_str(e, "probe"))
        };
        // Every client offers scaling; the server without it never
        // answers with the option, and no connection of its pair scales.
        assert_eq!(
            scaled,
            client_addr == on_addr || what == "SYN",
            "scaling must be missing exactly for the pair without it: {e}{ctx}"
        );
        *seen.entry((scaled, what)).or_default() += 1;
    }
    let want: BTreeMap<(bool, String), usize> = [
        ((false, "SYN-ACK".to_string()), N),
        ((false, "tcp_accept".to_string()), N),
        ((false, "tcp_connect".to_string()), N),
        ((true, "SYN".to_string()), 2 * N),
        ((true, "SYN-ACK".to_string()), N),
        ((true, "tcp_accept".to_string()), N),
        ((true, "tcp_connect".to_string()), N),
    ]
    .into();
    assert_eq!(seen, want, "{ctx}");
    eprintln!("negotiation recipe: {seen:?}, {:?}", t0.elapsed());
}

/// The BCC recipes' optional `pid` and `family` parameters filter like
/// BCC's `-p PID` and `-4`/`-6`: one IPv4 and one IPv6 connection, each to
/// its own server (started before tcpq, so the listener's owner comes from
/// /proc); tcpconnect with family 4 sees only the IPv4 one, with family 6
/// only the IPv6 one; tcpaccept with the IPv4 server's pid sees its
/// connection, with another pid nothing.
#[test]
fn bcc_recipes_filter_by_pid_and_family() {
    if !common::require_root() {
        return;
    }
    let pair = NetnsPair::new();
    let (p4, p6) = (pair.port(), pair.port() + 1);
    let dir = TempDir::new("krf");
    let mut s4 = Server::start(&pair.srv, IpAddr::V4(pair.srv_v4()), p4, &[], dir.path());
    let mut s6 = Server::start(&pair.srv, IpAddr::V6(pair.srv_v6()), p6, &[], dir.path());
    let srv_pid = s4.pid();
    let recipe = |name: &str| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("recipes")
            .join(name)
            .display()
            .to_string()
    };
    let (connect, accept) = (recipe("tcpconnect.tcpq"), recipe("tcpaccept.tcpq"));
    let runs: Vec<(&str, Vec<String>)> = vec![
        (
            "connect v4 family=4",
            vec![connect.clone(), format!("port={p4}"), "family=4".into()],
        ),
        (
            "connect v4 family=6",
            vec![
                connect.clone(),
                format!("port={p4}"),
                "family=AF_INET6".into(),
            ],
        ),
        (
            "connect v6 family=6",
            vec![connect.clone(), format!("port={p6}"), "family=6".into()],
        ),
        (
            "accept v4 pid=server",
            vec![
                accept.clone(),
                format!("port={p4}"),
                format!("pid={srv_pid}"),
            ],
        ),
        (
            "accept v4 pid=1",
            vec![accept.clone(), format!("port={p4}"), "pid=1".into()],
        ),
    ];
    let mut running: Vec<(&str, Tcpq)> = runs
        .iter()
        .map(|(what, a)| {
            let mut args: Vec<&str> = vec![a[0].as_str(), "--format", "json"];
            for p in &a[1..] {
                args.extend(["--param", p.as_str()]);
            }
            (*what, Tcpq::spawn(&args))
        })
        .collect();
    for (_, t) in running.iter_mut() {
        t.wait_attached(Duration::from_secs(10));
    }
    for (ip, port) in [
        (IpAddr::V4(pair.srv_v4()), p4),
        (IpAddr::V6(pair.srv_v6()), p6),
    ] {
        let mut c = Client::start(&pair.cli, ip, port, 1000, &[], dir.path());
        c.wait(Duration::from_secs(10));
    }
    s4.wait(Duration::from_secs(10));
    s6.wait(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(200));
    let mut out: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut ctx = String::new();
    for (what, mut t) in running {
        let (st, stdout, stderr) = t.stop(Duration::from_secs(5));
        assert!(st.success(), "{what}: {st}\n{stderr}");
        ctx.push_str(&format!("\n{what}:\n{stdout}"));
        out.insert(what, json_lines(&stdout));
    }
    let rows = |w: &str| out[w].len();
    assert_eq!(rows("connect v4 family=4"), 1, "{ctx}");
    assert_eq!(
        field_str(&out["connect v4 family=4"][0], "family"),
        "AF_INET",
        "{ctx}"
    );
    assert_eq!(rows("connect v4 family=6"), 0, "{ctx}");
    assert_eq!(rows("connect v6 family=6"), 1, "{ctx}");
    assert_eq!(
        field_str(&out["connect v6 family=6"][0], "family"),
        "AF_INET6",
        "{ctx}"
    );
    assert_eq!(rows("accept v4 pid=server"), 1, "{ctx}");
    assert_eq!(
        field_u64(&out["accept v4 pid=server"][0], "pid"),
        srv_pid as u64,
        "{ctx}"
    );
    assert_eq!(rows("accept v4 pid=1"), 0, "{ctx}");
}
