//! `--param` sets, `bool` switches and command-line restrictions through
//! the whole pipeline: each planned exactly like the program a user would
//! have written by hand, and every misuse a located error, never a drop.
use super::*;
use crate::ast::Value;
use crate::plan::{Action, Plan};

fn args(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn plan_of(src: &str, params: &[(&str, &str)]) -> Plan {
    compile(src, "<test>", &args(params)).unwrap_or_else(|d| {
        panic!("{src}: {}", render_all(&d, src, "<test>", false));
    })
}

fn errors_of(src: &str, params: &[(&str, &str)]) -> Vec<Diagnostic> {
    match compile(src, "<test>", &args(params)) {
        Ok(p) => panic!("{src} {params:?}: expected errors, got {p:?}"),
        Err(d) => d,
    }
}

/// A set-valued parameter plans to the very filter of the set written in
/// the program: `==` is `in`, `!=` is `not ... in`.
#[test]
fn a_set_parameter_is_the_written_set() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("port", "sport == $p", "80,443", "sport in [80, 443]"),
        ("port", "$p == sport", "80,443", "sport in [80, 443]"),
        ("port", "sport != $p", "80,443", "not sport in [80, 443]"),
        ("port", "sport == $p", "8000..8100", "sport in 8000..8100"),
        (
            "port",
            "sport == $p",
            "22, 8000..8100,443",
            "sport in [22, 8000..8100, 443]",
        ),
        (
            "port",
            "sport in [$p, 22]",
            "80,443",
            "sport in [80, 443, 22]",
        ),
        ("port", "sport in $p", "8000..8100", "sport in 8000..8100"),
        ("addr", "daddr == $p", "10.0.0.0/8", "daddr in 10.0.0.0/8"),
        (
            "addr",
            "daddr == $p",
            "10.0.0.0/8,fd00::/8,::1",
            "daddr in [10.0.0.0/8, fd00::/8, ::1]",
        ),
        (
            "state",
            "state == $p",
            "established,CLOSE_WAIT",
            "state in [ESTABLISHED, CLOSE_WAIT]",
        ),
        ("u64", "srtt == $p", "1ms..5ms", "srtt in 1ms..5ms"),
        ("u64", "srtt != $p", "1ms..5ms", "not srtt in 1ms..5ms"),
        (
            "string",
            "comm == $p",
            "nginx,envoy*",
            r#"comm in ["nginx", "envoy*"]"#,
        ),
        (
            "family",
            "family == $p",
            "4,6",
            "family in [AF_INET, AF_INET6]",
        ),
    ];
    for (ty, cond, value, written) in cases {
        let with_param =
            format!("# @param p: {ty}  x\non tcp_probe where {cond} and dport == 9 print pid");
        let by_hand = format!("on tcp_probe where {written} and dport == 9 print pid");
        let a = plan_of(&with_param, &[("p", value)]);
        let b = plan_of(&by_hand, &[]);
        assert_eq!(
            a.clauses[0].filter, b.clauses[0].filter,
            "{cond} with p={value} vs {written}"
        );
        assert!(a.clauses[0].filter.len() >= 3, "{cond}: nothing dropped");
    }
    // One value stays one value (no `in`).
    let a = plan_of(
        "# @param p: port  x\non tcp_probe where sport == $p print pid",
        &[("p", "80")],
    );
    let b = plan_of("on tcp_probe where sport == 80 print pid", &[]);
    assert_eq!(a.clauses[0].filter, b.clauses[0].filter);
}

