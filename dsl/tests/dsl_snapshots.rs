//! Snapshots of the language's stages: syntax trees, plans, `--explain`
//! text and the no-colour rendering of every kind of diagnostic.
//!
//! They live with the language, in `dsl/tests/snapshots/`, so
//! `cargo test -p tcpq-dsl` runs them; snapshots of runtime rendering stay
//! in the root package's `tests/snapshots/`. Review changes with
//! `cargo insta review` (or `INSTA_UPDATE=always` and a diff).
use tcpq_dsl::{compile, explain, parse, render_all, Code};

/// Programs whose syntax trees are pinned.
const AST_CORPUS: &[(&str, &str)] = &[
    (
        "seed",
        "on tcp_select_window where win == 0 print pid, comm",
    ),
    ("count_no_key", "on tcp_retransmit count"),
    ("count_by", "on tcp_retransmit count by daddr, dport"),
    (
        "precedence",
        "on tcp_probe where not srtt > 100 or snd_cwnd < 10 and ssthresh >= 2 print pid",
    ),
    (
        "literals",
        "on tcp_select_window where saddr == 10.0.0.1 or daddr != fe80::1 or comm == \"a\\\"b\" \
         or state == SYN_RECV or family == AF_INET6 or win == 0x1_0 or wscale_ok == false \
         print pid",
    ),
    (
        "bare_bool",
        "on tcp_select_window where not wscale_ok print pid",
    ),
    (
        "literal_first",
        "on tcp_select_window where 100 <= win print win",
    ),
    (
        "param",
        "on tcp_select_window where sport == $port print pid",
    ),
    (
        "multi_clause",
        "# two questions at once\non tcp_retransmit count by dport; on tcp_probe print srtt\n\n\
         on tcp_select_window where (win == 0\n  and sport == 80) print pid # trailing comment",
    ),
    ("negative", "on tcp_probe where srtt < -1 print srtt"),
    (
        "sets_and_units",
        "on tcp_probe where daddr in [10.0.0.0/8, fd00::/8, ::1] and dport in 8000..8100 \
         and srtt >= 1.5ms and comm == \"ngi*\" print srtt / 1ms as srtt_ms, comm limit 10",
    ),
    (
        "aggregations",
        "on tcp_probe hist srtt by dport top 5 every 2s\n\
         on tcp_select_window where win_bytes / 1024 > 64 lhist win_bytes, 0, 256KiB, 16KiB\n\
         on tcp_retransmit stats segs by comm",
    ),
];

#[test]
fn syntax_trees() {
    for (name, src) in AST_CORPUS {
        let ast = parse(src).unwrap_or_else(|d| panic!("{name}: {d:?}"));
        insta::assert_debug_snapshot!(format!("ast_{name}"), ast, src);
    }
}

