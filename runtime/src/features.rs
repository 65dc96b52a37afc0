//! What this kernel and this process can do, found by looking and trying,
//! never assumed from a version number.
use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use aya::{maps::MapType, programs::ProgramType};
use serde::{Deserialize, Serialize};
use tcpq_dsl::plan::{Requirement, Strategy};

use crate::{
    btf::{Btf, BtfError, VMLINUX_BTF},
    tracefs::Tracefs,
};

/// Capability bits (`linux/capability.h`).
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Whether this process may load and attach tracing programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Privilege {
    /// Effective uid 0.
    Root,
    /// `CAP_BPF` and `CAP_PERFMON` (or `CAP_SYS_ADMIN`) without being root.
    Capabilities,
    /// Neither: loading will fail with EPERM.
    None,
}

impl Privilege {
    /// Look at the effective uid and `CapEff` in `/proc/self/status`.
    pub fn current() -> Privilege {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            return Privilege::Root;
        }
        let caps = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("CapEff:"))
                    .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            })
            .unwrap_or(0);
        let has = |bit: u32| caps & (1u64 << bit) != 0;
        if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
            Privilege::Capabilities
        } else {
            Privilege::None
        }
    }

    pub fn sufficient(self) -> bool {
        self != Privilege::None
    }
}

/// A snapshot of what tcpq relies on.
#[derive(Clone, Debug)]
pub struct Features {
    /// `/sys/kernel/btf/vmlinux` exists.
    pub btf: bool,
    /// A mounted tracefs, if any (not mounted by this call).
    pub tracefs: Option<Tracefs>,
    pub privilege: Privilege,
}

impl Features {
    /// Look, without changing anything (no mount, no load).
    pub fn detect() -> Features {
        Features {
            btf: Path::new(VMLINUX_BTF).is_file(),
            tracefs: Tracefs::find(),
            privilege: Privilege::current(),
        }
    }

    /// Whether a classic tracepoint exists (false without tracefs).
    pub fn tracepoint(&self, category: &str, name: &str) -> bool {
        self.tracefs
            .as_ref()
            .is_some_and(|t| t.exists(category, name))
    }
}

/// What the kernel offers tcpq, found by trying; plain data, so a run can
/// be recorded to JSON (`tests/fixtures/kernels/`) and strategy choice
/// replayed against it anywhere.
///
/// Only what some strategy or owner program needs is looked at ([`Needs`]):
/// the set of tracepoints, format files, raw tracepoint prototypes and
/// functions. `kernel` is for people; no decision reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelFeatures {
    pub kernel: KernelInfo,
    pub btf: BtfInfo,
    /// Where tracefs is mounted; `None`: not mounted (and not mountable).
    pub tracefs: Option<String>,
    pub privilege: PrivilegeInfo,
    /// Does a trivial program of each type load? Keys: `tracepoint`,
    /// `raw_tracepoint`, `kprobe`, `tracing` (fentry/fexit).
    pub program_types: BTreeMap<String, Support>,
    /// Does such a program attach? Keys: `tracepoint` (perf event),
    /// `raw_tracepoint`, `kprobe` (kprobe PMU), `fentry` (trampoline).
    pub attach_types: BTreeMap<String, Support>,
    pub ring_buffer: Support,
    pub probe_read_kernel: Support,
    /// `category:name` → whether the tracepoint exists.
    pub tracepoints: BTreeMap<String, bool>,
    /// `category:name` → the fields of its format file (existing ones only).
    pub tracepoint_fields: BTreeMap<String, Vec<String>>,
    /// Raw tracepoint → its `TP_PROTO` argument types from BTF (`None`:
    /// no `btf_trace_<name>`, or no BTF).
    pub raw_tracepoint_args: BTreeMap<String, Option<Vec<String>>>,
    /// Function → where it can be found.
    pub functions: BTreeMap<String, FunctionInfo>,
}

