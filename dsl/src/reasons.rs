//! Drop and reset reasons by name: `reason == NETFILTER_DROP`.
//!
//! The kernel's `enum skb_drop_reason` and `enum sk_rst_reason` change
//! between versions (values are renumbered as reasons are added), so a
//! name is never turned into a number here: the checker accepts a name it
//! knows, the plan carries it as a binding of the filter instruction
//! ([`crate::plan::EnumBind`]), and the runtime looks its value up in the
//! running kernel's BTF before anything is loaded. A name this kernel
//! lacks is a located error then, not a guess.
//!
//! The tables are the names of Linux 6.18 (`SKB_DROP_REASON_` and
//! `SK_RST_REASON_` left off); a runtime test checks they hold every name
//! of the kernel it runs on. A reason newer than the table can still be
//! compared by its number.
use crate::plan::Unit;

/// `enum skb_drop_reason`, without the `SKB_DROP_REASON_` prefix.
pub const DROP_REASONS: &[&str] = &[
    "NOT_SPECIFIED",
    "NO_SOCKET",
    "SOCKET_CLOSE",
    "SOCKET_FILTER",
    "SOCKET_RCVBUFF",
    "UNIX_DISCONNECT",
    "UNIX_SKIP_OOB",
    "PKT_TOO_SMALL",
    "TCP_CSUM",
    "UDP_CSUM",
    "NETFILTER_DROP",
    "OTHERHOST",
    "IP_CSUM",
    "IP_INHDR",
    "IP_RPFILTER",
    "UNICAST_IN_L2_MULTICAST",
    "XFRM_POLICY",
    "IP_NOPROTO",
    "PROTO_MEM",
    "TCP_AUTH_HDR",
    "TCP_MD5NOTFOUND",
    "TCP_MD5UNEXPECTED",
    "TCP_MD5FAILURE",
    "TCP_AONOTFOUND",
    "TCP_AOUNEXPECTED",
    "TCP_AOKEYNOTFOUND",
    "TCP_AOFAILURE",
    "SOCKET_BACKLOG",
    "TCP_FLAGS",
    "TCP_ABORT_ON_DATA",
    "TCP_ZEROWINDOW",
    "TCP_OLD_DATA",
    "TCP_OVERWINDOW",
    "TCP_OFOMERGE",
    "TCP_RFC7323_PAWS",
    "TCP_RFC7323_PAWS_ACK",
    "TCP_RFC7323_TW_PAWS",
    "TCP_RFC7323_TSECR",
    "TCP_LISTEN_OVERFLOW",
    "TCP_OLD_SEQUENCE",
    "TCP_INVALID_SEQUENCE",
    "TCP_INVALID_END_SEQUENCE",
    "TCP_INVALID_ACK_SEQUENCE",
    "TCP_RESET",
    "TCP_INVALID_SYN",
    "TCP_CLOSE",
    "TCP_FASTOPEN",
    "TCP_OLD_ACK",
    "TCP_TOO_OLD_ACK",
    "TCP_ACK_UNSENT_DATA",
    "TCP_OFO_QUEUE_PRUNE",
    "TCP_OFO_DROP",
    "IP_OUTNOROUTES",
    "BPF_CGROUP_EGRESS",
    "IPV6DISABLED",
    "NEIGH_CREATEFAIL",
    "NEIGH_FAILED",
    "NEIGH_QUEUEFULL",
    "NEIGH_DEAD",
    "NEIGH_HH_FILLFAIL",
    "TC_EGRESS",
    "SECURITY_HOOK",
    "QDISC_DROP",
    "QDISC_OVERLIMIT",
    "QDISC_CONGESTED",
    "CAKE_FLOOD",
    "FQ_BAND_LIMIT",
    "FQ_HORIZON_LIMIT",
    "FQ_FLOW_LIMIT",
    "CPU_BACKLOG",
    "XDP",
    "TC_INGRESS",
    "UNHANDLED_PROTO",
    "SKB_CSUM",
    "SKB_GSO_SEG",
    "SKB_UCOPY_FAULT",
    "DEV_HDR",
    "DEV_READY",
    "FULL_RING",
    "NOMEM",
    "HDR_TRUNC",
    "TAP_FILTER",
    "TAP_TXFILTER",
    "ICMP_CSUM",
    "INVALID_PROTO",
    "IP_INADDRERRORS",
    "IP_INNOROUTES",
    "IP_LOCAL_SOURCE",
    "IP_INVALID_SOURCE",
    "IP_LOCALNET",
    "IP_INVALID_DEST",
    "PKT_TOO_BIG",
    "DUP_FRAG",
    "FRAG_REASM_TIMEOUT",
    "FRAG_TOO_FAR",
    "TCP_MINTTL",
    "IPV6_BAD_EXTHDR",
    "IPV6_TOO_MANY_EXTHDRS",
    "IPV6_NDISC_FRAG",
    "IPV6_NDISC_HOP_LIMIT",
    "IPV6_NDISC_BAD_CODE",
    "IPV6_NDISC_BAD_OPTIONS",
    "IPV6_NDISC_NS_OTHERHOST",
    "QUEUE_PURGE",
    "TC_COOKIE_ERROR",
    "PACKET_SOCK_ERROR",
    "TC_CHAIN_NOTFOUND",
    "TC_RECLASSIFY_LOOP",
    "VXLAN_INVALID_HDR",
    "VXLAN_VNI_NOT_FOUND",
    "MAC_INVALID_SOURCE",
    "VXLAN_ENTRY_EXISTS",
    "NO_TX_TARGET",
    "IP_TUNNEL_ECN",
    "TUNNEL_TXINFO",
    "LOCAL_MAC",
    "ARP_PVLAN_DISABLE",
    "MAC_IEEE_MAC_CONTROL",
    "BRIDGE_INGRESS_STP_STATE",
    "CAN_RX_INVALID_FRAME",
    "CANFD_RX_INVALID_FRAME",
    "CANXL_RX_INVALID_FRAME",
    "PFMEMALLOC",
    "DUALPI2_STEP_DROP",
    "PSP_INPUT",
    "PSP_OUTPUT",
    "RECURSION_LIMIT",
    "SKB_RX_HEADROOM",
];

