//! Pass 3: types, units and limits. Every comparison is checked against its
//! field's type and turned into a [`Test`] on record slots with the value
//! already encoded the way the templates store it.
//!
//! One concern per file, all methods of one `Checker` that collects
//! every diagnostic:
//! - `action.rs`: `print`, `count` and aggregations, and their keys.
//! - `output.rs`: the modifiers `top`, `every` and `limit`.
//! - `condition.rs`: the `where` clause's shape, down to comparisons.
//! - `encode.rs`: one comparison's value, per field type.
//! - `units.rs`: literals with units as plain numbers.
//! - `duration.rs`: a duration (`every DUR`, and the command line's
//!   `--duration DUR` through [`parse_duration`](duration::parse_duration)).
//! - `words.rs`: the `where` clause in plain words.
//!
//! This file holds what the pass returns, the program-wide limits, and
//! [`check`], which runs the others over each clause.
use crate::ast::{CmpOp, Span};
use crate::catalog::ProbeDef;
use crate::diagnostic::{Diagnostic, Problem};
use crate::plan::{Action, FieldSpan, Insn, LoadSpec, Output};
use crate::resolve::{RExpr, Resolved};

mod action;
mod condition;
pub mod duration;
mod encode;
mod output;
mod units;
mod words;

use words::in_words;

/// Most clauses in one program (each loads and attaches its own template,
/// about 10 ms of verifier time each).
pub const MAX_CLAUSES: usize = 16;
/// Most items in one `in [...]` set.
pub const MAX_SET_ITEMS: usize = 16;
/// Most buckets of one `lhist` (below MIN and at or above MAX included).
pub const MAX_LHIST_BUCKETS: u64 = 1024;
/// Shortest `every` interval, in milliseconds.
pub const MIN_EVERY_MS: u64 = 10;

/// A checked program: every clause is valid and within the ABI's limits.
#[derive(Debug, Clone)]
pub struct Checked {
    pub clauses: Vec<CClause>,
}

#[derive(Debug, Clone)]
pub struct CClause {
    pub probe: &'static ProbeDef,
    /// The `where` clause as written.
    pub where_source: Option<String>,
    /// The `where` clause in plain words (values substituted).
    pub where_words: Option<String>,
    /// Comparisons left out: they use an optional parameter not given.
    pub where_omitted: Vec<String>,
    /// The `where` clause as checked (None: none written, or left out).
    pub filter: Option<Cond>,
    /// The whole filter as the template runs it: the probe's own condition
    /// (a view's, `tcp_connect`) first, then the `where` clause. Compiled
    /// here, where its length is checked (the one place it is).
    pub compiled: crate::filter::Compiled,
    /// The socket fields the template loads for this clause (those its
    /// filter and its columns read), in slot order; at most `MAX_LOADS`.
    pub loads: Vec<LoadSpec>,
    pub action: Action,
    pub output: Output,
    /// The probe's name after `on`.
    pub probe_span: (usize, usize),
    /// Where the clause first names each field (from `resolve`).
    pub field_spans: Vec<FieldSpan>,
    /// `as NAME`, checked against Prometheus's rules, and where it is.
    pub metric: Option<(String, (usize, usize))>,
    /// Where the action is written (`print ...`, `count by ...`).
    pub action_span: (usize, usize),
    /// Each modifier (`top`, `every`, `limit`) and where it is written.
    pub modifier_spans: Vec<(&'static str, (usize, usize))>,
}

/// A boolean condition over record slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    Test(Test),
    Not(Box<Cond>),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
}

/// `(vals[slot] & mask) OP value` over one or more slots. With several
/// slots (addresses, `comm`) `op` is `==` (all slots equal) or `!=` (any
/// slot differs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Test {
    pub slots: Vec<(u8, u64)>,
    pub op: CmpOp,
    pub signed: bool,
    pub mask: u64,
    /// The value is a kernel enum constant, bound by the runtime (one
    /// slot only; its value here is 0).
    pub bind: Option<crate::plan::EnumBind>,
}

impl Cond {
    /// Filter instructions this condition compiles to: one per slot test.
    pub fn insn_count(&self) -> usize {
        match self {
            Cond::Test(t) => t.slots.len(),
            Cond::Not(c) => c.insn_count(),
            Cond::And(a, b) | Cond::Or(a, b) => a.insn_count() + b.insn_count(),
        }
    }
}

