//! Network namespaces and bounded TCP traffic: what `tcpq lab` builds for
//! a learner and what the kernel tests build for themselves, written once.
//!
//! - [`netns`]: two namespaces joined by a veth pair ([`netns::Pair`]),
//!   sysctls, wire loss and output drops as nft tables ([`netns::Loss`]),
//!   all removed on `Drop` (a failing or panicking test cleans up), unless
//!   the owner keeps them on purpose (`Pair::keep`: the lab's namespaces
//!   outlive `tcpq lab start`).
//! - [`traffic`]: the traffic generator, a server and a client run inside
//!   those namespaces (`tcpq lab __gen ...`, by `ip netns exec`). Each run
//!   is bounded: it refuses to start outside a namespace named `tcpq-*`,
//!   ends by itself after at most [`traffic::MAX_SECONDS`], and makes at
//!   most [`traffic::MAX_CONNECTIONS`] connections. It names itself (the
//!   kernel's comm) so a tracer shows who is who, and logs JSON lines.
//!
//! - [`stream`]: the streaming generator (`tcpq lab __gen stream ...`):
//!   millions of receive calls a second over loopback flows, each counted,
//!   for measuring how many events a tracer writes and loses.
//!
//! The kernel matrix's generator (`scripts/kernel-matrix/tcpgen.rs`) is
//! not this one: see the reason at its top.
pub mod netns;
pub mod stream;
pub mod traffic;

/// What went wrong building or removing a namespace or running traffic.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot run `{cmd}`: {source}")]
    Spawn {
        cmd: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Failed {
        cmd: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("{0}")]
    Bound(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
}

pub type Result<T> = std::result::Result<T, Error>;
