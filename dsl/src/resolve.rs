//! Pass 2: names → catalog entries. Probes, fields and `$parameters` are
//! looked up; comparisons are normalised to `field OP value`.
//!
//! This pass never stops at the first problem: an unresolvable piece becomes
//! [`RExpr::Invalid`] (or is left out) and its diagnostic is kept, so `check`
//! can still report type errors in the rest of the program.
use crate::ast::{self, ArithOp, CmpOp, Literal, Operand, Span, Value};
use crate::catalog::{self, FieldDef, ProbeDef};
use crate::diagnostic::{suggest, Code, Diagnostic};
use crate::plan::FieldType;
use crate::recipe::Params;
use std::net::IpAddr;

/// The program with names resolved, and the problems found doing it.
#[derive(Debug)]
pub struct Resolved {
    pub clauses: Vec<RClause>,
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Debug)]
pub struct RClause {
    pub probe: &'static ProbeDef,
    pub filter: Option<RWhere>,
    pub action: RAction,
    pub modifiers: Vec<ast::Modifier>,
    pub span: Span,
}

/// The field of a comparison and the arithmetic applied to it, if any.
type FieldSide<'a> = (&'a ast::Ident, Option<(ArithOp, Span, &'a Operand)>);

/// `FIELD / CONST` or `FIELD * CONST`.
#[derive(Debug, Clone)]
pub struct RScale {
    pub op: ArithOp,
    pub op_span: Span,
    pub by: Literal,
}

#[derive(Debug)]
pub enum RSetItem {
    One(Literal),
    Range(Literal, Literal, Span),
    Cidr(IpAddr, u8, Span),
}

#[derive(Debug)]
pub struct RPrintItem {
    pub field: RField,
    pub scale: Option<RScale>,
    pub alias: Option<ast::Ident>,
    pub span: Span,
}

#[derive(Debug)]
pub struct RWhere {
    pub expr: RExpr,
    pub source: String,
    pub span: Span,
}

/// A field reference, with where it was written.
#[derive(Debug, Clone)]
pub struct RField {
    pub def: &'static FieldDef,
    pub span: Span,
}

#[derive(Debug)]
pub enum RExpr {
    /// `field OP value`, operands swapped (and `op` mirrored) if the value
    /// was written first.
    Compare {
        field: RField,
        /// `FIELD / CONST OP value`: rewritten by `check`.
        scale: Option<Box<RScale>>,
        op: CmpOp,
        op_span: Span,
        value: Literal,
        span: Span,
    },
    /// `field in [ITEM, ...]`.
    In {
        field: RField,
        items: Vec<RSetItem>,
        span: Span,
    },
    /// A field alone as a condition.
    Bare(RField),
    Not(Box<RExpr>),
    And(Box<RExpr>, Box<RExpr>),
    Or(Box<RExpr>, Box<RExpr>),
    /// Something already reported.
    Invalid,
}

#[derive(Debug)]
pub enum RAction {
    Print {
        items: Vec<RPrintItem>,
        span: Span,
    },
    Count {
        by: Vec<RField>,
        span: Span,
    },
    Agg {
        func: ast::Ident,
        field: RField,
        args: Vec<Literal>,
        by: Vec<RField>,
        span: Span,
    },
}

impl RAction {
    pub fn span(&self) -> Span {
        match self {
            RAction::Print { span, .. }
            | RAction::Count { span, .. }
            | RAction::Agg { span, .. } => span.clone(),
        }
    }
}

/// Resolve every name of `program`. `params` are the bound `$parameters`
/// (empty for `-e` programs).
pub fn resolve(program: &ast::Program, params: &Params) -> Resolved {
    let mut r = Resolver {
        params,
        diagnostics: Vec::new(),
    };
    let clauses = program.clauses.iter().filter_map(|c| r.clause(c)).collect();
    Resolved {
        clauses,
        diagnostics: r.diagnostics,
    }
}

struct Resolver<'p> {
    params: &'p Params,
    diagnostics: Vec<Diagnostic>,
}

