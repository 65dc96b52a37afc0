//! The plan: what the runtime loads, attaches and writes into maps. A plain
//! serialisable value; producing it never touches the kernel.
use serde::{Deserialize, Serialize};

/// A checked program, lowered (`lower.rs`): everything the runtime
/// loads, attaches and writes into maps, and why, but the numbers of this
/// kernel (offsets, HZ, named constants), which binding fills in.
/// Serialised for `--explain`'s tests and the snapshots; never read back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub clauses: Vec<ClausePlan>,
    /// Clauses a `bool` parameter switched off (`where not $bytes and
    /// ...` with `--param bytes=true`), in words: they attach nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<String>,
    /// Bytes of each printing clause's `EVENTS` ring buffer (a power of
    /// two and a multiple of the page size, checked by the kernel at
    /// load); `None`: the size built into the template (1 MiB). Several
    /// printing clauses share 1 MiB (`lower::default_ring_bytes`);
    /// `--buffer-size` sets it ([`Plan::set_ring_bytes`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring_bytes: Option<u32>,
    /// When the owner programs attach: `None` when no clause shows or
    /// tests `pid` or `comm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_io: Option<OwnerIo>,
}

impl Plan {
    /// `--buffer-size BYTES`: every printing clause's ring buffer.
    pub fn set_ring_bytes(&mut self, bytes: u32) {
        self.ring_bytes = Some(bytes);
    }
}

/// When the session attaches the owner program on every send and receive
/// (`tcpq_abi::programs`' owner programs; the others attach at start).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnerIo {
    /// Before the main programs: a filter or an aggregation over `pid` or
    /// `comm` runs in the kernel and needs every socket's owner.
    AtStart,
    /// At the first event: every clause using the owner only prints it,
    /// and a program that matches nothing costs the host nothing on its
    /// sends and receives.
    AtFirstEvent,
}

/// Which per-CPU hash map a clause aggregates into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AggMap {
    /// `AGG_SMALL`: a key of two words or fewer, the bucket included
    /// ([`tcpq_abi::small_key`]).
    Small,
    /// `AGG`: a longer key.
    Large,
}

impl AggMap {
    /// The map's name in the template object.
    pub fn map_name(self) -> &'static str {
        match self {
            AggMap::Small => tcpq_abi::maps::AGG_SMALL,
            AggMap::Large => tcpq_abi::maps::AGG,
        }
    }
}

/// The kernel locations (`tcpq_abi::off` entries of the `OFFSETS` table)
/// a field needs: without one of them the field cannot be read here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldNeeds {
    pub field: String,
    pub offsets: Vec<u32>,
}

/// The quick first step ([`tcpq_abi::Quick`]) one strategy's program can
/// take for a clause: everything but where its value lies in this
/// kernel's memory, which the runtime gives [`QuickPlan::place`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QuickPlan {
    /// The `OFFSETS` entry of the value (in the program's record when
    /// `record`, else in the socket); `None`: the program computes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<u32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub record: bool,
    pub slot: u8,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flags: u8,
    pub mask: u64,
    pub base: u64,
    pub span: u64,
}

impl QuickPlan {
    /// The ABI step, its value at `loc` (this kernel's location of
    /// [`QuickPlan::entry`], `None` when unresolved). No step when the
    /// location is not one load of a whole field of 1, 2, 4 or 8 bytes the
    /// program can read ([`tcpq_abi::quick::readable`]).
    pub fn place(&self, loc: Option<tcpq_abi::FieldLoc>) -> tcpq_abi::Quick {
        use tcpq_abi::Quick;
        let (off, size) = match (self.entry, loc) {
            (None, _) => (0, Quick::COMPUTED),
            (Some(_), Some(l))
                if l.bit_size == 0 && tcpq_abi::quick::readable(self.record, l.off, l.size) =>
            {
                (l.off, l.size)
            }
            (Some(_), _) => return Quick::NONE,
        };
        Quick {
            off,
            size,
            _reserved: 0,
            slot: self.slot,
            flags: self.flags,
            mask: self.mask,
            base: self.base,
            span: self.span,
        }
    }
}

