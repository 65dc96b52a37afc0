//! The probe catalog: the single source of truth for what `on PROBE` can
//! name, which template implements it, how it attaches, and what fields it
//! offers (name, type, record slots, docs).
//!
//! Slots come from `tcpq_abi::slot`, and each strategy's name, programs
//! and attach points from `tcpq_abi::programs`, so the catalog and the
//! templates cannot drift apart silently (`dsl/tests/programs.rs` checks
//! the programs against the prebuilt objects).
//!
//! This file holds what an entry is (probes, strategies, fields) and the
//! lookups over the tables; `probes.rs` is the table of every probe (and
//! the tables its entries share), `fields.rs` the fields most probes have.
use crate::plan::{FieldRequirement, FieldType, Header, Requirement, Strategy, Unit};
use FieldType::*;

mod fields;
mod probes;

pub use fields::{COMMON_FIELDS, EVENT_FIELDS, SOCKET_FIELDS};
pub use probes::PROBES;
use probes::{ALSO_ONLY_FOR, RETRANSMIT_FIELDS, STATE_FIELDS};

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
    /// The probe fields: the ones it defines itself, in the probe slots
    /// (`tcpq_abi::slot::PROBE_FIRST`..; the common ones are in
    /// [`COMMON_FIELDS`]).
    pub fields: &'static [FieldDef],
    /// A fixed filter (`slot == value`, or `!=` when the flag is false; all
    /// must hold) in front of the user's `where`: how a view such as
    /// `tcp_connect` narrows its template (`tcp_state`) to one kind of event.
    pub implicit: &'static [(u8, u64, bool)],
    /// In words, for `--explain` and the docs.
    pub implicit_words: &'static str,
}

