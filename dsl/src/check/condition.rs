//! The `where` clause's shape: `and`/`or`/`not`, bare booleans, `in`
//! sets, numeric ranges, address prefixes and `FIELD / N` comparisons,
//! down to single comparisons, each of which `encode.rs` turns into a
//! test on record slots. The condition in words is `words.rs`.
use crate::ast::{ArithOp, CmpOp, Literal, Span, Value};
use crate::diagnostic::{Diagnostic, Problem};
use crate::plan::FieldType;
use crate::resolve::{RExpr, RField, RScale, RSetItem};

use super::encode::{always, single};
use super::units::{field_unit, max_unsigned};
use super::{Checker, Cond, Test, MAX_SET_ITEMS};

impl Checker {
    fn set(&mut self, field: &RField, items: &[RSetItem], span: &Span) -> Option<Cond> {
        if items.len() > MAX_SET_ITEMS {
            self.diagnostics.push(Diagnostic::new(
                Problem::TooManyItems {
                    items: items.len(),
                    max: MAX_SET_ITEMS,
                },
                span.clone(),
            ));
            return None;
        }
        let mut acc: Option<Cond> = None;
        let mut ok = true;
        for item in items {
            let c = match item {
                RSetItem::One(lit) => self.encode(field, CmpOp::Eq, lit),
                RSetItem::Range(lo, hi, sp) => self.range(field, lo, hi, sp),
                RSetItem::Cidr(addr, len, sp) => self.cidr(field, *addr, *len, sp),
            };
            match c {
                Some(c) => {
                    acc = Some(match acc {
                        None => c,
                        Some(a) => Cond::Or(Box::new(a), Box::new(c)),
                    })
                }
                None => ok = false,
            }
        }
        if ok {
            acc
        } else {
            None
        }
    }

