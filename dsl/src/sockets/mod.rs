//! `tcpq sockets [where EXPR] [print FIELD, ...]`: the TCP sockets that
//! exist now, like `ss -ti`, in the same language as the probes.
//!
//! [`SOCKETS`] is a catalog entry outside [`crate::catalog::PROBES`] (no template,
//! no strategy: the runtime fills its records from sock_diag netlink). Its
//! fields use the probes' names, types, units and, where a probe has the
//! field, the same record slot; a condition compiles through the same
//! `resolve` and `check` passes into the same filter instructions, which
//! the runtime runs with [`crate::filter::run`] over each socket's slots.
//! So `where rcv_wscale == 0` means on a socket what it means on a probe.
//!
//! What is new here is only what a listing has and an event does not: a
//! socket may lack a field (a TIME_WAIT socket has no `tcp_info`); see
//! [`SocketsQuery::filter_slots`].

//!
//! This file compiles a query (`where`, `print`) over that entry;
//! `fields.rs` is the entry itself: its fields, their slots and the
//! default columns.
use crate::ast::{self, Ident, PrintItem};
use crate::catalog::ProbeDef;
use crate::diagnostic::{Diagnostic, Problem};
use crate::plan::{Action, Column, Insn};
use crate::recipe::Params;

mod fields;

pub use fields::{DEFAULT_COLUMNS, SOCKETS, SOCKETS_FIELDS};

/// A compiled `tcpq sockets` query: what to test and what to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketsQuery {
    /// The condition, compiled exactly as a probe's `where`: run it with
    /// [`crate::filter::run`] over a socket's slots. Empty: every socket.
    pub filter: Vec<Insn>,
    /// The slots the filter reads (bit `i` for slot `i`). A socket lacking
    /// any of them is not listed: a condition on a value the kernel did not
    /// report for that socket is neither true nor false, and reading it as
    /// 0 (what a probe's record holds for a value it could not read) would
    /// list every TIME_WAIT socket under `where wscale_ok == false`.
    pub filter_slots: u64,
    /// The fields the filter reads, in first-use order.
    pub filter_fields: Vec<&'static str>,
    /// Output columns, in order.
    pub columns: Vec<Column>,
    /// True when no `print` was written: the columns are
    /// [`DEFAULT_COLUMNS`] (a column this kernel cannot fill may then be
    /// left out, where one the user asked for is an error).
    pub default_columns: bool,
    /// The `where` clause as written.
    pub where_source: Option<String>,
}

/// Compile what follows `tcpq sockets` (`""`, `where ...`, `print ...`,
/// `where ... print ...`) with the language's own passes against
/// [`SOCKETS`]. Every problem is returned, sorted by position.
pub fn compile_sockets(source: &str) -> Result<SocketsQuery, Vec<Diagnostic>> {
    let (mut clause, printed) = crate::parse::parse_sockets(source)?;
    let mut errors = Vec::new();
    if !matches!(clause.action, ast::Action::Print { .. }) {
        let span = match &clause.action {
            ast::Action::Count { span, .. } | ast::Action::Agg { span, .. } => span.clone(),
            ast::Action::Print { span, .. } => span.clone(),
        };
        errors.push(Diagnostic::new(Problem::SocketsAggregate, span));
    }
    for m in &clause.modifiers {
        errors.push(Diagnostic::new(Problem::SocketsModifier, m.span.clone()));
    }
    clause.modifiers.clear();
    if !printed || !errors.is_empty() {
        // The default columns, or something to go on checking the
        // `where` with after an aggregation was reported.
        let at = source.trim_end().len();
        clause.action = ast::Action::Print {
            items: DEFAULT_COLUMNS
                .iter()
                .map(|name| PrintItem {
                    field: Ident {
                        name: (*name).to_owned(),
                        span: at..at,
                    },
                    scale: None,
                    alias: None,
                    span: at..at,
                })
                .collect(),
            span: at..at,
        };
    }
    let resolved = crate::resolve::resolve_clause(&SOCKETS, &clause, &Params::default());
    let checked = match crate::check(&resolved) {
        Ok(c) => c,
        Err(e) => {
            errors.extend(e.into_iter().map(in_sockets_words));
            return Err(sorted(errors));
        }
    };
    if !errors.is_empty() {
        return Err(sorted(errors));
    }
    let Some(c) = checked.clauses.into_iter().next() else {
        return Err(vec![Diagnostic::unlocated_problem(
            Problem::SocketsNoClause,
        )]);
    };
    let compiled = crate::filter::compile(c.filter.as_ref()).map_err(|_| {
        vec![crate::check::filter_too_long(
            c.filter.as_ref().map_or(0, |f| f.insn_count()),
            0..0,
        )]
    })?;
    // No socket field takes a kernel enum constant; refuse rather than
    // compare with an unbound 0.
    if !compiled.binds.is_empty() {
        return Err(vec![Diagnostic::unlocated_problem(
            Problem::SocketsConstant,
        )]);
    }
    let filter = compiled.insns;
    let mut filter_fields: Vec<&'static str> = Vec::new();
    let mut filter_slots = 0u64;
    for insn in &filter {
        filter_slots |= 1u64.checked_shl(u32::from(insn.slot)).unwrap_or(0);
        if let Some(f) = SOCKETS.field_at_slot(insn.slot) {
            if !filter_fields.contains(&f.name) {
                filter_fields.push(f.name);
            }
        }
    }
    let Action::Print { columns } = c.action else {
        return Err(vec![Diagnostic::unlocated_problem(
            Problem::SocketsNotAListing,
        )]);
    };
    Ok(SocketsQuery {
        filter,
        filter_slots,
        filter_fields,
        columns,
        default_columns: !printed,
        where_source: c.where_source,
    })
}