/// Programs whose plans are pinned.
const PLAN_CORPUS: &[(&str, &str)] = &[
    (
        "seed",
        "on tcp_select_window where win == 0 print pid, comm",
    ),
    (
        "no_where",
        "on tcp_select_window print pid, comm, win, win_bytes",
    ),
    (
        "addr_and_not",
        "on tcp_select_window where saddr == 10.0.0.1 and not wscale_ok print pid, saddr",
    ),
    (
        "or_ne_addr",
        "on tcp_select_window where daddr != ::1 or comm == \"nginx\" print pid",
    ),
    (
        "count_by",
        "on tcp_retransmit where segs > 1 count by daddr, dport",
    ),
    ("count_total", "on tcp_retransmit count"),
    (
        "states",
        "on tcp_probe where state != ESTABLISHED and family == AF_INET print state, family",
    ),
    (
        "two_clauses",
        "on tcp_probe where srtt > 100000 print srtt, snd_cwnd\non tcp_retransmit count by comm",
    ),
    ("sum_by", "on tcp_retransmit sum segs by dport"),
    ("avg_loaded", "on tcp_select_window avg srtt by comm top 3"),
    ("min_max", "on tcp_probe min snd_cwnd\non tcp_probe max srtt by daddr"),
    ("stats_every", "on tcp_probe stats srtt every 1s"),
    ("hist", "on tcp_select_window hist win_bytes by dport"),
    ("lhist_units", "on tcp_probe lhist srtt, 0, 100ms, 10ms"),
    (
        "signed_lhist",
        "on tcp_sendmsg lhist ret, -4KiB, 64KiB, 4KiB\non tcp_recvmsg stats ret by comm",
    ),
    (
        "cidr_v4_v6",
        "on tcp_probe where daddr in [10.0.0.0/8, 192.168.1.0/24, fd00::/8, ::1/128] print daddr",
    ),
    (
        "port_ranges",
        "on tcp_probe where dport in [80, 443, 8000..8100] and sport in 0..1023 count by dport",
    ),
    (
        "comm_prefix",
        "on tcp_probe where comm == \"kworker/*\" or comm != \"a_fifteen_byte*\" print comm",
    ),
    (
        "units",
        "on tcp_select_window where win_bytes < 64KiB and srtt > 1.5ms and rcv_wnd >= 1MB print win_bytes",
    ),
    (
        "arithmetic",
        "on tcp_select_window where win_bytes / 1024 == 64 or 2 * win > 100 \
         print win_bytes / 1024 as win_kib, srtt / 1ms as srtt_ms limit 3",
    ),
];

#[test]
fn plans() {
    for (name, src) in PLAN_CORPUS {
        let plan = compile(src, "<command line>", &[])
            .unwrap_or_else(|d| panic!("{}", render_all(&d, src, "<command line>", false)));
        insta::assert_json_snapshot!(format!("plan_{name}"), plan, src);
    }
}

const ZERO_WINDOW: &str = "\
# Zero-window segments advertised on a local port, with the owning process.
#
# @param port: port                      Local port to watch (required)
# @param min: u64 = 0                    Ignore windows below this
# @example tcpq recipes/zero-window.tcpq --param port=8080
on tcp_select_window where win == 0 and sport == $port print pid, comm, sport, dport
";

#[test]
fn recipe_plan_and_header() {
    let recipe = tcpq_dsl::parse_recipe(ZERO_WINDOW).unwrap();
    insta::assert_json_snapshot!("recipe_zero_window_header", recipe);
    let plan = compile(
        ZERO_WINDOW,
        "recipes/zero-window.tcpq",
        &[("port".into(), "8080".into())],
    )
    .unwrap();
    insta::assert_json_snapshot!("plan_recipe_zero_window", plan);
}

/// An optional parameter: a recipe that filters on a port only when one is
/// given. Without it, the comparisons that use it are left out (and so is
/// the `not` around one); with it, the recipe is an ordinary one.
const OPTIONAL_PORT: &str = "\
# Retransmissions, on one port if given.
#
# @param port: port?     Local or remote port (default: every port)
# @param slow: u64?      Only sockets with srtt above this
on tcp_retransmit where (sport == $port or dport == $port) and not state == CLOSE_WAIT
  print pid, sport, dport, segs
on tcp_probe where srtt > $slow and not dport == $port count
";

