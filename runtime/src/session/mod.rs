//! Loading and attaching a plan. A [`Session`] owns every loaded object and
//! link: dropping it (on Ctrl-C, an error or a panic) detaches everything,
//! because aya links detach on drop.
use std::{
    io,
    time::{Duration, Instant},
};

use aya::{
    maps::{MapData, MapError, PerCpuArray, PerCpuHashMap, RingBuf},
    programs::{
        fentry::FEntryLink, fexit::FExitLink, kprobe::KProbeLink,
        raw_trace_point::RawTracePointLink, trace_point::TracePointLink, FEntry, FExit, KProbe,
        ProgramError, RawTracePoint, TracePoint,
    },
    Ebpf, EbpfError, EbpfLoader, Pod,
};
use tcpq_abi::{
    action, bucket, globals, maps, stat, AggKey, AggValue, FieldLoc, ListenKey, Owner, Quick,
    TemplateConfig, TupleKey, INSN_SIGNED, JUMP_REJECT, MAX_INSNS, MAX_KEY_SLOTS, MAX_LOADS,
};
use tcpq_dsl::plan::{Action, AggFunc, Attach, ClausePlan, Plan, Strategy};

use crate::{
    btf::{Btf, BtfError},
    features::{KernelFeatures, Needs, Privilege},
    offsets::Offsets,
    strategy::{self, Choice, NoStrategy},
    templates::{self, owner_programs, OWNER_IO},
    tracefs::{Tracefs, TracefsError},
};

/// What the running kernel offers, resolved once per run.
pub struct Kernel {
    pub tracefs: Tracefs,
    pub offsets: Offsets,
    pub privilege: Privilege,
    /// Time spent reading and indexing `/sys/kernel/btf/vmlinux`.
    pub btf_time: Duration,
    /// What was found by trying; strategies are chosen against it.
    pub features: KernelFeatures,
    /// Time spent trying (`features`).
    pub features_time: Duration,
    /// The BTF file given with `--btf`, if any: fentry/fexit programs are
    /// loaded against it (else against the running kernel's).
    pub btf_path: Option<std::path::PathBuf>,
    /// The BTF id of the kfunc `bpf_rdonly_cast` when the templates may
    /// read kernel memory through it (see [`fast_read_kfunc`]).
    pub fast_read: Option<u32>,
    /// Kernel enums by BTF name (`skb_drop_reason`, `sk_rst_reason`):
    /// (value, constant) pairs, read from the same BTF as the offsets, for
    /// the ones the plan names or shows (both without a plan).
    pub enums: std::collections::HashMap<String, Vec<(u64, String)>>,
}

/// Errors finding what the kernel offers.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error(transparent)]
    Tracefs(#[from] TracefsError),
    #[error(transparent)]
    Btf(#[from] BtfError),
}

impl Kernel {
    /// Locate (or mount) tracefs, index BTF, resolve the offsets table.
    pub fn open() -> Result<Kernel, KernelError> {
        Kernel::open_with(None)
    }

    /// Like [`open`](Self::open), reading BTF from `btf` when given
    /// (`--btf PATH`, for kernels without `/sys/kernel/btf/vmlinux`).
    pub fn open_with(btf: Option<&std::path::Path>) -> Result<Kernel, KernelError> {
        Kernel::open_for(btf, None)
    }

    /// Like [`open_with`](Self::open_with), trying only what `plan`'s
    /// strategies need (not every probe's: reading kallsyms or trying
    /// program types no strategy of the plan uses costs start-up time).
    pub fn open_for(
        btf: Option<&std::path::Path>,
        plan: Option<&Plan>,
    ) -> Result<Kernel, KernelError> {
        let tracefs = Tracefs::locate()?;
        let btf_path = btf.map(|p| p.to_path_buf());
        // Without BTF (and without --btf) tcpq still runs what tracepoint
        // formats alone provide; strategies needing BTF say so.
        let (btf, btf_error) = match btf {
            Some(p) => (Btf::parse_file(p)?, None),
            None => match Btf::from_sys_fs() {
                Ok(b) => (b, None),
                Err(e @ BtfError::Read { .. }) => (
                    Btf::empty(std::path::Path::new(crate::btf::VMLINUX_BTF)),
                    Some(e),
                ),
                Err(e) => return Err(e.into()),
            },
        };
        let offsets = Offsets::resolve(&btf, &tracefs);
        // A kfunc is called by its id in the running kernel's own BTF.
        let fast_read = match btf_path {
            None if btf_error.is_none() => fast_read_kfunc(&btf),
            _ => None,
        };
        let t = Instant::now();
        let strategies: Vec<Strategy> = match plan {
            Some(plan) => plan
                .clauses
                .iter()
                .flat_map(|c| c.strategies.iter().cloned())
                .collect(),
            None => tcpq_dsl::catalog::PROBES
                .iter()
                .flat_map(|p| p.strategies.iter().map(|s| s.to_plan()))
                .collect(),
        };
        let needs = Needs::for_strategies(strategies.iter());
        let features = KernelFeatures::detect(
            &needs,
            btf_error.as_ref().map_or(Ok(&btf), Err),
            false,
            Some(&tracefs),
            false,
        );
        let enums = enums_for(&btf, plan);
        Ok(Kernel {
            enums,
            tracefs,
            offsets,
            privilege: Privilege::current(),
            btf_time: btf.parse_time(),
            features,
            features_time: t.elapsed(),
            btf_path,
            fast_read,
        })
    }

    /// `plan` with every named kernel constant of its filters
    /// ([`tcpq_dsl::plan::InsnBind`]) replaced by this kernel's number,
    /// from [`Kernel::enums`]. A constant this kernel lacks is an error
    /// pointing at where the program names it.
    pub fn bind(&self, plan: &Plan) -> Result<Plan, SessionError> {
        bind_plan(plan, &self.enums)
    }

    /// The strategy this kernel would use for a clause: the first whose
    /// requirements are met and which fills every field the clause uses.
    pub fn choose(&self, clause: &ClausePlan) -> Result<Choice, SessionError> {
        // The event's header (`time`, ...) is every strategy's.
        let all: Vec<String> = tcpq_dsl::catalog::probe(&clause.probe)
            .map(|p| {
                p.all_fields()
                    .filter(|f| f.header.is_none())
                    .map(|f| f.name.to_owned())
                    .collect()
            })
            .unwrap_or_default();
        strategy::choose(
            &clause.strategies,
            &clause.fields_used(),
            &all,
            &self.features,
        )
        .map_err(|e| SessionError::NoStrategy {
            probe: clause.probe.clone(),
            why: e,
        })
    }

    /// Whether this kernel has the attach point.
    pub fn has(&self, attach: &Attach) -> bool {
        match attach {
            Attach::Tracepoint { category, name } | Attach::RawTracepoint { category, name } => {
                self.tracefs.exists(category, name)
            }
            Attach::Kprobe { function, .. } | Attach::Fentry { function, .. } => self
                .features
                .functions
                .get(function)
                .is_some_and(|f| f.kallsyms || f.btf),
        }
    }
}

/// [`Kernel::bind`] over an explicit table of enums (value, constant).
pub fn bind_plan(
    plan: &Plan,
    enums: &std::collections::HashMap<String, Vec<(u64, String)>>,
) -> Result<Plan, SessionError> {
    let mut bound = plan.clone();
    for c in &mut bound.clauses {
        for b in &c.binds {
            let e = &b.bind;
            let unavailable = |why: String, suggestion: Option<String>| {
                SessionError::ConstantUnavailable(Box::new(Unbound {
                    probe: c.probe.clone(),
                    enum_name: e.enum_name.clone(),
                    constant: e.constant.clone(),
                    span: e.span,
                    why,
                    suggestion,
                }))
            };
            let Some(values) = enums.get(&e.enum_name) else {
                return Err(unavailable(
                    format!("this kernel's BTF has no `enum {}`", e.enum_name),
                    None,
                ));
            };
            let Some((v, _)) = values.iter().find(|(_, n)| *n == e.constant) else {
                let names = values.iter().map(|(_, n)| n.as_str());
                let suggestion =
                    tcpq_dsl::diagnostic::suggest(&e.constant, names).map(str::to_owned);
                return Err(unavailable(
                    format!(
                        "its {} constants are this kernel's; this one is newer or older",
                        values.len()
                    ),
                    suggestion,
                ));
            };
            match c.filter.get_mut(usize::from(b.insn)) {
                Some(insn) => insn.value = *v,
                None => {
                    return Err(SessionError::PlanTooBig {
                        probe: c.probe.clone(),
                        what: format!("binding of instruction {} past the filter", b.insn),
                    })
                }
            }
        }
    }
    Ok(bound)
}

/// The kernel enums `plan` binds constants of or shows by name (drop and
/// reset reasons); both reason enums without a plan.
fn enums_for(
    btf: &Btf,
    plan: Option<&Plan>,
) -> std::collections::HashMap<String, Vec<(u64, String)>> {
    use tcpq_dsl::plan::{FieldType, Unit};
    let mut wanted: Vec<&str> = Vec::new();
    let mut want = |name: &'static str| {
        if !wanted.contains(&name) {
            wanted.push(name);
        }
    };
    match plan {
        None => {
            want("skb_drop_reason");
            want("sk_rst_reason");
        }
        Some(plan) => {
            for c in &plan.clauses {
                for b in &c.binds {
                    match b.bind.enum_name.as_str() {
                        "skb_drop_reason" => want("skb_drop_reason"),
                        "sk_rst_reason" => want("sk_rst_reason"),
                        _ => {}
                    }
                }
                for col in c.action.columns() {
                    match col.ty {
                        FieldType::Uint(Unit::DropReason) => want("skb_drop_reason"),
                        FieldType::Uint(Unit::RstReason) => want("sk_rst_reason"),
                        _ => {}
                    }
                }
            }
        }
    }
    wanted
        .into_iter()
        .filter_map(|n| Some((n.to_owned(), btf.enum_values(n)?)))
        .collect()
}

