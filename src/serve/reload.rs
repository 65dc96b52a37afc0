//! What `tcpq serve` serves, clause by clause, and how a reload replaces
//! it without losing a count.
//!
//! Every served clause is a [`Session`] of its own ([`ServedClause`]):
//! a reload (SIGHUP, or a changed recipe directory: `mod.rs`) compiles,
//! checks and binds every source again, and a clause whose identity did
//! not change keeps its session — its programs stay attached and its
//! kernel maps, hence its counters, are the same ones. The identity is the
//! recipe's origin (its file or built-in name) and the clause's plan as
//! `--explain` serialises it ([`key`]): editing a comment (the HELP text)
//! or another clause of the same file keeps it; anything that changes what
//! the kernel runs or how the metric is named and labelled (the `where`,
//! the aggregation, `as`, a `--param` it uses) makes a new clause, whose
//! counters start at zero, as Prometheus expects of a new series. New
//! clauses attach before anything is detached, so no event between the two
//! sets is missed by a clause that is kept; clauses no longer in the
//! recipes detach after the swap. If anything fails (a recipe that does
//! not compile, serve's refusals, names exported two ways, a clause this
//! kernel cannot run, a load or attach), the new sessions are dropped and
//! the old set keeps serving, untouched: Prometheus's own `SIGHUP`
//! semantics (`prometheus_config_last_reload_successful`), shown here as
//! [`Reloads`].
//!
//! One session per clause, rather than a runtime API adding and removing
//! clauses of one session, because the runtime's session already is the
//! unit that owns and detaches (its drop), and per-clause maps are what a
//! clause kept needs anyway. What it costs: the session's shared maps and
//! owner programs are per session, so each clause that shows or tests
//! `comm`/`pid` attaches its own three owner programs (one of them on
//! every send and receive) where one merged session attached them once;
//! a clause without an owner attaches none. Of the shipped metrics
//! recipes only `zero-window-metrics` uses the owner (docs/serve.md gives
//! the programs counted).
use std::path::Path;

use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use tcpq_dsl::plan::{ClausePlan, Plan};
use tcpq_runtime::{Kernel, Session};

use super::collect::Exported;
use super::limit::{ClauseState, Limits};
use super::Program;

/// One clause served: its session (of this one clause) and what the
/// collector keeps of it; both survive a reload that keeps the clause.
pub struct ServedClause {
    /// What makes it the same clause across reloads ([`key`]).
    pub key: String,
    pub session: Session,
    /// The collector's state of it (the series limit's overflow and
    /// retained totals), moved with the clause.
    pub collector: ClauseState,
}

impl ServedClause {
    /// A clause just attached: its session (of the one clause) and a fresh
    /// state under `limits`.
    pub fn new(key: String, session: Session, limits: Limits) -> ServedClause {
        let collector = session
            .clauses
            .first()
            .map_or_else(ClauseState::unlimited, |c| {
                ClauseState::new(&c.plan, limits)
            });
        ServedClause {
            key,
            session,
            collector,
        }
    }
}

/// Everything served: the families, and the clauses feeding them (`None`
/// until the first set is attached: `/-/ready` answers 503 meanwhile).
pub struct ServedSet {
    pub exported: Exported,
    pub clauses: Option<Vec<ServedClause>>,
    /// `--series-limit` and `--series-idle`, for every clause attached.
    pub limits: Limits,
}

/// The reloads so far, for the self-metrics. The start is not a reload,
/// but sets `last_ok` and `last_unix` (as Prometheus does at its start).
#[derive(Clone, Copy, Debug, Default)]
pub struct Reloads {
    pub succeeded: u64,
    pub failed: u64,
    /// Whether the last reload (or the start) succeeded.
    pub last_ok: bool,
    /// When it was tried, in seconds since the Unix epoch.
    pub last_unix: f64,
}

impl Reloads {
    /// The start, now.
    pub fn started() -> Reloads {
        Reloads {
            last_ok: true,
            last_unix: unix_now(),
            ..Reloads::default()
        }
    }

    /// One reload, now.
    pub fn record(&mut self, ok: bool) {
        match ok {
            true => self.succeeded += 1,
            false => self.failed += 1,
        }
        self.last_ok = ok;
        self.last_unix = unix_now();
    }

