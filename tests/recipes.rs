//! Recipes are data: hostile parameter values and junk headers. A value is
//! either rejected (exit 2, a diagnostic, nothing attached) or used as a
//! plain value; it never becomes program syntax. Junk headers give exit 2
//! and a diagnostic, never a panic. All with `--check`: no kernel needed.
//!
//! Limits of the test itself: an argument cannot hold a NUL byte (execve
//! strings are NUL-terminated) nor exceed MAX_ARG_STRLEN (128 KiB), so
//! `--param` values go up to 120 000 bytes, and NULs and 1 MiB sizes are
//! tested through recipe files.
use std::path::PathBuf;
use std::process::{Command, Output};

// The `@expect` parser of the kernel test that runs every recipe
// (tests/kernel/recipes.rs); here only to read the headers.
#[allow(dead_code)]
#[path = "kernel/recipes/expect.rs"]
mod expect;

fn tcpq(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tcpq"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run tcpq")
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A recipe in a fresh temp file, removed on drop.
struct Recipe(PathBuf);

impl Recipe {
    fn new(tag: &str, text: &[u8]) -> Recipe {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "tcpq-recipes-{}-{}-{tag}.tcpq",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&p, text).unwrap();
        Recipe(p)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for Recipe {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

const PORT_RECIPE: &str = "recipes/zero-window.tcpq";

fn check_port(value: &str) -> Output {
    let param = format!("port={value}");
    tcpq(&[
        "--check",
        concat!(env!("CARGO_MANIFEST_DIR"), "/recipes/zero-window.tcpq"),
        "--param",
        &param,
    ])
}

#[test]
fn hostile_values_for_a_typed_parameter_are_rejected() {
    let huge = "9".repeat(120_000);
    for v in [
        "8080;print comm",
        "1;print comm",
        "8080 or 1 == 1",
        "8080\nprint comm",
        "\"8080\"",
        "'8080'",
        "$port",
        "${port}",
        "８０８０",
        "",
        "-1",
        "65536",
        "0x1_0000",
        huge.as_str(),
    ] {
        let out = check_port(v);
        let e = err(&out);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{PORT_RECIPE} --param port={:?} must be rejected; stderr: {e}",
            v.chars().take(40).collect::<String>()
        );
        assert!(e.contains("error["), "a diagnostic: {e}");
        assert!(
            e.contains("is not a port number"),
            "says why: {}",
            &e[..e.len().min(300)]
        );
        assert!(!e.contains("panicked"), "{e}");
    }
}

#[test]
fn the_same_hostile_values_never_reach_the_kernel_as_syntax() {
    // A huge value is echoed in the diagnostic; it must not explode it.
    let out = check_port(&"7".repeat(120_000));
    assert!(
        err(&out).len() < (1 << 20) + 4096,
        "{} bytes",
        err(&out).len()
    );
}

#[test]
fn string_parameters_are_plain_values() {
    let r = Recipe::new(
        "str",
        b"# Who.\n# @param who: string = \"x\"  a comm\non tcp_probe where comm == $who print pid\n",
    );
    for v in [
        "lab-reader\" or 1 == 1 print comm #",
        "a\nprint comm",
        "$who",
        "x;on tcp_retransmit count",
        "caf\u{e9} \u{1f600}",
        "it's",
        "",
    ] {
        let out = tcpq(&[
            "--check",
            "--explain",
            r.path(),
            "--param",
            &format!("who={v}"),
        ]);
        let e = err(&out);
        let o = String::from_utf8_lossy(&out.stdout);
        // Accepted as one plain value (one clause, the value quoted), or
        // rejected with a diagnostic (e.g. a comm longer than the kernel's).
        match out.status.code() {
            Some(0) => {
                assert!(
                    o.contains("1 clause"),
                    "the program changed shape for {v:?}:\n{o}"
                );
                assert!(!o.contains("tcp_retransmit"), "{o}");
            }
            Some(2) => assert!(e.contains("error["), "{e}"),
            c => panic!("{v:?}: exit {c:?}: {e}"),
        }
        assert!(!e.contains("panicked"), "{e}");
    }
    // A long string is refused or kept as one value, never a crash. (1 MiB
    // and NUL bytes cannot be passed as arguments; they are tested through
    // a file in `file_defaults_with_nul_and_1mib`.)
    let big = format!("who={}", "a".repeat(120_000));
    let out = tcpq(&["--check", r.path(), "--param", &big]);
    assert!(
        matches!(out.status.code(), Some(0 | 2)),
        "{}",
        err(&out).len()
    );
}

#[test]
fn file_defaults_with_nul_and_1mib() {
    for default in ["a".repeat(1 << 20), "a\0b".to_string()] {
        let text = format!(
            "# @param who: string = \"{default}\" x\non tcp_probe where comm == $who print pid\n"
        );
        let f = Recipe::new("strfile", text.as_bytes());
        let out = tcpq(&["--check", f.path()]);
        assert!(
            matches!(out.status.code(), Some(0 | 2)),
            "{}",
            err(&out).len()
        );
        assert!(!err(&out).contains("panicked"));
    }
}

#[test]
fn param_syntax_errors_exit_2() {
    for p in ["port", "=8080", "port=1", "nope=1"] {
        let out = tcpq(&[
            "--check",
            concat!(env!("CARGO_MANIFEST_DIR"), "/recipes/retransmits.tcpq"),
            "--param",
            p,
        ]);
        assert_eq!(out.status.code(), Some(2), "--param {p}: {}", err(&out));
    }
}

#[test]
fn junk_headers_exit_2_with_a_diagnostic() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "unknown directive",
            b"# @parm port: port\non tcp_probe print pid\n".to_vec(),
        ),
        (
            "bad type",
            b"# @param port: prot\non tcp_probe print pid\n".to_vec(),
        ),
        (
            "no type",
            b"# @param port\non tcp_probe print pid\n".to_vec(),
        ),
        (
            "bad default",
            b"# @param p: port = 99999\non tcp_probe print pid\n".to_vec(),
        ),
        (
            "dup",
            b"# @param p: port\n# @param p: u64\non tcp_probe print pid\n".to_vec(),
        ),
        (
            "digit name",
            b"# @param 1p: port\non tcp_probe print pid\n".to_vec(),
        ),
        (
            "unterminated default",
            b"# @param s: string = \"abc\non tcp_probe print pid\n".to_vec(),
        ),
        ("empty directive", b"# @\non tcp_probe print pid\n".to_vec()),
        (
            "unicode",
            "# @paräm p: port\non tcp_probe print pid\n"
                .as_bytes()
                .to_vec(),
        ),
        (
            "nul",
            b"# @param p: po\0rt\non tcp_probe print pid\n".to_vec(),
        ),
        (
            "huge",
            format!(
                "# @param p: {}\non tcp_probe print pid\n",
                "x".repeat(1 << 20)
            )
            .into_bytes(),
        ),
        (
            "not utf-8",
            b"# \xff\xfe @param\non tcp_probe print pid\n".to_vec(),
        ),
    ];
    for (tag, text) in cases {
        let r = Recipe::new("junk", &text);
        for args in [vec!["--check", r.path()], vec![r.path(), "--help"]] {
            let out = tcpq(&args);
            let e = err(&out);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{tag} {args:?}: {}",
                &e[..e.len().min(400)]
            );
            assert!(
                e.contains("error"),
                "{tag}: a diagnostic: {}",
                &e[..e.len().min(400)]
            );
            assert!(!e.contains("panicked"), "{tag}: {e}");
        }
    }
}

