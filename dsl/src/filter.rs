//! Compiling a checked condition into the templates' filter instructions,
//! and a reference interpreter of those instructions (the ABI semantics of
//! `probe-templates/ebpf/src/common.rs::matches`, in plain Rust) for tests.
//!
//! Compilation is the classic short-circuit scheme: each sub-condition is
//! generated with a "true" and a "false" target. `a and b` sends a's false
//! exit to the overall false target and its true exit to b; `or` is the
//! mirror; `not` swaps the targets, so it costs no instruction. Every slot
//! test becomes exactly one instruction and every jump goes forward, so the
//! output is linear in the size of the condition.
use crate::check::{Cond, Test};
use crate::plan::{CmpOp, EnumBind, Insn, InsnBind, Jump};

/// Where a generated instruction jumps before labels are placed.
#[derive(Clone, Copy, Debug)]
enum Target {
    Label(usize),
    Accept,
    Reject,
}

struct Pending {
    slot: u8,
    op: CmpOp,
    signed: bool,
    mask: u64,
    value: u64,
    jt: Target,
    jf: Target,
    bind: Option<EnumBind>,
}

#[derive(Default)]
struct Gen {
    insns: Vec<Pending>,
    /// Label → index of the instruction it marks.
    labels: Vec<usize>,
}

/// Why instructions could not be produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompileError {
    /// More than `tcpq_abi::MAX_INSNS` instructions.
    TooLong(usize),
}

/// Compiled filter instructions and the ones whose value the runtime
/// binds to a kernel constant ([`EnumBind`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compiled {
    pub insns: Vec<Insn>,
    pub binds: Vec<InsnBind>,
}

/// Compile `cond` into filter instructions. An empty `Vec` (no condition)
/// accepts every record.
pub fn compile(cond: Option<&Cond>) -> Result<Compiled, CompileError> {
    let Some(cond) = cond else {
        return Ok(Compiled::default());
    };
    let mut g = Gen::default();
    g.cond(cond, Target::Accept, Target::Reject);
    let n = g.insns.len();
    if n > tcpq_abi::MAX_INSNS || n > usize::from(u16::MAX) {
        return Err(CompileError::TooLong(n));
    }
    let resolve = |t: Target| match t {
        Target::Accept => Jump::Accept,
        Target::Reject => Jump::Reject,
        // Labels are placed right before the first instruction of the
        // code they mark, which always exists, so `at < n` and fits u16.
        Target::Label(l) => match g.labels.get(l) {
            Some(&at) if at < n => Jump::To(at as u16),
            _ => Jump::Reject,
        },
    };
    let binds = g
        .insns
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            Some(InsnBind {
                insn: i as u16,
                bind: p.bind.clone()?,
            })
        })
        .collect();
    let insns = g
        .insns
        .iter()
        .map(|p| Insn {
            slot: p.slot,
            op: p.op,
            signed: p.signed,
            mask: p.mask,
            value: p.value,
            jt: resolve(p.jt),
            jf: resolve(p.jf),
        })
        .collect();
    Ok(Compiled { insns, binds })
}

impl Gen {
    fn new_label(&mut self) -> usize {
        self.labels.push(usize::MAX);
        self.labels.len() - 1
    }

    fn place(&mut self, label: usize) {
        self.labels[label] = self.insns.len();
    }

    fn cond(&mut self, c: &Cond, t: Target, f: Target) {
        match c {
            Cond::Not(x) => self.cond(x, f, t),
            Cond::And(a, b) => {
                let mid = self.new_label();
                self.cond(a, Target::Label(mid), f);
                self.place(mid);
                self.cond(b, t, f);
            }
            Cond::Or(a, b) => {
                let mid = self.new_label();
                self.cond(a, t, Target::Label(mid));
                self.place(mid);
                self.cond(b, t, f);
            }
            Cond::Test(test) => self.test(test, t, f),
        }
    }

