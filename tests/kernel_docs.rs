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
//!
//! Needs root; skipped otherwise, and failing instead when `CI` is set.
mod common;

use common::tcpq::says_attached;
use common::{Client, NetnsPair, Server, Tcpq, TempDir};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Appended to a program example that has no `--duration` of its own.
const DEFAULT_DURATION: &str = "3s";

/// Examples that cannot run as written, by (file, exact text): why.
const NOT_RUN: &[(&str, &str, &str)] = &[
    (
        "README.md",
        "tcpq sockets [where EXPR] [print FIELD, ...] [--netns NS]... [--format json]",
        "usage synopsis (`tcpq sockets where ...` runs from README.md and docs/tutorial.md)",
    ),
    (
        "docs/language.md",
        "tcpq sockets [where EXPR] [print FIELD, ...]",
        "usage synopsis: placeholders, not a command",
    ),
    (
        "docs/probes.md",
        "tcpq sockets [where EXPR] [print FIELD, ...]",
        "usage synopsis: placeholders, not a command",
    ),
    (
        "docs/probes.md",
        "tcpq sockets [where EXPR] [print FIELD, ...] [--netns NS]... [--format text|json]",
        "usage synopsis: placeholders, not a command",
    ),
    (
        "README.md",
        "tcpq -e PROGRAM [--format text|json] [-T] [-t] [--duration 5s] [--buffer-size 1m] [--strategy NAME] [--check] [--explain]",
        "usage synopsis: placeholders, not a command",
    ),
    (
        "README.md",
        "tcpq [run] RECIPE [--param NAME=VALUE]... [-p PID] [-c CMD] [-o FILE] [-4|-6] [same flags]",
        "usage synopsis: placeholders, not a command",
    ),
    (
        "README.md",
        "tcpq recipes [--format json]",
        "usage synopsis (`tcpq recipes` runs from README.md)",
    ),
    (
        "README.md",
        "tcpq -l [PROBE] [--format json]",
        "usage synopsis: placeholders, not a command",
    ),
    (
        "README.md",
        "tcpq doctor [--format json] [--btf PATH] [--netns NS]...",
        "usage synopsis (`tcpq doctor` and `--format json` run from docs/kernels.md, `--netns` from docs/tutorial.md)",
    ),
    (
        "README.md",
        "tcpq counters [NAME...] [--netns NS]... [--all-netns] [--duration DUR] [--every DUR] [-z] [--format json]",
        "usage synopsis: placeholders (`tcpq counters` runs from docs/tutorial.md)",
    ),
    (
        "README.md",
        "tcpq counters --explain [NAME...]",
        "usage synopsis: placeholders (`tcpq counters --explain NAME` runs from docs/tutorial.md)",
    ),
    (
        "README.md",
        "tcpq counters --explain NAME",
        "placeholder NAME (`tcpq counters --explain TCPWinProbe` runs from docs/tutorial.md)",
    ),
    (
        "README.md",
        "tcpq -l PROBE",
        "placeholder PROBE (`tcpq -l tcp_select_window` runs from docs/tutorial.md)",
    ),
    (
        "README.md",
        "on PROBE [where EXPR] print FIELD, ...",
        "grammar synopsis: placeholders, not a program",
    ),
    (
        "docs/probes.md",
        "on PROBE",
        "placeholder PROBE in prose, not a program",
    ),
    (
        "docs/probes.md",
        "tcpq -l PROBE",
        "placeholder PROBE (`tcpq -l tcp_select_window` runs from docs/tutorial.md)",
    ),
    (
        "docs/language.md",
        "on PROBE [where CONDITION] ACTION [top N] [every DURATION] [limit N]",
        "grammar synopsis: placeholders, not a program",
    ),
    (
        "docs/language.md",
        "tcpq --explain",
        "names a flag in prose; no program",
    ),
    (
        "docs/language.md",
        "tcpq --check",
        "names a flag in prose; no program",
    ),
    (
        "docs/language.md",
        "tcpq FILE --param NAME=VALUE",
        "usage synopsis: placeholders (the page's recipe runs with its `@example`)",
    ),
    (
        "docs/benchmarks.md",
        "tcpq --check FILE",
        "placeholder FILE: generated recipes of N clauses (benches/compare.sh)",
    ),
    (
        "docs/tutorial.md",
        "on tcp_connect_attempt print ...",
        "field list elided (`...`); recipes/tcpconnect.tcpq is the full program",
    ),
    (
        "docs/tutorial.md",
        "on tcp_accept print ...",
        "field list elided (`...`); recipes/tcpaccept.tcpq is the full program",
    ),
];

