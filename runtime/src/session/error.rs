//! What can go wrong loading and attaching a bound plan: [`SessionError`],
//! one variant per cause, carrying what was found (the verifier's log, the
//! attach point). What binding finds (a field, a constant or a probe this
//! kernel lacks) is a located diagnostic instead (`bind.rs`). Deciding
//! which cause a kernel error is lives with the code that sees it
//! (`verify.rs`).
use std::io;

use aya::{maps::MapError, programs::ProgramError, EbpfError};

use crate::templates;

/// Errors loading and attaching a plan.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The process may not load BPF programs.
    #[error("permission denied loading {template}: tcpq needs root or CAP_BPF+CAP_PERFMON")]
    Permission { template: String },
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
}