    fn range(&mut self, field: &RField, lo: &Literal, hi: &Literal, sp: &Span) -> Option<Cond> {
        if !matches!(
            field.def.ty,
            FieldType::Uint(_) | FieldType::Int(_) | FieldType::Port
        ) {
            self.diagnostics.push(Diagnostic::new(
                Problem::RangeNotNumeric {
                    field: field.def.name,
                    ty: field.def.ty,
                },
                sp.clone(),
            ));
            return None;
        }
        let unit = field_unit(field.def.ty);
        let (x, y) = (self.quiet_value(unit, lo), self.quiet_value(unit, hi));
        if let (Some(x), Some(y)) = (x, y) {
            if x > y {
                self.diagnostics.push(Diagnostic::new(
                    Problem::EmptyRange {
                        lo: lo.value.to_string(),
                        hi: hi.value.to_string(),
                    },
                    sp.clone(),
                ));
                return None;
            }
        }
        // A bound at the field's own limit filters nothing (`dport in
        // 0..1023`): leave it out rather than report it as always true.
        let (min, max) = match field.def.ty {
            FieldType::Port => (0, 65535),
            FieldType::Int(_) => {
                let bits = field.def.bits.clamp(1, 64) as u32;
                (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
            }
            _ => (0, max_unsigned(field.def.bits)),
        };
        let a = match x {
            Some(x) if x <= min => None,
            _ => Some(self.encode(field, CmpOp::Ge, lo)?),
        };
        let b = match y {
            Some(y) if y >= max => None,
            _ => Some(self.encode(field, CmpOp::Le, hi)?),
        };
        Some(match (a, b) {
            (Some(a), Some(b)) => Cond::And(Box::new(a), Box::new(b)),
            (Some(c), None) | (None, Some(c)) => c,
            (None, None) => always(field.def.slots[0]),
        })
    }

    fn cidr(&mut self, field: &RField, addr: std::net::IpAddr, len: u8, sp: &Span) -> Option<Cond> {
        if field.def.ty != FieldType::Addr {
            self.diagnostics.push(Diagnostic::new(
                Problem::PrefixNotAddress {
                    field: field.def.name,
                    ty: field.def.ty,
                    prefix: format!("{addr}/{len}"),
                },
                sp.clone(),
            ));
            return None;
        }
        let (bytes, bits) = match addr {
            std::net::IpAddr::V4(v4) => (v4.to_ipv6_mapped().octets(), 96 + u32::from(len)),
            std::net::IpAddr::V6(v6) => (v6.octets(), u32::from(len)),
        };
        let words = tcpq_abi::addr_words(&bytes);
        let mask_of = |n: u32| -> u64 {
            match n {
                0 => 0,
                n if n >= 64 => u64::MAX,
                n => !(u64::MAX >> n),
            }
        };
        let (m_hi, m_lo) = (mask_of(bits.min(64)), mask_of(bits.saturating_sub(64)));
        let test = |slot: u8, value: u64, mask: u64| {
            Cond::Test(Test {
                slots: vec![(slot, value & mask)],
                op: CmpOp::Eq,
                signed: false,
                mask,
                bind: None,
            })
        };
        let hi = test(field.def.slots[0], words[0], m_hi);
        if m_lo == 0 {
            return Some(hi);
        }
        let lo = test(field.def.slots[1], words[1], m_lo);
        Some(Cond::And(Box::new(hi), Box::new(lo)))
    }

    pub(super) fn expr(&mut self, e: &RExpr) -> Option<Cond> {
        match e {
            // Left out entirely (an optional parameter not given): no filter.
            RExpr::Invalid | RExpr::Omitted => None,
            RExpr::Not(x) => Some(Cond::Not(Box::new(self.expr(x)?))),
            // Check both sides before giving up, to report both.
            RExpr::And(a, b) => {
                let (a, b) = (self.expr(a), self.expr(b));
                Some(Cond::And(Box::new(a?), Box::new(b?)))
            }
            RExpr::Or(a, b) => {
                let (a, b) = (self.expr(a), self.expr(b));
                Some(Cond::Or(Box::new(a?), Box::new(b?)))
            }
            RExpr::Bare(f) | RExpr::In { field: f, .. } | RExpr::Compare { field: f, .. }
                if f.def.header.is_some() =>
            {
                self.print_only(f, "where");
                None
            }
            RExpr::Bare(f) => {
                if f.def.ty == FieldType::Bool {
                    Some(Cond::Test(single(f.def, CmpOp::Ne, 0, false)))
                } else {
                    self.diagnostics.push(Diagnostic::new(
                        Problem::NotABoolean { field: f.def.name },
                        f.span.clone(),
                    ));
                    None
                }
            }
            RExpr::In { field, items, span } => self.set(field, items, span),
            RExpr::Compare {
                field,
                scale: None,
                op,
                op_span,
                value,
                ..
            } => self.compare(field, *op, op_span, value),
            RExpr::Compare {
                field,
                scale: Some(sc),
                op,
                value,
                ..
            } => self.scaled_compare(field, sc, *op, value),
        }
    }

    fn compare(
        &mut self,
        field: &RField,
        op: CmpOp,
        op_span: &Span,
        lit: &Literal,
    ) -> Option<Cond> {
        let def = field.def;
        let equality_only = matches!(
            def.ty,
            FieldType::Addr
                | FieldType::Comm
                | FieldType::Bool
                | FieldType::TcpState
                | FieldType::Family
        );
        // A kernel constant's number is this kernel's, and reasons are not
        // ordered: only `==` and `!=`.
        let equality_only = equality_only || matches!(lit.value, Value::Enum(_));
        let op_ok = !equality_only || matches!(op, CmpOp::Eq | CmpOp::Ne);
        if !op_ok {
            let constant = match &lit.value {
                Value::Enum(_) => Some(lit.value.to_string()),
                _ => None,
            };
            self.diagnostics.push(Diagnostic::new(
                Problem::CannotBeOrdered {
                    field: def.name,
                    ty: def.ty,
                    constant,
                },
                op_span.clone(),
            ));
        }
        let cond = self.encode(field, op, lit);
        if op_ok {
            cond
        } else {
            None
        }
    }

    /// `FIELD / K OP c` or `FIELD * K OP c`, rewritten into comparisons of
    /// the field itself (exact for unsigned integer division).
    fn scaled_compare(
        &mut self,
        field: &RField,
        sc: &RScale,
        op: CmpOp,
        lit: &Literal,
    ) -> Option<Cond> {
        if !self.numeric_field(field, &format!("{} {}", field.def.name, sc.op.symbol())) {
            return None;
        }
        let k = i128::from(self.scale_factor(field, sc)?);
        let c = self.in_unit(field_unit(field.def.ty), lit, field.def.name)?;
        if c < 0 {
            self.out_of_range(field, lit, 0, max_unsigned(field.def.bits));
            return None;
        }
        // Each bound: (op, value) on the field; all must hold.
        let bounds: Vec<(CmpOp, i128)> = match (sc.op, op) {
            (ArithOp::Div, CmpOp::Eq | CmpOp::Ne) => {
                vec![(CmpOp::Ge, c * k), (CmpOp::Le, c * k + k - 1)]
            }
            (ArithOp::Div, CmpOp::Lt) => vec![(CmpOp::Lt, c * k)],
            (ArithOp::Div, CmpOp::Le) => vec![(CmpOp::Le, c * k + k - 1)],
            (ArithOp::Div, CmpOp::Gt) => vec![(CmpOp::Gt, c * k + k - 1)],
            (ArithOp::Div, CmpOp::Ge) => vec![(CmpOp::Ge, c * k)],
            (_, CmpOp::Eq | CmpOp::Ne) if c % k != 0 => {
                let always = op == CmpOp::Ne;
                self.diagnostics.push(Diagnostic::new(
                    Problem::NeverMultiple {
                        field: field.def.name,
                        factor: k,
                        value: c,
                        always,
                    },
                    lit.span.clone(),
                ));
                return None;
            }
            (_, CmpOp::Eq | CmpOp::Ne) => vec![(op, c / k)],
            (_, CmpOp::Lt) => vec![(CmpOp::Lt, (c + k - 1) / k)],
            (_, CmpOp::Le) => vec![(CmpOp::Le, c / k)],
            (_, CmpOp::Gt) => vec![(CmpOp::Gt, c / k)],
            (_, CmpOp::Ge) => vec![(CmpOp::Ge, (c + k - 1) / k)],
        };
        let mut acc: Option<Cond> = None;
        for (bop, v) in bounds {
            let l = Literal {
                value: Value::Int {
                    value: v,
                    suffix: None,
                },
                span: lit.span.clone(),
                from_param: lit.from_param.clone(),
            };
            let t = self.encode(field, bop, &l)?;
            acc = Some(match acc {
                None => t,
                Some(a) => Cond::And(Box::new(a), Box::new(t)),
            });
        }
        let cond = acc?;
        Some(if sc.op == ArithOp::Div && op == CmpOp::Ne {
            Cond::Not(Box::new(cond))
        } else {
            cond
        })
    }
}
