//! `tcpq sockets [where EXPR] [print FIELD, ...]`: the TCP sockets that
//! exist now, like `ss -ti`, in the same language as the probes.
//!
//! [`SOCKETS`] is a catalog entry outside [`crate::catalog::PROBES`] (no template,
//! no strategy: the runtime fills its records from sock_diag netlink). Its
//! fields use the probes' names, types, units and, where a probe has the
//! field, the same record slot; a condition compiles through the same
//! `resolve` and `check` passes into the same filter instructions, which
//! the runtime runs with [`crate::filter::run`] over each socket's slots.
//! So `where rcv_wscale == 0` means on a socket what it means on a probe.
//!
//! What is new here is only what a listing has and an event does not: a
//! socket may lack a field (a TIME_WAIT socket has no `tcp_info`); see
//! [`SocketsQuery::filter_slots`].
use crate::ast::{self, Ident, PrintItem};
use crate::catalog::{FieldDef, ProbeDef};
use crate::diagnostic::{Code, Diagnostic};
use crate::plan::{Action, Column, FieldType, Insn, Unit};
use crate::recipe::Params;
use tcpq_abi::slot;

use FieldType::*;

/// `tcpq sockets` as a catalog entry, for the language's passes and for
/// `tcpq -l sockets`.
pub static SOCKETS: ProbeDef = ProbeDef {
    name: "sockets",
    summary: "the TCP sockets that exist now (sock_diag, like ss -ti), not an event",
    doc: "Not a kernel moment: `tcpq sockets [where EXPR] [print FIELD, ...]` lists the \
          TCP sockets of every network namespace tcpq can enter (or those `--netns` names) \
          once, from the kernel's sock_diag netlink interface (struct inet_diag_msg and \
          its tcp_info, skmeminfo and cgroup attributes, what `ss -tie` prints), with the \
          owning process from /proc. Fields have the probes' names, types and units, and \
          the same `where` language filters them. A socket the kernel reports without a \
          field (no tcp_info for TIME_WAIT sockets and half-open requests; listeners get \
          a short tcp_info) shows it as `-` (JSON null), and a `where` that names a field \
          a socket lacks does not list that socket.",
    template: "",
    strategies: &[],
    fields: SOCKETS_FIELDS,
    implicit: &[],
    implicit_words: "",
};

/// The columns without `print`: what `ss -ti` is read for in an incident.
pub const DEFAULT_COLUMNS: &[&str] = &[
    "netns",
    "state",
    "saddr",
    "sport",
    "daddr",
    "dport",
    "snd_wscale",
    "rcv_wscale",
    "rcv_wnd",
    "snd_wnd",
    "srtt",
    "rto",
    "snd_cwnd",
    "pid",
    "comm",
];

use crate::catalog::field as f;

mod sk {
    pub use tcpq_abi::slot::sock::*;
}

/// Slots of the fields only sockets have: the probes' own slots (16..32)
/// and the loaded slots no socket field of the probes uses.
mod own {
    pub const RECV_Q: u8 = 16;
    pub const SEND_Q: u8 = 17;
    pub const UNACKED: u8 = 18;
    pub const SACKED: u8 = 19;
    pub const LOST: u8 = 20;
    pub const RETRANS: u8 = 21;
    pub const BACKOFF: u8 = 22;
    pub const PROBES: u8 = 23;
    pub const RCV_MSS: u8 = 24;
    pub const ADVMSS: u8 = 25;
    pub const PMTU: u8 = 26;
    pub const RCV_SSTHRESH: u8 = 27;
    pub const RCV_RTT: u8 = 28;
    pub const MIN_RTT: u8 = 29;
    pub const DELIVERY_RATE: u8 = 30;
    pub const BUSY_TIME: u8 = 31;
    pub const RWND_LIMITED: u8 = 33;
    pub const SNDBUF_LIMITED: u8 = 34;
    pub const NOTSENT_BYTES: u8 = 35;
    pub const RCV_OOOPACK: u8 = 36;
    pub const LAST_DATA_SENT: u8 = 37;
    pub const LAST_DATA_RECV: u8 = 38;
    pub const LAST_ACK_RECV: u8 = 39;
    /// The slot of the probes' `rttvar` (tcp_sock.rttvar_us), which
    /// tcp_info lacks.
    pub const BYTES_RETRANS: u8 = 57;
}

