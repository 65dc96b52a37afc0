//! Every recipe in `recipes/` runs in the kernel suite, by name as the
//! built-in recipe it is (from a directory with no `recipes/` in it),
//! against real traffic, and its output is checked: the declared columns
//! are present and, where a value has ground truth, it matches (the
//! generator's log, nstat, the nft loss counter).
//!
//! One scenario exercises them all at once: window scaling off on the
//! server, a reader that idles 1 s (zero windows), 10% wire loss on the
//! writer's data (retransmissions), a 1 MiB transfer held open until
//! acknowledged, then a connection attempt to the same port once nobody
//! listens (a reset and a NO_SOCKET drop). A recipe whose port is optional
//! (`tcpretrans`, `tcpconnect`) runs both with the port and without it,
//! and this pair's rows agree. A second test runs the
//! negotiation recipe over two pairs, with and without scaling.

use crate::common;
use tcpq_kernel_test::kernel_test;

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

/// The columns a recipe prints (its `print` lists, `X as NAME` by its
/// name), from the file.
fn columns(p: &std::path::Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(p).unwrap();
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ");
    body.split(" on ")
        .filter_map(|c| c.split_once("print ").map(|(_, f)| f))
        .map(|f| {
            f.split(',')
                .map(|s| match s.split_once(" as ") {
                    Some((_, alias)) => alias.trim().to_string(),
                    None => s.trim().to_string(),
                })
                .collect()
        })
        .collect()
}

fn takes_port(p: &std::path::Path) -> bool {
    std::fs::read_to_string(p)
        .unwrap()
        .contains("# @param port:")
}

/// Recipes that also run without their (optional) port: every port, this
/// pair's rows the same.
const ALSO_WITHOUT_PORT: &[&str] = &["tcpretrans", "tcpconnect", "zero-window"];

