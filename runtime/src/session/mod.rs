//! Loading and attaching a plan. A [`Session`] owns every loaded object and
//! link: dropping it (on Ctrl-C, an error or a panic) detaches everything,
//! because aya links detach on drop.
//!
//! One idea per file, in the order a run meets them:
//! - `kernel.rs`: what the running kernel offers ([`Kernel`]), found once.
//! - `bind.rs`: the plan bound to this kernel ([`Bound`]): a strategy per
//!   clause, the fields' locations checked, named constants numbered, the
//!   quick step placed; problems as located diagnostics.
//! - `attach.rs`: loading template objects, attaching their programs.
//! - `verify.rs`: the kernel verifier, and what its refusals mean.
//! - `seed.rs`: owners of sockets from before the start, into the maps.
//! - `readers.rs`: reading an attached clause's maps back.
//! - `error.rs`: [`SessionError`]; `pod.rs`: the ABI's types as `aya::Pod`.
//!
//! This file holds the session object, what it owns, and the order of the
//! steps in [`Session::open_with`]; none of the steps themselves.
use std::time::{Duration, Instant};

use aya::{
    maps::{MapData, RingBuf},
    Ebpf, EbpfLoader,
};
use tcpq_abi::{globals, maps, AggKey};
use tcpq_dsl::plan::{Attach, ClausePlan, Strategy};

use crate::render::Names;

mod attach;
mod bind;
mod error;
mod kernel;
mod pod;
mod readers;
mod seed;
mod verify;

pub use bind::{Bound, BoundClause};
pub use error::SessionError;
pub use kernel::{fast_read_kfunc, Kernel, KernelError};
pub use readers::Stats;

use attach::{finish_clause, load_and_attach, prepare_clause, Link, Shared};
use pod::{PodConfig, PodLoc};
use seed::Seeds;
use verify::preload;

/// One attached clause.
pub struct Attached {
    pub plan: ClausePlan,
    pub strategy: Strategy,
    /// Owner-tracking attach points that do not exist here (owners of some
    /// sockets may show as unknown).
    pub owner_gaps: Vec<String>,
    /// In the order they were attached, for [`Session`]'s drop ([`detach`]).
    links: Vec<Link>,
    /// Owner programs loaded but left unattached until this session's
    /// first event ([`Session::attach_deferred`]): see
    /// [`tcpq_dsl::plan::OwnerIo`].
    deferred: Vec<(String, Vec<Attach>)>,
    pub(crate) ebpf: Ebpf,
    pub(crate) events: Option<RingBuf<MapData>>,
    /// `every DUR` without min/max: the totals read at the last interval,
    /// per key (the interval prints the difference).
    prev: std::collections::HashMap<AggKey, crate::agg::Agg>,
    /// The template aggregates into `AGG_SMALL` (see [`Attached::agg_map`]).
    small_key: bool,
}

/// Start-up timings, for `TCPQ_TIMINGS=1` and benchmarks.
#[derive(Clone, Debug, Default)]
pub struct Timings {
    /// Creating aya's loader (unpatched aya 0.14 parsed the kernel's BTF
    /// here; the vendored copy does not, see vendor/README.md).
    pub loader: Duration,
    /// Parsing objects, creating maps, writing config.
    pub load: Duration,
    /// Verifying and attaching programs.
    pub attach: Duration,
    /// Reading the owners of existing sockets from /proc (only for plans
    /// that show `pid` or `comm`).
    pub owners: Duration,
    /// Per program: `template/program`, time in `BPF_PROG_LOAD` (mostly the
    /// verifier) and the kernel's `verified_insns` (None where the kernel
    /// does not report it).
    pub programs: Vec<(String, Duration, Option<u32>)>,
}

/// Every loaded template of a plan.
pub struct Session {
    pub clauses: Vec<Attached>,
    pub timings: Timings,
    /// CLOCK_MONOTONIC (the templates' `ktime`) just before the first
    /// probe was attached: no event is stamped earlier. The zero of `-t`.
    pub attach_ktime_ns: u64,
    /// The kernel's names for the numbers the plan shows (reasons, kernel
    /// addresses), read at open; what rendering prints instead of them.
    pub names: Names,
}

impl Drop for Session {
    /// Detach every link, in the order that costs least (see [`detach`]).
    fn drop(&mut self) {
        let links: Vec<Link> = self
            .clauses
            .iter_mut()
            .flat_map(|c| std::mem::take(&mut c.links))
            .collect();
        detach(links);
    }
}

/// Detach `links`, given in the order they were attached.
///
/// A classic tracepoint's or a kprobe's link is a perf event, and closing
/// the last one on a tracepoint waits for an RCU grace period (60-80 ms
/// on this VM). Those are closed on threads of their own, but the waits
/// barely overlap: the kernel waits holding its `event_mutex`
/// (`perf_trace_destroy`), so the eight syscall tracepoints of
/// `tcp_sendmsg`'s `size` closed at 53, 89, 129, 184, 220, 263, 298 and
/// 354 ms (strace -T, 2026-12-08): only a plan with no classic tracepoint
/// exits quickly. A raw tracepoint's (or fentry's) link is a BPF link,
/// whose release waits for nothing, unless it leaves another program
/// first on its tracepoint: the kernel then waits for a grace period
/// before the next call (`tracepoint_remove_func`'s 2->1 transition, when
/// the remaining first function is not the one that was first). Those
/// are closed one after the other, last attached first, so that every
/// program removed is the last on its tracepoint's list: the owner
/// programs, attached first, go last (measured in docs/benchmarks.md:
/// `tcp_state` with pid and comm, 17 ms to exit on threads, ~2 ms so).
fn detach(links: Vec<Link>) {
    let (perf, bpf): (Vec<Link>, Vec<Link>) = links.into_iter().partition(Link::is_perf_event);
    std::thread::scope(|s| {
        for link in perf {
            // If a thread cannot be spawned the link is dropped (and
            // detached) right here instead.
            let _ = std::thread::Builder::new()
                .name("tcpq-detach".into())
                .spawn_scoped(s, move || drop(link));
        }
        for link in bpf.into_iter().rev() {
            drop(link);
        }
    });
}

