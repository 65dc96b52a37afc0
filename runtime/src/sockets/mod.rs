//! `tcpq sockets`: the TCP sockets that exist now, from sock_diag netlink
//! (`NETLINK_SOCK_DIAG`, `SOCK_DIAG_BY_FAMILY`, the interface `ss` reads),
//! filtered by a [`SocketsQuery`] compiled by the language's own passes.
//!
//! Each namespace is dumped from a thread inside it ([`netns::run_in`]):
//! the netlink socket is created there, so it belongs to that namespace.
//! One request per family (AF_INET, AF_INET6), every state, with the
//! extensions `INET_DIAG_INFO` (`struct tcp_info`) and
//! `INET_DIAG_SKMEMINFO` (buffer sizes); `INET_DIAG_CGROUP_ID` comes
//! unasked. A socket's record is the same `[u64; N_SLOTS]` a probe's event
//! is, with the same encodings (addresses IPv4-mapped in two big-endian
//! words, `comm` as two words, times in microseconds), plus a mask of the
//! slots the kernel reported for it:
//!
//! - `tcp_info` is parsed by its kernel layout (include/uapi/linux/tcp.h),
//!   honouring the attribute's length: a field beyond it is missing, never
//!   0. [`list`] refuses a query that names a field no socket of this
//!   kernel has (an older kernel's shorter `tcp_info`).
//! - Only full sockets carry `tcp_info`, skmeminfo, the cgroup, a uid and
//!   queues: TIME_WAIT sockets and half-open requests have addresses,
//!   ports, state and cookie only (the kernel sends 0 for their uid and
//!   inode, which are not the socket's).
//! - A listener's `tcp_info` is cut short by the kernel (`tcp_get_info`
//!   returns after the congestion window) and its `tcpi_unacked`/`sacked`
//!   hold the accept queue: of `tcp_info` a listener has only `snd_cwnd`,
//!   and its `backlog`/`backlog_max` (from `idiag_rqueue`/`wqueue`), which
//!   other sockets lack.
//! - `pid`/`comm` come from /proc ([`owners::socket_holders`]): 0 and no
//!   comm (`-`, JSON null) for a socket no process holds, as on a probe.
use std::collections::HashMap;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, Nla, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::{
    constants::{AF_INET, AF_INET6, IPPROTO_TCP},
    inet::{nlas::Nla as DiagNla, ExtensionFlags, InetRequest, InetResponse, SocketId, StateFlags},
    SockDiagMessage,
};
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket as NlSocket, SocketAddr};
use tcpq_abi::N_SLOTS;
use tcpq_dsl::plan::Column;
use tcpq_dsl::sockets::{SocketsQuery, SOCKETS};

use crate::netns::{self, Netns, NetnsError};
use crate::owners;
use crate::render::{decode, Names, Value};

/// `INET_DIAG_CGROUP_ID` (Linux 5.7), which the crate does not name.
const INET_DIAG_CGROUP_ID: u16 = 21;
const TCP_LISTEN: u8 = 10;
/// `TCPI_OPT_WSCALE` in `tcpi_options`.
const TCPI_OPT_WSCALE: u8 = 4;

/// Why sockets could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum SocketsError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("sock_diag in network namespace {ns}: {source}")]
    Netlink {
        ns: String,
        #[source]
        source: std::io::Error,
    },
    #[error("sock_diag in network namespace {ns}: cannot decode the kernel's answer: {what}")]
    Decode { ns: String, what: String },
    /// The kernel has no sock_diag handler for TCP: `CONFIG_INET_DIAG` /
    /// `CONFIG_INET_TCP_DIAG` off, or their modules not loaded (a normal
    /// system loads them on first use; a minimal one may not).
    #[error(
        "this kernel answers no TCP sock_diag request (ENOENT): it lacks CONFIG_INET_DIAG and \
         CONFIG_INET_TCP_DIAG, or their modules are not loaded (try `modprobe tcp_diag`)"
    )]
    NoTcpDiag,
    /// The query names a field this kernel's sock_diag does not report.
    #[error("`{field}` cannot be read on this kernel: {why}")]
    FieldUnavailable { field: String, why: String },
}