/// One `on PROBE ...` clause.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClausePlan {
    /// The probe's catalog name, e.g. `tcp_select_window`.
    pub probe: String,
    /// The prebuilt template object, `probe-templates/prebuilt/<template>.bpfel.o`.
    pub template: String,
    /// Ways to observe the probe's moment, best first. The runtime takes the
    /// first one this kernel supports.
    pub strategies: Vec<Strategy>,
    /// The `where` clause as written, for `--explain`.
    pub where_source: Option<String>,
    /// The `where` clause in plain words, parameters substituted, for
    /// `--explain` (e.g. "`win` is 0 and `sport` is 8080 (from `$port`)").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub where_words: Option<String>,
    /// Comparisons of the `where` clause left out because an optional
    /// recipe parameter they use was not given (`dport == $port`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub where_omitted: Vec<String>,
    /// The `where` clause compiled to filter instructions (empty: accept all).
    pub filter: Vec<Insn>,
    /// Filter instructions whose value is a kernel enum constant by name
    /// (`reason == NETFILTER_DROP`): the runtime looks each up in the
    /// running kernel's BTF and writes it into the instruction before
    /// loading ([`EnumBind`]). Until then the instruction's value is 0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub binds: Vec<InsnBind>,
    /// Where the program first names each field the clause uses: a field
    /// the running kernel lacks is pointed at from here, without the
    /// source being parsed again. Not part of the plan's serialised form
    /// (a location in one source text, like a diagnostic's).
    #[serde(default, skip_serializing)]
    pub field_spans: Vec<FieldSpan>,
    /// Where the program names the probe (`on PROBE`): a probe this
    /// kernel cannot run is pointed at from here. Not serialised either.
    #[serde(default, skip_serializing)]
    pub probe_span: (usize, usize),
    pub action: Action,
    /// Kernel values the template must read into slots for this program
    /// (socket fields the program uses, and only those).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loads: Vec<LoadSpec>,
    /// The probe fields the clause reads (its filter's and its columns',
    /// by field name, each once, in first-use order; header columns are
    /// not among them): what a strategy must fill.
    pub fields: Vec<String>,
    /// What each field needs of the kernel's layout.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<FieldNeeds>,
    /// The template's `CONFIG` entry, as the kernel will read it, but
    /// for the quick step (the chosen strategy's [`Strategy::quick`],
    /// placed by the runtime) and the values of [`ClausePlan::binds`].
    #[serde(serialize_with = "config_json")]
    pub config: tcpq_abi::TemplateConfig,
    /// The aggregation's map; `None` for `print`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agg_map: Option<AggMap>,
    /// Userspace output options (`top`, `every`, `limit`).
    #[serde(default, skip_serializing_if = "Output::is_default")]
    pub output: Output,
    /// The metric `tcpq serve` exports the aggregation as (`as NAME`, or
    /// derived: [`crate::metrics`]); `None` for `print`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<Metric>,
    /// Where the action is written (`print ...`, `count by ...`), for a
    /// diagnostic about the whole clause's output (`tcpq serve` refusing
    /// a `print`). Not serialised (a location in one source text).
    #[serde(default, skip_serializing)]
    pub action_span: (usize, usize),
    /// Each modifier (`top`, `every`, `limit`) and where it is written.
    /// Not serialised either.
    #[serde(default, skip_serializing)]
    pub modifier_spans: Vec<(&'static str, (usize, usize))>,
}

/// An aggregation's metric name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Metric {
    /// The name Prometheus shows, before the suffixes its formats add
    /// (`_total` to a counter, `_sum`/`_count`/`_bucket`).
    pub name: String,
    /// Named by the program (`as NAME`); else derived from the probe and
    /// the aggregation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub given: bool,
    /// Where `as NAME` names it. Not serialised.
    #[serde(default, skip_serializing)]
    pub span: Option<(usize, usize)>,
}

