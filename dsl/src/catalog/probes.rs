// Over 800 lines: data, one entry per probe in `tcpq -l`'s order and the tables they share.
//! Every probe (`PROBES`, in the order `tcpq -l` lists them): its
//! template, strategies, fields and docs, and the tables several entries
//! share (a template's strategies and probe fields, the slots it fills).
//! Data only; what an entry is and the lookups are `mod.rs`.
use crate::plan::{FieldType, Unit};

use super::fields::SOCK_FIELDS_BESIDE_TCP_PROBE;
use super::{field, labelled, FieldDef, ProbeDef, Req, StrategyDef};
use tcpq_abi::programs::{self as program, strategy};

use FieldType::*;

/// `tcp_state` and its views share one strategy and field list.
static STATE_STRATEGY: &[StrategyDef] = &[StrategyDef {
    abi: strategy::STATE,
    how: "the inet_sock_set_state raw tracepoint (arguments sk, oldstate, newstate), \
          TCP sockets only; births kept per socket for `duration`",
    requires: &[
        Req::Btf,
        Req::RawArg("inet_sock_set_state", 0, "struct sock *"),
        Req::RawArg("inet_sock_set_state", 1, "int"),
        Req::RawArg("inet_sock_set_state", 2, "int"),
    ],
    provides: &[],
    field_requires: &[],
}];

pub(super) static STATE_FIELDS: &[FieldDef] = &[
    field(
        "oldstate",
        TcpState,
        &[st::OLDSTATE],
        8,
        "the state the socket leaves",
    ),
    field(
        "newstate",
        TcpState,
        &[st::NEWSTATE],
        8,
        "the state the socket enters (the same as `state` here)",
    ),
    field(
        "duration",
        Uint(Unit::Micros),
        &[st::DURATION],
        64,
        "time since the socket's handshake began (SYN_SENT or SYN_RECV), 0 if tcpq \
         was not attached then",
    ),
    field(
        "err",
        Int(Unit::Errno),
        &[st::ERR],
        32,
        "the socket's error at the move (sk->sk_err), negative like tcp_retransmit's err \
         (the kernel keeps it positive): 0, or why the connection failed, stored just \
         before it moves to CLOSE: ECONNREFUSED (a reset answered the SYN), ETIMEDOUT \
         (retransmissions of the SYN or of data gave up; an ICMP error that arrived \
         meanwhile takes its place), EHOSTUNREACH, ENETUNREACH, ... (an ICMP error \
         answered the SYN), ECONNRESET or EPIPE (a reset on an open connection); 0 when \
         the application closed the socket itself. Shown by name; compare by name \
         (`err == ECONNREFUSED`, `err != 0`). On kernels without tcp_done_with_error() \
         (before 6.10, unless backported) a timeout or an ICMP error wakes the \
         application just before the move: one that reads SO_ERROR in that instant \
         leaves 0 here",
    ),
];

/// `tcp_probe`'s first strategy, shared with its views (`tcp_rtt`,
/// `tcp_cwnd`): the raw tracepoint reads every value itself. First, for
/// every clause, because removing a classic tracepoint's program makes
/// tcpq's exit wait for an RCU grace period (65-80 ms here: the last perf
/// event on a tracepoint unregisters it synchronously; a run of
/// `--duration 0` took 107 ms against 33 ms, docs/benchmarks.md), because
/// a classic program the kernel finds another classic or kprobe program
/// running under on its CPU is skipped (`missed`), and because 6.1's
/// record has no `skaddr`. Until 2026-12-08 a clause whose filter first
/// tested one of the record's values (`snd_wnd`, `srtt`, ...) took the
/// classic tracepoint: the kernel has copied that value into the record
/// before the program runs, where the raw program's read of `tcp_sock`
/// waits for a cache line the other CPU wrote last (about 45 ns of the
/// 85-100 a never-matching event cost it). Host throughput under load
/// measured the same either way (the copy moves the same miss out of the
/// program), and the exit's wait is what a user sees.
const PROBE_RAW: StrategyDef = StrategyDef {
    abi: strategy::PROBE_RAW,
    how: "the tcp_probe raw tracepoint (arguments sk, skb): the same values the \
          classic tracepoint copies, read from the socket and the skb at offsets from \
          the kernel's BTF; works where the classic record has no skaddr (6.1)",
    requires: &[
        Req::Btf,
        Req::RawArg("tcp_probe", 0, "struct sock *"),
        Req::RawArg("tcp_probe", 1, "struct sk_buff *"),
    ],
    provides: &[],
    field_requires: &[],
};

