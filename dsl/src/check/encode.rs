//! One comparison's value, checked against its field's type and range and
//! encoded the way the templates store it: numbers, errnos, addresses,
//! `comm` (exact or by prefix), TCP states, families, kernel enum
//! constants (bound later by the runtime). Comparisons that can never or
//! always hold are errors here. The shape around comparisons is
//! `condition.rs`; units are `units.rs`.
use std::net::IpAddr;

use crate::ast::{CmpOp, Literal, Value};
use crate::catalog::{self, FieldDef};
use crate::diagnostic::{suggest, Diagnostic, Problem, Shown};
use crate::plan::{FieldType, Unit};
use crate::resolve::RField;

use super::units::{field_unit, max_unsigned};
use super::{Checker, Cond, Test};

impl Checker {
    /// Encode the value for the field's slots; `None` after reporting.
    pub(super) fn encode(&mut self, field: &RField, op: CmpOp, lit: &Literal) -> Option<Cond> {
        let def = field.def;
        // Units first: `64KiB`, `10ms`, `1.5s` become plain numbers in the
        // field's unit.
        let has_unit = matches!(
            &lit.value,
            Value::Int {
                suffix: Some(_),
                ..
            } | Value::Frac { .. }
        );
        if has_unit {
            let numeric = matches!(
                def.ty,
                FieldType::Uint(_) | FieldType::Int(_) | FieldType::Port
            );
            if !numeric {
                self.mismatch(field, lit, None);
                return None;
            }
            let v = self.in_unit(field_unit(def.ty), lit, def.name)?;
            let plain = Literal {
                value: Value::Int {
                    value: v,
                    suffix: None,
                },
                span: lit.span.clone(),
                from_param: lit.from_param.clone(),
            };
            return self.encode(field, op, &plain);
        }
        match (def.ty, &lit.value) {
            (FieldType::Uint(_) | FieldType::Port, Value::Int { value, .. }) => {
                let max = if def.ty == FieldType::Port {
                    65535
                } else {
                    max_unsigned(def.bits)
                };
                if *value < 0 || *value > max {
                    self.out_of_range(field, lit, 0, max);
                    return None;
                }
                if self.constant(field, op, lit, *value, 0, max) {
                    return None;
                }
                Some(Cond::Test(single(def, op, *value as u64, false)))
            }
            (FieldType::Int(Unit::Errno), Value::Errno(v)) => {
                self.errno(field, op, lit, i128::from(*v), true)
            }
            (FieldType::Int(Unit::Errno), Value::Int { value, .. }) => {
                self.errno(field, op, lit, *value, false)
            }
            (FieldType::Int(Unit::Errno), Value::Str(s)) => self.errno_string(field, op, lit, s),
            (FieldType::Int(_), Value::Int { value, .. }) => {
                let bits = def.bits.clamp(1, 64) as u32;
                let (lo, hi) = (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1);
                if *value < lo || *value > hi {
                    self.out_of_range(field, lit, lo, hi);
                    return None;
                }
                if self.constant(field, op, lit, *value, lo, hi) {
                    return None;
                }
                // Templates sign-extend signed values into the slot.
                Some(Cond::Test(single(def, op, *value as i64 as u64, true)))
            }
            (FieldType::Bool, Value::Bool(b)) => Some(bool_test(def, op, *b)),
            (
                FieldType::Bool,
                Value::Int {
                    value: v @ (0 | 1), ..
                },
            ) => Some(bool_test(def, op, *v == 1)),
            (FieldType::Addr, Value::Addr(a)) => {
                let bytes = match a {
                    IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
                    IpAddr::V6(v6) => v6.octets(),
                };
                let words = tcpq_abi::addr_words(&bytes);
                Some(multi(def, op, words))
            }
            // `"*nginx"`, `"ngin*x"`, `"ng?nx"`: a shell pattern, which
            // tcpq does not match (only a trailing `*` means "starts
            // with"). Matched as written it would silently find nothing.
            (FieldType::Comm, Value::Str(s))
                if s.trim_end_matches('*').contains(['*', '?', '[']) || s.ends_with("**") =>
            {
                let at = s.find(['*', '?', '[']).unwrap_or(0);
                let stem: String = s
                    .chars()
                    .filter(|c| !matches!(c, '*' | '?' | '[' | ']'))
                    .collect();
                self.diagnostics.push(Diagnostic::new(
                    Problem::ShellPattern {
                        value: Shown::of(lit),
                        field: def.name,
                        before: s[..at].to_owned(),
                        leading: at == 0 || stem.is_empty(),
                        stem,
                    },
                    lit.span.clone(),
                ));
                None
            }
            (FieldType::Comm, Value::Str(s)) if s.ends_with('*') => {
                // `"nginx*"`: the command name starts with `nginx`.
                let prefix = &s[..s.len() - 1];
                if prefix.len() > 15 || prefix.contains('\0') {
                    self.diagnostics.push(Diagnostic::new(
                        Problem::CommPrefixTooLong {
                            value: Shown::of(lit),
                        },
                        lit.span.clone(),
                    ));
                    return None;
                }
                let mut buf = [0u8; 16];
                buf[..prefix.len()].copy_from_slice(prefix.as_bytes());
                let words = tcpq_abi::comm_words(&buf);
                let n = prefix.len();
                // Little-endian words: the first bytes are the low bits.
                let mask = |bytes: usize| -> u64 {
                    match bytes {
                        0 => 0,
                        b if b >= 8 => u64::MAX,
                        b => (1u64 << (8 * b)) - 1,
                    }
                };
                let test = |slot: u8, value: u64, mask: u64| {
                    Cond::Test(Test {
                        slots: vec![(slot, value & mask)],
                        op: CmpOp::Eq,
                        signed: false,
                        mask,
                        bind: None,
                    })
                };
                let mut c = test(def.slots[0], words[0], mask(n.min(8)));
                if n > 8 {
                    let second = test(def.slots[1], words[1], mask(n - 8));
                    c = Cond::And(Box::new(c), Box::new(second));
                }
                Some(if op == CmpOp::Ne {
                    Cond::Not(Box::new(c))
                } else {
                    c
                })
            }
            (FieldType::Comm, Value::Str(s)) => {
                if s.len() > 15 || s.contains('\0') {
                    self.diagnostics.push(Diagnostic::new(
                        Problem::CommTooLong {
                            value: Shown::of(lit),
                            len: s.len(),
                            nul: s.contains('\0'),
                        },
                        lit.span.clone(),
                    ));
                    return None;
                }
                let mut buf = [0u8; 16];
                buf[..s.len()].copy_from_slice(s.as_bytes());
                Some(multi(def, op, tcpq_abi::comm_words(&buf)))
            }
            (FieldType::TcpState, Value::State(v)) => {
                Some(Cond::Test(single(def, op, u64::from(*v), false)))
            }
            (FieldType::TcpState, Value::Str(s)) => {
                match catalog::state_by_name(&s.to_ascii_uppercase()) {
                    Some(v) => Some(Cond::Test(single(def, op, u64::from(v), false))),
                    None => {
                        let names = catalog::TCP_STATES.iter().map(|(n, _)| *n);
                        self.diagnostics.push(Diagnostic::new(
                            Problem::NotATcpState {
                                value: Shown::of(lit),
                                suggestion: suggest(s, names).map(str::to_owned),
                            },
                            lit.span.clone(),
                        ));
                        None
                    }
                }
            }
            (FieldType::Uint(unit), Value::Enum(name)) => {
                let Some((enum_name, prefix, _)) = crate::reasons::enum_of(unit) else {
                    self.mismatch(field, lit, None);
                    return None;
                };
                // Bound by the runtime from this kernel's BTF: the value
                // here is a placeholder that never reaches a template.
                let mut t = single(def, op, 0, false);
                t.bind = Some(crate::plan::EnumBind {
                    enum_name: enum_name.to_owned(),
                    constant: format!("{prefix}{name}"),
                    span: (lit.span.start, lit.span.end),
                });
                Some(Cond::Test(t))
            }
            (FieldType::Family, Value::Family(v)) => {
                Some(Cond::Test(single(def, op, u64::from(*v), false)))
            }
            (ty, _) => {
                let help = match (ty, &lit.value) {
                    (FieldType::TcpState, Value::Int { value, .. }) => Some(
                        match u8::try_from(*value).ok().and_then(catalog::state_name) {
                            Some(n) => format!("state {value} is `{n}`: write `{n}`"),
                            None => "write a state name, e.g. `ESTABLISHED`".into(),
                        },
                    ),
                    (FieldType::Family, Value::Int { value, .. }) => Some(
                        match u8::try_from(*value).ok().and_then(catalog::family_name) {
                            Some(n) => format!("family {value} is `{n}`: write `{n}`"),
                            None => "write `AF_INET` or `AF_INET6`".into(),
                        },
                    ),
                    (FieldType::Comm, _) => Some(format!(
                        "command names are strings: `{} == \"nginx\"`",
                        def.name
                    )),
                    (FieldType::Addr, _) => Some(format!(
                        "write an address: `{} == 10.0.0.1` or `{} == ::1`",
                        def.name, def.name
                    )),
                    (FieldType::Bool, _) => Some("write `true` or `false`".into()),
                    (FieldType::Uint(_) | FieldType::Int(_) | FieldType::Port, Value::Str(s))
                        if crate::parse::parse_int(s).is_some() =>
                    {
                        Some(format!("remove the quotes: `{s}`"))
                    }
                    _ => None,
                };
                self.mismatch(field, lit, help);
                None
            }
        }
    }