/// `a < b` is `b > a`.
fn mirror(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        o => o,
    }
}

impl Resolver<'_> {
    fn clause(&mut self, c: &ast::Clause) -> Option<RClause> {
        let Some(probe) = catalog::probe(&c.probe.name) else {
            let names = catalog::PROBES.iter().map(|p| p.name);
            let help = match suggest(&c.probe.name, names) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "probes are {}",
                    catalog::PROBES
                        .iter()
                        .map(|p| format!("`{}`", p.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            self.diagnostics.push(
                Diagnostic::error(
                    Code::UnknownProbe,
                    format!("unknown probe `{}`", c.probe.name),
                    c.probe.span.clone(),
                    "not a probe",
                )
                .with_help(help),
            );
            // Without a probe its fields cannot be judged: skip the clause.
            return None;
        };
        let filter = c.filter.as_ref().map(|w| RWhere {
            expr: self.expr(probe, &w.expr),
            source: w.source.clone(),
            span: w.span.clone(),
        });
        let action = match &c.action {
            ast::Action::Print { items, span } => RAction::Print {
                items: items
                    .iter()
                    .filter_map(|i| {
                        let field = self.field(probe, &i.field, None);
                        let scale = i.scale.as_ref().map(|(op, by)| RScale {
                            op: *op,
                            op_span: by.span.clone(),
                            by: by.clone(),
                        });
                        Some(RPrintItem {
                            field: field?,
                            scale,
                            alias: i.alias.clone(),
                            span: i.span.clone(),
                        })
                    })
                    .collect(),
                span: span.clone(),
            },
            ast::Action::Count { by, span } => RAction::Count {
                by: self.fields(probe, by),
                span: span.clone(),
            },
            ast::Action::Agg {
                func,
                field,
                args,
                by,
                span,
            } => {
                let f = self.field(probe, field, None);
                let by = self.fields(probe, by);
                match f {
                    Some(field) => RAction::Agg {
                        func: func.clone(),
                        field,
                        args: args.clone(),
                        by,
                        span: span.clone(),
                    },
                    // Keep checking the keys: count by them instead.
                    None => RAction::Count {
                        by,
                        span: span.clone(),
                    },
                }
            }
        };
        Some(RClause {
            probe,
            filter,
            action,
            modifiers: c.modifiers.clone(),
            span: c.span.clone(),
        })
    }

    fn fields(&mut self, probe: &'static ProbeDef, names: &[ast::Ident]) -> Vec<RField> {
        names
            .iter()
            .filter_map(|i| self.field(probe, i, None))
            .collect()
    }

    /// Look a field up. `other` is the type on the other side of a
    /// comparison, which sharpens the hint for an unknown name.
    fn field(
        &mut self,
        probe: &'static ProbeDef,
        id: &ast::Ident,
        other: Option<&Value>,
    ) -> Option<RField> {
        if let Some(def) = probe.field(&id.name) {
            return Some(RField {
                def,
                span: id.span.clone(),
            });
        }
        let names = probe.all_fields().map(|f| f.name);
        let mut help = suggest(&id.name, names).map(|s| format!("did you mean `{s}`?"));
        if help.is_none() {
            // A field of another probe is a common confusion.
            if let Some(p) = catalog::PROBES.iter().find(|p| p.field(&id.name).is_some()) {
                help = Some(format!(
                    "`{}` is a field of `{}`, not of `{}`",
                    id.name, p.name, probe.name
                ));
            }
        }
        if help.is_none() && is_positional_arg(&id.name) {
            // bpftrace's `arg0..argN` are a kprobe's raw registers, whose
            // meaning depends on the function's prototype (and on whether it
            // was inlined). tcpq fields are named, typed and unit-checked.
            help = Some(format!(
                "tcpq has no positional arguments: fields have names, types and units; \
                 `tcpq -l {}` lists them",
                probe.name
            ));
        }
        if help.is_none() && matches!(other, Some(Value::Str(_))) {
            help = Some("compare a field with the string, e.g. `comm == \"nginx\"`".into());
        }
        self.diagnostics.push(
            Diagnostic::error(
                Code::UnknownField,
                format!("unknown field `{}` on probe `{}`", id.name, probe.name),
                id.span.clone(),
                format!("not a field of `{}`", probe.name),
            )
            .with_help_opt(help),
        );
        None
    }

    /// A name on the value side of a comparison with `field`: a typo'd
    /// constant, a word meant as a string, or a second field.
    fn unknown_value_name(&mut self, field: &RField, id: &ast::Ident) {
        let (what, candidates): (&str, Vec<&str>) = match field.def.ty {
            FieldType::TcpState => (
                "TCP state",
                catalog::TCP_STATES.iter().map(|(n, _)| *n).collect(),
            ),
            FieldType::Family => (
                "address family",
                catalog::FAMILIES.iter().map(|(n, _)| *n).collect(),
            ),
            FieldType::Comm => {
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::UnknownField,
                        format!(
                            "`{}` is not a field; `{}` compares with a string",
                            id.name, field.def.name
                        ),
                        id.span.clone(),
                        "a name, not a string",
                    )
                    .with_help(format!("quote it: `{} == \"{}\"`", field.def.name, id.name)),
                );
                return;
            }
            _ => {
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::NeedFieldAndValue,
                        format!("`{}` is compared with `{}`, which is not a value", field.def.name, id.name),
                        id.span.clone(),
                        "expected a value here",
                    )
                    .with_help("compare a field with a literal value; comparing two fields is not supported"),
                );
                return;
            }
        };
        let help = match suggest(&id.name, candidates.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("{what}s are {}", candidates.join(", ")),
        };
        self.diagnostics.push(
            Diagnostic::error(
                Code::UnknownConstant,
                format!("unknown {what} `{}`", id.name),
                id.span.clone(),
                format!("not a {what}"),
            )
            .with_help(help),
        );
    }

    /// `$name` → its typed value, keeping the `$name` span.
    fn param(&mut self, id: &ast::Ident) -> Option<Literal> {
        match self.params.get(&id.name) {
            Some(v) => Some(Literal {
                value: v.clone(),
                span: id.span.clone(),
                from_param: Some(id.name.clone()),
            }),
            None => {
                let names = self.params.values.keys().map(String::as_str);
                let help = match suggest(&id.name, names) {
                    Some(s) => format!("did you mean `${s}`?"),
                    None if self.params.values.is_empty() => {
                        "parameters come from a recipe's `# @param NAME: TYPE` header; \
                         `-e` programs have none"
                            .into()
                    }
                    None => format!("declare it: `# @param {}: TYPE  help`", id.name),
                };
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::UndeclaredParam,
                        format!("parameter `${}` is not declared", id.name),
                        id.span.clone(),
                        "undeclared parameter",
                    )
                    .with_help(help),
                );
                None
            }
        }
    }

    fn value(&mut self, o: &Operand) -> Option<Literal> {
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

    fn unsupported_arith(&mut self, span: Span) {
        self.diagnostics.push(
            Diagnostic::error(
                Code::UnsupportedArithmetic,
                "this arithmetic is not supported",
                span,
                "not `FIELD / NUMBER` or `FIELD * NUMBER`",
            )
            .with_help(
                "a condition can compare `FIELD / NUMBER` or `FIELD * NUMBER` with a value, \
                 e.g. `win_bytes / 1024 > 64`; compute the constant yourself otherwise",
            ),
        );
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

    fn expr(&mut self, probe: &'static ProbeDef, e: &ast::Expr) -> RExpr {
        match e {
            ast::Expr::Not { expr, .. } => RExpr::Not(Box::new(self.expr(probe, expr))),
            ast::Expr::And { lhs, rhs, .. } => RExpr::And(
                Box::new(self.expr(probe, lhs)),
                Box::new(self.expr(probe, rhs)),
            ),
            ast::Expr::Or { lhs, rhs, .. } => RExpr::Or(
                Box::new(self.expr(probe, lhs)),
                Box::new(self.expr(probe, rhs)),
            ),
            ast::Expr::Bare(Operand::Field(id)) => match self.field(probe, id, None) {
                Some(f) => RExpr::Bare(f),
                None => RExpr::Invalid,
            },
            ast::Expr::Bare(o) => {
                // Resolve a parameter anyway, to report it if undeclared.
                if self.value(o).is_some() {
                    self.diagnostics.push(
                        Diagnostic::error(
                            Code::NotAPredicate,
                            "a value alone is not a condition",
                            o.span(),
                            "expected a comparison",
                        )
                        .with_help("compare a field with it, e.g. `win == 0`"),
                    );
                }
                RExpr::Invalid
            }
            ast::Expr::Compare { lhs, op, rhs, span } => {
                self.compare(probe, lhs, op, rhs, span.clone())
            }
            ast::Expr::In { lhs, items, span } => {
                let items: Vec<Option<RSetItem>> = items
                    .iter()
                    .map(|i| match i {
                        ast::SetItem::One(o) => self.value(o).map(RSetItem::One),
                        ast::SetItem::Range { lo, hi, span } => {
                            Some(RSetItem::Range(lo.clone(), hi.clone(), span.clone()))
                        }
                        ast::SetItem::Cidr { addr, len, span } => {
                            Some(RSetItem::Cidr(*addr, *len, span.clone()))
                        }
                    })
                    .collect();
                let field = match lhs {
                    Operand::Field(f) => self.field(probe, f, None),
                    Operand::Arith { span, .. } => {
                        self.diagnostics.push(
                            Diagnostic::error(
                                Code::UnsupportedArithmetic,
                                "arithmetic before `in` is not supported",
                                span.clone(),
                                "write the field alone",
                            )
                            .with_help(
                                "scale the set's values instead, e.g. `win_bytes in 64KiB..128KiB`",
                            ),
                        );
                        None
                    }
                    other => {
                        self.value(other);
                        self.diagnostics.push(
                            Diagnostic::error(
                                Code::NeedFieldAndValue,
                                "`in` needs a field on its left",
                                other.span(),
                                "not a field",
                            )
                            .with_help("write e.g. `dport in [80, 443]`"),
                        );
                        None
                    }
                };
                match (field, items.iter().all(Option::is_some)) {
                    (Some(field), true) => RExpr::In {
                        field,
                        items: items.into_iter().flatten().collect(),
                        span: span.clone(),
                    },
                    _ => RExpr::Invalid,
                }
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
                    (Some(def), None) => {
                        let f = RField { def, span: a.span.clone() };
                        self.unknown_value_name(&f, b);
                    }
                    (None, Some(def)) => {
                        let f = RField { def, span: b.span.clone() };
                        self.unknown_value_name(&f, a);
                    }
                    (None, None) => {
                        self.field(probe, a, None);
                        self.field(probe, b, None);
                    }
                    (Some(_), Some(_)) => self.diagnostics.push(
                        Diagnostic::error(
                            Code::NeedFieldAndValue,
                            format!("`{}` and `{}` are both fields", a.name, b.name),
                            span,
                            "two fields compared",
                        )
                        .with_help("compare a field with a literal value; comparing two fields is not supported yet"),
                    ),
                }
                return RExpr::Invalid;
            }
            (a, b) => {
                // Report undeclared parameters first, then the shape.
                let (va, vb) = (self.value(a), self.value(b));
                if va.is_some() && vb.is_some() {
                    self.diagnostics.push(
                        Diagnostic::error(
                            Code::NeedFieldAndValue,
                            "two values compared with each other",
                            span,
                            "no field here",
                        )
                        .with_help("a comparison needs a field on one side, e.g. `win == 0`"),
                    );
                }
                return RExpr::Invalid;
            }
        };
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

/// `arg0`, `arg1`, ... (bpftrace's kprobe registers).
fn is_positional_arg(name: &str) -> bool {
    name.strip_prefix("arg")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}