/// Placeholders filled in before running: (file, text, from, to).
const FILL: &[(&str, &str, &str, &str)] = &[
    // "ten probes: 4x ... where dport == N": N is the benchmark's port.
    (
        "docs/benchmarks.md",
        "dport == N",
        "dport == N",
        "dport == 8080",
    ),
];

/// What a program example must print besides what its page shows:
/// (file, a substring of the example, checks). A check is `~TEXT` (stdout
/// contains TEXT), `rows>=N` / `rows<=N` (data lines of a table), or
/// `COL=VAL[,COL=VAL...]` (one table row has all of them).
const EXPECT: &[(&str, &str, &[&str])] = &[
    // The test's own traffic (`Traffic`): tcpq-reader/-writer on 8080 with
    // zero windows, churn-reader/-writer making connection after connection
    // on 8080 (with loss) and on 443.
    (
        "recipes/zero-window.tcpq",
        "zero-window",
        &["comm=tcpq-reader,wscale_ok=false"],
    ),
    (
        "recipes/window-scaling.tcpq",
        "window-scaling",
        &[
            "comm=tcpq-reader,wscale_ok=false",
            "comm=churn-reader,wscale_ok=true",
        ],
    ),
    (
        "recipes/windows-on-read.tcpq",
        "windows-on-read",
        &["comm=tcpq-reader"],
    ),
    (
        "recipes/recv-sizes.tcpq",
        "recv-sizes",
        &["~comm=tcpq-reader"],
    ),
    (
        "recipes/send-sizes.tcpq",
        "send-sizes",
        &["~comm=tcpq-writer"],
    ),
    (
        "recipes/socket-summary.tcpq",
        "socket-summary",
        &["comm=churn-writer"],
    ),
    // The accepting listener predates tcpq: its owner is unknown (`-`).
    (
        "recipes/tcpaccept.tcpq",
        "tcpaccept",
        &["sport=8080,family=AF_INET"],
    ),
    (
        "recipes/tcpconnect.tcpq",
        "port=443",
        &["comm=churn-writer,dport=443"],
    ),
    ("recipes/tcplife.tcpq", "tcplife", &["comm=churn-writer"]),
    (
        "recipes/tcpstates.tcpq",
        "tcpstates",
        &["oldstate=SYN_SENT,newstate=ESTABLISHED"],
    ),
    (
        "recipes/tcpretrans.tcpq",
        "tcpretrans",
        &["state=ESTABLISHED"],
    ),
    (
        "recipes/retransmits.tcpq",
        "retransmits",
        &["comm=churn-writer,dport=8080"],
    ),
    ("recipes/tcprtt.tcpq", "tcprtt", &["rows>=1"]),
    (
        "recipes/wscale-negotiation.tcpq",
        "wscale-negotiation",
        &[
            "comm=churn-writer,wscale_ok=true",
            "probe=tcp_accept,wscale_ok=true",
        ],
    ),
    ("recipes/tcpdrop.tcpq", "tcpdrop", &["rows>=1"]),
    (
        "docs/language.md",
        "not wscale_ok print comm",
        &["comm=tcpq-reader"],
    ),
    (
        "docs/language.md",
        "dport in [80, 443, 8000..8100]",
        &["comm=churn-writer"],
    ),
    (
        "docs/language.md",
        "dport == 443 print comm",
        &["comm=churn-writer"],
    ),
    (
        "docs/language.md",
        "win == 0 print comm, sport limit 20",
        &["rows>=20", "rows<=20"],
    ),
    (
        "docs/language.md",
        "hist win_bytes by comm",
        &["~comm=tcpq-reader"],
    ),
    (
        "docs/language.md",
        "sum segs by comm, dport",
        &["comm=churn-writer,dport=8080"],
    ),
    (
        "docs/language.md",
        "count by comm top 5",
        &["comm=churn-writer"],
    ),
    (
        "docs/benchmarks.md",
        "on tcp_probe count by comm",
        &["comm=churn-writer"],
    ),
    (
        "docs/benchmarks.md",
        "dport == N print pid, comm, srtt",
        &["comm=churn-writer"],
    ),
    (
        "docs/benchmarks.md",
        "dport == N count by comm",
        &["comm=churn-writer"],
    ),
    ("docs/kernels.md", "doctor --format json", &["~\"probes\""]),
    // `tcpq counters` and `tcpq doctor --netns` in the lab: the reader's
    // namespace advertises zero windows and has window scaling off.
    (
        "docs/tutorial.md",
        "tcpq counters --netns tcpq-lab-zero-window-srv",
        &["~tcpq-lab-zero-window-srv  TcpExtTCPToZeroWindowAdv"],
    ),
    (
        "docs/tutorial.md",
        "doctor --netns tcpq-lab-zero-window-srv",
        &["~DANGER"],
    ),
    ("docs/kernels.md", "tcpq doctor", &["~tcp_select_window"]),
    ("README.md", "tcpq -l sockets", &["~sock_cookie"]),
    ("README.md", "tcpq -l", &["~tcp_select_window"]),
    ("README.md", "lab list", &["~zero-window"]),
    (
        "docs/benchmarks.md",
        "TCPQ_TIMINGS=1",
        &["stderr~tcpq: timings:"],
    ),
    // The labs' traffic.
    (
        "docs/tutorial.md",
        "tcpq -l tcp_select_window",
        &["~net_dev_queue"],
    ),
    (
        "docs/tutorial.md",
        "win == 0 and sport == 8080 print",
        &["comm=lab-reader,wscale_ok=false"],
    ),
    (
        "docs/tutorial.md",
        "on tcp_recvmsg where sport == 8080",
        &["comm=lab-reader"],
    ),
    (
        "docs/tutorial.md",
        "on tcp_probe where sport == 8080 or dport == 8080",
        &["comm=lab-writer,dport=8080"],
    ),
    (
        "docs/tutorial.md",
        "on tcp_sendmsg hist size",
        &["~hist size:"],
    ),
    (
        "docs/tutorial.md",
        "on tcp_recvmsg hist size",
        &["~hist size:"],
    ),
    (
        "docs/tutorial.md",
        "tcpq zero-window --param port=8080",
        &["comm=lab-reader"],
    ),
    (
        "docs/lab/zero-window.md",
        "tcpq zero-window --param port=8080",
        &["comm=lab-reader"],
    ),
    (
        "docs/lab/loss.md",
        "tcpq retransmits",
        &["comm=lab-writer,dport=8081"],
    ),
    (
        "docs/lab/resets.md",
        "tcp_flags == 20",
        &["comm=lab-writer,tcp_flags=20,state=CLOSE"],
    ),
    ("docs/lab/slow-start.md", "snd_wnd", &["rows>=1"]),
];