#[test]
fn optional_parameter_plans_with_and_without_it() {
    let recipe = tcpq_dsl::parse_recipe(OPTIONAL_PORT).unwrap();
    assert!(recipe.params.iter().all(|p| p.optional));
    let without = compile(OPTIONAL_PORT, "optional.tcpq", &[]).unwrap();
    insta::assert_json_snapshot!("plan_optional_param_not_given", without);
    let given = [
        ("port".to_string(), "443".to_string()),
        ("slow".to_string(), "10ms".to_string()),
    ];
    let with = compile(OPTIONAL_PORT, "optional.tcpq", &given).unwrap();
    insta::assert_json_snapshot!("plan_optional_param_given", with);
    insta::assert_snapshot!(
        "explain_optional_param",
        format!(
            "$ tcpq optional.tcpq --explain --check\n{}\n\
             $ tcpq optional.tcpq --param port=443 --param slow=10ms --explain --check\n{}",
            explain(&without),
            explain(&with)
        )
    );
    // Only the filter and its description differ: the same templates.
    for (a, b) in without.clauses.iter().zip(&with.clauses) {
        assert_eq!((&a.template, &a.action), (&b.template, &b.action));
    }
    // The shipped recipes that use it, both ways.
    for (recipe, given) in [
        ("tcpretrans", "sport == $port or dport == $port"),
        ("tcpconnect", "dport == $port"),
    ] {
        // Both also take an optional pid and family, not given here.
        let given = format!("{given} or pid == $pid or family == $family");
        // The recipes are the root package's (`recipes/`, beside `dsl/`).
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap();
        let path = format!("{}/recipes/{recipe}.tcpq", root.display());
        let src = std::fs::read_to_string(&path).unwrap();
        let all = compile(&src, &path, &[]).unwrap();
        let one = compile(&src, &path, &[("port".into(), "8080".into())]).unwrap();
        let (all, one) = (&all.clauses[0], &one.clauses[0]);
        assert_eq!(all.where_omitted.join(" or "), given);
        assert_eq!(
            one.where_omitted.join(" or "),
            "pid == $pid or family == $family"
        );
        // tcp_connect is a view: its own filter stays; the port's goes.
        let ports = given.matches("$port").count();
        assert_eq!(one.filter.len(), all.filter.len() + ports, "{recipe}");
    }
}

#[test]
fn explain_text() {
    let plan = compile(
        "on tcp_select_window where win == 0 print pid, comm",
        "<command line>",
        &[],
    )
    .unwrap();
    insta::assert_snapshot!("explain_seed", explain(&plan));
    // A view's own condition is instructions too, shown with or without a
    // `where` (issue 18: they were hidden when there was none).
    let plan = compile(
        "on tcp_connect print pid, daddr\non tcp_close where dport == 443 count",
        "<command line>",
        &[],
    )
    .unwrap();
    for c in &plan.clauses {
        assert!(!c.filter.is_empty(), "{}", c.probe);
    }
    insta::assert_snapshot!("explain_views", explain(&plan));
    let plan = compile(
        ZERO_WINDOW,
        "recipes/zero-window.tcpq",
        &[("port".into(), "8080".into())],
    )
    .unwrap();
    let plan2 = compile(
        "on tcp_retransmit where (saddr == 10.0.0.1 or comm != \"curl\") and not segs == 1 count by daddr\n\
         on tcp_probe count",
        "<command line>",
        &[],
    )
    .unwrap();
    insta::assert_snapshot!(
        "explain_recipe_and_count",
        format!("{}\n{}", explain(&plan), explain(&plan2))
    );
    let plan3 = compile(
        "on tcp_select_window where win_bytes / 1024 >= 64 and daddr in 10.0.0.0/8 \
         hist win_bytes by dport top 3 every 1s\n\
         on tcp_probe lhist srtt, 0, 100ms, 10ms\n\
         on tcp_probe stats snd_cwnd by comm\n\
         on tcp_probe where comm == \"curl*\" print srtt / 1ms as srtt_ms, dport limit 5",
        "<command line>",
        &[],
    )
    .unwrap();
    insta::assert_snapshot!("explain_aggregations", explain(&plan3));
}