    fn mismatch(&mut self, field: &RField, value: &Literal, help: Option<String>) {
        self.diagnostics.push(Diagnostic::new(
            Problem::Mismatch {
                field: field.def.name,
                ty: field.def.ty,
                value: Shown::of(value),
                kind: value.value.kind(),
                help,
            },
            value.span.clone(),
        ));
    }

    /// A comparison of an errno field (`err == EPERM`, `err != 0`, `err <
    /// 0`) with a name (`named`) or a number as the kernel passes it.
    fn errno(
        &mut self,
        field: &RField,
        op: CmpOp,
        lit: &Literal,
        value: i128,
        named: bool,
    ) -> Option<Cond> {
        let def = field.def;
        let name = def.name;
        let equality = matches!(op, CmpOp::Eq | CmpOp::Ne);
        if named && !equality {
            self.diagnostics.push(Diagnostic::new(
                Problem::ErrnoOrdered {
                    value: Shown::of(lit),
                    field: name,
                },
                lit.span.clone(),
            ));
            return None;
        }
        if !named && value > 0 {
            // `err == 1` is almost always EPERM's number, which the kernel
            // passes as -1; the only positive value is NET_XMIT_DROP.
            let errno = i64::try_from(-value)
                .ok()
                .and_then(crate::errno::name)
                .filter(|n| *n != crate::errno::NET_XMIT_DROP.0);
            self.diagnostics.push(Diagnostic::new(
                Problem::ErrnoPositive {
                    value: Shown::of(lit),
                    number: value,
                    field: name,
                    errno,
                },
                lit.span.clone(),
            ));
            return None;
        }
        let lo = -(1i128 << (def.bits.clamp(1, 64) - 1));
        if value < lo {
            self.out_of_range(field, lit, lo, 0);
            return None;
        }
        let why = i64::try_from(value)
            .ok()
            .filter(|_| equality)
            .and_then(|v| catalog::unreported(def, v));
        if let Some(why) = why {
            let errno = i64::try_from(value)
                .ok()
                .and_then(crate::errno::name)
                .unwrap_or("?");
            let always = op == CmpOp::Ne;
            self.diagnostics.push(Diagnostic::new(
                Problem::ErrnoNeverHere {
                    field: name,
                    errno,
                    why,
                    always,
                },
                lit.span.clone(),
            ));
            return None;
        }
        // A bound at the top of the range (`err <= 0`) tests nothing, but
        // holding that up would only get in the way of `in -20..0`.
        Some(Cond::Test(single(def, op, value as i64 as u64, true)))
    }

