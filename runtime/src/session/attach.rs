//! Loading each clause's template object (its maps created and written,
//! the session's shared maps reused) and attaching its programs: the owner
//! programs first (once per session, the one on every send and receive
//! perhaps at the first event), then the main program and the strategy's
//! helpers. Every attachment is a [`Link`] the session owns. Verifying the
//! programs is `verify.rs`; what is written into `CONFIG` is the bound
//! plan's (`bind.rs`).
use std::time::Instant;

use aya::{
    maps::{MapError, RingBuf},
    programs::{
        fentry::FEntryLink, fexit::FExitLink, kprobe::KProbeLink,
        raw_trace_point::RawTracePointLink, trace_point::TracePointLink, FEntry, FExit, KProbe,
        TracePoint,
    },
    Ebpf, EbpfError, EbpfLoader,
};
use tcpq_abi::{globals, maps};
use tcpq_dsl::plan::{Action, Attach, ClausePlan, Strategy};

use super::{
    pod::PodConfig,
    seed::{seed_owners, Seeds},
    verify::{classify, verified_raw, verify_once},
    Attached, Kernel, SessionError, Timings,
};
use crate::templates::{self, owner_programs, OWNER_IO};

/// Maps the clauses of a session share: the first template object's, reused
/// by every later one (`EbpfLoader::reuse_map`, a tcpq patch to aya).
const SHARED_MAPS: [&str; 4] = [maps::OWNERS, maps::TUPLES, maps::LISTENERS, maps::OWNER_GEN];

/// What the clauses attached so far have set up for the others.
#[derive(Default)]
pub(super) struct Shared {
    /// The loader reuses [`SHARED_MAPS`].
    maps: bool,
    /// The owner programs are attached (once per session: they fill the
    /// shared owner maps for every clause).
    owners: bool,
}

/// A new descriptor for a map of a loaded object.
fn map_fd(map: &aya::maps::Map) -> Option<std::os::fd::OwnedFd> {
    use aya::maps::Map;
    use std::os::fd::AsFd;
    let data = match map {
        Map::HashMap(m) | Map::LruHashMap(m) | Map::Array(m) | Map::PerCpuArray(m) => m,
        _ => return None,
    };
    data.fd().as_fd().try_clone_to_owned().ok()
}