/// What userspace does with a clause's results; never changes what is
/// loaded or written into maps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    /// `top N`: keep the N largest keys of an aggregation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top: Option<u64>,
    /// `every DUR`: print and reset the aggregation every this many ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_ms: Option<u64>,
    /// `limit N`: print at most N events, then stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

impl Output {
    pub fn is_default(&self) -> bool {
        *self == Output::default()
    }
}

/// Serialisable mirror of `tcpq_abi::Load`: read the `OFFSETS` entry `off`
/// (following the pointers at the entries in `via` first) from `base`,
/// shift right by `shr`, store in `slot`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadSpec {
    pub field: String,
    pub slot: u8,
    /// `sock`, `skb` or `task`.
    pub base: LoadBase,
    pub off: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub via: Vec<u32>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub shr: u8,
    /// The kernel value counts jiffies: the template converts it to
    /// microseconds with the kernel's HZ.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub jiffies: bool,
}

fn is_zero(v: &u8) -> bool {
    *v == 0
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadBase {
    Sock,
    Skb,
    Task,
}

impl LoadSpec {
    /// The ABI form written into the template's config map.
    pub fn to_abi(&self) -> tcpq_abi::Load {
        let mut via = [tcpq_abi::VIA_NONE; 3];
        for (d, s) in via.iter_mut().zip(&self.via) {
            *d = *s as u8;
        }
        tcpq_abi::Load {
            slot: self.slot,
            base: match self.base {
                LoadBase::Sock => tcpq_abi::base::SOCK,
                LoadBase::Skb => tcpq_abi::base::SKB,
                LoadBase::Task => tcpq_abi::base::TASK,
            },
            off: self.off as u8,
            shr: self.shr,
            via,
            scale: if self.jiffies {
                tcpq_abi::scale::JIFFIES_TO_US
            } else {
                tcpq_abi::scale::NONE
            },
        }
    }
}

impl Action {
    /// Whether the aggregated value is a signed number: the template then
    /// compares it as `i64` (`TemplateConfig::agg_signed`) and userspace
    /// reads sums, least and greatest values back as `i64`.
    pub fn aggregates_signed(&self) -> bool {
        matches!(
            self,
            Action::Aggregate {
                value: Column {
                    ty: FieldType::Int(_),
                    ..
                },
                ..
            }
        )
    }
}

impl ClausePlan {
    /// Whether the clause shows or tests the socket's owner (`pid`,
    /// `comm`): only then does the runtime track owners.
    pub fn uses_owner(&self) -> bool {
        self.config.owner != 0
    }

    /// [`ClausePlan::fields`].
    pub fn fields_used(&self) -> &[String] {
        &self.fields
    }

    /// Give filter step `insn` the value `value` (a named kernel
    /// constant's number, [`ClausePlan::binds`]), in the plan's steps and
    /// in the `CONFIG` entry alike. False when there is no such step.
    pub fn bind_value(&mut self, insn: u16, value: u64) -> bool {
        let k = usize::from(insn);
        match (self.filter.get_mut(k), self.config.insns.get_mut(k)) {
            (Some(step), Some(abi)) if k < self.config.n_insns as usize => {
                step.value = value;
                abi.value = value;
                true
            }
            _ => false,
        }
    }
}

/// [`ClausePlan::config`] as JSON: every member in the ABI's order, each
/// array cut to the entries its count makes valid, names for the action
/// and the bucket kind.
fn config_json<S: serde::Serializer>(
    c: &tcpq_abi::TemplateConfig,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    #[derive(Serialize)]
    struct Load {
        slot: u8,
        base: u8,
        off: u8,
        shr: u8,
        via: [u8; 3],
        scale: u8,
    }
    #[derive(Serialize)]
    struct Step {
        slot: u8,
        op: u8,
        flags: u8,
        jt: u16,
        jf: u16,
        mask: u64,
        value: u64,
    }
    let n = |k: u32, max: usize| (k as usize).min(max);
    let mut st = s.serialize_struct("TemplateConfig", 24)?;
    st.serialize_field(
        "action",
        match c.action {
            tcpq_abi::action::PRINT => "print",
            tcpq_abi::action::COUNT => "count",
            _ => "none",
        },
    )?;
    st.serialize_field("n_insns", &c.n_insns)?;
    st.serialize_field("n_key_slots", &c.n_key_slots)?;
    st.serialize_field("n_loads", &c.n_loads)?;
    st.serialize_field(
        "key_slots",
        &c.key_slots[..n(c.n_key_slots, tcpq_abi::MAX_KEY_SLOTS)],
    )?;
    st.serialize_field("agg_slot", &c.agg_slot)?;
    st.serialize_field(
        "bucket",
        match c.bucket {
            tcpq_abi::bucket::LOG2 => "log2",
            tcpq_abi::bucket::LINEAR => "linear",
            _ => "none",
        },
    )?;
    st.serialize_field("filter_early", &c.filter_early)?;
    st.serialize_field("agg_signed", &c.agg_signed)?;
    st.serialize_field("early_probe", &c.early_probe)?;
    st.serialize_field("owner", &c.owner)?;
    st.serialize_field("lin_min", &c.lin_min)?;
    st.serialize_field("lin_max", &c.lin_max)?;
    st.serialize_field("lin_step", &c.lin_step)?;
    let loads: Vec<Load> = c.loads[..n(c.n_loads, tcpq_abi::MAX_LOADS)]
        .iter()
        .map(|l| Load {
            slot: l.slot,
            base: l.base,
            off: l.off,
            shr: l.shr,
            via: l.via,
            scale: l.scale,
        })
        .collect();
    st.serialize_field("loads", &loads)?;
    let insns: Vec<Step> = c.insns[..n(c.n_insns, tcpq_abi::MAX_INSNS)]
        .iter()
        .map(|i| Step {
            slot: i.slot,
            op: i.op,
            flags: i.flags,
            jt: i.jt,
            jf: i.jf,
            mask: i.mask,
            value: i.value,
        })
        .collect();
    st.serialize_field("insns", &insns)?;
    st.serialize_field("common", &format!("{:#06x}", c.common))?;
    st.serialize_field("probe", &format!("{:#06x}", c.probe))?;
    st.serialize_field("probe_before", &format!("{:#06x}", c.probe_before))?;
    st.serialize_field("probe_after", &format!("{:#06x}", c.probe_after))?;
    st.serialize_field("n_clear_probe", &c.n_clear_probe)?;
    st.serialize_field("n_clear", &c.n_clear)?;
    st.serialize_field(
        "clear",
        &c.clear[..(c.n_clear as usize).min(tcpq_abi::N_SLOTS)],
    )?;
    st.end()
}

/// One way to attach a probe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Strategy {
    /// Short name shown by `--explain`, e.g. `net_dev_queue`.
    pub name: String,
    /// Program name inside the template object.
    pub program: String,
    pub attach: Attach,
    /// One line on what this strategy observes.
    pub how: String,
    /// Further programs of the same template the strategy attaches (a
    /// probe observed at several kernel points, e.g. resets sent and
    /// received).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<ExtraProgram>,
    /// What the kernel must offer beyond the attach point itself (which
    /// [`Attach::requirements`] derives), for the strategy to run at all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<Requirement>,
    /// The probe fields this strategy can fill; empty means every one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provides: Vec<String>,
    /// Fields that need more than the strategy itself: without these
    /// requirements the strategy still runs, but cannot fill those fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub field_requires: Vec<FieldRequirement>,
    /// The quick first step this strategy's program can take for the
    /// clause (set by lowering; none outside a plan).
    #[serde(default, skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub quick: Option<QuickPlan>,
}

