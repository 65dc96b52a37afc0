//! Whole-pipeline tests: every error code from a real program (checked by
//! code, not text), and compiled filters against a direct evaluation of the
//! AST.
//!
//! This file: each error code and behaviour from an example program.
//! `filters.rs`: compiled filters agree with the syntax tree (property
//! tests). `kept.rs`: an accepted program keeps every comparison written.
use super::*;
use crate::ast::{self, Expr, Operand, Value};
use crate::plan::{Action, CmpOp, Jump};
use crate::recipe::Params;
use proptest::prelude::*;
use std::net::IpAddr;

mod filters;
mod kept;

fn codes(src: &str) -> Vec<Code> {
    codes_with(src, &[])
}

fn codes_with(src: &str, params: &[(&str, &str)]) -> Vec<Code> {
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    match compile(src, "<test>", &params) {
        Ok(p) => panic!("expected errors, got {p:?}"),
        Err(d) => d.iter().map(|d| d.code).collect(),
    }
}

fn ok(src: &str) -> plan::Plan {
    compile(src, "<test>", &[]).unwrap_or_else(|d| {
        panic!("{}", render_all(&d, src, "<test>", false));
    })
}

#[test]
fn seed_one_liner() {
    let p = ok("on tcp_select_window where win == 0 print pid, comm");
    let c = &p.clauses[0];
    assert_eq!(c.template, "tcp_select_window");
    assert_eq!(c.strategies[0].program, "tcpq_selwin_ndq");
    assert_eq!(c.filter.len(), 1);
    assert_eq!(c.filter[0].slot, tcpq_abi::slot::select_window::WIN);
    assert_eq!((c.filter[0].op, c.filter[0].value), (CmpOp::Eq, 0));
    assert_eq!(
        (c.filter[0].jt, c.filter[0].jf),
        (Jump::Accept, Jump::Reject)
    );
    let Action::Print { columns } = &c.action else {
        panic!("print expected")
    };
    assert_eq!(columns[1].slots, [1, 2]);
}

