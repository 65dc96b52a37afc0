//! `docs/language.md` is tested: every ```tcpq block passes `tcpq --check`,
//! every ```tcpq-error block fails it with the code on its first line, every
//! error code and every catalog field is documented, and the limits table
//! states the constants' values.
use std::process::Command;
use tcpq_dsl::{catalog, check, diagnostic::Code, parse};

const DOC: &str = include_str!("../docs/language.md");

/// (info string, body, line) of each fenced block.
fn blocks() -> Vec<(String, String, usize)> {
    let mut out = Vec::new();
    let mut cur: Option<(String, String, usize)> = None;
    for (i, line) in DOC.lines().enumerate() {
        match (&mut cur, line.strip_prefix("```")) {
            (None, Some(info)) => cur = Some((info.trim().to_string(), String::new(), i + 1)),
            (Some(_), Some("")) => out.extend(cur.take()),
            (Some((_, body, _)), _) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(cur.is_none(), "unterminated code block");
    out
}

fn check_cli(src: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tcpq"))
        .args(["--check", "-e", src])
        .env("NO_COLOR", "1")
        .output()
        .expect("run tcpq");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_example_checks() {
    let (mut ok, mut bad) = (0, 0);
    for (info, body, line) in blocks() {
        match info.as_str() {
            "tcpq" => {
                let (success, stderr) = check_cli(&body);
                assert!(
                    success,
                    "docs/language.md:{line}: example fails:\n{body}\n{stderr}"
                );
                ok += 1;
            }
            "tcpq-error" => {
                let code = body
                    .lines()
                    .next()
                    .and_then(|l| l.strip_prefix("# "))
                    .unwrap_or_else(|| {
                        panic!("docs/language.md:{line}: first line must be `# E0xxx`")
                    })
                    .trim()
                    .to_string();
                let (success, stderr) = check_cli(&body);
                assert!(
                    !success,
                    "docs/language.md:{line}: should fail with {code}:\n{body}"
                );
                assert!(
                    stderr.contains(&format!("error[{code}]")),
                    "docs/language.md:{line}: expected {code}, got:\n{stderr}"
                );
                bad += 1;
            }
            _ => {}
        }
    }
    assert!(ok >= 15 && bad >= 10, "{ok} examples, {bad} error examples");
}

#[test]
fn every_code_and_field_is_documented() {
    for c in Code::ALL {
        assert!(
            DOC.contains(&format!("| {c} |")),
            "{c} ({c:?}) is not in the table"
        );
    }
    for f in tcpq_dsl::sockets::SOCKETS.all_fields() {
        assert!(
            DOC.contains(&format!("`{}`", f.name)),
            "field {} of tcpq sockets",
            f.name
        );
    }
    for p in catalog::PROBES {
        assert!(DOC.contains(&format!("`{}`", p.name)), "probe {}", p.name);
        for f in p.all_fields() {
            assert!(
                DOC.contains(&format!("`{}`", f.name)),
                "field {} of {}",
                f.name,
                p.name
            );
        }
    }
}

#[test]
fn limits_table_states_the_constants() {
    let rows = [
        ("check::MAX_CLAUSES", check::MAX_CLAUSES.to_string()),
        ("tcpq_abi::MAX_INSNS", tcpq_abi::MAX_INSNS.to_string()),
        ("parse::MAX_CONNECTIVES", parse::MAX_CONNECTIVES.to_string()),
        ("parse::MAX_NESTING", parse::MAX_NESTING.to_string()),
        ("check::MAX_SET_ITEMS", check::MAX_SET_ITEMS.to_string()),
        (
            "tcpq_abi::MAX_KEY_SLOTS",
            tcpq_abi::MAX_KEY_SLOTS.to_string(),
        ),
        (
            "check::MAX_LHIST_BUCKETS",
            check::MAX_LHIST_BUCKETS.to_string(),
        ),
        ("check::MIN_EVERY_MS", format!("{} ms", check::MIN_EVERY_MS)),
        ("tcpq_abi::MAX_LOADS", tcpq_abi::MAX_LOADS.to_string()),
    ];
    for (name, value) in rows {
        let line = DOC
            .lines()
            .find(|l| l.contains(&format!("`{name}`")))
            .unwrap_or_else(|| panic!("{name} is not in the limits table"));
        assert!(
            line.contains(&format!("| {value} |")),
            "{name} is {value}, the table says: {line}"
        );
    }
}
