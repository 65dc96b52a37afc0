//! The examples of tcpq's docs, as data: where they are (README.md,
//! docs/*.md, docs/lab/*.md, recipes' `@example` lines), what each runs and
//! what it must show, and the lists of what is not run (`NOT_RUN`), filled
//! in (`FILL`) or checked besides (`EXPECT`). Shared by `tests/docs.rs`
//! (the bookkeeping, no kernel needed) and the kernel tests' `docs` module
//! (every example live); see the latter for how examples are found.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Appended to a program example that has no `--duration` of its own.
pub const DEFAULT_DURATION: &str = "3s";

/// Examples that cannot run as written, by (file, exact text): why.
pub const NOT_RUN: &[(&str, &str, &str)] = &[
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
        "on PROBE [where CONDITION] ACTION [as METRIC] [top N] [every DURATION] [limit N]",
        "grammar synopsis: placeholders, not a program",
    ),
    (
        "docs/language.md",
        "tcpq --explain",
        "names a flag in prose; no program",
    ),
    (
        "docs/language.md",
        "tcpq serve",
        "names the subcommand in prose; docs/serve.md's examples run",
    ),
    (
        "README.md",
        "tcpq serve [--listen ADDR] [--check] FILE|DIR|RECIPE... [--param NAME=VALUE]...",
        "usage synopsis: placeholders (docs/serve.md's examples run)",
    ),
    (
        "docs/serve.md",
        "tcpq serve [--listen ADDR] [--check] FILE|DIR|RECIPE... [--param NAME=VALUE]... [--btf PATH]",
        "usage synopsis: placeholders (the page's examples run)",
    ),
    (
        "docs/serve.md",
        "tcpq serve",
        "names the subcommand in prose; the page's examples run",
    ),
    (
        "docs/serve.md",
        "tcpq serve --check",
        "names the flag in prose; the page's `--check` example runs from its recipes",
    ),
    (
        "docs/serve.md",
        "tcpq NAME",
        "placeholder NAME: each recipe's own `@example` runs it",
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
pub const FILL: &[(&str, &str, &str, &str)] = &[
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
pub const EXPECT: &[(&str, &str, &[&str])] = &[
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
pub enum What {
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
pub struct Example {
    pub file: String,
    pub line: usize,
    /// As written on the page.
    pub text: String,
    pub what: What,
    /// The output the page shows after it.
    pub shown: String,
    /// A recipe block the example's file argument names: (name, body).
    pub recipe: Option<(String, String)>,
}

impl Example {
    pub fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// Split a documented command line: single and double quotes, no escapes
/// (the docs use none).
pub fn words(cmd: &str) -> Vec<String> {
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
pub fn command(line: &str) -> Option<What> {
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
pub fn is_program(body: &str) -> bool {
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

pub fn is_clause(s: &str) -> bool {
    s.strip_prefix("on ")
        .and_then(|r| r.split_whitespace().next())
        .is_some_and(|p| {
            p.chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_uppercase())
        })
}

pub fn markdown(rel: &str) -> Vec<Example> {
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
pub fn inline(rel: &str, para: &[(usize, &str)]) -> Vec<Example> {
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

pub fn recipe_examples() -> Vec<Example> {
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

pub fn all_examples() -> Vec<Example> {
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
pub struct Expect {
    /// Exit 2 with `error[code]` (and exactly `exact` on stderr, if given).
    pub error: Option<(String, Option<String>)>,
    /// The program attaches (otherwise: a command that just exits 0).
    pub attaches: bool,
    /// The start of a stderr line the page shows.
    pub stderr_line: Option<String>,
    /// The table header the page shows.
    pub header: Option<String>,
    /// Rows the page shows: the (column, value) pairs that must recur.
    pub rows: Vec<Vec<(String, String)>>,
    pub checks: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Run {
    pub env: Vec<(String, String)>,
    pub args: Vec<String>,
    pub expect: Expect,
    /// Where the docs show it (one run may serve several identical examples).
    pub at: Vec<String>,
    pub recipe: Option<(String, String)>,
}

impl Run {
    pub fn key(&self) -> String {
        format!("{:?} {:?}", self.env, self.args)
    }
    pub fn name(&self) -> String {
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
pub fn varies(v: &str) -> bool {
    let v = v.strip_prefix('-').unwrap_or(v);
    let digits = v.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
}

/// What the page shows after a command, as expectations.
pub fn shown_expect(shown: &str, e: &mut Expect) {
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
pub fn plan(ex: &Example) -> Result<Run, String> {
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
    // `tcpq serve` runs until stopped: a page's example is checked for
    // what it would export (`--check`, nothing attached);
    // tests/kernel/serve.rs serves the recipes to a real Prometheus.
    if first == "serve" && !args.iter().any(|a| a == "--check") {
        args.insert(1, "--check".to_string());
    }
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

/// Every example is run or listed in `NOT_RUN`, and every entry of
/// `NOT_RUN`, `EXPECT` and `FILL` names an example: the failures.
pub fn accounting(all: &[Example]) -> Vec<String> {
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

/// True when the example is run (a program, a command or a lab step).
pub fn plan_or_step(ex: &Example) -> bool {
    match ex.what {
        What::LabShell(_) => true,
        What::Unknown => false,
        _ => plan(ex).is_ok(),
    }
}
