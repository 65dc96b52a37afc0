//! The docs are tested, not trusted:
//! - `docs/probes.md` must be exactly what `tcpq -l --markdown` prints
//!   from the catalog (refresh: `cargo run -q -- -l --markdown > docs/probes.md`).
//! - Every `$ tcpq ...` command in a code block of `docs/**/*.md` is run:
//!   programs and recipes with `--check` added (no kernel needed). When the
//!   page shows a diagnostic (`error[...]`) after the command, tcpq must exit
//!   2 and print exactly that; `tcpq FILE --help` and `tcpq -l` must print
//!   exactly what the page shows; anything else must exit 0. `tcpq lab`
//!   commands and every example live, against the kernel, are run by
//!   the kernel tests (`tests/kernel/docs.rs`); that every example is run
//!   there or listed as not run is checked here (`tests/doc_examples/`).
mod doc_examples;

use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn tcpq(args: &[String]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tcpq"))
        .args(args)
        .current_dir(ROOT)
        .env("NO_COLOR", "1")
        .output()
        .expect("run tcpq")
}

#[test]
fn probes_md_is_generated_from_the_catalog() {
    let out = tcpq(&["-l".into(), "--markdown".into()]);
    assert!(out.status.success());
    let fresh = String::from_utf8(out.stdout).unwrap();
    let path = Path::new(ROOT).join("docs/probes.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        fresh == committed,
        "docs/probes.md is stale; refresh it with:\n  cargo run -q -- -l --markdown > docs/probes.md"
    );
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

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            markdown_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "md") {
            out.push(p);
        }
    }
}

/// (file, line, command, the output shown after it) for every `$ tcpq`
/// line inside a fenced code block.
fn examples() -> Vec<(String, usize, String, String)> {
    let mut files = Vec::new();
    markdown_files(&Path::new(ROOT).join("docs"), &mut files);
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let mut in_code = false;
        let mut i = 0;
        while i < lines.len() {
            let l = lines[i];
            if l.trim_start().starts_with("```") {
                in_code = !in_code;
                i += 1;
                continue;
            }
            let cmd = l
                .strip_prefix("$ sudo tcpq ")
                .or_else(|| l.strip_prefix("$ tcpq "));
            if let (true, Some(cmd)) = (in_code, cmd) {
                let mut shown = String::new();
                let mut j = i + 1;
                while j < lines.len()
                    && !lines[j].starts_with("$ ")
                    && !lines[j].trim_start().starts_with("```")
                {
                    shown.push_str(lines[j]);
                    shown.push('\n');
                    j += 1;
                }
                let rel = f.strip_prefix(ROOT).unwrap().display().to_string();
                out.push((rel, i + 1, cmd.to_string(), shown));
                i = j;
                continue;
            }
            i += 1;
        }
    }
    out
}

#[test]
fn every_tcpq_example_in_docs_runs() {
    let all = examples();
    assert!(all.len() >= 10, "found only {} examples", all.len());
    let mut failures = Vec::new();
    for (file, line, cmd, shown) in &all {
        let mut args = words(cmd);
        // Labs, the doctor and counters read the kernel: tests/kernel/docs.rs
        // runs them. `counters --explain` needs no kernel and prints the same
        // everywhere: compared exactly.
        let first = args.first().map(String::as_str);
        let explains = first == Some("counters") && args.iter().any(|a| a == "--explain");
        if matches!(first, Some("lab" | "doctor" | "counters")) && !explains {
            continue;
        }
        let exact = explains || args.iter().any(|a| a == "--help") || args == ["-l"];
        if !exact && !args.iter().any(|a| a == "-l") {
            args.push("--check".into());
        }
        let out = tcpq(&args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let here = format!("{file}:{line}: `tcpq {cmd}`");
        if shown.contains("error[") {
            if out.status.code() != Some(2) {
                failures.push(format!("{here}: expected exit 2, got {}", out.status));
            } else if stderr.trim_end() != shown.trim_end() {
                failures.push(format!(
                    "{here}: the page shows\n{shown}\nbut tcpq prints\n{stderr}"
                ));
            }
        } else if !out.status.success() {
            failures.push(format!("{here}: exit {}: {stderr}", out.status));
        } else if exact && stdout.trim_end() != shown.trim_end() {
            failures.push(format!(
                "{here}: the page shows\n{shown}\nbut tcpq prints\n{stdout}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// No kernel needed: the bookkeeping holds everywhere. With `--nocapture`
/// it lists every example and how it runs.
#[test]
fn every_docs_example_is_run_or_listed() {
    use doc_examples::{accounting, all_examples, plan, plan_or_step, What};
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