/// Where a field's value is in what sock_diag sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// From `struct inet_diag_msg`, for every socket.
    Family,
    Saddr,
    Daddr,
    Sport,
    Dport,
    State,
    Cookie,
    /// tcpq's own: the namespace it dumped.
    Netns,
    /// From /proc: the process holding `idiag_inode`.
    Pid,
    Comm,
    /// `idiag_uid`, full sockets only.
    Uid,
    /// `idiag_rqueue` / `idiag_wqueue` of a full socket that is not a
    /// listener (bytes), or of a listener (its accept queue and limit).
    RecvQ,
    SendQ,
    Backlog,
    BacklogMax,
    /// `INET_DIAG_CGROUP_ID`.
    Cgroup,
    /// `INET_DIAG_SKMEMINFO` entry (`SK_MEMINFO_*`).
    Skmem(usize),
    /// `struct tcp_info`: bytes `off..off + size`, native endian.
    Info {
        off: usize,
        size: usize,
        how: Info,
    },
}

/// How a `tcp_info` member becomes the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Info {
    Plain,
    /// `tcpi_options & TCPI_OPT_WSCALE`.
    WscaleOk,
    /// The `tcpi_snd_wscale:4` / `tcpi_rcv_wscale:4` bitfields.
    SndWscale,
    RcvWscale,
    /// `~0` means no sample yet: missing.
    NoneIfMax,
}

const fn info(off: usize, size: usize) -> Source {
    Source::Info {
        off,
        size,
        how: Info::Plain,
    }
}

/// Every field of [`SOCKETS`] and where it comes from (a test checks the
/// two lists agree). `tcp_info` offsets are the uapi layout (the running
/// kernel's BTF `struct tcp_info` agrees on 6.18).
pub static SOURCES: &[(&str, Source)] = &[
    ("pid", Source::Pid),
    ("comm", Source::Comm),
    ("family", Source::Family),
    ("saddr", Source::Saddr),
    ("daddr", Source::Daddr),
    ("sport", Source::Sport),
    ("dport", Source::Dport),
    ("netns", Source::Netns),
    ("state", Source::State),
    ("sock_cookie", Source::Cookie),
    ("uid", Source::Uid),
    ("cgroup", Source::Cgroup),
    ("recv_q", Source::RecvQ),
    ("send_q", Source::SendQ),
    ("backlog", Source::Backlog),
    ("backlog_max", Source::BacklogMax),
    // SK_MEMINFO_RCVBUF, SK_MEMINFO_SNDBUF.
    ("rcvbuf", Source::Skmem(1)),
    ("sndbuf", Source::Skmem(3)),
    ("ca_state", info(1, 1)),
    ("probes", info(3, 1)),
    ("backoff", info(4, 1)),
    (
        "wscale_ok",
        Source::Info {
            off: 5,
            size: 1,
            how: Info::WscaleOk,
        },
    ),
    (
        "snd_wscale",
        Source::Info {
            off: 6,
            size: 1,
            how: Info::SndWscale,
        },
    ),
    (
        "rcv_wscale",
        Source::Info {
            off: 6,
            size: 1,
            how: Info::RcvWscale,
        },
    ),
    ("rto", info(8, 4)),
    ("mss", info(16, 4)),
    ("rcv_mss", info(20, 4)),
    ("unacked", info(24, 4)),
    ("sacked", info(28, 4)),
    ("lost", info(32, 4)),
    ("retrans", info(36, 4)),
    ("last_data_sent", info(44, 4)),
    ("last_data_recv", info(52, 4)),
    ("last_ack_recv", info(56, 4)),
    ("pmtu", info(60, 4)),
    ("rcv_ssthresh", info(64, 4)),
    ("srtt", info(68, 4)),
    ("mdev", info(72, 4)),
    ("ssthresh", info(76, 4)),
    ("snd_cwnd", info(80, 4)),
    ("advmss", info(84, 4)),
    ("rcv_rtt", info(92, 4)),
    ("rcv_space", info(96, 4)),
    ("total_retrans", info(100, 4)),
    ("bytes_acked", info(120, 8)),
    ("bytes_received", info(128, 8)),
    ("segs_out", info(136, 4)),
    ("segs_in", info(140, 4)),
    ("notsent_bytes", info(144, 4)),
    (
        "min_rtt",
        Source::Info {
            off: 148,
            size: 4,
            how: Info::NoneIfMax,
        },
    ),
    ("delivery_rate", info(160, 8)),
    ("busy_time", info(168, 8)),
    ("rwnd_limited", info(176, 8)),
    ("sndbuf_limited", info(184, 8)),
    ("bytes_retrans", info(208, 8)),
    ("rcv_ooopack", info(224, 4)),
    ("snd_wnd", info(228, 4)),
    ("rcv_wnd", info(232, 4)),
];

