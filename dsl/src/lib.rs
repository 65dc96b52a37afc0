//! tcpq's language. Never touches the kernel.
//!
//! The compiler is a pipeline of named passes, each a public function:
//!
//! 1. [`parse`]: source → spanned [`ast::Program`] (all syntax errors).
//! 2. [`resolve()`]: probe, field and `$parameter` names → catalog entries.
//! 3. [`check()`]: types, units and ABI limits; values encoded for slots.
//! 4. [`plan()`] (`lower.rs`): lowering to the [`plan::Plan`], final: the
//!    template configuration the kernel will read and every decision
//!    about it (strategy order, quick first steps, maps), with why.
//!
//! [`compile`] runs them all (plus the recipe header and `--param` binding);
//! [`explain`] turns a plan back into words for `tcpq --explain`.
//! Diagnostics are plain data: a pass reports a [`diagnostic::Problem`]
//! (what it found), worded in one place ([`diagnostic::Problem`]'s
//! `words`) and rendered in one place ([`diagnostic::render`]).
//!
//! Invariants: nothing here touches the kernel; no input makes it panic; a
//! `where` clause only ever changes a plan's filter steps (`filter`, and
//! the same steps in `config`).
pub mod ast;
pub mod catalog;
pub mod check;
pub mod diagnostic;
pub mod errno;
mod explain;
pub mod filter;
mod lower;
pub mod metrics;
pub mod parse;
pub mod plan;
pub mod reasons;
pub mod recipe;
pub mod resolve;
pub mod restrict;
pub mod sockets;
pub mod switch;

pub use check::check;
pub use check::duration::parse_duration;
pub use diagnostic::{render, render_all, Code, Diagnostic, Problem, Severity};
pub use explain::explain;
pub use lower::{default_ring_bytes, plan, RING_BUDGET, RING_MIN};
pub use parse::parse;
pub use recipe::{bind_params, parse_recipe, Params, Recipe};
pub use resolve::resolve;
pub use restrict::Restriction;
pub use sockets::compile_sockets;

/// Compile a program or recipe file into a plan.
///
/// Any source is treated as a recipe: a leading header of `#` lines may
/// declare `@param`s, which `params` (`--param NAME=VALUE`, in order) bind.
/// A `-e` program normally has no header, hence no parameters, and passing
/// any is an error. Every problem found is returned, sorted by position.
///
/// `origin` names the source (`<command line>`, a path). Diagnostics are
/// plain data and do not store it: pass the same `origin` to [`render`].
pub fn compile(
    source: &str,
    origin: &str,
    params: &[(String, String)],
) -> Result<plan::Plan, Vec<Diagnostic>> {
    compile_with(source, origin, params, &[])
}

/// [`compile`], with conditions the command line adds to every clause
/// (`-p PID`, `-4`, `-6`, `-c CMD`): written into the syntax tree before
/// `resolve` and checked like the program's own (see [`restrict`]).
///
/// `bool` parameters written alone in a `where` are switches (see
/// [`switch`]): a clause they turn off is left out of the plan (its
/// `left_out` says so), and is still resolved and checked, so its errors
/// are reported whatever the switches' values.
pub fn compile_with(
    source: &str,
    origin: &str,
    params: &[(String, String)],
    restrictions: &[Restriction],
) -> Result<plan::Plan, Vec<Diagnostic>> {
    let _ = origin;
    let mut errors = Vec::new();
    // Header, program and parameters are independent: report all three.
    let recipe = parse_recipe(source).map_err(|e| errors.extend(e)).ok();
    let program = parse(source).map_err(|e| errors.extend(e)).ok();
    let bound = match &recipe {
        Some(r) => bind_params(&r.params, params)
            .map_err(|e| errors.extend(e))
            .ok(),
        None => None,
    };
    let (Some(mut program), Some(bound), Some(recipe)) = (program, bound, recipe) else {
        return Err(sorted(errors));
    };
    let mut left_out = Vec::new();
    if switch::any(&program, &bound, &recipe.params) {
        // Switched-off parts are checked too: with every switch left out.
        let mut all = switch::neutral(&program, &bound, &recipe.params);
        restrict::apply(&mut all, restrictions);
        if let Err(e) = check(&resolve(&all, &bound)) {
            return Err(sorted(errors.into_iter().chain(e).collect()));
        }
        let e;
        (program, left_out, e) = switch::apply(program, &bound, &recipe.params);
        errors.extend(e);
    }
    errors.extend(restrict::apply(&mut program, restrictions));
    let resolved = resolve(&program, &bound);
    let checked = check(&resolved).map_err(|e| sorted(errors.drain(..).chain(e).collect()))?;
    if !errors.is_empty() {
        return Err(sorted(errors));
    }
    let mut plan = plan(&checked);
    plan.left_out = left_out;
    Ok(plan)
}

