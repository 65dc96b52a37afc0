//! Every recipe in `recipes/` runs in the kernel suite, by name as the
//! built-in recipe it is, against real traffic, and its output must meet
//! the `@expect` lines of its header (see `recipes/expect.rs`): equality
//! with the kernel's counters (nstat), its tracepoint events and the wire
//! where the recipe counts what they count, and the generator's logs.
//! One scenario (`Scenario`) exercises them all at once.
//!
//! More tests: the negotiation recipe over two pairs, with and without
//! scaling; the BCC recipes' pid and family filters; `-c`, `-p`, `-4/-6`.

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

mod expect;

/// The scenario every recipe's `@expect traffic transfer` names: window
/// scaling off on the server, a reader that idles 1 s (zero windows), 10%
/// wire loss on the writer's data (retransmissions), a 1 MiB transfer held
/// open until acknowledged, then a connection attempt to the same port once
/// nobody listens (a reset and a NO_SOCKET drop). The values `@expect` may
/// name (`$NAME`), each measured by something other than tcpq:
/// - `$port`, `$server` (its address), `$server.backlog` (its listen()
///   backlog, 16), `$sent` (bytes the writer wrote);
/// - `$reader.pid`, `$reader.bytes` (bytes it read), `$writer.pid`,
///   `$writer.lport`, `$refused.pid`, `$refused.lport`, `$refused.errno`:
///   from the generator's logs;
/// - `$nstat.NAME`: how much counter NAME moved in both namespaces
///   together (`nstat`, the kernel's SNMP counters);
/// - `$trace.retransmits_sent`: the kernel's own `tcp_retransmit_skb`
///   tracepoint events for the scenario's port with `err=0`, the
///   retransmissions it sent (a tracefs instance);
/// - `$trace.tcp_probe`: the kernel's own `tcp_probe` tracepoint events
///   for the scenario's port (segments its established sockets received),
///   in the same instance;
/// - `$wire.zero_windows`: segments the server sent with a zero window,
///   from a packet capture on its veth (not counting the reset to the
///   refused SYN, sent without a socket).
struct Scenario {
    truths: expect::Truths,
    /// Ports and addresses that are the scenario's, for runs without a
    /// port (they see every connection on the machine).
    ports: Vec<u64>,
    addrs: Vec<String>,
    /// Traced events (retransmissions, tcp_probe) on pid 1's threads, which no
    /// BPF program sees on this VM (see `TraceEvent::unobservable`).
    unobservable: usize,
}

/// One run of a recipe: its name and `--param`s, the tcpq running it.
struct RecipeRun {
    recipe: PathBuf,
    case: usize,
    args: Vec<String>,
    tcpq: Tcpq,
}

