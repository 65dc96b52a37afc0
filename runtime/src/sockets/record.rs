//! A socket's record from one sock_diag answer: where each field of
//! [`SOCKETS`] is in what the kernel sends ([`SOURCES`]: `inet_diag_msg`,
//! the skmeminfo entries, `struct tcp_info` by its uapi layout), and the
//! [`Socket`] record built from it. Pure: asking the kernel, filling the
//! owners and filtering are `mod.rs`.
use netlink_packet_core::Nla;
use netlink_packet_sock_diag::inet::{nlas::Nla as DiagNla, InetResponse};
use tcpq_abi::N_SLOTS;
use tcpq_dsl::sockets::SOCKETS;

/// `INET_DIAG_CGROUP_ID` (Linux 5.7), which the crate does not name.
const INET_DIAG_CGROUP_ID: u16 = 21;
const TCP_LISTEN: u8 = 10;
/// `TCPI_OPT_WSCALE` in `tcpi_options`.
const TCPI_OPT_WSCALE: u8 = 4;

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
pub(super) fn info_member(field: &str) -> &str {
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

pub(super) fn source(field: &str) -> Option<Source> {
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
    pub(super) fn set(&mut self, field: &str, v: u64) {
        if let Some(f) = SOCKETS.field(field) {
            let s = f.slots[0];
            self.vals[usize::from(s)] = v;
            self.have |= 1 << s;
        }
    }

    pub(super) fn set2(&mut self, field: &str, v: [u64; 2]) {
        if let Some(f) = SOCKETS.field(field) {
            for (s, v) in f.slots.iter().zip(v) {
                self.vals[usize::from(*s)] = v;
                self.have |= 1 << *s;
            }
        }
    }

    /// Whether every slot of `col` was reported.
    pub(super) fn has(&self, slots: &[u8]) -> bool {
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use netlink_packet_sock_diag::{
        constants::AF_INET,
        inet::{InetResponseHeader, SocketId},
    };
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
    pub(in crate::sockets) fn response(state: u8, info: Option<Vec<u8>>) -> InetResponse {
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
}
