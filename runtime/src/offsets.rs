//! The `TCPQ_RO_OFFSETS` table: every kernel location a template reads,
//! resolved for the running kernel (struct members from BTF, tracepoint
//! fields from tracefs).
//!
//! The table is plain data (`N_OFFSETS` × 8 bytes) so that it can later be
//! cached on disk keyed by a hash of the BTF bytes and the format files,
//! skipping the BTF index on start-up.
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use tcpq_abi::{off, FieldLoc, N_OFFSETS};

use crate::{
    btf::{Btf, BtfError},
    tracefs::{Format, Tracefs, TracefsError},
};

/// Struct members, by `off::*` index and dotted BTF path.
pub const STRUCT_MEMBERS: &[(u32, &str)] = &[
    (off::SKC_FAMILY, "sock_common.skc_family"),
    (off::SKC_STATE, "sock_common.skc_state"),
    (off::SKC_NUM, "sock_common.skc_num"),
    (off::SKC_DPORT, "sock_common.skc_dport"),
    (off::SKC_DADDR, "sock_common.skc_daddr"),
    (off::SKC_RCV_SADDR, "sock_common.skc_rcv_saddr"),
    (off::SKC_V6_DADDR, "sock_common.skc_v6_daddr"),
    (off::SKC_V6_RCV_SADDR, "sock_common.skc_v6_rcv_saddr"),
    (off::SKC_NET, "sock_common.skc_net.net"),
    (off::NET_INUM, "net.ns.inum"),
    (off::SKC_COOKIE, "sock_common.skc_cookie"),
    (off::SK_PROTOCOL, "sock.sk_protocol"),
    (off::SK_TYPE, "sock.sk_type"),
    (off::TP_RCV_WND, "tcp_sock.rcv_wnd"),
    (off::TP_SND_WND, "tcp_sock.snd_wnd"),
    (off::TP_WSCALE_OK, "tcp_sock.rx_opt.wscale_ok"),
    (off::TP_SND_WSCALE, "tcp_sock.rx_opt.snd_wscale"),
    (off::TP_RCV_WSCALE, "tcp_sock.rx_opt.rcv_wscale"),
    (off::SKB_SK, "sk_buff.sk"),
    (off::SKB_HEAD, "sk_buff.head"),
    (off::SKB_TRANSPORT_HEADER, "sk_buff.transport_header"),
    (off::SKB_NETWORK_HEADER, "sk_buff.network_header"),
    (off::SKB_DEV, "sk_buff.dev"),
    (off::TP_SND_NXT, "tcp_sock.snd_nxt"),
    (off::TP_SND_UNA, "tcp_sock.snd_una"),
    (off::SKB_LEN, "sk_buff.len"),
    // x86-64's argument registers, in calling-convention order.
    (off::PT_REGS_ARG0, "pt_regs.di"),
    (off::PT_REGS_ARG0 + 1, "pt_regs.si"),
    (off::PT_REGS_ARG0 + 2, "pt_regs.dx"),
    (off::PT_REGS_ARG0 + 3, "pt_regs.cx"),
    (off::PT_REGS_ARG0 + 4, "pt_regs.r8"),
    (off::PT_REGS_ARG0 + 5, "pt_regs.r9"),
    (off::PT_REGS_RET, "pt_regs.ax"),
    (off::SKB_MARK, "sk_buff.mark"),
    (off::NETDEV_NET, "net_device.nd_net.net"),
    (off::INET_SPORT, "inet_sock.inet_sport"),
    (off::SOCKET_FILE, "socket.file"),
    (off::MSGHDR_IOV, "user_msghdr.msg_iov"),
    (off::MSGHDR_IOVLEN, "user_msghdr.msg_iovlen"),
    (off::IOVEC_LEN, "iovec.iov_len"),
    (off::SKB_CB, "sk_buff.cb"),
    (off::TCB_GSO_SEGS, "tcp_skb_cb.tcp_gso_segs"),
    (off::TASK_FILES, "task_struct.files"),
    (off::FILES_FDT, "files_struct.fdt"),
    (off::FDT_FD, "fdtable.fd"),
    (off::FDT_MAX_FDS, "fdtable.max_fds"),
    (off::FILE_PRIVATE_DATA, "file.private_data"),
    (off::SOCKET_SK, "socket.sk"),
    (off::TP_MSS_CACHE, "tcp_sock.mss_cache"),
    (off::TP_SRTT_US, "tcp_sock.srtt_us"),
    (off::TP_MDEV_US, "tcp_sock.mdev_us"),
    (off::TP_RTTVAR_US, "tcp_sock.rttvar_us"),
    (off::TP_SND_CWND, "tcp_sock.snd_cwnd"),
    (off::TP_SND_SSTHRESH, "tcp_sock.snd_ssthresh"),
    (off::TP_BYTES_ACKED, "tcp_sock.bytes_acked"),
    (off::TP_BYTES_RECEIVED, "tcp_sock.bytes_received"),
    (off::TP_TOTAL_RETRANS, "tcp_sock.total_retrans"),
    (off::TP_SEGS_OUT, "tcp_sock.segs_out"),
    (off::TP_SEGS_IN, "tcp_sock.segs_in"),
    (off::TP_RCVQ_SPACE, "tcp_sock.rcvq_space.space"),
    (off::ICSK_CA_STATE, "inet_connection_sock.icsk_ca_state"),
    (off::SK_UID, "sock.sk_uid.val"),
    (off::SK_RCVBUF, "sock.sk_rcvbuf"),
    (off::SK_SNDBUF, "sock.sk_sndbuf"),
    (off::SK_CGROUP, "sock.sk_cgrp_data.cgroup"),
    (off::CGROUP_KN, "cgroup.kn"),
    (off::KN_ID, "kernfs_node.id"),
    (off::SK_ACK_BACKLOG, "sock.sk_ack_backlog"),
    (off::SK_MAX_ACK_BACKLOG, "sock.sk_max_ack_backlog"),
    (off::ICSK_RTO, "inet_connection_sock.icsk_rto"),
    (off::SK_ERR, "sock.sk_err"),
    (off::ICSK_PENDING, "inet_connection_sock.icsk_pending"),
    (
        off::ICSK_RTX_TIMER_PPREV,
        "inet_connection_sock.icsk_retransmit_timer.entry.pprev",
    ),
    (off::TP_TLP_HIGH_SEQ, "tcp_sock.tlp_high_seq"),
    (off::TCB_END_SEQ, "tcp_skb_cb.end_seq"),
];

