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
use crate::recipe::{ParamItem, Params};
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
    /// [`RExpr::Omitted`] when every comparison was left out.
    pub expr: RExpr,
    pub source: String,
    pub span: Span,
    /// Comparisons left out because an optional parameter they use was
    /// not given, as written (`dport == $port`).
    pub omitted: Vec<String>,
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
    /// Left out: it uses an optional parameter that was not given. Never
    /// inside `and`, `or` or `not` (they drop it); only a whole condition
    /// that was left out is this.
    Omitted,
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
        omitted: Vec::new(),
    };
    let clauses = program.clauses.iter().filter_map(|c| r.clause(c)).collect();
    Resolved {
        clauses,
        diagnostics: r.diagnostics,
    }
}

/// Resolve one clause against `probe` whatever its `on` names: how
/// `tcpq sockets` (a catalog entry outside `catalog::PROBES`) gets the
/// language's own name resolution.
pub fn resolve_clause(probe: &'static ProbeDef, clause: &ast::Clause, params: &Params) -> Resolved {
    let mut r = Resolver {
        params,
        diagnostics: Vec::new(),
        omitted: Vec::new(),
    };
    let clauses = r.clause_on(probe, clause).into_iter().collect();
    Resolved {
        clauses,
        diagnostics: r.diagnostics,
    }
}

struct Resolver<'p> {
    params: &'p Params,
    diagnostics: Vec<Diagnostic>,
    /// Comparisons of the current `where` left out (see [`RExpr::Omitted`]).
    omitted: Vec<String>,
}

fn cmp_symbol(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "==",
        CmpOp::Ne => "!=",
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
    }
}

/// An operand as it was written (near enough: literals print in their
/// canonical spelling), for naming a left-out comparison.
fn operand_text(o: &Operand) -> String {
    match o {
        Operand::Field(i) => i.name.clone(),
        Operand::Param(i) => format!("${}", i.name),
        Operand::Literal(l) => l.value.to_string(),
        Operand::Arith { lhs, op, rhs, .. } => {
            format!(
                "{} {} {}",
                operand_text(lhs),
                op.symbol(),
                operand_text(rhs)
            )
        }
    }
}