/// One program (and `--param`s) per diagnostic kind.
type DiagCase = (Code, &'static str, &'static [(&'static str, &'static str)]);
const DIAGNOSTICS: &[DiagCase] = &[
    (
        Code::Syntax,
        "on tcp_select_window where win == 0 prnt pid, comm",
        &[],
    ),
    (
        Code::UnknownProbe,
        "on tcp_select_windw where win == 0 print pid",
        &[],
    ),
    (
        Code::UnknownField,
        "on tcp_select_window where wn == 0 print pid, comm",
        &[],
    ),
    (
        Code::UndeclaredParam,
        "on tcp_probe where sport == $port print pid",
        &[],
    ),
    (
        Code::UnknownConstant,
        "on tcp_probe where state == ESTABLISHD print pid",
        &[],
    ),
    (
        Code::MissingSeparator,
        "on tcp_probe print pid on tcp_retransmit count",
        &[],
    ),
    (
        Code::CStyleOperator,
        "on tcp_probe where sport == 80 && dport = 443 print pid",
        &[],
    ),
    (
        Code::InvalidLiteral,
        "on tcp_probe where daddr == 10.0.0.256 print pid",
        &[],
    ),
    (Code::EmptyProgram, "# nothing but a comment\n", &[]),
    (
        Code::TypeMismatch,
        "on tcp_probe where saddr == 8080 print pid",
        &[],
    ),
    (
        Code::UnsupportedOperator,
        "on tcp_probe where saddr > 10.0.0.1 print pid",
        &[],
    ),
    (
        Code::OutOfRange,
        "on tcp_select_window where win > 70000 print pid",
        &[],
    ),
    (
        Code::StringTooLong,
        "on tcp_probe where comm == \"a-very-long-process\" print pid",
        &[],
    ),
    (
        Code::NeedFieldAndValue,
        "on tcp_probe where sport == dport print pid",
        &[],
    ),
    (
        Code::UnitSuffix,
        "on tcp_select_window where win_bytes < 64ms or win > 1KiB print pid",
        &[],
    ),
    (
        Code::NotAPredicate,
        "on tcp_probe where snd_cwnd print pid",
        &[],
    ),
    (
        Code::UnsupportedArithmetic,
        "on tcp_probe where srtt + 5 > 100 print pid",
        &[],
    ),
    (Code::NotNumeric, "on tcp_probe hist comm by dport", &[]),
    (Code::NotNumeric, "on tcp_sendmsg print ret / 1024", &[]),
    (
        Code::MissingUnit,
        "on tcp_probe where srtt > 1.5 count every 10",
        &[],
    ),
    (
        Code::BadModifier,
        "on tcp_probe print srtt top 5\non tcp_probe count limit 3",
        &[],
    ),
    (
        Code::PrintOnly,
        "on tcp_connect where time > 5 print pid\non tcp_probe count by cpu",
        &[],
    ),
    (Code::NotNumeric, "on tcp_connect print time / 1000", &[]),
    (
        Code::TooManyItems,
        "on tcp_probe where dport in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17] print pid",
        &[],
    ),
    (
        Code::BadHistogram,
        "on tcp_probe lhist srtt, 0, 100ms, 30ms",
        &[],
    ),
    (
        Code::BadHistogram,
        "on tcp_sendmsg lhist size, -4KiB, 64KiB, 4KiB",
        &[],
    ),
    (
        Code::NeedFieldAndValue,
        "# @param port: port = 0  Remote port; 0 for every port\n\
         on tcp_retransmit where $port == 0 or dport == $port count",
        &[],
    ),
    (
        Code::BadParamDecl,
        "# @param port: port? = 0  Remote port\non tcp_retransmit where dport == $port count",
        &[],
    ),
    (
        Code::NotAPredicate,
        "# @param port: port = 80\non tcp_retransmit where $port count",
        &[],
    ),
    (
        Code::TooManyClauses,
"on tcp_probe count; on tcp_probe count; on tcp_probe count; on tcp_probe count\n\
         on tcp_probe count; on tcp_probe count; on tcp_probe count; on tcp_probe count\n\
         on tcp_probe count; on tcp_probe count; on tcp_probe count; on tcp_probe count\n\
         on tcp_probe count; on tcp_probe count; on tcp_probe count; on tcp_probe count\n\
         on tcp_retransmit count",
        &[],
    ),
    (
        Code::KeyTooLarge,
        "on tcp_probe count by saddr, daddr, comm, task_comm, pid",
        &[],
    ),
    (
        Code::TooManyFields,
        "on tcp_sendmsg print rcv_wnd, snd_wnd, wscale_ok, snd_wscale, rcv_wscale, mss, srtt, \
         mdev, rttvar, snd_cwnd, ssthresh, bytes_acked, bytes_received, total_retrans, segs_out, \
         segs_in, rcvbuf, sndbuf, rcv_space, ca_state, uid, rto, backlog, backlog_max, cgroup",
        &[],
    ),
    (
        Code::UnknownParam,
        "# @param port: port\non tcp_probe where sport == $port print pid",
        &[("port", "1"), ("prot", "2")],
    ),
    (
        Code::MissingParam,
        "# @param port: port   Local port\non tcp_probe where sport == $port print pid",
        &[],
    ),
    (
        Code::BadParamValue,
        "# @param port: port\non tcp_probe where sport == $port print pid",
        &[("port", "http")],
    ),
    (
        Code::DuplicateParam,
        "# @param port: port\non tcp_probe where sport == $port print pid",
        &[("port", "1"), ("port", "2")],
    ),
    (
        Code::BadParamDecl,
        "# @param port: prot\non tcp_probe where sport == $port print pid",
        &[],
    ),
    (
        Code::DuplicateParamDecl,
        "# @param port: port\n# @param port: u64\non tcp_probe where sport == $port print pid",
        &[("port", "1")],
    ),
    (
        Code::UnknownDirective,
        "# @exmaple tcpq x.tcpq\non tcp_probe print pid",
        &[],
    ),
    (
        Code::BadMetricName,
        "on tcp_select_window where win == 0 count by comm as tcp-zero-windows",
        &[],
    ),
    (
        Code::BadMetricName,
        "on tcp_retransmit sum segs as tcp_retransmitted_segments_total",
        &[],
    ),
    (Code::BadMetricName, "on tcp_probe hist srtt as 1srtt", &[]),
];