/// `tcp_gso_segs` where every kernel since 4.x keeps it, for kernels whose
/// BTF lacks `struct tcp_skb_cb` (it is only in BTF when some function
/// takes it).
const GSO_SEGS_FALLBACK: FieldLoc = FieldLoc {
    off: 8,
    size: 2,
    bit_off: 0,
    bit_size: 0,
    _pad: 0,
};

/// `end_seq` where every kernel since 2.6 keeps it (after `seq`), for
/// kernels whose BTF lacks `struct tcp_skb_cb`.
const END_SEQ_FALLBACK: FieldLoc = FieldLoc {
    off: 4,
    size: 4,
    bit_off: 0,
    bit_size: 0,
    _pad: 0,
};

/// A classic tracepoint field needed by a template: (index, category,
/// event, field).
pub const TRACEPOINT_FIELDS: &[(u32, &str, &str, &str)] = &[
    (off::TP_SYS_FD, "syscalls", "sys_enter_write", "fd"),
    (off::TP_SYS_ARG1, "syscalls", "sys_enter_write", "buf"),
    (off::TP_SYS_ARG2, "syscalls", "sys_enter_write", "count"),
    (off::TP_PROBE_SK, "tcp", "tcp_probe", "skaddr"),
    (off::TP_PROBE_SND_NXT, "tcp", "tcp_probe", "snd_nxt"),
    (off::TP_PROBE_SND_UNA, "tcp", "tcp_probe", "snd_una"),
    (off::TP_PROBE_SND_CWND, "tcp", "tcp_probe", "snd_cwnd"),
    (off::TP_PROBE_SSTHRESH, "tcp", "tcp_probe", "ssthresh"),
    (off::TP_PROBE_SND_WND, "tcp", "tcp_probe", "snd_wnd"),
    (off::TP_PROBE_SRTT, "tcp", "tcp_probe", "srtt"),
    (off::TP_PROBE_RCV_WND, "tcp", "tcp_probe", "rcv_wnd"),
    (off::TP_PROBE_DATA_LEN, "tcp", "tcp_probe", "data_len"),
    (off::TP_PROBE_MARK, "tcp", "tcp_probe", "mark"),
    (off::TP_PROBE_SPORT, "tcp", "tcp_probe", "sport"),
    (off::TP_PROBE_DPORT, "tcp", "tcp_probe", "dport"),
];

