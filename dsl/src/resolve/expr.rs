//! The `where` clause: `and`/`or`/`not`, sets, and comparisons
//! normalised to `field OP value` (operands swapped and the operator
//! mirrored when the value comes first, `FIELD / N` kept for `check`).
use crate::ast::{self, ArithOp, Literal, Operand, Span, Value};
use crate::catalog::ProbeDef;
use crate::diagnostic::{Diagnostic, Problem};

use super::names::Named;
use super::{
    cmp_symbol, mirror, operand_params, operand_text, RExpr, RField, RScale, RSetItem, Resolver,
};

/// The field of a comparison and the arithmetic applied to it, if any.
type FieldSide<'a> = (&'a ast::Ident, Option<(ArithOp, Span, &'a Operand)>);

impl Resolver<'_> {
    pub(super) fn unsupported_arith(&mut self, span: Span) {
        self.diagnostics
            .push(Diagnostic::new(Problem::UnsupportedArithmetic, span));
    }

    /// The field side of a comparison: a field, or `FIELD / CONST`,
    /// `FIELD * CONST`, `CONST * FIELD`. `None` when it is a value (or an
    /// arithmetic already reported).
    fn field_side<'a>(&mut self, o: &'a Operand) -> Option<FieldSide<'a>> {
        match o {
            Operand::Field(f) => Some((f, None)),
            Operand::Arith {
                lhs,
                op,
                op_span,
                rhs,
                ..
            } => match (&**lhs, &**rhs) {
                (Operand::Field(f), v @ (Operand::Literal(_) | Operand::Param(_)))
                    if matches!(op, ArithOp::Div | ArithOp::Mul) =>
                {
                    Some((f, Some((*op, op_span.clone(), v))))
                }
                (v @ (Operand::Literal(_) | Operand::Param(_)), Operand::Field(f))
                    if *op == ArithOp::Mul =>
                {
                    Some((f, Some((*op, op_span.clone(), v))))
                }
                _ => None,
            },
            _ => None,
        }
    }

    pub(super) fn expr(&mut self, probe: &'static ProbeDef, e: &ast::Expr) -> RExpr {
        match e {
            // A left-out comparison takes its `not` with it, and leaves
            // the other side of an `and` or `or`: the condition reads as
            // if it had not been written.
            ast::Expr::Not { expr, .. } => match self.expr(probe, expr) {
                RExpr::Omitted => RExpr::Omitted,
                x => RExpr::Not(Box::new(x)),
            },
            ast::Expr::And { lhs, rhs, .. } => {
                match (self.expr(probe, lhs), self.expr(probe, rhs)) {
                    (RExpr::Omitted, x) | (x, RExpr::Omitted) => x,
                    (a, b) => RExpr::And(Box::new(a), Box::new(b)),
                }
            }
            ast::Expr::Or { lhs, rhs, .. } => {
                match (self.expr(probe, lhs), self.expr(probe, rhs)) {
                    (RExpr::Omitted, x) | (x, RExpr::Omitted) => x,
                    (a, b) => RExpr::Or(Box::new(a), Box::new(b)),
                }
            }
            // A parameter given as a set (`--param port=80,443`): `FIELD ==
            // $p` is `FIELD in [...]`, `!=` is `not in`, and `in [$p, ...]`
            // takes its items; anything else is an error, never a drop.
            ast::Expr::Compare { lhs, op, rhs, span }
                if self.set_param_of(lhs).or(self.set_param_of(rhs)).is_some() =>
            {
                self.compare_with_set(probe, lhs, op, rhs, span.clone())
            }
            ast::Expr::In { lhs, .. } if self.set_param_of(lhs).is_some() => {
                self.set_not_a_field(lhs)
            }
            ast::Expr::In { lhs, items, span } if items.iter().any(|i| self.is_set_item(i)) => {
                self.in_with_sets(probe, lhs, items, span)
            }
            ast::Expr::Bare(o) if self.set_param_of(o).is_some() => self.set_alone(o),
            ast::Expr::Bare(Operand::Field(id)) => match self.field(probe, id, None) {
                Some(f) => RExpr::Bare(f),
                None => RExpr::Invalid,
            },
            ast::Expr::Bare(o) => {
                // Resolve a parameter anyway, to report it if undeclared.
                if self.value(o).is_some() || self.uses_absent(o) {
                    self.diagnostics
                        .push(Diagnostic::new(Problem::ValueAlone, o.span()));
                }
                RExpr::Invalid
            }
            ast::Expr::Compare { lhs, op, rhs, span } => {
                self.compare(probe, lhs, op, rhs, span.clone())
            }
            ast::Expr::In { lhs, items, span } => {
                let absent = items.iter().any(|i| match i {
                    ast::SetItem::One(o) => self.uses_absent(o),
                    _ => false,
                });
                if let (true, Operand::Field(f)) = (absent, lhs) {
                    return self.omit(probe, Some(f), format!("{} in [...]", f.name));
                }
                let field = match lhs {
                    Operand::Field(f) => self.field(probe, f, None),
                    Operand::Arith { span, .. } => {
                        self.diagnostics
                            .push(Diagnostic::new(Problem::ArithmeticBeforeIn, span.clone()));
                        None
                    }
                    other => {
                        self.value(other);
                        self.diagnostics
                            .push(Diagnostic::new(Problem::InNeedsField, other.span()));
                        None
                    }
                };
                // Every item resolves, or is reported: a set never loses a
                // member silently (a bare `nginx` once dropped the whole
                // `where` clause without a word).
                let resolved: Vec<Option<RSetItem>> = items
                    .iter()
                    .map(|i| self.set_item(field.as_ref(), i, items))
                    .collect();
                match (field, resolved.iter().all(Option::is_some)) {
                    (Some(field), true) => RExpr::In {
                        field,
                        items: resolved.into_iter().flatten().collect(),
                        span: span.clone(),
                    },
                    _ => RExpr::Invalid,
                }
            }
        }
    }

    /// One member of `field in [...]`. A bare name is never a value here
    /// (the parser has already turned TCP states, families, `true` and
    /// `false` into constants): it is reported with the fix, against the
    /// field's type when the field is known. `None` only after reporting.
    fn set_item(
        &mut self,
        field: Option<&RField>,
        item: &ast::SetItem,
        all: &[ast::SetItem],
    ) -> Option<RSetItem> {
        match item {
            ast::SetItem::One(Operand::Field(id)) => {
                if let Some(f) = field {
                    match self.enum_constant(f, id) {
                        Named::Constant(value) => return Some(RSetItem::One(value)),
                        Named::Reported => {}
                        Named::NotAnEnum => self.name_in_set(f, id, all),
                    }
                } else if id.name.is_empty() {
                    // Only an internal parse failure, already reported.
                } else {
                    // The set's field is unknown (reported): the name can
                    // still not be a value.
                    self.diagnostics.push(Diagnostic::new(
                        Problem::NameInUnknownSet {
                            name: id.name.clone(),
                        },
                        id.span.clone(),
                    ));
                }
                None
            }
            ast::SetItem::One(Operand::Arith { span, .. }) => {
                self.unsupported_arith(span.clone());
                None
            }
            ast::SetItem::One(o) => self.value(o).map(RSetItem::One),
            ast::SetItem::Range { lo, hi, span } => {
                Some(RSetItem::Range(lo.clone(), hi.clone(), span.clone()))
            }
            ast::SetItem::Cidr { addr, len, span } => {
                Some(RSetItem::Cidr(*addr, *len, span.clone()))
            }
        }
    }

    fn compare(
        &mut self,
        probe: &'static ProbeDef,
        lhs: &Operand,
        op: &ast::Op,
        rhs: &Operand,
        span: Span,
    ) -> RExpr {
        let is_value = |o: &Operand| matches!(o, Operand::Literal(_) | Operand::Param(_));
        // `daddr == 10.0.0.0/8` reads as an address divided by 8: it is a
        // prefix, which `in` tests.
        if let Some((field, prefix)) = prefix_compared(lhs, rhs) {
            self.diagnostics.push(Diagnostic::new(
                Problem::PrefixCompared {
                    field,
                    prefix,
                    op: cmp_symbol(op.op),
                },
                span,
            ));
            return RExpr::Invalid;
        }
        let (field_id, scale, value_op, cmp) = match (lhs, rhs) {
            (a @ Operand::Arith { .. }, v) | (v, a @ Operand::Arith { .. }) if is_value(v) => {
                let mirrored = std::ptr::eq(v, lhs);
                match self.field_side(a) {
                    Some((f, s)) => (f, s, v, if mirrored { mirror(op.op) } else { op.op }),
                    None => {
                        self.unsupported_arith(a.span());
                        return RExpr::Invalid;
                    }
                }
            }
            (Operand::Arith { span, .. }, _) | (_, Operand::Arith { span, .. }) => {
                self.unsupported_arith(span.clone());
                return RExpr::Invalid;
            }
            (Operand::Field(f), v @ (Operand::Literal(_) | Operand::Param(_))) => {
                (f, None, v, op.op)
            }
            (v @ (Operand::Literal(_) | Operand::Param(_)), Operand::Field(f)) => {
                (f, None, v, mirror(op.op))
            }
            (Operand::Field(a), Operand::Field(b)) => {
                // One side may be a known field and the other a typo'd
                // constant (`state == ESTABLISHD`): say that rather than
                // "two fields".
                let fa = probe.field(&a.name);
                let fb = probe.field(&b.name);
                match (fa, fb) {
                    (Some(def), None) | (None, Some(def)) => {
                        // The field, the name beside it, and the operator
                        // read from the field's side.
                        let (fid, name, cmp) = if fa.is_some() {
                            (a, b, op.op)
                        } else {
                            (b, a, mirror(op.op))
                        };
                        self.saw_field(def.name, &fid.span);
                        let f = RField {
                            def,
                            span: fid.span.clone(),
                        };
                        match self.enum_constant(&f, name) {
                            Named::Constant(value) => {
                                return RExpr::Compare {
                                    field: f,
                                    scale: None,
                                    op: cmp,
                                    op_span: op.span.clone(),
                                    value,
                                    span,
                                }
                            }
                            Named::Reported => {}
                            Named::NotAnEnum => self.unknown_value_name(&f, name),
                        }
                    }
                    (None, None) => {
                        self.field(probe, a, None);
                        self.field(probe, b, None);
                    }
                    (Some(_), Some(_)) => self.diagnostics.push(Diagnostic::new(
                        Problem::TwoFields {
                            a: a.name.clone(),
                            b: b.name.clone(),
                        },
                        span,
                    )),
                }
                return RExpr::Invalid;
            }
            (a, b) => {
                // Report undeclared parameters first, then the shape.
                let (va, vb) = (self.value(a), self.value(b));
                let ok = |v: &Option<Literal>, o: &Operand| v.is_some() || self.uses_absent(o);
                if ok(&va, a) && ok(&vb, b) {
                    let param = operand_params(a)
                        .into_iter()
                        .chain(operand_params(b))
                        .next()
                        .map(|i| i.name.clone());
                    self.diagnostics
                        .push(Diagnostic::new(Problem::TwoValues { param }, span));
                }
                return RExpr::Invalid;
            }
        };
        let scale_uses_absent = scale
            .as_ref()
            .is_some_and(|(_, _, by)| self.uses_absent(by));
        if self.uses_absent(value_op) || scale_uses_absent {
            let (l, r) = (operand_text(lhs), operand_text(rhs));
            return self.omit(
                probe,
                Some(field_id),
                format!("{l} {} {r}", cmp_symbol(op.op)),
            );
        }
        let value = self.value(value_op);
        let scale = scale.and_then(|(op, op_span, by)| {
            Some(Box::new(RScale {
                op,
                op_span,
                by: self.value(by)?,
            }))
        });
        let field = self.field(probe, field_id, value.as_ref().map(|l| &l.value));
        match (field, value) {
            (Some(field), Some(value)) => RExpr::Compare {
                field,
                scale,
                op: cmp,
                op_span: op.span.clone(),
                value,
                span,
            },
            _ => RExpr::Invalid,
        }
    }
}

/// `FIELD == ADDR/LEN` (either way round): the field's name and the prefix
/// as written.
fn prefix_compared(lhs: &Operand, rhs: &Operand) -> Option<(String, String)> {
    let prefix = |o: &Operand| match o {
        Operand::Arith {
            lhs,
            op: ArithOp::Div,
            rhs,
            ..
        } => match (&**lhs, &**rhs) {
            (
                Operand::Literal(Literal {
                    value: Value::Addr(a),
                    ..
                }),
                Operand::Literal(Literal {
                    value:
                        Value::Int {
                            value: n,
                            suffix: None,
                        },
                    ..
                }),
            ) => Some(format!("{a}/{n}")),
            _ => None,
        },
        _ => None,
    };
    match (lhs, rhs) {
        (Operand::Field(f), o) | (o, Operand::Field(f)) => Some((f.name.clone(), prefix(o)?)),
        _ => None,
    }
}
