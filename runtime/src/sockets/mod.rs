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
//!
//! This file asks the kernel (one dump per namespace), fills the owners and
//! filters; `record.rs` turns one answer into a [`Socket`].
use std::collections::HashMap;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::{
    constants::{AF_INET, AF_INET6, IPPROTO_TCP},
    inet::{ExtensionFlags, InetRequest, SocketId, StateFlags},
    SockDiagMessage,
};
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket as NlSocket, SocketAddr};
use tcpq_dsl::plan::Column;
use tcpq_dsl::sockets::{SocketsQuery, SOCKETS};

use crate::netns::{self, Netns, NetnsError};
use crate::owners;
use crate::render::{decode, Names, Value};

mod record;

pub use record::{decode_response, Info, Socket, Source, SOURCES};
use record::{info_member, source};

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
    use super::record::tests::response;
    use super::*;

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