/// A raw tracepoint argument needed by a template: (index, tracepoint,
/// position in `TP_PROTO`, the C type it must have, required). The
/// prototype comes from the kernel's BTF, so a reordered or retyped
/// argument is caught instead of read as garbage.
pub const RAW_TRACEPOINT_ARGS: &[(u32, &str, usize, &str, bool)] = &[
    (
        off::TP_NET_DEV_QUEUE_SKB,
        "net_dev_queue",
        0,
        "struct sk_buff *",
        true,
    ),
    (
        off::TP_SET_STATE_SK,
        "inet_sock_set_state",
        0,
        "struct sock *",
        true,
    ),
    (
        off::TP_SET_STATE_NEWSTATE,
        "inet_sock_set_state",
        2,
        "int",
        true,
    ),
    (
        off::TP_SOCK_LENGTH_SK,
        "sock_send_length",
        0,
        "struct sock *",
        true,
    ),
    (
        off::TP_RETRANS_SK,
        "tcp_retransmit_skb",
        0,
        "struct sock *",
        true,
    ),
    (
        off::TP_RETRANS_SKB,
        "tcp_retransmit_skb",
        1,
        "struct sk_buff *",
        true,
    ),
    (
        off::TP_DESTROY_SOCK_SK,
        "tcp_destroy_sock",
        0,
        "struct sock *",
        true,
    ),
    (
        off::TP_SET_STATE_OLDSTATE,
        "inet_sock_set_state",
        1,
        "int",
        true,
    ),
    (
        off::TP_SEND_RESET_SK,
        "tcp_send_reset",
        0,
        "struct sock *",
        true,
    ),
    (
        off::TP_SEND_RESET_SKB,
        "tcp_send_reset",
        1,
        "struct sk_buff *",
        true,
    ),
    // Only kernels that say why they reset (6.10+) have it.
    (
        off::TP_SEND_RESET_REASON,
        "tcp_send_reset",
        2,
        "enum sk_rst_reason",
        false,
    ),
    (
        off::TP_RECV_RESET_SK,
        "tcp_receive_reset",
        0,
        "struct sock *",
        true,
    ),
    (
        off::TP_KFREE_SKB_SKB,
        "kfree_skb",
        0,
        "struct sk_buff *",
        true,
    ),
    (off::TP_KFREE_SKB_LOCATION, "kfree_skb", 1, "void *", true),
    (
        off::TP_KFREE_SKB_REASON,
        "kfree_skb",
        2,
        "enum skb_drop_reason",
        false,
    ),
    // The receiving socket, on kernels that pass it (6.12+).
    (
        off::TP_KFREE_SKB_RX_SK,
        "kfree_skb",
        3,
        "struct sock *",
        false,
    ),
    (
        off::TP_SK_ARG0,
        "tcp_rcv_space_adjust",
        0,
        "struct sock *",
        true,
    ),
    (off::TP_SOCK_LENGTH_RET, "sock_send_length", 1, "int", true),
    (
        off::TP_SOCK_LENGTH_FLAGS,
        "sock_send_length",
        2,
        "int",
        true,
    ),
    (off::TP_PROBE_RAW_SK, "tcp_probe", 0, "struct sock *", true),
    (
        off::TP_PROBE_RAW_SKB,
        "tcp_probe",
        1,
        "struct sk_buff *",
        true,
    ),
    // Only kernels whose tracepoint also fires for failed attempts have it.
    (off::TP_RETRANS_ERR, "tcp_retransmit_skb", 2, "int", false),
];