    /// `err == "EPERM"`: the name without quotes.
    fn errno_string(&mut self, field: &RField, op: CmpOp, lit: &Literal, s: &str) -> Option<Cond> {
        match crate::errno::by_name(&s.to_ascii_uppercase()) {
            Some(v) => self.errno(field, op, lit, i128::from(v), true),
            None => {
                self.diagnostics.push(Diagnostic::new(
                    Problem::NotAnErrnoName {
                        value: Shown::of(lit),
                        suggestion: suggest(&s.to_ascii_uppercase(), crate::errno::names())
                            .map(str::to_owned),
                    },
                    lit.span.clone(),
                ));
                None
            }
        }
    }

    /// `sport > 65535` or `win >= 0`: in range, but the answer never
    /// depends on the event. Almost always a mistake about the field's
    /// range or unit, so report it like an out-of-range value.
    fn constant(
        &mut self,
        field: &RField,
        op: CmpOp,
        lit: &Literal,
        v: i128,
        lo: i128,
        hi: i128,
    ) -> bool {
        let always = match op {
            CmpOp::Gt if v == hi => false,
            CmpOp::Lt if v == lo => false,
            CmpOp::Ge if v == lo => true,
            CmpOp::Le if v == hi => true,
            _ => return false,
        };
        let name = field.def.name;
        self.diagnostics.push(Diagnostic::new(
            Problem::AlwaysOrNever {
                field: name,
                ty: field.def.ty,
                lo,
                hi,
                always,
            },
            lit.span.clone(),
        ));
        true
    }

