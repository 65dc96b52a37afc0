//! `tcpq serve` against a real Prometheus (Debian's 2.42, started here on
//! 127.0.0.1 with its own directory, scraping every second), and against
//! the kernel's own counts of the same traffic:
//!
//! - zero windows: `tcp_zero_window_segments_total{comm="tcpq-reader"}`
//!   grows by exactly the zero-window segments the server sent on the wire
//!   (tcpdump on its veth, as `zero_window.rs` counts them);
//! - retransmissions: `tcp_retransmitted_segments_total` grows by exactly
//!   the sender namespace's `TcpRetransSegs` (nstat), over the lossy
//!   transfer of `retransmit.rs`;
//! - round-trip times: `tcp_srtt_seconds_count` (and its `+Inf` bucket)
//!   grows by exactly the events of the kernel's own `tcp:tcp_probe`
//!   tracepoint for the port (a tracefs instance: the kernel's record of
//!   every time it ran, which is when tcpq's program runs too), and every
//!   `le` is one of the kernel's log2 bucket edges, 2^k - 1 µs in seconds.
//!
//! "Grows by" is the difference of the samples Prometheus stored from a
//! scrape before the traffic and one after it (queried at those scrapes'
//! own timestamps): PromQL's `increase()` extrapolates to the ends of its
//! range and is not exact. A series not yet born before the traffic (a
//! `by` key that appears with it) counts from 0.
//!
//! Cardinality: 10,000 destination ports against `--series-limit 100`
//! stay at most 100 series and one overflow series, the dropped label sets
//! counted exactly, the family's sum equal to the kernel's
//! `TcpAttemptFails`, the kernel's map emptied by expiry, RSS flat.
//!
//! `promtool check metrics` passes on a scrape of every recipe serve
//! accepts; bad input (a broken recipe, a printing clause, a port in use,
//! a bad `--listen`) is a clear error with the right exit code, and a stop
//! by signal detaches everything.
use crate::common;
use tcpq_kernel_test::kernel_test;

use common::bpf::{assert_released, bpf_fds};
use common::prometheus::{http_get, promtool_lint, unix_now, Prometheus};
use common::tcpgen::slow_reader_exchange;
use common::{sysctl, Capture, Client, NetnsPair, Server, Tcpq, TempDir, TraceInstance};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

const ATTACH: Duration = Duration::from_secs(20);

/// A running `tcpq serve ARGS --listen 127.0.0.1:0`: the port the kernel
/// gave it, from its `serving ... on http://ADDR/metrics` line.
struct Serve {
    tcpq: Tcpq,
    addr: SocketAddr,
}

impl Serve {
    fn start(args: &[&str]) -> Serve {
        Self::start_with(args, &[])
    }