/// Kernel function parameters a kprobe strategy reads, by name: (index,
/// function, parameter). The position comes from the function's BTF
/// prototype, so a reordered signature is followed, not misread.
pub const FUNCTION_PARAMS: &[(u32, &str, &str)] = &[
    (off::KP_SEND_SK, "tcp_sendmsg", "sk"),
    (off::KP_SEND_SIZE, "tcp_sendmsg", "size"),
    (off::KP_RECV_SK, "tcp_recvmsg", "sk"),
    (off::KP_RECV_LEN, "tcp_recvmsg", "len"),
    (off::KP_RECV_FLAGS, "tcp_recvmsg", "flags"),
];

/// Where an fexit program finds a kernel function's return value: after
/// its parameters, at `8 * (number of parameters)` in the context, from the
/// function's BTF prototype. (index, function)
pub const FUNCTION_RETURNS: &[(u32, &str)] = &[
    (off::FX_SEND_RET, "tcp_sendmsg"),
    (off::FX_RECV_RET, "tcp_recvmsg"),
];

/// Classic tracepoint fields that one template program reads through the
/// offset already resolved for `index` (from another event): each must sit
/// at that same offset. (index, category, event, field)
pub const SAME_OFFSET: &[(u32, &str, &str, &str)] = &[
    (off::TP_SYS_FD, "syscalls", "sys_enter_read", "fd"),
    (off::TP_SYS_ARG2, "syscalls", "sys_enter_read", "count"),
    (off::TP_SYS_FD, "syscalls", "sys_enter_sendto", "fd"),
    (off::TP_SYS_ARG2, "syscalls", "sys_enter_sendto", "len"),
    (off::TP_SYS_FD, "syscalls", "sys_enter_recvfrom", "fd"),
    (off::TP_SYS_ARG2, "syscalls", "sys_enter_recvfrom", "size"),
    (off::TP_SYS_FD, "syscalls", "sys_enter_sendmsg", "fd"),
    (off::TP_SYS_ARG1, "syscalls", "sys_enter_sendmsg", "msg"),
    (off::TP_SYS_FD, "syscalls", "sys_enter_recvmsg", "fd"),
    (off::TP_SYS_ARG1, "syscalls", "sys_enter_recvmsg", "msg"),
    (off::TP_SYS_FD, "syscalls", "sys_enter_writev", "fd"),
    (off::TP_SYS_ARG1, "syscalls", "sys_enter_writev", "vec"),
    (off::TP_SYS_ARG2, "syscalls", "sys_enter_writev", "vlen"),
    (off::TP_SYS_FD, "syscalls", "sys_enter_readv", "fd"),
    (off::TP_SYS_ARG1, "syscalls", "sys_enter_readv", "vec"),
    (off::TP_SYS_ARG2, "syscalls", "sys_enter_readv", "vlen"),
];

/// Raw tracepoints one template program serves: their prototypes must be
/// identical.
pub const SAME_PROTOTYPE: &[(&str, &str)] = &[("sock_send_length", "sock_recv_length")];

/// A tracepoint as (category, name).
type Event<'a> = (&'a str, &'a str);

/// The index `missing` uses for a layout mismatch between twin tracepoints.
pub const MISMATCH: u32 = u32::MAX;