#[test]
fn every_code_from_a_program() {
    use Code::*;
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Code);
    let cases: &[Case] = &[
        ("on tcp_probe where prnt pid", &[], Syntax),
        ("on tcp_select_wndow print pid", &[], UnknownProbe),
        (
            "on tcp_select_window where wn == 0 print pid",
            &[],
            UnknownField,
        ),
        ("on tcp_select_window print wn", &[], UnknownField),
        (
            "on tcp_probe where sport == $port print pid",
            &[],
            UndeclaredParam,
        ),
        (
            "on tcp_probe where state == ESTABLISHD print pid",
            &[],
            UnknownConstant,
        ),
        (
            "on tcp_probe where state == \"nope\" print pid",
            &[],
            UnknownConstant,
        ),
        (
            "on tcp_probe print pid on tcp_probe print pid",
            &[],
            MissingSeparator,
        ),
        (
            "on tcp_probe where sport = 1 print pid",
            &[],
            CStyleOperator,
        ),
        (
            "on tcp_probe where sport == 1 && pid == 2 print pid",
            &[],
            CStyleOperator,
        ),
        (
            "on tcp_probe where !(sport == 1) print pid",
            &[],
            CStyleOperator,
        ),
        (
            "on tcp_probe where saddr == 1.2.3.400 print pid",
            &[],
            InvalidLiteral,
        ),
        (
            "on tcp_probe where saddr == fe80:::1 print pid",
            &[],
            InvalidLiteral,
        ),
        (
            "on tcp_probe where pid == 99999999999999999999 print pid",
            &[],
            InvalidLiteral,
        ),
        (
            "on tcp_probe where comm == \"a\\q\" print pid",
            &[],
            InvalidLiteral,
        ),
        (
            "on tcp_probe where pid == 0xg print pid",
            &[],
            InvalidLiteral,
        ),
        ("# only a comment\n", &[], EmptyProgram),
        (
            "on tcp_probe where saddr == 80 print pid",
            &[],
            TypeMismatch,
        ),
        (
            "on tcp_probe where sport == \"80\" print pid",
            &[],
            TypeMismatch,
        ),
        (
            "on tcp_probe where saddr < ::1 print pid",
            &[],
            UnsupportedOperator,
        ),
        (
            "on tcp_probe where comm > \"a\" print pid",
            &[],
            UnsupportedOperator,
        ),
        (
            "on tcp_select_window where wscale_ok >= true print pid",
            &[],
            UnsupportedOperator,
        ),
        (
            "on tcp_select_window where win > 65536 print pid",
            &[],
            OutOfRange,
        ),
        (
            "on tcp_probe where sport > 65535 print pid",
            &[],
            OutOfRange,
        ),
        ("on tcp_probe where pid < -1 print pid", &[], OutOfRange),
        (
            "on tcp_probe where comm == \"a_very_long_name\" print pid",
            &[],
            StringTooLong,
        ),
        (
            "on tcp_probe where sport == dport print pid",
            &[],
            NeedFieldAndValue,
        ),
        (
            "on tcp_probe where 1 == 2 print pid",
            &[],
            NeedFieldAndValue,
        ),
        (
            "on tcp_probe where snd_wnd < 64ms print pid",
            &[],
            UnitSuffix,
        ),
        (
            "on tcp_probe where snd_wnd + 1 > 2 print pid",
            &[],
            UnsupportedArithmetic,
        ),
        ("on tcp_probe hist comm", &[], NotNumeric),
        ("on tcp_probe where srtt > 1.5 print pid", &[], MissingUnit),
        ("on tcp_probe count every 5", &[], MissingUnit),
        ("on tcp_probe print pid top 5", &[], BadModifier),
        ("on tcp_probe count limit 5", &[], BadModifier),
        ("on tcp_probe count top 1 top 2", &[], BadModifier),
        (
            "on tcp_probe where dport in [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17] print pid",
            &[],
            TooManyItems,
        ),
        ("on tcp_probe lhist srtt, 10, 5, 1", &[], BadHistogram),
        ("on tcp_probe lhist srtt, 0, 10, 3", &[], BadHistogram),
        (
            // One clause more than MAX_CLAUSES (16).
            "on tcp_probe count; on tcp_probe count; on tcp_probe count; on tcp_probe count
             on tcp_probe count; on tcp_probe count; on tcp_probe count; on tcp_probe count
             on tcp_probe count; on tcp_probe count; on tcp_probe count; on tcp_probe count
             on tcp_probe count; on tcp_probe count; on tcp_probe count; on tcp_probe count
             on tcp_probe count",
            &[],
            TooManyClauses,
        ),
        (
            "on tcp_probe hist srtt by saddr, daddr, comm, task_comm",
            &[],
            KeyTooLarge,
        ),
        ("on tcp_probe where time > 5 print pid", &[], PrintOnly),
        ("on tcp_probe where snd_cwnd print pid", &[], NotAPredicate),
        ("on tcp_probe where true print pid", &[], NotAPredicate),
        (
            "on tcp_probe count by saddr, daddr, comm, task_comm, pid",
            &[],
            KeyTooLarge,
        ),
        ("on tcp_probe print pid", &[("port", "1")], UnknownParam),
        (
            "# @param port: port\non tcp_probe where sport == $port print pid",
            &[],
            MissingParam,
        ),
        (
            "# @param port: port\non tcp_probe where sport == $port print pid",
            &[("port", "x")],
            BadParamValue,
        ),
        (
            "# @param port: port\non tcp_probe where sport == $port print pid",
            &[("port", "1"), ("port", "2")],
            DuplicateParam,
        ),
        (
            "# @param port: prot\non tcp_probe print pid",
            &[],
            BadParamDecl,
        ),
        (
            "# @param p: u64\n# @param p: u64\non tcp_probe print pid",
            &[],
            DuplicateParamDecl,
        ),
        (
            "# @parm p: u64\non tcp_probe print pid",
            &[],
            UnknownDirective,
        ),
    ];
    let mut covered = std::collections::HashSet::new();
    for (src, params, want) in cases {
        let got = codes_with(src, params);
        assert_eq!(got, [*want], "{src}");
        covered.insert(*want);
    }
    let long = (0..=tcpq_abi::MAX_INSNS / 2)
        .map(|i| format!("saddr == 10.0.0.{i}"))
        .collect::<Vec<_>>()
        .join(" or ");
    assert_eq!(
        codes(&format!("on tcp_probe where {long} print pid")),
        [FilterTooLong]
    );
    covered.insert(FilterTooLong);
    // Found by the runtime on a kernel that lacks the field; located here.
    let src = "on tcp_probe where srtt > 1ms print comm, rcv_space";
    let plan = compile(src, "<command line>", &[]).unwrap();
    let d = field_unavailable(
        plan.clauses[0].field_span("rcv_space"),
        "tcp_probe",
        "rcv_space",
        "tcp_sock.rcvq_space: no such member",
    );
    assert_eq!(d.code, FieldUnavailable);
    assert_eq!(&src[d.span.clone()], "rcv_space");
    covered.insert(FieldUnavailable);
    // A named reason this kernel lacks: found by the runtime when it binds
    // the plan to the kernel's BTF; located from the plan's span.
    let src = "on tcp_drop where reason == PSP_INPUT count";
    let d = constant_unavailable(
        (28, 37),
        "SKB_DROP_REASON_PSP_INPUT",
        "skb_drop_reason",
        "its 79 constants are this kernel's",
        None,
    );
    assert_eq!(d.code, ConstantUnavailable);
    assert_eq!(&src[d.span.clone()], "PSP_INPUT");
    covered.insert(ConstantUnavailable);
    // A probe this kernel cannot attach: found by the runtime when it
    // binds the plan; located at the probe's name.
    let src = "on tcp_probe count";
    let plan = compile(src, "<command line>", &[]).unwrap();
    let d = crate::probe_unavailable(
        plan.clauses[0].probe_span,
        "tcp_probe",
        "tcp_probe (tracepoint tcp:tcp_probe): tracepoint tcp:tcp_probe not found",
    );
    assert_eq!(d.code, ProbeUnavailable);
    assert_eq!(&src[d.span.clone()], "tcp_probe");
    covered.insert(ProbeUnavailable);
    // A clause that reads every socket field of a probe with more of them
    // than a template loads.
    let p = crate::catalog::PROBES
        .iter()
        .find(|p| p.all_fields().filter(|f| f.load.is_some()).count() > tcpq_abi::MAX_LOADS)
        .expect("a probe with more socket fields than MAX_LOADS");
    let fields: Vec<&str> = p
        .all_fields()
        .filter(|f| f.load.is_some())
        .map(|f| f.name)
        .collect();
    let src = format!("on {} print {}", p.name, fields.join(", "));
    assert_eq!(codes(&src), [TooManyFields], "{src}");
    let src = format!("on {} print {}", p.name, fields[1..].join(", "));
    assert!(compile(&src, "<test>", &[]).is_ok(), "{src}");
    covered.insert(TooManyFields);
    // A pass that loses a condition without a word: the checker refuses
    // the program instead of planning "every event".
    let program = parse("on tcp_probe where dport == 443 print pid").unwrap();
    let mut resolved = resolve(&program, &Params::default());
    resolved.clauses[0].filter.as_mut().unwrap().expr = resolve::RExpr::Invalid;
    let got: Vec<Code> = check(&resolved)
        .unwrap_err()
        .iter()
        .map(|d| d.code)
        .collect();
    assert_eq!(got, [Internal]);
    covered.insert(Internal);
    // `tcpq sockets` lists: an aggregation is reported (sockets.rs tests the rest).
    let got: Vec<Code> = crate::compile_sockets("count by comm")
        .unwrap_err()
        .iter()
        .map(|d| d.code)
        .collect();
    assert_eq!(got, [NotForSockets]);
    covered.insert(NotForSockets);
    // `tcpq serve`: a metric name Prometheus refuses, what it cannot
    // export, and one name exported two ways (crate::metrics tests them).
    assert_eq!(codes("on tcp_probe count as tcp-probes"), [BadMetricName]);
    covered.insert(BadMetricName);
    let plan = compile("on tcp_probe print pid", "<test>", &[]).unwrap();
    let got: Vec<Code> = crate::metrics::serve_problems(&plan)
        .iter()
        .map(|d| d.code)
        .collect();
    assert_eq!(got, [NotForServe]);
    covered.insert(NotForServe);
    let plan = compile("on tcp_probe count\non tcp_probe count", "<test>", &[]).unwrap();
    let served = [crate::metrics::Served {
        origin: "<test>",
        source: "",
        plan: &plan,
    }];
    let got: Vec<Code> = crate::metrics::conflicts(&served, &[])
        .iter()
        .map(|(_, d)| d.code)
        .collect();
    assert_eq!(got, [MetricConflict]);
    covered.insert(MetricConflict);
    for c in Code::ALL {
        assert!(covered.contains(c), "no test produces {c:?}");
    }
}