/// The `tcp_info` member names, for messages.
fn info_member(field: &str) -> &str {
    match field {
        "mss" => "tcpi_snd_mss",
        "srtt" => "tcpi_rtt",
        "mdev" => "tcpi_rttvar",
        "ssthresh" => "tcpi_snd_ssthresh",
        "snd_wscale" | "rcv_wscale" => "tcpi_snd_wscale/tcpi_rcv_wscale",
        "wscale_ok" => "tcpi_options",
        "notsent_bytes" => "tcpi_notsent_bytes",
        _ => "",
    }
}

fn source(field: &str) -> Option<Source> {
    SOURCES.iter().find(|(n, _)| *n == field).map(|(_, s)| *s)
}

/// One socket as sock_diag reported it: a record like a probe's event.
#[derive(Clone, Debug)]
pub struct Socket {
    pub vals: [u64; N_SLOTS],
    /// The slots the kernel reported for this socket (bit `i`: slot `i`).
    pub have: u64,
    /// `idiag_inode`: 0 for TIME_WAIT and request sockets.
    pub inode: u32,
    /// Bytes of its `INET_DIAG_INFO`, 0 without one.
    pub info_len: usize,
}

impl Socket {
    fn set(&mut self, field: &str, v: u64) {
        if let Some(f) = SOCKETS.field(field) {
            let s = f.slots[0];
            self.vals[usize::from(s)] = v;
            self.have |= 1 << s;
        }
    }

    fn set2(&mut self, field: &str, v: [u64; 2]) {
        if let Some(f) = SOCKETS.field(field) {
            for (s, v) in f.slots.iter().zip(v) {
                self.vals[usize::from(*s)] = v;
                self.have |= 1 << *s;
            }
        }
    }

    /// Whether every slot of `col` was reported.
    fn has(&self, slots: &[u8]) -> bool {
        slots.iter().all(|s| self.have & (1 << s) != 0)
    }
}

fn addr_words(ip: std::net::IpAddr) -> [u64; 2] {
    let v6 = match ip {
        std::net::IpAddr::V4(a) => a.to_ipv6_mapped(),
        std::net::IpAddr::V6(a) => a,
    };
    tcpq_abi::addr_words(&v6.octets())
}