/// Every `$param` an operand uses.
fn operand_params(o: &Operand) -> Vec<&ast::Ident> {
    match o {
        Operand::Param(i) => vec![i],
        Operand::Arith { lhs, rhs, .. } => {
            let mut v = operand_params(lhs);
            v.extend(operand_params(rhs));
            v
        }
        _ => vec![],
    }
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
        self.clause_on(probe, c)
    }

    /// `c` against `probe`, which need not be in `catalog::PROBES`.
    fn clause_on(&mut self, probe: &'static ProbeDef, c: &ast::Clause) -> Option<RClause> {
        let filter = c.filter.as_ref().map(|w| {
            self.omitted.clear();
            let expr = self.expr(probe, &w.expr);
            RWhere {
                expr,
                source: w.source.clone(),
                span: w.span.clone(),
                omitted: std::mem::take(&mut self.omitted),
            }
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
        let mut help = alias_of(probe, &id.name)
            .or_else(|| suggest(&id.name, names))
            .map(|s| format!("did you mean `{s}`?"));
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
            FieldType::Int(crate::plan::Unit::Errno) => {
                self.unknown_errno(field, id);
                return;
            }
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
            FieldType::Addr => {
                let example = if id.name == "localhost" {
                    format!("`{0} == 127.0.0.1` or `{0} == ::1`", field.def.name)
                } else {
                    format!("`{} == 192.0.2.10`", field.def.name)
                };
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::TypeMismatch,
                        format!(
                            "`{}` is a name; `{}` holds an address",
                            id.name, field.def.name
                        ),
                        id.span.clone(),
                        "a name, not an address",
                    )
                    .with_help(format!(
                        "tcpq compares addresses and never resolves host names: write {example}"
                    )),
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

    /// `err == EPRM`: a name that is no errno (there are too many to list).
    fn unknown_errno(&mut self, field: &RField, id: &ast::Ident) {
        let upper = id.name.to_ascii_uppercase();
        let help = match crate::errno::by_name(&upper) {
            Some(_) => format!("errno names are upper case: `{upper}`"),
            None => match suggest(&upper, crate::errno::names()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "`{}` holds an errno, by name as in the kernel's headers: `EPERM`, \
                     `ENOBUFS`, ... (or NET_XMIT_DROP)",
                    field.def.name
                ),
            },
        };
        self.diagnostics.push(
            Diagnostic::error(
                Code::UnknownConstant,
                format!("unknown errno `{}`", id.name),
                id.span.clone(),
                "not an errno name",
            )
            .with_help(help),
        );
    }

    /// Whether `o` uses an optional parameter that was not given.
    fn uses_absent(&self, o: &Operand) -> bool {
        operand_params(o)
            .iter()
            .any(|i| self.params.is_absent(&i.name))
    }

    /// Leave out a comparison that uses an absent optional parameter,
    /// still reporting an unknown field in it.
    fn omit(
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
                    self.diagnostics.push(
                        Diagnostic::error(
                            Code::NeedFieldAndValue,
                            format!("`{}` is a name, not a value", id.name),
                            id.span.clone(),
                            "not a value",
                        )
                        .with_help(
                            "a set holds values: numbers, quoted strings, addresses, \
                             ranges (`8000..8100`) or prefixes (`10.0.0.0/8`)",
                        ),
                    );
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

    /// A bare name as a constant of the field's kernel enum (`reason ==
    /// NETFILTER_DROP`, `SKB_DROP_REASON_` optional): the value the runtime
    /// binds from BTF.
    fn enum_constant(&mut self, field: &RField, id: &ast::Ident) -> Named {
        let FieldType::Uint(unit) = field.def.ty else {
            return Named::NotAnEnum;
        };
        let Some((enum_name, prefix, names)) = crate::reasons::enum_of(unit) else {
            return Named::NotAnEnum;
        };
        if let Some(short) = crate::reasons::known(unit, &id.name) {
            return Named::Constant(Literal {
                value: Value::Enum(short.to_owned()),
                span: id.span.clone(),
                from_param: None,
            });
        }
        let short = id.name.strip_prefix(prefix).unwrap_or(&id.name);
        let upper = short.to_ascii_uppercase();
        let help = if crate::reasons::known(unit, &upper).is_some() {
            format!("reasons are upper case: `{upper}`")
        } else {
            match suggest(short, names.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "`tcpq -l {}` lists the reasons tcpq knows (`enum {enum_name}` of Linux \
                     6.18); a reason newer than that can be compared by its number",
                    field_probe_name(field)
                ),
            }
        };
        self.diagnostics.push(
            Diagnostic::error(
                Code::UnknownConstant,
                format!("unknown {} `{}`", unit_enum_words(unit), id.name),
                id.span.clone(),
                format!("not in `enum {enum_name}`"),
            )
            .with_help(help),
        );
        Named::Reported
    }

    /// A bare name inside `field in [...]`: a command name without quotes,
    /// a typo'd constant, or a field where a value belongs.
    fn name_in_set(&mut self, field: &RField, id: &ast::Ident, all: &[ast::SetItem]) {
        match field.def.ty {
            FieldType::TcpState | FieldType::Family | FieldType::Addr => {
                self.unknown_value_name(field, id)
            }
            FieldType::Comm => {
                // Show the whole set as it should be written.
                let fixed: Vec<String> = all
                    .iter()
                    .map(|i| match i {
                        ast::SetItem::One(Operand::Field(n)) => format!("\"{}\"", n.name),
                        ast::SetItem::One(Operand::Literal(l)) => l.value.to_string(),
                        ast::SetItem::One(Operand::Param(p)) => format!("${}", p.name),
                        ast::SetItem::One(o) => operand_text(o),
                        ast::SetItem::Range { lo, hi, .. } => format!("{}..{}", lo.value, hi.value),
                        ast::SetItem::Cidr { addr, len, .. } => format!("{addr}/{len}"),
                    })
                    .collect();
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::TypeMismatch,
                        format!(
                            "`{}` is a name, but `{}` holds command names, which are strings",
                            id.name, field.def.name
                        ),
                        id.span.clone(),
                        "a name, not a string",
                    )
                    .with_help(format!(
                        "strings are quoted: \"{}\"; write `{} in [{}]`",
                        id.name,
                        field.def.name,
                        fixed.join(", ")
                    )),
                );
            }
            _ => {
                let what = if field_named(field, &id.name) {
                    format!("`{}` is a field, not a value", id.name)
                } else {
                    format!("`{}` is not a value", id.name)
                };
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::NeedFieldAndValue,
                        what,
                        id.span.clone(),
                        format!("expected {}", catalog::type_words(field.def.ty)),
                    )
                    .with_help(format!(
                        "a set holds values of `{}` ({}), e.g. `{}`",
                        field.def.name,
                        catalog::type_words(field.def.ty),
                        set_example(field)
                    )),
                );
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
            let fix = match op.op {
                CmpOp::Ne => format!("not {field} in {prefix}"),
                _ => format!("{field} in {prefix}"),
            };
            self.diagnostics.push(
                Diagnostic::error(
                    Code::UnsupportedOperator,
                    format!(
                        "`{prefix}` is an address prefix; `{}` compares one address",
                        cmp_symbol(op.op)
                    ),
                    span,
                    format!("a prefix compared with `{}`", cmp_symbol(op.op)),
                )
                .with_help(format!("test membership with `in`: `{fix}`")),
            );
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
                        let f = RField { def, span: fid.span.clone() };
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
                let ok = |v: &Option<Literal>, o: &Operand| v.is_some() || self.uses_absent(o);
                if ok(&va, a) && ok(&vb, b) {
                    let param = operand_params(a)
                        .into_iter()
                        .chain(operand_params(b))
                        .next()
                        .map(|i| i.name.clone());
                    let help = match param {
                        // `$port == 0 or dport == $port`: the way to say
                        // "filter on it only when it is given".
                        Some(p) => format!(
                            "a comparison needs a field on one side; to filter only when \
                             `--param {p}` is given, declare it optional (`# @param {p}: TYPE?`) \
                             and write only the comparison with the field (`FIELD == ${p}`): \
                             without `--param {p}`, every comparison that uses `${p}` is left out"
                        ),
                        None => "a comparison needs a field on one side, e.g. `win == 0`".into(),
                    };
                    self.diagnostics.push(
                        Diagnostic::error(
                            Code::NeedFieldAndValue,
                            "two values compared with each other",
                            span,
                            "no field here",
                        )
                        .with_help(help),
                    );
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

/// Parameters given as sets (see [`crate::recipe::ParamItem`]).
impl Resolver<'_> {
    /// The first `$param` in `o` that was given as a set.
    fn set_param_of<'a>(&self, o: &'a Operand) -> Option<&'a ast::Ident> {
        operand_params(o)
            .into_iter()
            .find(|i| self.params.set(&i.name).is_some())
    }

    fn is_set_item(&self, i: &ast::SetItem) -> bool {
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
    fn in_with_sets(
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
    fn set_not_a_field(&mut self, lhs: &Operand) -> RExpr {
        self.diagnostics.push(
            Diagnostic::error(
                Code::NeedFieldAndValue,
                "`in` needs a field on its left",
                lhs.span(),
                "a set parameter, not a field",
            )
            .with_help("write e.g. `dport in $ports` or `dport == $ports`"),
        );
        RExpr::Invalid
    }

    #[inline(never)]
    fn set_alone(&mut self, o: &Operand) -> RExpr {
        self.diagnostics.push(
            Diagnostic::error(
                Code::NotAPredicate,
                "a value alone is not a condition",
                o.span(),
                "expected a comparison",
            )
            .with_help("compare a field with it, e.g. `dport == $port`"),
        );
        RExpr::Invalid
    }

    /// `FIELD == $set` (either way round) is `FIELD in [items]`, `!=` is
    /// `not FIELD in [items]`; other operators, arithmetic and a set
    /// compared with a value are errors pointing at the parameter.
    #[inline(never)]
    fn compare_with_set(
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
            let (code, message, help) = match (lhs, rhs) {
                (Operand::Arith { .. }, _) | (_, Operand::Arith { .. }) => (
                    Code::UnsupportedArithmetic,
                    format!("`${}` is a set (`--param {}={given}`): arithmetic with a set is not supported", set.name, set.name),
                    "compare the field itself with the set, e.g. `dport == $port`".to_string(),
                ),
                _ => (
                    Code::NeedFieldAndValue,
                    format!("`${}` is a set (`--param {}={given}`) compared with a value", set.name, set.name),
                    "a set is tested against a field: `FIELD == $p` (the field is one of the items) or `FIELD != $p`".to_string(),
                ),
            };
            self.diagnostics.push(
                Diagnostic::error(code, message, set.span.clone(), "a set parameter")
                    .with_help(help),
            );
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
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::UnsupportedOperator,
                        format!(
                            "`${}` is a set (`--param {}={given}`); `{}` does not apply to a set",
                            set.name,
                            set.name,
                            cmp_symbol(other)
                        ),
                        op.span.clone(),
                        "only `==` and `!=` with a set",
                    )
                    .with_help(format!(
                        "`{0} == ${1}` keeps events whose `{0}` is one of the items, `{0} != ${1}` \
                         those whose `{0}` is none of them; for a bound, pass one value (or a \
                         range `A..B`)",
                        field.name, set.name
                    )),
                );
                RExpr::Invalid
            }
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