/// Issue 18: a bare name inside a set dropped the whole `where` clause
/// (`--explain` showed 0 instructions; a run would stream every event).
/// Each is now an error pointing at the name, with the fix.
#[test]
fn bare_names_in_sets_are_located_errors_never_dropped() {
    let cases: &[(&str, &[&str], Code)] = &[
        (
            "on tcp_probe where comm in [nginx, envoy] and dport == 443 print pid, comm",
            &["nginx", "envoy"],
            Code::TypeMismatch,
        ),
        (
            "on tcp_probe where state in [ESTABLISHED, BOGUS] print pid",
            &["BOGUS"],
            Code::UnknownConstant,
        ),
        (
            "on tcp_probe where dport in [srtt] print pid",
            &["srtt"],
            Code::NeedFieldAndValue,
        ),
        (
            "on tcp_probe where dport in [443, https] print pid",
            &["https"],
            Code::NeedFieldAndValue,
        ),
        (
            "on tcp_probe where comm in nginx print pid",
            &["nginx"],
            Code::TypeMismatch,
        ),
        (
            "on tcp_probe where family in [AF_INET, AF_INET7] print pid",
            &["AF_INET7"],
            Code::UnknownConstant,
        ),
        (
            "on tcp_probe where bogus in [x] print pid",
            &["bogus", "x"],
            Code::UnknownField,
        ),
    ];
    for (src, names, first) in cases {
        let ds = compile(src, "<test>", &[]).expect_err(src);
        assert_eq!(ds[0].code, *first, "{src}");
        let pointed: Vec<&str> = ds.iter().map(|d| &src[d.span.clone()]).collect();
        assert_eq!(pointed, *names, "{src}");
        for d in ds.iter().filter(|d| d.code != Code::UnknownField) {
            assert!(d.help.is_some(), "{src}: {d:?}");
        }
    }
    let ds = compile(cases[0].0, "<test>", &[]).unwrap_err();
    assert!(
        ds[0]
            .help
            .as_deref()
            .unwrap()
            .contains(r#"strings are quoted: "nginx"; write `comm in ["nginx", "envoy"]`"#),
        "{:?}",
        ds[0].help
    );
    // Quoted, the same set compiles to one test per name and slot.
    let p = ok(r#"on tcp_probe where comm in ["nginx", "envoy"] and dport == 443 print pid"#);
    assert_eq!(p.clauses[0].filter.len(), 5);
}

/// `as NAME` after an aggregation's `by` list names its metric (a field
/// is never a keyword, so `as` ends the list); after a `print` item it
/// still names a column. The plan carries the name, given or derived.
#[test]
fn as_names_a_metric_after_by_and_a_column_after_print() {
    let p = parse("on tcp_select_window where win == 0 count by comm as tcp_zero_window_segments")
        .unwrap();
    let c = &p.clauses[0];
    assert_eq!(
        c.metric.as_ref().map(|m| m.name.as_str()),
        Some("tcp_zero_window_segments")
    );
    match &c.action {
        ast::Action::Count { by, .. } => {
            assert_eq!(
                by.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
                ["comm"]
            )
        }
        a => panic!("{a:?}"),
    }
    for (src, name) in [
        ("on tcp_connect count as tcp_connects", "tcp_connects"),
        (
            "on tcp_probe hist srtt as tcp_srtt_seconds top 3",
            "tcp_srtt_seconds",
        ),
        (
            "on tcp_probe lhist srtt, 0, 100, 10 by dport, comm as x",
            "x",
        ),
        (
            "on tcp_probe stats srtt by daddr as ns:srtt every 1s",
            "ns:srtt",
        ),
    ] {
        let plan = ok(src);
        let m = plan.clauses[0].metric.as_ref().unwrap();
        assert_eq!((m.name.as_str(), m.given), (name, true), "{src}");
        assert_eq!(&src[m.span.unwrap().0..m.span.unwrap().1], name, "{src}");
    }
    // `print ... as` is a column's name; a printing clause has no metric.
    let plan = ok("on tcp_probe print comm as who, srtt / 1ms as ms");
    assert_eq!(plan.clauses[0].metric, None);
    match &plan.clauses[0].action {
        Action::Print { columns } => assert_eq!(columns[0].name, "who"),
        a => panic!("{a:?}"),
    }
    // Derived when not given.
    let m = ok("on tcp_retransmit sum segs").clauses[0]
        .metric
        .clone()
        .unwrap();
    assert_eq!(
        (m.name.as_str(), m.given),
        ("tcpq_tcp_retransmit_segs", false)
    );
    // Not a keyword, not twice, not after the modifiers.
    for bad in [
        "on tcp_probe count as on",
        "on tcp_probe count as x as y",
        "on tcp_probe count top 5 as x",
        "on tcp_probe count as",
    ] {
        let got = codes(bad);
        assert!(
            !got.is_empty() && got.iter().all(|c| *c == Code::Syntax),
            "{bad}: {got:?}"
        );
    }
}

#[test]
fn all_errors_are_collected() {
    let src = "on tcp_select_window where wn == 0 and sport > 70000 and comm == \"0123456789abcdefg\" print pid, bogus\n\
               on tcp_probe where srtt < 1KiB print nope\n\
               on tcp_probe where comm in 10.0.0.0/8 sum comm by dport top 0 every 1";
    assert_eq!(
        codes(src),
        [
            Code::UnknownField,
            Code::OutOfRange,
            Code::StringTooLong,
            Code::UnknownField,
            Code::UnitSuffix,
            Code::UnknownField,
            Code::TypeMismatch,
            Code::NotNumeric,
            Code::InvalidLiteral,
            Code::MissingUnit,
        ]
    );
    // Several broken clauses: one syntax error each.
    assert_eq!(
        codes("on tcp_probe where print pid\non tcp_probe prnt pid\non tcp_probe count by"),
        [Code::Syntax; 3]
    );
}

#[test]
fn params_are_values_not_syntax() {
    let src = "# @param who: string\non tcp_probe where comm == $who print pid";
    let p = compile(src, "f", &[("who".into(), "x\" or pid == \"12345".into())]);
    // 20 bytes: too long for a comm, and certainly not extra syntax.
    assert_eq!(
        p.unwrap_err().iter().map(|d| d.code).collect::<Vec<_>>(),
        [Code::StringTooLong]
    );
    let p = compile(src, "f", &[("who".into(), "a\" or \"b".into())]).unwrap();
    assert_eq!(p.clauses[0].filter.len(), 2, "one comm compare, two slots");
    // A param of the wrong type is a type error at its use.
    let src = "# @param a: addr\non tcp_probe where sport == $a print pid";
    assert_eq!(codes_with(src, &[("a", "::1")]), [Code::TypeMismatch]);
}

#[test]
fn where_changes_only_the_filter() {
    let a = ok("on tcp_select_window where win == 0 print pid, comm");
    let b = ok("on tcp_select_window where not wscale_ok or saddr == ::1 print pid, comm");
    let c = ok("on tcp_select_window print pid, comm");
    for other in [&b, &c] {
        let (x, y) = (&a.clauses[0], &other.clauses[0]);
        assert_eq!(x.template, y.template);
        // The same programs at the same points; only their quick first
        // steps (data in CONFIG, like the filter) differ.
        let programs = |c: &crate::plan::ClausePlan| {
            let mut s = c.strategies.clone();
            s.iter_mut().for_each(|s| s.quick = None);
            s
        };
        assert_eq!(programs(x), programs(y));
        assert_eq!(x.action, y.action);
        assert_ne!(x.filter, y.filter);
        assert_ne!(x.config.insns, y.config.insns);
    }
    assert!(c.clauses[0].filter.is_empty());
}

#[test]
fn literal_first_is_mirrored() {
    let p = ok("on tcp_select_window where 10 < win print pid");
    assert_eq!(p.clauses[0].filter[0].op, CmpOp::Gt);
}

#[test]
fn never_panics_on_junk() {
    for src in [
        "",
        "on",
        "on ;",
        "\"",
        "on x where \"",
        "$",
        "on tcp_probe where $ print a",
        "on tcp_probe where ((((( print a",
        "é on tcp_probe print pid",
        "on tcp_probe where 0x print pid",
        "on tcp_probe where -0x8000000000000000 < pid print pid",
        "::::",
        "on tcp_probe print pid;;;;",
        "\u{0} on",
        "on tcp_probe where comm == \"\u{0}\" print pid",
    ] {
        if let Err(ds) = compile(src, "x", &[]) {
            for d in &ds {
                let _ = render(d, src, "x", true);
            }
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    // Runs on a test thread (2 MiB stack by default): the deepest accepted
    // nesting must fit there too.
    let n = parse::MAX_NESTING;
    let src = format!(
        "on tcp_probe where {}pid == 1{} print pid",
        "(".repeat(n),
        ")".repeat(n)
    );
    assert!(compile(&src, "x", &[]).is_ok());
    let src = format!("on tcp_probe where {}pid == 1 print pid", "not ".repeat(n));
    assert!(compile(&src, "x", &[]).is_ok());
    // The longest accepted chain reaches `check`, which counts instructions.
    let src = format!(
        "on tcp_probe where {} print pid",
        vec!["pid == 1"; parse::MAX_CONNECTIVES + 1].join(" and ")
    );
    assert_eq!(codes(&src), [Code::FilterTooLong]);
    for src in [
        format!(
            "on tcp_probe where {}pid == 1{} print pid",
            "(".repeat(100_000),
            ")".repeat(100_000)
        ),
        format!(
            "on tcp_probe where {}pid == 1 print pid",
            "not ".repeat(100_000)
        ),
        format!(
            "on tcp_probe where {} print pid",
            vec!["pid == 1"; 100_000].join(" and ")
        ),
    ] {
        assert_eq!(codes(&src), [Code::FilterTooLong]);
    }
}

/// `tcp_probe` and its views run on the raw tracepoint whatever the
/// filter tests first: detaching it costs no grace period, where the
/// classic one's costs ~70 ms at every exit. The classic tracepoint stays
/// behind it, for kernels without the raw one's arguments.
#[test]
fn tcp_probe_always_prefers_the_raw_tracepoint() {
    for src in [
        "on tcp_probe where snd_cwnd == 1 print pid",
        "on tcp_probe where snd_wnd == 0 print pid, comm",
        "on tcp_probe where srtt > 1ms and dport == 1 count",
        "on tcp_rtt where srtt > 1ms print pid",
        "on tcp_cwnd where snd_cwnd == 1 print pid",
        "on tcp_probe where dport == 1 print pid",
        "on tcp_probe count by comm",
    ] {
        let p = ok(src);
        let programs: Vec<_> = p.clauses[0]
            .strategies
            .iter()
            .map(|s| s.program.as_str())
            .collect();
        assert_eq!(programs, ["tcpq_probe_rtp", "tcpq_probe_tp"], "{src}");
    }
}

/// Issue 18: drop and reset reasons filter by name. The plan never holds a
/// number for a name (numbers differ between kernels): the instruction
/// carries a binding the runtime fills from the running kernel's BTF.
#[test]
fn reasons_by_name_are_bindings_not_numbers() {
    let src = "on tcp_drop where reason in [NETFILTER_DROP, SKB_DROP_REASON_NO_SOCKET, 3] count";
    let p = ok(src);
    let c = &p.clauses[0];
    assert_eq!(c.filter.len(), 3);
    let names: Vec<(u16, &str, &str)> = c
        .binds
        .iter()
        .map(|b| {
            (
                b.insn,
                b.bind.constant.as_str(),
                &src[b.bind.span.0..b.bind.span.1],
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            (0, "SKB_DROP_REASON_NETFILTER_DROP", "NETFILTER_DROP"),
            (1, "SKB_DROP_REASON_NO_SOCKET", "SKB_DROP_REASON_NO_SOCKET"),
        ]
    );
    assert_eq!(c.filter[2].value, 3, "a number stays a number");
    let p = ok("on tcp_reset where reason != NO_SOCKET count by reason");
    assert_eq!(p.clauses[0].binds[0].bind.enum_name, "sk_rst_reason");
    assert_eq!(
        p.clauses[0].binds[0].bind.constant,
        "SK_RST_REASON_NO_SOCKET"
    );
    assert_eq!(p.clauses[0].filter[0].op, CmpOp::Ne);
    // Written the other way round, the same test.
    let q = ok("on tcp_reset where NO_SOCKET != reason count by reason");
    assert_eq!(q.clauses[0].filter, p.clauses[0].filter);
    for (src, code) in [
        (
            "on tcp_drop where reason == NETFILTR_DROP count",
            Code::UnknownConstant,
        ),
        (
            "on tcp_drop where reason == netfilter_drop count",
            Code::UnknownConstant,
        ),
        (
            "on tcp_drop where reason in [NO_SOCKET, BOGUS] count",
            Code::UnknownConstant,
        ),
        (
            "on tcp_drop where reason > NO_SOCKET count",
            Code::UnsupportedOperator,
        ),
        // A reset reason is not a drop reason.
        (
            "on tcp_drop where reason == TCP_TIMEWAIT_SOCKET count",
            Code::UnknownConstant,
        ),
    ] {
        assert_eq!(codes(src), [code], "{src}");
    }
}

/// `time`, `ktime` and `cpu` come from the event's header: printed on
/// every probe, with no slot and nothing loaded; anywhere else a located
/// error, never a program that drops them.
#[test]
fn event_header_fields_print_and_nothing_else() {
    use crate::plan::{FieldType, Header, Source, Unit};
    for p in catalog::PROBES {
        let plan = ok(&format!("on {} print time, ktime, cpu, pid", p.name));
        let Action::Print { columns } = &plan.clauses[0].action else {
            panic!("print expected")
        };
        let src: Vec<(Source, FieldType)> = columns.iter().map(|c| (c.source, c.ty)).collect();
        assert_eq!(
            src[..3],
            [
                (Source::Header(Header::Time), FieldType::Time),
                (Source::Header(Header::Ktime), FieldType::Uint(Unit::Nanos)),
                (Source::Header(Header::Cpu), FieldType::Uint(Unit::None)),
            ],
            "{}",
            p.name
        );
        assert!(columns[..3].iter().all(|c| c.slots.is_empty()));
        // Nothing to read for them: the loads are those of `pid` alone.
        let alone = ok(&format!("on {} print pid", p.name));
        assert_eq!(plan.clauses[0].loads, alone.clauses[0].loads, "{}", p.name);
        let words = |c: &crate::plan::ClausePlan| (c.config.common, c.config.probe);
        assert_eq!(words(&plan.clauses[0]), words(&alone.clauses[0]));
        assert_eq!(
            plan.clauses[0].fields_used(),
            alone.clauses[0].fields_used()
        );
    }
    // Arithmetic and renaming work on the numbers.
    let plan = ok("on tcp_probe print ktime / 1ms as ms, cpu");
    let Action::Print { columns } = &plan.clauses[0].action else {
        panic!()
    };
    assert_eq!(columns[0].name, "ms");
    assert_eq!(columns[0].source, Source::Header(Header::Ktime));
    assert_eq!(columns[0].scale.map(|s| s.by), Some(1_000_000));
    // Print only, with the field located.
    for (src, what) in [
        ("on tcp_probe where time > 5 print pid", "time"),
        ("on tcp_probe where ktime > 1s print pid", "ktime"),
        ("on tcp_probe where cpu == 0 print pid", "cpu"),
        ("on tcp_probe where cpu in [0, 1] print pid", "cpu"),
        (
            "on tcp_probe where dport == 443 and not (cpu == 0) print pid",
            "cpu",
        ),
        ("on tcp_probe count by cpu", "cpu"),
        ("on tcp_probe sum ktime", "ktime"),
        ("on tcp_probe hist srtt by time", "time"),
    ] {
        let d = compile(src, "<test>", &[]).expect_err(src);
        assert_eq!(
            d.iter().map(|d| d.code).collect::<Vec<_>>(),
            [Code::PrintOnly],
            "{src}"
        );
        assert_eq!(&src[d[0].span.clone()], what, "{src}");
    }
    // A wall-clock time is not a number to divide.
    assert_eq!(codes("on tcp_probe print time / 2"), [Code::NotNumeric]);
    // `tcpq sockets` has no events, so no event fields.
    assert_eq!(
        crate::compile_sockets("print time")
            .unwrap_err()
            .iter()
            .map(|d| d.code)
            .collect::<Vec<_>>(),
        [Code::UnknownField]
    );
}

/// A renamed column is still its field: `print comm as who` shows the
/// owner, so the runtime must track owners for it.
#[test]
fn renamed_columns_keep_their_field() {
    let p = ok("on tcp_accept print comm as who, pid as p, srtt / 1ms as ms");
    let c = &p.clauses[0];
    assert!(c.uses_owner());
    let used = c.fields_used();
    for f in ["comm", "pid", "srtt"] {
        assert!(used.iter().any(|u| u == f), "{f} in {used:?}");
    }
    assert!(!used.iter().any(|u| u == "who" || u == "ms"), "{used:?}");
}

/// `tcp_syn` is the select-window template's second program, and
/// `tcp_connect_attempt` a view of `tcp_state` (every move out of
/// SYN_SENT) whose `err` compares by name, negative like the kernel passes
/// errors elsewhere: `sk_err`'s positive number is refused with the fix.
#[test]
fn handshake_probes_plan_as_documented() {
    use tcpq_abi::slot::{state, syn};
    let p = ok("on tcp_syn where not ack and opt_wscale_ok print opt_wscale, opt_mss");
    let c = &p.clauses[0];
    assert_eq!(c.template, "tcp_select_window");
    assert_eq!(c.strategies[0].program, "tcpq_syn_ndq");
    let slots: Vec<u8> = c.filter.iter().map(|i| i.slot).collect();
    assert_eq!(slots, [syn::ACK, syn::OPT_WSCALE_OK]);
    assert!(c.loads.is_empty(), "header fields only: {:?}", c.loads);

    let p = ok("on tcp_connect_attempt where err == ECONNREFUSED print sport");
    let c = &p.clauses[0];
    assert_eq!(c.template, "tcp_state");
    let f: Vec<(u8, CmpOp, u64, bool)> = c
        .filter
        .iter()
        .map(|i| (i.slot, i.op, i.value, i.signed))
        .collect();
    assert_eq!(
        f,
        [
            (state::OLDSTATE, CmpOp::Eq, 2, false),
            (state::ERR, CmpOp::Eq, (-111i64) as u64, true),
        ]
    );
    assert_eq!(
        codes("on tcp_connect_attempt where err == 111 print sport"),
        [Code::OutOfRange]
    );
    // A socket's error is an errno: NET_XMIT_DROP (a qdisc's answer to
    // one transmit, valid for tcp_retransmit's err) never matches here.
    assert_eq!(
        codes("on tcp_connect_attempt where err == NET_XMIT_DROP print sport"),
        [Code::OutOfRange]
    );
    ok("on tcp_retransmit where err == NET_XMIT_DROP print sport");
    // Without a `where`, the view's own test is the whole filter.
    let p = ok("on tcp_connect_attempt print err");
    assert_eq!(p.clauses[0].filter.len(), 1);
}

/// The plan says where each clause first names each field it uses, so
/// the runtime's "this kernel lacks it" points at the source without
/// parsing it again; each clause has its own, and a field it does not
/// use has none.
#[test]
fn plans_locate_each_clause_s_fields() {
    let src =
        "on tcp_probe where srtt > 1ms print comm, srtt\non tcp_retransmit where tlp count by comm";
    let plan = compile(src, "<command line>", &[]).unwrap();
    let at = |c: usize, f: &str| plan.clauses[c].field_span(f).map(|(s, e)| &src[s..e]);
    let first = plan.clauses[0].field_span("srtt").unwrap();
    assert_eq!(
        first.0,
        src.find("srtt").unwrap(),
        "the first use, in the where"
    );
    assert_eq!(at(0, "comm"), Some("comm"));
    assert_eq!(at(0, "tlp"), None);
    let tlp = plan.clauses[1].field_span("tlp").unwrap();
    assert_eq!(&src[tlp.0..tlp.1], "tlp");
    let comm = plan.clauses[1].field_span("comm").unwrap();
    assert!(
        comm.0 > src.find('\n').unwrap(),
        "the second clause's own comm"
    );
    assert_eq!(at(1, "srtt"), None);
}