/// One more program a strategy loads and attaches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraProgram {
    pub program: String,
    pub attach: Attach,
    /// The fields this program is there for: it is attached only for a
    /// clause that uses one of them. Empty: always attached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only_for: Vec<String>,
}

/// Fields a strategy can fill only when the kernel offers more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldRequirement {
    pub fields: Vec<String>,
    pub requires: Vec<Requirement>,
}

/// Something a strategy needs from the kernel, checked against what was
/// found by trying (`tcpq_runtime::features::KernelFeatures`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Requirement {
    /// The kernel's BTF (`/sys/kernel/btf/vmlinux` or `--btf PATH`), for
    /// struct member offsets.
    Btf,
    /// The `bpf_probe_read_kernel` helper (kernel memory behind pointers).
    ProbeReadKernel,
    /// Ring buffer maps (every template carries one).
    RingBuffer,
    /// A classic tracepoint exists (also derived from [`Attach::Tracepoint`]).
    Tracepoint { category: String, name: String },
    /// A raw tracepoint exists and raw tracepoint programs load.
    RawTracepoint { category: String, name: String },
    /// A field in a classic tracepoint's format file.
    TracepointField {
        category: String,
        name: String,
        field: String,
    },
    /// Argument `position` of a raw tracepoint's `TP_PROTO` has C type
    /// `ty` in the kernel's BTF.
    RawTracepointArg {
        name: String,
        position: usize,
        ty: String,
    },
    /// Kprobes work and `function` is in kallsyms (not inlined).
    Kprobe { function: String },
    /// fentry/fexit programs load and attach, and `function` is in BTF.
    Fentry { function: String },
}

