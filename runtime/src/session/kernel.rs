//! What the running kernel offers, found once per run: tracefs, the BTF
//! offsets the templates read, what was found by trying (features), the
//! kernel enums a plan names or shows, whether the fast reads may be used.
//! Strategy choice against it lives here too ([`Kernel::choose`]); loading
//! anything into the kernel does not (that is `attach.rs`).
use std::time::{Duration, Instant};

use tcpq_dsl::plan::{Attach, ClausePlan, Plan, Strategy};

use crate::{
    btf::{Btf, BtfError},
    features::{KernelFeatures, Needs, Privilege},
    offsets::Offsets,
    strategy::{self, Choice, NoStrategy},
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

    /// The strategy this kernel would use for a clause: the first, in the
    /// plan's order, whose requirements are met and which fills every
    /// field the clause uses.
    pub fn choose(&self, clause: &ClausePlan) -> Result<Choice, NoStrategy> {
        strategy::choose(
            &clause.strategies,
            &clause.fields,
            &clause.fields,
            &self.features,
        )
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
