//! The kernel tests' namespace pairs: `tcpq-netlab`'s [`Pair`] named for a
//! test (`tcpq-t-<pid>-<n>-{cli,srv}`, veth `tq-cli`/`tq-srv`, IPv4 and
//! IPv6 addresses), with helpers that panic instead of returning errors.
//! Both namespaces (and every nft table in them) are deleted on Drop, so a
//! failing test cleans up; [`Loss`] tables go on Drop too.
use super::{next_id, PREFIX};
use std::ops::Deref;
use tcpq_netlab::netns::{self as lab, Pair, PairSpec};

pub use tcpq_netlab::netns::{delete_namespace, list_namespaces};

pub struct NetnsPair(Pair);

impl Deref for NetnsPair {
    type Target = Pair;
    fn deref(&self) -> &Pair {
        &self.0
    }
}

impl NetnsPair {
    /// Create both namespaces, the veth pair, addresses 10.213.N.1/24 and
    /// fd00:213:N::1/64 (client), .2 / ::2 (server), every link up. Panics
    /// (after cleaning up) on any failure.
    pub fn new() -> NetnsPair {
        let id = next_id();
        let pid = std::process::id();
        // N only has to be unique among pairs alive at once in this process
        // (addresses live inside private namespaces anyway).
        let n = ((pid as usize + id as usize) % 250 + 1) as u8;
        let base = format!("{PREFIX}{pid}-{id}");
        let spec = PairSpec {
            cli: format!("{base}-cli"),
            srv: format!("{base}-srv"),
            cli_if: "tq-cli",
            srv_if: "tq-srv",
            n,
            v6: true,
        };
        NetnsPair(Pair::create(&spec).unwrap_or_else(|e| panic!("namespace pair {base}: {e}")))
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

    /// See [`Pair::set_gso_max_segs`].
    pub fn set_gso_max_segs(&self, ns: &str, segs: u32) {
        self.0
            .set_gso_max_segs(ns, segs)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Wire loss (nft `table inet tcpq_loss` in the receiving namespace):
    /// see [`Pair::add_loss`].
    pub fn add_loss(&self, sender: &str, percent: u32) -> Loss {
        Loss(
            self.0
                .add_loss(sender, percent, Loss::TABLE)
                .unwrap_or_else(|e| panic!("{e}")),
        )
    }

    /// Drops in `ns`'s own output hook (nft `table inet tcpq_outdrop`):
    /// see [`Pair::add_output_drop`]. (0.04-0.73 retransmissions per drop,
    /// measured; a dropped retransmission is reported by the
    /// `tcp_retransmit_skb` tracepoint with err -EPERM, 6.17+.)
    pub fn add_output_drop(&self, ns: &str, percent: u32) -> Loss {
        Loss(
            self.0
                .add_output_drop(ns, percent, Loss::OUTPUT_TABLE)
                .unwrap_or_else(|e| panic!("{e}")),
        )
    }
}

impl Default for NetnsPair {
    fn default() -> Self {
        Self::new()
    }
}

/// An nft table in a test's namespace, deleted on Drop.
pub struct Loss(lab::Loss);

impl Deref for Loss {
    type Target = lab::Loss;
    fn deref(&self) -> &lab::Loss {
        &self.0
    }
}

impl Loss {
    pub const TABLE: &'static str = "tcpq_loss";
    pub const OUTPUT_TABLE: &'static str = "tcpq_outdrop";

    /// A table the test installed itself in `ns`.
    pub fn adopt(ns: &str, table: &str) -> Loss {
        Loss(lab::Loss::adopt(ns, table))
    }

    /// How many packets the rule dropped so far.
    pub fn dropped(&self) -> u64 {
        self.0.dropped().unwrap_or_else(|e| panic!("{e}"))
    }
}

/// The inode of a named network namespace: tcpq's `netns` field.
pub fn inode(ns: &str) -> u64 {
    lab::inode(ns).unwrap_or_else(|e| panic!("stat /run/netns/{ns}: {e}"))
}
