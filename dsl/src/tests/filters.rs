//! Compiled filters against a direct evaluation of the AST: for random
//! conditions over `tcp_select_window` and random records, the filter the
//! plan holds says what the syntax tree says; and no text makes a pass
//! panic.
use super::*;

/// A `tcp_select_window` record, by field.
#[derive(Debug, Clone)]
struct Record {
    win: u64,
    win_bytes: u64,
    saddr: IpAddr,
    comm: String,
    wscale_ok: bool,
    state: u8,
    family: u8,
}

impl Record {
    fn slots(&self) -> [u64; tcpq_abi::N_SLOTS] {
        use tcpq_abi::slot;
        let mut v = [0u64; tcpq_abi::N_SLOTS];
        v[slot::select_window::WIN as usize] = self.win;
        v[slot::select_window::WIN_BYTES as usize] = self.win_bytes;
        let a = match self.saddr {
            IpAddr::V4(x) => x.to_ipv6_mapped().octets(),
            IpAddr::V6(x) => x.octets(),
        };
        let [hi, lo] = tcpq_abi::addr_words(&a);
        v[slot::SADDR_HI as usize] = hi;
        v[slot::SADDR_LO as usize] = lo;
        let mut c = [0u8; 16];
        c[..self.comm.len()].copy_from_slice(self.comm.as_bytes());
        let [c0, c1] = tcpq_abi::comm_words(&c);
        v[slot::COMM_0 as usize] = c0;
        v[slot::COMM_1 as usize] = c1;
        v[slot::select_window::WSCALE_OK as usize] = u64::from(self.wscale_ok);
        v[slot::STATE as usize] = u64::from(self.state);
        v[slot::FAMILY as usize] = u64::from(self.family);
        v
    }
}

fn canon(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(x) => x.to_ipv6_mapped().octets(),
        IpAddr::V6(x) => x.octets(),
    }
}

fn int_of(v: &Value) -> i128 {
    match v {
        Value::Int { value, .. } => *value,
        other => unreachable!("{other:?}"),
    }
}

/// A numeric field's value, after `/ K` or `* K`.
fn numeric(o: &Operand, r: &Record) -> i128 {
    match o {
        Operand::Field(f) if f.name == "win" => r.win as i128,
        Operand::Field(f) if f.name == "win_bytes" => r.win_bytes as i128,
        Operand::Arith { lhs, op, rhs, .. } => {
            let (f, k) = match (&**lhs, &**rhs) {
                (f @ Operand::Field(_), Operand::Literal(l)) => (numeric(f, r), int_of(&l.value)),
                (Operand::Literal(l), f @ Operand::Field(_)) => (numeric(f, r), int_of(&l.value)),
                other => unreachable!("{other:?}"),
            };
            match op {
                ast::ArithOp::Div => f / k,
                ast::ArithOp::Mul => f * k,
                _ => unreachable!(),
            }
        }
        other => unreachable!("{other:?}"),
    }
}

/// Whether `saddr` is in `net/len`.
fn in_cidr(a: IpAddr, net: IpAddr, len: u8) -> bool {
    let bits = match net {
        IpAddr::V4(_) => 96 + u32::from(len),
        IpAddr::V6(_) => u32::from(len),
    };
    let (a, n) = (
        u128::from_be_bytes(canon(a)),
        u128::from_be_bytes(canon(net)),
    );
    let mask = if bits == 0 {
        0
    } else {
        u128::MAX << (128 - bits)
    };
    a & mask == n & mask
}

