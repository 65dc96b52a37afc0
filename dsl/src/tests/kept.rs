//! Accepted means what was written, across probes: a condition built from
//! values of every kind, right and wrong, either plans to at least one
//! instruction per comparison or is refused with every pass's errors.
use super::*;

/// Comparisons written in a condition: each compare or bare field is one,
/// each member of a set is one.
fn leaves(e: &Expr) -> usize {
    match e {
        Expr::Compare { .. } | Expr::Bare(_) => 1,
        Expr::In { items, .. } => items.len(),
        Expr::Not { expr, .. } => leaves(expr),
        Expr::And { lhs, rhs, .. } | Expr::Or { lhs, rhs, .. } => leaves(lhs) + leaves(rhs),
    }
}

/// Values of every kind, right and wrong, including bare names that are
/// constants, fields, typos and unquoted strings.
const ANY_VALUES: &[&str] = &[
    "0",
    "1",
    "443",
    "65535",
    "70000",
    "-1",
    "64KiB",
    "1.5ms",
    "10ms",
    "2seg",
    "\"nginx\"",
    "\"ng*\"",
    "nginx",
    "10.0.0.1",
    "::1",
    "10.0.0.0/8",
    "80..443",
    "9..1",
    "ESTABLISHED",
    "BOGUS",
    "AF_INET",
    "true",
    "false",
    "srtt",
    "dport",
    "NETFILTER_DROP",
    "TCP_RESET",
    "https",
    "EPERM",
    "$port",
];

fn arb_any_leaf() -> impl Strategy<Value = (usize, String)> {
    let probes = catalog::PROBES.len();
    (
        0..probes,
        0usize..64,
        0..ANY_VALUES.len(),
        0usize..7,
        proptest::collection::vec(0..ANY_VALUES.len(), 1..4),
    )
        .prop_map(|(p, f, v, op, set)| {
            let probe = &catalog::PROBES[p];
            let fields: Vec<_> = probe.all_fields().collect();
            let field = fields[f % fields.len()].name;
            let ops = ["==", "!=", "<", ">=", "in", "in-set", "bare"];
            let text = match ops[op] {
                "in" => format!("{field} in {}", ANY_VALUES[v]),
                "in-set" => format!(
                    "{field} in [{}]",
                    set.iter()
                        .map(|i| ANY_VALUES[*i])
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "bare" => field.to_string(),
                o => format!("{field} {o} {}", ANY_VALUES[v]),
            };
            (p, text)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]
    /// Whatever is accepted keeps every comparison written: a condition
    /// with N comparisons plans to at least N filter instructions (plus a
    /// view's own), and no pass's error is ever lost on the way to the
    /// final answer.
    #[test]
    fn accepted_programs_keep_every_comparison(
        leaves_in in proptest::collection::vec(arb_any_leaf(), 1..4),
        joins in proptest::collection::vec(any::<bool>(), 3),
    ) {
        let probe = &catalog::PROBES[leaves_in[0].0];
        // Every leaf on the first leaf's probe: rename others' fields in.
        let mut cond = String::new();
        for (i, (_, text)) in leaves_in.iter().enumerate() {
            if i > 0 {
                cond.push_str(if joins[i - 1] { " and " } else { " or " });
            }
            cond.push_str(text);
        }
        let src = format!("on {} where {cond} count", probe.name);
        let parsed = parse(&src);
        let result = compile(&src, "<prop>", &[]);
        match (&parsed, &result) {
            (Ok(ast), Ok(plan)) => {
                let written = leaves(&ast.clauses[0].filter.as_ref().unwrap().expr);
                let own = probe.implicit.len();
                prop_assert!(
                    plan.clauses[0].filter.len() >= written + own,
                    "{src}: {} instructions for {written} comparisons",
                    plan.clauses[0].filter.len()
                );
            }
            (Err(syntax), Err(all)) => {
                for d in syntax {
                    prop_assert!(all.contains(d), "{src}: parse error lost: {d:?}");
                }
            }
            (Ok(ast), Err(all)) => {
                let r = resolve(ast, &Params::default());
                for d in &r.diagnostics {
                    prop_assert!(all.contains(d), "{src}: resolve error lost: {d:?}");
                }
                if let Err(checked) = check(&r) {
                    for d in &checked {
                        prop_assert!(all.contains(d), "{src}: check error lost: {d:?}");
                    }
                }
                for d in all {
                    prop_assert!(d.is_located(), "{src}: unlocated {d:?}");
                }
            }
            (Err(_), Ok(_)) => prop_assert!(false, "{src}: accepted despite a syntax error"),
        }
    }
}