/// Every field of [`SOCKETS`]. Where a probe has a field of the same
/// name, type, bits and slot are the probe's (a test checks it); the docs
/// say where sock_diag takes the value from.
pub static SOCKETS_FIELDS: &[FieldDef] = &[
    f(
        "pid",
        Uint(Unit::None),
        &[slot::PID],
        32,
        "process id holding the socket: the highest pid with a file descriptor for it \
         (/proc/PID/fd -> socket:[INODE], the same rule as the probes' owners of sockets \
         from before tcpq started; ss -p lists them all); 0 when no process holds it \
         (TIME_WAIT, half-open requests, orphaned sockets)",
    ),
    f(
        "comm",
        Comm,
        &[slot::COMM_0, slot::COMM_1],
        128,
        "command name of that process (/proc/PID/comm); none (`-`, JSON null) when no \
         process holds the socket",
    ),
    f(
        "family",
        Family,
        &[slot::FAMILY],
        16,
        "address family: AF_INET or AF_INET6 (an IPv6 socket talking IPv4 is AF_INET6 \
         with IPv4-mapped addresses)",
    ),
    f(
        "saddr",
        Addr,
        &[slot::SADDR_HI, slot::SADDR_LO],
        128,
        "local address (IPv4 shown plainly, stored IPv4-mapped)",
    ),
    f(
        "daddr",
        Addr,
        &[slot::DADDR_HI, slot::DADDR_LO],
        128,
        "remote address (0.0.0.0 or :: for a listener)",
    ),
    f("sport", Port, &[slot::SPORT], 16, "local port"),
    f(
        "dport",
        Port,
        &[slot::DPORT],
        16,
        "remote port (0 for a listener)",
    ),
    f(
        "netns",
        Uint(Unit::None),
        &[slot::NETNS],
        32,
        "inode number of the network namespace the socket is in",
    ),
    f(
        "state",
        TcpState,
        &[slot::STATE],
        8,
        "TCP state as sock_diag reports it (ss's State): a half-open connection (a \
         request socket, whose sk_state is NEW_SYN_RECV) is SYN_RECV, and a TIME_WAIT \
         socket shows its substate (TIME_WAIT, or FIN_WAIT2 for an orphan)",
    ),
    f(
        "sock_cookie",
        Uint(Unit::None),
        &[slot::SOCK_COOKIE],
        64,
        "the kernel's socket cookie (inet_diag_msg idiag_cookie; ss -e: sk:HEX), which \
         sock_diag creates when it lists the socket: the same number the probes show \
         from then on",
    ),
    f(
        "rcv_wnd",
        Uint(Unit::Bytes),
        &[sk::RCV_WND],
        32,
        "receive window this side currently offers (tcp_info tcpi_rcv_wnd = \
         tcp_sock.rcv_wnd; not in Linux 6.1's tcp_info)",
    ),
    f(
        "snd_wnd",
        Uint(Unit::Bytes),
        &[sk::SND_WND],
        32,
        "the peer's advertised receive window, as last seen (tcpi_snd_wnd = \
         tcp_sock.snd_wnd; ss: snd_wnd)",
    ),
    f(
        "wscale_ok",
        Bool,
        &[sk::WSCALE_OK],
        1,
        "whether window scaling was negotiated in the SYN exchange (tcpi_options & \
         TCPI_OPT_WSCALE; ss prints wscale:S,R only then)",
    ),
    f(
        "snd_wscale",
        Uint(Unit::None),
        &[sk::SND_WSCALE],
        4,
        "window scale the peer applies to the windows it advertises (tcpi_snd_wscale; \
         ss: wscale:S,R first number); 0 without scaling",
    ),
    f(
        "rcv_wscale",
        Uint(Unit::None),
        &[sk::RCV_WSCALE],
        4,
        "window scale this side applies to the windows it advertises (tcpi_rcv_wscale; \
         ss: wscale:S,R second number); 0 without scaling",
    ),
    f(
        "mss",
        Uint(Unit::Bytes),
        &[sk::MSS],
        32,
        "current maximum segment size for sending (tcpi_snd_mss = tcp_sock.mss_cache; \
         ss: mss)",
    ),
    f(
        "srtt",
        Uint(Unit::Micros),
        &[sk::SRTT],
        32,
        "smoothed round-trip time (tcpi_rtt = tcp_sock.srtt_us >> 3; ss: rtt:SRTT/MDEV, \
         in ms)",
    ),
    f(
        "mdev",
        Uint(Unit::Micros),
        &[sk::MDEV],
        32,
        "round-trip time mean deviation (tcpi_rttvar, which the kernel fills with \
         tcp_sock.mdev_us >> 2; ss: the rtt:x/y second number). tcp_info has no \
         tcp_sock.rttvar_us, so sockets have no `rttvar`",
    ),
    f(
        "snd_cwnd",
        Uint(Unit::Segments),
        &[sk::SND_CWND],
        32,
        "congestion window (tcpi_snd_cwnd; ss: cwnd)",
    ),
    f(
        "ssthresh",
        Uint(Unit::Segments),
        &[sk::SSTHRESH],
        32,
        "slow-start threshold (tcpi_snd_ssthresh; 2147483647 until the first loss, \
         which ss does not print)",
    ),
    f(
        "bytes_acked",
        Uint(Unit::Bytes),
        &[sk::BYTES_ACKED],
        64,
        "bytes this side sent that the peer acknowledged, the SYN counted (tcpi_bytes_acked; \
         RFC 4898 tcpEStatsAppHCThruOctetsAcked)",
    ),
    f(
        "bytes_received",
        Uint(Unit::Bytes),
        &[sk::BYTES_RECEIVED],
        64,
        "bytes received in order (tcpi_bytes_received; RFC 4898 \
         tcpEStatsAppHCThruOctetsReceived)",
    ),
    f(
        "total_retrans",
        Uint(Unit::Segments),
        &[sk::TOTAL_RETRANS],
        32,
        "segments retransmitted over the connection's life (tcpi_total_retrans; ss: \
         retrans:x/TOTAL)",
    ),
    f(
        "segs_out",
        Uint(Unit::Segments),
        &[sk::SEGS_OUT],
        32,
        "segments sent, retransmissions included (tcpi_segs_out; ss: segs_out)",
    ),
    f(
        "segs_in",
        Uint(Unit::Segments),
        &[sk::SEGS_IN],
        32,
        "segments received (tcpi_segs_in; ss: segs_in)",
    ),
    f(
        "rcvbuf",
        Uint(Unit::Bytes),
        &[sk::RCVBUF],
        32,
        "receive buffer size limit (sk_rcvbuf; ss -m: skmem rb)",
    ),
    f(
        "sndbuf",
        Uint(Unit::Bytes),
        &[sk::SNDBUF],
        32,
        "send buffer size limit (sk_sndbuf; ss -m: skmem tb)",
    ),
    f(
        "rcv_space",
        Uint(Unit::Bytes),
        &[sk::RCV_SPACE],
        32,
        "receive-buffer autotuning's estimate of what the application reads per RTT \
         (tcpi_rcv_space = tcp_sock.rcvq_space.space; ss: rcv_space)",
    ),
    f(
        "ca_state",
        Uint(Unit::None),
        &[sk::CA_STATE],
        8,
        "congestion-avoidance state (tcpi_ca_state): 0 Open, 1 Disorder, 2 CWR, \
         3 Recovery, 4 Loss",
    ),
    f(
        "uid",
        Uint(Unit::None),
        &[sk::UID],
        32,
        "user id owning the socket (idiag_uid = sk_uid; ss -e: uid)",
    ),
    f(
        "cgroup",
        Uint(Unit::None),
        &[sk::CGROUP],
        64,
        "cgroup v2 id of the socket (INET_DIAG_CGROUP_ID; the inode number of the \
         cgroup's directory)",
    ),
    f(
        "rto",
        Uint(Unit::Micros),
        &[sk::RTO],
        32,
        "retransmission timeout (tcpi_rto = icsk_rto in microseconds; ss: rto, in ms, \
         not printed when it is the initial 3 s)",
    ),
    f(
        "backlog",
        Uint(Unit::None),
        &[sk::BACKLOG],
        32,
        "a listener's accept queue: connections that finished the handshake and wait \
         for accept() (idiag_rqueue = sk_ack_backlog; ss -l: Recv-Q); LISTEN sockets only",
    ),
    f(
        "backlog_max",
        Uint(Unit::None),
        &[sk::BACKLOG_MAX],
        32,
        "the accept queue's limit (idiag_wqueue = sk_max_ack_backlog; ss -l: Send-Q); \
         LISTEN sockets only",
    ),
    f(
        "recv_q",
        Uint(Unit::Bytes),
        &[own::RECV_Q],
        32,
        "bytes received and not yet read by the application (idiag_rqueue = rcv_nxt - \
         copied_seq; ss: Recv-Q); not for LISTEN sockets, whose Recv-Q is `backlog`",
    ),
    f(
        "send_q",
        Uint(Unit::Bytes),
        &[own::SEND_Q],
        32,
        "bytes written and not yet acknowledged, sent or not (idiag_wqueue = write_seq - \
         snd_una; ss: Send-Q); not for LISTEN sockets, whose Send-Q is `backlog_max`",
    ),
    f(
        "unacked",
        Uint(Unit::Segments),
        &[own::UNACKED],
        32,
        "segments in flight, sent and not acknowledged (tcpi_unacked = packets_out; ss: \
         unacked); not for LISTEN sockets (the kernel reuses the field for the backlog)",
    ),
    f(
        "sacked",
        Uint(Unit::Segments),
        &[own::SACKED],
        32,
        "segments the peer selectively acknowledged (tcpi_sacked = sacked_out; ss: \
         sacked); not for LISTEN sockets",
    ),
    f(
        "lost",
        Uint(Unit::Segments),
        &[own::LOST],
        32,
        "segments in flight taken as lost (tcpi_lost = lost_out; ss: lost)",
    ),
    f(
        "retrans",
        Uint(Unit::Segments),
        &[own::RETRANS],
        32,
        "retransmitted segments not yet acknowledged (tcpi_retrans = retrans_out; ss: \
         retrans:X/total)",
    ),
    f(
        "backoff",
        Uint(Unit::None),
        &[own::BACKOFF],
        8,
        "exponential backoff of the retransmission timer: timeouts in a row \
         (tcpi_backoff = icsk_backoff; ss: backoff)",
    ),
    f(
        "probes",
        Uint(Unit::None),
        &[own::PROBES],
        8,
        "zero-window or keepalive probes sent without an answer (tcpi_probes = \
         icsk_probes_out)",
    ),
    f(
        "rcv_mss",
        Uint(Unit::Bytes),
        &[own::RCV_MSS],
        32,
        "this side's estimate of the peer's segment size (tcpi_rcv_mss; ss: rcvmss)",
    ),
    f(
        "advmss",
        Uint(Unit::Bytes),
        &[own::ADVMSS],
        32,
        "the MSS this side advertised (tcpi_advmss; ss: advmss)",
    ),
    f(
        "pmtu",
        Uint(Unit::Bytes),
        &[own::PMTU],
        32,
        "path MTU the socket uses (tcpi_pmtu = icsk_pmtu_cookie; ss: pmtu)",
    ),
    f(
        "rcv_ssthresh",
        Uint(Unit::Bytes),
        &[own::RCV_SSTHRESH],
        32,
        "the ceiling this side's advertised window grows toward (tcpi_rcv_ssthresh; ss: \
         rcv_ssthresh)",
    ),
    f(
        "rcv_rtt",
        Uint(Unit::Micros),
        &[own::RCV_RTT],
        32,
        "round-trip time as the receiver estimates it, for autotuning (tcpi_rcv_rtt = \
         rcv_rtt_est.rtt_us >> 3; ss: rcv_rtt, in ms); 0 without an estimate",
    ),
    f(
        "min_rtt",
        Uint(Unit::Micros),
        &[own::MIN_RTT],
        32,
        "smallest round-trip time seen recently (tcpi_min_rtt; ss: minrtt, in ms); none \
         before the first sample (the kernel's ~0)",
    ),
    f(
        "delivery_rate",
        Uint(Unit::None),
        &[own::DELIVERY_RATE],
        64,
        "the latest delivery rate sample, in bytes per second (tcpi_delivery_rate; ss: \
         delivery_rate, in bits per second); 0 without a sample",
    ),
    f(
        "busy_time",
        Uint(Unit::Micros),
        &[own::BUSY_TIME],
        64,
        "time spent with data in flight (tcpi_busy_time; ss: busy, in ms)",
    ),
    f(
        "rwnd_limited",
        Uint(Unit::Micros),
        &[own::RWND_LIMITED],
        64,
        "of busy_time, the time sending was stopped by the peer's receive window \
         (tcpi_rwnd_limited; ss: rwnd_limited, in ms): a slow or small reader",
    ),
    f(
        "sndbuf_limited",
        Uint(Unit::Micros),
        &[own::SNDBUF_LIMITED],
        64,
        "of busy_time, the time sending was stopped by this side's send buffer \
         (tcpi_sndbuf_limited; ss: sndbuf_limited, in ms)",
    ),
    f(
        "notsent_bytes",
        Uint(Unit::Bytes),
        &[own::NOTSENT_BYTES],
        32,
        "bytes written and not yet sent (tcpi_notsent_bytes = write_seq - snd_nxt; ss: \
         notsent)",
    ),
    f(
        "rcv_ooopack",
        Uint(Unit::Segments),
        &[own::RCV_OOOPACK],
        32,
        "segments received out of order (tcpi_rcv_ooopack; ss: rcv_ooopack)",
    ),
    f(
        "last_data_sent",
        Uint(Unit::Millis),
        &[own::LAST_DATA_SENT],
        32,
        "time since data was last sent (tcpi_last_data_sent, jiffies in ms; ss: lastsnd)",
    ),
    f(
        "last_data_recv",
        Uint(Unit::Millis),
        &[own::LAST_DATA_RECV],
        32,
        "time since data was last received (tcpi_last_data_recv; ss: lastrcv)",
    ),
    f(
        "last_ack_recv",
        Uint(Unit::Millis),
        &[own::LAST_ACK_RECV],
        32,
        "time since an ACK was last received (tcpi_last_ack_recv; ss: lastack)",
    ),
    f(
        "bytes_retrans",
        Uint(Unit::Bytes),
        &[own::BYTES_RETRANS],
        64,
        "bytes retransmitted over the connection's life (tcpi_bytes_retrans; RFC 4898 \
         tcpEStatsPerfOctetsRetrans; ss: bytes_retrans)",
    ),
];