/// `uname(2)`, shown by `tcpq doctor`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelInfo {
    pub release: String,
    pub version: String,
    pub machine: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BtfInfo {
    /// The BTF read, when one was.
    pub path: Option<String>,
    /// Given with `--btf` rather than found in sysfs.
    #[serde(default)]
    pub from_flag: bool,
    /// Why none could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivilegeInfo {
    pub euid: u32,
    /// `CapEff` from `/proc/self/status`, hex.
    pub cap_eff: String,
    /// Capabilities needed to load and attach, and not held (empty when
    /// root, or with CAP_SYS_ADMIN, or with CAP_BPF and CAP_PERFMON).
    pub missing: Vec<String>,
}

/// The outcome of one try.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Support {
    pub ok: bool,
    /// What was tried and what the kernel said.
    pub detail: String,
}

impl Support {
    fn from(what: &str, r: std::io::Result<()>) -> Support {
        match r {
            Ok(()) => Support {
                ok: true,
                detail: what.to_owned(),
            },
            Err(e) => Support {
                ok: false,
                detail: format!("{what}: {e}"),
            },
        }
    }
    fn no(detail: impl Into<String>) -> Support {
        Support {
            ok: false,
            detail: detail.into(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionInfo {
    /// In `/proc/kallsyms` under exactly this name (a kprobe target).
    pub kallsyms: bool,
    /// A `BTF_KIND_FUNC` in the kernel's BTF (an fentry target).
    pub btf: bool,
}

/// What to look at: derived from the catalog or a plan's strategies.
#[derive(Clone, Debug, Default)]
pub struct Needs {
    pub tracepoints: BTreeSet<(String, String)>,
    pub formats: BTreeSet<(String, String)>,
    pub raw_tracepoints: BTreeSet<String>,
    pub functions: BTreeSet<String>,
}

/// Functions worth knowing about on any kernel, for `tcpq doctor` and for
/// the kprobe and fentry tries (the first one present is the target).
pub const WATCHED_FUNCTIONS: &[&str] = &[
    "tcp_rcv_established",
    "tcp_retransmit_skb",
    "__tcp_transmit_skb",
    "__tcp_select_window",
    "tcp_select_window",
];

impl Needs {
    pub fn add(&mut self, r: &Requirement) {
        let pair = |c: &str, n: &str| (c.to_owned(), n.to_owned());
        match r {
            Requirement::Btf | Requirement::ProbeReadKernel | Requirement::RingBuffer => {}
            Requirement::Tracepoint { category, name }
            | Requirement::RawTracepoint { category, name } => {
                self.tracepoints.insert(pair(category, name));
            }
            Requirement::TracepointField { category, name, .. } => {
                self.tracepoints.insert(pair(category, name));
                self.formats.insert(pair(category, name));
            }
            Requirement::RawTracepointArg { name, .. } => {
                self.raw_tracepoints.insert(name.clone());
            }
            Requirement::Kprobe { function } | Requirement::Fentry { function } => {
                self.functions.insert(function.clone());
            }
        }
    }

    /// Everything a set of strategies needs (all their fields' too), plus
    /// the owner programs and the offsets table.
    pub fn for_strategies<'s>(strategies: impl IntoIterator<Item = &'s Strategy>) -> Needs {
        let mut n = Needs::default();
        for s in strategies {
            for r in s.requirements() {
                n.add(&r);
            }
            for fr in &s.field_requires {
                for r in &fr.requires {
                    n.add(r);
                }
            }
        }
        for (_, points) in crate::templates::owner_programs() {
            for p in points {
                n.add(&p.requirement());
            }
        }
        for &(_, c, e, _) in crate::offsets::TRACEPOINT_FIELDS {
            n.formats.insert((c.to_owned(), e.to_owned()));
        }
        for &(_, tp, ..) in crate::offsets::RAW_TRACEPOINT_ARGS {
            n.raw_tracepoints.insert(tp.to_owned());
        }
        n
    }

    /// Everything the whole catalog needs, plus [`WATCHED_FUNCTIONS`].
    pub fn catalog() -> Needs {
        let strategies: Vec<Strategy> = tcpq_dsl::catalog::PROBES
            .iter()
            .flat_map(|p| p.strategies.iter().map(|s| s.to_plan()))
            .collect();
        let mut n = Needs::for_strategies(&strategies);
        n.functions
            .extend(WATCHED_FUNCTIONS.iter().map(|f| f.to_string()));
        n
    }
}

fn uname() -> KernelInfo {
    // SAFETY: utsname is plain bytes; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return KernelInfo::default();
    }
    let s = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    KernelInfo {
        release: s(&u.release),
        version: s(&u.version),
        machine: s(&u.machine),
    }
}

fn privilege_info() -> PrivilegeInfo {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let caps = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0);
    let has = |bit: u32| caps & (1u64 << bit) != 0;
    let missing = if has(CAP_SYS_ADMIN) {
        vec![]
    } else {
        [(CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")]
            .into_iter()
            .filter(|(b, _)| !has(*b))
            .map(|(_, n)| n.to_owned())
            .collect()
    };
    PrivilegeInfo {
        euid,
        cap_eff: format!("{caps:016x}"),
        missing,
    }
}

/// Which of `names` appear in `/proc/kallsyms` under exactly that name.
fn kallsyms(names: &BTreeSet<String>) -> Option<BTreeSet<String>> {
    use std::io::BufRead;
    if names.is_empty() {
        return Some(BTreeSet::new());
    }
    let f = std::fs::File::open("/proc/kallsyms").ok()?;
    let mut found = BTreeSet::new();
    for line in std::io::BufReader::with_capacity(1 << 16, f)
        .lines()
        .map_while(Result::ok)
    {
        // `addr type name [module]`
        let mut it = line.split_whitespace();
        let (Some(_), Some(_), Some(name)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if names.contains(name) {
            found.insert(name.to_owned());
            if found.len() == names.len() {
                break;
            }
        }
    }
    Some(found)
}

impl KernelFeatures {
    /// Try everything `needs` names. `btf` is the kernel's BTF (from sysfs
    /// or `--btf`) or why there is none; nothing is mounted or left loaded.
    ///
    /// With `try_attach` false (a normal run, where the real attach is the
    /// try) programs are only loaded: attaching a classic tracepoint costs
    /// an RCU grace period on close (~100 ms measured here), which
    /// `tcpq doctor` pays and a run should not.
    pub fn detect(
        needs: &Needs,
        btf: Result<&Btf, &BtfError>,
        btf_from_flag: bool,
        tracefs: Option<&Tracefs>,
        try_attach: bool,
    ) -> KernelFeatures {
        use crate::probe_kernel as pk;
        let mut f = KernelFeatures {
            kernel: uname(),
            btf: match btf {
                Ok(b) if b.type_count() <= 1 => BtfInfo {
                    path: None,
                    from_flag: btf_from_flag,
                    error: Some(format!("{} holds no types", b.path().display())),
                },
                Ok(b) => BtfInfo {
                    path: Some(b.path().display().to_string()),
                    from_flag: btf_from_flag,
                    error: None,
                },
                Err(e) => BtfInfo {
                    path: None,
                    from_flag: btf_from_flag,
                    error: Some(e.to_string()),
                },
            },
            tracefs: tracefs.map(|t| t.root().display().to_string()),
            privilege: privilege_info(),
            ..KernelFeatures::default()
        };

        // Tracepoints and their formats.
        for (c, n) in &needs.tracepoints {
            let exists = tracefs.is_some_and(|t| t.exists(c, n));
            f.tracepoints.insert(format!("{c}:{n}"), exists);
        }
        for (c, n) in &needs.formats {
            if let Some(Ok(fmt)) = tracefs.map(|t| t.format(c, n)) {
                let mut fields: Vec<String> = fmt.fields.keys().cloned().collect();
                fields.sort();
                f.tracepoint_fields.insert(format!("{c}:{n}"), fields);
            }
        }
        let names: Vec<&str> = needs.raw_tracepoints.iter().map(String::as_str).collect();
        let mut protos = btf
            .ok()
            .map(|b| b.raw_tracepoint_args_many(&names))
            .unwrap_or_default();
        for name in &needs.raw_tracepoints {
            let args = protos.remove(name.as_str()).and_then(|r| r.ok().flatten());
            f.raw_tracepoint_args.insert(name.clone(), args);
        }

        // Functions: kallsyms and BTF. Only kprobes need kallsyms, and the
        // kernel takes ~36 ms to list it (measured here, `time cat
        // /proc/kallsyms`): a run skips it on kernels without kprobes.
        let pmu = std::fs::read_to_string("/sys/bus/event_source/devices/kprobe/type")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        let syms = match pmu.is_some() || try_attach {
            true => kallsyms(&needs.functions),
            false => None,
        };
        let names: Vec<&str> = needs.functions.iter().map(String::as_str).collect();
        let btf_funcs = btf.ok().map(|b| b.find_funcs(&names)).unwrap_or_default();
        for name in &needs.functions {
            f.functions.insert(
                name.clone(),
                FunctionInfo {
                    kallsyms: syms.as_ref().is_some_and(|s| s.contains(name)),
                    btf: btf_funcs.contains_key(name.as_str()),
                },
            );
        }

        // Program types: aya's own probes (`aya::sys::is_program_supported`,
        // libbpf's way: load `r0 = 0; exit`). They answer only "does it
        // load" and keep no program, so the attach tries below (doctor)
        // load their own through `probe_kernel`, which aya has no probe for.
        let tp_loads = aya_support(
            "load a tracepoint program",
            aya::sys::is_program_supported(ProgramType::TracePoint),
        );
        let tp_target = needs
            .tracepoints
            .iter()
            .find_map(|(c, n)| tracefs.and_then(|t| t.event_id(c, n).map(|id| (c, n, id))));
        f.attach_types.insert(
            "tracepoint".into(),
            match (tp_loads.ok, tp_target) {
                (true, Some(_)) if !try_attach => Support::from("loads (attach not tried)", Ok(())),
                (true, Some((c, n, id))) => Support::from(
                    &format!("attach to tracepoint {c}:{n}"),
                    pk::load_trivial(pk::PROG_TRACEPOINT)
                        .and_then(|prog| pk::try_tracepoint(&prog, id)),
                ),
                (false, _) => Support::no("not tried: tracepoint programs do not load"),
                (_, None) => Support::no("not tried: no tracepoint to attach to (no tracefs?)"),
            },
        );
        f.program_types.insert("tracepoint".into(), tp_loads);

        let raw_loads = aya_support(
            "load a raw tracepoint program",
            aya::sys::is_program_supported(ProgramType::RawTracePoint),
        );
        let raw_target = needs
            .tracepoints
            .iter()
            .find(|(c, n)| tracefs.is_none_or(|t| t.exists(c, n)));
        f.attach_types.insert(
            "raw_tracepoint".into(),
            match (raw_loads.ok, raw_target) {
                (true, Some(_)) if !try_attach => Support::from("loads (attach not tried)", Ok(())),
                (true, Some((c, n))) => Support::from(
                    &format!("attach to raw tracepoint {c}:{n}"),
                    pk::load_trivial(pk::PROG_RAW_TRACEPOINT)
                        .and_then(|prog| pk::try_raw_tracepoint(&prog, n)),
                ),
                (false, _) => Support::no("not tried: raw tracepoint programs do not load"),
                (_, None) => Support::no("not tried: no tracepoint to attach to"),
            },
        );
        f.program_types.insert("raw_tracepoint".into(), raw_loads);

        let kprobe_loads = aya_support(
            "load a kprobe program",
            aya::sys::is_program_supported(ProgramType::KProbe),
        );
        let kprobe_target = f
            .functions
            .iter()
            .find(|(_, i)| i.kallsyms)
            .map(|(n, _)| n.clone());
        f.attach_types.insert(
            "kprobe".into(),
            match (kprobe_loads.ok, pmu, kprobe_target) {
                (_, None, _) => Support::no(
                    "no kprobe PMU (/sys/bus/event_source/devices/kprobe): kernel built without CONFIG_KPROBES",
                ),
                (false, ..) => Support::no("not tried: kprobe programs do not load"),
                (true, Some(_), _) if !try_attach => {
                    Support::from("kprobe PMU present (attach not tried)", Ok(()))
                }
                (true, Some(pmu), Some(func)) => Support::from(
                    &format!("attach a kprobe to {func}"),
                    pk::load_trivial(pk::PROG_KPROBE)
                        .and_then(|prog| pk::try_kprobe(&prog, pmu, &func)),
                ),
                (true, Some(_), None) => {
                    Support::no("not tried: none of the watched functions is in kallsyms")
                }
            },
        );
        f.program_types.insert("kprobe".into(), kprobe_loads);

        // fentry stays a raw probe: aya's (`ProgramType::Tracing`) parses
        // the whole sysfs BTF (`Btf::from_sys_fs`, ignoring `--btf`) to
        // find `bpf_fentry_test1`, and tries that function's trampoline;
        // tcpq loads on the function it would attach to, by its id in the
        // BTF it already indexed.
        let fentry_target = needs
            .functions
            .iter()
            .find_map(|n| btf_funcs.get(n.as_str()).map(|id| (n.clone(), *id)));
        let (load, attach) = match fentry_target {
            None if btf.is_err() => (
                Support::no("not tried: fentry needs the kernel's BTF"),
                Support::no("not tried: fentry needs the kernel's BTF"),
            ),
            None => (
                Support::no("not tried: none of the watched functions is in BTF"),
                Support::no("not tried: none of the watched functions is in BTF"),
            ),
            Some((func, id)) => match pk::load_fentry(id) {
                Err(e) => (
                    Support::from(&format!("load an fentry program on {func}"), Err(e)),
                    Support::no("not tried: fentry programs do not load"),
                ),
                Ok(_) if !try_attach => (
                    Support::from(&format!("load an fentry program on {func}"), Ok(())),
                    Support::from("loads (attach not tried)", Ok(())),
                ),
                Ok(prog) => (
                    Support::from(&format!("load an fentry program on {func}"), Ok(())),
                    Support::from(
                        &format!("attach an fentry trampoline to {func}"),
                        pk::try_fentry(&prog),
                    ),
                ),
            },
        };
        f.program_types.insert("tracing".into(), load);
        f.attach_types.insert("fentry".into(), attach);

        f.ring_buffer = aya_support(
            "create a ring buffer map",
            aya::sys::is_map_supported(MapType::RingBuf),
        );
        f.probe_read_kernel = aya_support(
            "load a tracepoint program calling bpf_probe_read_kernel",
            aya::sys::is_helper_supported(
                ProgramType::TracePoint,
                aya::sys::BpfHelper::BPF_FUNC_probe_read_kernel,
            ),
        );
        f
    }
}

/// One of aya's feature probes as a [`Support`]: `Ok(false)` is the
/// kernel's refusal that aya reads as "not supported" (EINVAL, or an
/// unknown helper in the verifier log); an error is any other answer
/// (EPERM without privileges), with its cause.
fn aya_support<E: std::error::Error>(what: &str, r: Result<bool, E>) -> Support {
    match r {
        Ok(true) => Support::from(what, Ok(())),
        Ok(false) => Support::no(format!("{what}: not supported by this kernel")),
        Err(e) => {
            let mut detail = format!("{what}: {e}");
            let mut cause = e.source();
            while let Some(c) = cause {
                detail.push_str(&format!(": {c}"));
                cause = c.source();
            }
            Support::no(detail)
        }
    }
}