/// Build a socket's record from one sock_diag answer.
pub fn decode_response(r: &InetResponse, netns: u64) -> Socket {
    let h = &r.header;
    let mut s = Socket {
        vals: [0; N_SLOTS],
        have: 0,
        inode: h.inode,
        info_len: 0,
    };
    s.set("family", u64::from(h.family));
    s.set2("saddr", addr_words(h.socket_id.source_address));
    s.set2("daddr", addr_words(h.socket_id.destination_address));
    s.set("sport", u64::from(h.socket_id.source_port));
    s.set("dport", u64::from(h.socket_id.destination_port));
    s.set("state", u64::from(h.state));
    s.set("netns", netns);
    let c = h.socket_id.cookie;
    let lo = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]);
    let hi = u32::from_ne_bytes([c[4], c[5], c[6], c[7]]);
    s.set("sock_cookie", u64::from(hi) << 32 | u64::from(lo));
    // Owner: filled by `list` (0 / no comm until then, as for a socket no
    // process holds).
    s.set("pid", 0);
    s.set2("comm", [0, 0]);
    let mut info: Option<&[u8]> = None;
    let mut skmem: Option<[u32; 4]> = None;
    let mut cgroup = None;
    for nla in &r.nlas {
        match nla {
            DiagNla::TcpInfo(bytes) => info = Some(bytes.as_slice()),
            DiagNla::MemInfo(m) => {
                skmem = Some([
                    m.receive_queue,
                    m.receive_queue_max,
                    m.bottom_send_queues,
                    m.send_queue_max,
                ])
            }
            DiagNla::Other(o) if o.kind() == INET_DIAG_CGROUP_ID && o.value_len() == 8 => {
                let mut b = [0u8; 8];
                o.emit_value(&mut b);
                cgroup = Some(u64::from_ne_bytes(b));
            }
            _ => {}
        }
    }
    // Only a full socket has tcp_info (and the rest below).
    let Some(info) = info else {
        return s;
    };
    s.info_len = info.len();
    let listener = h.state == TCP_LISTEN;
    s.set("uid", u64::from(h.uid));
    if let Some(id) = cgroup {
        s.set("cgroup", id);
    }
    if listener {
        s.set("backlog", u64::from(h.recv_queue));
        s.set("backlog_max", u64::from(h.send_queue));
    } else {
        s.set("recv_q", u64::from(h.recv_queue));
        s.set("send_q", u64::from(h.send_queue));
    }
    if let Some(m) = skmem {
        for (name, src) in SOURCES {
            if let Source::Skmem(i) = src {
                s.set(name, u64::from(m[*i]));
            }
        }
    }
    for (name, src) in SOURCES {
        let Source::Info { off, size, how } = *src else {
            continue;
        };
        // What tcp_get_info() fills for a listener before it returns.
        if listener && *name != "snd_cwnd" {
            continue;
        }
        let Some(bytes) = info.get(off..off + size) else {
            continue;
        };
        let raw = match size {
            1 => u64::from(bytes[0]),
            2 => u64::from(u16::from_ne_bytes([bytes[0], bytes[1]])),
            4 => u64::from(u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
            _ => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&bytes[..8]);
                u64::from_ne_bytes(b)
            }
        };
        // `__u8 tcpi_snd_wscale : 4, tcpi_rcv_wscale : 4;`: C allocates
        // bitfields from the low bits on little-endian ABIs, the high bits
        // on big-endian ones.
        let (first, second) = if cfg!(target_endian = "little") {
            (raw & 0xf, raw >> 4)
        } else {
            (raw >> 4, raw & 0xf)
        };
        let v = match how {
            Info::Plain => raw,
            Info::WscaleOk => u64::from(raw as u8 & TCPI_OPT_WSCALE != 0),
            Info::SndWscale => first,
            Info::RcvWscale => second,
            Info::NoneIfMax if raw == u64::from(u32::MAX) => continue,
            Info::NoneIfMax => raw,
        };
        s.set(name, v);
    }
    s
}

/// Every TCP socket of `ns` (the owner not yet filled).
pub fn dump(ns: &Netns) -> Result<Vec<Socket>, SocketsError> {
    let label = ns.label();
    let inode = ns.inode;
    let result = netns::run_in(ns, move || dump_here(inode))?;
    result.map_err(|e| match e {
        Dumped::Io(source) if source.raw_os_error() == Some(libc::ENOENT) => {
            SocketsError::NoTcpDiag
        }
        Dumped::Io(source) => SocketsError::Netlink { ns: label, source },
        Dumped::Decode(what) => SocketsError::Decode { ns: label, what },
    })
}

