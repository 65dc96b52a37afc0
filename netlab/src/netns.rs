//! Two network namespaces joined by a veth pair: a private "client" and
//! "server" host. Nothing leaves them: both ends of the veth are created
//! inside their namespaces (the names never exist in the root namespace),
//! and the addresses exist only there.
//!
//! Everything is removed on `Drop`: the namespaces (with them their veth,
//! addresses, sysctls and nft tables) after killing every process still in
//! them. [`Pair::keep`] leaves them in place on purpose, for the lab.
use crate::{Error, Result};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::{Command, Output, Stdio};

/// What to build: names, interface names, and the /24 (and /64) the pair's
/// addresses come from: `10.213.N.1` (client) and `.2` (server), with
/// `fd00:213:N::1` and `::2` when `v6` is set.
#[derive(Debug, Clone)]
pub struct PairSpec {
    pub cli: String,
    pub srv: String,
    pub cli_if: &'static str,
    pub srv_if: &'static str,
    pub n: u8,
    pub v6: bool,
}

/// A built pair; removed on Drop unless [`Pair::keep`] was called.
#[derive(Debug)]
pub struct Pair {
    /// Client namespace name.
    pub cli: String,
    /// Server namespace name.
    pub srv: String,
    /// The N in the pair's addresses.
    pub n: u8,
    cli_if: &'static str,
    srv_if: &'static str,
    kept: bool,
}

impl Pair {
    /// Create both namespaces, the veth pair, the addresses (IPv6 with
    /// `nodad`, usable at once), and bring every link and `lo` up. On
    /// failure, whatever was created is removed before the error returns.
    pub fn create(spec: &PairSpec) -> Result<Pair> {
        let pair = Pair {
            cli: spec.cli.clone(),
            srv: spec.srv.clone(),
            n: spec.n,
            cli_if: spec.cli_if,
            srv_if: spec.srv_if,
            kept: false,
        };
        // From here on, Drop cleans up whatever exists if we return early.
        run("ip", &["netns", "add", &pair.cli])?;
        run("ip", &["netns", "add", &pair.srv])?;
        run(
            "ip",
            &[
                "link",
                "add",
                "name",
                pair.cli_if,
                "netns",
                &pair.cli,
                "type",
                "veth",
                "peer",
                "name",
                pair.srv_if,
                "netns",
                &pair.srv,
            ],
        )?;
        let n = spec.n;
        for (ns, ifname, host) in [(&pair.cli, pair.cli_if, 1u8), (&pair.srv, pair.srv_if, 2)] {
            exec_ok(ns, &["ip", "link", "set", "dev", "lo", "up"])?;
            exec_ok(
                ns,
                &[
                    "ip",
                    "addr",
                    "add",
                    &format!("10.213.{n}.{host}/24"),
                    "dev",
                    ifname,
                ],
            )?;
            if spec.v6 {
                let v6 = format!("fd00:213:{n:x}::{host}/64");
                exec_ok(
                    ns,
                    &["ip", "-6", "addr", "add", &v6, "dev", ifname, "nodad"],
                )?;
            }
            exec_ok(ns, &["ip", "link", "set", "dev", ifname, "up"])?;
        }
        Ok(pair)
    }

    /// Leave the namespaces in place when this value goes (the lab's
    /// outlive the `tcpq lab start` that built them; `remove` or
    /// [`delete_namespace`] removes them later).
    pub fn keep(mut self) {
        self.kept = true;
    }