/// A compiled `tcpq sockets` query: what to test and what to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketsQuery {
    /// The condition, compiled exactly as a probe's `where`: run it with
    /// [`crate::filter::run`] over a socket's slots. Empty: every socket.
    pub filter: Vec<Insn>,
    /// The slots the filter reads (bit `i` for slot `i`). A socket lacking
    /// any of them is not listed: a condition on a value the kernel did not
    /// report for that socket is neither true nor false, and reading it as
    /// 0 (what a probe's record holds for a value it could not read) would
    /// list every TIME_WAIT socket under `where wscale_ok == false`.
    pub filter_slots: u64,
    /// The fields the filter reads, in first-use order.
    pub filter_fields: Vec<&'static str>,
    /// Output columns, in order.
    pub columns: Vec<Column>,
    /// True when no `print` was written: the columns are
    /// [`DEFAULT_COLUMNS`] (a column this kernel cannot fill may then be
    /// left out, where one the user asked for is an error).
    pub default_columns: bool,
    /// The `where` clause as written.
    pub where_source: Option<String>,
}

/// Compile what follows `tcpq sockets` (`""`, `where ...`, `print ...`,
/// `where ... print ...`) with the language's own passes against
/// [`SOCKETS`]. Every problem is returned, sorted by position.
pub fn compile_sockets(source: &str) -> Result<SocketsQuery, Vec<Diagnostic>> {
    let (mut clause, printed) = crate::parse::parse_sockets(source)?;
    let mut errors = Vec::new();
    if !matches!(clause.action, ast::Action::Print { .. }) {
        let span = match &clause.action {
            ast::Action::Count { span, .. } | ast::Action::Agg { span, .. } => span.clone(),
            ast::Action::Print { span, .. } => span.clone(),
        };
        errors.push(
            Diagnostic::error(
                Code::NotForSockets,
                "`tcpq sockets` lists sockets; it does not aggregate",
                span,
                "an aggregation",
            )
            .with_help(
                "write `print FIELD, ...` (or nothing, for the default columns); to count \
                 sockets, count the lines (`tcpq sockets ... --format json | wc -l`)",
            ),
        );
    }
    for m in &clause.modifiers {
        errors.push(
            Diagnostic::error(
                Code::NotForSockets,
                "`tcpq sockets` takes no `top`, `every` or `limit`",
                m.span.clone(),
                "not for a listing",
            )
            .with_help("it lists every socket that matches, once; narrow the `where` instead"),
        );
    }
    clause.modifiers.clear();
    if !printed || !errors.is_empty() {
        // The default columns, or something to go on checking the
        // `where` with after an aggregation was reported.
        let at = source.trim_end().len();
        clause.action = ast::Action::Print {
            items: DEFAULT_COLUMNS
                .iter()
                .map(|name| PrintItem {
                    field: Ident {
                        name: (*name).to_owned(),
                        span: at..at,
                    },
                    scale: None,
                    alias: None,
                    span: at..at,
                })
                .collect(),
            span: at..at,
        };
    }
    let resolved = crate::resolve::resolve_clause(&SOCKETS, &clause, &Params::default());
    let checked = match crate::check(&resolved) {
        Ok(c) => c,
        Err(e) => {
            errors.extend(e.into_iter().map(in_sockets_words));
            return Err(sorted(errors));
        }
    };
    if !errors.is_empty() {
        return Err(sorted(errors));
    }
    let Some(c) = checked.clauses.into_iter().next() else {
        return Err(vec![Diagnostic::unlocated(
            Code::Syntax,
            "nothing to list (internal: the query resolved to no clause)",
        )]);
    };
    let compiled = crate::filter::compile(c.filter.as_ref()).map_err(|_| {
        vec![crate::check::filter_too_long(
            c.filter.as_ref().map_or(0, |f| f.insn_count()),
            0..0,
        )]
    })?;
    // No socket field takes a kernel enum constant; refuse rather than
    // compare with an unbound 0.
    if !compiled.binds.is_empty() {
        return Err(vec![Diagnostic::unlocated(
            Code::Internal,
            "internal error: a kernel constant in a `tcpq sockets` query cannot be bound",
        )]);
    }
    let filter = compiled.insns;
    let mut filter_fields: Vec<&'static str> = Vec::new();
    let mut filter_slots = 0u64;
    for insn in &filter {
        filter_slots |= 1u64.checked_shl(u32::from(insn.slot)).unwrap_or(0);
        if let Some(f) = SOCKETS.field_at_slot(insn.slot) {
            if !filter_fields.contains(&f.name) {
                filter_fields.push(f.name);
            }
        }
    }
    let Action::Print { columns } = c.action else {
        return Err(vec![Diagnostic::unlocated(
            Code::NotForSockets,
            "`tcpq sockets` lists sockets; it does not aggregate",
        )]);
    };
    Ok(SocketsQuery {
        filter,
        filter_slots,
        filter_fields,
        columns,
        default_columns: !printed,
        where_source: c.where_source,
    })
}