// ---------------------------------------------------------------------------
// Extraction

#[derive(Clone, Debug)]
enum What {
    /// `tcpq ARGS`, with `NAME=VALUE` environment assignments before it.
    Tcpq {
        env: Vec<(String, String)>,
        args: Vec<String>,
    },
    /// A program: `tcpq -e BODY`.
    Program(String),
    /// A ```` ```tcpq-error ```` block: `tcpq -e BODY` fails with `code`.
    Wrong { code: String, body: String },
    /// `ip netns exec tcpq-lab-...`: a step of a lab page.
    LabShell(Vec<String>),
    /// A `$` line this test does not know how to run.
    Unknown,
}

#[derive(Clone, Debug)]
struct Example {
    file: String,
    line: usize,
    /// As written on the page.
    text: String,
    what: What,
    /// The output the page shows after it.
    shown: String,
    /// A recipe block the example's file argument names: (name, body).
    recipe: Option<(String, String)>,
}

impl Example {
    fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// Split a documented command line: single and double quotes, no escapes
/// (the docs use none).
fn words(cmd: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in cmd.chars() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (_, c) => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// A command line as a tcpq invocation or a lab step, if it is one. A
/// chain (`cargo build --release && ./target/release/tcpq ...`) runs its
/// last command; a leading `sudo` and `NAME=VALUE` assignments are dropped
/// or kept as environment.
fn command(line: &str) -> Option<What> {
    let cmd = line.rsplit(" && ").next().unwrap_or(line).trim();
    let cmd = cmd.strip_prefix("sudo ").unwrap_or(cmd);
    let mut w = words(cmd);
    let mut env = Vec::new();
    while let Some((k, v)) = w.first().and_then(|x| x.split_once('=')) {
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            break;
        }
        env.push((k.to_string(), v.to_string()));
        w.remove(0);
    }
    let first = w.first()?;
    if first == "tcpq" || first.ends_with("/tcpq") {
        return Some(What::Tcpq {
            env,
            args: w[1..].to_vec(),
        });
    }
    if w.len() > 3 && w[..3] == ["ip", "netns", "exec"] && w[3].starts_with("tcpq-lab-") {
        return Some(What::LabShell(w));
    }
    None
}

/// True for text made only of `on PROBE ...` clauses (with continuation
/// lines and comments).
fn is_program(body: &str) -> bool {
    let mut clauses = 0;
    for l in body.lines() {
        if l.trim().is_empty() || l.trim_start().starts_with('#') || l.starts_with(' ') {
            continue;
        }
        if !is_clause(l) {
            return false;
        }
        clauses += 1;
    }
    clauses > 0
}

fn is_clause(s: &str) -> bool {
    s.strip_prefix("on ")
        .and_then(|r| r.split_whitespace().next())
        .is_some_and(|p| {
            p.chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_uppercase())
        })
}