impl Requirement {
    /// In words, for `--explain` and `tcpq doctor`.
    pub fn describe(&self) -> String {
        match self {
            Requirement::Btf => "kernel BTF".into(),
            Requirement::ProbeReadKernel => "bpf_probe_read_kernel".into(),
            Requirement::RingBuffer => "ring buffer maps".into(),
            Requirement::Tracepoint { category, name } => {
                format!("tracepoint {category}:{name}")
            }
            Requirement::RawTracepoint { category, name } => {
                format!("raw tracepoint {category}:{name}")
            }
            Requirement::TracepointField {
                category,
                name,
                field,
            } => format!("field `{field}` of tracepoint {category}:{name}"),
            Requirement::RawTracepointArg { name, position, ty } => {
                format!("raw tracepoint {name} argument {position} of type `{ty}`")
            }
            Requirement::Kprobe { function } => format!("kprobe on {function}"),
            Requirement::Fentry { function } => format!("fentry on {function}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Attach {
    /// A classic tracepoint `category:name`: fields at the offsets of its
    /// format file.
    Tracepoint { category: String, name: String },
    /// A raw tracepoint (`BPF_PROG_TYPE_RAW_TRACEPOINT`) on the tracepoint
    /// `category:name`: its `TP_PROTO` arguments, checked against the
    /// kernel's BTF.
    RawTracepoint { category: String, name: String },
    /// A kprobe (`ret`: kretprobe) on a kernel function.
    Kprobe { function: String, ret: bool },
    /// An fentry (`exit`: fexit) program on a kernel function (BTF typed
    /// arguments, a BPF trampoline).
    Fentry { function: String, exit: bool },
}

impl Attach {
    /// The attach point: a tracepoint as `category:name`, a function by
    /// name.
    pub fn point(&self) -> String {
        match self {
            Attach::Tracepoint { category, name } | Attach::RawTracepoint { category, name } => {
                format!("{category}:{name}")
            }
            Attach::Kprobe { function, .. } | Attach::Fentry { function, .. } => function.clone(),
        }
    }

    /// `tracepoint net:net_dev_queue`, `raw tracepoint tcp:tcp_probe`,
    /// `kretprobe tcp_sendmsg`, `fexit tcp_retransmit_skb`.
    pub fn describe(&self) -> String {
        format!("{} {}", self.kind(), self.point())
    }

    /// `tracepoint`, `raw tracepoint`, `kprobe`, `kretprobe`, `fentry`,
    /// `fexit`.
    pub fn kind(&self) -> &'static str {
        match self {
            Attach::Tracepoint { .. } => "tracepoint",
            Attach::RawTracepoint { .. } => "raw tracepoint",
            Attach::Kprobe { ret: false, .. } => "kprobe",
            Attach::Kprobe { ret: true, .. } => "kretprobe",
            Attach::Fentry { exit: false, .. } => "fentry",
            Attach::Fentry { exit: true, .. } => "fexit",
        }
    }

    /// What attaching this way needs from the kernel.
    pub fn requirement(&self) -> Requirement {
        match self.clone() {
            Attach::Tracepoint { category, name } => Requirement::Tracepoint { category, name },
            Attach::RawTracepoint { category, name } => {
                Requirement::RawTracepoint { category, name }
            }
            Attach::Kprobe { function, .. } => Requirement::Kprobe { function },
            Attach::Fentry { function, .. } => Requirement::Fentry { function },
        }
    }
}

/// The ABI's attach point (`tcpq_abi::programs`, where the catalog's
/// strategies and the owner programs are written), as the plan carries it.
impl From<tcpq_abi::programs::Attach> for Attach {
    fn from(a: tcpq_abi::programs::Attach) -> Attach {
        use tcpq_abi::programs::Attach as Abi;
        let s = |x: &str| x.to_string();
        match a {
            Abi::Tracepoint { category, name } => Attach::Tracepoint {
                category: s(category),
                name: s(name),
            },
            Abi::RawTracepoint { category, name } => Attach::RawTracepoint {
                category: s(category),
                name: s(name),
            },
            Abi::Kprobe { function } => Attach::Kprobe {
                function: s(function),
                ret: false,
            },
            Abi::Kretprobe { function } => Attach::Kprobe {
                function: s(function),
                ret: true,
            },
            Abi::Fentry { function } => Attach::Fentry {
                function: s(function),
                exit: false,
            },
            Abi::Fexit { function } => Attach::Fentry {
                function: s(function),
                exit: true,
            },
        }
    }
}

impl Strategy {
    /// Every requirement: the attach point's first, then the declared ones.
    pub fn requirements(&self) -> Vec<Requirement> {
        let mut all = vec![self.attach.requirement()];
        all.extend(self.requires.iter().cloned());
        all
    }
}

/// A filter instruction's value, named: the constant `constant` of the
/// kernel's `enum enum_name`, as written at `span` in the source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnumBind {
    /// The BTF enum, e.g. `skb_drop_reason`.
    pub enum_name: String,
    /// The full constant, e.g. `SKB_DROP_REASON_NETFILTER_DROP`.
    pub constant: String,
    /// Byte range of the name in the program source.
    pub span: (usize, usize),
}

/// Instruction `insn` of the filter takes the value of `bind`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InsnBind {
    pub insn: u16,
    pub bind: EnumBind,
}

