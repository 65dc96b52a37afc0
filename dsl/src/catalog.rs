//! The probe catalog: the single source of truth for what `on PROBE` can
//! name, which template implements it, how it attaches, and what fields it
//! offers (name, type, record slots, docs).
//!
//! Slots come from `tcpq_abi::slot` so the catalog and the templates cannot
//! drift apart silently.
use crate::plan::{Attach, FieldRequirement, FieldType, Requirement, Strategy, Unit};
use tcpq_abi::slot;

/// One probe: a kernel moment users can ask about.
#[derive(Debug)]
pub struct ProbeDef {
    pub name: &'static str,
    /// One line, shown in listings.
    pub summary: &'static str,
    /// A paragraph for someone learning kernel TCP.
    pub doc: &'static str,
    /// Prebuilt object: `probe-templates/prebuilt/<template>.bpfel.o`.
    pub template: &'static str,
    /// Ways to attach, best first.
    pub strategies: &'static [StrategyDef],
    /// The probe's own fields (the common ones are in [`COMMON_FIELDS`]).
    pub fields: &'static [FieldDef],
}

#[derive(Debug)]
pub struct StrategyDef {
    pub name: &'static str,
    pub program: &'static str,
    /// Tracepoint `category:name`.
    pub tracepoint: (&'static str, &'static str),
    /// A raw tracepoint (`TP_PROTO` arguments) rather than a classic one
    /// (the format file's record).
    pub raw: bool,
    pub how: &'static str,
    /// What the strategy needs beyond its attach point and
    /// [`TEMPLATE_REQUIRES`].
    pub requires: &'static [Req],
    /// Fields it can fill; empty: every field of the probe.
    pub provides: &'static [&'static str],
    /// Fields that need more than the strategy itself.
    pub field_requires: &'static [(&'static [&'static str], &'static [Req])],
}

/// A [`Requirement`] in a form a `static` can hold.
#[derive(Debug, Clone, Copy)]
pub enum Req {
    Btf,
    ProbeReadKernel,
    RingBuffer,
    /// `(category, name, field)` of a classic tracepoint's format.
    TpField(&'static str, &'static str, &'static str),
    /// `(raw tracepoint, position, C type)` in its BTF prototype.
    RawArg(&'static str, usize, &'static str),
    Kprobe(&'static str),
    Fentry(&'static str),
}

impl Req {
    pub fn to_plan(self) -> Requirement {
        let s = |x: &str| x.to_string();
        match self {
            Req::Btf => Requirement::Btf,
            Req::ProbeReadKernel => Requirement::ProbeReadKernel,
            Req::RingBuffer => Requirement::RingBuffer,
            Req::TpField(c, n, f) => Requirement::TracepointField {
                category: s(c),
                name: s(n),
                field: s(f),
            },
            Req::RawArg(n, position, ty) => Requirement::RawTracepointArg {
                name: s(n),
                position,
                ty: s(ty),
            },
            Req::Kprobe(f) => Requirement::Kprobe { function: s(f) },
            Req::Fentry(f) => Requirement::Fentry { function: s(f) },
        }
    }
}

/// What every template needs whatever its strategy: its ring buffer map is
/// created at load, and its common code reads the socket with
/// `bpf_probe_read_kernel`.
pub const TEMPLATE_REQUIRES: &[Req] = &[Req::RingBuffer, Req::ProbeReadKernel];

/// The common fields, which every template reads from the `struct sock`
/// at offsets from BTF.
const SOCK_FIELDS: &[&str] = &[
    "pid",
    "comm",
    "task_pid",
    "task_comm",
    "family",
    "saddr",
    "daddr",
    "sport",
    "dport",
    "netns",
    "state",
    "sock_cookie",
];

impl StrategyDef {
    pub fn to_plan(&self) -> Strategy {
        let category = self.tracepoint.0.to_string();
        let name = self.tracepoint.1.to_string();
        Strategy {
            name: self.name.to_string(),
            program: self.program.to_string(),
            attach: if self.raw {
                Attach::RawTracepoint { category, name }
            } else {
                Attach::Tracepoint { category, name }
            },
            how: self.how.to_string(),
            requires: TEMPLATE_REQUIRES
                .iter()
                .chain(self.requires)
                .map(|r| r.to_plan())
                .collect(),
            provides: self.provides.iter().map(|f| f.to_string()).collect(),
            field_requires: self
                .field_requires
                .iter()
                .map(|(fields, reqs)| FieldRequirement {
                    fields: fields.iter().map(|f| f.to_string()).collect(),
                    requires: reqs.iter().map(|r| r.to_plan()).collect(),
                })
                .collect(),
        }
    }
}

#[derive(Debug)]
pub struct FieldDef {
    pub name: &'static str,
    pub ty: FieldType,
    /// Record slots holding the value, in order (two for `Addr`/`Comm`).
    pub slots: &'static [u8],
    /// Width of the kernel value in bits; literals beyond it are errors
    /// because the comparison could never (or would always) match.
    pub bits: u8,
    pub doc: &'static str,
}

impl ProbeDef {
    /// Every field of this probe: the common ones first, then its own.
    pub fn all_fields(&self) -> impl Iterator<Item = &'static FieldDef> {
        COMMON_FIELDS.iter().chain(self.fields.iter())
    }

    pub fn field(&self, name: &str) -> Option<&'static FieldDef> {
        self.all_fields().find(|f| f.name == name)
    }

    /// The field stored in `slot`, for `--explain` of raw instructions.
    pub fn field_at_slot(&self, slot: u8) -> Option<&'static FieldDef> {
        self.all_fields().find(|f| f.slots.contains(&slot))
    }
}