/// What people from other tools call a field: BCC's and ss's column
/// names, bpftrace's builtins. Only suggested when the probe has the field.
const ALIASES: &[(&str, &str)] = &[
    ("cmd", "comm"),
    ("command", "comm"),
    ("process", "comm"),
    ("proc", "comm"),
    ("task", "task_comm"),
    ("lport", "sport"),
    ("local_port", "sport"),
    ("src_port", "sport"),
    ("rport", "dport"),
    ("remote_port", "dport"),
    ("dst_port", "dport"),
    ("port", "dport"),
    ("laddr", "saddr"),
    ("src", "saddr"),
    ("local", "saddr"),
    ("raddr", "daddr"),
    ("dst", "daddr"),
    ("remote", "daddr"),
    ("rtt", "srtt"),
    ("cwnd", "snd_cwnd"),
    ("window", "rcv_wnd"),
    ("wnd", "rcv_wnd"),
    ("wscale", "rcv_wscale"),
    ("tgid", "pid"),
    ("tid", "task_pid"),
    ("af", "family"),
    ("retrans", "total_retrans"),
    ("retransmits", "total_retrans"),
    ("tx_bytes", "bytes_acked"),
    ("rx_bytes", "bytes_received"),
    ("newstate", "state"),
];

/// The probe's field another tool calls `name`, if any.
pub(crate) fn alias_of(probe: &ProbeDef, name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    ALIASES
        .iter()
        .find(|(a, _)| *a == lower)
        .and_then(|(_, f)| probe.field(f))
        .map(|f| f.name)
        .filter(|f| *f != name)
}