enum Dumped {
    Io(std::io::Error),
    Decode(String),
}

/// Dump the calling thread's namespace.
fn dump_here(netns: u64) -> Result<Vec<Socket>, Dumped> {
    let mut sock = NlSocket::new(NETLINK_SOCK_DIAG).map_err(Dumped::Io)?;
    sock.bind_auto().map_err(Dumped::Io)?;
    sock.connect(&SocketAddr::new(0, 0)).map_err(Dumped::Io)?;
    let mut out = Vec::new();
    for (seq, family) in [(1u32, AF_INET), (2, AF_INET6)] {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        header.sequence_number = seq;
        let socket_id = if family == AF_INET {
            SocketId::new_v4()
        } else {
            SocketId::new_v6()
        };
        let mut packet = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family,
                protocol: IPPROTO_TCP,
                extensions: ExtensionFlags::INFO | ExtensionFlags::SKMEMINFO,
                // Every state `ss -a` asks for (the kernel adds half-open
                // requests to SYN_RECV).
                states: StateFlags::all(),
                socket_id,
            })
            .into(),
        );
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf[..]);
        sock.send(&buf, 0).map_err(Dumped::Io)?;
        'recv: loop {
            let (data, _) = sock.recv_from_full().map_err(Dumped::Io)?;
            let mut at = 0;
            while at < data.len() {
                let msg = NetlinkMessage::<SockDiagMessage>::deserialize(&data[at..])
                    .map_err(|e| Dumped::Decode(e.to_string()))?;
                let len = msg.header.length as usize;
                if len == 0 {
                    return Err(Dumped::Decode("a message of length 0".into()));
                }
                at += (len + 3) & !3;
                if msg.header.sequence_number != seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Done(_) => break 'recv,
                    NetlinkPayload::Error(e) => {
                        let code = e.code.map_or(0, |c| c.get());
                        return Err(Dumped::Io(std::io::Error::from_raw_os_error(-code)));
                    }
                    NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                        out.push(decode_response(&r, netns));
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(out)
}

/// The sockets a query lists, rendered.
#[derive(Debug)]
pub struct Listing {
    /// The columns shown: the query's, less default columns this kernel
    /// cannot fill (named in `notes`).
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
    /// The namespaces with a socket in `rows`, in order: (inode, label).
    pub namespaces: Vec<(u64, String)>,
    /// Things to tell on stderr.
    pub notes: Vec<String>,
    /// Sockets seen, before the filter.
    pub seen: usize,
}

/// Dump `namespaces`, keep the sockets `query` selects, render its
/// columns. A namespace that cannot be opened or entered is an error when
/// it was asked for; with `every` (the namespaces [`netns::list`] found a
/// moment ago) it is skipped with a note: its last process may have exited
/// or `ip netns del` removed it meanwhile, and without CAP_SYS_ADMIN only
/// tcpq's own can be entered.
pub fn list(
    query: &SocketsQuery,
    namespaces: &[Netns],
    every: bool,
) -> Result<Listing, SocketsError> {
    let mut all = Vec::new();
    let mut skipped = 0;
    for ns in namespaces {
        match dump(ns) {
            Ok(s) => all.extend(s),
            Err(SocketsError::Netns(NetnsError::Open { .. } | NetnsError::Enter { .. }))
                if every && !ns.current =>
            {
                skipped += 1
            }
            Err(e) => return Err(e),
        }
    }
    let mut processes = 0;
    let holders = owners::socket_holders(&mut processes);
    let mut listing = select(query, all, &holders, namespaces)?;
    if skipped > 0 {
        listing.notes.push(format!(
            "{skipped} network namespace(s) could not be entered (gone, or no CAP_SYS_ADMIN) \
             and are not listed"
        ));
    }
    Ok(listing)
}