/// A field the plan uses that this kernel cannot provide, as a diagnostic
/// pointing at where the program uses it (`span`, from the plan's
/// `field_spans`: no re-parsing). The runtime finds this out (this crate
/// never touches the kernel) and passes what it knows.
pub fn field_unavailable(
    span: Option<(usize, usize)>,
    probe: &str,
    field: &str,
    why: &str,
) -> Diagnostic {
    let problem = Problem::FieldUnavailable {
        field: field.to_owned(),
        probe: Some(probe.to_owned()),
        why: why.to_owned(),
    };
    match span {
        Some((start, end)) => Diagnostic::new(problem, start..end),
        None => Diagnostic::unlocated_problem(problem),
    }
}

/// A probe no strategy of which runs on this kernel, pointing at its name
/// in `on PROBE` (`span`, the plan's `probe_span`). `why` lists each
/// strategy tried and what it lacks. The runtime finds this out.
pub fn probe_unavailable(span: (usize, usize), probe: &str, why: &str) -> Diagnostic {
    Diagnostic::new(
        Problem::ProbeUnavailable {
            probe: probe.to_owned(),
            why: why.to_owned(),
        },
        span.0..span.1,
    )
}

/// A named kernel constant this kernel's BTF lacks, pointing at where the
/// program names it (`span`, from the plan's binding: no re-parsing). The
/// runtime finds this out and passes what it knows.
pub fn constant_unavailable(
    span: (usize, usize),
    constant: &str,
    enum_name: &str,
    why: &str,
    suggestion: Option<&str>,
) -> Diagnostic {
    Diagnostic::new(
        Problem::ConstantUnavailable {
            constant: constant.to_owned(),
            enum_name: enum_name.to_owned(),
            why: why.to_owned(),
            suggestion: suggestion.map(str::to_owned),
        },
        span.0..span.1,
    )
}

/// Where clause `c` first names `field`.
pub(crate) fn field_span(c: &ast::Clause, field: &str) -> Option<ast::Span> {
    fn in_operand(o: &ast::Operand, f: &str) -> Option<ast::Span> {
        match o {
            ast::Operand::Field(i) if i.name == f => Some(i.span.clone()),
            ast::Operand::Arith { lhs, rhs, .. } => {
                in_operand(lhs, f).or_else(|| in_operand(rhs, f))
            }
            _ => None,
        }
    }
    fn in_expr(e: &ast::Expr, f: &str) -> Option<ast::Span> {
        match e {
            ast::Expr::Compare { lhs, rhs, .. } => {
                in_operand(lhs, f).or_else(|| in_operand(rhs, f))
            }
            ast::Expr::In { lhs, .. } | ast::Expr::Bare(lhs) => in_operand(lhs, f),
            ast::Expr::Not { expr, .. } => in_expr(expr, f),
            ast::Expr::And { lhs, rhs, .. } | ast::Expr::Or { lhs, rhs, .. } => {
                in_expr(lhs, f).or_else(|| in_expr(rhs, f))
            }
        }
    }
    let named = |i: &ast::Ident| (i.name == field).then(|| i.span.clone());
    let in_action = match &c.action {
        ast::Action::Print { items, .. } => items.iter().find_map(|i| named(&i.field)),
        ast::Action::Count { by, .. } => by.iter().find_map(named),
        ast::Action::Agg { field: v, by, .. } => named(v).or_else(|| by.iter().find_map(named)),
    };
    c.filter
        .as_ref()
        .and_then(|w| in_expr(&w.expr, field))
        .or(in_action)
}

/// Unlocated diagnostics (command-line problems) first, then by position.
fn sorted(mut d: Vec<Diagnostic>) -> Vec<Diagnostic> {
    d.sort_by_key(|d| (d.is_located(), d.span.start));
    d
}

#[cfg(test)]
mod param_tests;
#[cfg(test)]
mod tests;