#[test]
fn recipe_help_shows_the_header() {
    let r = Recipe::new(
        "help",
        b"# Windows on a port.\n#\n# @param port: port  the port\n# @param min: u64 = 5  smallest\n# @example tcpq x.tcpq --param port=80\non tcp_select_window where sport == $port and win >= $min print win\n",
    );
    let out = tcpq(&[r.path(), "--help"]);
    let o = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", err(&out));
    assert!(o.contains("Windows on a port."), "{o}");
    assert!(o.contains("port  port  required; the port"), "{o}");
    assert!(o.contains("min   u64   default 5; smallest"), "{o}");
    assert!(o.contains("tcpq x.tcpq --param port=80"), "{o}");
}

/// Lists, ranges and prefixes are sets of typed items: a hostile or
/// malformed item is rejected by name (exit 2), a well-formed set keeps
/// the program's shape (one clause, the items in the condition).
#[test]
fn set_values_are_typed_items_never_syntax() {
    for (v, says) in [
        ("8080,", "item 2 (``): an empty item"),
        (",8080", "item 1 (``): an empty item"),
        ("80,,443", "item 2 (``): an empty item"),
        ("80,443;print comm", "item 2 (`443;print comm`)"),
        ("80,443 or 1 == 1", "item 2 (`443 or 1 == 1`)"),
        ("1..", "`` is not a port number"),
        ("..", "`` is not a port number"),
        ("80..70000", "`70000` is not a port number"),
        ("80,$port", "item 2 (`$port`)"),
        ("10.0.0.0/8", "is not a port number"),
    ] {
        let out = check_port(v);
        let e = err(&out);
        assert_eq!(out.status.code(), Some(2), "port={v}: {e}");
        assert!(e.contains(says), "port={v}: {e}");
        assert!(!e.contains("panicked"), "{e}");
    }
    let out = tcpq(&[
        "--check",
        "--explain",
        concat!(env!("CARGO_MANIFEST_DIR"), "/recipes/zero-window.tcpq"),
        "--param",
        "port=80, 443 ,8000..8100",
    ]);
    let o = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", err(&out));
    assert!(o.contains("1 clause"), "{o}");
    assert!(
        o.contains("filter: 5 instructions"),
        "win, two ports, a range: {o}"
    );
}

/// Every recipe carries its expected behaviour (`@expect`), and every
/// `@expect` line is a statement the kernel test knows: checked here
/// without a kernel, so a recipe added without one fails everywhere.
#[test]
fn every_recipe_says_what_it_must_show() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "tcpq") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let ex = expect::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(ex.traffic, "transfer", "{}", p.display());
        assert!(
            ex.cases.iter().all(|c| !c.checks.is_empty()),
            "{}",
            p.display()
        );
        n += 1;
    }
    assert!(n >= 16, "{n} recipes");
    // Not a statement: an error, never a line dropped.
    let bad = "# @expect traffic transfer\n# @expect rows >= 1\n# @expect rowz == 2\non x print a";
    assert!(expect::parse(bad).is_err());
    assert!(expect::parse("# @expect traffic transfer\non x print a").is_err());
    assert!(expect::parse("# X.\non x print a").is_err());
}
