//! Every tcpq example in the docs runs live, against the kernel.
//!
//! `tests/docs.rs` and `tests/language_doc.rs` run the examples through the
//! checker (`--check`); this test attaches them for real. Examples are taken
//! from README.md, docs/*.md, docs/lab/*.md and the `@example` lines of
//! recipes/*.tcpq:
//! - `$ [sudo] tcpq ...` lines in fenced blocks (the lines after one, up to
//!   the next `$`, are the output the page shows), and bare `tcpq ...` lines
//!   in fenced blocks without `$` (README's build line runs its tcpq part);
//! - ```` ```tcpq ```` blocks and fenced blocks of `on PROBE ...` lines:
//!   programs, run as `tcpq -e BLOCK`; ```` ```tcpq-error ```` blocks must fail
//!   with the code on their first line;
//! - inline code spans that are an invocation (`tcpq ...`, a span of flags
//!   right after the word tcpq, `on PROBE ...`).
//!
//! Each program is attached while TCP traffic it is about runs (only in
//! namespaces the test or the lab creates), bounded by its own
//! `--duration` or, when it has none, an appended `--duration 3s`. It must
//! exit 0, say `attached` on stderr, print no error, and print what can be
//! predicted: the header and rows the page shows after it (values that vary
//! from run to run, numbers and `task_comm`, are not compared; rows with an
//! unknown owner `-` are skipped), plus the expectations in `EXPECT`.
//! Examples showing a diagnostic must exit 2 with it.
//!
//! The pages of docs/lab/ and docs/tutorial.md are run as written, in
//! order, with the lab they start: `tcpq lab start|rerun|stop` and their
//! `ip netns exec tcpq-lab-...` steps (the fixes) are executed, and the
//! programs between two steps run concurrently. The lab is stopped even when
//! the test fails (a Drop guard). Every other example runs at once, while
//! the test's own traffic flows between namespace pairs it creates (see
//! `Traffic`). Not tcpq commands and so not examples: the bpftrace and BCC
//! programs quoted from the seed story (docs/tutorial.md) and non-tcpq shell
//! lines. What cannot run is listed in `NOT_RUN` with the reason; an example
//! that is neither run nor listed fails the test, and so does a stale entry.
use crate::common;
use crate::doc_examples::*;
use tcpq_kernel_test::kernel_test;

use common::tcpq::says_attached;
use common::{Client, NetnsPair, Server, Tcpq, TempDir};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

/// The rows of tcpq's text tables, as column -> value. The first line is a
/// header; with several clauses each has one, all first, their first
/// column `probe`, and a row belongs to the header with as many columns.
fn table(stdout: &str) -> Vec<BTreeMap<&str, &str>> {
    // `every DUR` opens each interval with an `@ TIME interval N` banner.
    let mut lines = stdout.lines().filter(|l| !l.starts_with("@ "));
    let Some(first) = lines.next() else {
        return Vec::new();
    };
    let mut headers: Vec<Vec<&str>> = vec![first.split_whitespace().collect()];
    let mut rows = Vec::new();
    for l in lines {
        let v: Vec<&str> = l.split_whitespace().collect();
        if v.first() == Some(&"probe") {
            headers.push(v);
        } else if let Some(h) = headers.iter().find(|h| h.len() == v.len()) {
            rows.push(h.iter().copied().zip(v).collect());
        }
    }
    rows
}

