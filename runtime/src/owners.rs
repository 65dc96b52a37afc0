//! Owners of the TCP sockets that existed before tcpq started.
//!
//! The templates learn a socket's owner when its process uses it (connect,
//! listen, accept, send, receive). A socket opened before tcpq attached and
//! not used since (a server's listener, a reader stuck behind a zero
//! window, an idle connection retransmitting) would show no `pid`/`comm`.
//! So at start the runtime reads who holds each socket from /proc
//! (`/proc/PID/fd/*` -> `socket:[INODE]`, `/proc/PID/net/tcp{,6}` ->
//! INODE, state, addresses, ports; each namespace's table through a process
//! inside it) and writes them into the template's `TCPQ_LISTENERS` (keyed
//! by namespace and port) and `TCPQ_TUPLES` (keyed by the connection) maps.
//! What the templates learn themselves (`TCPQ_OWNERS`) still wins.
//!
//! A socket held by several processes is given to the highest pid: the
//! workers of a prefork server rather than its master, the service rather
//! than systemd for a socket-activated listener (pid 1 holds it too). A connection that closes and whose
//! exact 4-tuple is reused within the run would inherit the old owner until
//! its process uses it; TIME_WAIT makes that rare.
use std::collections::HashMap;

use tcpq_abi::{ListenKey, Owner, TupleKey};

/// What /proc says, ready for the maps.
#[derive(Debug, Default)]
pub struct Seeds {
    pub listeners: Vec<(ListenKey, Owner)>,
    pub tuples: Vec<(TupleKey, Owner)>,
    /// Processes and sockets looked at, for `TCPQ_TIMINGS`.
    pub processes: usize,
    pub sockets: usize,
}

const TCP_LISTEN: u8 = 0x0a;
const TCP_TIME_WAIT: u8 = 0x06;

/// The inode of `/proc/PID/ns/net` (`net:[4026531840]`): the namespace id
/// the templates read from `sock_net(sk)->ns.inum`.
fn netns_of(pid: u32) -> Option<u32> {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
    let s = link.to_str()?;
    s.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

fn owner(pid: u32) -> Option<Owner> {
    let comm = std::fs::read(format!("/proc/{pid}/comm")).ok()?;
    let mut c = [0u8; 16];
    let name = comm.strip_suffix(b"\n").unwrap_or(&comm);
    let n = name.len().min(15);
    c[..n].copy_from_slice(&name[..n]);
    Some(Owner {
        pid,
        tid: pid,
        comm: c,
    })
}

/// Every process's sockets: inode -> (owner, the owner's netns), the
/// highest pid holding each (see the module's doc). `processes` counts the
/// processes whose fds were read. Also what `tcpq sockets` shows as a
/// socket's `pid` and `comm` (sock_diag's `idiag_inode` is the inode).
pub fn socket_holders(processes: &mut usize) -> HashMap<u64, (Owner, u32)> {
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    // Highest first: the first holder seen keeps the socket.
    pids.sort_unstable_by(|a, b| b.cmp(a));
    let mut holders = HashMap::new();
    for pid in pids {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        *processes += 1;
        let mut who: Option<(Owner, u32)> = None;
        for fd in fds.flatten() {
            let Ok(link) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let Some(inode) = link
                .to_str()
                .and_then(|s| s.strip_prefix("socket:["))
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            if holders.contains_key(&inode) {
                continue;
            }
            if who.is_none() {
                match (owner(pid), netns_of(pid)) {
                    (Some(o), Some(ns)) => who = Some((o, ns)),
                    _ => break,
                }
            }
            if let Some(w) = who {
                holders.insert(inode, w);
            }
        }
    }
    holders
}

/// One line of `/proc/net/tcp{,6}`: (state, local addr, local port, remote
/// addr, remote port, inode), addresses as the record's two big-endian
/// halves (IPv4 as `::ffff:a.b.c.d`).
type Row = (u8, [u64; 2], u16, [u64; 2], u16, u64);

/// `0100007F:1F90` (IPv4) or 32 hex digits (IPv6) and a port: the kernel
/// prints each 32-bit word of the address as a native-endian number.
fn parse_endpoint(s: &str) -> Option<([u64; 2], u16)> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let mut bytes = [0u8; 16];
    match addr.len() {
        8 => {
            let w = u32::from_str_radix(addr, 16).ok()?;
            bytes[10] = 0xff;
            bytes[11] = 0xff;
            bytes[12..].copy_from_slice(&w.to_ne_bytes());
        }
        32 => {
            for i in 0..4 {
                let w = u32::from_str_radix(&addr[8 * i..8 * i + 8], 16).ok()?;
                bytes[4 * i..4 * i + 4].copy_from_slice(&w.to_ne_bytes());
            }
        }
        _ => return None,
    }
    let hi = u64::from_be_bytes(bytes[..8].try_into().ok()?);
    let lo = u64::from_be_bytes(bytes[8..].try_into().ok()?);
    Some(([hi, lo], port))
}