/// What a bare name beside a field turned out to be.
enum Named {
    /// A constant of the field's kernel enum.
    Constant(Literal),
    /// The field takes enum constants, and this is none: reported.
    Reported,
    /// The field takes no enum constants.
    NotAnEnum,
}

fn unit_enum_words(u: crate::plan::Unit) -> &'static str {
    match u {
        crate::plan::Unit::RstReason => "reset reason",
        _ => "drop reason",
    }
}

/// The probe a field belongs to, for help lines.
fn field_probe_name(f: &RField) -> &'static str {
    catalog::PROBES
        .iter()
        .find(|p| p.fields.iter().any(|d| std::ptr::eq(d, f.def)))
        .map_or("PROBE", |p| p.name)
}

/// Whether `name` is a field of the probe `f` belongs to.
fn field_named(f: &RField, name: &str) -> bool {
    catalog::PROBES
        .iter()
        .filter(|p| p.field(f.def.name).is_some_and(|d| std::ptr::eq(d, f.def)))
        .any(|p| p.field(name).is_some())
}

/// A well-formed set for the field, for help lines.
fn set_example(f: &RField) -> String {
    let n = f.def.name;
    match f.def.ty {
        FieldType::Port => format!("{n} in [80, 443, 8000..8100]"),
        FieldType::Addr => format!("{n} in [10.0.0.1, 192.168.0.0/16, ::1]"),
        FieldType::Bool => format!("{n} in [true]"),
        FieldType::Comm => format!("{n} in [\"nginx\", \"envoy\"]"),
        FieldType::TcpState => format!("{n} in [ESTABLISHED, CLOSE_WAIT]"),
        FieldType::Family => format!("{n} in [AF_INET, AF_INET6]"),
        FieldType::Uint(_) | FieldType::Int(_) => format!("{n} in [0, 1, 10..20]"),
        // Print only (`check` says so); no set of it is well-formed.
        FieldType::Time => format!("print {n}"),
    }
}

/// `arg0`, `arg1`, ... (bpftrace's kprobe registers).
fn is_positional_arg(name: &str) -> bool {
    name.strip_prefix("arg")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}