/// The views of `tcp_probe`'s moment: the raw tracepoint, else the
/// classic one (see [`PROBE_RAW`]).
static PROBE_STRATEGY: &[StrategyDef] = &[
    PROBE_RAW,
    StrategyDef {
        abi: strategy::PROBE_TRACEPOINT,
        how: "the tcp:tcp_probe tracepoint, with its field offsets read from the \
          tracepoint's format file at run time",
        requires: &[Req::TpField("tcp", "tcp_probe", "skaddr")],
        provides: &[],
        field_requires: &[(SOCK_FIELDS_BESIDE_TCP_PROBE, &[Req::Btf])],
    },
];

/// Further programs that only some fields need: attached only for a
/// clause that uses one of them. The syscall entries (the `sock_length`
/// strategies' further programs) note nothing but the size asked, and
/// classic syscall tracepoints are costly to have: every syscall takes the
/// slow path while they are attached, and removing them waits for an RCU
/// tasks-trace grace period (~300 ms for these eight).
pub(super) static ALSO_ONLY_FOR: &[(&str, &[&str])] = &[
    (program::IO_ENTER, &["size"]),
    (program::IO_ENTER_M, &["size"]),
    (program::IO_ENTER_V, &["size"]),
];

static IO_FIELDS: &[FieldDef] = &[
    field(
        "size",
        Uint(Unit::Bytes),
        &[io::SIZE],
        64,
        "bytes the call asked to move (its length argument, or the sum of its iovec); \
         with the sock_length strategy 0 when the call did not come through one of the \
         traced syscalls (fexit and kprobe read tcp_sendmsg's/tcp_recvmsg's own length \
         parameter)",
    ),
    field(
        "ret",
        Int(Unit::Bytes),
        &[io::RET],
        32,
        "bytes moved, or a negative errno (-11 EAGAIN, -32 EPIPE, ...)",
    ),
    field(
        "flags",
        Uint(Unit::None),
        &[io::FLAGS],
        32,
        "MSG_* flags of a receive call (MSG_DONTWAIT = 64, MSG_PEEK = 2, ...); always 0 for \
         sends, whose tracepoint does not carry them",
    ),
];

mod io {
    pub use tcpq_abi::slot::io::*;
}
mod st {
    pub use tcpq_abi::slot::state::*;
}
mod rs {
    pub use tcpq_abi::slot::reset::*;
}
mod dr {
    pub use tcpq_abi::slot::drop::*;
}

mod sw {
    pub use tcpq_abi::slot::select_window::*;
}
mod sy {
    pub use tcpq_abi::slot::syn::*;
}
mod pr {
    pub use tcpq_abi::slot::probe::*;
}
mod rt {
    pub use tcpq_abi::slot::retransmit::*;
}