fn markdown(rel: &str) -> Vec<Example> {
    let text = std::fs::read_to_string(Path::new(ROOT).join(rel)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let ex = |line: usize, text: &str, what: What, shown: String| Example {
        file: rel.to_string(),
        line,
        text: text.to_string(),
        what,
        shown,
        recipe: None,
    };
    // Prose: (line number, text) of the current paragraph, for inline spans.
    let mut para: Vec<(usize, &str)> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        let Some(info) = l.trim_start().strip_prefix("```") else {
            if l.trim().is_empty() {
                out.extend(inline(rel, &para));
                para.clear();
            } else {
                para.push((i + 1, l));
            }
            i += 1;
            continue;
        };
        out.extend(inline(rel, &para));
        para.clear();
        let info = info.trim();
        let start = i + 1;
        let mut j = start;
        while j < lines.len() && !lines[j].trim_start().starts_with("```") {
            j += 1;
        }
        let block = &lines[start..j.min(lines.len())];
        let body: String = block.iter().map(|l| format!("{l}\n")).collect();
        match info {
            "tcpq" => {
                out.push(ex(start, &body, What::Program(body.clone()), String::new()));
                for (k, l) in block.iter().enumerate() {
                    if let Some(cmd) = l.strip_prefix("# @example ") {
                        let mut e = ex(start + k + 1, cmd, command(cmd).unwrap(), String::new());
                        if let What::Tcpq { args, .. } = &e.what {
                            e.recipe = Some((args[0].clone(), body.clone()));
                        }
                        out.push(e);
                    }
                }
            }
            "tcpq-error" => {
                let code = block[0].trim_start_matches("# ").trim().to_string();
                out.push(ex(
                    start,
                    &body,
                    What::Wrong {
                        code,
                        body: body.clone(),
                    },
                    String::new(),
                ));
            }
            "" if block.iter().any(|l| l.starts_with("$ ")) => {
                let mut k = 0;
                while k < block.len() {
                    let Some(cmd) = block[k].strip_prefix("$ ") else {
                        k += 1;
                        continue;
                    };
                    let mut shown = String::new();
                    let mut m = k + 1;
                    while m < block.len() && !block[m].starts_with("$ ") {
                        shown.push_str(block[m]);
                        shown.push('\n');
                        m += 1;
                    }
                    let what = command(cmd).unwrap_or(What::Unknown);
                    out.push(ex(start + k + 1, cmd, what, shown));
                    k = m;
                }
            }
            "" if is_program(&body) => {
                out.push(ex(
                    start + 1,
                    body.trim_end(),
                    What::Program(body.clone()),
                    String::new(),
                ));
            }
            "" => {
                for (k, l) in block.iter().enumerate() {
                    if let Some(w @ What::Tcpq { .. }) = command(l) {
                        out.push(ex(start + k + 1, l.trim(), w, String::new()));
                    }
                }
            }
            _ => {}
        }
        i = j + 1;
    }
    out.extend(inline(rel, &para));
    out
}

