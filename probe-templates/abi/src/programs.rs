//! Every program in the template objects, where it attaches, and the
//! strategies that attach them: written once, here, for the three sides
//! that must agree on them. The templates (`probe-templates/ebpf`) define
//! each program as a function of that name in a section of that kind; the
//! catalog (`dsl/src/catalog`) builds its strategies on [`strategy`]; the
//! runtime attaches what the plan names and the [`OWNER_PROGRAMS`].
//!
//! aya-ebpf's program macros take a function's name and a literal section,
//! not a constant, so the templates spell each name a second time:
//! `dsl/tests/programs.rs` checks every name and attach point here against
//! the prebuilt objects' symbols and sections, and that the objects hold no
//! program this file does not name.

/// Where a program attaches: one variant per kind of attachment, each with
/// what that kind needs and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    /// A classic tracepoint `category:name`: the program reads the record
    /// of its format file.
    Tracepoint {
        category: &'static str,
        name: &'static str,
    },
    /// A raw tracepoint (`BPF_PROG_TYPE_RAW_TRACEPOINT`) on the tracepoint
    /// `category:name`: the program reads its `TP_PROTO` arguments. It
    /// attaches by `name`; `category` is where tracefs lists it.
    RawTracepoint {
        category: &'static str,
        name: &'static str,
    },
    /// A kprobe at the entry of a kernel function.
    Kprobe { function: &'static str },
    /// A kretprobe: the return of a kernel function.
    Kretprobe { function: &'static str },
    /// An fentry program (a BPF trampoline, BTF-typed arguments) at the
    /// entry of a kernel function.
    Fentry { function: &'static str },
    /// An fexit program: the return of a kernel function, with its
    /// arguments and its result.
    Fexit { function: &'static str },
}

impl Attach {
    const fn raw(category: &'static str, name: &'static str) -> Attach {
        Attach::RawTracepoint { category, name }
    }

    const fn tp(category: &'static str, name: &'static str) -> Attach {
        Attach::Tracepoint { category, name }
    }
}

/// A program of a template object and every point it attaches to (all of
/// one kind: one program loads as one program type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Program {
    /// Its name in the object: the function's name in the template.
    pub name: &'static str,
    pub attach: &'static [Attach],
}

/// One way to attach a probe's template: the program whose events the
/// probe reports, at its one attach point, and the further programs
/// attached with it (their attach points, in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strategy {
    /// The name `--explain` shows and `--strategy NAME` picks, e.g.
    /// `net_dev_queue`.
    pub name: &'static str,
    pub program: &'static str,
    pub attach: Attach,
    pub also: &'static [Program],
}

// Each probe's programs, by template.
/// `tcp_select_window` on `net:net_dev_queue` (template `tcp_select_window`).
pub const SELWIN_NDQ: &str = "tcpq_selwin_ndq";
/// `tcp_syn` on `net:net_dev_queue` (template `tcp_select_window`).
pub const SYN_NDQ: &str = "tcpq_syn_ndq";
/// `tcp_probe` and its views on the raw tracepoint (template `tcp_probe`).
pub const PROBE_RTP: &str = "tcpq_probe_rtp";
/// `tcp_probe` and its views on the classic tracepoint.
pub const PROBE_TP: &str = "tcpq_probe_tp";
/// `tcp_retransmit` (template `tcp_retransmit`; a raw tracepoint).
pub const RETRANS_TP: &str = "tcpq_retrans_tp";
/// `tcp_state` and its views (template `tcp_state`).
pub const STATE_RTP: &str = "tcpq_state_rtp";
/// `tcp_rcv_space` (template `tcp_sock_event`).
pub const RCVSPACE: &str = "tcpq_rcvspace";
/// `tcp_reset`'s resets sent (template `tcp_reset`).
pub const RST_SEND: &str = "tcpq_rst_send";
/// `tcp_reset`'s resets received.
pub const RST_RECV: &str = "tcpq_rst_recv";
/// `tcp_drop` (template `tcp_drop`).
pub const DROP_RTP: &str = "tcpq_drop_rtp";
// `tcp_sendmsg` and `tcp_recvmsg` (template `tcp_io`): fexit programs; the
// `sock_*_length` raw tracepoints, with the size asked noted at the
// syscalls' entry (one program per argument list: `(fd, buf, len)`,
// `(fd, msghdr, flags)`, `(fd, iov, n)`); or a kprobe and a kretprobe.
pub const IO_FSEND: &str = "tcpq_io_fsend";
pub const IO_FRECV: &str = "tcpq_io_frecv";
pub const IO_SEND: &str = "tcpq_io_send";
pub const IO_RECV: &str = "tcpq_io_recv";
pub const IO_ENTER: &str = "tcpq_io_enter";
pub const IO_ENTER_M: &str = "tcpq_io_enter_m";
pub const IO_ENTER_V: &str = "tcpq_io_enter_v";
pub const IO_KSEND: &str = "tcpq_io_ksend";
pub const IO_KSEND_RET: &str = "tcpq_io_ksend_ret";
pub const IO_KRECV: &str = "tcpq_io_krecv";
pub const IO_KRECV_RET: &str = "tcpq_io_krecv_ret";

// Owner tracking, in every template ([`OWNER_PROGRAMS`]).
/// A socket's owner set at connect() and listen() (state changes in the
/// owner's context); a listener forgotten at its CLOSE.
pub const OWN_STATE: &str = "tcpq_own_state";
/// A socket's owner forgotten when the socket is destroyed.
pub const OWN_GONE: &str = "tcpq_own_gone";
/// A socket's owner taken over by whichever process sends or receives on
/// it: the one program that runs on every send and receive on the machine.
pub const OWN_IO: &str = "tcpq_own_io";

/// The programs every template object carries that record who owns each
/// socket (`TCPQ_OWNERS`), attached before a clause's main program when
/// the clause shows or tests `pid` or `comm`. All raw tracepoints (see
/// `probe-templates/ebpf/src/common.rs` for why).
pub const OWNER_PROGRAMS: &[Program] = &[
    Program {
        name: OWN_STATE,
        attach: &[Attach::raw("sock", "inet_sock_set_state")],
    },
    Program {
        name: OWN_GONE,
        attach: &[Attach::raw("tcp", "tcp_destroy_sock")],
    },
    Program {
        name: OWN_IO,
        attach: &[
            Attach::raw("sock", "sock_send_length"),
            Attach::raw("sock", "sock_recv_length"),
        ],
    },
];

/// Every strategy of every probe: what the catalog's entries attach.
pub mod strategy {
    use super::{Attach, Program, Strategy};

    /// `tcp_select_window`: each outgoing segment as it is queued to a
    /// device.
    pub const SELECT_WINDOW: Strategy = Strategy {
        name: "net_dev_queue",
        program: super::SELWIN_NDQ,
        attach: Attach::raw("net", "net_dev_queue"),
        also: &[],
    };

    /// `tcp_syn`: the same moment, for SYNs and SYN-ACKs.
    pub const SYN: Strategy = Strategy {
        name: "net_dev_queue",
        program: super::SYN_NDQ,
        attach: Attach::raw("net", "net_dev_queue"),
        also: &[],
    };

    /// `tcp_probe` and its views, on the raw tracepoint ...
    pub const PROBE_RAW: Strategy = Strategy {
        name: "raw_tracepoint",
        program: super::PROBE_RTP,
        attach: Attach::raw("tcp", "tcp_probe"),
        also: &[],
    };

    /// ... or the classic one.
    pub const PROBE_TRACEPOINT: Strategy = Strategy {
        name: "tracepoint",
        program: super::PROBE_TP,
        attach: Attach::tp("tcp", "tcp_probe"),
        also: &[],
    };

    pub const RETRANSMIT: Strategy = Strategy {
        name: "raw_tracepoint",
        program: super::RETRANS_TP,
        attach: Attach::raw("tcp", "tcp_retransmit_skb"),
        also: &[],
    };

    /// `tcp_state` and its views.
    pub const STATE: Strategy = Strategy {
        name: "raw_tracepoint",
        program: super::STATE_RTP,
        attach: Attach::raw("sock", "inet_sock_set_state"),
        also: &[],
    };

    pub const RCV_SPACE: Strategy = Strategy {
        name: "raw_tracepoint",
        program: super::RCVSPACE,
        attach: Attach::raw("tcp", "tcp_rcv_space_adjust"),
        also: &[],
    };

    /// Resets sent, and with them those received.
    pub const RESET: Strategy = Strategy {
        name: "raw_tracepoint",
        program: super::RST_SEND,
        attach: Attach::raw("tcp", "tcp_send_reset"),
        also: &[Program {
            name: super::RST_RECV,
            attach: &[Attach::raw("tcp", "tcp_receive_reset")],
        }],
    };

    pub const DROP: Strategy = Strategy {
        name: "raw_tracepoint",
        program: super::DROP_RTP,
        attach: Attach::raw("skb", "kfree_skb"),
        also: &[],
    };

    /// The syscall entries that note the size a send or receive asks for
    /// (both `sock_length` strategies attach all of them).
    const SYSCALL_ENTERS: &[Program] = &[
        Program {
            name: super::IO_ENTER,
            attach: &[
                Attach::tp("syscalls", "sys_enter_write"),
                Attach::tp("syscalls", "sys_enter_read"),
                Attach::tp("syscalls", "sys_enter_sendto"),
                Attach::tp("syscalls", "sys_enter_recvfrom"),
            ],
        },
        Program {
            name: super::IO_ENTER_M,
            attach: &[
                Attach::tp("syscalls", "sys_enter_sendmsg"),
                Attach::tp("syscalls", "sys_enter_recvmsg"),
            ],
        },
        Program {
            name: super::IO_ENTER_V,
            attach: &[
                Attach::tp("syscalls", "sys_enter_writev"),
                Attach::tp("syscalls", "sys_enter_readv"),
            ],
        },
    ];

    /// `tcp_sendmsg`: fexit, ...
    pub const SEND_FEXIT: Strategy = Strategy {
        name: "fexit",
        program: super::IO_FSEND,
        attach: Attach::Fexit {
            function: "tcp_sendmsg",
        },
        also: &[],
    };

    /// ... the `sock_send_length` raw tracepoint with the syscall entries,
    /// ...
    pub const SEND_SOCK_LENGTH: Strategy = Strategy {
        name: "sock_length",
        program: super::IO_SEND,
        attach: Attach::raw("sock", "sock_send_length"),
        also: SYSCALL_ENTERS,
    };

    /// ... or a kprobe and a kretprobe.
    pub const SEND_KPROBE: Strategy = Strategy {
        name: "kprobe",
        program: super::IO_KSEND,
        attach: Attach::Kprobe {
            function: "tcp_sendmsg",
        },
        also: &[Program {
            name: super::IO_KSEND_RET,
            attach: &[Attach::Kretprobe {
                function: "tcp_sendmsg",
            }],
        }],
    };

    /// `tcp_recvmsg`, the same three ways.
    pub const RECV_FEXIT: Strategy = Strategy {
        name: "fexit",
        program: super::IO_FRECV,
        attach: Attach::Fexit {
            function: "tcp_recvmsg",
        },
        also: &[],
    };

    pub const RECV_SOCK_LENGTH: Strategy = Strategy {
        name: "sock_length",
        program: super::IO_RECV,
        attach: Attach::raw("sock", "sock_recv_length"),
        also: SYSCALL_ENTERS,
    };

    pub const RECV_KPROBE: Strategy = Strategy {
        name: "kprobe",
        program: super::IO_KRECV,
        attach: Attach::Kprobe {
            function: "tcp_recvmsg",
        },
        also: &[Program {
            name: super::IO_KRECV_RET,
            attach: &[Attach::Kretprobe {
                function: "tcp_recvmsg",
            }],
        }],
    };
}