    fn start_with(args: &[&str], env: &[(String, String)]) -> Serve {
        let mut all = vec!["serve"];
        all.extend(args);
        all.extend(["--listen", "127.0.0.1:0"]);
        let mut tcpq = Tcpq::spawn_with(&all, env);
        tcpq.wait_attached(ATTACH);
        let addr = tcpq
            .stderr_so_far()
            .lines()
            .find_map(|l| {
                l.split("http://")
                    .nth(1)?
                    .split("/metrics")
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no address in tcpq's stderr:\n{}", tcpq.stderr_so_far()));
        Serve { tcpq, addr }
    }

    /// `/metrics` in the Prometheus text format 0.0.4.
    fn scrape_text(&self) -> String {
        let (status, headers, body) = http_get(self.addr, "/metrics", &[]).expect("scrape");
        assert_eq!(status, 200, "{body}");
        let ct = headers
            .iter()
            .find(|(k, _)| k == "content-type")
            .map(|(_, v)| v.as_str());
        assert_eq!(ct, Some("text/plain; version=0.0.4; charset=utf-8"));
        body
    }

    /// SIGINT, then the exit status and stderr.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        let (st, _, stderr) = self.tcpq.stop(Duration::from_secs(10));
        (st, stderr)
    }
}

/// `tcpq serve` and a Prometheus scraping it, and the timestamp of a
/// successful scrape after every probe was attached: the "before".
fn served(args: &[&str]) -> (Serve, Prometheus, f64) {
    let serve = Serve::start(args);
    let ready = unix_now();
    let prom = Prometheus::start(serve.addr);
    let before = prom.scraped_after(ready);
    (serve, prom, before)
}

/// The difference of `expr` between the scrape at `before` and the first
/// scrape after now, as Prometheus stored them.
fn grown(prom: &Prometheus, expr: &str, before: f64) -> (f64, f64, f64) {
    let after = prom.scraped_after(unix_now());
    let (v0, v1) = (prom.value_at(expr, before), prom.value_at(expr, after));
    (v1 - v0, v0, v1)
}

#[kernel_test]
fn zero_window_series_grows_by_the_wires_zero_window_segments() {
    let pair = NetnsPair::new();
    sysctl(&pair.srv, "net.ipv4.tcp_window_scaling", "0");
    let port = pair.port();
    let dir = TempDir::new("ksz");
    let pcap = dir.join("srv.pcap");
    let param = format!("port={port}");
    let (serve, prom, before) = served(&["zero-window-metrics", "--param", &param]);
    let mut cap = Capture::start(&pair.srv, pair.srv_if(), &format!("tcp port {port}"), &pcap);
    let (wlog, rlog) = slow_reader_exchange(&pair, port, "1.0", dir.path());
    let stats = cap.stop();
    assert_eq!(rlog.bytes(), 1 << 20, "reader {rlog:?}");
    assert_eq!(wlog.bytes(), 1 << 20, "writer {wlog:?}");
    assert_eq!(stats.dropped_by_kernel, 0, "tcpdump dropped packets");
    let wire = common::packets(&pcap)
        .into_iter()
        .filter(|p| p.sport == port && p.win == 0 && !p.syn() && !p.rst())
        .count();
    let expr = "tcp_zero_window_segments_total{comm=\"tcpq-reader\"}";
    let (d, v0, v1) = grown(&prom, expr, before);
    let all = prom.query("tcp_zero_window_segments_total", None);
    let (st, stderr) = serve.stop();
    let ctx = format!(
        "\n{expr}: {v0} -> {v1}; wire: {wire} zero-window segments; every series: {all:?}\n\
         tcpq serve ({st}):\n{stderr}\nprometheus:\n{}",
        prom.log()
    );
    assert!(wire > 0, "the scenario made no zero window{ctx}");
    assert_eq!(
        d, wire as f64,
        "the series grew by other than the wire's count{ctx}"
    );
    // The port narrows it to this test's reader: one series, its comm.
    assert_eq!(all.len(), 1, "{ctx}");
    assert!(st.success(), "{ctx}");
    eprintln!("serve zero windows: +{d} == {wire} on the wire");
}

#[kernel_test]
fn retransmitted_segments_grow_by_tcp_retrans_segs() {
    use crate::retransmit::lossy_transfer_watched;
    let ((k, (d, v0, v1, log)), hidden) = common::tracefs::retry_unobservable(3, || {
        let (k, out) = lossy_transfer_watched(
            |port| {
                let param = format!("port={port}");
                served(&["retransmit-metrics", "--param", &param])
            },
            |(serve, prom, before)| {
                let (d, v0, v1) = grown(&prom, "tcp_retransmitted_segments_total", before);
                let (st, stderr) = serve.stop();
                assert!(st.success(), "tcpq serve: {st}\n{stderr}");
                (d, v0, v1, prom.log())
            },
        );
        let hidden = k.hidden;
        ((k, out), hidden)
    });
    assert_eq!(
        hidden, 0,
        "three runs had retransmissions no BPF program sees"
    );
    let ctx = format!(
        "\ntcp_retransmitted_segments_total {v0} -> {v1}; TcpRetransSegs +{}; prometheus:\n{log}",
        k.retrans_segs
    );
    assert!(k.retrans_segs > 0, "nothing was retransmitted{ctx}");
    assert_eq!(d, k.retrans_segs as f64, "{ctx}");
    eprintln!(
        "serve retransmissions: +{d} == TcpRetransSegs +{}",
        k.retrans_segs
    );
}

/// One transfer while `rtt-metrics` is served and the kernel's tcp_probe
/// tracepoint is recorded for the port: (count's growth, +Inf's growth,
/// the tracepoint's events, the `le`s Prometheus stored, events on pid
/// 1's threads, context).
fn srtt_once() -> ((f64, f64, usize, Vec<String>, String), usize) {
    let pair = NetnsPair::new();
    let port = pair.port();
    let dir = TempDir::new("ksr");
    let param = format!("port={port}");
    let (serve, prom, before) = served(&["rtt-metrics", "--param", &param]);
    let trace = TraceInstance::new(&[(
        "tcp/tcp_probe",
        &format!("sport == {port} || dport == {port}"),
    )]);
    let addr = IpAddr::V4(pair.srv_v4());
    let mut server = Server::start(&pair.srv, addr, port, &[], dir.path());
    let mut client = Client::start(&pair.cli, addr, port, 1 << 20, &[], dir.path());
    let wlog = client.wait(Duration::from_secs(10));
    let rlog = server.wait(Duration::from_secs(10));
    assert_eq!(wlog.bytes(), 1 << 20);
    assert_eq!(rlog.bytes(), 1 << 20);
    // Both ends have closed: no established socket of the port is left
    // to receive a segment.
    trace.stop();
    assert_eq!(trace.overruns(), 0, "the tracefs instance lost events");
    let events = trace.events();
    let hidden = events.iter().filter(|e| e.unobservable()).count();
    let (count, c0, c1) = grown(&prom, "tcp_srtt_seconds_count", before);
    let (inf, _, _) = grown(&prom, "tcp_srtt_seconds_bucket{le=\"+Inf\"}", before);
    let les: Vec<String> = prom
        .query("tcp_srtt_seconds_bucket", None)
        .iter()
        .map(|s| s.labels["le"].as_str().unwrap_or_default().to_string())
        .collect();
    let (st, stderr) = serve.stop();
    let ctx = format!(
        "\ntcp_srtt_seconds_count {c0} -> {c1}; tcp_probe tracepoint: {} events ({hidden} on \
         pid 1's threads)\ntcpq serve ({st}):\n{stderr}\nprometheus:\n{}",
        events.len(),
        prom.log()
    );
    assert!(st.success(), "{ctx}");
    ((count, inf, events.len(), les, ctx), hidden)
}

#[kernel_test]
fn srtt_histogram_counts_every_tcp_probe_the_kernel_ran() {
    let ((count, inf, events, les, ctx), hidden) =
        common::tracefs::retry_unobservable(3, srtt_once);
    assert_eq!(
        hidden, 0,
        "three runs had tcp_probe events no BPF program sees{ctx}"
    );
    assert!(events > 0, "no segment received{ctx}");
    assert_eq!(
        count, events as f64,
        "_count != the tracepoint's events{ctx}"
    );
    assert_eq!(inf, count, "+Inf bucket != _count{ctx}");
    // The kernel's edges: 0, then 2^k - 1 microseconds, in seconds.
    let edges: Vec<f64> = (0..=40).map(|k| ((1u64 << k) - 1) as f64 / 1e6).collect();
    assert!(les.iter().any(|l| l == "+Inf"), "{les:?}{ctx}");
    for l in les.iter().filter(|l| *l != "+Inf") {
        let v: f64 = l.parse().unwrap_or_else(|_| panic!("le {l:?}{ctx}"));
        assert!(
            edges.iter().any(|e| (e - v).abs() <= e * 1e-12),
            "le {l} is not a kernel bucket edge{ctx}"
        );
    }
    eprintln!("serve srtt: _count +{count} == {events} tcp_probe events; le {les:?}");
}

/// Every query of the Grafana dashboard (deploy/grafana/) runs against a
/// Prometheus scraping `tcpq serve` with the recipes the DaemonSet runs:
/// each is valid PromQL there, and the health panels find tcpq's series.
#[kernel_test]
fn every_dashboard_query_runs_against_a_live_prometheus() {
    let pair = NetnsPair::new();
    let port = pair.port();
    let dir = TempDir::new("ksd");
    let (serve, prom, _) = served(&[
        "zero-window-metrics",
        "window-scaling-metrics",
        "retransmit-metrics",
        "rtt-metrics",
    ]);
    // A little traffic, so that the TCP panels have series too.
    let addr = IpAddr::V4(pair.srv_v4());
    let mut server = Server::start(&pair.srv, addr, port, &[], dir.path());
    let mut client = Client::start(&pair.cli, addr, port, 1 << 20, &[], dir.path());
    assert_eq!(client.wait(Duration::from_secs(10)).bytes(), 1 << 20);
    assert_eq!(server.wait(Duration::from_secs(10)).bytes(), 1 << 20);
    // Three more scrapes: rates over the window need two samples.
    let mut t = unix_now();
    for _ in 0..3 {
        t = prom.scraped_after(t) + 0.001;
    }
    let vars = [
        ("instance", ".+"),
        ("__rate_interval", "10s"),
        ("__interval", "1s"),
        ("__range", "1m"),
    ];
    let queries = crate::dashboard::queries_with(&vars).expect("the dashboard's queries");
    assert!(!queries.is_empty(), "the dashboard has no queries");
    let mut with_data = 0;
    for q in &queries {
        // `query` asserts Prometheus answered `success`.
        let samples = prom.query(&q.expr, None);
        with_data += usize::from(!samples.is_empty());
        if q.expr.contains("tcpq_probe_attached") || q.expr.contains("tcp_srtt_seconds") {
            assert!(
                !samples.is_empty(),
                "panel `{}` ({}) found no series: {}\n{}",
                q.panel,
                q.ref_id,
                q.expr,
                prom.log()
            );
        }
    }
    let (st, stderr) = serve.stop();
    assert!(st.success(), "tcpq serve: {st}\n{stderr}");
    eprintln!(
        "dashboard: {} queries valid on a live Prometheus, {with_data} with series",
        queries.len()
    );
}

/// Built-in recipes `tcpq serve --check` accepts (aggregations only) and
/// the ones it refuses, by name.
fn builtin_recipes() -> (Vec<String>, Vec<String>) {
    let out = std::process::Command::new(Tcpq::bin())
        .args(["recipes", "--format", "json"])
        .output()
        .unwrap();
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["name"].as_str().map(str::to_string))
        .collect();
    assert!(names.len() >= 20, "{names:?}");
    names.into_iter().partition(|n| {
        let o = std::process::Command::new(Tcpq::bin())
            .args(["serve", "--check", n])
            .output()
            .unwrap();
        match o.status.code() {
            Some(0) => true,
            Some(2) => false,
            c => panic!(
                "serve --check {n}: {c:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            ),
        }
    })
}

#[kernel_test]
fn promtool_accepts_a_scrape_of_every_recipe_serve_accepts() {
    let (accepted, refused) = builtin_recipes();
    for want in [
        "zero-window-metrics",
        "window-scaling-metrics",
        "retransmit-metrics",
        "rtt-metrics",
        "retransmits",
        "recv-sizes",
        "send-sizes",
        "tcpsynbl",
    ] {
        assert!(
            accepted.iter().any(|a| a == want),
            "{want} refused: {accepted:?}"
        );
    }
    assert!(refused.iter().any(|r| r == "zero-window"), "{refused:?}");
    // Traffic first, so that the families have series, histograms buckets.
    let pair = NetnsPair::new();
    sysctl(&pair.srv, "net.ipv4.tcp_window_scaling", "0");
    let port = pair.port();
    let dir = TempDir::new("kspt");
    let args: Vec<&str> = accepted.iter().map(String::as_str).collect();
    let serve = Serve::start(&args);
    let _loss = pair.add_loss(&pair.cli, 5);
    slow_reader_exchange(&pair, port, "0.5", dir.path());
    let text = serve.scrape_text();
    let lint = promtool_lint(&dir.join("scrape.txt"), &text);
    let (st, stderr) = serve.stop();
    assert!(st.success(), "{stderr}");
    assert!(
        lint.is_none(),
        "promtool check metrics {}\nscrape:\n{text}",
        lint.unwrap_or_default()
    );
    for family in [
        "tcp_zero_window_segments_total{comm=\"tcpq-reader\"}",
        "tcp_connects_without_window_scaling_total ",
        "tcp_accepts_without_window_scaling_total ",
        "tcp_retransmitted_segments_total ",
        "tcp_srtt_seconds_bucket{le=\"+Inf\"}",
        "tcpq_tcp_recvmsg_size_bytes_bucket{comm=\"tcpq-reader\"",
        "tcpq_probe_attached{probe=\"tcp_select_window\"",
        "tcpq_build_info{version=",
        "tcpq_events_lost_total{",
        "tcpq_map_full_total{",
    ] {
        assert!(text.contains(family), "no {family} in the scrape:\n{text}");
    }
    eprintln!(
        "promtool: a scrape of {} recipes ({} bytes) passes; refused: {refused:?}",
        accepted.len(),
        text.len()
    );
}

/// `/-/healthy` answers while tcpq runs, `/-/ready` only once every probe
/// is attached (503 before: the attach is held back by a test hook,
/// `TCPQ_TEST_SERVE_ATTACH_DELAY_MS`, so the wait is seen), and SIGTERM
/// detaches every program and map.
#[kernel_test]
fn ready_after_attaching_and_sigterm_detaches_everything() {
    let env = [(
        "TCPQ_TEST_SERVE_ATTACH_DELAY_MS".to_string(),
        "1500".to_string(),
    )];
    let mut tcpq = Tcpq::spawn_with(
        &[
            "serve",
            "rtt-metrics",
            "zero-window-metrics",
            "--listen",
            "127.0.0.1:0",
        ],
        &env,
    );
    // The address is known before attaching: it is printed only with
    // `serving`, so find the listener from /proc instead.
    let pid = tcpq.pid().unwrap();
    let addr = common::wait_for(Duration::from_secs(10), || listening_port(pid))
        .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
        .unwrap_or_else(|| panic!("tcpq serve did not listen: {}", tcpq.stderr_so_far()));
    let (healthy, _, _) = http_get(addr, "/-/healthy", &[]).unwrap();
    let (early, _, _) = http_get(addr, "/-/ready", &[]).unwrap();
    let said_attached = tcpq
        .stderr_so_far()
        .lines()
        .any(common::tcpq::says_attached);
    tcpq.wait_attached(ATTACH);
    let (late, _, _) = http_get(addr, "/-/ready", &[]).unwrap();
    let (_, _, metrics) = http_get(addr, "/metrics", &[]).unwrap();
    let (progs, maps) = bpf_fds(pid);
    common::kill(pid, libc::SIGTERM);
    let (st, _, stderr) = tcpq.wait(Duration::from_secs(10));
    assert_eq!(healthy, 200);
    assert!(!said_attached, "attached before the hook's delay: {stderr}");
    assert_eq!(early, 503, "ready before attaching: {stderr}");
    assert_eq!(late, 200, "{stderr}");
    assert_eq!(
        metrics.matches("tcpq_probe_attached{").count(),
        2,
        "{metrics}"
    );
    assert!(progs.len() >= 2 && !maps.is_empty(), "{progs:?} {maps:?}");
    assert!(st.success(), "SIGTERM: {st}\n{stderr}");
    assert!(stderr.contains("tcpq: detached"), "{stderr}");
    assert_released(&progs, &maps, "SIGTERM to tcpq serve");
}

/// The port `pid` listens on (IPv4, from /proc/net/tcp: state 0A).
fn listening_port(pid: u32) -> Option<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            let s = l.to_string_lossy().into_owned();
            Some(s.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let tcp = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).ok()?;
    tcp.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(3) == Some(&"0A") && inodes.iter().any(|i| Some(&i.as_str()) == f.get(9)))
            .then(|| u16::from_str_radix(f[1].rsplit(':').next()?, 16).ok())
            .flatten()
    })
}