    /// One slot: one instruction. Several slots (`==`): all equal, so each
    /// but the last falls through to the next on true. Several slots (`!=`):
    /// any differs, so each but the last falls through on false.
    fn test(&mut self, test: &Test, t: Target, f: Target) {
        let last = test.slots.len().saturating_sub(1);
        for (i, &(slot, value)) in test.slots.iter().enumerate() {
            let (jt, jf) = if i == last {
                (t, f)
            } else {
                let next = self.new_label();
                // The label marks the instruction pushed next iteration.
                self.labels[next] = self.insns.len() + 1;
                match test.op {
                    CmpOp::Ne => (t, Target::Label(next)),
                    _ => (Target::Label(next), f),
                }
            };
            self.insns.push(Pending {
                slot,
                op: test.op,
                signed: test.signed,
                mask: test.mask,
                value,
                jt,
                jf,
                bind: test.bind.clone(),
            });
        }
    }
}

/// Apply one comparison the way the templates do.
pub fn compare(op: CmpOp, signed: bool, a: u64, b: u64) -> bool {
    if signed {
        let (a, b) = (a as i64, b as i64);
        match op {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
        }
    } else {
        match op {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
        }
    }
}

/// Reference interpreter: run `insns` over a record's slots exactly as the
/// templates do (empty accepts; a backward jump or running off the end
/// rejects).
pub fn run(insns: &[Insn], vals: &[u64; tcpq_abi::N_SLOTS]) -> bool {
    if insns.is_empty() {
        return true;
    }
    let mut pc = 0usize;
    for _ in 0..tcpq_abi::MAX_INSNS.max(insns.len()) {
        let Some(insn) = insns.get(pc) else {
            return false;
        };
        let v = vals[usize::from(insn.slot) % tcpq_abi::N_SLOTS] & insn.mask;
        let next = if compare(insn.op, insn.signed, v, insn.value) {
            insn.jt
        } else {
            insn.jf
        };
        match next {
            Jump::Accept => return true,
            Jump::Reject => return false,
            Jump::To(i) if usize::from(i) <= pc => return false,
            Jump::To(i) => pc = usize::from(i),
        }
    }
    false
}