/// A field of `tcpq sockets` that this kernel's sock_diag cannot report
/// (its `tcp_info` is shorter), pointing at where `source` names it.
pub fn sockets_field_unavailable(source: &str, field: &str, why: &str) -> Diagnostic {
    let span = crate::parse::parse_sockets(source)
        .ok()
        .and_then(|(c, _)| crate::field_span(&c, field));
    let problem = Problem::FieldUnavailable {
        field: field.to_owned(),
        probe: None,
        why: why.to_owned(),
    };
    match span {
        Some(s) => Diagnostic::new(problem, s),
        None => Diagnostic::unlocated_problem(problem),
    }
}

/// A diagnostic of the shared passes, worded for `tcpq sockets` (which the
/// passes see as a probe named `sockets`).
fn in_sockets_words(d: Diagnostic) -> Diagnostic {
    match d.problem {
        Some(Problem::UnknownField {
            name,
            probe: "sockets",
            hint,
        }) => Diagnostic::new(Problem::SocketsUnknownField { name, hint }, d.span),
        _ => d,
    }
}

fn sorted(mut d: Vec<Diagnostic>) -> Vec<Diagnostic> {
    d.sort_by_key(|d| (d.is_located(), d.span.start));
    d
}

/// The catalog entry `tcpq -l NAME` and the docs look up besides
/// [`crate::catalog::PROBES`].
pub fn entry(name: &str) -> Option<&'static ProbeDef> {
    (name == SOCKETS.name).then_some(&SOCKETS)
}

#[cfg(test)]
mod tests {
    use super::fields::sk;
    use super::*;
    use crate::diagnostic::Code;
    use tcpq_abi::slot;

    #[test]
    fn where_compiles_like_a_probe_filter() {
        let q = compile_sockets("where rcv_wscale == 0 and dport == 443").unwrap();
        let p = crate::compile(
            "on tcp_state where rcv_wscale == 0 and dport == 443 print pid",
            "-e",
            &[],
        )
        .unwrap();
        assert_eq!(q.filter, p.clauses[0].filter);
        assert_eq!(q.filter_fields, ["rcv_wscale", "dport"]);
        assert!(q.default_columns);
        let names: Vec<&str> = q.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, DEFAULT_COLUMNS);
        let mut v = [0u64; tcpq_abi::N_SLOTS];
        v[usize::from(slot::DPORT)] = 443;
        assert!(crate::filter::run(&q.filter, &v));
        v[usize::from(sk::RCV_WSCALE)] = 7;
        assert!(!crate::filter::run(&q.filter, &v));
    }

    #[test]
    fn print_and_nothing() {
        let q = compile_sockets("").unwrap();
        assert!(q.filter.is_empty() && q.default_columns && q.where_source.is_none());
        let q = compile_sockets("print pid, comm, srtt / 1000 as srtt_ms").unwrap();
        assert!(!q.default_columns);
        let names: Vec<&str> = q.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["pid", "comm", "srtt_ms"]);
        let q = compile_sockets("where state == LISTEN print sport, backlog").unwrap();
        assert_eq!(q.where_source.as_deref(), Some("state == LISTEN"));
    }

    fn codes(src: &str) -> Vec<Code> {
        compile_sockets(src)
            .unwrap_err()
            .iter()
            .map(|d| d.code)
            .collect()
    }

    #[test]
    fn mistakes_are_located_diagnostics() {
        assert_eq!(codes("where rcv_wscal == 0"), [Code::UnknownField]);
        assert_eq!(codes("where rttvar > 1ms"), [Code::UnknownField]);
        assert_eq!(codes("where task_pid == 1"), [Code::UnknownField]);
        assert_eq!(codes("where sport == 70000"), [Code::OutOfRange]);
        assert_eq!(codes("where srtt > 64KiB"), [Code::UnitSuffix]);
        assert_eq!(codes("where"), [Code::Syntax]);
        assert_eq!(codes("on tcp_probe print pid"), [Code::Syntax]);
        assert_eq!(codes("count by comm"), [Code::NotForSockets]);
        assert_eq!(codes("print pid limit 3"), [Code::NotForSockets]);
        // Every problem, not the first.
        assert_eq!(
            codes("where nope == 1 count by comm"),
            [Code::UnknownField, Code::NotForSockets]
        );
        let d = compile_sockets("where rcv_wscal == 0").unwrap_err();
        assert_eq!(d[0].span, 6..15);
    }
}
