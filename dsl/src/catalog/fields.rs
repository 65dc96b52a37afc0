//! The fields most probes share: the common ones every template fills
//! (the socket's identity and owner), the event header's (`time`,
//! `ktime`, `cpu`), and the socket's (`struct tcp_sock`, read at offsets
//! from BTF). Data and the constructors that build it; the lookups are
//! `mod.rs`.
use crate::plan::{FieldType, Header, Unit};
use tcpq_abi::{off, slot};

use super::{field, FieldDef, LoadDef};

use FieldType::*;

/// A socket field, read through a load (see [`SOCKET_FIELDS`]).
const fn sock(
    name: &'static str,
    ty: FieldType,
    slots: &'static [u8],
    bits: u8,
    off: u32,
    shr: u8,
    doc: &'static str,
) -> FieldDef {
    FieldDef {
        name,
        ty,
        slots,
        bits,
        doc,
        load: Some(LoadDef {
            off,
            via: &[],
            shr,
            jiffies: false,
        }),
        header: None,
        labels: None,
    }
}

/// The common fields, which every template reads from the `struct sock`
/// at offsets from BTF.
#[cfg(test)]
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
    // The socket fields read through loads.
    "rcv_wnd",
    "snd_wnd",
    "wscale_ok",
    "snd_wscale",
    "rcv_wscale",
    "mss",
    "srtt",
    "mdev",
    "rttvar",
    "snd_cwnd",
    "ssthresh",
    "bytes_acked",
    "bytes_received",
    "total_retrans",
    "segs_out",
    "segs_in",
    "rcvbuf",
    "sndbuf",
    "rcv_space",
    "ca_state",
    "uid",
    "cgroup",
    "rto",
    "backlog",
    "backlog_max",
];

/// [`SOCK_FIELDS`] less the ones the `tcp:tcp_probe` tracepoint carries
/// itself (its classic strategy reads those from the format, no BTF).
pub(super) const SOCK_FIELDS_BESIDE_TCP_PROBE: &[&str] = &[
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
    "wscale_ok",
    "snd_wscale",
    "rcv_wscale",
    "mss",
    "mdev",
    "rttvar",
    "bytes_acked",
    "bytes_received",
    "total_retrans",
    "segs_out",
    "segs_in",
    "rcvbuf",
    "sndbuf",
    "rcv_space",
    "ca_state",
    "uid",
    "cgroup",
    "rto",
    "backlog",
    "backlog_max",
];

/// Fields every template fills (slots 0..16).
pub static COMMON_FIELDS: &[FieldDef] = &[
    field(
        "pid",
        Uint(Unit::None),
        &[slot::PID],
        32,
        "process id of the socket's owner (the process that last used it; before that \
         is known, the one that connected or listened, or for a socket from before tcpq \
         started the one holding it then, from /proc), 0 when unknown; NOT the task on \
         the CPU, since events often fire in softirq",
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
        "the kernel's socket cookie, a stable id for one connection; 0 until something has \
         asked the kernel for it (ss -e, sock_diag, the classic tcp_probe tracepoint): \
         the kernel creates it lazily and tcpq's templates cannot. To tell sockets apart \
         in every event, use skaddr",
    ),
    field(
        "skaddr",
        Uint(Unit::Address),
        &[sk::SKADDR],
        64,
        "kernel address of the socket (struct sock *), like BCC's SKADDR: the same for \
         every event of one socket while it lives, so it tells sockets apart (an address \
         is reused after the socket is freed); 0 for events without a socket",
    ),
];

/// A field of the event record's header rather than of its slots.
const fn event_field(
    name: &'static str,
    ty: FieldType,
    header: Header,
    bits: u8,
    doc: &'static str,
) -> FieldDef {
    FieldDef {
        name,
        ty,
        slots: &[],
        bits,
        doc,
        load: None,
        header: Some(header),
        labels: None,
    }
}

