//! What can go wrong loading and attaching a plan: [`SessionError`], one
//! variant per cause, carrying what was found (the verifier's log, the
//! unbound constant and where the program names it). Deciding which cause
//! a kernel error is lives with the code that sees it (`verify.rs`).
use std::io;

use aya::{maps::MapError, programs::ProgramError, EbpfError};

use crate::{strategy::NoStrategy, templates};

/// Errors loading and attaching a plan.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The process may not load BPF programs.
    #[error("permission denied loading {template}: tcpq needs root or CAP_BPF+CAP_PERFMON")]
    Permission { template: String },
    /// No strategy of a clause can attach on this kernel.
    #[error("probe {probe} cannot run on this kernel: {why}")]
    NoStrategy { probe: String, why: NoStrategy },
    /// The plan names a template this binary does not embed.
    #[error("template {0} is not built into this tcpq (known: {known})", known = templates::names().collect::<Vec<_>>().join(", "))]
    UnknownTemplate(String),
    /// The object failed to parse or its maps failed to create.
    #[error("cannot load template {template}: {source}")]
    Load {
        template: String,
        #[source]
        source: Box<EbpfError>,
    },
    /// A program the contract promises is not in the object.
    #[error("template {template} has no program {program} (the prebuilt object and this tcpq disagree; rebuild probe-templates)")]
    MissingProgram { template: String, program: String },
    /// A map the contract promises is not in the object.
    #[error("template {template} has no map {map} (the prebuilt object and this tcpq disagree; rebuild probe-templates)")]
    MissingMap { template: String, map: String },
    /// A map exists but its layout or access failed.
    #[error("template {template}, map {map}: {source}")]
    Map {
        template: String,
        map: String,
        #[source]
        source: Box<MapError>,
    },
    /// The verifier rejected a program: a bug in the template, not in the
    /// user's program. Carries the end of the verifier log.
    #[error("the kernel verifier rejected {template}/{program} ({errno}); this is a tcpq bug, please report it with this log:\n{log_tail}")]
    Verifier {
        template: String,
        program: String,
        errno: io::Error,
        log_tail: String,
    },
    /// Loading or attaching failed for another reason.
    #[error("{template}/{program}: cannot attach to {point}: {source}")]
    Attach {
        template: String,
        program: String,
        point: String,
        #[source]
        source: Box<ProgramError>,
    },
    /// The plan does not fit the ABI (more filter steps or key slots than a
    /// template evaluates); the checker should have refused it.
    #[error("plan for {probe} does not fit the template: {what}")]
    PlanTooBig { probe: String, what: String },
    /// A field the program uses cannot be read on this kernel.
    #[error("{probe}: field `{field}` is not available on this kernel ({why})")]
    FieldUnavailable {
        probe: String,
        field: String,
        why: String,
        /// Where the program names the field (from the plan), for a
        /// located diagnostic.
        span: Option<(usize, usize)>,
    },
    /// A named kernel constant (`reason == NETFILTER_DROP`) this kernel's
    /// BTF does not have.
    #[error(
        "{}: `{}` is not in this kernel's `enum {}` ({})",
        .0.probe, .0.constant, .0.enum_name, .0.why
    )]
    ConstantUnavailable(Box<Unbound>),
}

/// A named kernel constant the kernel's BTF lacks; `span` is where the
/// program names it.
#[derive(Debug)]
pub struct Unbound {
    pub probe: String,
    pub enum_name: String,
    pub constant: String,
    pub span: (usize, usize),
    pub why: String,
    /// The closest constant this kernel has, if any.
    pub suggestion: Option<String>,
}