/// The BTF id of `bpf_rdonly_cast` if this kernel lets a program cast any
/// address to read-only untrusted memory (`BPF_FEAT_RDONLY_CAST_TO_VOID`,
/// Linux 6.17): the templates then read kernel fields with plain loads
/// instead of `bpf_probe_read_kernel` calls (`tcpq_abi::fast_read`).
/// `TCPQ_NO_FAST_READ=1` keeps the helper calls, to compare the two.
pub fn fast_read_kfunc(btf: &Btf) -> Option<u32> {
    if std::env::var_os("TCPQ_NO_FAST_READ").is_some_and(|v| v != "0") {
        return None;
    }
    let features = btf.enum_values("bpf_features")?;
    if !features
        .iter()
        .any(|(_, n)| n == "BPF_FEAT_RDONLY_CAST_TO_VOID")
    {
        return None;
    }
    btf.find_funcs(&["bpf_rdonly_cast"])
        .get("bpf_rdonly_cast")
        .copied()
}

/// Whether the session may leave [`OWNER_IO`] unattached until its first
/// event: when every clause that uses the owner only prints it. Until
/// then a socket's owner comes from the other owner programs (connect and
/// listen), the listener that accepted it, or /proc at start; a filter or
/// an aggregation over `pid` or `comm` in the kernel needs it from the
/// start (its events may never reach tcpq otherwise). A one-liner that
/// matches nothing then costs the host no program on its sends and
/// receives (measured in docs/benchmarks.md).
pub fn defers_owner_io(plan: &Plan) -> bool {
    use tcpq_abi::slot;
    let owner_slots = [slot::PID, slot::COMM_0, slot::COMM_1];
    let users = plan.clauses.iter().filter(|c| c.uses_owner());
    let mut any = false;
    for c in users {
        any = true;
        if !c.action.is_print() || c.filter.iter().any(|i| owner_slots.contains(&i.slot)) {
            return false;
        }
    }
    any
}

/// Maps the clauses of a session share: the first template object's, reused
/// by every later one (`EbpfLoader::reuse_map`, a tcpq patch to aya).
const SHARED_MAPS: [&str; 4] = [maps::OWNERS, maps::TUPLES, maps::LISTENERS, maps::OWNER_GEN];

