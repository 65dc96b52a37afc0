//! Conditions the command line adds to every clause: `-p PID` is `and pid
//! == PID`, `-4` is `and family == AF_INET`, `-c CMD` is `and cgroup ==
//! ID` (the command's own cgroup). They are written into the syntax tree
//! before `resolve`, so they are resolved, checked and planned exactly
//! like a condition in the program. A clause whose probe lacks the field is
//! an error naming the flag, never a clause left unfiltered.
use crate::ast::Value;
use crate::ast::{Clause, CmpOp, Expr, Ident, Literal, Op, Operand, Program, SetItem, Span, Where};
use crate::catalog;
use crate::diagnostic::{Diagnostic, Problem};

/// `FIELD == VALUE` (or `FIELD in [VALUES]`) for every clause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restriction {
    /// The flag as given, for messages and `--explain`: `-p 4242`, `-4`.
    pub flag: String,
    /// The field it tests.
    pub field: &'static str,
    /// The field equals one of these (at least one).
    pub values: Vec<Value>,
}

impl Restriction {
    /// The condition as the language writes it.
    pub fn source(&self) -> String {
        match &self.values[..] {
            [v] => format!("{} == {v}", self.field),
            vs => format!(
                "{} in [{}]",
                self.field,
                vs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    fn expr(&self, span: &Span) -> Expr {
        let field = Operand::Field(Ident {
            name: self.field.to_string(),
            span: span.clone(),
        });
        let lit = |v: &Value| Literal {
            value: v.clone(),
            span: span.clone(),
            from_param: None,
        };
        match &self.values[..] {
            [v] => Expr::Compare {
                lhs: field,
                op: Op {
                    op: CmpOp::Eq,
                    span: span.clone(),
                },
                rhs: Operand::Literal(lit(v)),
                span: span.clone(),
            },
            vs => Expr::In {
                lhs: field,
                items: vs
                    .iter()
                    .map(|v| SetItem::One(Operand::Literal(lit(v))))
                    .collect(),
                span: span.clone(),
            },
        }
    }
}

/// AND every restriction into every clause's condition. The added nodes
/// carry the span of the clause's probe name, so anything `check` says
/// about them points at the clause they were added to.
pub fn apply(program: &mut Program, restrictions: &[Restriction]) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    if restrictions.is_empty() {
        return errors;
    }
    for c in &mut program.clauses {
        // An unknown probe is reported by `resolve`.
        let Some(probe) = catalog::probe(&c.probe.name) else {
            continue;
        };
        let mut added: Vec<&Restriction> = Vec::new();
        for r in restrictions {
            if probe.field(r.field).is_some() {
                added.push(r);
                continue;
            }
            errors.push(Diagnostic::new(
                Problem::RestrictionField {
                    flag: r.flag.clone(),
                    field: r.field,
                    probe: probe.name,
                },
                c.probe.span.clone(),
            ));
        }
        if added.is_empty() {
            continue;
        }
        restrict_clause(c, &added);
    }
    errors
}

fn restrict_clause(c: &mut Clause, added: &[&Restriction]) {
    let span = c.probe.span.clone();
    let words: Vec<String> = added.iter().map(|r| r.source()).collect();
    let flags: Vec<&str> = added.iter().map(|r| r.flag.as_str()).collect();
    let mut extra = added.iter().map(|r| r.expr(&span));
    let first = extra.next().expect("at least one restriction");
    let all = extra.fold(first, |acc, e| Expr::And {
        lhs: Box::new(acc),
        rhs: Box::new(e),
        span: span.clone(),
    });
    let note = format!("  # {}", flags.join(" "));
    c.filter = Some(match c.filter.take() {
        None => Where {
            expr: all,
            source: format!("{}{note}", words.join(" and ")),
            span,
        },
        Some(w) => Where {
            source: format!("({}) and {}{note}", w.source, words.join(" and ")),
            expr: Expr::And {
                lhs: Box::new(w.expr),
                rhs: Box::new(all),
                span: w.span.clone(),
            },
            span: w.span,
        },
    });
}