    pub(super) fn out_of_range(&mut self, field: &RField, lit: &Literal, lo: i128, hi: i128) {
        let def = field.def;
        let bytes_twin = format!("{}_bytes", def.name);
        let bytes_twin = catalog::PROBES
            .iter()
            .flat_map(|p| p.fields.iter())
            .find(|f| f.name == bytes_twin)
            .map(|f| f.name);
        self.diagnostics.push(Diagnostic::new(
            Problem::OutOfRange {
                value: Shown::of(lit),
                field: def.name,
                ty: def.ty,
                bits: def.bits,
                lo,
                hi,
                below: matches!(lit.value, Value::Int { value, .. } if value < lo),
                bytes_twin,
            },
            lit.span.clone(),
        ));
    }
}

/// A test that always holds (`(v & 0) == 0`).
pub(super) fn always(slot: u8) -> Cond {
    Cond::Test(Test {
        slots: vec![(slot, 0)],
        op: CmpOp::Eq,
        signed: false,
        mask: 0,
        bind: None,
    })
}

pub(super) fn single(def: &FieldDef, op: CmpOp, value: u64, signed: bool) -> Test {
    Test {
        slots: vec![(def.slots[0], value)],
        op,
        signed,
        mask: u64::MAX,
        bind: None,
    }
}

/// `== true` is "non-zero", not "equals 1": robust to how a template stores
/// a flag.
fn bool_test(def: &FieldDef, op: CmpOp, b: bool) -> Cond {
    let want_true = (op == CmpOp::Eq) == b;
    Cond::Test(single(
        def,
        if want_true { CmpOp::Ne } else { CmpOp::Eq },
        0,
        false,
    ))
}

fn multi(def: &FieldDef, op: CmpOp, words: [u64; 2]) -> Cond {
    Cond::Test(Test {
        slots: def.slots.iter().copied().zip(words).collect(),
        op,
        signed: false,
        mask: u64::MAX,
        bind: None,
    })
}