/// Serialisable mirror of `tcpq_abi::FilterInsn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Insn {
    pub slot: u8,
    /// One of `==`, `!=`, `<`, `<=`, `>`, `>=`.
    pub op: CmpOp,
    pub signed: bool,
    pub mask: u64,
    pub value: u64,
    pub jt: Jump,
    pub jf: Jump,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmpOp {
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Jump {
    To(u16),
    Accept,
    Reject,
}

/// An arithmetic operator as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArithOp {
    #[serde(rename = "/")]
    Div,
    #[serde(rename = "*")]
    Mul,
    #[serde(rename = "+")]
    Add,
    #[serde(rename = "-")]
    Sub,
}

impl ArithOp {
    pub fn symbol(self) -> &'static str {
        match self {
            ArithOp::Div => "/",
            ArithOp::Mul => "*",
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
        }
    }
}

/// What to do with a record that passed the filter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Stream each record; print these columns.
    Print { columns: Vec<Column> },
    /// Count in the kernel by these key columns (none: one total).
    Count { keys: Vec<Column> },
    /// Aggregate `value` in the kernel by these key columns: the kernel
    /// keeps count, sum, min and max per key (per CPU); `hist`/`lhist` add
    /// the value's bucket as the last key slot.
    Aggregate {
        func: AggFunc,
        value: Column,
        keys: Vec<Column>,
    },
}

