//! Two network namespaces joined by a veth pair: a private "client" and
//! "server" host per test. Nothing leaves them: the veth has no peer in the
//! root namespace, and both namespaces are deleted on Drop.

use super::{exec, exec_ok, next_id, run_ok, PREFIX};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::Command;

pub struct NetnsPair {
    /// Client namespace name, `tcpq-t-<pid>-<n>-cli`.
    pub cli: String,
    /// Server namespace name, `tcpq-t-<pid>-<n>-srv`.
    pub srv: String,
    /// The per-pair number N used in the addresses (10.213.N.x, fd00:213:N::x).
    pub n: u8,
}

impl NetnsPair {
    /// Create both namespaces, the veth pair (`tq-cli` in the client
    /// namespace, `tq-srv` in the server one), addresses 10.213.N.1/24 and
    /// fd00:213:N::1/64 (client), .2 / ::2 (server) with `nodad`, and bring
    /// every link (and `lo`) up. Panics (after cleaning up) on any failure.
    pub fn new() -> NetnsPair {
        let id = next_id();
        let pid = std::process::id();
        // N only has to be unique among pairs alive at once in this process
        // (addresses live inside private namespaces anyway).
        let n = ((pid as usize + id as usize) % 250 + 1) as u8;
        let base = format!("{PREFIX}{pid}-{id}");
        let pair = NetnsPair {
            cli: format!("{base}-cli"),
            srv: format!("{base}-srv"),
            n,
        };
        // From here on, Drop cleans up whatever exists if we panic.
        run_ok("ip", &["netns", "add", &pair.cli]);
        run_ok("ip", &["netns", "add", &pair.srv]);
        // Create both ends directly inside their namespaces: the names never
        // exist in the root namespace, so they cannot collide there.
        run_ok(
            "ip",
            &[
                "link",
                "add",
                "name",
                pair.cli_if(),
                "netns",
                &pair.cli,
                "type",
                "veth",
                "peer",
                "name",
                pair.srv_if(),
                "netns",
                &pair.srv,
            ],
        );
        for (ns, ifname, host) in [
            (&pair.cli, pair.cli_if(), 1u8),
            (&pair.srv, pair.srv_if(), 2),
        ] {
            let v4 = format!("10.213.{n}.{host}/24");
            let v6 = format!("fd00:213:{n:x}::{host}/64");
            exec_ok(ns, &["ip", "link", "set", "lo", "up"]);
            exec_ok(ns, &["ip", "addr", "add", &v4, "dev", ifname]);
            exec_ok(
                ns,
                &["ip", "-6", "addr", "add", &v6, "dev", ifname, "nodad"],
            );
            exec_ok(ns, &["ip", "link", "set", ifname, "up"]);
        }
        pair
    }