/// Look a probe up by name.
pub fn probe(name: &str) -> Option<&'static ProbeDef> {
    PROBES.iter().find(|p| p.name == name)
}

const fn field(
    name: &'static str,
    ty: FieldType,
    slots: &'static [u8],
    bits: u8,
    doc: &'static str,
) -> FieldDef {
    FieldDef {
        name,
        ty,
        slots,
        bits,
        doc,
    }
}

use FieldType::*;

/// Fields every template fills (slots 0..16).
pub static COMMON_FIELDS: &[FieldDef] = &[
    field(
        "pid",
        Uint(Unit::None),
        &[slot::PID],
        32,
        "process id of the socket's owner (the process that last used it), 0 when unknown; \
         NOT the task on the CPU, since events often fire in softirq",
    ),
    field(
        "comm",
        Comm,
        &[slot::COMM_0, slot::COMM_1],
        128,
        "command name of the socket's owner",
    ),
    field(
        "task_pid",
        Uint(Unit::None),
        &[slot::TASK_PID],
        32,
        "process id of the task on the CPU when the probe fired (often 0, `swapper`, in softirq)",
    ),
    field(
        "task_comm",
        Comm,
        &[slot::TASK_COMM_0, slot::TASK_COMM_1],
        128,
        "command name of the task on the CPU when the probe fired",
    ),
    field(
        "family",
        Family,
        &[slot::FAMILY],
        16,
        "address family: AF_INET or AF_INET6",
    ),
    field(
        "saddr",
        Addr,
        &[slot::SADDR_HI, slot::SADDR_LO],
        128,
        "local address (IPv4 shown plainly, stored IPv4-mapped)",
    ),
    field(
        "daddr",
        Addr,
        &[slot::DADDR_HI, slot::DADDR_LO],
        128,
        "remote address",
    ),
    field("sport", Port, &[slot::SPORT], 16, "local port"),
    field("dport", Port, &[slot::DPORT], 16, "remote port"),
    field(
        "netns",
        Uint(Unit::None),
        &[slot::NETNS],
        32,
        "network namespace inode number",
    ),
    field(
        "state",
        TcpState,
        &[slot::STATE],
        8,
        "TCP state of the socket (ESTABLISHED, ...)",
    ),
    field(
        "sock_cookie",
        Uint(Unit::None),
        &[slot::SOCK_COOKIE],
        64,
        "the socket's cookie: a stable id for one connection",
    ),
];