/// An attachment; detaches on drop.
pub(super) enum Link {
    Tracepoint(#[allow(dead_code)] TracePointLink),
    Raw(#[allow(dead_code)] RawTracePointLink),
    Kprobe(#[allow(dead_code)] KProbeLink),
    Fentry(#[allow(dead_code)] FEntryLink),
    Fexit(#[allow(dead_code)] FExitLink),
}

impl Link {
    /// A perf event (classic tracepoint, kprobe), not a BPF link: closing
    /// it may wait for an RCU grace period (see `session::detach`).
    pub(super) fn is_perf_event(&self) -> bool {
        matches!(self, Link::Tracepoint(_) | Link::Kprobe(_))
    }
}

/// A clause whose template object is loaded (maps created and written) but
/// whose programs may not be yet.
pub(super) struct Prepared<'p> {
    clause: &'p ClausePlan,
    strategy: Strategy,
    pub(super) template: String,
    pub(super) ebpf: Ebpf,
    /// This clause attaches the session's owner programs.
    owners: bool,
    /// Its aggregation map is `AGG_SMALL` ([`Attached::agg_map`]).
    small_key: bool,
}

impl Prepared<'_> {
    /// The programs this clause will attach, each with its attach points:
    /// the owner programs (if it is the one to attach them), the main
    /// program, then the strategy's further programs.
    pub(super) fn programs(&self) -> Vec<(String, Vec<Attach>)> {
        let mut out: Vec<(String, Vec<Attach>)> = Vec::new();
        if self.owners {
            for (program, points) in owner_programs() {
                out.push((program.to_owned(), points));
            }
        }
        out.push((
            self.strategy.program.clone(),
            vec![self.strategy.attach.clone()],
        ));
        // Further programs, each loaded once and attached at all its
        // points (the plan keeps only those the clause uses a field of).
        let first_extra = out.len();
        for extra in &self.strategy.also {
            match out[first_extra..]
                .iter_mut()
                .find(|(p, _)| *p == extra.program)
            {
                Some((_, points)) => points.push(extra.attach.clone()),
                None => out.push((extra.program.clone(), vec![extra.attach.clone()])),
            }
        }
        out
    }
}

/// Load a clause's template object for its chosen `strategy`: create and
/// write its maps. Its programs are verified later ([`super::verify::preload`],
/// [`finish_clause`]).
pub(super) fn prepare_clause<'p, 'l>(
    loader: &mut EbpfLoader<'l>,
    clause: &'p ClausePlan,
    config: &'l PodConfig,
    strategy: Strategy,
    kernel: &Kernel,
    timings: &mut Timings,
    shared: &mut Shared,
) -> Result<Prepared<'p>, SessionError> {
    let template = clause.template.clone();
    let bytes =
        templates::get(&template).ok_or_else(|| SessionError::UnknownTemplate(template.clone()))?;
    let t = Instant::now();
    loader.override_global(globals::CONFIG, config, true);
    let object = templates::prepare(bytes, kernel.fast_read);
    let ebpf = loader
        .load(object.bytes())
        .map_err(|source| match &source {
            EbpfError::MapError(MapError::CreateError { io_error, .. })
                if io_error.raw_os_error() == Some(libc::EPERM) =>
            {
                SessionError::Permission {
                    template: template.clone(),
                }
            }
            _ => SessionError::Load {
                template: template.clone(),
                source: Box::new(source),
            },
        })?;
    // The maps every clause would fill alike (owners, offsets) are this
    // first object's in every later one: one set of owner programs serves
    // the whole session, and the offsets are written once.
    if !shared.maps {
        for name in SHARED_MAPS {
            if let Some(fd) = ebpf.map(name).and_then(map_fd) {
                loader.reuse_map(name, fd);
            }
        }
        shared.maps = true;
    }
    timings.load += t.elapsed();
    // Owners only matter to a clause that shows or tests pid or comm, and
    // the first such clause attaches the owner programs for all.
    let owners = clause.uses_owner() && !shared.owners;
    shared.owners |= owners;
    Ok(Prepared {
        clause,
        strategy,
        template,
        ebpf,
        owners,
        small_key: clause.agg_map == Some(tcpq_dsl::plan::AggMap::Small),
    })
}

/// Attach a prepared clause's programs (loading those [`super::verify::preload`] did
/// not), owner programs first, then the /proc owners, then the main
/// program and its helpers.
pub(super) fn finish_clause(
    prepared: Prepared<'_>,
    kernel: &Kernel,
    timings: &mut Timings,
    seeds: &mut Seeds,
    defer_io: bool,
) -> Result<Attached, SessionError> {
    let programs = prepared.programs();
    let n_owner = if prepared.owners {
        owner_programs().len()
    } else {
        0
    };
    let Prepared {
        clause,
        strategy,
        template,
        mut ebpf,
        owners: first_owner,
        small_key,
    } = prepared;
    let t = Instant::now();
    let mut owner_gaps = Vec::new();
    let mut links = Vec::new();
    let mut deferred = Vec::new();
    for (i, (program, points)) in programs.into_iter().enumerate() {
        if i == n_owner && first_owner {
            // Owners of sockets from before the start, once the owner
            // programs run (what they learn meanwhile wins) and before the
            // main program does: its first event finds them.
            let t_seed = Instant::now();
            if let Some(found) = seeds.get() {
                seed_owners(&mut ebpf, &template, found)?;
            }
            timings.owners += t_seed.elapsed();
        }
        let points: Vec<Attach> = match i < n_owner {
            true => points
                .into_iter()
                .filter(|p| {
                    let ok = kernel.has(p);
                    if !ok {
                        owner_gaps.push(p.point());
                    }
                    ok
                })
                .collect(),
            false => points,
        };
        if points.is_empty() {
            continue;
        }
        if i < n_owner && defer_io && program == OWNER_IO {
            // Verified now (a refusal is an error at start, not later),
            // attached at the first event.
            let prog = program_of(&mut ebpf, &template, &program)?;
            verified_raw(prog, &template, &program, &point_list(&points), timings)?;
            deferred.push((program, points));
            continue;
        }
        load_and_attach(
            &mut ebpf,
            &template,
            &program,
            &points,
            &mut links,
            timings,
            kernel.btf_path.as_deref(),
        )?;
    }
    timings.attach += t.elapsed();

    let events = match clause.action {
        Action::Print { .. } => {
            let map = ebpf
                .take_map(maps::EVENTS)
                .ok_or_else(|| SessionError::MissingMap {
                    template: template.clone(),
                    map: maps::EVENTS.to_owned(),
                })?;
            Some(RingBuf::try_from(map).map_err(|source| SessionError::Map {
                template: template.clone(),
                map: maps::EVENTS.to_owned(),
                source: Box::new(source),
            })?)
        }
        Action::Count { .. } | Action::Aggregate { .. } => None,
    };
    Ok(Attached {
        plan: clause.clone(),
        strategy,
        owner_gaps,
        links,
        deferred,
        ebpf,
        events,
        prev: Default::default(),
        small_key,
    })
}

/// `program` of a template object.
fn program_of<'e>(
    ebpf: &'e mut Ebpf,
    template: &str,
    program: &str,
) -> Result<&'e mut aya::programs::Program, SessionError> {
    ebpf.program_mut(program)
        .ok_or_else(|| SessionError::MissingProgram {
            template: template.to_owned(),
            program: program.to_owned(),
        })
}

