//! tcpq's language. Never touches the kernel.
//!
//! The compiler is a pipeline of named passes, each a public function:
//!
//! 1. [`parse`]: source → spanned [`ast::Program`] (all syntax errors).
//! 2. [`resolve()`]: probe, field and `$parameter` names → catalog entries.
//! 3. [`check()`]: types, units and ABI limits; values encoded for slots.
//! 4. [`plan()`]: the [`plan::Plan`] the runtime loads and attaches.
//!
//! [`compile`] runs them all (plus the recipe header and `--param` binding);
//! [`explain`] turns a plan back into words for `tcpq --explain`.
//! Diagnostics are plain data ([`diagnostic::Diagnostic`]) rendered in one
//! place ([`diagnostic::render`]).
//!
//! Invariants: nothing here touches the kernel; no input makes it panic; a
//! `where` clause only ever changes a plan's `filter`.
pub mod ast;
pub mod catalog;
pub mod check;
pub mod diagnostic;
mod explain;
pub mod filter;
pub mod parse;
pub mod plan;
mod planner;
pub mod recipe;
pub mod resolve;

pub use check::check;
pub use diagnostic::{render, render_all, Code, Diagnostic, Severity};
pub use explain::explain;
pub use parse::parse;
pub use planner::plan;
pub use recipe::{bind_params, parse_recipe, Params, Recipe};
pub use resolve::resolve;

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
    let (Some(program), Some(bound)) = (program, bound) else {
        return Err(sorted(errors));
    };
    let resolved = resolve(&program, &bound);
    let checked = check(&resolved).map_err(|e| sorted(errors.drain(..).chain(e).collect()))?;
    if !errors.is_empty() {
        return Err(sorted(errors));
    }
    plan(&checked)
}

/// Unlocated diagnostics (command-line problems) first, then by position.
fn sorted(mut d: Vec<Diagnostic>) -> Vec<Diagnostic> {
    d.sort_by_key(|d| (d.is_located(), d.span.start));
    d
}

#[cfg(test)]
mod tests;