mod sw {
    pub use tcpq_abi::slot::select_window::*;
}
mod pr {
    pub use tcpq_abi::slot::probe::*;
}
mod rt {
    pub use tcpq_abi::slot::retransmit::*;
}

/// Every probe.
pub static PROBES: &[ProbeDef] = &[
    ProbeDef {
        name: "tcp_select_window",
        summary: "every non-SYN segment TCP sends, with the receive window it advertises",
        doc: "Each segment TCP sends carries a 16-bit window field: how much more data this \
              side is willing to receive. The kernel computes it in tcp_select_window() from \
              the socket's receive window (rcv_wnd), then shifts it right by the window scale \
              negotiated in the SYN exchange (rcv_wscale), because 16 bits only reach 64 KiB. \
              A window of 0 tells the peer to stop sending: the application is not reading \
              fast enough. If window scaling was not negotiated (wscale_ok false), windows \
              can never exceed 64 KiB, which caps throughput on long paths.",
        template: "tcp_select_window",
        strategies: &[StrategyDef {
            name: "net_dev_queue",
            program: "tcpq_selwin_ndq",
            tracepoint: ("net", "net_dev_queue"),
            raw: true,
            how: "the kernel's tcp_select_window() is inlined on many kernels; this reads the \
                  TCP header of each outgoing segment as it is queued to a device (raw \
                  tracepoint net_dev_queue), and the socket from skb->sk. One event per skb: \
                  a TSO/GSO skb that leaves as several segments carries one window",
            requires: &[
                Req::Btf,
                Req::RawArg("net_dev_queue", 0, "struct sk_buff *"),
            ],
            provides: &[],
            field_requires: &[],
        }],
        fields: &[
            field(
                "win",
                Uint(Unit::None),
                &[sw::WIN],
                16,
                "16-bit window field as sent on the wire (unscaled)",
            ),
            field(
                "win_bytes",
                Uint(Unit::Bytes),
                &[sw::WIN_BYTES],
                32,
                "the advertised window in bytes (win << rcv_wscale)",
            ),
            field(
                "rcv_wnd",
                Uint(Unit::Bytes),
                &[sw::RCV_WND],
                32,
                "the socket's current receive window (tcp_sock.rcv_wnd)",
            ),
            field(
                "rcv_wscale",
                Uint(Unit::None),
                &[sw::RCV_WSCALE],
                4,
                "window scale this side applies to windows it advertises",
            ),
            field(
                "snd_wscale",
                Uint(Unit::None),
                &[sw::SND_WSCALE],
                4,
                "window scale the peer applies to windows it advertises",
            ),
            field(
                "wscale_ok",
                Bool,
                &[sw::WSCALE_OK],
                1,
                "whether window scaling was negotiated in the SYN exchange",
            ),
            field(
                "snd_wnd",
                Uint(Unit::Bytes),
                &[sw::SND_WND],
                32,
                "the peer's advertised receive window, as last seen",
            ),
            field(
                "tcp_flags",
                Uint(Unit::None),
                &[sw::TCP_FLAGS],
                8,
                "TCP header flags byte (FIN=1, SYN=2, RST=4, PSH=8, ACK=16)",
            ),
            field(
                "seq",
                Uint(Unit::None),
                &[sw::SEQ],
                32,
                "sequence number of the segment",
            ),
            field(
                "ack_seq",
                Uint(Unit::None),
                &[sw::ACK_SEQ],
                32,
                "acknowledgment number of the segment",
            ),
        ],
    },
    ProbeDef {
        name: "tcp_probe",
        summary: "a segment received on an established socket (tracepoint tcp:tcp_probe)",
        doc: "The kernel's tcp:tcp_probe tracepoint fires in tcp_rcv_established() and \
              tcp_rcv_state_process() when a segment arrives, with a snapshot of the sender \
              state: what was sent and acknowledged (snd_nxt, snd_una), the congestion window \
              (snd_cwnd, in segments) and slow-start threshold, the peer's window, and the \
              smoothed round-trip time. It is the classic way to watch congestion control \
              react to a connection.",
        template: "tcp_probe",
        strategies: &[StrategyDef {
            name: "tracepoint",
            program: "tcpq_probe_tp",
            tracepoint: ("tcp", "tcp_probe"),
            raw: false,
            how: "the tcp:tcp_probe tracepoint, with its field offsets read from the \
                  tracepoint's format file at run time",
            requires: &[Req::TpField("tcp", "tcp_probe", "skaddr")],
            provides: &[],
            field_requires: &[
                (SOCK_FIELDS, &[Req::Btf]),
                (&["snd_nxt"], &[Req::TpField("tcp", "tcp_probe", "snd_nxt")]),
                (&["snd_una"], &[Req::TpField("tcp", "tcp_probe", "snd_una")]),
                (
                    &["snd_cwnd"],
                    &[Req::TpField("tcp", "tcp_probe", "snd_cwnd")],
                ),
                (
                    &["ssthresh"],
                    &[Req::TpField("tcp", "tcp_probe", "ssthresh")],
                ),
                (&["snd_wnd"], &[Req::TpField("tcp", "tcp_probe", "snd_wnd")]),
                (&["srtt"], &[Req::TpField("tcp", "tcp_probe", "srtt")]),
                (&["rcv_wnd"], &[Req::TpField("tcp", "tcp_probe", "rcv_wnd")]),
                (
                    &["data_len"],
                    &[Req::TpField("tcp", "tcp_probe", "data_len")],
                ),
                (&["mark"], &[Req::TpField("tcp", "tcp_probe", "mark")]),
            ],
        }],
        fields: &[
            field(
                "snd_nxt",
                Uint(Unit::None),
                &[pr::SND_NXT],
                32,
                "next sequence number to send",
            ),
            field(
                "snd_una",
                Uint(Unit::None),
                &[pr::SND_UNA],
                32,
                "oldest unacknowledged sequence number",
            ),
            field(
                "snd_cwnd",
                Uint(Unit::Segments),
                &[pr::SND_CWND],
                32,
                "congestion window",
            ),
            field(
                "ssthresh",
                Uint(Unit::Segments),
                &[pr::SSTHRESH],
                32,
                "slow-start threshold",
            ),
            field(
                "snd_wnd",
                Uint(Unit::Bytes),
                &[pr::SND_WND],
                32,
                "the peer's advertised receive window",
            ),
            field(
                "srtt",
                Uint(Unit::Micros),
                &[pr::SRTT],
                32,
                "smoothed round-trip time",
            ),
            field(
                "rcv_wnd",
                Uint(Unit::Bytes),
                &[pr::RCV_WND],
                32,
                "this side's receive window",
            ),
            field(
                "data_len",
                Uint(Unit::Bytes),
                &[pr::DATA_LEN],
                16,
                "payload length of the received segment",
            ),
            field(
                "mark",
                Uint(Unit::None),
                &[pr::MARK],
                32,
                "the socket's mark (SO_MARK)",
            ),
        ],
    },
    ProbeDef {
        name: "tcp_retransmit",
        summary: "a segment retransmitted (tracepoint tcp:tcp_retransmit_skb)",
        doc: "TCP retransmits a segment when it concludes the original was lost: after a \
              retransmission timeout, or sooner on duplicate ACKs or SACK information (fast \
              retransmit, RACK). The tcp_retransmit_skb tracepoint fires for each \
              retransmitted skb; one skb can carry several segments (segs), and the sum of \
              segs is the kernel's TcpRetransSegs counter. Attempts that failed before \
              reaching the wire (newer kernels also report those, with an error) are not \
              retransmissions and are not shown. Retransmissions cost throughput and \
              latency; a burst of them usually means loss or reordering on the path.",
        template: "tcp_retransmit",
        strategies: &[StrategyDef {
            name: "raw_tracepoint",
            program: "tcpq_retrans_tp",
            tracepoint: ("tcp", "tcp_retransmit_skb"),
            raw: true,
            how: "the tcp_retransmit_skb raw tracepoint (arguments sk, skb[, err], checked \
                  against the kernel's BTF); segs is tcp_skb_pcount(skb)",
            requires: &[
                Req::Btf,
                Req::RawArg("tcp_retransmit_skb", 0, "struct sock *"),
                Req::RawArg("tcp_retransmit_skb", 1, "struct sk_buff *"),
            ],
            provides: &[],
            field_requires: &[],
        }],
        fields: &[field(
            "segs",
            Uint(Unit::Segments),
            &[rt::SEGS],
            16,
            "segments in the retransmitted skb (one skb can carry several)",
        )],
    },
];