    /// `tcpq_reloads_total{result}`, `tcpq_last_reload_success`,
    /// `tcpq_last_reload_timestamp_seconds`.
    pub fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "tcpq_reloads",
            "Reloads of the recipes (SIGHUP, or a changed recipe directory), by result; a failed one left the previous recipes serving.",
            None,
            MetricType::Counter,
        )?;
        for (result, n) in [("success", self.succeeded), ("failure", self.failed)] {
            let labels = [("result".to_string(), result.to_string())];
            family
                .encode_family(&labels)?
                .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
        }
        encoder
            .encode_descriptor(
                "tcpq_last_reload_success",
                "1 if the last reload of the recipes (or the start) succeeded, 0 if it failed and the previous recipes are still served.",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&u64::from(self.last_ok))?;
        encoder
            .encode_descriptor(
                "tcpq_last_reload_timestamp_seconds",
                "When the last reload of the recipes (or the start) was tried, successful or not, in seconds since the Unix epoch.",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&self.last_unix)
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A clause's identity across reloads: its recipe's origin and its plan,
/// serialised (what `--explain` shows; no source text, no span).
pub fn key(origin: &str, clause: &ClausePlan) -> String {
    let plan = serde_json::to_string(clause).unwrap_or_else(|e| format!("unserialisable: {e}"));
    format!("{origin}\n{plan}")
}

/// Why the new set could not be opened.
pub enum Failure {
    /// Problems binding to this kernel, rendered on stderr already.
    Refused,
    /// Loading or attaching failed.
    Error(anyhow::Error),
}

/// Per clause of `programs` (in their order): its key, and a session
/// opened for it unless `old` holds a clause of that key still (each old
/// clause kept once). Every program with a new clause is bound to this
/// kernel, its problems rendered in its own source; on any failure the
/// sessions opened are dropped (detached) and nothing else is touched.
pub fn open_new(
    programs: &[Program],
    old: &[String],
    btf: Option<&Path>,
    color: bool,
) -> Result<Vec<(String, Option<Session>)>, Failure> {
    let mut pool: Vec<&str> = old.iter().map(String::as_str).collect();
    let mut wanted: Vec<(usize, usize, String, bool)> = Vec::new();
    for (i, p) in programs.iter().enumerate() {
        for (k, c) in p.plan.clauses.iter().enumerate() {
            let key = key(&p.origin, c);
            let kept = match pool.iter().position(|o| *o == key) {
                Some(at) => {
                    pool.remove(at);
                    true
                }
                None => false,
            };
            wanted.push((i, k, key, kept));
        }
    }
    let mut out: Vec<(String, Option<Session>)> = Vec::with_capacity(wanted.len());
    if wanted.iter().all(|w| w.3) {
        return Ok(wanted.into_iter().map(|w| (w.2, None)).collect());
    }
    // What the kernel offers, tried for the new clauses' strategies only.
    let mut all_new = Plan {
        clauses: Vec::new(),
        left_out: Vec::new(),
        ring_bytes: None,
        owner_io: None,
    };
    for (i, k, _, kept) in &wanted {
        if !kept {
            all_new.clauses.push(programs[*i].plan.clauses[*k].clone());
        }
    }
    let kernel = Kernel::open_for(btf, Some(&all_new)).map_err(|e| {
        Failure::Error(anyhow::Error::new(e).context("cannot read what this kernel offers"))
    })?;
    let mut bound = Vec::with_capacity(programs.len());
    let mut failed = false;
    for (i, p) in programs.iter().enumerate() {
        if wanted.iter().all(|w| w.0 != i || w.3) {
            bound.push(None);
            continue;
        }
        match kernel.bind(&p.plan) {
            Ok(mut b) => {
                // Every clause aggregates, so no ring buffer is read: each
                // is one page, the least the kernel takes.
                b.plan.set_ring_bytes(page_size());
                bound.push(Some(b));
            }
            Err(diags) => {
                eprint!(
                    "{}",
                    tcpq_dsl::render_all(&diags, &p.source, &p.origin, color)
                );
                failed = true;
                bound.push(None);
            }
        }
    }
    if failed {
        return Err(Failure::Refused);
    }
    for (i, k, key, kept) in wanted {
        if kept {
            out.push((key, None));
            continue;
        }
        let one = bound[i]
            .as_ref()
            .and_then(|b| b.clause(k))
            .expect("a new clause's program is bound");
        let session = Session::open(&one, &kernel).map_err(|e| Failure::Error(e.into()))?;
        crate::note_owner_gaps(&session);
        out.push((key, Some(session)));
    }
    Ok(out)
}