/// Check a resolved program. Returns every diagnostic of `resolve` and of
/// this pass together.
pub fn check(resolved: &Resolved) -> Result<Checked, Vec<Diagnostic>> {
    let mut c = Checker {
        diagnostics: resolved.diagnostics.clone(),
    };
    let mut clauses = Vec::new();
    for rc in &resolved.clauses {
        let filter = rc.filter.as_ref().and_then(|w| {
            let cond = c.expr(&w.expr)?;
            Some((cond, in_words(&w.expr)))
        });
        // The probe's own condition, then the clause's, as instructions;
        // too long a filter is refused here, pointing at `where`.
        let whole = with_implicit(rc.probe, filter.as_ref().map(|(f, _)| f.clone()));
        let compiled = match crate::filter::compile(whole.as_ref()) {
            Ok(compiled) => compiled,
            Err(crate::filter::CompileError::TooLong(n)) => {
                // Point at `where`: the whole condition can be very long.
                let at = rc.filter.as_ref().map_or(rc.span.start, |w| w.span.start);
                c.diagnostics
                    .push(filter_too_long(n, at..at + "where".len()));
                Default::default()
            }
        };
        let action = c.action(&rc.action);
        let output = c.modifiers(&rc.modifiers, &rc.action);
        let metric = rc.metric.as_ref().and_then(|m| c.metric_name(m));
        let loads = loads_for(rc.probe, &compiled.insns, &action);
        if loads.len() > tcpq_abi::MAX_LOADS {
            c.diagnostics.push(Diagnostic::new(
                Problem::TooManyFields {
                    fields: loads.len(),
                    max: tcpq_abi::MAX_LOADS,
                },
                rc.action.span(),
            ));
        }
        let (filter, where_words) = match filter {
            Some((f, w)) => (Some(f), Some(w)),
            None => (None, None),
        };
        clauses.push(CClause {
            probe: rc.probe,
            where_source: rc.filter.as_ref().map(|w| w.source.clone()),
            where_words,
            where_omitted: rc
                .filter
                .as_ref()
                .map(|w| w.omitted.clone())
                .unwrap_or_default(),
            filter,
            compiled,
            loads,
            action,
            output,
            probe_span: (rc.probe_span.start, rc.probe_span.end),
            field_spans: rc
                .field_spans
                .iter()
                .map(|(f, s)| FieldSpan {
                    field: (*f).to_owned(),
                    span: (s.start, s.end),
                })
                .collect(),
            metric,
            action_span: {
                let s = rc.action.span();
                (s.start, s.end)
            },
            modifier_spans: rc
                .modifiers
                .iter()
                .map(|m| (m.kind.word(), (m.span.start, m.span.end)))
                .collect(),
        });
    }
    // Fail closed: a program is accepted only if every `where` that was
    // not left out (an optional parameter not given) compiled. A condition
    // dropped without a diagnostic would run as "every event".
    if c.diagnostics.is_empty() {
        for (rc, cc) in resolved.clauses.iter().zip(&clauses) {
            if let Some(w) = &rc.filter {
                if !matches!(w.expr, RExpr::Omitted) && cc.filter.is_none() {
                    c.diagnostics.push(dropped_filter(w.span.clone()));
                }
            }
        }
    }
    if resolved.clauses.len() > MAX_CLAUSES {
        let extra = &resolved.clauses[MAX_CLAUSES];
        c.diagnostics.push(Diagnostic::new(
            Problem::TooManyClauses {
                clauses: resolved.clauses.len(),
                max: MAX_CLAUSES,
            },
            extra.span.start..extra.span.start + 2,
        ));
    }
    if c.diagnostics.is_empty() {
        Ok(Checked { clauses })
    } else {
        Err(c.diagnostics)
    }
}

/// The loads the template must do for a clause: one per loaded field
/// that the filter or the output uses, in slot order.
fn loads_for(probe: &ProbeDef, filter: &[Insn], action: &Action) -> Vec<LoadSpec> {
    let mut slots: Vec<u8> = filter.iter().map(|i| i.slot).collect();
    slots.extend(action.columns().flat_map(|c| c.slots.iter().copied()));
    slots.sort_unstable();
    slots.dedup();
    slots
        .into_iter()
        .filter_map(|s| probe.field_at_slot(s))
        .filter_map(|f| f.load_spec())
        .collect()
}

/// A view's fixed condition before the clause's own: `tcp_connect where
/// X` is `tcp_state where oldstate == SYN_SENT and newstate == ESTABLISHED
/// and X`.
fn with_implicit(probe: &ProbeDef, filter: Option<Cond>) -> Option<Cond> {
    probe
        .implicit
        .iter()
        .rev()
        .map(|&(slot, value, equal)| {
            Cond::Test(Test {
                slots: vec![(slot, value)],
                op: if equal {
                    crate::plan::CmpOp::Eq
                } else {
                    crate::plan::CmpOp::Ne
                },
                signed: false,
                mask: u64::MAX,
                bind: None,
            })
        })
        .fold(filter, |acc, t| match acc {
            None => Some(t),
            Some(rest) => Some(Cond::And(Box::new(t), Box::new(rest))),
        })
}

/// The internal error for a `where` clause that compiled to nothing.
fn dropped_filter(span: Span) -> Diagnostic {
    Diagnostic::new(Problem::FilterLost, span)
}

pub(crate) fn filter_too_long(n: usize, span: Span) -> Diagnostic {
    Diagnostic::new(
        Problem::FilterTooLong {
            insns: n,
            max: tcpq_abi::MAX_INSNS,
        },
        span,
    )
}

/// The pass's state: every diagnostic found so far (the resolver's
/// first). Its methods live in the files listed above, one concern each.
struct Checker {
    diagnostics: Vec<Diagnostic>,
}
