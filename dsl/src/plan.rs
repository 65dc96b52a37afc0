//! The plan: what the runtime loads, attaches and writes into maps. A plain
//! serialisable value; producing it never touches the kernel.
use serde::{Deserialize, Serialize};

/// A checked program, compiled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub clauses: Vec<ClausePlan>,
}

/// One `on PROBE ...` clause.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The `where` clause compiled to filter instructions (empty: accept all).
    pub filter: Vec<Insn>,
    pub action: Action,
    /// Kernel values the template must read into slots for this program
    /// (socket fields the program uses, and only those).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loads: Vec<LoadSpec>,
    /// Userspace output options (`top`, `every`, `limit`).
    #[serde(default, skip_serializing_if = "Output::is_default")]
    pub output: Output,
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
            _pad: 0,
        }
    }
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
}

impl Attach {
    /// The tracepoint, as `category:name`.
    pub fn point(&self) -> String {
        match self {
            Attach::Tracepoint { category, name } | Attach::RawTracepoint { category, name } => {
                format!("{category}:{name}")
            }
        }
    }

    /// `tracepoint net:net_dev_queue`, `raw tracepoint tcp:tcp_probe`.
    pub fn describe(&self) -> String {
        match self {
            Attach::Tracepoint { .. } => format!("tracepoint {}", self.point()),
            Attach::RawTracepoint { .. } => format!("raw tracepoint {}", self.point()),
        }
    }
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
    /// Linear buckets (`tcpq_abi::bucket::LINEAR`).
    Lhist {
        min: u64,
        max: u64,
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
    /// Record slots holding the value (two for addresses and `comm`).
    pub slots: Vec<u8>,
    /// `FIELD / CONST` or `FIELD * CONST` in a `print`, computed in
    /// userspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<Scale>,
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    None,
    Bytes,
    Micros,
    Millis,
    Segments,
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