/// One way to attach a probe: what the templates must agree on (name,
/// programs, attach points: [`tcpq_abi::programs::strategy`]) and what the
/// language adds to it.
#[derive(Debug)]
pub struct StrategyDef {
    /// Its name, main program and attach point, and the further programs
    /// attached with it.
    pub abi: tcpq_abi::programs::Strategy,
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

impl StrategyDef {
    pub fn to_plan(&self) -> Strategy {
        let abi = &self.abi;
        Strategy {
            name: abi.name.to_string(),
            program: abi.program.to_string(),
            attach: abi.attach.into(),
            how: self.how.to_string(),
            // One entry per attach point, in order.
            also: abi
                .also
                .iter()
                .flat_map(|program| {
                    let only_for: Vec<String> = ALSO_ONLY_FOR
                        .iter()
                        .find(|(p, _)| *p == program.name)
                        .map(|(_, fields)| fields.iter().map(|f| f.to_string()).collect())
                        .unwrap_or_default();
                    program
                        .attach
                        .iter()
                        .map(move |attach| crate::plan::ExtraProgram {
                            program: program.name.to_string(),
                            attach: (*attach).into(),
                            only_for: only_for.clone(),
                        })
                })
                .collect(),
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
            quick: None,
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
    /// For fields read through a configured load (socket fields): where
    /// the value lives. `None`: the template computes it.
    pub load: Option<LoadDef>,
    /// For a field of the event record's header ([`EVENT_FIELDS`]): which
    /// one. Such a field has no slot and can only be printed.
    pub header: Option<Header>,
    /// A boolean shown in text as one of two words, `[false, true]`
    /// (`tlp`: BCC tcpretrans's `R` and `L`); JSON keeps `false`/`true`.
    pub labels: Option<[&'static str; 2]>,
}

/// Where a loaded field lives: `OFFSETS` entry `off`, after following the
/// pointers at the entries in `via`, shifted right by `shr`.
#[derive(Debug)]
pub struct LoadDef {
    pub off: u32,
    pub via: &'static [u32],
    pub shr: u8,
    /// The kernel counts it in jiffies; it reaches the record in
    /// microseconds.
    pub jiffies: bool,
}

impl FieldDef {
    /// The plan's load for this field, if it is a loaded field.
    pub fn load_spec(&self) -> Option<crate::plan::LoadSpec> {
        let l = self.load.as_ref()?;
        Some(crate::plan::LoadSpec {
            field: self.name.to_string(),
            slot: self.slots[0],
            base: crate::plan::LoadBase::Sock,
            off: l.off,
            via: l.via.to_vec(),
            shr: l.shr,
            jiffies: l.jiffies,
        })
    }
}

impl ProbeDef {
    /// Every field of this probe: the common ones, the event's, the probe
    /// fields, then the socket fields it does not define itself (a probe
    /// field `rcv_wnd`, say from its tracepoint, wins over the socket's).
    pub fn all_fields(&self) -> impl Iterator<Item = &'static FieldDef> {
        let probe_fields = self.fields;
        // A userspace entry (`tcpq sockets`) lists every field itself.
        let (common, event, socket): (
            &'static [FieldDef],
            &'static [FieldDef],
            &'static [FieldDef],
        ) = if self.is_userspace() {
            (&[], &[], &[])
        } else {
            (COMMON_FIELDS, EVENT_FIELDS, SOCKET_FIELDS)
        };
        common.iter().chain(event).chain(probe_fields.iter()).chain(
            socket
                .iter()
                .filter(move |s| !probe_fields.iter().any(|f| f.name == s.name)),
        )
    }

    /// Not a kernel moment but a listing tcpq makes in userspace
    /// (`tcpq sockets`, [`crate::sockets::SOCKETS`]): no template, no
    /// strategy, and never in [`PROBES`].
    pub fn is_userspace(&self) -> bool {
        self.template.is_empty()
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

pub(crate) const fn field(
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
        load: None,
        header: None,
        labels: None,
    }
}

/// A boolean the template computes, shown in text as `labels[value]`.
pub(crate) const fn labelled(
    name: &'static str,
    labels: [&'static str; 2],
    slots: &'static [u8],
    doc: &'static str,
) -> FieldDef {
    FieldDef {
        labels: Some(labels),
        ..field(name, FieldType::Bool, slots, 1, doc)
    }
}

/// Why an errno field never holds `value`: `tcp_retransmit`'s `err` for
/// an attempt the kernel's `__tcp_retransmit_skb()` does not count (see
/// `tcpq_abi::retransmit`), `tcp_state`'s `err` (sk_err) for
/// NET_XMIT_DROP, which is no errno. `None` for any other field or value.
pub fn unreported(def: &FieldDef, value: i64) -> Option<Unreported> {
    let state_err = STATE_FIELDS.iter().find(|f| f.name == "err");
    if state_err.is_some_and(|f| std::ptr::eq(def, f)) {
        // sk_err holds errnos; NET_XMIT_DROP is a transmit's result.
        return (value == crate::errno::NET_XMIT_DROP.1).then_some(Unreported::NotAnError(
            "a socket's error is an errno; NET_XMIT_DROP is what a qdisc returns to one \
             transmit, never a socket error",
        ));
    }
    if !std::ptr::eq(def, &RETRANSMIT_FIELDS[1]) {
        return None;
    }
    debug_assert!(tcpq_abi::retransmit::NOT_COUNTED.contains(&-16));
    Some(Unreported::NotCounted(match value {
        -16 => "the original is still queued in this host, in a qdisc or the device: the retransmission waits",
        -22 => "the skb was acknowledged already, which the kernel warns about",
        -12 => "no memory to trim or split the skb: the kernel tries again later",
        -113 => "no route for the socket",
        -11 => "the skb lies beyond the peer's receive window",
        _ => return None,
    }))
}

/// Why an errno field never holds a value ([`unreported`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreported {
    /// A retransmission attempt the kernel gives up on before counting it
    /// (and which tcpq therefore does not report), and why it gives up.
    NotCounted(&'static str),
    /// The value is not one the field can hold at all.
    NotAnError(&'static str),
}

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
        Unit::Nanos => " (nanoseconds)",
        Unit::Segments => " (segments)",
        Unit::DropReason => " (enum skb_drop_reason, shown by name)",
        Unit::RstReason => " (enum sk_rst_reason, shown by name)",
        Unit::KernelSymbol => " (kernel address, shown as function+offset)",
        Unit::Address => " (kernel address, shown in hex)",
        Unit::Errno => " (errno, shown by name)",
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
        Time => "wall-clock time".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tcpq_abi::slot;

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
                    assert!(
                        p.field(f).is_some(),
                        "{}/{}: no field {f}",
                        p.name,
                        st.abi.name
                    );
                }
            }
            let mut names = std::collections::HashSet::new();
            let mut slots = std::collections::HashSet::new();
            for f in p.all_fields() {
                assert!(names.insert(f.name), "duplicate field {}", f.name);
                if f.header.is_some() {
                    // The event's header: no slot, nothing loaded.
                    assert!(f.slots.is_empty() && f.load.is_none(), "{}", f.name);
                    continue;
                }
                let want = if matches!(f.ty, Addr | Comm) { 2 } else { 1 };
                assert_eq!(f.slots.len(), want, "{}", f.name);
                for s in f.slots {
                    assert!((*s as usize) < tcpq_abi::N_SLOTS);
                    assert!(slots.insert(*s), "slot {s} used twice in {}", p.name);
                    // A template writes its probe fields in the probe
                    // slots (16..32) and nothing else there: the early
                    // filter runs on them alone. Loads fill 32..64; the
                    // common fields are below 16 or (skaddr) among the
                    // socket's.
                    let probe_slot = (slot::PROBE_FIRST..slot::LOADED).contains(s);
                    if f.load.is_some() {
                        assert!(*s >= slot::LOADED, "{}: load into slot {s}", f.name);
                    } else if COMMON_FIELDS.iter().any(|c| c.name == f.name) {
                        assert!(!probe_slot, "{}: common field in probe slot {s}", f.name);
                    } else {
                        assert!(probe_slot, "{}: probe field in slot {s}", f.name);
                    }
                }
            }
        }
    }

    #[test]
    fn tables_by_program_name_programs_of_a_strategy() {
        let strategies = || PROBES.iter().flat_map(|p| p.strategies);
        let also: std::collections::HashSet<&str> = strategies()
            .flat_map(|s| s.abi.also)
            .map(|p| p.name)
            .collect();
        for (program, _) in ALSO_ONLY_FOR {
            assert!(also.contains(program), "{program}");
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
