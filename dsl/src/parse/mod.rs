//! Pass 1: source text → spanned AST ([`crate::ast`]).
//!
//! pest stops at the first syntax error, so after one the source is cut into
//! clauses (each starts with the keyword `on`) and every clause is parsed on
//! its own: a program with three broken clauses gets three errors.
//!
//! This file holds the entry points, the limits on a clause's complexity
//! and the cutting into clauses; `errors.rs` words a syntax error (and the
//! slip that likely caused it), `build.rs` turns pest's pairs into the AST.
use crate::ast::*;
use crate::diagnostic::{Diagnostic, Problem};
use pest::Parser;
use pest_derive::Parser;

mod build;
mod errors;

pub(crate) use build::parse_int;
use build::Builder;
use errors::syntax_error;

#[derive(Parser)]
#[grammar = "grammar.pest"]
struct Grammar;

/// Parse a whole program. All syntax errors are returned, one per broken
/// clause, plus every invalid literal.
pub fn parse(source: &str) -> Result<Program, Vec<Diagnostic>> {
    let too_deep: Vec<Diagnostic> = clause_chunks(source)
        .filter_map(|(a, b)| too_complex(&source[a..b], a))
        .collect();
    if !too_deep.is_empty() {
        return Err(too_deep);
    }
    let pairs = match Grammar::parse(Rule::program, source) {
        Ok(p) => p,
        Err(e) => return Err(recover(source, e)),
    };
    let mut b = Builder::default();
    let mut clauses = Vec::new();
    for pair in pairs.flatten().filter(|p| p.as_rule() == Rule::clause) {
        clauses.push(b.clause(pair));
    }
    check_separators(source, &clauses, &mut b.errors);
    if clauses.is_empty() {
        let end = source.len();
        b.errors
            .push(Diagnostic::new(Problem::EmptyProgram, end..end));
    }
    if b.errors.is_empty() {
        Ok(Program { clauses })
    } else {
        Err(b.errors)
    }
}

/// Parse a lone expression, as stored in a plan's `where_source` (used by
/// `--explain`).
pub fn parse_expr(source: &str) -> Result<Expr, Vec<Diagnostic>> {
    if let Some(d) = too_complex(source, 0) {
        return Err(vec![d]);
    }
    let mut pairs =
        Grammar::parse(Rule::expr_only, source).map_err(|e| vec![syntax_error(source, 0, e)])?;
    let mut b = Builder::default();
    let expr = pairs
        .next()
        .and_then(|p| p.into_inner().next())
        .map(|p| b.expr(p));
    match (expr, b.errors.is_empty()) {
        (Some(e), true) => Ok(e),
        (_, _) => Err(b.errors),
    }
}

/// Parse a lone number literal (`5s`, `1.5s`, `250ms`, `1_000`), as the
/// grammar reads one in a program: used for command-line values that take
/// the language's units (`--duration`), so that both accept the same
/// spellings.
pub fn parse_number(source: &str) -> Result<Literal, Vec<Diagnostic>> {
    let mut pairs =
        Grammar::parse(Rule::number_only, source).map_err(|e| vec![syntax_error(source, 0, e)])?;
    let mut b = Builder::default();
    let lit = pairs
        .next()
        .and_then(|p| p.into_inner().next())
        .map(|p| b.number(p));
    match (lit, b.errors.is_empty()) {
        (Some(l), true) => Ok(l),
        (_, _) => Err(b.errors),
    }
}

/// Parse what follows `tcpq sockets`: `[where EXPR] [ACTION] [MODIFIER...]`,
/// as a clause on the probe named `sockets` (span `0..0`). The flag says
/// whether an action was written (without one the caller picks the
/// columns; the returned clause then has an empty `print`).
pub fn parse_sockets(source: &str) -> Result<(Clause, bool), Vec<Diagnostic>> {
    if let Some(d) = too_complex(source, 0) {
        return Err(vec![d]);
    }
    let mut pairs = Grammar::parse(Rule::sockets_query, source)
        .map_err(|e| vec![syntax_error(source, 0, e)])?;
    let Some(query) = pairs.next() else {
        return Err(vec![Diagnostic::unlocated_problem(Problem::EmptyInput)]);
    };
    let acted = query
        .clone()
        .into_inner()
        .any(|p| p.as_rule() == Rule::action);
    let mut b = Builder::default();
    let mut clause = b.clause(query);
    clause.probe = Ident {
        name: "sockets".into(),
        span: 0..0,
    };
    if !acted {
        let end = source.trim_end().len();
        clause.action = Action::Print {
            items: Vec::new(),
            span: end..end,
        };
    }
    if b.errors.is_empty() {
        Ok((clause, acted))
    } else {
        Err(b.errors)
    }
}

