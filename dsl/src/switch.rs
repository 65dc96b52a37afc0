//! `bool` recipe parameters as clause switches, before `resolve`.
//!
//! A `bool` parameter alone in a `where` condition (`where $bytes and ...`,
//! `where not $bytes and ...`) is a constant: the condition is folded
//! (`true and X` is `X`, `false and X` is false, `true or X` is true,
//! `false or X` is `X`). A clause whose condition folds to false is left
//! out of the program: it attaches nothing, and the plan's `left_out` says
//! why. One folded to true keeps every event its other comparisons keep.
//! An optional `bool` that is not given is left out like any comparison
//! with an absent parameter. This is how one recipe offers two sets of
//! columns (`tcplife`: BCC's KB and ms, or bytes and microseconds).
//!
//! Only the value decides; nothing is pasted into the program. A `bool`
//! compared with a field (`wscale_ok == $flag`) is an ordinary comparison
//! and is not touched here.
use crate::ast::{Clause, Expr, Operand, Program, Value, Where};
use crate::diagnostic::{Diagnostic, Problem};
use crate::recipe::{ParamDecl, ParamType, Params};

/// A condition after folding the switches. (Boxed: `fold` recurses once
/// per nesting level, and its frame must stay small.)
enum Folded {
    Keep(Box<Expr>),
    Const(bool),
    /// Only an absent optional switch was here: as if not written.
    Gone,
}

/// The program with every switch left out as if not written (so that a
/// clause or comparison a switch turns off is still resolved and checked:
/// `compile` reports its errors whatever the switches' values).
pub fn neutral(program: &Program, params: &Params, decls: &[ParamDecl]) -> Program {
    let clauses = program
        .clauses
        .iter()
        .map(|c| {
            let Some(w) = &c.filter else {
                return c.clone();
            };
            let mut seen = Vec::new();
            let folded = fold(&w.expr, params, decls, &mut seen, true);
            let filter = match folded {
                Folded::Keep(expr) => Some(Where {
                    expr: *expr,
                    source: w.source.clone(),
                    span: w.span.clone(),
                }),
                _ => None,
            };
            Clause {
                filter,
                ..c.clone()
            }
        })
        .collect();
    Program { clauses }
}

/// Whether any clause has a switch (most programs have none: they skip
/// this pass).
pub fn any(program: &Program, params: &Params, decls: &[ParamDecl]) -> bool {
    fn has(e: &Expr, params: &Params, decls: &[ParamDecl]) -> bool {
        match e {
            Expr::Bare(o) => switch(o, params, decls).is_some(),
            Expr::Not { expr, .. } => has(expr, params, decls),
            Expr::And { lhs, rhs, .. } | Expr::Or { lhs, rhs, .. } => {
                has(lhs, params, decls) || has(rhs, params, decls)
            }
            Expr::Compare { .. } | Expr::In { .. } => false,
        }
    }
    program
        .clauses
        .iter()
        .filter_map(|c| c.filter.as_ref())
        .any(|w| has(&w.expr, params, decls))
}

/// The program with its switches folded, the clauses left out (in words,
/// for `--explain`), and an error when no clause is left.
pub fn apply(
    program: Program,
    params: &Params,
    decls: &[ParamDecl],
) -> (Program, Vec<String>, Vec<Diagnostic>) {
    let mut left_out = Vec::new();
    let mut clauses = Vec::with_capacity(program.clauses.len());
    let total = program.clauses.len();
    let mut first_switch = None;
    for (n, c) in program.clauses.into_iter().enumerate() {
        let Some(w) = c.filter.as_ref() else {
            clauses.push(c);
            continue;
        };
        let mut switches = Vec::new();
        let folded = fold(&w.expr, params, decls, &mut switches, false);
        if switches.is_empty() {
            clauses.push(c);
            continue;
        }
        first_switch.get_or_insert(w.span.clone());
        match folded {
            Folded::Const(false) => left_out.push(format!(
                "clause {} (`on {}`): `where {}` is false with {}",
                n + 1,
                c.probe.name,
                w.source,
                switches.join(", ")
            )),
            Folded::Const(true) | Folded::Gone => clauses.push(Clause { filter: None, ..c }),
            Folded::Keep(expr) => {
                let filter = Some(Where {
                    expr: *expr,
                    source: w.source.clone(),
                    span: w.span.clone(),
                });
                clauses.push(Clause { filter, ..c });
            }
        }
    }
    let mut errors = Vec::new();
    if clauses.is_empty() && total > 0 {
        let span = first_switch.unwrap_or(0..0);
        errors.push(Diagnostic::new(
            Problem::AllSwitchedOff {
                left_out: left_out.clone(),
            },
            span,
        ));
    }
    (Program { clauses }, left_out, errors)
}