/// Inline code spans of a paragraph that are an invocation.
fn inline(rel: &str, para: &[(usize, &str)]) -> Vec<Example> {
    let mut text = String::new();
    let mut starts = Vec::new();
    for (n, l) in para {
        starts.push((text.len(), *n));
        text.push_str(l);
        text.push(' ');
    }
    let line_of = |off: usize| {
        starts
            .iter()
            .take_while(|(o, _)| *o <= off)
            .last()
            .map_or(0, |(_, n)| *n)
    };
    let mut out = Vec::new();
    let mut rest = text.as_str();
    let mut base = 0;
    while let Some(a) = rest.find('`') {
        let Some(len) = rest[a + 1..].find('`') else {
            break;
        };
        let span = &rest[a + 1..a + 1 + len];
        let span = span.split_whitespace().collect::<Vec<_>>().join(" ");
        let what = if span.starts_with("-e '") {
            Some(What::Tcpq {
                env: Vec::new(),
                args: words(&span),
            })
        } else if is_clause(&span) {
            Some(What::Program(span.clone()))
        } else if span.starts_with("tcpq ")
            || span.starts_with("sudo tcpq ")
            || span.split(' ').find(|w| !w.contains('=')) == Some("tcpq") && span.contains("tcpq ")
        {
            command(&span)
        } else {
            None
        };
        if let Some(what) = what {
            out.push(Example {
                file: rel.to_string(),
                line: line_of(base + a),
                text: span,
                what,
                shown: String::new(),
                recipe: None,
            });
        }
        base += a + len + 2;
        rest = &rest[a + len + 2..];
    }
    out
}

fn recipe_examples() -> Vec<Example> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("recipes"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "tcpq"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let rel = f.strip_prefix(ROOT).unwrap().display().to_string();
        for (n, l) in std::fs::read_to_string(&f).unwrap().lines().enumerate() {
            if let Some(cmd) = l.strip_prefix("# @example ") {
                out.push(Example {
                    file: rel.clone(),
                    line: n + 1,
                    text: cmd.to_string(),
                    what: command(cmd).unwrap_or(What::Unknown),
                    shown: String::new(),
                    recipe: None,
                });
            }
        }
    }
    out
}