    pub fn cli_if(&self) -> &'static str {
        self.cli_if
    }
    pub fn srv_if(&self) -> &'static str {
        self.srv_if
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
            self.cli_if
        } else {
            self.srv_if
        }
    }

    /// `sysctl -w key=value` inside `ns` (per-namespace sysctls such as
    /// `net.ipv4.tcp_window_scaling`), verified by reading it back.
    pub fn sysctl(&self, ns: &str, key: &str, value: &str) -> Result<()> {
        sysctl(ns, key, value)
    }

    /// Limit GSO on the veth end inside `ns` to `segs` MSS per skb. TCP
    /// sizes its skbs from it: with 1 every packet is one segment, with a
    /// small N a transfer has many more (smaller) packets, which makes
    /// random loss hit often enough in a short run. Default is 65535.
    pub fn set_gso_max_segs(&self, ns: &str, segs: u32) -> Result<()> {
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
        )
        .map(drop)
    }

    /// Wire loss: `percent`% of the non-SYN TCP packets that `sender` sends
    /// to its peer vanish in transit (nft `table inet TABLE`, `numgen
    /// random mod 100 < percent drop`). SYNs are exempt so a lost SYN
    /// cannot stall a run for the 1 s SYN retransmit timer.
    ///
    /// The rule sits in the *receiving* namespace's prerouting hook, not in
    /// the sender's output hook, on purpose: a drop in the sender's own
    /// output path is reported back to TCP as a local send error (-EPERM /
    /// NET_XMIT_DROP); TCP then re-sends later and counts far fewer
    /// retransmissions than drops (`output_hook_drops_are_not_wire_loss` in
    /// tests/kernel/harness.rs measures it). A drop on the receiving side
    /// is invisible to the sender, exactly like loss on a wire. veth
    /// forwards GSO super-packets whole, so one drop can lose several MSS.
    pub fn add_loss(&self, sender: &str, percent: u32, table: &str) -> Result<Loss> {
        assert!(percent <= 100);
        let receiver = self.peer_of(sender).to_string();
        let iface = self.if_of(&receiver);
        let rules = format!(
            "table inet {table} {{ chain prerouting {{ type filter hook prerouting priority -300; \
             policy accept; iifname \"{iface}\" meta l4proto tcp tcp flags & syn == 0 \
             {}counter drop; }}; }}",
            share(percent)
        );
        exec_ok(&receiver, &["nft", &rules])?;
        Ok(Loss {
            ns: receiver,
            table: table.to_string(),
            kept: false,
        })
    }

    /// Drop `percent`% of the non-SYN TCP packets in `ns`'s own output hook
    /// (nft `table inet TABLE`). Not loss as TCP sees it: the sender gets
    /// -EPERM back and mostly re-sends without counting a retransmission.
    /// A dropped *retransmission* is counted all the same (TcpRetransSegs,
    /// and TCPRetransFail).
    pub fn add_output_drop(&self, ns: &str, percent: u32, table: &str) -> Result<Loss> {
        assert!(percent <= 100);
        let _ = self.peer_of(ns);
        let rules = format!(
            "table inet {table} {{ chain output {{ type filter hook output priority 0; \
             policy accept; meta l4proto tcp tcp flags & syn == 0 {}counter drop; }}; }}",
            share(percent)
        );
        exec_ok(ns, &["nft", &rules])?;
        Ok(Loss {
            ns: ns.to_string(),
            table: table.to_string(),
            kept: false,
        })
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        if !self.kept {
            delete_namespace(&self.cli);
            delete_namespace(&self.srv);
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

/// An nft table installed by [`Pair::add_loss`] or
/// [`Pair::add_output_drop`]; deleted on Drop unless kept.
#[derive(Debug)]
pub struct Loss {
    /// The namespace holding the table.
    pub ns: String,
    pub table: String,
    kept: bool,
}

impl Loss {
    /// A table installed some other way in `ns`: deleted on Drop like one
    /// of ours.
    pub fn adopt(ns: &str, table: &str) -> Loss {
        Loss {
            ns: ns.to_string(),
            table: table.to_string(),
            kept: false,
        }
    }

    /// How many packets the rule dropped so far (its counter).
    pub fn dropped(&self) -> Result<u64> {
        let out = exec_ok(&self.ns, &["nft", "list", "table", "inet", &self.table])?;
        Ok(out
            .split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Leave the table in place (it goes with its namespace).
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Loss {
    fn drop(&mut self) {
        if !self.kept {
            let _ = exec(&self.ns, &["nft", "delete", "table", "inet", &self.table]);
        }
    }
}

fn describe(prog: &str, args: &[&str]) -> String {
    format!("{prog} {}", args.join(" "))
}

/// Run `prog args` in this namespace; its stdout, or an error quoting its
/// stderr.
pub fn run(prog: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            cmd: describe(prog, args),
            source,
        })?;
    if !out.status.success() {
        return Err(Error::Failed {
            cmd: describe(prog, args),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Run `cmd` inside namespace `ns` (`ip netns exec`), whatever its exit
/// status: the caller inspects the `Output`.
pub fn exec(ns: &str, cmd: &[&str]) -> Result<Output> {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(cmd)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            cmd: format!("ip netns exec {ns} {}", cmd.join(" ")),
            source,
        })
}

/// Like [`exec`], and an error (with its stdout and stderr) when it fails.
pub fn exec_ok(ns: &str, cmd: &[&str]) -> Result<String> {
    let out = exec(ns, cmd)?;
    if !out.status.success() {
        return Err(Error::Failed {
            cmd: format!("ip netns exec {ns} {}", cmd.join(" ")),
            status: out.status,
            stderr: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `sysctl -w key=value` inside `ns`, verified by reading it back.
pub fn sysctl(ns: &str, key: &str, value: &str) -> Result<()> {
    exec_ok(ns, &["sysctl", "-q", "-w", &format!("{key}={value}")])?;
    let got = exec_ok(ns, &["sysctl", "-n", key])?;
    if got.trim() != value {
        return Err(Error::Bound(format!(
            "sysctl {key} in {ns} is {}, not {value}",
            got.trim()
        )));
    }
    Ok(())
}

/// Names from `ip netns list` (first word of each line).
pub fn list_namespaces() -> Vec<String> {
    run("ip", &["netns", "list"])
        .map(|o| {
            o.lines()
                .filter_map(|l| l.split_whitespace().next().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Kill every process still inside `ns` (a traffic generator, tcpdump),
/// then delete it; its veth, addresses and nft tables go with it.
/// Nothing happens when it does not exist.
pub fn delete_namespace(ns: &str) {
    if !list_namespaces().iter().any(|n| n == ns) {
        return;
    }
    if let Ok(pids) = run("ip", &["netns", "pids", ns]) {
        for pid in pids
            .split_whitespace()
            .filter_map(|p| p.parse::<libc::pid_t>().ok())
        {
            // SAFETY: kill(2); every process inside a namespace we made is
            // ours to end.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    let _ = run("ip", &["netns", "del", ns]);
}

/// The inode of a named network namespace (tcpq's `netns` field).
pub fn inode(ns: &str) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(format!("/run/netns/{ns}"))?.ino())
}

/// The name of the `ip netns` namespace this process is in, if any: the
/// entry of `/run/netns` with the same inode as `/proc/self/ns/net`.
pub fn current_netns() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let me = std::fs::metadata("/proc/self/ns/net").ok()?;
    for e in std::fs::read_dir("/run/netns").ok()?.flatten() {
        if let Ok(m) = std::fs::metadata(e.path()) {
            if m.ino() == me.ino() && m.dev() == me.dev() {
                return e.file_name().to_str().map(str::to_owned);
            }
        }
    }
    None
}