fn check_output(run: &Run, stdout: &str, stderr: &str) -> Result<(), String> {
    let e = &run.expect;
    let rows = table(stdout);
    let has_row = |want: &[(String, String)]| {
        rows.iter().any(|r| {
            want.iter()
                .all(|(c, v)| r.get(c.as_str()).is_some_and(|x| x == v))
        })
    };
    if let Some(h) = &e.header {
        let got = stdout.lines().find(|l| !l.starts_with("@ ")).unwrap_or("");
        let got = got.split_whitespace().collect::<Vec<_>>().join(" ");
        if &got != h {
            return Err(format!(
                "the page shows the header `{h}`, tcpq printed `{got}`"
            ));
        }
    }
    if let Some(l) = &e.stderr_line {
        if !stderr.lines().any(|x| x.starts_with(l.as_str())) {
            return Err(format!("the page shows `{l}` on stderr"));
        }
    }
    for want in &e.rows {
        if !has_row(want) {
            return Err(format!("the page shows a row with {want:?}; none printed"));
        }
    }
    for c in &e.checks {
        let ok = if let Some(t) = c.strip_prefix("stderr~") {
            stderr.contains(t)
        } else if let Some(t) = c.strip_prefix('~') {
            stdout.contains(t)
        } else if let Some(n) = c.strip_prefix("rows>=") {
            rows.len() >= n.parse().unwrap()
        } else if let Some(n) = c.strip_prefix("rows<=") {
            rows.len() <= n.parse().unwrap()
        } else {
            let want: Vec<(String, String)> = c
                .split(',')
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap();
                    (k.to_string(), v.to_string())
                })
                .collect();
            has_row(&want)
        };
        if !ok {
            return Err(format!("expected `{c}` ({} rows)", rows.len()));
        }
    }
    Ok(())
}

fn shorten(s: &str) -> String {
    const MAX: usize = 3000;
    if s.len() <= MAX {
        return s.to_string();
    }
    let cut = (0..=MAX).rev().find(|&i| s.is_char_boundary(i)).unwrap();
    format!("{}\n... ({} bytes)", &s[..cut], s.len())
}

/// Materialise a run's recipe file; returns the args to use.
fn args_with_recipe(run: &Run, dir: &TempDir) -> Vec<String> {
    let mut args = run.args.clone();
    if let Some((name, body)) = &run.recipe {
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        args[0] = path.display().to_string();
    }
    args
}

/// Run a command that does not attach (a diagnostic, `-l`, `doctor`,
/// `lab list`, `sockets`) to completion.
fn run_plain(run: &Run, dir: &TempDir) -> Result<(), String> {
    let out = Command::new(Tcpq::bin())
        .args(args_with_recipe(run, dir))
        .envs(run.env.iter().map(|(k, v)| (k, v)))
        .env("NO_COLOR", "1")
        .current_dir(ROOT)
        .output()
        .map_err(|e| format!("spawn: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ctx = || {
        format!(
            "\nstderr:\n{}\nstdout:\n{}",
            shorten(&stderr),
            shorten(&stdout)
        )
    };
    if stderr.lines().any(says_attached) {
        return Err(format!("attached, but must not{}", ctx()));
    }
    if let Some((code, exact)) = &run.expect.error {
        if out.status.code() != Some(2) {
            return Err(format!(
                "expected exit 2 with {code}, got {}{}",
                out.status,
                ctx()
            ));
        }
        if !stderr.contains(&format!("error[{code}]")) {
            return Err(format!("expected error[{code}]{}", ctx()));
        }
        if let Some(exact) = exact {
            if stderr.trim_end() != exact {
                return Err(format!(
                    "the page shows\n{exact}\nbut tcpq prints\n{stderr}"
                ));
            }
        }
        return Ok(());
    }
    if !out.status.success() {
        return Err(format!("exit {}{}", out.status, ctx()));
    }
    check_output(run, &stdout, &stderr).map_err(|e| format!("{e}{}", ctx()))
}

/// Run programs that attach, all at once; then wait for each to end by
/// its `--duration` (or `limit`). Returns the failures.
fn run_attached(runs: &[Run], dir: &TempDir) -> Vec<String> {
    let mut live: Vec<(&Run, Tcpq)> = runs
        .iter()
        .map(|r| {
            let args = args_with_recipe(r, dir);
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut t = Tcpq::spawn_with(&argv, &r.env);
            t.args = args.clone();
            (r, t)
        })
        .collect();
    let mut failures = Vec::new();
    let attach_timeout = Duration::from_secs(45);
    let mut attached = vec![false; live.len()];
    for (i, (r, t)) in live.iter_mut().enumerate() {
        match t.try_wait_attached(attach_timeout) {
            Ok(()) => attached[i] = true,
            Err(e) => failures.push(format!("{}: {}", r.name(), shorten(&e))),
        }
    }
    for (i, (r, t)) in live.iter_mut().enumerate() {
        if !attached[i] {
            continue;
        }
        let (status, stdout, stderr) = t.wait(Duration::from_secs(40));
        let ctx = || {
            format!(
                "\nstderr:\n{}\nstdout:\n{}",
                shorten(&stderr),
                shorten(&stdout)
            )
        };
        let res = if !status.success() {
            Err(format!("exit {status}"))
        } else if let Some(l) = stderr.lines().find(|l| l.to_lowercase().contains("error")) {
            Err(format!("error on stderr: {l}"))
        } else {
            check_output(r, &stdout, &stderr)
        };
        if let Err(e) = res {
            failures.push(format!("{}: {e}{}", r.name(), ctx()));
        }
    }
    failures
}

/// Dedupe identical runs (same args) into one, keeping every location.
fn dedupe(runs: Vec<Run>) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    for r in runs {
        match out.iter_mut().find(|o| o.key() == r.key()) {
            Some(o) => {
                o.at.extend(r.at);
                if o.expect.checks.is_empty() {
                    o.expect.checks = r.expect.checks;
                }
                if o.expect.header.is_none() {
                    o.expect.header = r.expect.header;
                    o.expect.rows = r.expect.rows;
                    o.expect.stderr_line = r.expect.stderr_line;
                }
            }
            None => out.push(r),
        }
    }
    out
}