/// Drop every item on a thread of its own, all at once, and return when
/// all are dropped: for what detaches on drop (a link, a session), whose
/// waits for the kernel's grace period then overlap. One item is dropped
/// here.
pub fn drop_at_once<T: Send>(items: Vec<T>) {
    if items.len() <= 1 {
        return;
    }
    std::thread::scope(|s| {
        for item in items {
            // If a thread cannot be spawned the item is dropped (and
            // detached) right here instead.
            let _ = std::thread::Builder::new()
                .name("tcpq-detach".into())
                .spawn_scoped(s, move || drop(item));
        }
    });
}

impl Session {
    /// Load and attach every clause of a plan bound to `kernel`
    /// ([`Kernel::bind`]).
    pub fn open(bound: &Bound, kernel: &Kernel) -> Result<Session, SessionError> {
        let plan = &bound.plan;
        let mut timings = Timings::default();
        let t = Instant::now();
        let configs: Vec<PodConfig> = bound.clauses.iter().map(|c| PodConfig(c.config)).collect();
        let offsets = kernel.offsets.locs.map(PodLoc);
        let mut loader = EbpfLoader::new();
        // The templates use no CO-RE: offsets come through TCPQ_RO_OFFSETS.
        loader.btf(None);
        // Each object's read-only globals (`tcpq_abi::globals`), set as the
        // loader creates its maps.
        loader.override_global(globals::OFFSETS, &offsets[..], true);
        static FAST_READ: [u32; 2] = [0, 1];
        loader.override_global(
            tcpq_abi::fast_read::ENABLED,
            &FAST_READ[kernel.fast_read.is_some() as usize],
            false,
        );
        if let Some(bytes) = plan.ring_bytes {
            loader.map_max_entries(maps::EVENTS, bytes);
        }
        timings.loader = t.elapsed();
        let mut clauses = Vec::with_capacity(plan.clauses.len());
        // Sockets opened before tcpq started have no owner the templates
        // could learn: read them from /proc when the program shows one, on
        // another thread while the verifier works, and write them once the
        // owner programs are attached (what they learn meanwhile wins) and
        // before the main program is.
        let mut seeds = match plan.clauses.iter().any(ClausePlan::uses_owner) {
            true => Seeds::Scanning(std::thread::spawn(crate::owners::scan)),
            false => Seeds::Ready(None),
        };
        let mut shared = Shared::default();
        let mut prepared = Vec::with_capacity(plan.clauses.len());
        for ((clause, config), b) in plan.clauses.iter().zip(&configs).zip(&bound.clauses) {
            prepared.push(prepare_clause(
                &mut loader,
                clause,
                config,
                b.choice.strategy.clone(),
                kernel,
                &mut timings,
                &mut shared,
            )?);
        }
        let t = Instant::now();
        preload(&mut prepared, &mut timings);
        timings.attach += t.elapsed();
        let defer = plan.owner_io == Some(tcpq_dsl::plan::OwnerIo::AtFirstEvent);
        // Programs are verified; from here on they attach.
        let attach_ktime_ns = crate::clock::monotonic_ns();
        for p in prepared {
            clauses.push(finish_clause(p, kernel, &mut timings, &mut seeds, defer)?);
        }
        Ok(Session {
            clauses,
            timings,
            attach_ktime_ns,
            names: crate::names::load_for(plan, kernel),
        })
    }

    /// Attach the owner programs the plan's `owner_io` left for the first
    /// event; true when it attached any (once per session).
    pub fn attach_deferred(&mut self) -> Result<bool, SessionError> {
        let mut attached = false;
        for c in &mut self.clauses {
            let template = c.plan.template.clone();
            for (program, points) in std::mem::take(&mut c.deferred) {
                load_and_attach(
                    &mut c.ebpf,
                    &template,
                    &program,
                    &points,
                    &mut c.links,
                    &mut self.timings,
                    None,
                )?;
                attached = true;
            }
        }
        Ok(attached)
    }

    /// Whether [`Session::attach_deferred`] has programs to attach.
    pub fn has_deferred(&self) -> bool {
        self.clauses.iter().any(|c| !c.deferred.is_empty())
    }

    /// `attached 1 probe (tcp_select_window via net_dev_queue)`.
    pub fn summary(&self) -> String {
        let n = self.clauses.len();
        let list = self
            .clauses
            .iter()
            .map(|c| format!("{} via {}", c.plan.probe, c.strategy.name))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "attached {n} probe{} ({list})",
            if n == 1 { "" } else { "s" }
        )
    }
}