/// TCP states with the kernel's numbering (`include/net/tcp_states.h`).
pub static TCP_STATES: &[(&str, u8)] = &[
    ("ESTABLISHED", 1),
    ("SYN_SENT", 2),
    ("SYN_RECV", 3),
    ("FIN_WAIT1", 4),
    ("FIN_WAIT2", 5),
    ("TIME_WAIT", 6),
    ("CLOSE", 7),
    ("CLOSE_WAIT", 8),
    ("LAST_ACK", 9),
    ("LISTEN", 10),
    ("CLOSING", 11),
    ("NEW_SYN_RECV", 12),
];

/// Address families with their Linux numbers.
pub static FAMILIES: &[(&str, u8)] = &[("AF_INET", 2), ("AF_INET6", 10)];

pub fn state_by_name(name: &str) -> Option<u8> {
    TCP_STATES.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

pub fn state_name(v: u8) -> Option<&'static str> {
    TCP_STATES.iter().find(|(_, x)| *x == v).map(|(n, _)| *n)
}

pub fn family_by_name(name: &str) -> Option<u8> {
    FAMILIES.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

pub fn family_name(v: u8) -> Option<&'static str> {
    FAMILIES.iter().find(|(_, x)| *x == v).map(|(n, _)| *n)
}

/// A type in words, for messages and `--explain`.
pub fn type_words(ty: FieldType) -> String {
    let unit = |u: Unit| match u {
        Unit::None => "",
        Unit::Bytes => " (bytes)",
        Unit::Micros => " (microseconds)",
        Unit::Millis => " (milliseconds)",
        Unit::Segments => " (segments)",
    };
    match ty {
        Uint(u) => format!("unsigned integer{}", unit(u)),
        Int(u) => format!("signed integer{}", unit(u)),
        Bool => "boolean".into(),
        Addr => "address".into(),
        Port => "port".into(),
        Comm => "command name".into(),
        TcpState => "TCP state".into(),
        Family => "address family".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_consistent() {
        for p in PROBES {
            assert!(!p.strategies.is_empty(), "{}", p.name);
            for st in p.strategies {
                let named = st
                    .provides
                    .iter()
                    .chain(st.field_requires.iter().flat_map(|(f, _)| f.iter()));
                for f in named {
                    assert!(p.field(f).is_some(), "{}/{}: no field {f}", p.name, st.name);
                }
            }
            let mut names = std::collections::HashSet::new();
            let mut slots = std::collections::HashSet::new();
            for f in p.all_fields() {
                assert!(names.insert(f.name), "duplicate field {}", f.name);
                let want = if matches!(f.ty, Addr | Comm) { 2 } else { 1 };
                assert_eq!(f.slots.len(), want, "{}", f.name);
                for s in f.slots {
                    assert!((*s as usize) < tcpq_abi::N_SLOTS);
                    assert!(slots.insert(*s), "slot {s} used twice in {}", p.name);
                }
            }
        }
    }

    #[test]
    fn states_are_numbered_like_the_kernel() {
        assert_eq!(state_by_name("ESTABLISHED"), Some(1));
        assert_eq!(state_by_name("NEW_SYN_RECV"), Some(12));
        assert_eq!(state_name(10), Some("LISTEN"));
        assert_eq!(family_by_name("AF_INET6"), Some(10));
    }
}