/// Why an entry could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum Unresolved {
    #[error(transparent)]
    Btf(#[from] BtfError),
    #[error(transparent)]
    Tracefs(#[from] TracefsError),
    /// A raw tracepoint's prototype is not what the template expects.
    #[error("{0}")]
    Prototype(String),
    /// The kernel's HZ could not be found (see [`crate::hz`]).
    #[error("the kernel's HZ: {0}")]
    Hz(String),
}

/// The resolved table plus what was learned on the way.
#[derive(Debug)]
pub struct Offsets {
    /// Indexed by `off::*`; `size == 0` marks an unresolved entry.
    pub locs: [FieldLoc; N_OFFSETS],
    /// Entries that could not be resolved, and why.
    pub missing: Vec<(u32, String, Unresolved)>,
    /// Assumptions made (fallbacks), for `--explain` and `doctor`.
    pub notes: Vec<String>,
    /// Time spent resolving struct members (BTF already indexed).
    pub btf_resolve_time: Duration,
    /// Time spent reading format files.
    pub tracefs_time: Duration,
}

impl Offsets {
    /// Resolve every entry. Never fails as a whole: what cannot be resolved
    /// is left at size 0 and listed in `missing`, and a template that needs
    /// it fails (or degrades) on its own.
    pub fn resolve(btf: &Btf, tracefs: &Tracefs) -> Offsets {
        let mut out = Offsets {
            locs: [FieldLoc::default(); N_OFFSETS],
            missing: Vec::new(),
            notes: Vec::new(),
            btf_resolve_time: Duration::ZERO,
            tracefs_time: Duration::ZERO,
        };
        let t = Instant::now();
        out.resolve_btf(btf);
        out.btf_resolve_time = t.elapsed();
        let t = Instant::now();
        out.resolve_tracefs(tracefs);
        out.tracefs_time = t.elapsed();
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        match crate::hz::kernel_hz(release.trim()) {
            Ok(hz) => {
                out.locs[off::HZ as usize] = FieldLoc {
                    off: hz,
                    size: 4,
                    bit_off: 0,
                    bit_size: 0,
                    _pad: 0,
                }
            }
            Err(e) => out.missing.push((off::HZ, "HZ".into(), Unresolved::Hz(e))),
        }
        out
    }

    fn resolve_btf(&mut self, btf: &Btf) {
        // One pass over the type section finds every struct we start from.
        let mut roots: Vec<&str> = STRUCT_MEMBERS
            .iter()
            .map(|(_, p)| p.split('.').next().unwrap_or_default())
            .collect();
        roots.sort_unstable();
        roots.dedup();
        let ids = btf.find_structs(&roots);
        for &(idx, path) in STRUCT_MEMBERS {
            let mut parts = path.split('.');
            let root = parts.next().unwrap_or_default();
            let result = match ids.get(root) {
                Some(&id) => btf.resolve_in(id, root, parts),
                None => Err(BtfError::NoSuchStruct(root.to_owned())),
            };
            match result {
                Ok(m) => self.locs[idx as usize] = m.to_field_loc(),
                Err(e) if idx == off::TCB_GSO_SEGS => {
                    self.locs[idx as usize] = GSO_SEGS_FALLBACK;
                    self.notes.push(format!(
                        "{path}: not in BTF ({e}); assumed offset 8, 2 bytes (its place since Linux 4.x)"
                    ));
                }
                Err(e) if idx == off::TCB_END_SEQ => {
                    self.locs[idx as usize] = END_SEQ_FALLBACK;
                    self.notes.push(format!(
                        "{path}: not in BTF ({e}); assumed offset 4, 4 bytes (its place since Linux 2.6)"
                    ));
                }
                Err(e) => self.missing.push((idx, path.to_owned(), e.into())),
            }
        }
        self.resolve_raw_tracepoints(btf);
        self.resolve_function_params(btf);
        // The stride of a user iovec array: a type size, not a member.
        match btf.struct_id("iovec").and_then(|id| btf.type_size(id)) {
            Ok(size) => {
                self.locs[off::IOVEC_SIZE as usize] = FieldLoc {
                    off: size as u32,
                    size: 8,
                    bit_off: 0,
                    bit_size: 0,
                    _pad: 0,
                }
            }
            Err(e) => self
                .missing
                .push((off::IOVEC_SIZE, "sizeof(struct iovec)".into(), e.into())),
        }
    }

    fn resolve_function_params(&mut self, btf: &Btf) {
        // Every function asked about, found in one pass over the types.
        let mut funcs: Vec<&str> = FUNCTION_PARAMS
            .iter()
            .map(|p| p.1)
            .chain(FUNCTION_RETURNS.iter().map(|r| r.1))
            .collect();
        funcs.sort_unstable();
        funcs.dedup();
        let params: HashMap<&str, Vec<String>> = btf
            .find_funcs(&funcs)
            .into_iter()
            .filter_map(|(func, id)| Some((func, btf.func_params(id).ok()?)))
            .collect();
        for &(idx, func, param) in FUNCTION_PARAMS {
            match params.get(func).map(|p| p.iter().position(|n| n == param)) {
                Some(Some(pos)) => {
                    self.locs[idx as usize] = FieldLoc {
                        off: pos as u32,
                        size: 8,
                        bit_off: 0,
                        bit_size: 0,
                        _pad: 0,
                    }
                }
                Some(None) => self.missing.push((
                    idx,
                    format!("{func}({param})"),
                    Unresolved::Prototype(format!("{func} has no parameter `{param}`")),
                )),
                // Not in BTF (inlined or absent): only the kprobe strategy
                // needed it, and its requirements say so.
                None => {}
            }
        }
        for &(idx, func) in FUNCTION_RETURNS {
            // Not in BTF: only the fexit strategy needed it, and its
            // requirements say so.
            if let Some(p) = params.get(func) {
                self.locs[idx as usize] = FieldLoc {
                    off: 8 * p.len() as u32,
                    size: 8,
                    bit_off: 0,
                    bit_size: 0,
                    _pad: 0,
                };
            }
        }
    }

    fn resolve_raw_tracepoints(&mut self, btf: &Btf) {
        let mut names: Vec<&str> = RAW_TRACEPOINT_ARGS.iter().map(|a| a.1).collect();
        names.extend(SAME_PROTOTYPE.iter().flat_map(|&(a, b)| [a, b]));
        names.sort_unstable();
        names.dedup();
        let protos: HashMap<&str, Result<Option<Vec<String>>, BtfError>> =
            btf.raw_tracepoint_args_many(&names);
        for &(idx, tp, pos, want, required) in RAW_TRACEPOINT_ARGS {
            let what = format!("raw tracepoint {tp} argument {pos} ({want})");
            let problem = match &protos[tp] {
                Ok(Some(args)) => match args.get(pos) {
                    Some(have) if have == want => {
                        self.locs[idx as usize] = FieldLoc {
                            off: 8 * pos as u32,
                            size: if want.ends_with('*') { 8 } else { 4 },
                            bit_off: 0,
                            bit_size: 0,
                            _pad: 0,
                        };
                        continue;
                    }
                    Some(have) => format!("the kernel's prototype has `{have}` there"),
                    None if !required => {
                        self.notes.push(format!("{what}: absent on this kernel"));
                        continue;
                    }
                    None => format!("the kernel's prototype has {} arguments", args.len()),
                },
                Ok(None) => format!("no btf_trace_{tp} in BTF"),
                Err(e) => e.to_string(),
            };
            self.missing
                .push((idx, what, Unresolved::Prototype(problem)));
        }
        for &(a, b) in SAME_PROTOTYPE {
            if let (Ok(Some(pa)), Ok(Some(pb))) = (&protos[a], &protos[b]) {
                if pa != pb {
                    self.missing.push((
                        MISMATCH,
                        format!("raw tracepoint {b}"),
                        Unresolved::Prototype(format!(
                            "prototype ({}) differs from {a}'s ({})",
                            pb.join(", "),
                            pa.join(", ")
                        )),
                    ));
                }
            }
        }
    }

    fn resolve_tracefs(&mut self, tracefs: &Tracefs) {
        // Each format file is read once.
        let mut events: Vec<(&str, &str)> = TRACEPOINT_FIELDS
            .iter()
            .map(|&(_, c, e, _)| (c, e))
            .collect();
        events.sort_unstable();
        events.dedup();
        let formats: Vec<(Event, Result<Format, TracefsError>)> = events
            .into_iter()
            .map(|(c, e)| ((c, e), tracefs.format(c, e)))
            .collect();
        let get = |cat: &str, ev: &str| {
            formats
                .iter()
                .find(|(k, _)| *k == (cat, ev))
                .map(|(_, f)| f.as_ref())
                .expect("every event was read above")
        };
        for &(idx, cat, ev, field) in TRACEPOINT_FIELDS {
            let event = format!("{cat}:{ev}");
            let result = match get(cat, ev) {
                Ok(f) => f.field(&event, field),
                Err(_) => Err(TracefsError::NoTracepoint {
                    category: cat.to_owned(),
                    name: ev.to_owned(),
                }),
            };
            match result {
                Ok(f) => {
                    self.locs[idx as usize] = FieldLoc {
                        off: f.offset,
                        size: f.size.min(u8::MAX as u32) as u8,
                        bit_off: 0,
                        bit_size: 0,
                        _pad: 0,
                    }
                }
                Err(e) => self
                    .missing
                    .push((idx, format!("{event}.{field}"), e.into())),
            }
        }
        for &(idx, cat, ev, field) in SAME_OFFSET {
            let want = self.locs[idx as usize];
            if want.size == 0 {
                continue;
            }
            let event = format!("{cat}:{ev}");
            match tracefs.format(cat, ev).and_then(|f| f.field(&event, field)) {
                Ok(f) if f.offset == want.off && f.size == want.size as u32 => {}
                Ok(f) => self.missing.push((
                    MISMATCH,
                    format!("{event}.{field}"),
                    Unresolved::Prototype(format!(
                        "at offset {} size {}, where the template reads offset {} size {}",
                        f.offset, f.size, want.off, want.size
                    )),
                )),
                Err(e) => self
                    .missing
                    .push((MISMATCH, format!("{event}.{field}"), e.into())),
            }
        }
    }

    /// Whether an entry was resolved.
    pub fn has(&self, idx: u32) -> bool {
        self.locs.get(idx as usize).is_some_and(|l| l.size != 0)
    }

    /// Why entry `idx` is unresolved on this kernel, in words.
    pub fn why_unresolved(&self, idx: u32) -> String {
        self.missing
            .iter()
            .find(|(i, ..)| *i == idx)
            .map(|(_, what, e)| format!("{what}: {e}"))
            .unwrap_or_else(|| format!("offset #{idx} unresolved"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_index_is_in_range_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for (i, _) in STRUCT_MEMBERS {
            assert!((*i as usize) < N_OFFSETS);
            assert!(seen.insert(*i));
        }
        for (i, ..) in TRACEPOINT_FIELDS {
            assert!((*i as usize) < N_OFFSETS);
            assert!(seen.insert(*i));
        }
        for (i, ..) in RAW_TRACEPOINT_ARGS {
            assert!((*i as usize) < N_OFFSETS);
            assert!(seen.insert(*i));
        }
        for (i, ..) in FUNCTION_PARAMS {
            assert!((*i as usize) < N_OFFSETS);
            assert!(seen.insert(*i));
        }
        for (i, ..) in FUNCTION_RETURNS {
            assert!((*i as usize) < N_OFFSETS);
            assert!(seen.insert(*i));
        }
    }

    #[test]
    fn resolves_everything_on_this_kernel() {
        let (Ok(btf), Some(tfs)) = (Btf::from_sys_fs(), Tracefs::find()) else {
            eprintln!("no BTF or tracefs; skipping");
            return;
        };
        let o = Offsets::resolve(&btf, &tfs);
        for (idx, path, e) in &o.missing {
            eprintln!("missing {idx} {path}: {e}");
        }
        assert!(o.missing.is_empty());
        for (i, _) in STRUCT_MEMBERS {
            assert!(o.has(*i), "{i}");
        }
        assert_eq!(o.locs[off::SKC_V6_DADDR as usize].size, 16);
        assert_eq!(o.locs[off::SKC_COOKIE as usize].size, 8);
        assert_eq!(o.locs[off::SKB_TRANSPORT_HEADER as usize].size, 2);
        // Raw tracepoint arguments, from the kernel's prototypes.
        let skb = o.locs[off::TP_RETRANS_SKB as usize];
        assert_eq!((skb.off, skb.size), (8, 8));
        let err = o.locs[off::TP_RETRANS_ERR as usize];
        assert_eq!((err.off, err.size), (16, 4));
        let newstate = o.locs[off::TP_SET_STATE_NEWSTATE as usize];
        assert_eq!((newstate.off, newstate.size), (16, 4));
        // tcp_sendmsg(sk, msg, size): the return value after 3 parameters.
        assert_eq!(o.locs[off::KP_SEND_SIZE as usize].off, 2);
        assert_eq!(o.locs[off::FX_SEND_RET as usize].off, 24);
        let ok = o.locs[off::TP_WSCALE_OK as usize];
        assert_eq!((ok.bit_off, ok.bit_size, ok.size), (3, 1, 1));
        eprintln!(
            "btf index {:?}, resolve {:?}, tracefs {:?}",
            btf.parse_time(),
            o.btf_resolve_time,
            o.tracefs_time
        );
    }
}
