//! The command line's contract without the kernel: exit codes, where
//! diagnostics go, `--check`. None of these attach anything, so they run
//! anywhere (no root needed).
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tcpq(args: &[&str]) -> Output {
    tcpq_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

/// `tcpq ARGS` with `dir` as the current directory.
fn tcpq_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tcpq"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run tcpq")
}

/// A fresh directory (no `recipes/` in it), removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "tcpq-cli-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
    /// Write `name` in the directory; its path.
    fn write(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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
    let under_wn = format!("\n   | {}^|\n", " ".repeat(27));
    assert!(err.contains(&under_wn), "underline under `wn`: {err}");
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

/// `--duration` and a program's `every` read one grammar: the same
/// spellings pass, and a bad unit gets the same words (naming each).
#[test]
fn duration_and_every_share_one_grammar() {
    for good in ["200ms", "1_000ms", "1.5s", "2min"] {
        let every = tcpq(&["--check", "-e", &format!("on tcp_probe count every {good}")]);
        let flag = tcpq(&["--check", "--duration", good, "-e", "on tcp_probe count"]);
        assert_eq!(
            (every.status.code(), flag.status.code()),
            (Some(0), Some(0)),
            "{good}: {}{}",
            text(&every.stderr),
            text(&flag.stderr)
        );
    }
    let every = tcpq(&["--check", "-e", "on tcp_probe count every 200x"]);
    let flag = tcpq(&["--check", "--duration", "200x", "-e", "on tcp_probe count"]);
    assert_eq!(
        (every.status.code(), flag.status.code()),
        (Some(2), Some(2))
    );
    let (every, flag) = (text(&every.stderr), text(&flag.stderr));
    assert!(every.contains("`x` is not a unit of `every`"), "{every}");
    assert!(
        every.contains("Help: `every` is in milliseconds: write `ms`, `s`, `m` or `h`"),
        "{every}"
    );
    assert!(flag.contains("`x` is not a unit of `--duration`"), "{flag}");
    assert!(
        flag.contains("help: `--duration` is in milliseconds: write `ms`, `s`, `m` or `h`"),
        "{flag}"
    );
    for bad in ["1.5ms", ".5s", "5"] {
        let every = tcpq(&["--check", "-e", &format!("on tcp_probe count every {bad}")]);
        let flag = tcpq(&["--check", "--duration", bad, "-e", "on tcp_probe count"]);
        assert_eq!(
            (every.status.code(), flag.status.code()),
            (Some(2), Some(2)),
            "{bad}"
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
    let dir = TempDir::new();
    let required = dir.write(
        "required.tcpq",
        "# @param port: port  the port\non tcp_probe where dport == $port print pid\n",
    );
    let missing = tcpq(&["--check", &required]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing.stderr));
    assert!(
        text(&missing.stderr).contains("E0402"),
        "{}",
        text(&missing.stderr)
    );
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
/// The built-in recipes, from a directory without `recipes/`: by name,
/// with `run`, and their help; a name beats a same-named file in the
/// current directory, a `/` makes it a path.
#[test]
fn built_in_recipes_run_by_name_from_anywhere() {
    let dir = TempDir::new();
    for args in [
        &["zero-window", "--check"][..],
        &["run", "zero-window", "--check"][..],
        &["--check", "run", "tcplife", "--param", "bytes=true"][..],
        &["tcpretrans", "--check", "--param", "port=80,443"][..],
    ] {
        let out = tcpq_in(dir.path(), args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // Every built-in recipe compiles by name without parameters.
    let list = tcpq_in(dir.path(), &["recipes", "--format", "json"]);
    let names: Vec<String> = text(&list.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(names.len() >= 16, "{names:?}");
    for n in &names {
        let out = tcpq_in(dir.path(), &[n, "--check"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "tcpq {n} --check: {}",
            text(&out.stderr)
        );
    }
    // A file named like a built-in recipe: the name runs the built-in one,
    // `./NAME` the file.
    dir.write("zero-window", "on tcp_probe where bogus == 1 print pid\n");
    let builtin = tcpq_in(dir.path(), &["zero-window", "--check"]);
    assert_eq!(builtin.status.code(), Some(0), "{}", text(&builtin.stderr));
    let file = tcpq_in(dir.path(), &["./zero-window", "--check"]);
    assert_eq!(file.status.code(), Some(2));
    assert!(
        text(&file.stderr).contains("bogus"),
        "{}",
        text(&file.stderr)
    );
    // Neither a recipe nor a file: a suggestion, exit 2.
    let out = tcpq_in(dir.path(), &["zero-windw", "--check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("did you mean the recipe `zero-window`?"),
        "{}",
        text(&out.stderr)
    );
    let out = tcpq_in(dir.path(), &["tcplife.tcpq", "--check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("the built-in recipe is `tcpq tcplife`"),
        "{}",
        text(&out.stderr)
    );
    for args in [&["run"][..], &["run", "a", "b"][..], &["a", "b"][..]] {
        let out = tcpq_in(dir.path(), args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // Help by name, with the name in its usage line.
    for args in [
        &["tcplife", "--help"][..],
        &["run", "tcplife", "--help"][..],
    ] {
        let out = tcpq_in(dir.path(), args);
        let o = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(o.starts_with("tcplife\n"), "{o}");
        assert!(
            o.contains("Usage: tcpq tcplife [--param bytes=VALUE]"),
            "{o}"
        );
        assert!(o.contains("bytes   bool    default false;"), "{o}");
    }
}

#[test]
fn recipes_lists_name_purpose_and_parameters() {
    let out = tcpq(&["recipes"]);
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!("recipes_list", text(&out.stdout));
    let json = tcpq(&["recipes", "--format", "json"]);
    let rows: Vec<serde_json::Value> = text(&json.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let life = rows.iter().find(|r| r["name"] == "tcplife").unwrap();
    assert_eq!(
        life["summary"],
        "Connection lifespans as each connection closes, like BCC's tcplife."
    );
    let bytes = &life["params"][0];
    assert_eq!(
        (
            &bytes["name"],
            &bytes["type"],
            &bytes["default"],
            &bytes["optional"],
            &bytes["required"]
        ),
        (
            &"bytes".into(),
            &"bool".into(),
            &"false".into(),
            &false.into(),
            &false.into()
        )
    );
    let port = &life["params"][1];
    assert_eq!(
        (&port["type"], &port["default"], &port["optional"]),
        (&"port".into(), &serde_json::Value::Null, &true.into())
    );
}

/// `-p`, `-4`, `-6`, `-c` add a condition to every clause, shown by
/// `--explain` and compiled like a written one.
#[test]
fn reflex_flags_add_conditions() {
    let explain = |args: &[&str]| {
        let mut a = vec!["--check", "--explain"];
        a.extend(args);
        let out = tcpq(&a);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    let o = explain(&[
        "-p",
        "42",
        "-e",
        "on tcp_probe where dport == 443 print pid",
    ]);
    assert!(
        o.contains("where:    (dport == 443) and pid == 42  # -p 42"),
        "{o}"
    );
    assert!(o.contains("`dport` is 443 and `pid` is 42"), "{o}");
    let o = explain(&[
        "-4",
        "-p",
        "1,2",
        "-e",
        "on tcp_retransmit count; on tcp_connect count",
    ]);
    assert_eq!(
        o.matches("pid in [1, 2] and family == AF_INET  # -p 1,2 -4")
            .count(),
        2,
        "{o}"
    );
    let o = explain(&["-6", "tcpconnect"]);
    assert!(o.contains("family == AF_INET6  # -6"), "{o}");
    let o = explain(&["-c", "true", "zero-window"]);
    assert!(o.contains("cgroup == 0  # -c"), "{o}");
    assert!(
        o.contains("note: -c: `cgroup == 0` stands for the command's own cgroup"),
        "{o}"
    );
    let o = explain(&["zero-window", "--param", "port=80,8000..8100"]);
    let words = o.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains("`win` is 0 and `sport` is in [80, 8000..8100]"),
        "{o}"
    );
    for bad in [
        &["-4", "-6", "-e", "on tcp_probe print pid"][..],
        &["-p", "abc", "-e", "on tcp_probe print pid"][..],
        &["-p", "0", "-e", "on tcp_probe print pid"][..],
        &["-p", "1,", "-e", "on tcp_probe print pid"][..],
    ] {
        let out = tcpq(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", text(&out.stderr));
    }
    // --check touches nothing: `-o` creates no file.
    let dir = TempDir::new();
    let file = dir.path().join("out.jsonl");
    let out = tcpq(&["--check", "-o", file.to_str().unwrap(), "zero-window"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!file.exists());
}

/// `tcpq -l --format json`: one object per probe and line; `-l PROBE
/// --format json` one object, with every field's type and unit.
#[test]
fn probe_list_as_json() {
    let out = tcpq(&["-l", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let probes: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(
        probes.len(),
        text(&tcpq(&["-l"]).stdout)
            .lines()
            .take_while(|l| !l.is_empty())
            .count()
    );
    let probe = probes.iter().find(|p| p["name"] == "tcp_probe").unwrap();
    let field = |p: &serde_json::Value, name: &str| {
        p["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no field {name}"))
    };
    let srtt = field(probe, "srtt");
    assert_eq!(
        (&srtt["type"], &srtt["unit"], &srtt["group"]),
        (&"uint".into(), &"micros".into(), &"probe".into())
    );
    let pid = field(probe, "pid");
    assert_eq!(
        (&pid["group"], &pid["unit"]),
        (&"common".into(), &serde_json::Value::Null)
    );
    assert_eq!(field(probe, "mss")["group"], "socket");
    assert_eq!(field(probe, "saddr")["type"], "addr");
    let out = tcpq(&["-l", "tcp_retransmit", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let one: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(one["name"], "tcp_retransmit");
    assert!(one["doc"].as_str().unwrap().len() > 20);
    assert!(one["this_kernel"].is_object(), "{one}");
    assert_eq!(field(&one, "segs")["unit"], "segments");
    let out = tcpq(&["-l", "tcp_probx", "--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
}

/// `tcpq sockets ARGS`: (exit code, stdout, stderr).
fn tcpq_sockets_cli(args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["sockets"];
    all.extend_from_slice(args);
    let out = tcpq(&all);
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// `tcpq sockets` checks its query and its `--netns` before it reads any
/// socket (the kernel side is `tests/kernel/sockets.rs`).
#[test]
fn bad_queries_and_namespaces_exit_2() {
    let (code, _, err) = tcpq_sockets_cli(&["where", "rcv_wscal", "==", "0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("error[E0102]"), "{err}");
    assert!(err.contains("^^^^^^^^|"), "located: {err}");
    assert!(err.contains("did you mean `rcv_wscale`?"), "{err}");
    let (code, _, err) = tcpq_sockets_cli(&["count by comm"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("error[E0212]"), "{err}");
    let (code, out, err) =
        tcpq_sockets_cli(&["--netns", "tcpq-no-such-namespace", "where", "sport == 1"]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert!(
        err.contains("--netns tcpq-no-such-namespace") && err.contains("no network namespace"),
        "{err}"
    );
}

/// `tcpq --version` names the version and the commit it was built from
/// (build.rs): in a git checkout, the checkout's HEAD.
#[test]
fn version_names_the_commit() {
    let out = tcpq(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    let v = text(&out.stdout);
    let want = format!("tcpq {} (", env!("CARGO_PKG_VERSION"));
    assert!(v.starts_with(&want), "{v}");
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| text(&o.stdout).trim().to_owned());
    match head {
        Some(sha) => assert!(v.contains(&format!("({sha}")), "HEAD is {sha}: {v}"),
        None => assert!(v.contains("(commit unknown)"), "{v}"),
    }
}

/// `tcpq --help` has a usage line for every subcommand it lists, and for
/// a subcommand with subcommands of its own (`lab`), the usage names each
/// of them (`lab rerun` was missing once).
#[test]
fn help_lists_every_subcommand() {
    let help = text(&tcpq(&["--help"]).stdout);
    let usage: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Usage:"))
        .take_while(|l| !l.is_empty())
        .map(|l| l.trim_start_matches("Usage:").trim())
        .collect();
    let commands = |h: &str| -> Vec<String> {
        h.lines()
            .skip_while(|l| *l != "Commands:")
            .skip(1)
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect()
    };
    let subs = commands(&help);
    assert!(subs.len() >= 5, "{help}");
    for sub in &subs {
        let lines: Vec<&&str> = usage
            .iter()
            .filter(|l| l.starts_with(&format!("tcpq {sub}")))
            .collect();
        assert!(!lines.is_empty(), "no usage line for `tcpq {sub}`:\n{help}");
        let sub_help = text(&tcpq(&[sub, "--help"]).stdout);
        for subsub in commands(&sub_help) {
            let named = lines
                .iter()
                .any(|l| l.split([' ', '|']).any(|w| w == subsub));
            assert!(
                named,
                "`tcpq {sub} {subsub}` is in `tcpq {sub} --help` but not in the usage of `tcpq --help`:\n{help}"
            );
        }
    }
}

/// `tcpq serve --check` as docs/serve.md shows it (its ```text block that
/// starts with the command), exactly: no kernel, nothing attached.
#[test]
fn serve_check_prints_what_docs_serve_md_shows() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/serve.md"))
        .unwrap();
    let block = doc
        .split("```text\n")
        .skip(1)
        .find(|b| b.starts_with("tcpq serve --check "))
        .and_then(|b| b.split("\n```").next())
        .expect("a ```text block with `tcpq serve --check ...`");
    let (cmd, shown) = block.split_once('\n').unwrap();
    let args: Vec<&str> = cmd.split_whitespace().skip(1).collect();
    let out = tcpq(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        shown.trim_end()
    );
}

/// What `tcpq serve` refuses is refused before privileges or sockets:
/// exit 2 anywhere, and `--check` attaches nothing (no root needed).
#[test]
fn serve_refuses_before_touching_anything() {
    let out = tcpq(&["serve", "zero-window"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[E0214]"));
    let out = tcpq(&["serve", "rtt-metrics", "--listen", "nowhere"]);
    assert_eq!(out.status.code(), Some(2));
    let out = tcpq(&["serve"]);
    assert_eq!(out.status.code(), Some(2));
    let dir = TempDir::new();
    let out = tcpq(&["serve", "--check", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no *.tcpq recipe"));
    dir.write("a.tcpq", "on tcp_connect count as x\n");
    dir.write("b.tcpq", "on tcp_accept count by comm as x\n");
    let out = tcpq(&["serve", "--check", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error[E0215]") && err.contains("b.tcpq:1:"),
        "{err}"
    );
}

/// `--kubernetes`: `--check` shows the labels it adds after `cgroup` (and
/// reads nothing); its options alone are a usage error; roots it cannot
/// read are a runtime error before anything is attached.
#[test]
fn serve_kubernetes_options() {
    let out = tcpq(&["serve", "--check", "--kubernetes", "pod-retransmit-metrics"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("cgroup (per-value), k8s_namespace_name, k8s_pod_name, k8s_container_name"),
        "{text}"
    );
    let out = tcpq(&["serve", "--check", "pod-retransmit-metrics"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("k8s_"));
    let out = tcpq(&[
        "serve",
        "--kubernetes-log-dir",
        "/var/log",
        "pod-retransmit-metrics",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let dir = TempDir::new();
    let out = tcpq(&[
        "serve",
        "--kubernetes",
        "--kubernetes-log-dir",
        dir.path().to_str().unwrap(),
        "--kubernetes-cgroup-root",
        dir.path().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "pod-retransmit-metrics",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let want = format!(
        "tcpq: error: --kubernetes: cannot read {}: No such file",
        dir.path().join("pods").display()
    );
    assert!(err.contains(&want), "{err}");
}