/// Run `tcpq serve ARGS` to its end: (exit code, stderr).
fn serve_fails(args: &[&str]) -> (Option<i32>, String) {
    let mut t = Tcpq::spawn(&[&["serve"], args].concat());
    let (st, _, stderr) = t.wait(Duration::from_secs(20));
    assert!(
        !stderr.lines().any(common::tcpq::says_attached),
        "it attached:\n{stderr}"
    );
    (st.code(), stderr)
}

#[kernel_test]
fn a_broken_recipe_is_a_located_error_and_nothing_is_served() {
    let dir = TempDir::new("ksb");
    let bad = dir.join("bad.tcpq");
    std::fs::write(&bad, "# Broken.\non tcp_probe where srtt >> 5 count as x\n").unwrap();
    let good = dir.join("good.tcpq");
    std::fs::write(&good, "on tcp_probe count as tcp_segments_received\n").unwrap();
    // A directory: the good recipe is not served alone.
    let (code, stderr) = serve_fails(&[dir.path().to_str().unwrap(), "--listen", "127.0.0.1:0"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("error[E0100]") && stderr.contains("bad.tcpq:2:"),
        "{stderr}"
    );
    let (code, stderr) = serve_fails(&[bad.to_str().unwrap(), "--param", "port=80"]);
    assert_eq!(code, Some(2), "{stderr}");
    let (code, stderr) = serve_fails(&["no-such-recipe"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("no recipe or file named `no-such-recipe`"),
        "{stderr}"
    );
}

#[kernel_test]
fn a_printing_clause_is_refused_where_it_is_written() {
    let (code, stderr) = serve_fails(&[
        "zero-window-metrics",
        "zero-window",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("error[E0214]"), "{stderr}");
    assert!(stderr.contains("<recipe zero-window>"), "{stderr}");
    assert!(stderr.contains("`print` here"), "{stderr}");
    let dir = TempDir::new("ksp");
    let f = dir.join("every.tcpq");
    std::fs::write(&f, "on tcp_retransmit count by comm every 10s\n").unwrap();
    let (code, stderr) = serve_fails(&[f.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("`every` here") && stderr.contains("every.tcpq:1:"),
        "{stderr}"
    );
}

#[kernel_test]
fn a_port_in_use_is_a_clear_error_before_anything_is_attached() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, stderr) = serve_fails(&["rtt-metrics", "--listen", &addr]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "tcpq: error: cannot listen on {addr}: Address already in use"
        )),
        "{stderr}"
    );
}