/// The pure half of [`list`]: owners, the kernel's `tcp_info` length, the
/// filter, the columns.
pub fn select(
    query: &SocketsQuery,
    mut all: Vec<Socket>,
    holders: &HashMap<u64, (tcpq_abi::Owner, u32)>,
    namespaces: &[Netns],
) -> Result<Listing, SocketsError> {
    for s in &mut all {
        if s.inode == 0 {
            continue;
        }
        if let Some((o, _)) = holders.get(&u64::from(s.inode)) {
            s.set("pid", u64::from(o.pid));
            s.set2("comm", tcpq_abi::comm_words(&o.comm));
        }
    }
    // The shortest tcp_info any socket came with is this kernel's.
    let info_len = all.iter().map(|s| s.info_len).filter(|&n| n > 0).min();
    let lacks = |field: &str| -> Option<String> {
        let (Some(n), Some(Source::Info { off, size, .. })) = (info_len, source(field)) else {
            return None;
        };
        (off + size > n).then(|| {
            let member = match info_member(field) {
                "" => format!("tcpi_{field}"),
                m => m.to_owned(),
            };
            format!(
                "this kernel's tcp_info is {n} bytes and has no {member} (bytes {off}..{})",
                off + size
            )
        })
    };
    for f in &query.filter_fields {
        if let Some(why) = lacks(f) {
            return Err(SocketsError::FieldUnavailable {
                field: (*f).to_owned(),
                why,
            });
        }
    }
    let mut notes = Vec::new();
    let mut columns = Vec::new();
    for c in &query.columns {
        let field = SOCKETS.field_at_slot(c.slots[0]).map_or("", |f| f.name);
        match lacks(field) {
            Some(why) if query.default_columns => {
                notes.push(format!("column {field} left out: {why}"));
            }
            Some(why) => {
                return Err(SocketsError::FieldUnavailable {
                    field: field.to_owned(),
                    why,
                })
            }
            None => columns.push(c.clone()),
        }
    }
    let seen = all.len();
    let matched: Vec<&Socket> = all
        .iter()
        .filter(|s| query.filter_slots & !s.have == 0)
        .filter(|s| tcpq_dsl::filter::run(&query.filter, &s.vals))
        .collect();
    let netns_slot = SOCKETS
        .field("netns")
        .map_or(0, |f| usize::from(f.slots[0]));
    let listed: std::collections::HashSet<u64> =
        matched.iter().map(|s| s.vals[netns_slot]).collect();
    let rows = matched.iter().map(|s| row(&columns, s)).collect();
    Ok(Listing {
        columns,
        rows,
        namespaces: namespaces
            .iter()
            .filter(|n| listed.contains(&n.inode))
            .map(|n| (n.inode, n.label()))
            .collect(),
        notes,
        seen,
    })
}