/// Drive the `transfer` scenario in `pair` while `runs` are attached.
fn transfer(pair: &NetnsPair, dir: &TempDir) -> Scenario {
    const N: u64 = 1 << 20;
    let port = pair.port();
    let pcap = dir.join("transfer.pcap");
    let mut cap = common::Capture::start(
        &pair.srv,
        pair.srv_if(),
        &format!("tcp src port {port}"),
        &pcap,
    );
    let ours = format!("sport == {port} || dport == {port}");
    let trace =
        common::TraceInstance::new(&[("tcp/tcp_retransmit_skb", &ours), ("tcp/tcp_probe", &ours)]);
    let nstat_all = || {
        let (c, s) = (nstat(&pair.cli, &[]), nstat(&pair.srv, &[]));
        let mut sum = c;
        for (k, v) in s {
            *sum.entry(k).or_default() += v;
        }
        sum
    };
    let before = nstat_all();
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
    assert_eq!(wlog.bytes(), N, "{wlog:?}");
    assert_eq!(rlog.bytes(), N, "{rlog:?}");
    let refusal = flog
        .get("refused")
        .unwrap_or_else(|| panic!("the attempt was not refused: {flog:?}"))
        .clone();
    // Both ends retransmit (the receiver its FIN, when the ACK of it was
    // lost), possibly after the transfer: wait until no socket of the pair
    // can retransmit any more (only TIME_WAIT left), then count.
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
    std::thread::sleep(Duration::from_millis(300));
    let after = nstat_all();
    cap.stop();
    let traced = trace.events();
    let retransmits: Vec<_> = traced
        .iter()
        .filter(|e| e.name == "tcp_retransmit_skb")
        .collect();
    let probes = traced.iter().filter(|e| e.name == "tcp_probe").count();
    assert_eq!(trace.overruns(), 0, "the tracefs instance lost events");
    let zero_windows = common::packets(&pcap)
        .iter()
        // A reset to the refused SYN has a zero window too, but no
        // window was chosen for it (no socket: tcp_v4_send_reset).
        .filter(|p| p.sport == port && p.win == 0 && !p.rst())
        .count();

    use expect::Val;
    let mut truths = expect::Truths::new();
    let num = |n: u64| Val::Num(n as i128);
    for (k, v) in &after {
        let d = v.saturating_sub(before.get(k).copied().unwrap_or(0));
        truths.insert(format!("nstat.{k}"), num(d));
    }
    truths.insert("port".into(), num(port as u64));
    truths.insert("server".into(), Val::Str(pair.srv_v4().to_string()));
    truths.insert("server.backlog".into(), num(16));
    truths.insert("sent".into(), num(N));
    truths.insert("reader.pid".into(), num(rlog.pid() as u64));
    truths.insert("reader.bytes".into(), num(rlog.bytes()));
    truths.insert("writer.pid".into(), num(wlog.pid() as u64));
    truths.insert("writer.lport".into(), num(wlog.lport() as u64));
    truths.insert("refused.pid".into(), num(flog.pid() as u64));
    let refused_lport = refusal["lport"].as_u64().unwrap();
    truths.insert("refused.lport".into(), num(refused_lport));
    truths.insert("refused.errno".into(), Val::of(&refusal["errno"]));
    // Sent ones only: an attempt with err != 0 is one the kernel gave up
    // or refused (this scenario has no firewall or qdisc to refuse one;
    // -EBUSY, the original still queued here, does happen).
    let sent = retransmits.iter().filter(|e| e.get("err") == "0").count();
    truths.insert("trace.retransmits_sent".into(), num(sent as u64));
    truths.insert("wire.zero_windows".into(), num(zero_windows as u64));
    truths.insert("trace.tcp_probe".into(), num(probes as u64));
    Scenario {
        truths,
        ports: vec![port as u64, wlog.lport() as u64, refused_lport],
        addrs: vec![pair.srv_v4().to_string(), pair.cli_v4().to_string()],
        unobservable: traced.iter().filter(|e| e.unobservable()).count(),
    }
}