    pub fn cli_if(&self) -> &'static str {
        "tq-cli"
    }
    pub fn srv_if(&self) -> &'static str {
        "tq-srv"
    }
    pub fn cli_v4(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.n, 1)
    }
    pub fn srv_v4(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.n, 2)
    }
    pub fn cli_v6(&self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd00, 0x213, self.n as u16, 0, 0, 0, 0, 1)
    }
    pub fn srv_v6(&self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd00, 0x213, self.n as u16, 0, 0, 0, 0, 2)
    }

    /// A TCP port for this pair's server that no other pair alive in this
    /// process uses: tcpq filters are global (all namespaces), so parallel
    /// tests must not share ports.
    pub fn port(&self) -> u16 {
        let id: u32 = self
            .srv
            .trim_end_matches("-srv")
            .rsplit('-')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        // Below Linux's ephemeral range (32768-60999 by default): a port
        // in it can be any loopback client's, which a global `sport == P`
        // filter then counts too.
        20000 + ((std::process::id().wrapping_mul(31).wrapping_add(id * 97)) % 12000) as u16
    }

    /// Limit GSO on the veth end inside `ns` to `segs` MSS per skb
    /// (`ip link set DEV gso_max_segs N`). TCP sizes its skbs from it, so
    /// with 1 every packet tcpdump sees is one segment; with a small N a
    /// transfer has many more (smaller) packets, which makes random loss
    /// statistically reliable in a short test. Default is 65535 (64 KiB
    /// super-packets).
    pub fn set_gso_max_segs(&self, ns: &str, segs: u32) {
        let iface = self.if_of(ns);
        exec_ok(
            ns,
            &[
                "ip",
                "link",
                "set",
                "dev",
                iface,
                "gso_max_segs",
                &segs.to_string(),
            ],
        );
    }

    /// The other namespace of the pair.
    pub fn peer_of(&self, ns: &str) -> &str {
        if ns == self.cli {
            &self.srv
        } else if ns == self.srv {
            &self.cli
        } else {
            panic!("{ns} is not one of this pair's namespaces")
        }
    }

    /// The veth end inside `ns`.
    pub fn if_of(&self, ns: &str) -> &'static str {
        if ns == self.cli {
            self.cli_if()
        } else {
            self.srv_if()
        }
    }

    /// Wire loss: `percent`% of the TCP packets that namespace `sender`
    /// sends to its peer vanish in transit (nft `table inet tcpq_loss`,
    /// `numgen random mod 100 < percent drop`). SYNs are exempt so a lost
    /// SYN cannot stall a test for the 1 s SYN retransmit timer.
    ///
    /// The rule sits in the *receiving* namespace's prerouting hook, not in
    /// the sender's output hook, on purpose: a drop in the sender's own
    /// output path (nft output/egress, tc egress) is reported back to TCP
    /// as a local send error (-EPERM / NET_XMIT_DROP); TCP then re-sends
    /// the skb later and counts far fewer retransmissions than drops (see
    /// `output_hook_drops_are_not_wire_loss` in tests/kernel/harness.rs for the
    /// measured rates). A drop on the receiving side is invisible to the
    /// sender, exactly like loss on a wire. veth forwards GSO super-packets
    /// whole, so one drop can lose several MSS at once. Deleted on Drop of
    /// the guard.
    pub fn add_loss(&self, sender: &str, percent: u32) -> Loss {
        assert!(percent <= 100);
        let receiver = self.peer_of(sender).to_string();
        let iface = self.if_of(&receiver);
        let rules = format!(
            "table inet {t} {{ chain prerouting {{ type filter hook prerouting priority -300; policy accept; \
             iifname \"{iface}\" meta l4proto tcp tcp flags & syn == 0 \
             {}counter drop; }}; }}",
            share(percent),
            t = Loss::TABLE
        );
        exec_ok(&receiver, &["nft", &rules]);
        Loss {
            ns: receiver,
            table: Loss::TABLE,
        }
    }

    /// Drop `percent`% of the non-SYN TCP packets in `ns`'s own output hook
    /// (nft `table inet tcpq_outdrop`). Not loss as TCP sees it: the sender
    /// gets -EPERM back and mostly re-sends without counting a retransmission
    /// (0.04-0.73 retransmissions per drop, measured). A dropped
    /// *retransmission* is counted all the same (TcpRetransSegs, and
    /// TCPRetransFail), and the `tcp_retransmit_skb` tracepoint reports it
    /// with err -EPERM (6.17+).
    pub fn add_output_drop(&self, ns: &str, percent: u32) -> Loss {
        assert!(percent <= 100);
        let _ = self.peer_of(ns);
        let rules = format!(
            "table inet {t} {{ chain output {{ type filter hook output priority 0; policy accept; \
             meta l4proto tcp tcp flags & syn == 0 {}counter drop; }}; }}",
            share(percent),
            t = Loss::OUTPUT_TABLE
        );
        exec_ok(ns, &["nft", &rules]);
        Loss {
            ns: ns.to_string(),
            table: Loss::OUTPUT_TABLE,
        }
    }
}

/// The nft condition that picks `percent`% of packets (none for 100: nft
/// refuses `numgen random mod 100 < 100`, whose value is out of range).
fn share(percent: u32) -> String {
    if percent >= 100 {
        String::new()
    } else {
        format!("numgen random mod 100 < {percent} ")
    }
}

impl Default for NetnsPair {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        for ns in [&self.cli, &self.srv] {
            delete_namespace(ns);
        }
    }
}

/// Guard for the loss table installed by `NetnsPair::add_loss`.
pub struct Loss {
    /// The namespace holding the nft table.
    pub ns: String,
    pub table: &'static str,
}

impl Loss {
    pub const TABLE: &'static str = "tcpq_loss";
    pub const OUTPUT_TABLE: &'static str = "tcpq_outdrop";

    /// How many packets the rule dropped so far.
    pub fn dropped(&self) -> u64 {
        let out = exec_ok(&self.ns, &["nft", "list", "table", "inet", self.table]);
        out.split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Loss {
    fn drop(&mut self) {
        let _ = exec(&self.ns, &["nft", "delete", "table", "inet", self.table]);
    }
}

/// Names from `ip netns list` (first word of each line).
pub fn list_namespaces() -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output();
    match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Kill every process still inside `ns` (tcpdump, traffic generators a
/// panicking test did not reap), then delete it. The veth goes with it.
pub fn delete_namespace(ns: &str) {
    if !list_namespaces().iter().any(|n| n == ns) {
        return;
    }
    if let Ok(o) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
            if let Ok(pid) = pid.parse::<u32>() {
                super::kill(pid, libc::SIGKILL);
            }
        }
    }
    let _ = Command::new("ip").args(["netns", "del", ns]).output();
}

/// The inode of a named network namespace: tcpq's `netns` field.
pub fn inode(ns: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/run/netns/{ns}"))
        .unwrap_or_else(|e| panic!("stat /run/netns/{ns}: {e}"))
        .ino()
}