#[test]
fn every_diagnostic_rendered() {
    let mut out = String::new();
    let mut seen = Vec::new();
    for (code, src, params) in DIAGNOSTICS {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let diags = compile(src, "<command line>", &params).expect_err(src);
        assert!(
            diags.iter().any(|d| d.code == *code),
            "{src}: expected {code:?}, got {diags:?}"
        );
        seen.push(*code);
        out.push_str(&format!("===== {code} ({code:?})\n"));
        for line in src.lines() {
            out.push_str(&format!(">>> {line}\n"));
        }
        for (k, v) in &params {
            out.push_str(&format!(">>> --param {k}={v}\n"));
        }
        out.push_str(&render_all(&diags, src, "<command line>", false));
        out.push('\n');
    }
    // Filter-too-long needs a long program: rendered on its own.
    let long = (0..=32)
        .map(|i| format!("saddr == 10.0.0.{i}"))
        .collect::<Vec<_>>()
        .join(" or ");
    let src = format!("on tcp_probe where {long} print pid");
    let diags = compile(&src, "<command line>", &[]).unwrap_err();
    assert_eq!(diags[0].code, Code::FilterTooLong);
    seen.push(Code::FilterTooLong);
    out.push_str(&format!("===== {} (FilterTooLong)\n", Code::FilterTooLong));
    out.push_str(&render_all(&diags, &src, "<command line>", false));
    // A field this kernel lacks: found by the runtime, rendered here.
    let src = "on tcp_select_window where rcv_space < 64KiB print comm, rcv_space";
    let plan = compile(src, "<command line>", &[]).unwrap();
    let d = tcpq_dsl::field_unavailable(
        plan.clauses[0].field_span("rcv_space"),
        "tcp_select_window",
        "rcv_space",
        "tcp_sock.rcvq_space.space: no such member in this kernel's BTF",
    );
    seen.push(Code::FieldUnavailable);
    out.push_str(&format!(
        "\n===== {} (FieldUnavailable)\n",
        Code::FieldUnavailable
    ));
    out.push_str(&render_all(&[d], src, "<command line>", false));
    // A reason this kernel's BTF lacks: found when the runtime binds the
    // plan, located from the binding's span.
    let src = "on tcp_drop where reason in [NO_SOCKET, PSP_INPUT] count";
    let plan = compile(src, "<command line>", &[]).unwrap();
    let b = &plan.clauses[0].binds[1].bind;
    let d = tcpq_dsl::constant_unavailable(
        b.span,
        &b.constant,
        &b.enum_name,
        "its 79 constants are this kernel's; this one is newer or older",
        None,
    );
    seen.push(Code::ConstantUnavailable);
    out.push_str(&format!(
        "\n===== {} (ConstantUnavailable)\n",
        Code::ConstantUnavailable
    ));
    out.push_str(&render_all(&[d], src, "<command line>", false));
    // A probe this kernel cannot attach: found when the runtime binds the
    // plan, located at the probe's name.
    let src = "on tcp_probe where srtt > 1ms count";
    let plan = compile(src, "<command line>", &[]).unwrap();
    let d = tcpq_dsl::probe_unavailable(
        plan.clauses[0].probe_span,
        "tcp_probe",
        "tried tcp_probe (tracepoint tcp:tcp_probe): tracepoint tcp:tcp_probe not found; \
         tcp_probe_raw (raw tracepoint tcp:tcp_probe): raw tracepoint tcp:tcp_probe not found",
    );
    seen.push(Code::ProbeUnavailable);
    out.push_str(&format!(
        "\n===== {} (ProbeUnavailable)\n",
        Code::ProbeUnavailable
    ));
    out.push_str(&render_all(&[d], src, "<command line>", false));
    // A pass that lost a condition: the checker fails closed. Made by hand
    // (no program reaches it), rendered like any other.
    let src = "on tcp_probe where dport == 443 print pid";
    let mut resolved = tcpq_dsl::resolve(&parse(src).unwrap(), &tcpq_dsl::Params::default());
    resolved.clauses[0].filter.as_mut().unwrap().expr = tcpq_dsl::resolve::RExpr::Invalid;
    let diags = tcpq_dsl::check(&resolved).unwrap_err();
    assert_eq!(diags[0].code, Code::Internal);
    seen.push(Code::Internal);
    out.push_str(&format!("\n===== {} (Internal)\n", Code::Internal));
    out.push_str(&render_all(&diags, src, "<command line>", false));
    // What `tcpq serve` refuses, and one metric exported two ways: found
    // on the plans (`tcpq_dsl::metrics`), rendered like any other.
    let src = "on tcp_probe print srtt\non tcp_retransmit count by comm top 5 every 10s";
    let plan = compile(src, "<command line>", &[]).unwrap();
    let diags = tcpq_dsl::metrics::serve_problems(&plan);
    seen.extend(diags.iter().map(|d| d.code));
    out.push_str(&format!("\n===== {} (NotForServe)\n", Code::NotForServe));
    out.push_str(&render_all(&diags, src, "<command line>", false));
    let a = "on tcp_connect where not wscale_ok count by comm as tcp_unscaled";
    let b = "on tcp_accept where not wscale_ok count by sport as tcp_unscaled\non tcp_probe count\non tcp_probe where dport == 80 count";
    let (pa, pb) = (
        compile(a, "a.tcpq", &[]).unwrap(),
        compile(b, "b.tcpq", &[]).unwrap(),
    );
    let served = [
        tcpq_dsl::metrics::Served {
            origin: "a.tcpq",
            source: a,
            plan: &pa,
        },
        tcpq_dsl::metrics::Served {
            origin: "b.tcpq",
            source: b,
            plan: &pb,
        },
    ];
    let diags: Vec<_> = tcpq_dsl::metrics::conflicts(&served, &[])
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    seen.extend(diags.iter().map(|d| d.code));
    out.push_str(&format!(
        "\n===== {} (MetricConflict)\n",
        Code::MetricConflict
    ));
    out.push_str(&render_all(&diags, b, "b.tcpq", false));
    // `tcpq sockets` mistakes, in a snapshot of their own.
    let mut socks = String::new();
    for src in [
        "where rcv_wscal == 0 print pid",
        "where rttvar > 1ms",
        "count by comm",
        "print pid, comm limit 5",
        "where state == ESTABLISHED and",
    ] {
        let diags = tcpq_dsl::compile_sockets(src).expect_err(src);
        seen.extend(diags.iter().map(|d| d.code));
        socks.push_str(&format!(">>> tcpq sockets {src}\n"));
        socks.push_str(&render_all(&diags, src, "<command line>", false));
        socks.push('\n');
    }
    let src = "where rcv_wnd < 64KiB print rcv_wnd";
    let d = tcpq_dsl::sockets::sockets_field_unavailable(
        src,
        "rcv_wnd",
        "this kernel's tcp_info is 232 bytes; tcpi_rcv_wnd ends at byte 236",
    );
    socks.push_str(&format!(">>> tcpq sockets {src}\n"));
    socks.push_str(&render_all(&[d], src, "<command line>", false));
    insta::assert_snapshot!("sockets_diagnostics", socks);
    for c in Code::ALL {
        assert!(seen.contains(c), "no snapshot for {c:?}");
    }
    insta::assert_snapshot!("diagnostics", out);
}