/// A field of `tcpq sockets` that this kernel's sock_diag cannot report
/// (its `tcp_info` is shorter), pointing at where `source` names it.
pub fn sockets_field_unavailable(source: &str, field: &str, why: &str) -> Diagnostic {
    let span = crate::parse::parse_sockets(source)
        .ok()
        .and_then(|(c, _)| crate::field_span(&c, field));
    let message = format!("`{field}` cannot be read on this kernel");
    let help = format!("{why}; leave it out, or run on a kernel that has it");
    match span {
        Some(s) => Diagnostic::error(
            Code::FieldUnavailable,
            message,
            s,
            "not available on this kernel",
        ),
        None => Diagnostic::unlocated(Code::FieldUnavailable, message),
    }
    .with_help(help)
}

/// The probes' fields a listing cannot have, and what to use instead.
const NOT_HERE: &[(&str, &str)] = &[
    (
        "rttvar",
        "tcp_info has no tcp_sock.rttvar_us; `mdev` is what ss shows as rtt:SRTT/MDEV",
    ),
    (
        "skaddr",
        "sock_diag shows no kernel addresses; `sock_cookie` tells sockets apart",
    ),
    (
        "task_pid",
        "a listing has no task on the CPU; `pid` is the process holding the socket",
    ),
    (
        "task_comm",
        "a listing has no task on the CPU; `comm` is the process holding the socket",
    ),
];