fn page_size() -> u32 {
    // SAFETY: sysconf has no preconditions.
    u32::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}

/// What a swap changed, in clauses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Change {
    pub kept: usize,
    pub added: usize,
    pub removed: usize,
}

/// Install the new set: `exported`, and per clause the session
/// [`open_new`] opened or, where it opened none, the old clause of that
/// key (its session and collector state moved, untouched). Returns the old
/// clauses no longer served, for the caller to [`detach`] once the lock is
/// released.
pub fn swap(
    set: &mut ServedSet,
    exported: Exported,
    new: Vec<(String, Option<Session>)>,
) -> (Vec<ServedClause>, Change) {
    let mut old = set.clauses.take().unwrap_or_default();
    let mut clauses = Vec::with_capacity(new.len());
    let mut change = Change::default();
    for (key, session) in new {
        let served = match session {
            Some(session) => {
                change.added += 1;
                ServedClause::new(key, session, set.limits)
            }
            None => {
                let at = old
                    .iter()
                    .position(|o| o.key == key)
                    .expect("open_new keeps only clauses the set holds");
                change.kept += 1;
                old.remove(at)
            }
        };
        clauses.push(served);
    }
    change.removed = old.len();
    set.exported = exported;
    set.clauses = Some(clauses);
    (old, change)
}

/// Detach clauses, all at once: closing a tracepoint's link waits for an
/// RCU grace period (see the runtime's `Session` drop), so the sessions
/// are dropped on threads of their own.
pub fn detach(clauses: Vec<ServedClause>) {
    tcpq_runtime::session::drop_at_once(clauses);
}

/// `attached 2 probes (tcp_probe via raw tracepoint, ...)`, over every
/// served clause.
pub fn summary(clauses: &[ServedClause]) -> String {
    let list: Vec<String> = clauses
        .iter()
        .flat_map(|c| &c.session.clauses)
        .map(|c| format!("{} via {}", c.plan.probe, c.strategy.name))
        .collect();
    let n = list.len();
    format!(
        "attached {n} probe{} ({})",
        if n == 1 { "" } else { "s" },
        list.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(src: &str) -> Plan {
        tcpq_dsl::compile(src, "<test>", &[]).unwrap()
    }

    /// A clause is the same one when its plan and origin are: a comment
    /// (the HELP) or a neighbour's change keeps it; a changed `where`,
    /// name or origin does not.
    #[test]
    fn a_clause_is_its_origin_and_its_plan() {
        let a = plan("# One.\non tcp_retransmit count as r\non tcp_probe count as p\n");
        let b = plan(
            "# Two.\non tcp_retransmit count as r\non tcp_probe where sport == 80 count as p\n",
        );
        assert_eq!(key("f", &a.clauses[0]), key("f", &b.clauses[0]));
        assert_ne!(key("f", &a.clauses[1]), key("f", &b.clauses[1]));
        assert_ne!(key("f", &a.clauses[0]), key("g", &a.clauses[0]));
        let c = plan("on tcp_retransmit count as r2\n");
        assert_ne!(key("f", &a.clauses[0]), key("f", &c.clauses[0]));
    }

    /// Every old clause whose key is wanted again is kept once, with its
    /// session; nothing is opened when nothing changed.
    #[test]
    fn nothing_is_opened_when_nothing_changed() {
        let p = plan("on tcp_retransmit count as r\non tcp_retransmit count as r\n");
        let programs = vec![Program {
            origin: "f".into(),
            source: String::new(),
            plan: p.clone(),
        }];
        let old: Vec<String> = p.clauses.iter().map(|c| key("f", c)).collect();
        let new = open_new(&programs, &old, None, false).ok().unwrap();
        assert_eq!(new.len(), 2);
        assert!(new.iter().all(|(k, s)| s.is_none() && *k == old[0]));
    }

    #[test]
    fn reloads_start_successful() {
        let mut r = Reloads::started();
        assert!(r.last_ok && r.last_unix > 0.0 && r.succeeded == 0);
        r.record(false);
        assert!(!r.last_ok);
        assert_eq!((r.succeeded, r.failed), (0, 1));
    }
}