/// A socket's values for `columns`: decoded as a probe's event is, `Null`
/// for what the kernel did not report for it.
pub fn row(columns: &[Column], s: &Socket) -> Vec<Value> {
    // No socket field is a reason or a kernel address: no names to look up.
    let names = Names::default();
    columns
        .iter()
        .map(|c| {
            if !s.has(&c.slots) {
                return Value::Null;
            }
            let vals: Vec<u64> = c.slots.iter().map(|&i| s.vals[usize::from(i)]).collect();
            match &c.scale {
                Some(sc) => Value::Uint(sc.apply(vals[0])),
                None => decode(c.ty, &vals, &names),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_sock_diag::inet::InetResponseHeader;
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn every_field_has_a_source() {
        let mut want: Vec<&str> = SOCKETS.all_fields().map(|f| f.name).collect();
        let mut have: Vec<&str> = SOURCES.iter().map(|(n, _)| *n).collect();
        want.sort();
        have.sort();
        assert_eq!(want, have);
    }

    /// Offsets of `struct tcp_info` (include/uapi/linux/tcp.h), as this
    /// machine's BTF (`bpftool btf dump ... | grep -A80 "STRUCT 'tcp_info'"`)
    /// gives them in bits.
    #[test]
    fn tcp_info_offsets_are_the_uapi_layout() {
        let bits = [
            ("rto", 64),
            ("mss", 128),
            ("rcv_mss", 160),
            ("unacked", 192),
            ("retrans", 288),
            ("last_data_sent", 352),
            ("last_ack_recv", 448),
            ("rcv_ssthresh", 512),
            ("srtt", 544),
            ("mdev", 576),
            ("ssthresh", 608),
            ("snd_cwnd", 640),
            ("rcv_space", 768),
            ("total_retrans", 800),
            ("bytes_acked", 960),
            ("bytes_received", 1024),
            ("segs_out", 1088),
            ("notsent_bytes", 1152),
            ("min_rtt", 1184),
            ("delivery_rate", 1280),
            ("busy_time", 1344),
            ("rwnd_limited", 1408),
            ("sndbuf_limited", 1472),
            ("bytes_retrans", 1664),
            ("rcv_ooopack", 1792),
            ("snd_wnd", 1824),
            ("rcv_wnd", 1856),
        ];
        for (name, b) in bits {
            match source(name) {
                Some(Source::Info { off, .. }) => assert_eq!(off * 8, b, "{name}"),
                s => panic!("{name}: {s:?}"),
            }
        }
    }

    /// As the kernel sends it: without tcp_info (TIME_WAIT, a request),
    /// uid and inode 0.
    fn response(state: u8, info: Option<Vec<u8>>) -> InetResponse {
        let full = info.is_some();
        InetResponse {
            header: InetResponseHeader {
                family: AF_INET,
                state,
                timer: None,
                socket_id: SocketId {
                    source_port: 8080,
                    destination_port: 40000,
                    source_address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                    destination_address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
                    interface_id: 0,
                    cookie: [1, 0, 0, 0, 2, 0, 0, 0],
                },
                recv_queue: 5,
                send_queue: 7,
                uid: if full { 1000 } else { 0 },
                inode: if full { 4242 } else { 0 },
            },
            nlas: info.map(DiagNla::TcpInfo).into_iter().collect(),
        }
    }

    fn slot_of(name: &str) -> usize {
        usize::from(SOCKETS.field(name).unwrap().slots[0])
    }

    #[test]
    fn a_full_socket_and_a_short_tcp_info() {
        let mut info = vec![0u8; 232];
        info[5] = TCPI_OPT_WSCALE;
        info[6] = 7 | (9 << 4);
        info[68..72].copy_from_slice(&1234u32.to_ne_bytes());
        info[148..152].copy_from_slice(&u32::MAX.to_ne_bytes());
        info[228..232].copy_from_slice(&65535u32.to_ne_bytes());
        let s = decode_response(&response(1, Some(info)), 99);
        assert_eq!(s.vals[slot_of("snd_wscale")], 7);
        assert_eq!(s.vals[slot_of("rcv_wscale")], 9);
        assert_eq!(s.vals[slot_of("wscale_ok")], 1);
        assert_eq!(s.vals[slot_of("srtt")], 1234);
        assert_eq!(s.vals[slot_of("snd_wnd")], 65535);
        assert_eq!(s.vals[slot_of("recv_q")], 5);
        assert_eq!(s.vals[slot_of("uid")], 1000);
        assert_eq!(s.vals[slot_of("netns")], 99);
        assert_eq!(s.vals[slot_of("sock_cookie")], (2 << 32) | 1);
        assert_eq!(s.vals[slot_of("dport")], 40000);
        assert_eq!(
            s.vals[slot_of("saddr") + 1],
            tcpq_abi::v4_mapped_lo([10, 0, 0, 1])
        );
        let missing = |n: &str| s.have & (1 << slot_of(n)) == 0;
        // 232 bytes end before tcpi_rcv_wnd: missing, not 0.
        assert!(missing("rcv_wnd"));
        assert!(missing("min_rtt"), "~0 is no sample");
        assert!(missing("backlog"));
        assert!(!missing("srtt"));
    }

    #[test]
    fn time_wait_and_listeners_lack_what_the_kernel_does_not_say() {
        let tw = decode_response(&response(6, None), 1);
        for f in ["uid", "srtt", "recv_q", "cgroup", "rcvbuf"] {
            assert_eq!(tw.have & (1 << slot_of(f)), 0, "{f}");
        }
        for f in ["state", "sport", "sock_cookie", "pid", "comm"] {
            assert_ne!(tw.have & (1 << slot_of(f)), 0, "{f}");
        }
        let mut info = vec![0u8; 240];
        info[80..84].copy_from_slice(&10u32.to_ne_bytes());
        info[24..28].copy_from_slice(&3u32.to_ne_bytes());
        let l = decode_response(&response(TCP_LISTEN, Some(info)), 1);
        assert_eq!(l.vals[slot_of("snd_cwnd")], 10);
        assert_eq!(l.vals[slot_of("backlog")], 5);
        assert_eq!(l.vals[slot_of("backlog_max")], 7);
        for f in ["unacked", "mss", "srtt", "wscale_ok", "recv_q", "rcv_wnd"] {
            assert_eq!(l.have & (1 << slot_of(f)), 0, "{f}");
        }
    }

    fn ns() -> Netns {
        Netns {
            inode: 1,
            names: vec![],
            path: "/proc/self/ns/net".into(),
            current: true,
        }
    }

    #[test]
    fn the_filter_needs_every_field_it_names() {
        let full = decode_response(&response(1, Some(vec![0u8; 240])), 1);
        let tw = decode_response(&response(6, None), 1);
        let mut owners = HashMap::new();
        let mut comm = [0u8; 16];
        comm[..5].copy_from_slice(b"nginx");
        owners.insert(
            4242u64,
            (
                tcpq_abi::Owner {
                    pid: 77,
                    tid: 77,
                    comm,
                },
                1,
            ),
        );
        let run = |src: &str| {
            let q = tcpq_dsl::compile_sockets(src).unwrap();
            select(&q, vec![full.clone(), tw.clone()], &owners, &[ns()]).unwrap()
        };
        // Both have a sport; only the full socket has a wscale_ok.
        assert_eq!(run("where sport == 8080").rows.len(), 2);
        assert_eq!(run("where wscale_ok == false").rows.len(), 1);
        assert_eq!(run("where not wscale_ok").rows.len(), 1);
        let l = run("where pid == 77 print pid, comm, srtt");
        assert_eq!(
            l.rows,
            [vec![
                Value::Uint(77),
                Value::Str("nginx".into()),
                Value::Unit(0, "us")
            ]]
        );
        let l = run("where state == TIME_WAIT print pid, comm, srtt");
        assert_eq!(l.rows, [vec![Value::Uint(0), Value::Null, Value::Null]]);
        // A kernel whose tcp_info ends before rcv_wnd: named, not 0.
        let short = decode_response(&response(1, Some(vec![0u8; 232])), 1);
        let q = tcpq_dsl::compile_sockets("where rcv_wnd < 64KiB").unwrap();
        let e = select(&q, vec![short.clone()], &owners, &[ns()]).unwrap_err();
        assert!(
            matches!(&e, SocketsError::FieldUnavailable { field, .. } if field == "rcv_wnd"),
            "{e}"
        );
        let q = tcpq_dsl::compile_sockets("").unwrap();
        let l = select(&q, vec![short], &owners, &[ns()]).unwrap();
        assert!(l.columns.iter().all(|c| c.name != "rcv_wnd"));
        assert_eq!(l.notes.len(), 1, "{:?}", l.notes);
    }
}
