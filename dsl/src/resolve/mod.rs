//! Pass 2: names → catalog entries. Probes, fields and `$parameters` are
//! looked up; comparisons are normalised to `field OP value`.
//!
//! This pass never stops at the first problem: an unresolvable piece becomes
//! [`RExpr::Invalid`] (or is left out) and its diagnostic is kept, so `check`
//! can still report type errors in the rest of the program.
//!
//! One concern per file, all methods of one `Resolver`:
//! - `clause.rs`: a clause's probe and its action's fields.
//! - `expr.rs`: the `where` clause, normalised to `field OP value`.
//! - `params.rs`: `$parameters`: values, optional ones left out, sets.
//! - `names.rs`: bare names beside a field (constants, errnos), and what
//!   to say about a name that is none.
//!
//! This file holds what the pass returns and its entry points.
use crate::ast::{self, ArithOp, CmpOp, Literal, Operand, Span};
use crate::catalog::{FieldDef, ProbeDef};
use crate::diagnostic::Diagnostic;
use crate::recipe::Params;
use std::net::IpAddr;

mod clause;
mod expr;
mod names;
mod params;

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
    /// `as NAME` after an aggregation, as written.
    pub metric: Option<ast::Ident>,
    pub span: Span,
    /// The probe's name after `on`.
    pub probe_span: Span,
    /// Where the clause first names each field it uses (for a diagnostic
    /// the runtime finds, like a field this kernel lacks).
    pub field_spans: Vec<(&'static str, Span)>,
}

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
        field_spans: Vec::new(),
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
        field_spans: Vec::new(),
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
    /// Where the current clause first names each field it uses.
    field_spans: Vec<(&'static str, Span)>,
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