/// Every item is parsed by the declared type at binding, and the error
/// names the item; what only the field can judge (units, ranges) is a
/// located error at the `$param`.
#[test]
fn set_items_are_typed_and_checked() {
    let port = "# @param p: port  x\non tcp_probe where dport == $p print pid";
    for (value, want) in [
        ("80,http", "item 2 (`http`): `http` is not a port number"),
        ("80,,443", "item 2 (``): an empty item"),
        ("80,", "item 2 (``): an empty item"),
        ("80..70000", "`80..70000`: `70000` is not a port number"),
        ("10.0.0.0/8", "is not a port number"),
    ] {
        let ds = errors_of(port, &[("p", value)]);
        assert_eq!(ds.len(), 1, "{value}: {ds:?}");
        assert_eq!(ds[0].code, Code::BadParamValue, "{value}");
        assert!(ds[0].message.contains(want), "{value}: {}", ds[0].message);
        assert!(
            ds[0].message.starts_with(&format!("`--param p={value}`")),
            "{}",
            ds[0].message
        );
    }
    let addr = "# @param a: addr  x\non tcp_probe where daddr == $a print pid";
    for (value, want) in [
        ("10.0.0.1..10.0.0.9", "address ranges are prefixes"),
        ("10.0.0.0/33", "`/33` is not a prefix length: 0 to 32"),
        ("10.0.0/8", "`10.0.0` is not an IPv4 or IPv6 address"),
    ] {
        let ds = errors_of(addr, &[("a", value)]);
        assert_eq!(ds[0].code, Code::BadParamValue, "{value}");
        assert!(ds[0].message.contains(want), "{value}: {}", ds[0].message);
    }
    // A boolean is never a set.
    let b = "# @param b: bool  x\non tcp_select_window where wscale_ok == $b print pid";
    assert_eq!(
        errors_of(b, &[("b", "true,false")])[0].code,
        Code::BadParamValue
    );
    // Units the field rejects, an empty range, too many items: at `$p`.
    let slow = "# @param s: u64  x\non tcp_probe where srtt == $s print pid";
    for (value, code) in [
        ("1ms,5KiB", Code::UnitSuffix),
        ("5ms..1ms", Code::OutOfRange),
        (
            "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17",
            Code::TooManyItems,
        ),
    ] {
        let ds = errors_of(slow, &[("s", value)]);
        assert_eq!(ds[0].code, code, "{value}: {ds:?}");
        let at = &slow[ds[0].span.clone()];
        assert!(at.contains("$s"), "{value}: points at `{at}`");
    }
    let ds = errors_of(slow, &[("s", "1ms,5KiB")]);
    assert!(
        ds[0].message.contains("`KiB` is not a unit of `srtt`"),
        "{}",
        ds[0].message
    );
}

/// A set where one value is needed is an error at the `$param`, naming
/// the set; the condition is never planned without it.
#[test]
fn a_set_where_one_value_is_needed_is_an_error() {
    let cases: &[(&str, Code, &str)] = &[
        ("sport > $p", Code::UnsupportedOperator, ">"),
        ("$p >= sport", Code::UnsupportedOperator, ">="),
        ("sport / 2 == $p", Code::UnsupportedArithmetic, "$p"),
        ("$p == 80", Code::NeedFieldAndValue, "$p"),
        ("$p", Code::NotAPredicate, "$p"),
        ("$p in [80]", Code::NeedFieldAndValue, "$p"),
    ];
    for (cond, code, at) in cases {
        let src = format!("# @param p: port  x\non tcp_probe where {cond} print pid");
        let ds = errors_of(&src, &[("p", "80,443")]);
        assert_eq!(ds.len(), 1, "{cond}: {ds:?}");
        assert_eq!(ds[0].code, *code, "{cond}");
        assert_eq!(&src[ds[0].span.clone()], *at, "{cond}");
        assert!(ds[0].help.is_some(), "{cond}");
    }
    let src = "# @param p: port  x\non tcp_probe where sport > $p print pid";
    let ds = errors_of(src, &[("p", "80,443")]);
    assert!(
        ds[0].message.contains("`--param p=80,443`"),
        "{}",
        ds[0].message
    );
    // A typo'd field next to a set is reported too.
    let src = "# @param p: port  x\non tcp_probe where sprt > $p print pid";
    let codes: Vec<Code> = errors_of(src, &[("p", "80,443")])
        .iter()
        .map(|d| d.code)
        .collect();
    assert_eq!(codes, [Code::UnknownField, Code::UnsupportedOperator]);
}

