//! `$parameters`: a recipe's typed values put into the program, a
//! comparison with an optional parameter not given left out (as if not
//! written), and a parameter given as a set turned into `in`.
use crate::ast::{self, CmpOp, Literal, Operand, Span, Value};
use crate::catalog::ProbeDef;
use crate::diagnostic::{suggest, Diagnostic, Problem};
use crate::recipe::ParamItem;

use super::{cmp_symbol, operand_params, RExpr, Resolver};

impl Resolver<'_> {
    /// Whether `o` uses an optional parameter that was not given.
    pub(super) fn uses_absent(&self, o: &Operand) -> bool {
        operand_params(o)
            .iter()
            .any(|i| self.params.is_absent(&i.name))
    }

    /// Leave out a comparison that uses an absent optional parameter,
    /// still reporting an unknown field in it.
    pub(super) fn omit(
        &mut self,
        probe: &'static ProbeDef,
        field: Option<&ast::Ident>,
        text: String,
    ) -> RExpr {
        if let Some(f) = field {
            self.field(probe, f, None);
        }
        self.omitted.push(text);
        RExpr::Omitted
    }

    /// `$name` → its typed value, keeping the `$name` span. `None` also
    /// for an absent optional parameter (the caller leaves its comparison
    /// out; see [`Resolver::uses_absent`]).
    fn param(&mut self, id: &ast::Ident) -> Option<Literal> {
        if self.params.is_absent(&id.name) {
            return None;
        }
        match self.params.get(&id.name) {
            Some(v) => Some(Literal {
                value: v.clone(),
                span: id.span.clone(),
                from_param: Some(id.name.clone()),
            }),
            None => {
                let names = self.params.values.keys().map(String::as_str);
                self.diagnostics.push(Diagnostic::new(
                    Problem::UndeclaredParam {
                        name: id.name.clone(),
                        suggestion: suggest(&id.name, names).map(str::to_owned),
                        none_declared: self.params.values.is_empty(),
                    },
                    id.span.clone(),
                ));
                None
            }
        }
    }

    pub(super) fn value(&mut self, o: &Operand) -> Option<Literal> {
        match o {
            Operand::Literal(l) => Some(l.clone()),
            Operand::Param(id) => self.param(id),
            Operand::Field(_) => None,
            Operand::Arith { span, .. } => {
                self.unsupported_arith(span.clone());
                None
            }
        }
    }
}

/// Parameters given as sets (see [`crate::recipe::ParamItem`]).
impl Resolver<'_> {
    /// The first `$param` in `o` that was given as a set.
    pub(super) fn set_param_of<'a>(&self, o: &'a Operand) -> Option<&'a ast::Ident> {
        operand_params(o)
            .into_iter()
            .find(|i| self.params.set(&i.name).is_some())
    }

    pub(super) fn is_set_item(&self, i: &ast::SetItem) -> bool {
        matches!(i, ast::SetItem::One(Operand::Param(id)) if self.params.set(&id.name).is_some())
    }

    /// The written items with each set parameter replaced by its items:
    /// typed literals at the `$param`'s span (never text to parse again).
    fn expand_set_items(&self, items: &[ast::SetItem]) -> Vec<ast::SetItem> {
        let mut out = Vec::with_capacity(items.len());
        for i in items {
            match i {
                ast::SetItem::One(Operand::Param(id)) if self.params.set(&id.name).is_some() => {
                    out.extend(self.set_items_of(id));
                }
                other => out.push(other.clone()),
            }
        }
        out
    }

    /// The items of the set parameter `id`, as set members of the program.
    fn set_items_of(&self, id: &ast::Ident) -> Vec<ast::SetItem> {
        let lit = |value: &Value| Literal {
            value: value.clone(),
            span: id.span.clone(),
            from_param: Some(id.name.clone()),
        };
        self.params
            .set(&id.name)
            .unwrap_or_default()
            .iter()
            .map(|item| match item {
                ParamItem::One(v) => ast::SetItem::One(Operand::Literal(lit(v))),
                ParamItem::Range(lo, hi) => ast::SetItem::Range {
                    lo: lit(lo),
                    hi: lit(hi),
                    span: id.span.clone(),
                },
                ParamItem::Prefix(addr, len) => ast::SetItem::Cidr {
                    addr: *addr,
                    len: *len,
                    span: id.span.clone(),
                },
            })
            .collect()
    }

    // The arms of `expr` for sets call out to these (never inlined) so
    // that their temporaries do not grow `expr`'s stack frame: it recurses
    // once per nesting level.

    #[inline(never)]
    pub(super) fn in_with_sets(
        &mut self,
        probe: &'static ProbeDef,
        lhs: &Operand,
        items: &[ast::SetItem],
        span: &Span,
    ) -> RExpr {
        let expanded = ast::Expr::In {
            lhs: lhs.clone(),
            items: self.expand_set_items(items),
            span: span.clone(),
        };
        self.expr(probe, &expanded)
    }

    #[inline(never)]
    pub(super) fn set_not_a_field(&mut self, lhs: &Operand) -> RExpr {
        self.diagnostics
            .push(Diagnostic::new(Problem::SetNotAField, lhs.span()));
        RExpr::Invalid
    }

    #[inline(never)]
    pub(super) fn set_alone(&mut self, o: &Operand) -> RExpr {
        self.diagnostics
            .push(Diagnostic::new(Problem::SetAlone, o.span()));
        RExpr::Invalid
    }

    /// `FIELD == $set` (either way round) is `FIELD in [items]`, `!=` is
    /// `not FIELD in [items]`; other operators, arithmetic and a set
    /// compared with a value are errors pointing at the parameter.
    #[inline(never)]
    pub(super) fn compare_with_set(
        &mut self,
        probe: &'static ProbeDef,
        lhs: &Operand,
        op: &ast::Op,
        rhs: &Operand,
        span: Span,
    ) -> RExpr {
        let set = self
            .set_param_of(lhs)
            .or_else(|| self.set_param_of(rhs))
            .cloned()
            .expect("called with a set parameter");
        let given = self
            .params
            .set(&set.name)
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let field = match (lhs, rhs) {
            (Operand::Field(f), Operand::Param(p)) | (Operand::Param(p), Operand::Field(f))
                if p.name == set.name =>
            {
                Some(f)
            }
            _ => None,
        };
        let Some(field) = field else {
            let arithmetic = matches!(
                (lhs, rhs),
                (Operand::Arith { .. }, _) | (_, Operand::Arith { .. })
            );
            self.diagnostics.push(Diagnostic::new(
                Problem::SetMisused {
                    name: set.name.clone(),
                    given,
                    arithmetic,
                },
                set.span.clone(),
            ));
            return RExpr::Invalid;
        };
        let inside = ast::Expr::In {
            lhs: Operand::Field(field.clone()),
            items: self.set_items_of(&set),
            span: span.clone(),
        };
        match op.op {
            CmpOp::Eq => self.expr(probe, &inside),
            CmpOp::Ne => self.expr(
                probe,
                &ast::Expr::Not {
                    expr: Box::new(inside),
                    span,
                },
            ),
            other => {
                // Still resolve the field, to report a typo in it too.
                self.field(probe, field, None);
                self.diagnostics.push(Diagnostic::new(
                    Problem::SetOrdered {
                        name: set.name.clone(),
                        given,
                        field: field.name.clone(),
                        op: cmp_symbol(other),
                    },
                    op.span.clone(),
                ));
                RExpr::Invalid
            }
        }
    }
}