/// `tcp_retransmit`'s probe fields.
pub(super) static RETRANSMIT_FIELDS: &[FieldDef] = &[
    field(
        "segs",
        Uint(Unit::Segments),
        &[rt::SEGS],
        16,
        "segments in the retransmitted skb (one skb can carry several)",
    ),
    field(
        "err",
        Int(Unit::Errno),
        &[rt::ERR],
        32,
        "how the retransmission went: 0 (handed to the IP layer; it may still be lost \
         on the way), or why this host did not send it although the kernel counted it: \
         EPERM, a local netfilter/nft rule (output or postrouting) or a cgroup BPF egress \
         program dropped it; NET_XMIT_DROP, the qdisc or the device dropped it (local \
         congestion: the retransmission timer does not back off for it); ENOBUFS, no \
         memory to clone or copy the skb for sending; rarer errnos come from the layers \
         below (ENETDOWN from the device, ...). Shown by name; compare by name (`err == EPERM`, `err != 0`). Always \
         0 before Linux 6.17, whose tracepoint has no err",
    ),
    labelled(
        "tlp",
        ["R", "L"],
        &[rt::TLP],
        "true when the retransmission is a tail loss probe (TLP, RFC 8985; BCC \
         tcpretrans's type L, false is its R): the probe timer fired with no new data \
         to send, and tcp_send_loss_probe() resent the last segment to draw an ACK \
         (SACK) that reveals a lost tail. Read from the socket's timer state, the one \
         moment only a probe retransmits in (armed for the probe, fired, no probe \
         outstanding, the last segment sent). Probes that send new data are not \
         retransmissions: TCPLossProbes counts those too. Text shows it as BCC's letters, L \
         (a probe) or R; JSON as true or false",
    ),
];

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
              can never exceed 64 KiB, which caps throughput on long paths. SYNs and \
              SYN-ACKs are not here (their window is not tcp_select_window()'s, and \
              nothing is negotiated yet): `tcp_syn` has them, with their options.",
        template: "tcp_select_window",
        strategies: &[StrategyDef {
            abi: strategy::SELECT_WINDOW,
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
        implicit: &[],
        implicit_words: "",
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
        name: "tcp_syn",
        summary: "a SYN or SYN-ACK TCP sends, with the options it offers (mss, wscale, sack, ts)",
        doc: "A connection begins with a SYN (connect()) answered by a SYN-ACK (the \
              listener's side), and in them each side offers, as TCP options, its maximum \
              segment size (MSS, kind 2), a window-scale shift (kind 3: windows beyond \
              64 KiB; without the option in both SYNs there is no scaling at all, in either \
              direction), SACK-permitted (kind 4) and timestamps (kind 8). An option is \
              used only when both SYNs carry it, and a Linux listener puts wscale, SACK and \
              timestamps in its SYN-ACK only when the client's SYN had them and its own \
              sysctls allow (net.ipv4.tcp_window_scaling, tcp_sack, tcp_timestamps): the \
              SYN shows what the client asks for, the SYN-ACK what was agreed. This fires \
              for each SYN and SYN-ACK this host sends, retransmissions too, read from the \
              TCP header as it is queued to a device, like tcp_select_window (whose \
              events never include them). What the peer offered is in its own SYN: run \
              tcpq on the peer (or, for namespaces on one host, here: one tcpq sees them \
              all), or read the outcome on tcp_connect and tcp_accept (wscale_ok, \
              snd_wscale: the peer's shift, mss). A SYN-ACK is sent by a request socket \
              (state NEW_SYN_RECV), before the connection has a full socket: its socket \
              fields (rcv_wnd, mss, wscale_ok, ...) read 0 and pid/comm are the \
              listener's. Not seen: SYN-ACKs sent as SYN cookies (no socket at all), and a \
              SYN-ACK with IPv4 options or IPv6 extension headers.",
        template: "tcp_select_window",
        strategies: &[StrategyDef {
            abi: strategy::SYN,
            how: "like tcp_select_window: the TCP header of each outgoing SYN and SYN-ACK as \
                  it is queued to a device (raw tracepoint net_dev_queue), its options \
                  parsed in the template; the socket from skb->sk (for a SYN-ACK, the \
                  request socket)",
            requires: &[
                Req::Btf,
                Req::RawArg("net_dev_queue", 0, "struct sk_buff *"),
            ],
            provides: &[],
            field_requires: &[],
        }],
        implicit: &[],
        implicit_words: "",
        fields: &[
            field(
                "win",
                Uint(Unit::Bytes),
                &[sy::WIN],
                16,
                "the window field: the receive window this side offers, never scaled in a \
                 SYN or SYN-ACK (RFC 7323), so in bytes (Linux sends min(rcv_wnd, 65535))",
            ),
            field(
                "ack",
                Bool,
                &[sy::ACK],
                1,
                "true: a SYN-ACK (the answer to a SYN); false: a SYN (connect())",
            ),
            field(
                "opt_mss",
                Uint(Unit::Bytes),
                &[sy::OPT_MSS],
                16,
                "the MSS option (kind 2): the largest segment payload this side will take; \
                 0 when the segment has none (the kernel ignores an MSS of 0 too)",
            ),
            field(
                "opt_wscale_ok",
                Bool,
                &[sy::OPT_WSCALE_OK],
                1,
                "whether the window-scale option (kind 3) is present; absent from either SYN, \
                 the connection has no scaling (windows stop at 64 KiB)",
            ),
            field(
                "opt_wscale",
                Uint(Unit::None),
                &[sy::OPT_WSCALE],
                8,
                "the window-scale option's shift: this side's advertised windows are to be \
                 shifted left by it (its rcv_wscale); 0 when absent: see opt_wscale_ok",
            ),
            field(
                "opt_sack_ok",
                Bool,
                &[sy::OPT_SACK_OK],
                1,
                "whether the SACK-permitted option (kind 4) is present: this side takes \
                 selective acknowledgements",
            ),
            field(
                "opt_ts",
                Bool,
                &[sy::OPT_TS],
                1,
                "whether the timestamps option (kind 8) is present (RFC 7323: RTT samples \
                 on every ACK, protection against wrapped sequence numbers)",
            ),
            field(
                "tcp_flags",
                Uint(Unit::None),
                &[sy::TCP_FLAGS],
                8,
                "TCP header flags byte (SYN=2, ACK=16, ECE=64, CWR=128: a SYN asking for \
                 ECN is 194)",
            ),
            field(
                "seq",
                Uint(Unit::None),
                &[sy::SEQ],
                32,
                "the initial sequence number of this side",
            ),
            field(
                "ack_seq",
                Uint(Unit::None),
                &[sy::ACK_SEQ],
                32,
                "in a SYN-ACK, the client's initial sequence number + 1; in a SYN not an \
                 acknowledgment (no ACK flag; Linux sends 0)",
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
        strategies: &[
            PROBE_RAW,
            StrategyDef {
                abi: strategy::PROBE_TRACEPOINT,
                how: "the tcp:tcp_probe tracepoint, with its field offsets read from the \
                  tracepoint's format file at run time",
                requires: &[Req::TpField("tcp", "tcp_probe", "skaddr")],
                provides: &[],
                field_requires: &[
                    (SOCK_FIELDS_BESIDE_TCP_PROBE, &[Req::Btf]),
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
            },
        ],
        implicit: &[],
        implicit_words: "",
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
              retransmit, RACK). Each event is one retransmission the kernel counts, an skb of \
              one or more segments (segs): the sum of segs is TcpRetransSegs. Since Linux 6.17 \
              that includes retransmissions this host refused to send (err EPERM from a \
              firewall, NET_XMIT_DROP from a qdisc, ...; their segs add up to TCPRetransFail), \
              but not attempts the kernel gave up before counting them (EBUSY: the original \
              is still queued here, ...). Before 6.17 only the sent ones are seen (err is 0; \
              sum segs is TcpRetransSegs minus TCPRetransFail). Retransmissions cost \
              throughput and latency; many of them usually mean loss or reordering on the \
              path, err != 0 a problem on this host.",
        template: "tcp_retransmit",
        strategies: &[StrategyDef {
            abi: strategy::RETRANSMIT,
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
        implicit: &[],
        implicit_words: "",
        fields: RETRANSMIT_FIELDS,
    },
    ProbeDef {
        name: "tcp_state",
        summary: "a TCP socket changed state (SYN_SENT, ESTABLISHED, FIN_WAIT1, CLOSE, ...)",
        doc: "Every TCP socket moves through the states of RFC 793: a client goes \
              SYN_SENT -> ESTABLISHED, a server's new socket SYN_RECV -> ESTABLISHED, and \
              closing walks FIN_WAIT1/FIN_WAIT2/TIME_WAIT or CLOSE_WAIT/LAST_ACK to CLOSE. \
              The kernel reports each move through inet_sock_set_state(); `state` is the \
              state the socket enters, `oldstate` the one it leaves. This is BCC's \
              tcpstates.",
        template: "tcp_state",
        strategies: STATE_STRATEGY,
        implicit: &[],
        implicit_words: "",
        fields: STATE_FIELDS,
    },
    ProbeDef {
        name: "tcp_connect",
        summary: "an outgoing connection became established (SYN_SENT -> ESTABLISHED)",
        doc: "An active open completed: the SYN-ACK arrived and the socket moved from \
              SYN_SENT to ESTABLISHED. The negotiation is settled at this moment: whether \
              window scaling is on (wscale_ok) and by how much each side shifts (snd_wscale, \
              rcv_wscale), the MSS, and the windows of the SYN exchange. The process is the \
              one that called connect(). BCC's tcpconnect, with the negotiation the seed \
              outage needed.",
        template: "tcp_state",
        strategies: STATE_STRATEGY,
        implicit: &[(st::OLDSTATE, 2, true), (st::NEWSTATE, 1, true)],
        implicit_words: "only SYN_SENT -> ESTABLISHED",
        fields: STATE_FIELDS,
    },
    ProbeDef {
        name: "tcp_connect_attempt",
        summary: "an outgoing connection attempt ended: established or failed, with the error",
        doc: "An active open ended: the socket left SYN_SENT, once for each connect() that \
              sent a SYN, when its outcome is known. newstate ESTABLISHED: the SYN-ACK \
              arrived (what tcp_connect reports). CLOSE: the attempt failed, and err says \
              why: ECONNREFUSED (a reset answered the SYN: nobody listens on that port), \
              ETIMEDOUT (nothing answered the SYN or its retransmissions: \
              net.ipv4.tcp_syn_retries, with tcp_syn_linear_timeouts since 6.5, or the \
              socket's TCP_SYNCNT / TCP_USER_TIMEOUT), EHOSTUNREACH or ENETUNREACH (an ICMP \
              error answered it), or 0: the application closed the socket before any \
              answer (its own connect timeout), or connect() failed locally after setting \
              SYN_SENT and returned the error itself (no free local port, EADDRNOTAVAIL). \
              SYN_RECV: a simultaneous open. `duration` is how long the attempt took (from \
              the move to SYN_SENT, if tcpq saw it: BCC's tcpconnlat for the successful \
              ones), `total_retrans` how many times the SYN was retransmitted. BCC's \
              tcpconnect prints an attempt when connect() sends the SYN; this prints it \
              when it ends, with its result (the move to SYN_SENT itself is \
              `tcp_state where newstate == SYN_SENT`). A connect() the kernel refuses \
              before SYN_SENT (no route to the address) is not seen. An application \
              that connects without blocking (an event loop, Python with a timeout) \
              may end the attempt itself on a soft error: an ICMP error that arrives \
              while connect() still holds the socket is only noted (sk_err_soft, \
              TcpExtLockDroppedIcmps), SO_ERROR hands it over, and the application \
              closes the SYN_SENT socket: err 0 here (measured with ICMP host \
              unreachable on a veth pair: connect() failed with EHOSTUNREACH within a \
              millisecond, TcpAttemptFails did not move).",
        template: "tcp_state",
        strategies: STATE_STRATEGY,
        implicit: &[(st::OLDSTATE, 2, true)],
        implicit_words: "only moves out of SYN_SENT",
        fields: STATE_FIELDS,
    },
    ProbeDef {
        name: "tcp_accept",
        summary: "an incoming connection became established (SYN_RECV -> ESTABLISHED)",
        doc: "A passive open completed: the final ACK of the handshake arrived at a \
              listener and the new socket moved from SYN_RECV to ESTABLISHED, ready for \
              accept(). It fires in softirq; pid/comm are the listening process (or the one \
              that accepted it, once that one has read or written). With the negotiated scaling and MSS, like \
              tcp_connect. BCC's tcpaccept.",
        template: "tcp_state",
        strategies: STATE_STRATEGY,
        implicit: &[(st::OLDSTATE, 3, true), (st::NEWSTATE, 1, true)],
        implicit_words: "only SYN_RECV -> ESTABLISHED",
        fields: STATE_FIELDS,
    },
    ProbeDef {
        name: "tcp_close",
        summary: "a connection ended (moved to CLOSE), with its life: duration and bytes",
        doc: "The socket moved to CLOSE: the connection is over. `duration` is its age since \
              the handshake began (when tcpq saw it), and the socket still holds what it \
              moved: bytes_acked (sent and acknowledged), bytes_received, total_retrans. \
              BCC's tcplife.",
        template: "tcp_state",
        strategies: STATE_STRATEGY,
        implicit: &[(st::NEWSTATE, 7, true), (st::OLDSTATE, 10, false)],
        implicit_words: "only moves to CLOSE, listeners excluded",
        fields: STATE_FIELDS,
    },
    ProbeDef {
        name: "tcp_rtt",
        summary: "round-trip time estimates as ACKs arrive (srtt, mdev, rttvar)",
        doc: "Each arriving segment on an established connection can carry an ACK that \
              lets TCP sample the round-trip time; the smoothed estimate (srtt), its mean \
              deviation (mdev) and the variance used for the retransmission timeout \
              (rttvar) are the socket's, read as each segment is processed (tcp_probe's \
              moment). BCC's tcprtt, as a histogram with `hist srtt`.",
        template: "tcp_probe",
        strategies: PROBE_STRATEGY,
        implicit: &[],
        implicit_words: "",
        fields: &[],
    },
    ProbeDef {
        name: "tcp_cwnd",
        summary: "congestion window, slow-start threshold and congestion state per ACK",
        doc: "The congestion window (snd_cwnd, in segments) limits how much unacknowledged \
              data a sender keeps in flight. It grows quickly in slow start (until \
              ssthresh) and slowly after; a loss cuts it and moves ca_state to Recovery or \
              Loss. Read as each segment arrives (tcp_probe's moment).",
        template: "tcp_probe",
        strategies: PROBE_STRATEGY,
        implicit: &[],
        implicit_words: "",
        fields: &[],
    },
    ProbeDef {
        name: "tcp_rcv_space",
        summary: "receive-buffer autotuning ran (tcp_rcv_space_adjust)",
        doc: "While an application reads, TCP measures how much it consumes per round trip \
              (rcv_space) and grows the receive buffer (rcvbuf) so the window can keep the \
              pipe full. This fires once per measurement, from tcp_rcv_space_adjust().",
        template: "tcp_sock_event",
        strategies: &[StrategyDef {
            abi: strategy::RCV_SPACE,
            how: "the tcp_rcv_space_adjust raw tracepoint (argument sk)",
            requires: &[
                Req::Btf,
                Req::RawArg("tcp_rcv_space_adjust", 0, "struct sock *"),
            ],
            provides: &[],
            field_requires: &[],
        }],
        implicit: &[],
        implicit_words: "",
        fields: &[],
    },
    ProbeDef {
        name: "tcp_reset",
        summary: "a reset sent or received (RST)",
        doc: "A reset aborts a connection. This host sends one when a segment arrives for a \
              port nobody listens on, when an application closes a socket with unread data, \
              or on protocol errors; it receives one when the peer does the same. \
              `received` says which; `reason` (for sent resets, on kernels that report it) \
              says why. A reset to a closed port has no socket: its addresses come from the \
              segment it answers.",
        template: "tcp_reset",
        strategies: &[StrategyDef {
            abi: strategy::RESET,
            how: "the tcp_send_reset and tcp_receive_reset raw tracepoints",
            requires: &[
                Req::Btf,
                Req::RawArg("tcp_send_reset", 0, "struct sock *"),
                Req::RawArg("tcp_send_reset", 1, "struct sk_buff *"),
                Req::RawArg("tcp_receive_reset", 0, "struct sock *"),
            ],
            provides: &[],
            field_requires: &[(
                &["reason"],
                &[Req::RawArg("tcp_send_reset", 2, "enum sk_rst_reason")],
            )],
        }],
        implicit: &[],
        implicit_words: "",
        fields: &[
            field(
                "received",
                Bool,
                &[rs::RECEIVED],
                1,
                "true: the peer reset the connection; false: this host sent the reset",
            ),
            field(
                "reason",
                Uint(Unit::RstReason),
                &[rs::REASON],
                32,
                "why a sent reset was sent (enum sk_rst_reason, e.g. NO_SOCKET, \
                 TCP_ABORT_ON_DATA), 0 for received resets",
            ),
        ],
    },
    ProbeDef {
        name: "tcp_drop",
        summary: "a TCP segment the kernel dropped, with the reason",
        doc: "The kernel frees a packet it will not deliver or send with a reason \
              (enum skb_drop_reason): a bad checksum, no socket, a full receive queue, a \
              netfilter rule, an out-of-window segment, and dozens more. This shows the TCP \
              ones, with the reason by name and the function that dropped it. BCC's tcpdrop.",
        template: "tcp_drop",
        strategies: &[StrategyDef {
            abi: strategy::DROP,
            how: "the kfree_skb raw tracepoint, keeping TCP segments (IP header checked); \
                  the socket is skb->sk or the tracepoint's rx_sk",
            requires: &[
                Req::Btf,
                Req::RawArg("kfree_skb", 0, "struct sk_buff *"),
                Req::RawArg("kfree_skb", 1, "void *"),
            ],
            provides: &[],
            field_requires: &[(
                &["reason"],
                &[Req::RawArg("kfree_skb", 2, "enum skb_drop_reason")],
            )],
        }],
        implicit: &[],
        implicit_words: "",
        fields: &[
            field(
                "reason",
                Uint(Unit::DropReason),
                &[dr::REASON],
                32,
                "why the segment was dropped (enum skb_drop_reason, e.g. NO_SOCKET, \
                 TCP_CSUM, NETFILTER_DROP)",
            ),
            field(
                "location",
                Uint(Unit::KernelSymbol),
                &[dr::LOCATION],
                64,
                "the kernel function that dropped it",
            ),
            field(
                "inbound",
                Bool,
                &[dr::INBOUND],
                1,
                "true when no socket was known and the segment is taken as arriving",
            ),
        ],
    },
    ProbeDef {
        name: "tcp_sendmsg",
        summary: "a send call on a TCP socket: bytes asked (size) and sent (ret)",
        doc: "An application hands data to TCP with write(), send(), sendto(), sendmsg() \
              or writev(); each call ends in tcp_sendmsg(). `size` is what the call asked \
              to send, `ret` what it queued (fewer on a non-blocking socket with a full \
              send buffer) or a negative errno. It runs in the calling process, so pid and \
              comm are the caller. The seed's `kprobe:tcp_sendmsg { hist(arg2) }` is \
              `on tcp_sendmsg hist size`.",
        template: "tcp_io",
        strategies: &[
            StrategyDef {
                abi: strategy::SEND_FEXIT,
                how: "an fexit program on tcp_sendmsg(): the socket, the size asked and the result \
                  in one program, at the function's return (parameter positions from its BTF \
                  prototype)",
                requires: &[Req::Btf, Req::Fentry("tcp_sendmsg")],
                provides: &[],
                field_requires: &[],
            },
            StrategyDef {
                abi: strategy::SEND_SOCK_LENGTH,
                how: "the sock_send_length raw tracepoint (socket and result of each \
                  sock_sendmsg), with the size asked noted at the send syscalls' entry \
                  (syscalls:sys_enter_write/sendto/sendmsg/writev), attached only when the \
                  clause uses size",
                requires: &[
                    Req::Btf,
                    Req::RawArg("sock_send_length", 0, "struct sock *"),
                    Req::RawArg("sock_send_length", 1, "int"),
                    Req::TpField("syscalls", "sys_enter_write", "count"),
                ],
                provides: &[],
                field_requires: &[],
            },
            StrategyDef {
                abi: strategy::SEND_KPROBE,
                how: "a kprobe on tcp_sendmsg() for the socket and the size asked (parameter \
                  positions from its BTF prototype) and a kretprobe for the result, for \
                  kernels without the sock_*_length tracepoints (before 6.3)",
                requires: &[Req::Btf, Req::Kprobe("tcp_sendmsg")],
                provides: &[],
                field_requires: &[],
            },
        ],
        implicit: &[],
        implicit_words: "",
        fields: IO_FIELDS,
    },
    ProbeDef {
        name: "tcp_recvmsg",
        summary: "a receive call on a TCP socket: bytes asked (size) and read (ret)",
        doc: "An application reads with read(), recv(), recvfrom(), recvmsg() or readv(); \
              each call ends in tcp_recvmsg(). `size` is the buffer it offered, `ret` \
              what it got (0 at end of stream) or a negative errno (-11, EAGAIN, on an \
              empty non-blocking socket). With the socket's rcv_wnd and snd_wnd this is \
              the seed's BCC program on tcp_recvmsg, without its cast of a kprobe \
              argument.",
        template: "tcp_io",
        strategies: &[
            StrategyDef {
                abi: strategy::RECV_FEXIT,
                how: "an fexit program on tcp_recvmsg(): the socket, the size offered and the result \
                  in one program, at the function's return (parameter positions from its BTF \
                  prototype)",
                requires: &[Req::Btf, Req::Fentry("tcp_recvmsg")],
                provides: &[],
                field_requires: &[],
            },
            StrategyDef {
                abi: strategy::RECV_SOCK_LENGTH,
                how: "the sock_recv_length raw tracepoint, with the size asked noted at the \
                  receive syscalls' entry (syscalls:sys_enter_read/recvfrom/recvmsg/readv), attached only when the \
                  clause uses size",
                requires: &[
                    Req::Btf,
                    Req::RawArg("sock_recv_length", 0, "struct sock *"),
                    Req::RawArg("sock_recv_length", 1, "int"),
                    Req::TpField("syscalls", "sys_enter_write", "count"),
                ],
                provides: &[],
                field_requires: &[],
            },
            StrategyDef {
                abi: strategy::RECV_KPROBE,
                how: "a kprobe on tcp_recvmsg() for the socket and the size asked (parameter \
                  positions from its BTF prototype) and a kretprobe for the result, for \
                  kernels without the sock_*_length tracepoints (before 6.3)",
                requires: &[Req::Btf, Req::Kprobe("tcp_recvmsg")],
                provides: &[],
                field_requires: &[],
            },
        ],
        implicit: &[],
        implicit_words: "",
        fields: IO_FIELDS,
    },
];