/// Direct evaluation of a condition, the meaning the instructions must have.
pub fn eval(cond: &Cond, vals: &[u64; tcpq_abi::N_SLOTS]) -> bool {
    match cond {
        Cond::Not(c) => !eval(c, vals),
        Cond::And(a, b) => eval(a, vals) && eval(b, vals),
        Cond::Or(a, b) => eval(a, vals) || eval(b, vals),
        Cond::Test(t) => {
            let mut each = t.slots.iter().map(|&(slot, value)| {
                let v = vals[usize::from(slot) % tcpq_abi::N_SLOTS] & t.mask;
                (v, value)
            });
            match (t.slots.len(), t.op) {
                (1, op) => each.all(|(v, x)| compare(op, t.signed, v, x)),
                (_, CmpOp::Ne) => each.any(|(v, x)| v != x),
                (_, _) => each.all(|(v, x)| v == x),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn test(slot: u8, op: CmpOp, value: u64) -> Cond {
        Cond::Test(Test {
            slots: vec![(slot, value)],
            op,
            signed: false,
            mask: u64::MAX,
            bind: None,
        })
    }

    fn pair(op: CmpOp, a: u64, b: u64) -> Cond {
        Cond::Test(Test {
            slots: vec![(7, a), (8, b)],
            op,
            signed: false,
            mask: u64::MAX,
            bind: None,
        })
    }

    #[test]
    fn empty_accepts_all() {
        assert_eq!(compile(None).unwrap(), Compiled::default());
        assert!(run(&[], &[0; tcpq_abi::N_SLOTS]));
    }

    #[test]
    fn and_or_not_shapes() {
        let c = Cond::And(
            Box::new(test(16, CmpOp::Eq, 0)),
            Box::new(Cond::Not(Box::new(test(11, CmpOp::Eq, 80)))),
        );
        let insns = compile(Some(&c)).unwrap().insns;
        assert_eq!(insns.len(), 2);
        assert_eq!((insns[0].jt, insns[0].jf), (Jump::To(1), Jump::Reject));
        // `not` swapped the targets of the second test.
        assert_eq!((insns[1].jt, insns[1].jf), (Jump::Reject, Jump::Accept));
    }

    #[test]
    fn multi_slot_equality_and_difference() {
        let eq = compile(Some(&pair(CmpOp::Eq, 1, 2))).unwrap().insns;
        assert_eq!(eq.len(), 2);
        let ne = compile(Some(&pair(CmpOp::Ne, 1, 2))).unwrap().insns;
        let mut v = [0u64; tcpq_abi::N_SLOTS];
        for (a, b, same) in [(1, 2, true), (1, 3, false), (0, 2, false), (5, 5, false)] {
            v[7] = a;
            v[8] = b;
            assert_eq!(run(&eq, &v), same);
            assert_eq!(run(&ne, &v), !same);
        }
    }

    #[test]
    fn signed_compare() {
        let c = Cond::Test(Test {
            slots: vec![(17, (-1i64) as u64)],
            op: CmpOp::Lt,
            signed: true,
            mask: u64::MAX,
            bind: None,
        });
        let insns = compile(Some(&c)).unwrap().insns;
        let mut v = [0u64; tcpq_abi::N_SLOTS];
        v[17] = (-5i64) as u64;
        assert!(run(&insns, &v));
        v[17] = 0;
        assert!(!run(&insns, &v));
    }

    #[test]
    fn too_long_is_an_error_not_a_panic() {
        let mut c = test(16, CmpOp::Eq, 0);
        for i in 0..tcpq_abi::MAX_INSNS as u64 {
            c = Cond::Or(Box::new(c), Box::new(test(16, CmpOp::Eq, i)));
        }
        assert!(matches!(compile(Some(&c)), Err(CompileError::TooLong(_))));
    }

    // Random conditions over a few slots with small values, so that
    // comparisons are often true and often false.
    fn arb_cond() -> impl Strategy<Value = Cond> {
        let ops = prop_oneof![
            Just(CmpOp::Eq),
            Just(CmpOp::Ne),
            Just(CmpOp::Lt),
            Just(CmpOp::Le),
            Just(CmpOp::Gt),
            Just(CmpOp::Ge)
        ];
        let leaf = prop_oneof![
            (0u8..4, ops, 0u64..4, any::<bool>()).prop_map(|(s, op, v, signed)| {
                Cond::Test(Test {
                    slots: vec![(s, if signed { v.wrapping_sub(2) } else { v })],
                    op,
                    signed,
                    mask: u64::MAX,
                    bind: None,
                })
            }),
            (any::<bool>(), 0u64..2, 0u64..2).prop_map(|(eq, a, b)| {
                Cond::Test(Test {
                    slots: vec![(4, a), (5, b)],
                    op: if eq { CmpOp::Eq } else { CmpOp::Ne },
                    signed: false,
                    mask: u64::MAX,
                    bind: None,
                })
            }),
        ];
        leaf.prop_recursive(5, 40, 2, |inner| {
            prop_oneof![
                inner.clone().prop_map(|c| Cond::Not(Box::new(c))),
                (inner.clone(), inner.clone())
                    .prop_map(|(a, b)| Cond::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner).prop_map(|(a, b)| Cond::Or(Box::new(a), Box::new(b))),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        #[test]
        fn compiled_filters_mean_what_the_condition_means(
            c in arb_cond(),
            vals in proptest::collection::vec(0u64..4, 6),
        ) {
            let insns = compile(Some(&c)).unwrap().insns;
            prop_assert_eq!(insns.len(), c.insn_count());
            for (i, insn) in insns.iter().enumerate() {
                for j in [insn.jt, insn.jf] {
                    if let Jump::To(t) = j {
                        prop_assert!(usize::from(t) > i, "backward jump");
                    }
                }
            }
            let mut v = [0u64; tcpq_abi::N_SLOTS];
            for (i, x) in vals.iter().enumerate() {
                // Signed tests compare around zero: map 0..4 to -2..2.
                v[i] = if i < 4 { x.wrapping_sub(2) } else { *x };
            }
            prop_assert_eq!(run(&insns, &v), eval(&c, &v));
            v[..4].copy_from_slice(&[vals[0], vals[1], vals[2], vals[3]]);
            prop_assert_eq!(run(&insns, &v), eval(&c, &v));
        }
    }
}