#[kernel_test]
fn every_recipe_runs_against_real_traffic() {
    let t0 = Instant::now();
    const N: u64 = 1 << 20;
    let pair = NetnsPair::new();
    sysctl(&pair.srv, "net.ipv4.tcp_window_scaling", "0");
    pair.set_gso_max_segs(&pair.cli, 4);
    let port = pair.port();
    let dir = TempDir::new("krc");
    // Built-in recipes run by name from anywhere: here, a directory with
    // no `recipes/`.
    let cwd = TempDir::new("krc-cwd");
    assert!(!cwd.path().join("recipes").exists());
    let port_s = format!("port={port}");
    let mut running: Vec<(PathBuf, String, Tcpq)> = recipes()
        .into_iter()
        .map(|r| {
            let n = name(&r);
            let mut args = vec![n.as_str(), "--format", "json"];
            if takes_port(&r) {
                args.extend(["--param", &port_s]);
            }
            let t = Tcpq::spawn_in(&args, cwd.path());
            (r, n, t)
        })
        .collect();
    // tcplife in the kernel's units too.
    let life = recipes()
        .into_iter()
        .find(|r| name(r) == "tcplife")
        .unwrap();
    let t = Tcpq::spawn_in(
        &[
            "run",
            "tcplife",
            "--format",
            "json",
            "--param",
            &port_s,
            "--param",
            "bytes=true",
        ],
        cwd.path(),
    );
    running.push((life, "tcplife-bytes".into(), t));
    // Some whose port is optional, also without it: every port.
    let mut unfiltered: Vec<(String, Tcpq)> = ALSO_WITHOUT_PORT
        .iter()
        .map(|n| {
            (
                n.to_string(),
                Tcpq::spawn_in(&[n, "--format", "json"], cwd.path()),
            )
        })
        .collect();
    for t in running
        .iter_mut()
        .map(|(_, _, t)| t)
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
    for (r, n, mut t) in running {
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
        out.insert(n, ev);
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
    // Without its port (the default): this pair's zero windows are the
    // same ones.
    let (every, text) = &all_ports["zero-window"];
    let pair_rows: Vec<&Value> = every
        .iter()
        .filter(|e| field_u64(e, "sport") == port as u64)
        .collect();
    assert_eq!(
        pair_rows.len(),
        out["zero-window"].len(),
        "zero-window without a port\n{text}{}",
        ctx("zero-window")
    );
    assert!(
        pair_rows.iter().all(|e| field_u64(e, "pid") == rpid),
        "{text}"
    );
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
    let life = &out["tcplife-bytes"];
    // Three closes: both ends of the transfer and the refused attempt
    // (SYN_SENT -> CLOSE), which moved nothing.
    assert_eq!(life.len(), 3, "{}", ctx("tcplife-bytes"));
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
    assert_eq!(
        field_u64(no_life, "bytes_acked"),
        0,
        "{}",
        ctx("tcplife-bytes")
    );
    assert_eq!(
        field_u64(cli_life, "bytes_acked"),
        N + 2,
        "SYN + data + FIN{}",
        ctx("tcplife-bytes")
    );
    assert_eq!(
        field_u64(srv_life, "bytes_received"),
        N + 1,
        "data + FIN{}",
        ctx("tcplife-bytes")
    );
    // BCC's units, by default: the same closes, in KiB (rounded down) and
    // whole milliseconds of the same durations.
    let kb = &out["tcplife"];
    assert_eq!(kb.len(), 3, "{}", ctx("tcplife"));
    for e in life {
        let sport = field_u64(e, "sport");
        let k = kb
            .iter()
            .find(|k| field_u64(k, "sport") == sport)
            .unwrap_or_else(|| panic!("no tcplife row for {sport}{}", ctx("tcplife")));
        assert_eq!(
            field_u64(k, "tx_kb"),
            field_u64(e, "bytes_acked") / 1024,
            "{}",
            ctx("tcplife")
        );
        assert_eq!(
            field_u64(k, "rx_kb"),
            field_u64(e, "bytes_received") / 1024,
            "{}",
            ctx("tcplife")
        );
        // Each run times the connection with its own programs' clock
        // reads (a few microseconds apart): at most one ms boundary apart.
        let ms = field_u64(e, "duration") / 1000;
        assert!(
            field_u64(k, "ms").abs_diff(ms) <= 1,
            "{ms} ms{}",
            ctx("tcplife")
        );
        assert_eq!(field_u64(k, "pid"), field_u64(e, "pid"));
        assert!(k.get("bytes_acked").is_none() && e.get("tx_kb").is_none());
    }
    let cli_kb = kb.iter().find(|e| field_u64(e, "sport") == lport).unwrap();
    assert_eq!(
        field_u64(cli_kb, "tx_kb"),
        (N + 2) / 1024,
        "{}",
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

#[kernel_test]
fn negotiation_recipe_flags_exactly_the_connections_without_scaling() {
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
#[kernel_test]
fn bcc_recipes_filter_by_pid_and_family() {
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

/// `tcpq -c CMD` traces the command (and what it starts: here `sh`, `ip
/// netns exec`, then the generator) and nothing else, starts it only once
/// attached, stops by itself when it has exited and its connection has
/// closed, keeps its own exit status (0) and reports the command's (3).
/// Another client of the same server, connecting meanwhile, is seen by an
/// unfiltered tcpq and not by this one.
#[kernel_test]
fn command_flag_traces_only_the_command_until_it_exits() {
    const N: u64 = 200_000;
    let pair = NetnsPair::new();
    let port = pair.port();
    let dir = TempDir::new("krcmd");
    let addr = IpAddr::V4(pair.srv_v4());
    let mut server = Server::start(&pair.srv, addr, port, &["--accept", "2"], dir.path());
    let log = dir.join("command-client.jsonl");
    // The command waits 1.5 s first: the other client comes meanwhile.
    let cmd = format!(
        "sleep 1.5; ip netns exec {} {} client --connect {} --port {port} --bytes {N} --log {} >/dev/null 2>&1; exit 3",
        pair.cli,
        common::tcpgen::gen_command(),
        pair.srv_v4(),
        log.display()
    );
    let program = "on tcp_connect print pid, comm, sport, dport\n\
                   on tcp_close print pid, sport, dport, bytes_acked\n\
                   on tcp_accept print pid, sport, dport";
    let mut all = Tcpq::spawn(&[
        "--format",
        "json",
        "-e",
        "on tcp_connect print pid, sport, dport",
    ]);
    all.wait_attached(Duration::from_secs(10));
    let mut t = Tcpq::spawn(&["-c", &cmd, "--format", "json", "-e", program]);
    let tcpq_pid = t.pid().unwrap();
    t.wait_attached(Duration::from_secs(10));
    let mut other = Client::start(&pair.cli, addr, port, 1000, &[], dir.path());
    let olog = other.wait(Duration::from_secs(10));
    assert!(
        !t.stderr_so_far().contains("tcpq: command"),
        "the command ended before the other client: the test proves nothing\n{}",
        t.stderr_so_far()
    );
    let (st, stdout, stderr) = t.wait(Duration::from_secs(20));
    let ctx = format!("\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(st.success(), "tcpq -c keeps its own status: {st}{ctx}");
    assert!(
        stderr.contains("tcpq: command `sleep 1.5;") && stderr.contains("` exited with status 3"),
        "{ctx}"
    );
    let srv = server.wait(Duration::from_secs(10));
    let clog = common::TcpGenLog::read(&log, &dir.join("none"));
    assert_eq!(clog.bytes(), N, "the command's client: {clog:?}");
    let (cpid, clport, olport) = (clog.pid() as u64, clog.lport() as u64, olog.lport() as u64);
    let ev = json_lines(&stdout);
    let of = |probe: &str| -> Vec<&Value> { ev.iter().filter(|e| e["probe"] == probe).collect() };
    // Exactly the command's connection: its connect, its close (after the
    // command exited: FIN handshake), no accept (the server is not it).
    let connects = of("tcp_connect");
    assert_eq!(connects.len(), 1, "{ctx}");
    assert_eq!(field_u64(connects[0], "pid"), cpid, "{ctx}");
    assert_eq!(field_u64(connects[0], "sport"), clport, "{ctx}");
    assert_eq!(field_str(connects[0], "comm"), clog.comm(), "{ctx}");
    let closes = of("tcp_close");
    assert_eq!(closes.len(), 1, "{ctx}");
    assert_eq!(field_u64(closes[0], "sport"), clport, "{ctx}");
    assert_eq!(
        field_u64(closes[0], "bytes_acked"),
        N + 2,
        "SYN + data + FIN{ctx}"
    );
    assert!(of("tcp_accept").is_empty(), "{ctx}");
    assert!(ev.iter().all(|e| field_u64(e, "sport") != olport), "{ctx}");
    // The other client did connect while tcpq -c ran: the unfiltered run
    // saw both.
    let (_, all_out, _) = all.stop(Duration::from_secs(5));
    let seen: Vec<u64> = json_lines(&all_out)
        .iter()
        .filter(|e| field_u64(e, "dport") == port as u64)
        .map(|e| field_u64(e, "sport"))
        .collect();
    assert!(
        seen.contains(&olport) && seen.contains(&clport),
        "{seen:?}\n{all_out}"
    );
    assert_eq!(srv.all("accepted").len(), 2, "{srv:?}");
    // Its cgroup is gone.
    let left: Vec<String> = std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .chain(std::fs::read_dir("/sys/fs/cgroup/unified"))
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("tcpq-c-{tcpq_pid}-")))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// `-p PID`, `-4`, `-6` and `-o FILE` against real connections: an IPv4
/// and an IPv6 server (started before tcpq: their owners come from
/// /proc), one connection each; `-p` with a server's pid sees only its
/// connection, `-p 1` none; `-4`/`-6` with a port set see only their
/// family; `-o` writes the rows to the file and nothing to stdout.
#[kernel_test]
fn pid_and_family_flags_filter_like_written_conditions() {
    let pair = NetnsPair::new();
    let (p4, p6) = (pair.port(), pair.port() + 1);
    let dir = TempDir::new("krpf");
    let mut s4 = Server::start(&pair.srv, IpAddr::V4(pair.srv_v4()), p4, &[], dir.path());
    let mut s6 = Server::start(&pair.srv, IpAddr::V6(pair.srv_v6()), p6, &[], dir.path());
    let (pid4, pid6) = (s4.pid().to_string(), s6.pid().to_string());
    let pids = format!("{pid4},{pid6}");
    let ports = format!("port={p4},{p6}");
    let file = dir.join("v6.jsonl");
    let accept = "on tcp_accept print pid, family, sport";
    let runs: Vec<(&str, Vec<&str>)> = vec![
        ("-p v4 server", vec!["-p", &pid4, "-e", accept]),
        ("-p both", vec!["-p", &pids, "-e", accept]),
        ("-p 1", vec!["-p", "1", "-e", accept]),
        ("-4", vec!["-4", "tcpconnect", "--param", &ports]),
        (
            "-6 -o",
            vec![
                "-6",
                "tcpconnect",
                "--param",
                &ports,
                "-o",
                file.to_str().unwrap(),
            ],
        ),
    ];
    let mut running: Vec<(&str, Tcpq)> = runs
        .iter()
        .map(|(what, a)| {
            let mut args = a.clone();
            args.extend(["--format", "json"]);
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
    let rows = &out["-p v4 server"];
    assert_eq!(rows.len(), 1, "{ctx}");
    assert_eq!(field_u64(&rows[0], "pid").to_string(), pid4, "{ctx}");
    assert_eq!(field_u64(&rows[0], "sport"), p4 as u64, "{ctx}");
    let mut both: Vec<u64> = out["-p both"]
        .iter()
        .map(|e| field_u64(e, "sport"))
        .collect();
    both.sort();
    assert_eq!(both, [p4 as u64, p6 as u64], "{ctx}");
    assert!(out["-p 1"].is_empty(), "{ctx}");
    let v4 = &out["-4"];
    assert_eq!(v4.len(), 1, "{ctx}");
    assert_eq!(
        (field_str(&v4[0], "family"), field_u64(&v4[0], "dport")),
        ("AF_INET".into(), p4 as u64),
        "{ctx}"
    );
    assert!(out["-6 -o"].is_empty(), "-o: nothing on stdout{ctx}");
    let v6 = json_lines(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(v6.len(), 1, "{v6:?}");
    assert_eq!(
        (field_str(&v6[0], "family"), field_u64(&v6[0], "dport")),
        ("AF_INET6".into(), p6 as u64)
    );
}

/// The command hands 256 KiB to its socket's (large) send buffer and
/// exits at once, to a server with a 4 KiB receive buffer that only starts
/// reading after 0.8 s: the connection finishes (the data, the FIN
/// handshake, `tcp_close`) after the command is gone, and tcpq -c waits
/// for it. Ground truth: the server's log (its peer port, the bytes it
/// read).
#[kernel_test]
fn command_flag_waits_for_connections_closing_after_the_command_exits() {
    const N: u64 = 256 << 10;
    let pair = NetnsPair::new();
    let port = pair.port();
    let dir = TempDir::new("krcmdl");
    let addr = IpAddr::V4(pair.srv_v4());
    let mut server = Server::start(
        &pair.srv,
        addr,
        port,
        &["--idle-before-read", "0.8", "--rcvbuf", "4096"],
        dir.path(),
    );
    let cmd = format!(
        "ip netns exec {} {} client --sndbuf {} --connect {} --port {port} --bytes {N}",
        pair.cli,
        common::tcpgen::gen_command(),
        1 << 20,
        pair.srv_v4(),
    );
    let t0 = Instant::now();
    let mut t = Tcpq::spawn(&[
        "-c",
        &cmd,
        "--format",
        "json",
        "-e",
        "on tcp_close print pid, sport, dport, bytes_acked",
    ]);
    let (st, stdout, stderr) = t.wait(Duration::from_secs(20));
    let took = t0.elapsed();
    let ctx = format!("\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(st.success(), "{st}{ctx}");
    assert!(stderr.contains("exited with status 0"), "{ctx}");
    let srv = server.wait(Duration::from_secs(10));
    assert_eq!(srv.bytes(), N, "{srv:?}");
    let peer = srv.get("accepted").unwrap()["rport"].as_u64().unwrap();
    let closes = json_lines(&stdout);
    assert_eq!(closes.len(), 1, "{ctx}");
    assert_eq!(field_u64(&closes[0], "sport"), peer, "{ctx}");
    assert_eq!(field_u64(&closes[0], "bytes_acked"), N + 2, "{ctx}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

/// When tcpq stops first (`--duration`), every process of the command's
/// cgroup is ended, a background child too, and the cgroup is removed.
#[kernel_test]
fn command_flag_ends_the_command_when_tcpq_stops_first() {
    let dir = TempDir::new("krcmdk");
    let bg = dir.join("bg.pid");
    let cmd = format!("sleep 30 & echo $! > {}; sleep 30", bg.display());
    let mut t = Tcpq::spawn(&[
        "-c",
        &cmd,
        "--duration",
        "500ms",
        "-e",
        "on tcp_connect print pid",
    ]);
    let tcpq_pid = t.pid().unwrap();
    let (st, _, stderr) = t.wait(Duration::from_secs(10));
    assert!(st.success(), "{st}\n{stderr}");
    assert!(stderr.contains("was killed by signal 15"), "{stderr}");
    let bg: i32 = std::fs::read_to_string(&bg)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let gone = common::wait_for(Duration::from_secs(2), || {
        (!common::pid_alive(bg)).then_some(())
    });
    assert!(gone.is_some(), "the background sleep {bg} survived");
    let cg = std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .chain(std::fs::read_dir("/sys/fs/cgroup/unified"))
        .flatten()
        .flatten()
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("tcpq-c-{tcpq_pid}-"))
        });
    assert!(!cg, "cgroup left behind");
}