/// What the condition means, straight from the syntax tree.
fn eval_ast(e: &Expr, r: &Record) -> bool {
    match e {
        Expr::In { lhs, items, .. } => items.iter().any(|i| match (lhs, i) {
            (Operand::Field(f), ast::SetItem::Cidr { addr, len, .. }) if f.name == "saddr" => {
                in_cidr(r.saddr, *addr, *len)
            }
            (f, ast::SetItem::Range { lo, hi, .. }) => {
                let v = numeric(f, r);
                int_of(&lo.value) <= v && v <= int_of(&hi.value)
            }
            (f, ast::SetItem::One(Operand::Literal(l))) => numeric(f, r) == int_of(&l.value),
            other => unreachable!("{other:?}"),
        }),
        Expr::Compare {
            lhs: lhs @ Operand::Arith { .. },
            op,
            rhs: Operand::Literal(l),
            ..
        } => {
            let (v, c) = (numeric(lhs, r), int_of(&l.value));
            match op.op {
                CmpOp::Eq => v == c,
                CmpOp::Ne => v != c,
                CmpOp::Lt => v < c,
                CmpOp::Le => v <= c,
                CmpOp::Gt => v > c,
                CmpOp::Ge => v >= c,
            }
        }
        Expr::Not { expr, .. } => !eval_ast(expr, r),
        Expr::And { lhs, rhs, .. } => eval_ast(lhs, r) && eval_ast(rhs, r),
        Expr::Or { lhs, rhs, .. } => eval_ast(lhs, r) || eval_ast(rhs, r),
        Expr::Bare(Operand::Field(f)) => {
            assert_eq!(f.name, "wscale_ok");
            r.wscale_ok
        }
        Expr::Bare(_) => unreachable!("generator makes no bare values"),
        Expr::Compare { lhs, op, rhs, .. } => {
            let (name, lit, op) = match (lhs, rhs) {
                (Operand::Field(f), Operand::Literal(l)) => (&f.name, &l.value, op.op),
                (Operand::Literal(l), Operand::Field(f)) => {
                    let m = match op.op {
                        CmpOp::Lt => CmpOp::Gt,
                        CmpOp::Le => CmpOp::Ge,
                        CmpOp::Gt => CmpOp::Lt,
                        CmpOp::Ge => CmpOp::Le,
                        o => o,
                    };
                    (&f.name, &l.value, m)
                }
                _ => unreachable!(),
            };
            let ord = match (name.as_str(), lit) {
                ("win", Value::Int { value, .. }) => (r.win as i128).cmp(value),
                ("saddr", Value::Addr(a)) => canon(r.saddr).cmp(&canon(*a)),
                ("comm", Value::Str(s)) if s.ends_with('*') => {
                    if r.comm.starts_with(&s[..s.len() - 1]) {
                        std::cmp::Ordering::Equal
                    } else {
                        std::cmp::Ordering::Less
                    }
                }
                ("comm", Value::Str(s)) => r.comm.as_str().cmp(s.as_str()),
                ("wscale_ok", Value::Bool(b)) => r.wscale_ok.cmp(b),
                ("state", Value::State(s)) => r.state.cmp(s),
                ("family", Value::Family(f)) => r.family.cmp(f),
                other => unreachable!("{other:?}"),
            };
            match op {
                CmpOp::Eq => ord.is_eq(),
                CmpOp::Ne => ord.is_ne(),
                CmpOp::Lt => ord.is_lt(),
                CmpOp::Le => ord.is_le(),
                CmpOp::Gt => ord.is_gt(),
                CmpOp::Ge => ord.is_ge(),
            }
        }
    }
}

const ADDRS: [&str; 4] = ["10.0.0.1", "10.0.0.2", "::1", "::ffff:10.0.0.1"];
const COMMS: [&str; 3] = ["nginx", "curl", "a_fifteen_byte_"];
const STATES: [&str; 3] = ["ESTABLISHED", "LISTEN", "CLOSE"];