/// An aggregation of a value. `avg` and `stats` are computed in userspace
/// from the kernel's per-CPU count, sum, min and max.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggFunc {
    Sum,
    Avg,
    Min,
    Max,
    /// count, avg, min, max.
    Stats,
    /// Power-of-two buckets (`tcpq_abi::bucket::LOG2`).
    Hist,
    /// Linear buckets (`tcpq_abi::bucket::LINEAR`). The bounds are signed
    /// so that a signed value can have negative ones; an unsigned value's
    /// are never negative.
    Lhist {
        min: i64,
        max: i64,
        step: u64,
    },
}

impl AggFunc {
    pub fn word(self) -> &'static str {
        match self {
            AggFunc::Sum => "sum",
            AggFunc::Avg => "avg",
            AggFunc::Min => "min",
            AggFunc::Max => "max",
            AggFunc::Stats => "stats",
            AggFunc::Hist => "hist",
            AggFunc::Lhist { .. } => "lhist",
        }
    }

    /// Whether the value's bucket is a key slot.
    pub fn is_histogram(self) -> bool {
        matches!(self, AggFunc::Hist | AggFunc::Lhist { .. })
    }
}

impl Action {
    /// Every column the action reads (printed fields, keys, values).
    pub fn columns(&self) -> Box<dyn Iterator<Item = &Column> + '_> {
        match self {
            Action::Print { columns } => Box::new(columns.iter()),
            Action::Count { keys } => Box::new(keys.iter()),
            Action::Aggregate { value, keys, .. } => {
                Box::new(keys.iter().chain(std::iter::once(value)))
            }
        }
    }

    /// The key columns of an aggregation (none for `print`).
    pub fn keys(&self) -> &[Column] {
        match self {
            Action::Print { .. } => &[],
            Action::Count { keys } | Action::Aggregate { keys, .. } => keys,
        }
    }

    pub fn is_print(&self) -> bool {
        matches!(self, Action::Print { .. })
    }
}

/// A field as output: where its value lives in the record and how to show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Header / JSON key.
    pub name: String,
    pub ty: FieldType,
    /// Record slots holding the value (two for addresses and `comm`);
    /// empty for a column from the event's header.
    pub slots: Vec<u8>,
    /// Where the value comes from: the record's slots, or the header of
    /// an event record (time, CPU).
    #[serde(default, skip_serializing_if = "Source::is_slots")]
    pub source: Source,
    /// `FIELD / CONST` or `FIELD * CONST` in a `print`, computed in
    /// userspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<Scale>,
    /// A boolean shown in text as one of two words, `[false, true]`
    /// (`tlp`: `R`, `L`); JSON shows the boolean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<[String; 2]>,
}

/// Where a column's value comes from.
///
/// The filter and the aggregation keys read only slots: the template
/// stamps an event's header (`tcpq_abi::Event::ktime_ns`, `cpu`) after
/// the filter, on records it sends to userspace, so a header column can
/// be printed but never filtered on or aggregated by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// [`Column::slots`] of the record.
    #[default]
    Slots,
    /// The event record's header.
    Header(Header),
}

impl Source {
    pub fn is_slots(&self) -> bool {
        *self == Source::Slots
    }
}