/// The slips people make at 2 a.m., one snapshot each: every one is an
/// error that points at the slip and says the fix (issue 18).
const SLIPS: &[(&str, &str)] = &[
    (
        "unit_after_space",
        "on tcp_probe where srtt > 200 ms print pid",
    ),
    (
        "bytes_after_space",
        "on tcp_select_window where win_bytes < 64 KiB print pid",
    ),
    (
        "single_quotes",
        "on tcp_probe where comm == 'nginx' print pid",
    ),
    (
        "list_after_equals",
        "on tcp_probe where dport == 443,8443 print pid",
    ),
    (
        "parenthesised_set",
        "on tcp_probe where dport in (443, 8443) print pid",
    ),
    (
        "prefix_with_equals",
        "on tcp_probe where daddr == 10.0.0.0/8 print pid",
    ),
    (
        "cmd_for_comm",
        "on tcp_probe where cmd == \"nginx\" print pid, cmd",
    ),
    (
        "bcc_column_names",
        "on tcp_retransmit print laddr, lport, raddr, rport",
    ),
    (
        "lhist_without_commas",
        "on tcp_probe lhist srtt 0 100ms 10ms",
    ),
    (
        "glob_in_string",
        "on tcp_probe where comm == \"*nginx\" or comm == \"ngin*x\" print pid",
    ),
    (
        "host_name",
        "on tcp_probe where daddr == example.com print pid",
    ),
    (
        "localhost",
        "on tcp_probe where daddr == localhost print pid",
    ),
    (
        "bare_names_in_sets",
        "on tcp_probe where comm in [nginx, envoy] and state in [ESTABLISHED, BOGUS] \
         and dport in [srtt, 443] print pid, comm",
    ),
];