fn all_examples() -> Vec<Example> {
    let mut files = vec!["README.md".to_string()];
    for dir in ["docs", "docs/lab"] {
        let mut v: Vec<String> = std::fs::read_dir(Path::new(ROOT).join(dir))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "md"))
            .map(|p| p.strip_prefix(ROOT).unwrap().display().to_string())
            .collect();
        v.sort();
        files.extend(v);
    }
    let mut out: Vec<Example> = files.iter().flat_map(|f| markdown(f)).collect();
    out.extend(recipe_examples());
    out
}

// ---------------------------------------------------------------------------
// Running

/// What one run must show.
#[derive(Clone, Debug, Default)]
struct Expect {
    /// Exit 2 with `error[code]` (and exactly `exact` on stderr, if given).
    error: Option<(String, Option<String>)>,
    /// The program attaches (otherwise: a command that just exits 0).
    attaches: bool,
    /// The start of a stderr line the page shows.
    stderr_line: Option<String>,
    /// The table header the page shows.
    header: Option<String>,
    /// Rows the page shows: the (column, value) pairs that must recur.
    rows: Vec<Vec<(String, String)>>,
    checks: Vec<String>,
}

#[derive(Clone, Debug)]
struct Run {
    env: Vec<(String, String)>,
    args: Vec<String>,
    expect: Expect,
    /// Where the docs show it (one run may serve several identical examples).
    at: Vec<String>,
    recipe: Option<(String, String)>,
}

impl Run {
    fn key(&self) -> String {
        format!("{:?} {:?}", self.env, self.args)
    }
    fn name(&self) -> String {
        let env: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        format!(
            "`{}tcpq {}` ({})",
            env.concat(),
            self.args.join(" "),
            self.at.join(", ")
        )
    }
}

/// True for a value that differs from run to run: a number, optionally
/// with a unit (`57us`), or a pid.
fn varies(v: &str) -> bool {
    let v = v.strip_prefix('-').unwrap_or(v);
    let digits = v.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
}

/// What the page shows after a command, as expectations.
fn shown_expect(shown: &str, e: &mut Expect) {
    let mut lines = shown.lines().filter(|l| !l.trim().is_empty()).peekable();
    if let Some(l) = lines.peek() {
        if l.starts_with("tcpq: ") {
            // The page ran without `--duration`; the test adds one, which
            // the message mentions after the probe list.
            let l = lines.next().unwrap();
            e.stderr_line = Some(l.split(';').next().unwrap().to_string());
        }
    }
    let Some(header) = lines.next() else {
        return;
    };
    let cols: Vec<&str> = header.split_whitespace().collect();
    e.header = Some(cols.join(" "));
    for row in lines {
        let vals: Vec<&str> = row.split_whitespace().collect();
        if vals.len() != cols.len() {
            continue; // "..." or a trimmed line
        }
        let pairs: Vec<(String, String)> = cols
            .iter()
            .zip(&vals)
            .filter(|(c, v)| **c != "task_comm" && !varies(v))
            .map(|(c, v)| (c.to_string(), v.to_string()))
            .collect();
        if pairs.iter().any(|(c, v)| c == "comm" && v == "-") {
            continue; // owner unknown: depends on timing
        }
        e.rows.push(pairs);
    }
}