/// What the clauses attached so far have set up for the others.
#[derive(Default)]
struct Shared {
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
enum Link {
    Tracepoint(#[allow(dead_code)] TracePointLink),
    Raw(#[allow(dead_code)] RawTracePointLink),
    Kprobe(#[allow(dead_code)] KProbeLink),
    Fentry(#[allow(dead_code)] FEntryLink),
    Fexit(#[allow(dead_code)] FExitLink),
}

/// How many trailing verifier log lines an error carries.
const VERIFIER_TAIL: usize = 20;

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

/// `aya::Pod` for the ABI types (the ABI crate has no dependencies).
#[repr(transparent)]
#[derive(Clone, Copy)]
pub(crate) struct PodLoc(pub FieldLoc);
// SAFETY: FieldLoc is #[repr(C)], Copy, made of integers, with explicit
// padding fields; any bit pattern is valid.
unsafe impl Pod for PodLoc {}

#[repr(transparent)]
#[derive(Clone, Copy)]
pub(crate) struct PodConfig(pub TemplateConfig);
// SAFETY: as above; TemplateConfig and FilterInsn are #[repr(C)] integers
// with explicit padding.
unsafe impl Pod for PodConfig {}

#[repr(transparent)]
#[derive(Clone, Copy)]
pub(crate) struct PodAggKey(pub AggKey);
// SAFETY: an array of u64.
unsafe impl Pod for PodAggKey {}

#[repr(transparent)]
#[derive(Clone, Copy)]
pub(crate) struct PodSmallAggKey(pub tcpq_abi::SmallAggKey);
// SAFETY: an array of u64.
unsafe impl Pod for PodSmallAggKey {}

#[repr(transparent)]
#[derive(Clone, Copy)]
struct PodOwner(Owner);
// SAFETY: integers and a byte array, no padding.
unsafe impl Pod for PodOwner {}

#[repr(transparent)]
#[derive(Clone, Copy)]
struct PodListenKey(ListenKey);
// SAFETY: integers with an explicit padding field.
unsafe impl Pod for PodListenKey {}

#[repr(transparent)]
#[derive(Clone, Copy)]
struct PodTupleKey(TupleKey);
// SAFETY: integers, no implicit padding (4 + 2 + 2 + 32 bytes).
unsafe impl Pod for PodTupleKey {}

#[repr(transparent)]
#[derive(Clone, Copy)]
pub(crate) struct PodAggValue(pub AggValue);
// SAFETY: one u64.
unsafe impl Pod for PodAggValue {}

/// The `STATS` counters of one clause, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub matched: u64,
    pub lost: u64,
    pub agg_full: u64,
    pub read_err: u64,
    /// Runs the kernel skipped because the program was already running on
    /// that CPU (`recursion_misses` of every program of the clause).
    pub missed: u64,
}

/// One attached clause.
pub struct Attached {
    pub plan: ClausePlan,
    pub strategy: Strategy,
    /// Owner-tracking attach points that do not exist here (owners of some
    /// sockets may show as unknown).
    pub owner_gaps: Vec<String>,
    /// Owned so that [`Session`]'s drop can detach them in parallel.
    links: Vec<Link>,
    /// Owner programs loaded but left unattached until this session's
    /// first event ([`Session::attach_deferred`]): see [`defers_owner_io`].
    deferred: Vec<(String, Vec<Attach>)>,
    pub(crate) ebpf: Ebpf,
    pub(crate) events: Option<RingBuf<MapData>>,
    /// `every DUR` without min/max: the totals read at the last interval,
    /// per key (the interval prints the difference).
    prev: std::collections::HashMap<AggKey, crate::agg::Agg>,
    /// The template aggregates into `AGG_SMALL` (see [`Attached::agg_map`]).
    small_key: bool,
}

impl Attached {
    fn template(&self) -> &str {
        &self.plan.template
    }

    /// Read the `STATS` counters.
    pub fn stats(&self) -> Result<Stats, SessionError> {
        let map = self.map(maps::STATS)?;
        let arr: PerCpuArray<&MapData, u64> =
            PerCpuArray::try_from(map).map_err(|e| self.map_err(maps::STATS, e))?;
        let get = |i: u32| -> Result<u64, SessionError> {
            Ok(arr
                .get(&i, 0)
                .map_err(|e| self.map_err(maps::STATS, e))?
                .iter()
                .sum())
        };
        Ok(Stats {
            matched: get(stat::MATCHED)?,
            lost: get(stat::LOST)?,
            agg_full: get(stat::AGG_FULL)?,
            read_err: get(stat::READ_ERR)?,
            missed: self.recursion_misses(),
        })
    }

    /// The kernel's `recursion_misses` of this clause's programs, from
    /// `/proc/self/fdinfo` (0 where a kernel does not report it).
    fn recursion_misses(&self) -> u64 {
        use std::os::fd::{AsFd, AsRawFd};
        self.ebpf
            .programs()
            .filter_map(|(_, p)| p.fd().ok())
            .filter_map(|fd| {
                let raw = fd.as_fd().as_raw_fd();
                std::fs::read_to_string(format!("/proc/self/fdinfo/{raw}")).ok()
            })
            .filter_map(|info| {
                info.lines()
                    .find_map(|l| l.strip_prefix("recursion_misses:"))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            })
            .sum()
    }

    /// Read the `AGG` map: each key's slot values with its count summed
    /// over CPUs, largest count first (ties by key, for stable output).
    pub fn counts(&self) -> Result<Vec<(AggKey, u64)>, SessionError> {
        let mut out: Vec<(AggKey, u64)> = self
            .agg_entries()?
            .into_iter()
            .map(|(k, per_cpu)| (k, per_cpu.iter().map(|v| v.count).sum()))
            .collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.vals.cmp(&b.0.vals)));
        Ok(out)
    }

    /// Read the `AGG` map with each key's per-CPU values combined.
    pub fn aggregates(&self) -> Result<Vec<(AggKey, crate::agg::Agg)>, SessionError> {
        let signed = self.plan.action.aggregates_signed();
        Ok(self
            .agg_entries()?
            .into_iter()
            .map(|(k, per_cpu)| (k, crate::agg::Agg::combine_as(signed, per_cpu)))
            .collect())
    }

    /// The aggregation map the template counts into: `AGG_SMALL` for a key
    /// of two words or fewer, else `AGG` ([`tcpq_abi::small_key`]).
    fn agg_map(&self) -> &'static str {
        match self.small_key {
            true => maps::AGG_SMALL,
            false => maps::AGG,
        }
    }

    /// Each key of the aggregation map, as an [`AggKey`], with its per-CPU
    /// values.
    fn agg_entries(&self) -> Result<Vec<(AggKey, Vec<AggValue>)>, SessionError> {
        match self.small_key {
            true => self.read_agg(maps::AGG_SMALL, |k: PodSmallAggKey| {
                let mut key = AggKey::default();
                key.vals[..2].copy_from_slice(&k.0);
                key
            }),
            false => self.read_agg(maps::AGG, |k: PodAggKey| k.0),
        }
    }

    fn read_agg<K: Pod>(
        &self,
        name: &str,
        key: impl Fn(K) -> AggKey,
    ) -> Result<Vec<(AggKey, Vec<AggValue>)>, SessionError> {
        let map = self.map(name)?;
        let agg: PerCpuHashMap<&MapData, K, PodAggValue> =
            PerCpuHashMap::try_from(map).map_err(|e| self.map_err(name, e))?;
        let mut out = Vec::new();
        for item in agg.iter() {
            let (k, per_cpu) = item.map_err(|e| self.map_err(name, e))?;
            out.push((key(k), per_cpu.iter().map(|v| v.0).collect()));
        }
        Ok(out)
    }

    /// One interval's aggregates (`every DUR`).
    ///
    /// Counts, sums and buckets (`count`, `sum`, `avg`, `hist`, `lhist`):
    /// the kernel's totals keep growing and the interval is the difference
    /// from the last read, so no event is lost between intervals (keys stay
    /// in the map; a full map is reported as `not_counted`).
    ///
    /// `min`, `max` and `stats` need the extremes of the interval alone, so
    /// their keys are read and then deleted: events the kernel adds to a key
    /// between its read and its deletion are lost (keys created after the
    /// read stay for the next interval).
    pub fn take_aggregates(&mut self) -> Result<Vec<(AggKey, crate::agg::Agg)>, SessionError> {
        let extremes = matches!(
            self.plan.action,
            Action::Aggregate {
                func: AggFunc::Min | AggFunc::Max | AggFunc::Stats,
                ..
            }
        );
        if !extremes {
            let mut out = Vec::new();
            for (k, now) in self.aggregates()? {
                let before = self.prev.insert(k, now).unwrap_or_default();
                let delta = crate::agg::Agg {
                    count: now.count - before.count,
                    sum: now.sum - before.sum,
                    min: 0,
                    max: 0,
                };
                if delta.count > 0 {
                    out.push((k, delta));
                }
            }
            return Ok(out);
        }
        let data = self.aggregates()?;
        let keys = data.iter().map(|(k, _)| k);
        match self.small_key {
            true => self.remove_keys(keys.map(|k| PodSmallAggKey([k.vals[0], k.vals[1]])))?,
            false => self.remove_keys(keys.map(|k| PodAggKey(*k)))?,
        }
        Ok(data)
    }

    /// Delete `keys` from the aggregation map.
    fn remove_keys<K: Pod>(&mut self, keys: impl Iterator<Item = K>) -> Result<(), SessionError> {
        let name = self.agg_map();
        let map = self
            .ebpf
            .map_mut(name)
            .ok_or_else(|| SessionError::MissingMap {
                template: self.plan.template.clone(),
                map: name.to_owned(),
            })?;
        let mut agg: PerCpuHashMap<&mut MapData, K, PodAggValue> = PerCpuHashMap::try_from(map)
            .map_err(|e| SessionError::Map {
                template: self.plan.template.clone(),
                map: name.to_owned(),
                source: Box::new(e),
            })?;
        for k in keys {
            // Already gone is fine: nothing else deletes, but be lenient.
            let _ = agg.remove(&k);
        }
        Ok(())
    }

    fn map(&self, name: &str) -> Result<&aya::maps::Map, SessionError> {
        self.ebpf.map(name).ok_or_else(|| SessionError::MissingMap {
            template: self.template().to_owned(),
            map: name.to_owned(),
        })
    }

    fn map_err(&self, map: &str, source: MapError) -> SessionError {
        SessionError::Map {
            template: self.template().to_owned(),
            map: map.to_owned(),
            source: Box::new(source),
        }
    }
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

/// Ring buffer bytes in all when `--buffer-size` is not given: what one
/// printing clause gets (the size built into the templates), and what
/// several share.
pub const RING_BUDGET: u32 = 1 << 20;
/// The least a printing clause gets from [`RING_BUDGET`].
pub const RING_MIN: u32 = 128 << 10;

/// Each printing clause's ring buffer when `--buffer-size` is not given:
/// [`RING_BUDGET`] shared out (rounded down to a power of two, at least
/// [`RING_MIN`]), `None` (the templates' own 1 MiB) for one clause. The
/// kernel maps every ring buffer into tcpq whole (twice its data), so ten
/// printing clauses of 1 MiB each would cost 20 MiB of resident memory.
pub fn default_ring_bytes(printing: usize) -> Option<u32> {
    if printing <= 1 {
        return None;
    }
    let share = RING_BUDGET / printing as u32;
    let pow2 = 1u32 << (31 - share.leading_zeros());
    Some(pow2.max(RING_MIN))
}

/// How to load a plan.
#[derive(Clone, Debug, Default)]
pub struct SessionOptions {
    /// Bytes of each printing clause's `EVENTS` ring buffer (a power of two
    /// and a multiple of the page size; checked by the kernel at load).
    /// `None`: the size built into the template (1 MiB).
    pub ring_bytes: Option<u32>,
}

/// Every loaded template of a plan.
pub struct Session {
    pub clauses: Vec<Attached>,
    pub timings: Timings,
    /// CLOCK_MONOTONIC (the templates' `ktime`) just before the first
    /// probe was attached: no event is stamped earlier. The zero of `-t`.
    pub attach_ktime_ns: u64,
}

impl Drop for Session {
    /// Detach every link at once. Closing a tracepoint's perf event waits
    /// for an RCU grace period in the kernel (60-80 ms each, measured on
    /// this VM), so one after the other six links took 0.5 s; on threads
    /// the waits overlap.
    fn drop(&mut self) {
        let links: Vec<Link> = self
            .clauses
            .iter_mut()
            .flat_map(|c| std::mem::take(&mut c.links))
            .collect();
        if links.len() <= 1 {
            return;
        }
        std::thread::scope(|s| {
            for link in links {
                // If a thread cannot be spawned the link is dropped (and
                // detached) right here instead.
                let _ = std::thread::Builder::new()
                    .name("tcpq-detach".into())
                    .spawn_scoped(s, move || drop(link));
            }
        });
    }
}

impl Session {
    /// Load and attach every clause of `plan`.
    pub fn open(plan: &Plan, kernel: &Kernel) -> Result<Session, SessionError> {
        Session::open_with(plan, kernel, &SessionOptions::default())
    }

    /// Load and attach every clause of `plan` with `opts`.
    pub fn open_with(
        plan: &Plan,
        kernel: &Kernel,
        opts: &SessionOptions,
    ) -> Result<Session, SessionError> {
        // Named kernel constants (`reason == NETFILTER_DROP`) get this
        // kernel's numbers first: nothing below sees an unbound plan.
        let bound = kernel.bind(plan)?;
        let plan = &bound;
        let mut timings = Timings::default();
        let t = Instant::now();
        // Each clause's strategy, chosen once: the quick first step depends
        // on the program that runs. A strategy this kernel lacks fails in
        // `prepare_clause`, after every clause's configuration is built.
        let mut choices = Vec::with_capacity(plan.clauses.len());
        let configs = plan
            .clauses
            .iter()
            .map(|c| {
                let mut cfg = template_config(c)?;
                let choice = kernel.choose(c).map(|choice| choice.strategy);
                if let Ok(strategy) = &choice {
                    cfg.quick = quick_step(&cfg, &strategy.program, &kernel.offsets);
                }
                choices.push(choice);
                Ok(PodConfig(cfg))
            })
            .collect::<Result<Vec<_>, SessionError>>()?;
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
        let printing = plan.clauses.iter().filter(|c| c.action.is_print()).count();
        if let Some(bytes) = opts.ring_bytes.or_else(|| default_ring_bytes(printing)) {
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
        for ((clause, config), strategy) in plan.clauses.iter().zip(&configs).zip(choices) {
            prepared.push(prepare_clause(
                &mut loader,
                clause,
                config,
                strategy?,
                kernel,
                &mut timings,
                &mut shared,
            )?);
        }
        let t = Instant::now();
        preload(&mut prepared, &mut timings);
        timings.attach += t.elapsed();
        let defer = defers_owner_io(plan);
        // Programs are verified; from here on they attach.
        let attach_ktime_ns = crate::clock::monotonic_ns();
        for p in prepared {
            clauses.push(finish_clause(p, kernel, &mut timings, &mut seeds, defer)?);
        }
        crate::names::load_for(plan, kernel);
        Ok(Session {
            clauses,
            timings,
            attach_ktime_ns,
        })
    }

    /// Attach the owner programs [`defers_owner_io`] left for the first
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

/// A clause whose template object is loaded (maps created and written) but
/// whose programs may not be yet.
struct Prepared<'p> {
    clause: &'p ClausePlan,
    strategy: Strategy,
    template: String,
    ebpf: Ebpf,
    /// This clause attaches the session's owner programs.
    owners: bool,
    /// Its aggregation map is `AGG_SMALL` ([`Attached::agg_map`]).
    small_key: bool,
}

impl Prepared<'_> {
    /// The programs this clause will attach, each with its attach points:
    /// the owner programs (if it is the one to attach them), the main
    /// program, then the strategy's further programs.
    fn programs(&self) -> Vec<(String, Vec<Attach>)> {
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
        // Further programs, each loaded once and attached at all its points,
        // and only if the clause uses a field they are there for.
        let used = self.clause.fields_used();
        let first_extra = out.len();
        for extra in &self.strategy.also {
            if !extra.only_for.is_empty() && !extra.only_for.iter().any(|f| used.contains(f)) {
                continue;
            }
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
/// write its maps. Its programs are verified later ([`preload`],
/// [`finish_clause`]).
fn prepare_clause<'p, 'l>(
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
    for load in &clause.loads {
        let hz = load.jiffies.then_some(&tcpq_abi::off::HZ);
        for idx in load.via.iter().chain(std::iter::once(&load.off)).chain(hz) {
            if !kernel.offsets.has(*idx) {
                let why = kernel
                    .offsets
                    .missing
                    .iter()
                    .find(|(i, ..)| i == idx)
                    .map(|(_, what, e)| format!("{what}: {e}"))
                    .unwrap_or_else(|| format!("offset #{idx} unresolved"));
                return Err(SessionError::FieldUnavailable {
                    probe: clause.probe.clone(),
                    field: load.field.clone(),
                    why,
                });
            }
        }
    }

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
        small_key: tcpq_abi::small_key(config.0.n_key_slots, config.0.bucket),
    })
}

/// Load (verify) a `TracePoint` or `RawTracePoint` program unless it is
/// loaded already (the two share these methods but no trait):
/// `Ok(Some((time in BPF_PROG_LOAD, verified instructions)))`, or `Ok(None)`
/// for a program [`preload`] verified.
macro_rules! verify_once {
    ($p:expr) => {{
        let p = $p;
        if p.fd().is_ok() {
            Ok(None)
        } else {
            let t = Instant::now();
            p.load().map(|()| {
                let took = t.elapsed();
                Some((
                    took,
                    p.info().ok().and_then(|i| i.verified_instruction_count()),
                ))
            })
        }
    }};
}

/// Verify every prepared clause's programs at once, one thread per clause:
/// the verifier runs in the loading thread, and each clause's object is
/// its own. Failures are left for [`finish_clause`], which loads again
/// and reports them; fentry/fexit programs (which need aya's parse of the
/// kernel's BTF) are loaded there too.
fn preload(prepared: &mut [Prepared<'_>], timings: &mut Timings) {
    let done: Vec<Vec<(String, Duration, Option<u32>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = prepared
            .iter_mut()
            .map(|p| {
                s.spawn(move || {
                    let mut out = Vec::new();
                    for (program, points) in p.programs() {
                        let Some(prog) = p.ebpf.program_mut(&program) else {
                            continue;
                        };
                        let verified = match points.first() {
                            Some(Attach::Tracepoint { .. }) => {
                                let tp: Result<&mut TracePoint, _> = prog.try_into();
                                tp.ok().map(|tp| verify_once!(tp))
                            }
                            Some(Attach::RawTracepoint { .. }) => {
                                let tp: Result<&mut RawTracePoint, _> = prog.try_into();
                                tp.ok().map(|tp| verify_once!(tp))
                            }
                            _ => continue,
                        };
                        if let Some(Ok(Some((took, n)))) = verified {
                            out.push((format!("{}/{program}", p.template), took, n));
                        }
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    timings.programs.extend(done.into_iter().flatten());
}

/// Attach a prepared clause's programs (loading those [`preload`] did
/// not), owner programs first, then the /proc owners, then the main
/// program and its helpers.
fn finish_clause(
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

/// The filter's first step as `program` can run it before anything else
/// ([`Quick`]): when that step can reject, and the program reads its slot
/// in one load ([`tcpq_abi::quick::tables`]) of a whole field of 1, 2, 4
/// or 8 bytes (`quick::readable`). Otherwise none. The quick step passes
/// what the filter step sends on and rejects what it rejects.
pub fn quick_step(cfg: &TemplateConfig, program: &str, offsets: &Offsets) -> Quick {
    if cfg.n_insns == 0 {
        return Quick::NONE;
    }
    // Step 0 runs first whatever the filter reads after it.
    let insn = &cfg.insns[0];
    let (table, record) = tcpq_abi::quick::tables(program);
    let index = table
        .iter()
        .find(|(slot, _)| *slot == insn.slot)
        .map(|&(_, index)| index);
    // Where the value is: `(off, size)`, or computed by the program.
    let (off, size) = match index {
        None => return Quick::NONE,
        Some(tcpq_abi::quick::COMPUTED) => (0, Quick::COMPUTED),
        Some(i) => {
            if !offsets.has(i) {
                return Quick::NONE;
            }
            let l = offsets.locs[i as usize];
            if l.bit_size != 0 || !tcpq_abi::quick::readable(record, l.off, l.size) {
                return Quick::NONE;
            }
            (l.off, l.size)
        }
    };
    // The step rejects when its test comes out `when`.
    let when = match (insn.jt == JUMP_REJECT, insn.jf == JUMP_REJECT) {
        (false, true) => false,
        (true, false) => true,
        // Rejects both ways (or neither): nothing to gain.
        _ => return Quick::NONE,
    };
    let signed = insn.flags & INSN_SIGNED != 0;
    let Some(step) = Quick::rejecting(insn.op, signed, insn.mask, insn.value, when) else {
        return Quick::NONE;
    };
    let flags = match index {
        Some(i) if tcpq_abi::quick::BIG_ENDIAN_16.contains(&i) => Quick::BE16,
        _ => 0,
    };
    Quick {
        off,
        size,
        slot: insn.slot,
        flags,
        ..step
    }
}

/// The `CONFIG` entry for a clause.
pub fn template_config(clause: &ClausePlan) -> Result<TemplateConfig, SessionError> {
    let too_big = |what: String| SessionError::PlanTooBig {
        probe: clause.probe.clone(),
        what,
    };
    let mut cfg = TemplateConfig::default();
    if clause.filter.len() > MAX_INSNS {
        return Err(too_big(format!(
            "{} filter steps, the most is {MAX_INSNS}",
            clause.filter.len()
        )));
    }
    for (dst, insn) in cfg.insns.iter_mut().zip(&clause.filter) {
        *dst = insn.to_abi();
    }
    cfg.n_insns = clause.filter.len() as u32;
    // A filter over the template's own slots only runs before the socket
    // is read: a non-matching event then costs only what the filter needs.
    let own = tcpq_abi::slot::OWN_FIRST..tcpq_abi::slot::LOADED;
    cfg.filter_early =
        (!clause.filter.is_empty() && clause.filter.iter().all(|i| own.contains(&i.slot))) as u8;
    // ... and then needs only the own slots it reads: the template fills
    // the others after the filter, for the events that pass.
    if cfg.filter_early != 0 {
        cfg.early_own = clause
            .filter
            .iter()
            .fold(0, |m, i| m | tcpq_abi::own_bit(i.slot));
    }
    cfg.owner = u8::from(clause.uses_owner());
    cfg.common = (clause.slots_used() & 0xffff) as u16;
    cfg.own = ((clause.slots_used() >> tcpq_abi::slot::OWN_FIRST) & 0xffff) as u16;
    // The slots the clause reads, own ones first: what each record
    // starts with zeroed.
    let used = clause.slots_used();
    let (own_used, shared_used): (Vec<u8>, Vec<u8>) = (0..tcpq_abi::N_SLOTS as u8)
        .filter(|&s| used & (1 << s) != 0)
        .partition(|s| own.contains(s));
    cfg.n_clear_own = own_used.len() as u8;
    cfg.n_clear = (own_used.len() + shared_used.len()) as u8;
    for (dst, s) in cfg
        .clear
        .iter_mut()
        .zip(own_used.iter().chain(&shared_used))
    {
        *dst = *s;
    }
    (cfg.own_before, cfg.own_after) = match cfg.filter_early {
        0 => (cfg.own, 0),
        _ => (cfg.own & cfg.early_own, cfg.own & !cfg.early_own),
    };
    if clause.loads.len() > MAX_LOADS {
        return Err(too_big(format!(
            "{} socket fields, the most is {MAX_LOADS}",
            clause.loads.len()
        )));
    }
    for (dst, load) in cfg.loads.iter_mut().zip(&clause.loads) {
        *dst = load.to_abi();
    }
    cfg.n_loads = clause.loads.len() as u32;
    match &clause.action {
        Action::Print { .. } => cfg.action = action::PRINT,
        Action::Count { keys } => {
            cfg.action = action::COUNT;
            let slots: Vec<u8> = keys.iter().flat_map(|k| k.slots.iter().copied()).collect();
            if slots.len() > MAX_KEY_SLOTS {
                return Err(too_big(format!(
                    "{} key slots, the most is {MAX_KEY_SLOTS}",
                    slots.len()
                )));
            }
            cfg.key_slots[..slots.len()].copy_from_slice(&slots);
            cfg.n_key_slots = slots.len() as u32;
        }
        Action::Aggregate { func, value, keys } => {
            cfg.action = action::COUNT;
            let slots: Vec<u8> = keys.iter().flat_map(|k| k.slots.iter().copied()).collect();
            let need = slots.len() + usize::from(func.is_histogram());
            if need > MAX_KEY_SLOTS {
                return Err(too_big(format!(
                    "{need} key slots (with the bucket), the most is {MAX_KEY_SLOTS}"
                )));
            }
            cfg.key_slots[..slots.len()].copy_from_slice(&slots);
            cfg.n_key_slots = slots.len() as u32;
            cfg.agg_slot = value.slots.first().copied().ok_or_else(|| {
                too_big(format!(
                    "the aggregated column `{}` has no slot",
                    value.name
                ))
            })?;
            match *func {
                AggFunc::Hist => cfg.bucket = bucket::LOG2,
                AggFunc::Lhist { min, max, step } => {
                    if step == 0 || min >= max {
                        return Err(too_big(format!(
                            "lhist bounds {min}, {max}, {step} make no buckets"
                        )));
                    }
                    cfg.bucket = bucket::LINEAR;
                    // A signed value's bounds as their i64 bits
                    // (`agg_signed` makes the template compare them so).
                    cfg.lin_min = min as u64;
                    cfg.lin_max = max as u64;
                    cfg.lin_step = step;
                }
                _ => {}
            }
            cfg.agg_signed = u8::from(clause.action.aggregates_signed());
        }
    }
    Ok(cfg)
}

/// Write the owners read from /proc into a template's `LISTENERS` and
/// `TUPLES` maps, after its programs attached: only where they have not
/// learned an owner themselves meanwhile (`BPF_NOEXIST`).
fn seed_owners(
    ebpf: &mut Ebpf,
    template: &str,
    seeds: &crate::owners::Seeds,
) -> Result<(), SessionError> {
    let listeners = seeds
        .listeners
        .iter()
        .map(|(k, o)| (PodListenKey(*k), PodOwner(*o)));
    insert_absent(ebpf, template, maps::LISTENERS, listeners)?;
    let tuples = seeds
        .tuples
        .iter()
        .map(|(k, o)| (PodTupleKey(*k), PodOwner(*o)));
    insert_absent(ebpf, template, maps::TUPLES, tuples)
}

/// Insert each entry into hash map `name` unless it holds the key already
/// (`BPF_NOEXIST`; EEXIST is not an error).
fn insert_absent<K: Pod, V: Pod>(
    ebpf: &mut Ebpf,
    template: &str,
    name: &str,
    entries: impl Iterator<Item = (K, V)>,
) -> Result<(), SessionError> {
    const BPF_NOEXIST: u64 = 1;
    let fail = |source: MapError| SessionError::Map {
        template: template.to_owned(),
        map: name.to_owned(),
        source: Box::new(source),
    };
    let map = ebpf.map_mut(name).ok_or_else(|| SessionError::MissingMap {
        template: template.to_owned(),
        map: name.to_owned(),
    })?;
    let mut map: aya::maps::HashMap<&mut MapData, K, V> =
        aya::maps::HashMap::try_from(map).map_err(fail)?;
    for (k, v) in entries {
        match map.insert(k, v, BPF_NOEXIST) {
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::EEXIST) => {}
            r => r.map_err(fail)?,
        }
    }
    Ok(())
}

/// The owners of sockets from before the start, read from /proc on
/// another thread.
enum Seeds {
    Scanning(std::thread::JoinHandle<crate::owners::Seeds>),
    /// `None`: not needed, or the scan panicked (a bug; owners of sockets
    /// from before the start then stay unknown).
    Ready(Option<crate::owners::Seeds>),
}

impl Seeds {
    fn get(&mut self) -> Option<&crate::owners::Seeds> {
        if let Seeds::Scanning(_) = self {
            let Seeds::Scanning(h) = std::mem::replace(self, Seeds::Ready(None)) else {
                unreachable!()
            };
            *self = Seeds::Ready(h.join().ok());
        }
        match self {
            Seeds::Ready(found) => found.as_ref(),
            Seeds::Scanning(_) => None,
        }
    }
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

/// `prog` as a raw tracepoint program, verified (now, unless [`preload`]
/// did).
fn verified_raw<'p>(
    prog: &'p mut aya::programs::Program,
    template: &str,
    program: &str,
    points: &str,
    timings: &mut Timings,
) -> Result<&'p mut RawTracePoint, SessionError> {
    let fail = |source| classify(template, program, points, source);
    let tp: &mut RawTracePoint = prog.try_into().map_err(fail)?;
    if let Some((took, n)) = verify_once!(&mut *tp).map_err(fail)? {
        timings
            .programs
            .push((format!("{template}/{program}"), took, n));
    }
    Ok(tp)
}

fn load_and_attach(
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

fn is_eperm(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES))
}

fn classify(template: &str, program: &str, point: &str, source: ProgramError) -> SessionError {
    match source {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = verifier_log.to_string();
            // EPERM with an empty log is the kernel refusing the caller,
            // not the verifier refusing the program.
            if is_eperm(&io_error) && log.trim().is_empty() {
                return SessionError::Permission {
                    template: template.to_owned(),
                };
            }
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(VERIFIER_TAIL)..].join("\n");
            SessionError::Verifier {
                template: template.to_owned(),
                program: program.to_owned(),
                errno: io_error,
                log_tail: tail,
            }
        }
        ProgramError::SyscallError(ref e) if is_eperm(&e.io_error) => SessionError::Permission {
            template: template.to_owned(),
        },
        source => SessionError::Attach {
            template: template.to_owned(),
            program: program.to_owned(),
            point: point.to_owned(),
            source: Box::new(source),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reason named in the program takes the number of the kernel it
    /// runs on: the same plan binds to different numbers on kernels that
    /// number the enum differently, and a name a kernel lacks is a located
    /// error with the closest name it has.
    #[test]
    fn named_reasons_bind_to_each_kernels_numbers() {
        let src = "on tcp_drop where reason in [NETFILTER_DROP, NO_SOCKET] count";
        let plan = tcpq_dsl::compile(src, "<test>", &[]).unwrap();
        assert_eq!(plan.clauses[0].binds.len(), 2);
        assert!(plan.clauses[0].filter.iter().all(|i| i.value == 0));
        let kernel = |pairs: &[(u64, &str)]| {
            let mut m = std::collections::HashMap::new();
            m.insert(
                "skb_drop_reason".to_string(),
                pairs.iter().map(|(v, n)| (*v, n.to_string())).collect(),
            );
            m
        };
        // 6.18's numbers, and 6.1's (fewer reasons before NETFILTER_DROP).
        for (enums, nf) in [
            (
                kernel(&[
                    (3, "SKB_DROP_REASON_NO_SOCKET"),
                    (12, "SKB_DROP_REASON_NETFILTER_DROP"),
                ]),
                12,
            ),
            (
                kernel(&[
                    (3, "SKB_DROP_REASON_NO_SOCKET"),
                    (8, "SKB_DROP_REASON_NETFILTER_DROP"),
                ]),
                8,
            ),
        ] {
            let b = bind_plan(&plan, &enums).unwrap();
            let values: Vec<u64> = b.clauses[0].filter.iter().map(|i| i.value).collect();
            assert_eq!(values, [nf, 3]);
            let mut vals = [0u64; tcpq_abi::N_SLOTS];
            vals[tcpq_abi::slot::drop::REASON as usize] = nf;
            assert!(tcpq_dsl::filter::run(&b.clauses[0].filter, &vals));
            vals[tcpq_abi::slot::drop::REASON as usize] = 0;
            assert!(!tcpq_dsl::filter::run(&b.clauses[0].filter, &vals));
        }
        let old = kernel(&[
            (3, "SKB_DROP_REASON_NO_SOCKET"),
            (9, "SKB_DROP_REASON_NETFILTER"),
        ]);
        match bind_plan(&plan, &old) {
            Err(SessionError::ConstantUnavailable(u)) => {
                assert_eq!(u.constant, "SKB_DROP_REASON_NETFILTER_DROP");
                assert_eq!(&src[u.span.0..u.span.1], "NETFILTER_DROP");
                assert_eq!(u.suggestion.as_deref(), Some("SKB_DROP_REASON_NETFILTER"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            bind_plan(&plan, &Default::default()),
            Err(SessionError::ConstantUnavailable(_))
        ));
    }
    use tcpq_dsl::plan::{CmpOp, Column, FieldType, Insn, Jump, Output, Unit};

    pub(crate) fn clause(action: Action) -> ClausePlan {
        ClausePlan {
            probe: "tcp_retransmit".into(),
            template: "tcp_retransmit".into(),
            strategies: vec![Strategy {
                name: "tcp_retransmit_skb".into(),
                program: "tcpq_retrans_tp".into(),
                attach: Attach::Tracepoint {
                    category: "tcp".into(),
                    name: "tcp_retransmit_skb".into(),
                },
                how: "tracepoint".into(),
                also: Vec::new(),
                requires: vec![],
                provides: vec![],
                field_requires: vec![],
            }],
            where_source: None,
            where_words: None,
            where_omitted: Vec::new(),
            loads: Vec::new(),
            filter: vec![Insn {
                slot: 12,
                op: CmpOp::Eq,
                signed: false,
                mask: u64::MAX,
                value: 443,
                jt: Jump::Accept,
                jf: Jump::Reject,
            }],
            binds: Vec::new(),
            action,
            output: Output::default(),
        }
    }

    /// Each record starts with the slots the clause reads zeroed, own
    /// slots first (zeroed before the early filter), and no others; a key
    /// of two words or fewer goes to the small aggregation map.
    #[test]
    fn config_lists_the_slots_to_clear_and_picks_the_aggregation_map() {
        let cfg_of = |src: &str| {
            let plan = tcpq_dsl::compile(src, "<test>", &[]).unwrap();
            template_config(&plan.clauses[0]).unwrap()
        };
        let cleared = |cfg: &TemplateConfig| {
            let own = cfg.clear[..cfg.n_clear_own as usize].to_vec();
            let shared = cfg.clear[cfg.n_clear_own as usize..cfg.n_clear as usize].to_vec();
            (own, shared)
        };
        let plan = tcpq_dsl::compile(
            "on tcp_probe where snd_cwnd < 10 print pid, comm, srtt",
            "<test>",
            &[],
        )
        .unwrap();
        let used = plan.clauses[0].slots_used();
        let cfg = template_config(&plan.clauses[0]).unwrap();
        let (own, shared) = cleared(&cfg);
        assert!(own.iter().all(|s| (16..32).contains(s)), "{own:?}");
        assert!(shared.iter().all(|s| !(16..32).contains(s)), "{shared:?}");
        let listed = own.iter().chain(&shared).fold(0u64, |m, s| m | 1 << s);
        assert_eq!(listed, used);
        // pid and comm (0, 1, 2) are shared; snd_cwnd and srtt own.
        assert_eq!(
            &shared[..3],
            &[
                tcpq_abi::slot::PID,
                tcpq_abi::slot::COMM_0,
                tcpq_abi::slot::COMM_1
            ]
        );
        assert_eq!(own.len(), 2);

        let cfg = cfg_of("on tcp_probe count by comm");
        assert_eq!(
            cleared(&cfg),
            (vec![], vec![tcpq_abi::slot::COMM_0, tcpq_abi::slot::COMM_1])
        );
        assert!(tcpq_abi::small_key(cfg.n_key_slots, cfg.bucket));
        let cfg = cfg_of("on tcp_probe count by comm, dport");
        assert!(!tcpq_abi::small_key(cfg.n_key_slots, cfg.bucket));
        let cfg = cfg_of("on tcp_probe count by dport");
        assert!(tcpq_abi::small_key(cfg.n_key_slots, cfg.bucket));
        // A histogram's bucket is a key word too.
        let cfg = cfg_of("on tcp_probe hist srtt by dport");
        assert!(tcpq_abi::small_key(cfg.n_key_slots, cfg.bucket));
        let cfg = cfg_of("on tcp_probe hist srtt by comm");
        assert!(!tcpq_abi::small_key(cfg.n_key_slots, cfg.bucket));
    }

    #[test]
    fn config_concatenates_key_slots() {
        let keys = vec![
            Column {
                name: "comm".into(),
                ty: FieldType::Comm,
                slots: vec![1, 2],
                source: Default::default(),
                scale: None,
            },
            Column {
                name: "dport".into(),
                ty: FieldType::Uint(Unit::None),
                slots: vec![12],
                source: Default::default(),
                scale: None,
            },
        ];
        let cfg = template_config(&clause(Action::Count { keys: keys.clone() })).unwrap();
        assert_eq!(cfg.action, action::COUNT);
        assert_eq!(cfg.n_key_slots, 3);
        assert_eq!(&cfg.key_slots[..3], &[1, 2, 12]);
        assert_eq!(cfg.n_insns, 1);
        assert_eq!(cfg.insns[0].jt, tcpq_abi::JUMP_ACCEPT);
        assert_eq!(cfg.insns[0].value, 443);

        let value = Column {
            name: "srtt".into(),
            ty: FieldType::Uint(Unit::Micros),
            slots: vec![46],
            source: Default::default(),
            scale: None,
        };
        let lhist = AggFunc::Lhist {
            min: 0,
            max: 100,
            step: 10,
        };
        let cfg = template_config(&clause(Action::Aggregate {
            func: lhist,
            value: value.clone(),
            keys: keys.clone(),
        }))
        .unwrap();
        assert_eq!(cfg.action, action::COUNT);
        assert_eq!(cfg.n_key_slots, 3);
        assert_eq!(cfg.agg_slot, 46);
        assert_eq!(cfg.bucket, bucket::LINEAR);
        assert_eq!((cfg.lin_min, cfg.lin_max, cfg.lin_step), (0, 100, 10));
        let mut seven = keys.clone();
        seven.extend(keys.iter().cloned());
        seven.push(keys[1].clone());
        // 7 key slots + the bucket = 8: fits; one more does not.
        let hist = |keys| {
            template_config(&clause(Action::Aggregate {
                func: AggFunc::Hist,
                value: value.clone(),
                keys,
            }))
        };
        assert_eq!(hist(seven.clone()).unwrap().bucket, bucket::LOG2);
        seven.push(keys[1].clone());
        assert!(matches!(hist(seven), Err(SessionError::PlanTooBig { .. })));
    }

    #[test]
    fn oversized_plans_are_refused() {
        let mut c = clause(Action::Print { columns: vec![] });
        c.filter = vec![c.filter[0]; MAX_INSNS + 1];
        assert!(matches!(
            template_config(&c),
            Err(SessionError::PlanTooBig { .. })
        ));
    }

    #[test]
    fn an_early_filter_names_the_own_slots_it_reads() {
        let mut c = clause(Action::Print { columns: vec![] });
        // dport (a socket slot): filtered late, every own slot first.
        let cfg = template_config(&c).unwrap();
        assert_eq!((cfg.filter_early, cfg.early_own), (0, 0));
        c.filter[0].slot = 18;
        let mut second = c.filter[0];
        second.slot = 16;
        c.filter.push(second);
        let cfg = template_config(&c).unwrap();
        assert_eq!((cfg.filter_early, cfg.early_own), (1, 0b101));
    }

    #[test]
    fn printing_clauses_share_the_default_ring_budget() {
        assert_eq!(default_ring_bytes(0), None);
        assert_eq!(default_ring_bytes(1), None);
        assert_eq!(default_ring_bytes(2), Some(512 << 10));
        assert_eq!(default_ring_bytes(3), Some(256 << 10));
        assert_eq!(default_ring_bytes(7), Some(128 << 10));
        assert_eq!(default_ring_bytes(16), Some(128 << 10));
    }

    #[test]
    fn the_template_reads_only_the_slots_a_clause_uses() {
        use tcpq_abi::slot::{self, probe as p};
        let cfg = |src: &str| {
            let plan = tcpq_dsl::compile(src, "<test>", &[]).unwrap();
            template_config(&plan.clauses[0]).unwrap()
        };
        let c = cfg("on tcp_probe count by comm");
        assert_eq!(
            (c.common, c.own),
            (1 << slot::COMM_0 | 1 << slot::COMM_1, 0)
        );
        let c = cfg("on tcp_probe where snd_cwnd > 10 print srtt, sport");
        assert_eq!(c.common, 1 << slot::SPORT);
        assert_eq!(
            c.own,
            tcpq_abi::own_bit(p::SND_CWND) | tcpq_abi::own_bit(p::SRTT)
        );
        assert_eq!(c.early_own, tcpq_abi::own_bit(p::SND_CWND));
    }

    #[test]
    fn the_quick_step_rejects_exactly_what_the_first_filter_step_rejects() {
        use tcpq_abi::off;
        let mut offsets = Offsets {
            locs: [FieldLoc::EMPTY; tcpq_abi::N_OFFSETS],
            missing: Vec::new(),
            notes: Vec::new(),
            btf_resolve_time: Default::default(),
            tracefs_time: Default::default(),
        };
        let at = |off: u32, size: u8| FieldLoc {
            off,
            size,
            ..FieldLoc::EMPTY
        };
        offsets.locs[off::TP_PROBE_SND_CWND as usize] = at(88, 4);
        offsets.locs[off::TP_PROBE_DPORT as usize] = at(66, 2);
        offsets.locs[off::TP_SND_CWND as usize] = at(1444, 4);
        let quick = |src: &str, program: &str, offsets: &Offsets| {
            let plan = tcpq_dsl::compile(src, "<test>", &[]).unwrap();
            quick_step(
                &template_config(&plan.clauses[0]).unwrap(),
                program,
                offsets,
            )
        };
        let tp = "tcpq_probe_tp";
        let q = quick("on tcp_probe where snd_cwnd == 5 print pid", tp, &offsets);
        assert_eq!((q.off, q.size), (88, 4));
        assert!(q.passes(5) && !q.passes(4) && !q.passes(6));
        let q = quick("on tcp_probe where snd_cwnd != 5 print pid", tp, &offsets);
        assert!(!q.passes(5) && q.passes(4) && q.passes(6));
        let q = quick(
            "on tcp_probe where not snd_cwnd < 5 print pid",
            tp,
            &offsets,
        );
        assert!(!q.passes(4) && q.passes(5));
        // A later step reading the socket does not matter: step 0 runs first.
        let q = quick(
            "on tcp_probe where dport == 443 and srtt > 1ms print pid",
            tp,
            &offsets,
        );
        assert_eq!((q.off, q.size), (66, 2));
        assert!(q.passes(443) && !q.passes(80));
        // The raw program reads the socket: its own table.
        let q = quick(
            "on tcp_probe where snd_cwnd > 10 print pid",
            "tcpq_probe_rtp",
            &offsets,
        );
        assert_eq!((q.off, q.size), (1444, 4));
        assert!(q.passes(11) && !q.passes(10));
        // The window the seed's program computes from the TCP header.
        let q = quick(
            "on tcp_select_window where win == 0 print pid",
            "tcpq_selwin_ndq",
            &offsets,
        );
        assert_eq!(
            (q.size, q.slot),
            (Quick::COMPUTED, tcpq_abi::slot::select_window::WIN)
        );
        assert!(q.passes(0) && !q.passes(1));
        // The raw program's peer port: big-endian in the socket.
        offsets.locs[off::SKC_DPORT as usize] = at(12, 2);
        let q = quick(
            "on tcp_probe where dport == 443 print pid",
            "tcpq_probe_rtp",
            &offsets,
        );
        assert_eq!((q.off, q.size, q.flags), (12, 2, Quick::BE16));
        assert!(q.passes(443) && !q.passes(443u16.swap_bytes() as u64));
        // None: the first step cannot reject alone, the program cannot read
        // the slot, or has no quick step at all.
        for (src, program) in [
            (
                "on tcp_probe where snd_cwnd == 5 or dport == 1 print pid",
                tp,
            ),
            ("on tcp_probe where ssthresh == 1 print pid", tp),
            ("on tcp_probe print pid", tp),
            (
                "on tcp_probe where sport == 443 print pid",
                "tcpq_probe_rtp",
            ),
            (
                "on tcp_select_window where rcv_wnd == 0 print pid",
                "tcpq_selwin_ndq",
            ),
            (
                "on tcp_retransmit where dport == 443 print pid",
                "tcpq_retrans_tp",
            ),
        ] {
            assert_eq!(quick(src, program, &offsets), Quick::NONE, "{src}");
        }
        // A record field past the limit or unaligned is not read so.
        offsets.locs[off::TP_PROBE_SND_CWND as usize] = at(300, 4);
        let q = quick("on tcp_probe where snd_cwnd == 5 print pid", tp, &offsets);
        assert_eq!(q, Quick::NONE);
        offsets.locs[off::TP_PROBE_SND_CWND as usize] = at(90, 4);
        let q = quick("on tcp_probe where snd_cwnd == 5 print pid", tp, &offsets);
        assert_eq!(q, Quick::NONE);
    }

    #[test]
    fn only_a_clause_showing_or_testing_the_owner_looks_it_up() {
        let owner = |src: &str| {
            let plan = tcpq_dsl::compile(src, "<test>", &[]).unwrap();
            template_config(&plan.clauses[0]).unwrap().owner
        };
        assert_eq!(owner("on tcp_retransmit print sport, task_comm"), 0);
        assert_eq!(owner("on tcp_retransmit count by dport"), 0);
        assert_eq!(owner("on tcp_retransmit print pid"), 1);
        assert_eq!(owner("on tcp_retransmit count by comm"), 1);
        assert_eq!(owner("on tcp_retransmit where comm == \"x\" count"), 1);
    }

    #[test]
    fn owner_tracking_on_io_waits_only_when_the_owner_is_only_printed() {
        let defers = |src: &str| defers_owner_io(&tcpq_dsl::compile(src, "<test>", &[]).unwrap());
        assert!(defers("on tcp_retransmit print pid, comm"));
        assert!(defers("on tcp_retransmit where dport == 80 print comm"));
        assert!(defers(
            "on tcp_retransmit print pid\non tcp_probe print snd_cwnd"
        ));
        // Nothing to track.
        assert!(!defers("on tcp_retransmit print task_pid"));
        // The kernel needs the owner before any event reaches tcpq.
        assert!(!defers("on tcp_retransmit where pid == 1 print sport"));
        assert!(!defers("on tcp_retransmit where comm == \"x\" print pid"));
        assert!(!defers("on tcp_retransmit count by comm"));
        assert!(!defers(
            "on tcp_retransmit print pid\non tcp_probe count by comm"
        ));
    }

    /// `BPF_PROG_LOAD` of a hand-assembled tracepoint program, with a
    /// verifier log: (the syscall's error, the log).
    fn load_raw(insns: &[u64]) -> (io::Error, String) {
        const BPF_PROG_LOAD: libc::c_long = 5;
        const BPF_PROG_TYPE_TRACEPOINT: u32 = 5;
        let license = c"GPL";
        let mut log = vec![0u8; 64 * 1024];
        // union bpf_attr, the BPF_PROG_LOAD part up to prog_name.
        let mut attr = [0u8; 64];
        let mut put =
            |off: usize, bytes: &[u8]| attr[off..off + bytes.len()].copy_from_slice(bytes);
        put(0, &BPF_PROG_TYPE_TRACEPOINT.to_ne_bytes());
        put(4, &(insns.len() as u32).to_ne_bytes());
        put(8, &(insns.as_ptr() as u64).to_ne_bytes());
        put(16, &(license.as_ptr() as u64).to_ne_bytes());
        put(24, &1u32.to_ne_bytes()); // log_level
        put(28, &(log.len() as u32).to_ne_bytes());
        put(32, &(log.as_mut_ptr() as u64).to_ne_bytes());
        put(48, b"tcpq_bad\0");
        // SAFETY: attr points at a valid bpf_attr prefix of the size given;
        // insns, license and log outlive the call.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_PROG_LOAD,
                attr.as_ptr(),
                attr.len() as u32,
            )
        };
        let err = io::Error::last_os_error();
        if fd >= 0 {
            // SAFETY: a fd the kernel just returned to us.
            unsafe { libc::close(fd as i32) };
            panic!("the kernel accepted an invalid program");
        }
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        (err, String::from_utf8_lossy(&log[..end]).into_owned())
    }

    /// A program the verifier rejects (it reads r2, which a tracepoint
    /// program never gets initialised) goes through `classify`, the path
    /// every template program's load error takes: the error names the
    /// template and program and carries the verifier's last lines.
    #[test]
    fn a_verifier_rejection_names_the_template_and_quotes_the_log() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: loading a program needs root");
            return;
        }
        // r0 = r2 (BPF_ALU64 | BPF_MOV | BPF_X, dst 0, src 2); exit.
        let insn = |code: u8, regs: u8| u64::from_ne_bytes([code, regs, 0, 0, 0, 0, 0, 0]);
        let prog = [insn(0xbf, 0x20), insn(0x95, 0)];
        let (io_error, log) = load_raw(&prog);
        assert!(
            log.contains("R2 !read_ok"),
            "unexpected verifier log: {log}"
        );
        let err = classify(
            "tcp_probe",
            "tcpq_probe_tp",
            "tcp:tcp_probe",
            ProgramError::LoadError {
                io_error,
                verifier_log: aya_obj::VerifierLog::new(log.clone()),
            },
        );
        let SessionError::Verifier {
            template,
            program,
            log_tail,
            ..
        } = &err
        else {
            panic!("not classified as a verifier rejection: {err:?}");
        };
        assert_eq!(
            (template.as_str(), program.as_str()),
            ("tcp_probe", "tcpq_probe_tp")
        );
        let last = log.lines().rfind(|l| !l.trim().is_empty()).unwrap();
        assert!(log_tail.contains(last), "{log_tail}");
        assert!(log_tail.lines().count() <= VERIFIER_TAIL);
        let msg = err.to_string();
        assert!(
            msg.contains("verifier rejected tcp_probe/tcpq_probe_tp"),
            "{msg}"
        );
        assert!(msg.contains("R2 !read_ok"), "{msg}");
        assert!(msg.contains("this is a tcpq bug"), "{msg}");
    }

    /// A long log is cut to its last `VERIFIER_TAIL` lines; EACCES with an
    /// empty log is the kernel refusing the caller, not the verifier.
    #[test]
    fn verifier_logs_are_cut_to_their_tail() {
        let log: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let err = classify(
            "t",
            "p",
            "x:y",
            ProgramError::LoadError {
                io_error: io::Error::from_raw_os_error(libc::EACCES),
                verifier_log: aya_obj::VerifierLog::new(log),
            },
        );
        let SessionError::Verifier { log_tail, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(log_tail.lines().count(), VERIFIER_TAIL);
        assert!(log_tail.ends_with("line 99"), "{log_tail}");
        let err = classify(
            "t",
            "p",
            "x:y",
            ProgramError::LoadError {
                io_error: io::Error::from_raw_os_error(libc::EPERM),
                verifier_log: aya_obj::VerifierLog::new(String::new()),
            },
        );
        assert!(matches!(err, SessionError::Permission { .. }), "{err:?}");
    }

    #[test]
    fn every_template_is_embedded() {
        for name in templates::names() {
            assert!(templates::get(name).is_some(), "{name}");
        }
        assert!(templates::get("nope").is_none());
    }
}