const LIFE: &str = "\
# @param bytes: bool = false  the kernel's units
# @param port: port?  a port
on tcp_close where not $bytes and dport == $port print bytes_acked / 1024 as tx_kb
on tcp_close where $bytes and dport == $port print bytes_acked
";

/// A `bool` parameter alone in a `where` switches its clause on or off.
#[test]
fn bool_switches_select_clauses() {
    let kb = plan_of(LIFE, &[]);
    assert_eq!(kb.clauses.len(), 1);
    let Action::Print { columns } = &kb.clauses[0].action else {
        panic!()
    };
    assert_eq!(columns[0].name, "tx_kb");
    let view = plan_of("on tcp_close print pid", &[]);
    assert_eq!(
        kb.clauses[0].filter, view.clauses[0].filter,
        "no port: the view's own filter"
    );
    assert_eq!(kb.left_out.len(), 1, "{:?}", kb.left_out);
    assert!(
        kb.left_out[0].starts_with("clause 2 (`on tcp_close`)"),
        "{:?}",
        kb.left_out
    );
    assert!(
        kb.left_out[0].contains("`$bytes` false"),
        "{:?}",
        kb.left_out
    );
    let bytes = plan_of(LIFE, &[("bytes", "true"), ("port", "443")]);
    assert_eq!(bytes.clauses.len(), 1);
    let Action::Print { columns } = &bytes.clauses[0].action else {
        panic!()
    };
    assert_eq!(columns[0].name, "bytes_acked");
    let by_hand = plan_of("on tcp_close where dport == 443 print bytes_acked", &[]);
    assert_eq!(bytes.clauses[0].filter, by_hand.clauses[0].filter);
    // Folding: `or` with true keeps everything, `and` with false nothing.
    let src = "# @param all: bool = false  x\non tcp_probe where $all or dport == 443 print pid\non tcp_rtt print srtt";
    assert_eq!(plan_of(src, &[]).clauses[0].filter.len(), 1);
    let all = plan_of(src, &[("all", "1")]);
    assert!(all.clauses[0].filter.is_empty());
    assert!(all.left_out.is_empty());
    // An optional bool not given is left out like any absent parameter.
    let src = "# @param b: bool?  x\non tcp_probe where not $b and dport == 443 print pid";
    assert_eq!(plan_of(src, &[]).clauses[0].filter.len(), 1);
    assert!(plan_of(src, &[]).left_out.is_empty());
}

/// A clause a switch turns off is still checked: a typo in it is an
/// error with either value. No clause left is an error too.
#[test]
fn switched_off_clauses_are_checked() {
    let src = "# @param bytes: bool = false  x\n\
               on tcp_close where not $bytes print bytes_acked\n\
               on tcp_close where $bytes print bytes_ackd\n";
    for v in ["false", "true"] {
        let ds = errors_of(src, &[("bytes", v)]);
        assert_eq!(
            ds.iter().map(|d| d.code).collect::<Vec<_>>(),
            [Code::UnknownField]
        );
        assert_eq!(&src[ds[0].span.clone()], "bytes_ackd");
    }
    let src = "# @param on: bool = false  x\non tcp_probe where $on print pid\n";
    let ds = errors_of(src, &[]);
    assert_eq!(ds[0].code, Code::EmptyProgram);
    assert!(
        ds[0].help.as_deref().unwrap().contains("clause 1"),
        "{ds:?}"
    );
    assert!(plan_of(src, &[("on", "true")]).clauses[0].filter.is_empty());
    // A non-bool parameter alone is still not a condition.
    let src = "# @param p: port = 1  x\non tcp_close where $p print pid\n";
    assert_eq!(errors_of(src, &[])[0].code, Code::NotAPredicate);
}

fn restricted(src: &str, r: &[Restriction]) -> Result<Plan, Vec<Diagnostic>> {
    compile_with(src, "<test>", &[], r)
}

fn pid(values: &[i128]) -> Restriction {
    Restriction {
        flag: "-p".into(),
        field: "pid",
        values: values
            .iter()
            .map(|&value| Value::Int {
                value,
                suffix: None,
            })
            .collect(),
    }
}