/// A diagnostic of the shared passes, worded for `tcpq sockets` (which the
/// passes see as a probe named `sockets`).
fn in_sockets_words(mut d: Diagnostic) -> Diagnostic {
    if d.code != Code::UnknownField {
        return d;
    }
    if let Some((name, help)) = NOT_HERE
        .iter()
        .find(|(n, _)| d.message == format!("unknown field `{n}` on probe `sockets`"))
    {
        d.message = format!("`tcpq sockets` has no `{name}`");
        d.help = Some((*help).to_owned());
        return d;
    }
    d.message = d.message.replace("on probe `sockets`", "of `tcpq sockets`");
    if let Some(h) = &d.help {
        d.help = Some(h.replace(
            "not of `sockets`",
            "not of `tcpq sockets` (`tcpq -l sockets` lists its fields)",
        ));
    }
    d
}

fn sorted(mut d: Vec<Diagnostic>) -> Vec<Diagnostic> {
    d.sort_by_key(|d| (d.is_located(), d.span.start));
    d
}

/// The catalog entry `tcpq -l NAME` and the docs look up besides
/// [`crate::catalog::PROBES`].
pub fn entry(name: &str) -> Option<&'static ProbeDef> {
    (name == SOCKETS.name).then_some(&SOCKETS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{COMMON_FIELDS, SOCKET_FIELDS};

    /// A field the probes have means the same here: type, width, slot.
    #[test]
    fn shared_fields_match_the_probes() {
        let mut shared = 0;
        for s in SOCKETS_FIELDS {
            let probe_def = COMMON_FIELDS
                .iter()
                .chain(SOCKET_FIELDS)
                .find(|p| p.name == s.name);
            if let Some(p) = probe_def {
                assert_eq!(p.ty, s.ty, "{}", s.name);
                assert_eq!(p.slots, s.slots, "{}", s.name);
                assert_eq!(p.bits, s.bits, "{}", s.name);
                shared += 1;
            }
        }
        assert!(shared >= 30, "{shared}");
        // The probes' socket fields sockets cannot have, and why: tcp_info
        // has no rttvar_us; skaddr is a kernel address sock_diag hides;
        // the task on the CPU has no meaning for a listing.
        let mut missing: Vec<&str> = COMMON_FIELDS
            .iter()
            .chain(SOCKET_FIELDS)
            .map(|p| p.name)
            .filter(|n| SOCKETS.field(n).is_none())
            .collect();
        missing.sort();
        assert_eq!(missing, ["rttvar", "skaddr", "task_comm", "task_pid"]);
    }

    #[test]
    fn slots_are_distinct_and_in_range() {
        let mut seen = std::collections::HashSet::new();
        for f in SOCKETS.all_fields() {
            let want = if matches!(f.ty, Addr | Comm) { 2 } else { 1 };
            assert_eq!(f.slots.len(), want, "{}", f.name);
            for s in f.slots {
                assert!((*s as usize) < tcpq_abi::N_SLOTS, "{}", f.name);
                assert!(seen.insert(*s), "slot {s} twice ({})", f.name);
            }
        }
        assert_eq!(SOCKETS.all_fields().count(), SOCKETS_FIELDS.len());
        assert!(crate::catalog::probe("sockets").is_none(), "not a probe");
        assert!(SOCKETS.is_userspace());
        for c in DEFAULT_COLUMNS {
            assert!(SOCKETS.field(c).is_some(), "{c}");
        }
    }

    #[test]
    fn where_compiles_like_a_probe_filter() {
        let q = compile_sockets("where rcv_wscale == 0 and dport == 443").unwrap();
        let p = crate::compile(
            "on tcp_state where rcv_wscale == 0 and dport == 443 print pid",
            "-e",
            &[],
        )
        .unwrap();
        assert_eq!(q.filter, p.clauses[0].filter);
        assert_eq!(q.filter_fields, ["rcv_wscale", "dport"]);
        assert!(q.default_columns);
        let names: Vec<&str> = q.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, DEFAULT_COLUMNS);
        let mut v = [0u64; tcpq_abi::N_SLOTS];
        v[usize::from(slot::DPORT)] = 443;
        assert!(crate::filter::run(&q.filter, &v));
        v[usize::from(sk::RCV_WSCALE)] = 7;
        assert!(!crate::filter::run(&q.filter, &v));
    }

    #[test]
    fn print_and_nothing() {
        let q = compile_sockets("").unwrap();
        assert!(q.filter.is_empty() && q.default_columns && q.where_source.is_none());
        let q = compile_sockets("print pid, comm, srtt / 1000 as srtt_ms").unwrap();
        assert!(!q.default_columns);
        let names: Vec<&str> = q.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["pid", "comm", "srtt_ms"]);
        let q = compile_sockets("where state == LISTEN print sport, backlog").unwrap();
        assert_eq!(q.where_source.as_deref(), Some("state == LISTEN"));
    }

    fn codes(src: &str) -> Vec<Code> {
        compile_sockets(src)
            .unwrap_err()
            .iter()
            .map(|d| d.code)
            .collect()
    }

    #[test]
    fn mistakes_are_located_diagnostics() {
        assert_eq!(codes("where rcv_wscal == 0"), [Code::UnknownField]);
        assert_eq!(codes("where rttvar > 1ms"), [Code::UnknownField]);
        assert_eq!(codes("where task_pid == 1"), [Code::UnknownField]);
        assert_eq!(codes("where sport == 70000"), [Code::OutOfRange]);
        assert_eq!(codes("where srtt > 64KiB"), [Code::UnitSuffix]);
        assert_eq!(codes("where"), [Code::Syntax]);
        assert_eq!(codes("on tcp_probe print pid"), [Code::Syntax]);
        assert_eq!(codes("count by comm"), [Code::NotForSockets]);
        assert_eq!(codes("print pid limit 3"), [Code::NotForSockets]);
        // Every problem, not the first.
        assert_eq!(
            codes("where nope == 1 count by comm"),
            [Code::UnknownField, Code::NotForSockets]
        );
        let d = compile_sockets("where rcv_wscal == 0").unwrap_err();
        assert_eq!(d[0].span, 6..15);
    }
}