#[test]
fn slips_under_pressure_rendered() {
    for (name, src) in SLIPS {
        let diags = compile(src, "<command line>", &[]).expect_err(src);
        for d in &diags {
            assert!(d.is_located(), "{name}: {d:?}");
            assert!(d.help.is_some(), "{name}: no fix offered: {d:?}");
        }
        insta::assert_snapshot!(
            format!("slip_{name}"),
            format!(
                ">>> {src}\n{}",
                render_all(&diags, src, "<command line>", false)
            )
        );
    }
}

#[test]
fn all_errors_of_a_program_rendered() {
    let src = "on tcp_select_window where wn == 0 and sport > 70000\n  and comm == nginx print pid, bogus\n\
               on tcp_probe where srtt < 1KiB print nope\n\
               on tcp_probe where comm in 10.0.0.0/8 and dport in 9..1 sum comm by dport every 1\n\
               on tcp_retransmi count";
    let diags = compile(src, "prog.tcpq", &[]).unwrap_err();
    insta::assert_snapshot!("all_errors", render_all(&diags, src, "prog.tcpq", false));
}

#[test]
fn where_changes_only_the_filter() {
    let a = compile("on tcp_probe where srtt > 1000 print srtt", "x", &[]).unwrap();
    let b = compile(
        "on tcp_probe where saddr == ::1 and not state == LISTEN print srtt",
        "x",
        &[],
    )
    .unwrap();
    let (a, b) = (&a.clauses[0], &b.clauses[0]);
    assert_eq!(a.template, b.template);
    // The same precompiled programs, in the same order (the quick first
    // step each may take is the filter's, so it differs).
    fn programs(c: &tcpq_dsl::plan::ClausePlan) -> Vec<&str> {
        c.strategies.iter().map(|s| s.program.as_str()).collect()
    }
    assert_eq!(programs(a), programs(b));
    assert_eq!(a.action, b.action);
    assert_ne!(a.filter, b.filter);
}