/// Fields of every event a probe prints: the template stamps them on each
/// record it sends to userspace, after the filter (a record that is
/// filtered out or aggregated in the kernel never pays for the clock). So
/// they can be printed, not tested in `where` or aggregated.
pub static EVENT_FIELDS: &[FieldDef] = &[
    event_field(
        "time",
        Time,
        Header::Time,
        64,
        "wall-clock time of the event: `ktime` plus the offset of the wall clock \
         (CLOCK_REALTIME) from CLOCK_MONOTONIC, measured once when tcpq starts; RFC 3339 \
         in UTC with microseconds (`2026-12-07T05:46:01.123456Z`), in every JSON row of \
         a printing clause. Print only",
    ),
    event_field(
        "ktime",
        Uint(Unit::Nanos),
        Header::Ktime,
        64,
        "the kernel's timestamp of the event (bpf_ktime_get_ns: CLOCK_MONOTONIC, \
         nanoseconds since boot, not counting suspend), the clock of bpftrace's `nsecs`. \
         Print only",
    ),
    event_field(
        "cpu",
        Uint(Unit::None),
        Header::Cpu,
        32,
        "the CPU the event was stamped on (bpf_get_smp_processor_id). Print only",
    ),
];

/// Socket fields: read from the probe's `struct sock` by the template's
/// configured loads, so any probe with a socket offers them and a program
/// pays only for those it uses. Values are what the kernel holds now, at
/// the probe's moment (`ss -ti` shows the same fields, read later).
pub static SOCKET_FIELDS: &[FieldDef] = &[
    sock(
        "rcv_wnd",
        Uint(Unit::Bytes),
        &[sk::RCV_WND],
        32,
        off::TP_RCV_WND,
        0,
        "receive window this side currently offers (tcp_sock.rcv_wnd)",
    ),
    sock(
        "snd_wnd",
        Uint(Unit::Bytes),
        &[sk::SND_WND],
        32,
        off::TP_SND_WND,
        0,
        "the peer's advertised receive window, as last seen (tcp_sock.snd_wnd)",
    ),
    sock(
        "wscale_ok",
        Bool,
        &[sk::WSCALE_OK],
        1,
        off::TP_WSCALE_OK,
        0,
        "whether window scaling was negotiated in the SYN exchange",
    ),
    sock(
        "snd_wscale",
        Uint(Unit::None),
        &[sk::SND_WSCALE],
        4,
        off::TP_SND_WSCALE,
        0,
        "window scale the peer applies to the windows it advertises",
    ),
    sock(
        "rcv_wscale",
        Uint(Unit::None),
        &[sk::RCV_WSCALE],
        4,
        off::TP_RCV_WSCALE,
        0,
        "window scale this side applies to the windows it advertises",
    ),
    sock(
        "mss",
        Uint(Unit::Bytes),
        &[sk::MSS],
        32,
        off::TP_MSS_CACHE,
        0,
        "current maximum segment size for sending (tcp_sock.mss_cache; ss: mss)",
    ),
    sock(
        "srtt",
        Uint(Unit::Micros),
        &[sk::SRTT],
        32,
        off::TP_SRTT_US,
        3,
        "smoothed round-trip time (tcp_sock.srtt_us >> 3; ss: rtt)",
    ),
    sock(
        "mdev",
        Uint(Unit::Micros),
        &[sk::MDEV],
        32,
        off::TP_MDEV_US,
        2,
        "round-trip time mean deviation (tcp_sock.mdev_us >> 2; ss: the rtt:x/y second number)",
    ),
    sock(
        "rttvar",
        Uint(Unit::Micros),
        &[sk::RTTVAR],
        32,
        off::TP_RTTVAR_US,
        2,
        "smoothed maximal deviation, used for the retransmission timeout (tcp_sock.rttvar_us >> 2)",
    ),
    sock(
        "snd_cwnd",
        Uint(Unit::Segments),
        &[sk::SND_CWND],
        32,
        off::TP_SND_CWND,
        0,
        "congestion window (ss: cwnd)",
    ),
    sock(
        "ssthresh",
        Uint(Unit::Segments),
        &[sk::SSTHRESH],
        32,
        off::TP_SND_SSTHRESH,
        0,
        "slow-start threshold (ss: ssthresh; 2147483647 until the first loss)",
    ),
    sock(
        "bytes_acked",
        Uint(Unit::Bytes),
        &[sk::BYTES_ACKED],
        64,
        off::TP_BYTES_ACKED,
        0,
        "bytes this side sent that the peer acknowledged (RFC 4898 tcpEStatsAppHCThruOctetsAcked)",
    ),
    sock(
        "bytes_received",
        Uint(Unit::Bytes),
        &[sk::BYTES_RECEIVED],
        64,
        off::TP_BYTES_RECEIVED,
        0,
        "bytes received in order (RFC 4898 tcpEStatsAppHCThruOctetsReceived)",
    ),
    sock(
        "total_retrans",
        Uint(Unit::Segments),
        &[sk::TOTAL_RETRANS],
        32,
        off::TP_TOTAL_RETRANS,
        0,
        "segments retransmitted over the connection's life (ss: retrans:x/TOTAL)",
    ),
    sock(
        "segs_out",
        Uint(Unit::Segments),
        &[sk::SEGS_OUT],
        32,
        off::TP_SEGS_OUT,
        0,
        "segments sent, retransmissions included (ss: segs_out)",
    ),
    sock(
        "segs_in",
        Uint(Unit::Segments),
        &[sk::SEGS_IN],
        32,
        off::TP_SEGS_IN,
        0,
        "segments received (ss: segs_in)",
    ),
    sock(
        "rcvbuf",
        Uint(Unit::Bytes),
        &[sk::RCVBUF],
        32,
        off::SK_RCVBUF,
        0,
        "receive buffer size limit (sk_rcvbuf; grows with autotuning)",
    ),
    sock(
        "sndbuf",
        Uint(Unit::Bytes),
        &[sk::SNDBUF],
        32,
        off::SK_SNDBUF,
        0,
        "send buffer size limit (sk_sndbuf)",
    ),
    sock(
        "rcv_space",
        Uint(Unit::Bytes),
        &[sk::RCV_SPACE],
        32,
        off::TP_RCVQ_SPACE,
        0,
        "receive-buffer autotuning's estimate of what the application reads per RTT \
         (tcp_sock.rcvq_space.space)",
    ),
    sock(
        "ca_state",
        Uint(Unit::None),
        &[sk::CA_STATE],
        8,
        off::ICSK_CA_STATE,
        0,
        "congestion-avoidance state: 0 Open, 1 Disorder, 2 CWR, 3 Recovery, 4 Loss",
    ),
    sock(
        "uid",
        Uint(Unit::None),
        &[sk::UID],
        32,
        off::SK_UID,
        0,
        "user id owning the socket (sk_uid)",
    ),
    FieldDef {
        name: "rto",
        ty: Uint(Unit::Micros),
        slots: &[sk::RTO],
        bits: 32,
        doc: "retransmission timeout: how long TCP waits for an ACK before it \
              retransmits (icsk_rto, kept in jiffies by the kernel and converted with \
              its HZ; ss: rto, in ms). Doubles with each timeout of the same segment",
        load: Some(LoadDef {
            off: off::ICSK_RTO,
            via: &[],
            shr: 0,
            jiffies: true,
        }),
        header: None,
        labels: None,
    },
    sock(
        "backlog",
        Uint(Unit::None),
        &[sk::BACKLOG],
        32,
        off::SK_ACK_BACKLOG,
        0,
        "a listener's accept queue: connections that finished the handshake and wait \
         for accept() (sk_ack_backlog; ss -l: Recv-Q). A new connection copies its \
         listener's value when it is created: on tcp_state's LISTEN -> SYN_RECV it is the \
         queue that connection joins (BCC tcpsynbl's backlog)",
    ),
    sock(
        "backlog_max",
        Uint(Unit::None),
        &[sk::BACKLOG_MAX],
        32,
        off::SK_MAX_ACK_BACKLOG,
        0,
        "the accept queue's limit: listen()'s backlog capped by net.core.somaxconn \
         (sk_max_ack_backlog; ss -l: Send-Q); a handshake that finds the queue longer \
         than this is dropped (nstat TcpExtListenOverflows)",
    ),
    FieldDef {
        name: "cgroup",
        ty: Uint(Unit::None),
        slots: &[sk::CGROUP],
        bits: 64,
        doc: "cgroup v2 id of the socket (sk_cgrp_data.cgroup->kn->id; \
              the inode number of the cgroup's directory)",
        load: Some(LoadDef {
            off: off::KN_ID,
            via: &[off::SK_CGROUP, off::CGROUP_KN],
            shr: 0,
            jiffies: false,
        }),
        header: None,
        labels: None,
    },
];

mod sk {
    pub use tcpq_abi::slot::sock::*;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list above is SOCK_FIELDS less tcp_probe's tracepoint fields.
    #[test]
    fn tcp_probe_tracepoint_fields_need_no_btf() {
        let own = ["snd_cwnd", "ssthresh", "snd_wnd", "srtt", "rcv_wnd"];
        let want: Vec<&str> = SOCK_FIELDS
            .iter()
            .copied()
            .filter(|f| !own.contains(f))
            .collect();
        let mut have = SOCK_FIELDS_BESIDE_TCP_PROBE.to_vec();
        let mut want = want;
        have.sort();
        want.sort();
        assert_eq!(have, want);
    }
}