/// `enum sk_rst_reason`, without the `SK_RST_REASON_` prefix.
pub const RST_REASONS: &[&str] = &[
    "NOT_SPECIFIED",
    "NO_SOCKET",
    "TCP_INVALID_ACK_SEQUENCE",
    "TCP_RFC7323_PAWS",
    "TCP_TOO_OLD_ACK",
    "TCP_ACK_UNSENT_DATA",
    "TCP_FLAGS",
    "TCP_OLD_ACK",
    "TCP_ABORT_ON_DATA",
    "TCP_TIMEWAIT_SOCKET",
    "INVALID_SYN",
    "TCP_ABORT_ON_CLOSE",
    "TCP_ABORT_ON_LINGER",
    "TCP_ABORT_ON_MEMORY",
    "TCP_STATE",
    "TCP_KEEPALIVE_TIMEOUT",
    "TCP_DISCONNECT_WITH_DATA",
    "MPTCP_RST_EUNSPEC",
    "MPTCP_RST_EMPTCP",
    "MPTCP_RST_ERESOURCE",
    "MPTCP_RST_EPROHIBIT",
    "MPTCP_RST_EWQ2BIG",
    "MPTCP_RST_EBADPERF",
    "MPTCP_RST_EMIDDLEBOX",
    "ERROR",
];

/// The kernel enum behind a reason unit: its BTF name, the prefix of its
/// constants, and the names tcpq knows.
pub fn enum_of(unit: Unit) -> Option<(&'static str, &'static str, &'static [&'static str])> {
    match unit {
        Unit::DropReason => Some(("skb_drop_reason", "SKB_DROP_REASON_", DROP_REASONS)),
        Unit::RstReason => Some(("sk_rst_reason", "SK_RST_REASON_", RST_REASONS)),
        _ => None,
    }
}

/// `name` as a known constant of `unit`'s enum, written with or without
/// the prefix: the short name.
pub fn known(unit: Unit, name: &str) -> Option<&'static str> {
    let (_, prefix, names) = enum_of(unit)?;
    let short = name.strip_prefix(prefix).unwrap_or(name);
    names.iter().copied().find(|n| *n == short)
}