/// `sock:sock_send_length, sock:sock_recv_length`: for error messages.
fn point_list(points: &[Attach]) -> String {
    points
        .iter()
        .map(Attach::point)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn load_and_attach(
    ebpf: &mut Ebpf,
    template: &str,
    program: &str,
    points: &[Attach],
    links: &mut Vec<Link>,
    timings: &mut Timings,
    btf_path: Option<&std::path::Path>,
) -> Result<(), SessionError> {
    let prog = program_of(ebpf, template, program)?;
    let all = point_list(points);
    let fail = |source| classify(template, program, &all, source);
    match points.first() {
        None => Ok(()),
        Some(Attach::Tracepoint { .. }) => {
            let tp: &mut TracePoint = prog.try_into().map_err(fail)?;
            // `preload` verified it already, unless that failed.
            if let Some((took, n)) = verify_once!(&mut *tp).map_err(fail)? {
                timings
                    .programs
                    .push((format!("{template}/{program}"), took, n));
            }
            for p in points {
                let Attach::Tracepoint { category, name } = p else {
                    unreachable!("one program attaches one way")
                };
                let at = p.point();
                let fail = |source| classify(template, program, &at, source);
                let id = tp.attach(category, name).map_err(fail)?;
                links.push(Link::Tracepoint(tp.take_link(id).map_err(fail)?));
            }
            Ok(())
        }
        Some(Attach::RawTracepoint { .. }) => {
            let tp = verified_raw(prog, template, program, &all, timings)?;
            for p in points {
                let Attach::RawTracepoint { name, .. } = p else {
                    unreachable!("one program attaches one way")
                };
                let at = p.point();
                let fail = |source| classify(template, program, &at, source);
                let id = tp.attach(name).map_err(fail)?;
                links.push(Link::Raw(tp.take_link(id).map_err(fail)?));
            }
            Ok(())
        }
        Some(Attach::Kprobe { .. }) => {
            let kp: &mut KProbe = prog.try_into().map_err(fail)?;
            kp.load().map_err(fail)?;
            for p in points {
                let Attach::Kprobe { function, .. } = p else {
                    unreachable!("one program attaches one way")
                };
                let at = p.point();
                let fail = |source| classify(template, program, &at, source);
                let id = kp.attach(function, 0).map_err(fail)?;
                links.push(Link::Kprobe(kp.take_link(id).map_err(fail)?));
            }
            Ok(())
        }
        Some(Attach::Fentry { function, exit }) => {
            // A tracing program is verified against its target's BTF
            // prototype, so it needs aya's parse of the kernel's BTF: read
            // here, only by plans that use one.
            let t = Instant::now();
            let btf = match btf_path {
                Some(p) => aya::Btf::parse_file(p, aya::Endianness::default()),
                None => aya::Btf::from_sys_fs(),
            }
            .map_err(|e| SessionError::Load {
                template: template.to_owned(),
                source: Box::new(EbpfError::BtfError(e)),
            })?;
            let [point] = points else {
                unreachable!(
                    "an fentry/fexit program attaches to the one function it was loaded for"
                )
            };
            let at = point.point();
            let attach_fail = |source| classify(template, program, &at, source);
            // FEntry and FExit have the same methods but no common trait.
            macro_rules! load_attach {
                ($ty:ty, $link:path) => {{
                    let p: &mut $ty = prog.try_into().map_err(fail)?;
                    p.load(function, &btf).map_err(fail)?;
                    let verified = p.info().ok().and_then(|i| i.verified_instruction_count());
                    timings
                        .programs
                        .push((format!("{template}/{program}"), t.elapsed(), verified));
                    let id = p.attach().map_err(attach_fail)?;
                    links.push($link(p.take_link(id).map_err(attach_fail)?));
                }};
            }
            if *exit {
                load_attach!(FExit, Link::Fexit);
            } else {
                load_attach!(FEntry, Link::Fentry);
            }
            Ok(())
        }
    }
}