/// Clauses must be separated by a newline or `;`: `on a print x on b ...`
/// on one line is almost always a missing separator.
fn check_separators(source: &str, clauses: &[Clause], errors: &mut Vec<Diagnostic>) {
    for w in clauses.windows(2) {
        let gap = source.get(w[0].span.end..w[1].span.start).unwrap_or("");
        if !gap.contains('\n') && !gap.contains(';') {
            let at = w[1].probe.span.start.saturating_sub(3).max(w[1].span.start);
            errors.push(Diagnostic::new(Problem::MissingSeparator, at..at + 2));
        }
    }
}

/// Most `and`/`or` in one clause, and most `(`/`not` (which nest). A
/// filter runs at most `MAX_INSNS` comparisons, so a valid clause needs far
/// fewer; the caps keep every recursive pass (pest's included) far from the
/// end of even a 2 MiB thread stack, whatever the input.
pub const MAX_CONNECTIVES: usize = 4 * tcpq_abi::MAX_INSNS;
pub const MAX_NESTING: usize = 32;

/// The clause chunks of `source` as byte ranges.
fn clause_chunks(source: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let starts = clause_starts(source);
    (0..starts.len()).map(move |i| {
        let b = starts.get(i + 1).copied().unwrap_or(source.len());
        (starts[i], b)
    })
}

/// A diagnostic when `chunk` has more operators than any valid clause.
fn too_complex(chunk: &str, offset: usize) -> Option<Diagnostic> {
    let (mut connectives, mut nesting) = (0, 0);
    let mut at = None;
    scan(chunk, |tok, pos| {
        match tok {
            "&&" | "||" | "and" | "or" => connectives += 1,
            "(" | "!" | "not" => nesting += 1,
            _ => return,
        }
        if (connectives > MAX_CONNECTIVES || nesting > MAX_NESTING) && at.is_none() {
            at = Some(pos);
        }
    });
    let at = offset + at?;
    Some(Diagnostic::new(
        Problem::TooComplex {
            nesting: nesting > MAX_NESTING,
            max_nesting: MAX_NESTING,
            max_connectives: MAX_CONNECTIVES,
            max_insns: tcpq_abi::MAX_INSNS,
        },
        at..at + 1,
    ))
}

/// Call `f` with each word or punctuation token outside strings and
/// comments, and its byte offset. Lexing is approximate (it only has to
/// find `on` and operators), and never fails.
fn scan(source: &str, mut f: impl FnMut(&str, usize)) {
    let bytes = source.as_bytes();
    let is_word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$';
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                f("\"", i);
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            c if is_word(c) => {
                let s = i;
                while i < bytes.len() && is_word(bytes[i]) {
                    i += 1;
                }
                f(&source[s..i], s);
            }
            b'&' | b'|' if bytes.get(i + 1) == Some(&bytes[i]) => {
                f(&source[i..i + 2], i);
                i += 2;
            }
            c if c.is_ascii() => {
                f(&source[i..i + 1], i);
                i += 1;
            }
            // Skip the rest of a multi-byte character.
            _ => i += 1,
        }
    }
}

/// After a syntax error: parse each clause alone to report every one.
fn recover(source: &str, first: pest::error::Error<Rule>) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    for (a, b) in clause_chunks(source) {
        let chunk = &source[a..b];
        if let Err(e) = Grammar::parse(Rule::clause_only, chunk) {
            errors.push(syntax_error(chunk, a, e));
        }
    }
    if errors.is_empty() {
        // The cut did not isolate the problem; report pest's own error.
        errors.push(syntax_error(source, 0, first));
    }
    errors
}

/// Byte offsets where clauses start: 0, then every whole-word `on` after
/// some code (`on` is a keyword, so it cannot appear inside a clause).
fn clause_starts(source: &str) -> Vec<usize> {
    let mut starts = vec![0];
    let mut seen_code = false;
    scan(source, |tok, pos| {
        if tok == "on" && seen_code {
            starts.push(pos);
        }
        seen_code |= !tok.trim().is_empty() && tok != ";";
    });
    starts
}
