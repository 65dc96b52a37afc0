//! The command line's contract without the kernel: exit codes, where
//! diagnostics go, `--check`. None of these attach anything, so they run
//! anywhere (no root needed).
use std::process::{Command, Output};

fn tcpq(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tcpq"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run tcpq")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_bad_program_exits_2_with_a_located_diagnostic() {
    let out = tcpq(&["-e", "on tcp_select_window where wn == 0 print pid, comm"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{err}");
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout: {}",
        text(&out.stdout)
    );
    // Code, location, caret and the fix.
    assert!(err.contains("error[E"), "{err}");
    assert!(err.contains("1:28"), "line:column of `wn`: {err}");
    assert!(err.contains("^^"), "{err}");
    assert!(err.contains("`win`"), "did you mean: {err}");
    assert!(!err.contains("attached"), "{err}");
}

#[test]
fn every_error_of_a_program_is_reported() {
    let out = tcpq(&[
        "-e",
        "on tcp_select_windw where win == 0 print pid\non tcp_probe print srt",
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("tcp_select_window"), "probe suggestion: {err}");
    assert!(err.contains("srtt"), "field suggestion: {err}");
}

#[test]
fn check_plans_without_the_kernel() {
    let ok = tcpq(&[
        "--check",
        "-e",
        "on tcp_select_window where win == 0 print pid, comm",
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert!(!text(&ok.stderr).contains("attached"));
    let bad = tcpq(&[
        "--check",
        "-e",
        "on tcp_select_window where comm > 3 print pid",
    ]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["--format", "xml", "-e", "on tcp_probe print pid"][..],
        &["--duration", "5parsecs", "-e", "on tcp_probe print pid"][..],
        &["-e", "on tcp_probe print pid", "--bogus"][..],
        &["/nonexistent/recipe.tcpq"][..],
    ] {
        let out = tcpq(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "tcpq {args:?}: stderr:\n{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn recipe_parameters_are_typed() {
    let recipe = concat!(env!("CARGO_MANIFEST_DIR"), "/recipes/zero-window.tcpq");
    let good = tcpq(&["--check", recipe, "--param", "port=8080"]);
    assert_eq!(good.status.code(), Some(0), "{}", text(&good.stderr));
    for bad in ["port=http", "port=70000", "port=1;print comm", "prot=80"] {
        let out = tcpq(&["--check", recipe, "--param", bad]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "--param {bad}: {}",
            text(&out.stderr)
        );
    }
    // A required parameter left out.
    let missing = tcpq(&["--check", recipe]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing.stderr));
}

#[test]
fn explain_names_template_strategy_and_filter() {
    let out = tcpq(&[
        "--explain",
        "--check",
        "-e",
        "on tcp_select_window where win == 0 print pid, comm",
    ]);
    let s = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{s}");
    for want in ["tcp_select_window", "net_dev_queue", "win", "filter"] {
        assert!(s.contains(want), "--explain lacks {want:?}:\n{s}");
    }
}

/// `tcpq counters` checks names against this kernel's own counters (its
/// /proc/net/snmp and netstat, readable without privileges): a typo is a
/// usage error with the closest name; `--explain` says what a counter
/// means; `--help` says how to get there.
#[test]
fn counters_names_are_checked_and_explained() {
    let out = tcpq(&["counters", "TCPToZeroWindowAdc", "--duration", "1s"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("did you mean `TcpExtTCPToZeroWindowAdv`?"),
        "{err}"
    );
    assert!(!err.contains("first reading"), "nothing was read: {err}");
    let out = tcpq(&["counters", "InDatagrams"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("UdpInDatagrams"),
        "ambiguous: lists them"
    );
    let out = tcpq(&["counters", "--every", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));

    let out = tcpq(&[
        "counters",
        "--explain",
        "tcptozerowindowadv",
        "TcpRetransSegs",
    ]);
    let s = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Kernel order: Tcp before TcpExt.
    let rs = s.find("TcpRetransSegs: ").expect(&s);
    let zw = s.find("TcpExtTCPToZeroWindowAdv: ").expect(&s);
    assert!(rs < zw, "{s}");
    assert!(s.contains("tcp_select_window"), "{s}");
    // Without names: every TCP counter on one line.
    let out = tcpq(&["counters", "--explain"]);
    let s = text(&out.stdout);
    assert!(s.lines().count() > 100, "{s}");
    assert!(s.lines().all(|l| l.starts_with("Tcp")), "{s}");

    let help = text(&tcpq(&["counters", "--help"]).stdout);
    assert!(help.contains("--explain"), "{help}");
    assert!(
        help.contains("--duration") && help.contains("--every"),
        "{help}"
    );
}