/// `-p`, `-4`: the clause plans exactly as if the condition were written.
#[test]
fn restrictions_are_written_conditions() {
    let four = Restriction {
        flag: "-4".into(),
        field: "family",
        values: vec![Value::Family(2)],
    };
    let cases: &[(&str, Vec<Restriction>, &str)] = &[
        (
            "on tcp_probe where dport == 443 or sport == 443 print pid",
            vec![pid(&[42])],
            "on tcp_probe where (dport == 443 or sport == 443) and pid == 42 print pid",
        ),
        (
            "on tcp_probe print pid",
            vec![pid(&[42, 43]), four.clone()],
            "on tcp_probe where pid in [42, 43] and family == AF_INET print pid",
        ),
        (
            "on tcp_connect count\non tcp_retransmit where segs > 1 print segs",
            vec![four.clone()],
            "on tcp_connect where family == AF_INET count\n\
             on tcp_retransmit where segs > 1 and family == AF_INET print segs",
        ),
    ];
    for (src, r, written) in cases {
        let a = restricted(src, r).unwrap();
        let b = ok_plan(written);
        assert_eq!(a.clauses.len(), b.clauses.len());
        for (x, y) in a.clauses.iter().zip(&b.clauses) {
            assert_eq!(x.filter, y.filter, "{src} {r:?}");
            assert_eq!(x.loads, y.loads, "{src} {r:?}");
        }
    }
    let p = restricted("on tcp_probe where dport == 443 print pid", &[pid(&[42])]).unwrap();
    assert_eq!(
        p.clauses[0].where_source.as_deref(),
        Some("(dport == 443) and pid == 42  # -p")
    );
    assert_eq!(
        p.clauses[0].where_words.as_deref(),
        Some("`dport` is 443 and `pid` is 42")
    );
}

fn ok_plan(src: &str) -> Plan {
    plan_of(src, &[])
}

/// A restriction on a field a clause lacks is an error naming the flag
/// and pointing at the clause, with the program's own errors beside it.
#[test]
fn a_restriction_the_probe_cannot_hold_is_an_error() {
    let bogus = Restriction {
        flag: "-x".into(),
        field: "no_such_field",
        values: vec![Value::Int {
            value: 1,
            suffix: None,
        }],
    };
    let src = "on tcp_probe print pid\non tcp_rtt where srt > 1 print srtt";
    let ds = restricted(src, &[bogus]).unwrap_err();
    let got: Vec<(Code, &str)> = ds.iter().map(|d| (d.code, &src[d.span.clone()])).collect();
    assert_eq!(
        got,
        [
            (Code::UnknownField, "tcp_probe"),
            (Code::UnknownField, "tcp_rtt"),
            (Code::UnknownField, "srt"),
        ]
    );
    assert!(ds[0].message.contains("`-x`"), "{}", ds[0].message);
    // A value the field cannot hold is checked like a written one.
    let huge = pid(&[1 << 40]);
    let ds = restricted("on tcp_probe print pid", &[huge]).unwrap_err();
    assert_eq!(ds[0].code, Code::OutOfRange);
}

/// Folding switches recurses per nesting level: the longest chains and
/// deepest nesting the parser accepts fold within a test thread's stack.
#[test]
fn switches_in_the_deepest_programs_fold_without_overflow() {
    let chain = vec!["pid == 1"; crate::parse::MAX_CONNECTIVES].join(" and ");
    for on in ["true", "false"] {
        let src =
            format!("# @param b: bool = false  x\non tcp_probe where $b and {chain} print pid");
        let ds = errors_of(&src, &[("b", on)]);
        assert_eq!(ds[0].code, Code::FilterTooLong, "{on}");
        let n = crate::parse::MAX_NESTING - 1;
        let src = format!(
            "# @param b: bool = false  x\non tcp_probe where {}$b or pid == 1{} print pid\non tcp_rtt print srtt",
            "(".repeat(n),
            ")".repeat(n)
        );
        assert!(compile(&src, "<test>", &args(&[("b", on)])).is_ok(), "{on}");
    }
}