fn run_batch(runs: Vec<Run>, dir: &TempDir) -> Vec<String> {
    let runs = dedupe(runs);
    let (attach, plain): (Vec<Run>, Vec<Run>) = runs.into_iter().partition(|r| r.expect.attaches);
    let mut failures: Vec<String> = plain
        .iter()
        .filter_map(|r| {
            run_plain(r, dir)
                .err()
                .map(|e| format!("{}: {e}", r.name()))
        })
        .collect();
    failures.extend(run_attached(&attach, dir));
    failures
}

// ---------------------------------------------------------------------------
// Labs

fn lab_cmd(args: &[String]) -> std::process::Output {
    Command::new(Tcpq::bin())
        .args(args)
        .current_dir(ROOT)
        .output()
        .expect("run tcpq lab")
}

/// A lab a page started: stopped on Drop unless the page stopped it.
struct LabGuard {
    name: Option<String>,
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        if let Some(n) = self.name.take() {
            let _ = Command::new(Tcpq::bin()).args(["lab", "stop", &n]).output();
        }
    }
}

/// Run a page (docs/lab/*.md, docs/tutorial.md) in order: lab steps one by
/// one, the examples between two steps at once.
fn run_page(examples: &[Example], failures: &mut Vec<String>, ran: &mut usize) {
    let dir = TempDir::new("docs-page");
    let mut guard = LabGuard { name: None };
    let mut batch: Vec<Run> = Vec::new();
    let flush = |batch: &mut Vec<Run>, failures: &mut Vec<String>| {
        failures.extend(run_batch(std::mem::take(batch), &dir));
    };
    for ex in examples {
        match &ex.what {
            What::Tcpq { args, .. }
                if args.first().is_some_and(|a| a == "lab") && args.len() > 2 =>
            {
                flush(&mut batch, failures);
                *ran += 1;
                let (verb, name) = (args[1].as_str(), args[2].clone());
                eprintln!("{}: tcpq {}", ex.at(), args.join(" "));
                let mut out = lab_cmd(args);
                // Another run (kernel_lab, another checkout) may hold the
                // scenario for a few seconds.
                let t0 = Instant::now();
                while verb == "start"
                    && !out.status.success()
                    && String::from_utf8_lossy(&out.stderr).contains("already running")
                    && t0.elapsed() < Duration::from_secs(30)
                {
                    std::thread::sleep(Duration::from_millis(500));
                    out = lab_cmd(args);
                }
                match verb {
                    "start" => guard.name = Some(name),
                    "stop" => guard.name = None,
                    _ => {}
                }
                if !out.status.success() {
                    failures.push(format!(
                        "{}: `tcpq {}`: {}\n{}",
                        ex.at(),
                        args.join(" "),
                        out.status,
                        String::from_utf8_lossy(&out.stderr)
                    ));
                    if verb == "start" {
                        return;
                    }
                }
            }
            What::LabShell(argv) => {
                flush(&mut batch, failures);
                *ran += 1;
                eprintln!("{}: {}", ex.at(), argv.join(" "));
                let out = Command::new(&argv[0]).args(&argv[1..]).output().unwrap();
                if !out.status.success() {
                    failures.push(format!(
                        "{}: `{}`: {}\n{}",
                        ex.at(),
                        argv.join(" "),
                        out.status,
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
            }
            _ => {
                if let Ok(r) = plan(ex) {
                    *ran += 1;
                    batch.push(r);
                }
            }
        }
    }
    flush(&mut batch, failures);
}

// ---------------------------------------------------------------------------
// The test's own traffic

/// Traffic for the examples outside the lab pages, between namespace pairs
/// this test creates (nothing leaves them):
/// - zero windows on 8080: window scaling off in the server namespace, a
///   reader (`tcpq-reader`) that idles 1 s and then reads 4 KiB every 10 ms,
///   a writer (`tcpq-writer`) as fast as it can: the README's recording;
/// - churn on 8080: `churn-writer` makes connection after connection to
///   `churn-reader`, 256 KiB each, with 2% of its packets lost on the way
///   (retransmissions; segments dropped by netfilter);
/// - churn on 443, lossless (`tcpconnect.tcpq --param port=443`, the
///   language page's `dport == 443`).
struct Traffic {
    // Processes first: they are killed before their namespaces go.
    _procs: (Vec<Server>, Vec<Client>),
    _loss: common::Loss,
    _pairs: Vec<NetnsPair>,
    _dirs: Vec<TempDir>,
}

impl Traffic {
    fn start() -> Traffic {
        let (zw, churn, c443) = (NetnsPair::new(), NetnsPair::new(), NetnsPair::new());
        // One directory per pair: the servers' logs are named by port.
        let dirs: Vec<TempDir> = (0..3).map(|_| TempDir::new("docs-traffic")).collect();
        common::sysctl(&zw.srv, "net.ipv4.tcp_window_scaling", "0");
        let loss = churn.add_loss(&churn.cli, 2);
        churn.set_gso_max_segs(&churn.cli, 4);
        let v4 = |p: &NetnsPair| IpAddr::V4(p.srv_v4());
        let secs = ["--max-seconds", "120"];
        let slow_reader = [
            "--idle-before-read",
            "1",
            "--read-size",
            "4096",
            "--read-delay-ms",
            "10",
        ];
        let churn_srv = [&secs[..], &["--accept", "1000", "--comm", "churn-reader"]].concat();
        // Unpaced, 1000 connections are over in half a second: each one
        // stays open 100 ms after its data is acknowledged.
        let churn_cli = [
            &secs[..],
            &["--connections", "1000", "--comm", "churn-writer"],
            &["--hold-seconds", "5", "--hold-after-ack", "0.1"],
        ]
        .concat();
        let servers = vec![
            Server::start(
                &zw.srv,
                v4(&zw),
                8080,
                &[&secs[..], &slow_reader].concat(),
                dirs[0].path(),
            ),
            Server::start(&churn.srv, v4(&churn), 8080, &churn_srv, dirs[1].path()),
            Server::start(&c443.srv, v4(&c443), 443, &churn_srv, dirs[2].path()),
        ];
        let clients = vec![
            Client::start(&zw.cli, v4(&zw), 8080, 1 << 40, &secs, dirs[0].path()),
            Client::start(
                &churn.cli,
                v4(&churn),
                8080,
                256 << 10,
                &churn_cli,
                dirs[1].path(),
            ),
            Client::start(
                &c443.cli,
                v4(&c443),
                443,
                256 << 10,
                &churn_cli,
                dirs[2].path(),
            ),
        ];
        Traffic {
            _procs: (servers, clients),
            _loss: loss,
            _pairs: vec![zw, churn, c443],
            _dirs: dirs,
        }
    }
}

// ---------------------------------------------------------------------------

/// The lab a page starts, if it starts one.
fn page_lab(examples: &[&Example]) -> Option<String> {
    examples.iter().find_map(|e| match &e.what {
        What::Tcpq { args, .. } if args.len() > 2 && args[0] == "lab" && args[1] == "start" => {
            Some(args[2].clone())
        }
        _ => None,
    })
}

/// Exclusive: it starts the lab's scenarios (fixed names and ports, which
/// the `lab` tests use too), runs its own traffic on 8080 and 443, and
/// attaches dozens of programs at once.
#[kernel_test(exclusive)]
fn every_docs_example_runs_live() {
    let t0 = Instant::now();
    let mut failures = accounting(&all_examples());
    let all: Vec<Example> = all_examples()
        .into_iter()
        .filter(|e| !matches!(e.what, What::Unknown))
        .collect();

    // Pages with a lab run in order, one thread per lab (pages sharing a lab
    // one after the other); everything else at once, with `Traffic`.
    let mut by_lab: BTreeMap<String, Vec<Vec<Example>>> = BTreeMap::new();
    let mut general: Vec<Example> = Vec::new();
    let mut files: Vec<String> = all.iter().map(|e| e.file.clone()).collect();
    files.dedup();
    for f in &files {
        let exs: Vec<&Example> = all.iter().filter(|e| &e.file == f).collect();
        let mut exs_sorted: Vec<Example> = exs.iter().map(|e| (*e).clone()).collect();
        exs_sorted.sort_by_key(|e| e.line);
        match page_lab(&exs) {
            Some(lab) => by_lab.entry(lab).or_default().push(exs_sorted),
            None => general.extend(exs_sorted),
        }
    }
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for ex in &all {
        let c = counts.entry(ex.file.clone()).or_default();
        match plan_or_step(ex) {
            true => c.0 += 1,
            false => c.1 += 1,
        }
    }

    let results: Vec<(Vec<String>, usize)> = std::thread::scope(|s| {
        let mut handles = Vec::new();
        for (lab, pages) in &by_lab {
            handles.push((
                format!("lab {lab}"),
                s.spawn(move || {
                    let (mut f, mut n) = (Vec::new(), 0);
                    for p in pages {
                        run_page(p, &mut f, &mut n);
                    }
                    (f, n)
                }),
            ));
        }
        let general = &general;
        handles.push((
            "general".to_string(),
            s.spawn(move || {
                let _traffic = Traffic::start();
                // Zero windows need the reader's 1 s idle and a full buffer.
                std::thread::sleep(Duration::from_millis(1500));
                let dir = TempDir::new("docs-general");
                let runs: Vec<Run> = general.iter().filter_map(|e| plan(e).ok()).collect();
                let n = runs.len();
                (run_batch(runs, &dir), n)
            }),
        ));
        handles
            .into_iter()
            .map(|(what, h)| match h.join() {
                Ok(r) => r,
                Err(_) => (vec![format!("{what}: panicked (see above)")], 0),
            })
            .collect()
    });
    let mut ran = 0;
    for (f, n) in results {
        failures.extend(f);
        ran += n;
    }
    eprintln!("docs examples run live, per file (run, listed in NOT_RUN):");
    for (f, (r, x)) in &counts {
        eprintln!("  {f}: {r}, {x}");
    }
    eprintln!(
        "{ran} runs (identical examples share one), {:?}",
        t0.elapsed()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