fn parse_table(text: &str) -> Vec<Row> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (local, lport) = parse_endpoint(f.get(1)?)?;
            let (remote, rport) = parse_endpoint(f.get(2)?)?;
            let state = u8::from_str_radix(f.get(3)?, 16).ok()?;
            let inode = f.get(9)?.parse().ok()?;
            Some((state, local, lport, remote, rport, inode))
        })
        .collect()
}

/// Read who owns every TCP socket on the machine, in every namespace a
/// process is in.
pub fn scan() -> Seeds {
    let mut seeds = Seeds::default();
    let holders = socket_holders(&mut seeds.processes);
    // One process per namespace reads that namespace's tables.
    let mut by_ns: HashMap<u32, u32> = HashMap::new();
    for (o, ns) in holders.values() {
        by_ns
            .entry(*ns)
            .and_modify(|p| *p = (*p).min(o.pid))
            .or_insert(o.pid);
    }
    for (ns, pid) in by_ns {
        for table in ["tcp", "tcp6"] {
            let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
                continue;
            };
            for (state, local, lport, remote, rport, inode) in parse_table(&text) {
                if inode == 0 || state == TCP_TIME_WAIT {
                    continue;
                }
                let Some((o, sock_ns)) = holders.get(&inode) else {
                    continue;
                };
                if *sock_ns != ns {
                    // A socket passed to a process in another namespace:
                    // its table row is in the namespace it was made in.
                    continue;
                }
                seeds.sockets += 1;
                if state == TCP_LISTEN {
                    seeds.listeners.push((
                        ListenKey {
                            netns: ns,
                            port: lport,
                            _pad: 0,
                        },
                        *o,
                    ));
                } else {
                    seeds.tuples.push((
                        TupleKey {
                            netns: ns,
                            sport: lport,
                            dport: rport,
                            saddr: local,
                            daddr: remote,
                        },
                        *o,
                    ));
                }
            }
        }
    }
    seeds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_like_the_record() {
        // 127.0.0.1:8080 as /proc/net/tcp prints it on little-endian.
        let (a, p) =
            parse_endpoint(&format!("{:08X}:1F90", u32::from_ne_bytes([127, 0, 0, 1]))).unwrap();
        assert_eq!(p, 8080);
        assert_eq!(a, [0, 0x0000_ffff_7f00_0001]);
        // ::1
        let w = |b: [u8; 4]| format!("{:08X}", u32::from_ne_bytes(b));
        let six = format!(
            "{}{}{}{}:0050",
            w([0; 4]),
            w([0; 4]),
            w([0; 4]),
            w([0, 0, 0, 1])
        );
        assert_eq!(parse_endpoint(&six).unwrap(), ([0, 1], 80));
    }

    #[test]
    fn table_rows() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1068 1 0000000049bd73c9 100 0 0 10 0\n";
        let rows = parse_table(text);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].0, TCP_LISTEN);
        assert_eq!(rows[0].2, 8080);
        assert_eq!(rows[0].5, 1068);
    }
}
