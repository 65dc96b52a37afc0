//! tcpq's runtime: finds what this kernel offers, resolves the offsets the
//! templates read, loads and attaches a [`tcpq_dsl::plan::Plan`], and
//! streams or aggregates what the templates report.
//!
//! Invariants: the runtime never interprets the user's program (it only
//! writes the plan's bytes into maps); every loaded object and link lives in
//! a [`session::Session`], and dropping it detaches everything.
pub mod agg;
pub mod btf;
pub mod clock;
pub mod counters;
pub mod features;
pub mod hz;
pub mod names;
pub mod netns;
pub mod offsets;
pub mod owners;
pub mod probe_kernel;
pub mod render;
pub mod session;
pub mod sockets;
pub mod strategy;
pub mod stream;
pub mod sysctls;
pub mod templates;
pub mod tracefs;

pub use render::Format;
pub use session::{Kernel, KernelError, Session, SessionError};
pub use stream::{RunOptions, RunReport, StreamError};