/// `tcp_retransmit`'s `err`: errno names compile to the negative values
/// the kernel passes; every way of getting it wrong gets its own
/// diagnostic (with the code the structural check keys on).
#[test]
fn errno_names() {
    let plan = compile(
        "on tcp_retransmit where err == EPERM or err in [NET_XMIT_DROP, ENOBUFS] or err < -200 \
         sum segs by err",
        "<command line>",
        &[],
    )
    .unwrap();
    let values: Vec<(u64, bool)> = plan.clauses[0]
        .filter
        .iter()
        .map(|i| (i.value, i.signed))
        .collect();
    assert_eq!(
        values,
        [
            (-1i64 as u64, true),
            (1, true),
            (-105i64 as u64, true),
            (-200i64 as u64, true)
        ]
    );
    // Quoted, or as a number, it is the same test.
    for same in ["err == \"EPERM\"", "err == -1"] {
        let p = compile(
            &format!("on tcp_retransmit where {same} sum segs by err"),
            "x",
            &[],
        )
        .unwrap();
        let (a, b) = (&p.clauses[0].filter[0], &plan.clauses[0].filter[0]);
        assert_eq!(
            (a.slot, a.op, a.value, a.signed),
            (b.slot, b.op, b.value, b.signed),
            "{same}"
        );
    }
    let cases: &[(Code, &str)] = &[
        (
            Code::UnknownConstant,
            "on tcp_retransmit where err == EPRM print err",
        ),
        (
            Code::UnknownConstant,
            "on tcp_retransmit where err == eperm print err",
        ),
        (
            Code::UnknownConstant,
            "on tcp_retransmit where err != \"ENOBUF\" print err",
        ),
        (
            Code::Syntax,
            "on tcp_retransmit where err == -EPERM print err",
        ),
        (
            Code::OutOfRange,
            "on tcp_retransmit where err == 1 print err",
        ),
        (
            Code::OutOfRange,
            "on tcp_retransmit where err == EBUSY print err",
        ),
        (
            Code::OutOfRange,
            "on tcp_retransmit where err != -11 print err",
        ),
        (
            Code::UnsupportedOperator,
            "on tcp_retransmit where err < EPERM print err",
        ),
        (Code::NotNumeric, "on tcp_retransmit hist err"),
        (
            Code::TypeMismatch,
            "on tcp_retransmit where dport == EPERM print err",
        ),
    ];
    let mut out = String::new();
    for (code, src) in cases {
        let diags = compile(src, "<command line>", &[]).expect_err(src);
        assert!(
            diags.iter().any(|d| d.code == *code),
            "{src}: expected {code:?}, got {diags:?}"
        );
        out.push_str(&format!("===== {code} ({code:?})\n>>> {src}\n"));
        out.push_str(&render_all(&diags, src, "<command line>", false));
        out.push('\n');
    }
    insta::assert_snapshot!("errno_diagnostics", out);
}