#[kernel_test]
fn a_bad_listen_address_is_a_clear_error() {
    let (code, stderr) = serve_fails(&["rtt-metrics", "--listen", "localhost"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--listen `localhost` is not an address and port"),
        "{stderr}"
    );
    let (code, stderr) = serve_fails(&["rtt-metrics", "--listen", "127.0.0.1:99999"]);
    assert_eq!(code, Some(2), "{stderr}");
    // An address of no interface here (TEST-NET-1): the bind fails.
    let (code, stderr) = serve_fails(&["rtt-metrics", "--listen", "192.0.2.1:9464"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot listen on 192.0.2.1:9464: Cannot assign requested address"),
        "{stderr}"
    );
}

/// Wait (at most 30 s) until tcpq's stderr holds `n` lines starting with
/// `prefix`; its stderr.
fn wait_said(serve: &Serve, prefix: &str, n: usize) -> String {
    common::wait_for(Duration::from_secs(30), || {
        let e = serve.tcpq.stderr_so_far();
        (e.lines().filter(|l| l.starts_with(prefix)).count() >= n).then_some(e)
    })
    .unwrap_or_else(|| {
        panic!(
            "no {n} `{prefix}` lines within 30 s:\n{}",
            serve.tcpq.stderr_so_far()
        )
    })
}

/// Wait (at most 30 s) until a scrape satisfies `ok`; the scrape.
fn wait_scrape(serve: &Serve, what: &str, ok: impl Fn(&str) -> bool) -> String {
    common::wait_for(Duration::from_secs(30), || {
        let t = serve.scrape_text();
        ok(&t).then_some(t)
    })
    .unwrap_or_else(|| {
        panic!(
            "no scrape {what} within 30 s: {}\nstderr:\n{}",
            serve.scrape_text(),
            serve.tcpq.stderr_so_far()
        )
    })
}

/// A sample's value in a text-format scrape (`NAME{labels} VALUE`).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A clause unchanged by a reload keeps its maps: zero-window segments
/// counted before SIGHUP and after it add up, in Prometheus, to the
/// wire's count over both transfers (tcpdump), and `resets()` sees none;
/// meanwhile the other recipe, a file changed before the signal, is
/// replaced (its old family gone, the new one served).
#[kernel_test]
fn counters_survive_sighup() {
    let pair = NetnsPair::new();
    sysctl(&pair.srv, "net.ipv4.tcp_window_scaling", "0");
    let port = pair.port();
    let dir = TempDir::new("ksh");
    let extra = dir.join("extra.tcpq");
    std::fs::write(&extra, "on tcp_retransmit count as reload_extra_one\n").unwrap();
    let pcap = dir.join("srv.pcap");
    let param = format!("port={port}");
    let (serve, prom, before) = served(&[
        "zero-window-metrics",
        extra.to_str().unwrap(),
        "--param",
        &param,
    ]);
    let pid = serve.tcpq.pid().unwrap();
    let (progs0, _) = bpf_fds(pid);
    let mut cap = Capture::start(&pair.srv, pair.srv_if(), &format!("tcp port {port}"), &pcap);
    let (d1, d2) = (dir.join("one"), dir.join("two"));
    std::fs::create_dir_all(&d1).unwrap();
    std::fs::create_dir_all(&d2).unwrap();
    let (w1, r1) = slow_reader_exchange(&pair, port, "1.0", &d1);
    let expr = "tcp_zero_window_segments_total{comm=\"tcpq-reader\"}";
    let mid = prom.scraped_after(unix_now());
    let v_mid = prom.value_at(expr, mid);
    std::fs::write(&extra, "on tcp_retransmit count as reload_extra_two\n").unwrap();
    common::kill(pid, libc::SIGHUP);
    let said = wait_said(&serve, "tcpq: reloaded:", 1);
    let (progs1, _) = bpf_fds(pid);
    let (w2, r2) = slow_reader_exchange(&pair, port, "1.0", &d2);
    let stats = cap.stop();
    for log in [&w1, &r1, &w2, &r2] {
        assert_eq!(log.bytes(), 1 << 20, "{log:?}");
    }
    assert_eq!(stats.dropped_by_kernel, 0, "tcpdump dropped packets");
    let wire = common::packets(&pcap)
        .into_iter()
        .filter(|p| p.sport == port && p.win == 0 && !p.syn() && !p.rst())
        .count();
    let (d, v0, v1) = grown(&prom, expr, before);
    let resets = prom.query(&format!("resets({expr}[10m])"), None);
    let text = serve.scrape_text();
    let (st, stderr) = serve.stop();
    let ctx = format!(
        "\n{expr}: {v0} -> {v_mid} (SIGHUP) -> {v1}; wire: {wire}; resets: {resets:?}\n\
         programs before {progs0:?}, after {progs1:?}\ntcpq serve ({st}):\n{stderr}\n\
         prometheus:\n{}",
        prom.log()
    );
    assert!(
        said.contains("tcpq: reloaded: 1 clause kept, 1 attached, 1 detached"),
        "{ctx}"
    );
    assert!(
        v_mid > 0.0 && v1 > v_mid,
        "not counted on both sides of the reload{ctx}"
    );
    assert_eq!(
        d, wire as f64,
        "the series grew by other than the wire's count{ctx}"
    );
    assert_eq!(resets.len(), 1, "{ctx}");
    assert_eq!(
        resets[0].value, 0.0,
        "Prometheus saw the counter reset{ctx}"
    );
    // The kept clause's programs are the same ones (ids), the replaced
    // clause's are gone and the new one's are new.
    let kept = progs0.keys().filter(|id| progs1.contains_key(id)).count();
    assert!(kept > 0 && kept < progs0.len(), "{ctx}");
    assert!(progs1.keys().any(|id| !progs0.contains_key(id)), "{ctx}");
    assert!(text.contains("\nreload_extra_two_total "), "{text}{ctx}");
    assert!(!text.contains("reload_extra_one"), "{text}{ctx}");
    assert!(
        text.contains("tcpq_reloads_total{result=\"success\"} 1\n")
            && text.contains("tcpq_last_reload_success 1\n"),
        "{text}{ctx}"
    );
    assert!(st.success(), "{ctx}");
    eprintln!("serve SIGHUP: +{d} == {wire} on the wire ({v_mid} before the reload), no reset");
}

/// A recipe directory is read again every 2 s: a new file's metric
/// appears without a signal; a file made broken is reported, the old set
/// keeps serving and `tcpq_last_reload_success` is 0 until it is fixed;
/// a removed file's family is gone and its programs and maps are
/// released; SIGTERM after all that leaves nothing loaded.
#[kernel_test]
fn a_recipe_directory_is_reloaded_when_it_changes() {
    let dir = TempDir::new("ksrd");
    let recipes = dir.join("recipes");
    std::fs::create_dir_all(&recipes).unwrap();
    std::fs::write(
        recipes.join("a.tcpq"),
        "# Retransmissions.\non tcp_retransmit count as reload_a\n",
    )
    .unwrap();
    let serve = Serve::start(&[recipes.to_str().unwrap()]);
    let pid = serve.tcpq.pid().unwrap();
    let (progs_a, maps_a) = bpf_fds(pid);
    let first = serve.scrape_text();
    assert!(first.contains("\nreload_a_total 0\n"), "{first}");
    // A new file: served after the poll.
    let b = recipes.join("b.tcpq");
    let good_b = "# Segments received.\non tcp_probe count as reload_b\n";
    std::fs::write(&b, good_b).unwrap();
    let text = wait_scrape(&serve, "with reload_b", |t| t.contains("\nreload_b_total "));
    assert!(text.contains("\nreload_a_total "), "{text}");
    let said = wait_said(&serve, "tcpq: reloaded:", 1);
    assert!(
        said.contains("tcpq: reloaded: 1 clause kept, 1 attached, 0 detached"),
        "{said}"
    );
    let (progs_ab, maps_ab) = bpf_fds(pid);
    assert!(
        progs_a.keys().all(|id| progs_ab.contains_key(id)),
        "{progs_a:?} {progs_ab:?}"
    );
    let progs_b: std::collections::BTreeMap<u32, String> = progs_ab
        .iter()
        .filter(|(id, _)| !progs_a.contains_key(id))
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    let maps_b: Vec<u32> = maps_ab
        .iter()
        .copied()
        .filter(|m| !maps_a.contains(m))
        .collect();
    assert!(
        !progs_b.is_empty() && !maps_b.is_empty(),
        "{progs_ab:?} {maps_ab:?}"
    );
    // Broken: reported, nothing changes but the self-metrics.
    std::fs::write(
        &b,
        "# Broken.\non tcp_probe where srtt >> 5 count as reload_b\n",
    )
    .unwrap();
    let said = wait_said(&serve, "tcpq: the reload failed", 1);
    assert!(
        said.contains("error[E0100]") && said.contains("b.tcpq:2:"),
        "{said}"
    );
    let text = serve.scrape_text();
    for want in [
        "\nreload_a_total ",
        "\nreload_b_total ",
        "\ntcpq_last_reload_success 0\n",
        "\ntcpq_reloads_total{result=\"failure\"} 1\n",
        "\ntcpq_reloads_total{result=\"success\"} 1\n",
    ] {
        assert!(text.contains(want), "no {want:?} in:\n{text}");
    }
    assert_eq!(
        bpf_fds(pid).0,
        progs_ab,
        "a failed reload changed the programs"
    );
    let (ready, _, _) = http_get(serve.addr, "/-/ready", &[]).unwrap();
    assert_eq!(ready, 200);
    // Fixed (a comment changed: the same plan, so the same clause).
    let b_count = sample(&text, "reload_b_total").unwrap();
    std::fs::write(&b, good_b.replace("Segments", "TCP segments")).unwrap();
    let said = wait_said(&serve, "tcpq: reloaded:", 2);
    assert!(
        said.contains("tcpq: reloaded: 2 clauses kept, 0 attached, 0 detached"),
        "{said}"
    );
    let text = serve.scrape_text();
    assert!(text.contains("\ntcpq_last_reload_success 1\n"), "{text}");
    assert!(
        text.contains("# HELP reload_b_total TCP segments received.\n"),
        "{text}"
    );
    let b_now = sample(&text, "reload_b_total").unwrap();
    assert!(b_now >= b_count, "reload_b went down: {b_count} -> {b_now}");
    assert_eq!(
        bpf_fds(pid).0,
        progs_ab,
        "an unchanged clause was attached again"
    );
    // Removed: its family and its programs gone.
    std::fs::remove_file(&b).unwrap();
    let text = wait_scrape(&serve, "without reload_b", |t| !t.contains("reload_b"));
    assert!(text.contains("\nreload_a_total "), "{text}");
    assert_released(&progs_b, &maps_b, "removing b.tcpq");
    assert_eq!(
        bpf_fds(pid).0,
        progs_a,
        "the kept clause's programs changed"
    );
    // SIGTERM after the reloads: nothing left.
    let (progs, maps) = bpf_fds(pid);
    let mut tcpq = serve.tcpq;
    common::kill(pid, libc::SIGTERM);
    let (st, _, stderr) = tcpq.wait(Duration::from_secs(10));
    assert!(st.success(), "SIGTERM: {st}\n{stderr}");
    assert!(stderr.contains("tcpq: detached"), "{stderr}");
    assert_released(&progs, &maps, "SIGTERM after reloads");
    assert_released(&progs_ab, &maps_ab, "SIGTERM after reloads");
}

/// A directory laid out as the kubelet mounts a ConfigMap (each recipe a
/// symlink through `..data`, itself a symlink to a timestamped directory)
/// reloads when `..data` is swapped to a new version, as the kubelet
/// updates it (docs/fleet.md): the new recipe served, the old one gone.
#[kernel_test]
fn a_configmap_volume_reloads_when_its_data_link_is_swapped() {
    use std::os::unix::fs::symlink;
    let dir = TempDir::new("kscm");
    let vol = dir.join("vol");
    let (v1, v2) = (vol.join("..2026_01_01_v1"), vol.join("..2026_01_02_v2"));
    std::fs::create_dir_all(&v1).unwrap();
    std::fs::create_dir_all(&v2).unwrap();
    std::fs::write(v1.join("r.tcpq"), "on tcp_retransmit count as cm_one\n").unwrap();
    std::fs::write(v2.join("r.tcpq"), "on tcp_retransmit count as cm_two\n").unwrap();
    symlink("..2026_01_01_v1", vol.join("..data")).unwrap();
    symlink("..data/r.tcpq", vol.join("r.tcpq")).unwrap();
    let serve = Serve::start(&[vol.to_str().unwrap()]);
    let first = serve.scrape_text();
    assert!(first.contains("\ncm_one_total "), "{first}");
    // The kubelet's swap: a new link renamed over `..data`.
    symlink("..2026_01_02_v2", vol.join("..data_tmp")).unwrap();
    std::fs::rename(vol.join("..data_tmp"), vol.join("..data")).unwrap();
    std::fs::remove_dir_all(&v1).unwrap();
    let text = wait_scrape(&serve, "with cm_two", |t| t.contains("\ncm_two_total "));
    assert!(!text.contains("cm_one"), "{text}");
    let said = wait_said(&serve, "tcpq: reloaded:", 1);
    assert!(
        said.contains("tcpq: reloaded: 0 clauses kept, 1 attached, 1 detached"),
        "{said}"
    );
    let (st, stderr) = serve.stop();
    assert!(st.success(), "{stderr}");
}

/// A node's worth of kubelet layout, made for one test and removed on
/// Drop (even when the test fails): cgroup v2 directories named as the
/// kubelet and the runtimes name them, under a top cgroup of the test's
/// own (as kubelet's `--cgroup-root` puts them), and the kubelet's log
/// tree in a temp dir. cgroup2 is mounted at a temp point when the machine
/// has no cgroup2 mount (and unmounted after).
struct KubeNode {
    /// The cgroup2 hierarchy's root as mounted.
    root: std::path::PathBuf,
    /// Our temp mount of it, if we made one.
    mounted: Option<std::path::PathBuf>,
    /// The test's top cgroup, `<root>/tcpqk8sPIDxN.slice`.
    top: std::path::PathBuf,
    /// Every cgroup created, parents first.
    made: Vec<std::path::PathBuf>,
    logs: TempDir,
}

impl KubeNode {
    fn new() -> KubeNode {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        let found = mounts
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|w| w.len() > 2 && w[2] == "cgroup2")
            .map(|w| std::path::PathBuf::from(w[1]));
        let logs = TempDir::new("k8s");
        let (root, mounted) = match found {
            Some(r) => (r, None),
            None => {
                let m = logs.join("cgroup2");
                std::fs::create_dir(&m).unwrap();
                common::run_ok("mount", &["-t", "cgroup2", "none", m.to_str().unwrap()]);
                (m.clone(), Some(m))
            }
        };
        let prefix = format!("tcpqk8s{}x{}", std::process::id(), common::next_id());
        let top = root.join(format!("{prefix}.slice"));
        let mut node = KubeNode {
            root,
            mounted,
            top: top.clone(),
            made: Vec::new(),
            logs,
        };
        node.mkdir(&top);
        std::fs::create_dir_all(node.logs.join("log/pods")).unwrap();
        std::fs::create_dir_all(node.logs.join("log/containers")).unwrap();
        node
    }

    fn mkdir(&mut self, d: &std::path::Path) {
        std::fs::create_dir(d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
        self.made.push(d.to_path_buf());
    }

    /// `rel` (under the top cgroup) and its missing parents.
    fn cgroup(&mut self, rel: &str) -> std::path::PathBuf {
        let mut d = self.top.clone();
        for c in rel.split('/') {
            d = d.join(c);
            if !d.exists() {
                self.mkdir(&d);
            }
        }
        d
    }

    /// The kubelet's logs of one container: its pod's directory, the
    /// container's with `0.log`, and the `/var/log/containers` link.
    fn logs_of(&self, ns: &str, pod: &str, uid: &str, container: &str, id: &str) {
        let dir = self
            .logs
            .join(&format!("log/pods/{ns}_{pod}_{uid}/{container}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("0.log"), "").unwrap();
        std::os::unix::fs::symlink(
            dir.join("0.log"),
            self.logs
                .join(&format!("log/containers/{pod}_{ns}_{container}-{id}.log")),
        )
        .unwrap();
    }

    fn log_dir(&self) -> String {
        self.logs.join("log").display().to_string()
    }

    /// Remove one cgroup now (its processes moved out first).
    fn remove(&mut self, d: &std::path::Path) {
        self.evacuate(d);
        let gone = common::wait_for(Duration::from_secs(5), || std::fs::remove_dir(d).ok());
        assert!(gone.is_some(), "cannot remove cgroup {}", d.display());
        self.made.retain(|m| m != d);
    }

    /// Move whatever still runs in `d` to the root cgroup.
    fn evacuate(&self, d: &std::path::Path) {
        let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.split_whitespace() {
            let _ = std::fs::write(self.root.join("cgroup.procs"), pid);
        }
    }
}

fn ino(p: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().ino()
}

impl Drop for KubeNode {
    fn drop(&mut self) {
        for d in self.made.iter().rev() {
            self.evacuate(d);
            let ok = common::wait_for(Duration::from_secs(2), || std::fs::remove_dir(d).ok());
            if ok.is_none() && d.exists() {
                eprintln!("warning: could not remove cgroup {}", d.display());
            }
        }
        if let Some(m) = &self.mounted {
            let _ = std::process::Command::new("umount").arg(m).status();
        }
    }
}

/// `--kubernetes`: with cgroups named as the kubelet names them for both
/// drivers and the kubelet's log tree (both made here), a `by cgroup`
/// count of connects gets each pod's namespace, pod and container, equal
/// to the connections the generator in that cgroup made; their sum equals
/// the client namespace's TcpActiveOpens (nstat). A cgroup that is no
/// pod's gets no k8s label and is not counted; a pod without log
/// directory and a cgroup removed before the scrape get none either and
/// are counted, once each, in `tcpq_kubernetes_unresolved_total`.
#[kernel_test]
fn kubernetes_labels_name_the_pod_of_each_cgroup() {
    let mut node = KubeNode::new();
    let tag = format!(
        "{:012x}",
        (std::process::id() as u64) << 16 | common::next_id() as u64
    );
    let uid = |n: u8| format!("4f1c2a3e-5f6b-4c7d-9e0{n}-{tag}");
    let cid = |n: u8| format!("{n:02x}{}", "c0ffee".repeat(10)) + &tag[..2];
    let p = node
        .top
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .trim_end_matches(".slice")
        .to_string();
    // The systemd driver (kubelet --cgroup-root=/PREFIX), containerd.
    let (ua, ca) = (uid(1), cid(1));
    let web = node.cgroup(&format!(
        "{p}-kubepods.slice/{p}-kubepods-besteffort.slice/\
         {p}-kubepods-besteffort-pod{}.slice/cri-containerd-{ca}.scope",
        ua.replace('-', "_")
    ));
    node.logs_of("shop", "web-0", &ua, "nginx", &ca);
    // The cgroupfs driver.
    let (ub, cb) = (uid(2), cid(2));
    let job = node.cgroup(&format!("kubepods/burstable/pod{ub}/{cb}"));
    node.logs_of("batch", "job-x", &ub, "worker", &cb);
    // A pod whose log directory is missing.
    let (uc, cc) = (uid(3), cid(3));
    let orphan = node.cgroup(&format!("kubepods/besteffort/pod{uc}/{cc}"));
    // No pod's; and one removed before anything is scraped.
    let plain = node.cgroup("system.slice");
    let gone = node.cgroup("gone.scope");
    assert_eq!(cb.len(), 64, "{cb}");

    let pair = NetnsPair::new();
    let port = pair.port();
    let dir = TempDir::new("ksk");
    let recipe = dir.join("pods.tcpq");
    std::fs::write(
        &recipe,
        format!(
            "# Connections made, per cgroup.\n\
             on tcp_connect where dport == {port} count by cgroup as tcpq_test_pod_connects\n"
        ),
    )
    .unwrap();
    let log_dir = node.log_dir();
    let root = node.mounted.as_ref().map(|m| m.display().to_string());
    let mut args = vec![
        recipe.to_str().unwrap(),
        "--kubernetes",
        "--kubernetes-log-dir",
        &log_dir,
    ];
    if let Some(r) = &root {
        args.extend(["--kubernetes-cgroup-root", r]);
    }
    let serve = Serve::start(&args);
    let addr = IpAddr::V4(pair.srv_v4());
    let _server = Server::start(
        &pair.srv,
        addr,
        port,
        &["--accept", "0", "--max-seconds", "30"],
        dir.path(),
    );
    let opens0 = common::nstat(&pair.cli, &["TcpActiveOpens"])["TcpActiveOpens"];
    let mut made = Vec::new();
    for (cg, n) in [(&web, 3), (&job, 2), (&orphan, 1), (&plain, 1), (&gone, 1)] {
        let n_s = n.to_string();
        let mut c = common::tcpgen::Client::start_as(
            &pair.cli,
            addr,
            port,
            1000,
            &["--connections", &n_s],
            dir.path(),
            &common::tcpgen::Launch {
                uid: None,
                cgroup: Some(cg.clone()),
            },
        );
        let log = c.wait(Duration::from_secs(20));
        made.push((ino(cg), log.all("connected").len() as u64));
    }
    let opens = common::nstat(&pair.cli, &["TcpActiveOpens"])["TcpActiveOpens"] - opens0;
    let gone_id = ino(&gone);
    node.remove(&gone);

    let text = serve.scrape_text();
    let again = serve.scrape_text();
    let (st, stderr) = serve.stop();
    let ctx = format!("\nconnects made {made:?}; TcpActiveOpens +{opens}\nscrape:\n{text}\ntcpq serve ({st}):\n{stderr}");
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("tcpq_test_pod_connects_total{"))
        .collect();
    let want = |id: u64, k8s: &str, n: u64| {
        format!("tcpq_test_pod_connects_total{{cgroup=\"{id}\"{k8s}}} {n}")
    };
    let expected = [
        want(
            made[0].0,
            ",k8s_namespace_name=\"shop\",k8s_pod_name=\"web-0\",k8s_container_name=\"nginx\"",
            made[0].1,
        ),
        want(
            made[1].0,
            ",k8s_namespace_name=\"batch\",k8s_pod_name=\"job-x\",k8s_container_name=\"worker\"",
            made[1].1,
        ),
        want(made[2].0, "", made[2].1),
        want(made[3].0, "", made[3].1),
        want(gone_id, "", made[4].1),
    ];
    assert_eq!(
        made.iter().map(|m| m.1).collect::<Vec<_>>(),
        [3, 2, 1, 1, 1],
        "the generators' connections{ctx}"
    );
    for w in &expected {
        assert!(series.contains(&w.as_str()), "no `{w}`{ctx}");
    }
    assert_eq!(series.len(), expected.len(), "{ctx}");
    let total: u64 = made.iter().map(|m| m.1).sum();
    assert_eq!(total, opens, "the kernel's TcpActiveOpens{ctx}");
    for (reason, n) in [
        ("cgroup_not_found", 1),
        ("pod_not_found", 1),
        ("container_not_found", 0),
    ] {
        let line = format!("tcpq_kubernetes_unresolved_total{{reason=\"{reason}\"}} {n}");
        assert!(text.contains(&format!("{line}\n")), "no `{line}`{ctx}");
        // Counted once per id, not once per scrape.
        assert!(
            again.contains(&format!("{line}\n")),
            "not `{line}` again:\n{again}{ctx}"
        );
    }
    // The labels and the self-metric pass promtool's lint too.
    let lint = promtool_lint(&dir.join("scrape.txt"), &text);
    assert!(
        lint.is_none(),
        "promtool check metrics: {}{ctx}",
        lint.unwrap_or_default()
    );
    assert!(st.success(), "{ctx}");
    eprintln!("serve --kubernetes: {series:?}");
}

/// Entries of `pid`'s aggregation map `name` (`bpftool map dump`: the
/// kernel's own view of the keys tcpq has not deleted).
fn agg_map_entries(pid: u32, name: &str) -> usize {
    let (_, maps) = bpf_fds(pid);
    let ids: Vec<u32> = maps
        .into_iter()
        .filter(|id| {
            common::bpf::bpftool_json(&["map", "show", "id", &id.to_string()])
                .is_some_and(|m| m["name"] == name)
        })
        .collect();
    assert_eq!(ids.len(), 1, "{name}: maps {ids:?}");
    common::bpf::bpftool_json(&["map", "dump", "id", &ids[0].to_string()])
        .and_then(|d| d.as_array().map(Vec::len))
        .unwrap_or_else(|| panic!("bpftool map dump id {}", ids[0]))
}

/// `VmRSS` of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// The cardinality limit against 10,000 destination ports: ten rounds of
/// 1,000 connection attempts from the client namespace, each to a port
/// of its own where nobody listens (`--port-sweep`: the server's kernel
/// answers every SYN with a reset), counted by `tcp_connect_attempt ...
/// count by dport` with `--series-limit 100 --series-idle 4s`. After each
/// round the test waits (polling, no timed assertion) until the round's
/// label sets have expired, so each round meets an empty limit: 100 of
/// its ports get a series of their own, 900 go to the overflow series.
///
/// - every scrape has at most 100 `dport` series and one
///   `{otel_metric_overflow="true"}`;
/// - `tcpq_series_dropped_total` is 900 per round, 9,000 in all;
/// - the family's sum is 10,000, equal to the generator's refused
///   connections and to the client namespace's `TcpAttemptFails` (the
///   kernel counts one in `tcp_done()` for a socket closed in SYN_SENT, as
///   `tcp_reset()` does on a SYN answered by a reset), at tcpq's own
///   scrape and at Prometheus's;
/// - the kernel's aggregation map is empty at the end (bpftool): expiry
///   deleted every key;
/// - RSS after 10,000 ports is within 1 MiB of RSS after the first 1,000.
///   The bound: a round holds at most 1,000 label sets at once and their
///   state is freed when they expire, so what may grow is the allocator's
///   slack; state kept per label set (a few hundred bytes each: 9,000 of
///   them leaked is several MiB) or a kernel map that kept its 10,000 keys
///   (each read then copies all of them) would not fit in it. tcpq runs
///   with `MALLOC_ARENA_MAX=1` here: glibc gives threads their own arenas
///   (tokio's blocking threads come and go), and a new one adds about
///   0.5-1 MiB at once whatever tcpq keeps (measured over 30,000 ports:
///   +2.0 MiB with arenas, +0.4 MiB with one, flat after 20,000), which
///   says nothing about tcpq's own state.
#[kernel_test]
fn ten_thousand_ports_stay_within_the_series_limit() {
    const ROUNDS: u16 = 10;
    const PORTS: u16 = 1000;
    const LIMIT: usize = 100;
    const FIRST: u16 = 40000;
    let pair = NetnsPair::new();
    let dir = TempDir::new("kscard");
    let recipe = dir.join("ports.tcpq");
    std::fs::write(
        &recipe,
        format!(
            "# Connection attempts from the test's client namespace, by port.\n\
             on tcp_connect_attempt where netns == {} count by dport as tcpq_test_attempts\n",
            common::netns::inode(&pair.cli)
        ),
    )
    .unwrap();
    let serve = Serve::start_with(
        &[
            recipe.to_str().unwrap(),
            "--series-limit",
            &LIMIT.to_string(),
            "--series-idle",
            "4s",
        ],
        &[("MALLOC_ARENA_MAX".to_string(), "1".to_string())],
    );
    let pid = serve.tcpq.pid().unwrap();
    let prom = Prometheus::start(serve.addr);
    let fails0 = common::nstat(&pair.cli, &["TcpAttemptFails"])["TcpAttemptFails"];
    let addr = IpAddr::V4(pair.srv_v4());
    let family = "tcpq_test_attempts_total";
    let overflow = format!("{family}{{otel_metric_overflow=\"true\"}}");
    // (own series, overflow series, family sum, dropped) of one scrape.
    let read = |text: &str| {
        let mut own = 0;
        let mut over = 0;
        let mut sum = 0.0;
        let mut dropped = None;
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((k, v)) = l.rsplit_once(' ') else {
                continue;
            };
            let v: f64 = v.parse().unwrap_or(f64::NAN);
            if k == overflow {
                over += 1;
                sum += v;
            } else if k.starts_with(&format!("{family}{{dport=")) {
                own += 1;
                sum += v;
            } else if k == "tcpq_series_dropped_total{metric=\"tcpq_test_attempts\"}" {
                dropped = Some(v);
            }
        }
        (own, over, sum, dropped.expect("tcpq_series_dropped_total"))
    };
    let mut refused = 0;
    let mut most_own = 0;
    let mut rss_first = 0;
    let mut rss = Vec::new();
    let mut last = String::new();
    // A scrape with series of their own and the overflow series.
    let mut mixed = String::new();
    for r in 0..ROUNDS {
        let mut client = Client::start(
            &pair.cli,
            addr,
            FIRST + r * PORTS,
            0,
            &[
                "--connections",
                &PORTS.to_string(),
                "--port-sweep",
                "--max-seconds",
                "60",
            ],
            dir.path(),
        );
        let log = client.wait(Duration::from_secs(70));
        let n = log.all("refused").len();
        assert_eq!(
            n,
            PORTS as usize,
            "round {r}: {n} refused; connect errors {:?}, timeouts {:?}",
            log.all("connect_error"),
            log.all("timeout")
        );
        refused += n;
        // Until the round's label sets have left: no series of their own.
        let gone = common::wait_for(Duration::from_secs(30), || {
            let text = serve.scrape_text();
            let (own, over, _, _) = read(&text);
            most_own = most_own.max(own);
            if own > 0 && over == 1 && mixed.is_empty() {
                mixed = text.clone();
            }
            assert!(
                own <= LIMIT && over <= 1,
                "round {r}: {own} series + {over}:\n{text}"
            );
            last = text;
            (own == 0).then_some(())
        });
        assert!(gone.is_some(), "round {r}: series did not expire:\n{last}");
        let (_, over, sum, dropped) = read(&last);
        let done = f64::from(r + 1);
        assert_eq!(over, 1, "{last}");
        assert_eq!(
            sum,
            done * f64::from(PORTS),
            "round {r}: family sum\n{last}"
        );
        assert_eq!(
            dropped,
            done * (f64::from(PORTS) - LIMIT as f64),
            "round {r}: dropped\n{last}"
        );
        if r == 0 {
            rss_first = rss_kib(pid);
        }
        rss.push(rss_kib(pid));
    }
    let rss_last = rss_kib(pid);
    let entries = agg_map_entries(pid, "TCPQ_AGG_SMALL");
    let fails = common::nstat(&pair.cli, &["TcpAttemptFails"])["TcpAttemptFails"] - fails0;
    let after = prom.scraped_after(unix_now());
    let prom_sum = prom.value_at(&format!("sum({family})"), after);
    let prom_dropped = prom.value_at("tcpq_series_dropped_total", after);
    // The overflow series beside the others is valid exposition, as
    // promtool reads it.
    assert!(!mixed.is_empty(), "no scrape had both kinds of series");
    let lint = promtool_lint(&dir.join("scrape.txt"), &mixed);
    let (st, stderr) = serve.stop();
    let ctx = format!(
        "\nrefused {refused}, TcpAttemptFails +{fails}, Prometheus sum {prom_sum}, dropped \
         {prom_dropped}; RSS {rss_first} -> {rss_last} KiB; map entries {entries}\n\
         last scrape:\n{last}\ntcpq serve ({st}):\n{stderr}"
    );
    let total = usize::from(ROUNDS) * usize::from(PORTS);
    assert_eq!(refused, total, "{ctx}");
    assert_eq!(fails, total as u64, "{ctx}");
    assert_eq!(read(&last).2, total as f64, "{ctx}");
    assert_eq!(prom_sum, total as f64, "{ctx}");
    assert_eq!(
        prom_dropped,
        (total - usize::from(ROUNDS) * LIMIT) as f64,
        "{ctx}"
    );
    assert_eq!(most_own, LIMIT, "no round filled the limit{ctx}");
    assert_eq!(entries, 0, "expiry left keys in the kernel's map{ctx}");
    assert!(
        rss_last <= rss_first + 1024,
        "RSS grew by more than 1 MiB over 9,000 more ports (after each round: {rss:?}){ctx}"
    );
    assert!(
        lint.is_none(),
        "promtool check metrics: {}{ctx}",
        lint.unwrap_or_default()
    );
    assert!(st.success(), "{ctx}");
    eprintln!(
        "serve cardinality: {total} ports, {LIMIT} series + overflow, dropped {prom_dropped}, \
         sum {prom_sum} == TcpAttemptFails +{fails}; RSS {rss_first} -> {rss_last} KiB \
         (after each round: {rss:?})"
    );
}