fn arb_leaf() -> impl Strategy<Value = String> {
    let op = prop_oneof![
        Just("=="),
        Just("!="),
        Just("<"),
        Just("<="),
        Just(">"),
        Just(">=")
    ];
    let eq = prop_oneof![Just("=="), Just("!=")];
    prop_oneof![
        // From 1: `win >= 0` is rejected as always true.
        (op, 1u64..4, any::<bool>()).prop_map(|(op, n, flip)| if flip {
            format!("{n} {op} win")
        } else {
            format!("win {op} {n}")
        }),
        (eq.clone(), 0..ADDRS.len()).prop_map(|(op, i)| format!("saddr {op} {}", ADDRS[i])),
        (eq.clone(), 0..COMMS.len()).prop_map(|(op, i)| format!("comm {op} \"{}\"", COMMS[i])),
        (eq.clone(), any::<bool>()).prop_map(|(op, b)| format!("wscale_ok {op} {b}")),
        Just("wscale_ok".to_string()),
        (eq.clone(), 0..STATES.len()).prop_map(|(op, i)| format!("state {op} {}", STATES[i])),
        (eq.clone(), any::<bool>())
            .prop_map(|(op, b)| format!("family {op} {}", if b { "AF_INET" } else { "AF_INET6" })),
        // The language beyond plain comparisons: sets, ranges, CIDR,
        // prefixes and `FIELD / K`, `FIELD * K`.
        (proptest::collection::vec(0u64..5, 1..4), 0u64..5, 0u64..5).prop_map(|(v, a, b)| {
            let (a, b) = (a.min(b), a.max(b));
            let list: Vec<String> = v.iter().map(|x| x.to_string()).collect();
            format!("win in [{}, {a}..{b}]", list.join(", "))
        }),
        (0u64..45, 0u64..45).prop_map(|(a, b)| format!("win_bytes in {}..{}", a.min(b), a.max(b))),
        (0..4usize).prop_map(|i| format!(
            "saddr in {}",
            ["10.0.0.0/24", "10.0.0.2/32", "::/0", "::/127"][i]
        )),
        (eq, 0..4usize).prop_map(|(op, i)| format!(
            "comm {op} \"{}\"",
            ["ng*", "*", "a_fifteen*", "curl*"][i]
        )),
        (
            prop_oneof![
                Just("<"),
                Just("<="),
                Just(">"),
                Just(">="),
                Just("=="),
                Just("!=")
            ],
            1u64..5,
            1u64..12
        )
            .prop_map(|(op, k, c)| format!("win_bytes / {k} {op} {c}")),
        (
            prop_oneof![Just("<"), Just("<="), Just(">"), Just(">=")],
            1u64..5,
            1u64..12,
            any::<bool>()
        )
            .prop_map(|(op, k, c, flip)| if flip {
                format!("{k} * win_bytes {op} {c}")
            } else {
                format!("win_bytes * {k} {op} {c}")
            }),
    ]
}

fn arb_where() -> impl Strategy<Value = String> {
    arb_leaf().prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| format!("not ({e})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} and {b}")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("({a}) or ({b})")),
        ]
    })
}

fn arb_record() -> impl Strategy<Value = Record> {
    (
        0u64..4,
        0..ADDRS.len(),
        0..COMMS.len(),
        any::<bool>(),
        0..STATES.len(),
        any::<bool>(),
    )
        .prop_map(|(win, a, c, w, s, f)| Record {
            win,
            // Derived so that windows near the generated bounds are common.
            win_bytes: (win * 13 + c as u64 * 7 + a as u64) % 45,
            saddr: ADDRS[a].parse().unwrap(),
            comm: COMMS[c].to_string(),
            wscale_ok: w,
            state: catalog::state_by_name(STATES[s]).unwrap(),
            family: if f { 2 } else { 10 },
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]
    #[test]
    fn filters_agree_with_the_ast(cond in arb_where(), records in proptest::collection::vec(arb_record(), 8)) {
        let src = format!("on tcp_select_window where {cond} print pid");
        let plan = compile(&src, "<prop>", &[]);
        let plan = match plan {
            Ok(p) => p,
            Err(ds) => return Err(TestCaseError::fail(render_all(&ds, &src, "<prop>", false))),
        };
        let ast = parse(&src).unwrap();
        let expr = &ast.clauses[0].filter.as_ref().unwrap().expr;
        let filter = &plan.clauses[0].filter;
        prop_assert!(filter.len() <= tcpq_abi::MAX_INSNS);
        for r in &records {
            prop_assert_eq!(filter::run(filter, &r.slots()), eval_ast(expr, r), "{:?}", r);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(src in "\\PC{0,60}") {
        let _ = compile(&src, "x", &[]);
    }

    #[test]
    fn near_miss_programs_never_panic(cond in arb_where(), cut in 0usize..200) {
        let src = format!("on tcp_select_window where {cond} print pid");
        let cut = cut.min(src.len());
        let src = src.get(..cut).unwrap_or(&src);
        if let Err(ds) = compile(src, "x", &[]) {
            for d in &ds {
                let _ = render(d, src, "x", false);
            }
        }
    }
}