/// Every recipe's `@expect` lines hold: each recipe runs, by name as the
/// built-in recipe it is (from a directory with no `recipes/` in it), once
/// per `case`, all of them attached at once while the scenario its
/// `traffic` names runs; then each run's rows are checked. A recipe
/// without `@expect`, or with a line that is not a statement, fails.
#[kernel_test]
fn every_recipe_meets_its_expect() {
    let t0 = Instant::now();
    let mut expects = Vec::new();
    for r in recipes() {
        let text = std::fs::read_to_string(&r).unwrap();
        let e = expect::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", r.display()));
        assert_eq!(e.traffic, "transfer", "{}: unknown traffic", r.display());
        expects.push((r, e));
    }
    let ((failures, checked), hidden) = common::tracefs::retry_unobservable(3, || {
        let pair = NetnsPair::new();
        sysctl(&pair.srv, "net.ipv4.tcp_window_scaling", "0");
        pair.set_gso_max_segs(&pair.cli, 4);
        let dir = TempDir::new("krc");
        let cwd = TempDir::new("krc-cwd");
        assert!(!cwd.path().join("recipes").exists());
        let port = pair.port().to_string();
        let mut runs: Vec<RecipeRun> = Vec::new();
        for (r, e) in &expects {
            for (i, case) in e.cases.iter().enumerate() {
                let mut args = vec![name(r), "--format".into(), "json".into()];
                for (k, v) in &case.params {
                    // `$port` is the only value known before the traffic.
                    let mut known = expect::Truths::new();
                    known.insert("port".into(), expect::Val::Str(port.clone()));
                    let v = expect::eval(v, None, &known)
                        .unwrap_or_else(|e| panic!("{}: case {k}: {e}", r.display()));
                    args.extend(["--param".into(), format!("{k}={v}")]);
                }
                let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                let tcpq = Tcpq::spawn_in(&refs, cwd.path());
                runs.push(RecipeRun {
                    recipe: r.clone(),
                    case: i,
                    args,
                    tcpq,
                });
            }
        }
        for run in &mut runs {
            run.tcpq.wait_attached(Duration::from_secs(10));
        }
        let sc = transfer(&pair, &dir);
        let mut failures = Vec::new();
        let mut checked = 0;
        let mut missed = 0;
        for mut run in runs {
            let (st, stdout, stderr) = run.tcpq.stop(Duration::from_secs(5));
            // Events the kernel skipped for a program (`missed`: it was
            // already running on that CPU) or that found the ring buffer
            // full (`lost`) make an exact count impossible: rerun.
            for l in stderr.lines().filter(|l| l.contains("\"summary\"")) {
                if let Ok(v) = serde_json::from_str::<Value>(l) {
                    missed += v["missed"].as_u64().unwrap_or(0) + v["lost"].as_u64().unwrap_or(0);
                }
            }
            let ctx = format!(
                "tcpq {} ({st})\nstdout:\n{stdout}\nstderr:\n{stderr}",
                run.args.join(" ")
            );
            if !st.success() {
                failures.push(format!("{}: exited {st}\n{ctx}", run.recipe.display()));
                continue;
            }
            let mut rows = json_lines(&stdout);
            // Every printed line carries the columns its clause declares.
            let cols = columns(&run.recipe);
            for e in &rows {
                let obj = e.as_object().unwrap();
                if !(cols.is_empty() || cols.iter().any(|c| c.iter().all(|k| obj.contains_key(k))))
                {
                    failures.push(format!("columns {cols:?} missing in {e}\n{ctx}"));
                }
            }
            let expect = &expects.iter().find(|(r, _)| *r == run.recipe).unwrap().1;
            let case = &expect.cases[run.case];
            if !case.params.iter().any(|(k, _)| k == "port") {
                // Every connection on the machine: only the scenario's.
                let ours = |r: &Value| {
                    let port_ok = ["sport", "dport"]
                        .iter()
                        .any(|k| r[k].as_u64().is_some_and(|p| sc.ports.contains(&p)));
                    let has_addr = r.get("saddr").is_some() || r.get("daddr").is_some();
                    let addr_ok = ["saddr", "daddr"].iter().any(|k| {
                        r[k].as_str()
                            .is_some_and(|a| sc.addrs.iter().any(|x| x == a))
                    });
                    port_ok && (addr_ok || !has_addr)
                };
                if rows
                    .iter()
                    .any(|r| r.get("sport").is_none() && r.get("dport").is_none())
                {
                    failures.push(format!(
                        "{}: a case without `port` needs rows with ports to tell the \
                         scenario's from the machine's\n{ctx}",
                        run.recipe.display()
                    ));
                    continue;
                }
                rows.retain(ours);
            }
            for f in expect::run(&case.checks, &rows, &sc.truths) {
                failures.push(format!("{}: {f}\n{ctx}", run.recipe.display()));
            }
            checked += case.checks.len();
        }
        if !failures.is_empty() {
            // What it measured (counters that moved).
            let shown: Vec<String> = sc
                .truths
                .iter()
                .filter(|(k, v)| !k.starts_with("nstat.") || **v != expect::Val::Num(0))
                .map(|(k, v)| format!("${k} = {v}"))
                .collect();
            failures.push(format!("the scenario measured: {}", shown.join(", ")));
        }
        if missed > 0 {
            eprintln!("{missed} event(s) missed or lost by the recipes' programs");
        }
        ((failures, checked), sc.unobservable + missed as usize)
    });
    assert_eq!(hidden, 0, "three runs had events no BPF program saw");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    eprintln!(
        "{} recipes, {checked} @expect checks held, {:?}",
        expects.len(),
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
