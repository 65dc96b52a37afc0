//! The `sockets` catalog entry: every field a socket listing has (the
//! probes' names, types, units and, where a probe has the field, its
//! slot), the slots of its own, and the columns shown by default. Data
//! only; compiling a query over it is `mod.rs`.
use crate::catalog::{FieldDef, ProbeDef};
use crate::plan::{FieldType, Unit};
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

pub(super) mod sk {
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
}