/// A value of an event record's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Header {
    /// The wall clock when the event was stamped: `ktime` plus the offset
    /// of CLOCK_REALTIME from CLOCK_MONOTONIC, measured once at start.
    Time,
    /// `bpf_ktime_get_ns()` when the event was stamped: CLOCK_MONOTONIC,
    /// nanoseconds.
    Ktime,
    /// `bpf_get_smp_processor_id()`: the CPU the event was stamped on.
    Cpu,
}

/// Userspace arithmetic on a printed value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scale {
    /// `/` or `*`.
    pub op: ArithOp,
    pub by: u64,
}

impl Scale {
    /// Apply to an unsigned value (division rounds down; multiplication
    /// saturates).
    pub fn apply(&self, v: u64) -> u64 {
        match self.op {
            ArithOp::Div if self.by != 0 => v / self.by,
            ArithOp::Mul => v.saturating_mul(self.by),
            _ => v,
        }
    }
}

/// A field's type; units are part of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Unsigned integer with a unit.
    Uint(Unit),
    /// Signed integer with a unit (errors, return values).
    Int(Unit),
    Bool,
    /// IPv4 or IPv6 address (16 bytes, IPv4 mapped).
    Addr,
    Port,
    /// A task's `comm` (16 bytes).
    Comm,
    /// A TCP state (`sk_state`), shown by name.
    TcpState,
    /// An address family, shown by name (`AF_INET`, `AF_INET6`).
    Family,
    /// A wall-clock time: nanoseconds since the Unix epoch, shown as RFC
    /// 3339 in UTC with microseconds (`2026-12-07T05:46:01.123456Z`).
    Time,
}

/// Where a program names a field: byte offsets into its source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSpan {
    pub field: String,
    pub span: (usize, usize),
}

impl ClausePlan {
    /// Where the program first names `field`, if it does.
    pub fn field_span(&self, field: &str) -> Option<(usize, usize)> {
        self.field_spans
            .iter()
            .find(|f| f.field == field)
            .map(|f| f.span)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    None,
    Bytes,
    Micros,
    Millis,
    /// Nanoseconds (`ktime`, a point on CLOCK_MONOTONIC): shown as a plain
    /// number.
    Nanos,
    Segments,
    /// An `enum skb_drop_reason` value, shown by name (from the kernel's
    /// BTF).
    DropReason,
    /// An `enum sk_rst_reason` value, shown by name.
    RstReason,
    /// A kernel text address, shown as `function+offset` (from kallsyms).
    KernelSymbol,
    /// A kernel data address, shown in hex (`0xffff8881...`; a string in
    /// JSON, which cannot hold 64-bit integers exactly).
    Address,
    /// An error as the kernel passes it (with [`FieldType::Int`]): 0, a
    /// negative errno, or `NET_XMIT_DROP` (1); shown by name (`EPERM`), 0
    /// as `0`. Programs compare it with names (`err == EPERM`).
    Errno,
}

impl Insn {
    /// The ABI form written into the template's config map.
    pub fn to_abi(&self) -> tcpq_abi::FilterInsn {
        use tcpq_abi::op;
        let jump = |j: Jump| match j {
            Jump::To(i) => i,
            Jump::Accept => tcpq_abi::JUMP_ACCEPT,
            Jump::Reject => tcpq_abi::JUMP_REJECT,
        };
        tcpq_abi::FilterInsn {
            slot: self.slot,
            op: match self.op {
                CmpOp::Eq => op::EQ,
                CmpOp::Ne => op::NE,
                CmpOp::Lt => op::LT,
                CmpOp::Le => op::LE,
                CmpOp::Gt => op::GT,
                CmpOp::Ge => op::GE,
            },
            flags: if self.signed {
                tcpq_abi::INSN_SIGNED
            } else {
                0
            },
            _pad: 0,
            jt: jump(self.jt),
            jf: jump(self.jf),
            mask: self.mask,
            value: self.value,
        }
    }
}