/// Turn an example into a run (or the reason it is not run).
fn plan(ex: &Example) -> Result<Run, String> {
    for (f, text, why) in NOT_RUN {
        if *f == ex.file && *text == ex.text {
            return Err(format!("not run: {why}"));
        }
    }
    let fill = |s: &str| {
        FILL.iter()
            .filter(|(f, t, _, _)| *f == ex.file && s.contains(t))
            .fold(s.to_string(), |s, (_, _, from, to)| s.replace(from, to))
    };
    let mut expect = Expect::default();
    let (env, mut args) = match &ex.what {
        What::Tcpq { env, args } => (env.clone(), args.iter().map(|a| fill(a)).collect()),
        What::Program(body) => (Vec::new(), vec!["-e".to_string(), fill(body)]),
        What::Wrong { code, body } => {
            expect.error = Some((code.clone(), None));
            (Vec::new(), vec!["-e".to_string(), body.clone()])
        }
        What::LabShell(_) | What::Unknown => unreachable!(),
    };
    let first = args.first().cloned().unwrap_or_default();
    let runs_program = expect.error.is_none()
        && ![
            "lab", "doctor", "counters", "-l", "--help", "sockets", "recipes",
        ]
        .contains(&first.as_str())
        && !args
            .iter()
            .any(|a| a == "--help" || a == "--check" || a == "--explain");
    if ex.shown.contains("error[") {
        let code = ex.shown.split("error[").nth(1).unwrap()[..5].to_string();
        expect.error = Some((code, Some(ex.shown.trim_end().to_string())));
    } else if runs_program {
        expect.attaches = true;
        if !args.iter().any(|a| a == "--duration") {
            args.extend(["--duration".to_string(), DEFAULT_DURATION.to_string()]);
        }
        shown_expect(&ex.shown, &mut expect);
    }
    for (f, needle, checks) in EXPECT {
        if *f == ex.file && ex.text.contains(needle) {
            expect.checks = checks.iter().map(|c| c.to_string()).collect();
            break;
        }
    }
    Ok(Run {
        env,
        args,
        expect,
        at: vec![ex.at()],
        recipe: ex.recipe.clone(),
    })
}

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

/// Every example is run or listed in `NOT_RUN`, and every entry of
/// `NOT_RUN`, `EXPECT` and `FILL` names an example: the failures.
fn accounting(all: &[Example]) -> Vec<String> {
    let mut failures = Vec::new();
    for ex in all {
        if matches!(ex.what, What::Unknown) {
            failures.push(format!(
                "{}: `{}`: not a tcpq command this test can run",
                ex.at(),
                ex.text
            ));
        }
    }
    for (f, text, _) in NOT_RUN {
        if !all.iter().any(|e| e.file == *f && e.text == *text) {
            failures.push(format!(
                "NOT_RUN lists `{text}` in {f}, which is not an example there"
            ));
        }
    }
    for (f, needle, _) in EXPECT {
        if !all.iter().any(|e| e.file == *f && e.text.contains(needle)) {
            failures.push(format!(
                "EXPECT names `{needle}` in {f}, which no example there has"
            ));
        }
    }
    for (f, t, _, _) in FILL {
        if !all.iter().any(|e| e.file == *f && e.text.contains(t)) {
            failures.push(format!(
                "FILL names `{t}` in {f}, which no example there has"
            ));
        }
    }
    failures
}

/// No kernel needed: the bookkeeping holds everywhere. With `--nocapture`
/// it lists every example and how it runs.
#[test]
fn every_docs_example_is_run_or_listed() {
    let all = all_examples();
    for ex in &all {
        let how = match (&ex.what, plan_or_step(ex)) {
            (What::LabShell(_), _) => "lab step".to_string(),
            (_, true) => format!("{:?}", plan(ex).unwrap().args),
            (_, false) => plan(ex).err().unwrap_or_else(|| "unknown".into()),
        };
        eprintln!(
            "{}: {}
    {how}",
            ex.at(),
            ex.text.trim_end()
        );
    }
    let failures = accounting(&all);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(all.len() >= 80, "found only {} examples", all.len());
}

#[test]
fn every_docs_example_runs_live() {
    if !common::require_root() {
        return;
    }
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

/// True when the example is run (a program, a command or a lab step).
fn plan_or_step(ex: &Example) -> bool {
    match ex.what {
        What::LabShell(_) => true,
        What::Unknown => false,
        _ => plan(ex).is_ok(),
    }
}