/// The value of a switch written alone: `Some(Some(b))` a given `bool`,
/// `Some(None)` an optional `bool` not given, `None` not a switch.
fn switch(o: &Operand, params: &Params, decls: &[ParamDecl]) -> Option<Option<bool>> {
    let Operand::Param(id) = o else {
        return None;
    };
    match params.get(&id.name) {
        Some(Value::Bool(b)) => Some(Some(*b)),
        Some(_) => None,
        None if params.is_absent(&id.name)
            && decls
                .iter()
                .any(|d| d.name == id.name && d.ty == ParamType::Bool) =>
        {
            Some(None)
        }
        None => None,
    }
}

/// Fold the switches of `e`; `neutral`: every switch counts as not given.
fn fold(
    e: &Expr,
    params: &Params,
    decls: &[ParamDecl],
    seen: &mut Vec<String>,
    neutral: bool,
) -> Folded {
    match e {
        Expr::Bare(o) => match switch(o, params, decls) {
            Some(v) => {
                let Operand::Param(id) = o else {
                    unreachable!("a switch is a parameter")
                };
                seen.push(match v {
                    Some(b) => format!("`${}` {b}", id.name),
                    None => format!("`${}` not given", id.name),
                });
                if neutral {
                    Folded::Gone
                } else {
                    v.map_or(Folded::Gone, Folded::Const)
                }
            }
            None => Folded::Keep(Box::new(e.clone())),
        },
        Expr::Not { expr, span } => match fold(expr, params, decls, seen, neutral) {
            Folded::Const(b) => Folded::Const(!b),
            Folded::Gone => Folded::Gone,
            Folded::Keep(x) => Folded::Keep(Box::new(Expr::Not {
                expr: x,
                span: span.clone(),
            })),
        },
        Expr::And { lhs, rhs, span } => {
            match (
                fold(lhs, params, decls, seen, neutral),
                fold(rhs, params, decls, seen, neutral),
            ) {
                (Folded::Const(false), _) | (_, Folded::Const(false)) => Folded::Const(false),
                (Folded::Const(true), x) | (x, Folded::Const(true)) => x,
                (Folded::Gone, x) | (x, Folded::Gone) => x,
                (Folded::Keep(a), Folded::Keep(b)) => Folded::Keep(Box::new(Expr::And {
                    lhs: a,
                    rhs: b,
                    span: span.clone(),
                })),
            }
        }
        Expr::Or { lhs, rhs, span } => {
            match (
                fold(lhs, params, decls, seen, neutral),
                fold(rhs, params, decls, seen, neutral),
            ) {
                (Folded::Const(true), _) | (_, Folded::Const(true)) => Folded::Const(true),
                (Folded::Const(false), x) | (x, Folded::Const(false)) => x,
                (Folded::Gone, x) | (x, Folded::Gone) => x,
                (Folded::Keep(a), Folded::Keep(b)) => Folded::Keep(Box::new(Expr::Or {
                    lhs: a,
                    rhs: b,
                    span: span.clone(),
                })),
            }
        }
        Expr::Compare { .. } | Expr::In { .. } => Folded::Keep(Box::new(e.clone())),
    }
}
