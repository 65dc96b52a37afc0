//! The lab's scenarios as data: what to build, what traffic to run, what to
//! look at, and the fix. `docs/lab/<name>.md` is the long form of each.
use std::time::Duration;

/// One lab scenario.
#[derive(Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub summary: &'static str,
    /// The server's port (the one tcpq programs filter on).
    pub port: u16,
    /// What makes this scenario misbehave, applied after the namespaces
    /// exist and before any traffic.
    pub setup: &'static [Setup],
    pub traffic: TrafficDef,
    /// Programs to run from the host while the traffic runs: (question,
    /// command). Each is also on the scenario's page and run by the tests.
    pub observe: &'static [(&'static str, &'static str)],
    /// The fix, as commands (a `tcpq lab rerun` when the traffic must start
    /// afresh to pick it up); the observe programs then prove it.
    pub fix: &'static [&'static str],
}

/// A change to one side of the lab ("cli" or "srv").
#[derive(Debug)]
pub enum Setup {
    /// A per-namespace sysctl.
    Sysctl {
        side: &'static str,
        key: &'static str,
        value: &'static str,
    },
    /// Drop `percent`% of the client's non-SYN TCP packets as they arrive
    /// at the server (nft table `inet tcpq_lab` in the server namespace):
    /// loss the sender cannot see locally, like loss on a wire.
    WireLoss { percent: u32 },
    /// `gso_max_segs` of the veth end on `side`: smaller skbs, so random
    /// loss hits often enough to watch.
    GsoMaxSegs { side: &'static str, segs: u32 },
}

/// The server's behaviour and the client's.
#[derive(Debug)]
pub struct TrafficDef {
    pub backlog: i32,
    /// Accept one connection every `accept_every` and never read it.
    pub hold_accepted: bool,
    pub accept_every: Duration,
    pub read_size: usize,
    pub read_delay: Duration,
    pub idle_before_read: Duration,
    pub client: Traffic,
}

#[derive(Debug)]
pub enum Traffic {
    /// One connection, writing until the deadline; `pace` = (bytes, every).
    Stream { pace: Option<(u64, Duration)> },
    /// Fresh connections, one after the other, each sending `bytes`, with
    /// `idle` between them.
    Bursts { bytes: u64, idle: Duration },
    /// Every `every`: a connection to `closed_port` (refused with RST) and
    /// one to the server that the client aborts (RST instead of FIN).
    Resets { closed_port: u16, every: Duration },
    /// `first` connections at once, then `more` every `every` (at most 128).
    Crowd {
        first: u32,
        more: u32,
        every: Duration,
    },
}

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const SERVER_READS_FAST: TrafficDef = TrafficDef {
    backlog: 128,
    hold_accepted: false,
    accept_every: ms(0),
    read_size: 65536,
    read_delay: ms(0),
    idle_before_read: ms(0),
    client: Traffic::Stream { pace: None },
};

pub static SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "zero-window",
        summary: "the seed outage: window scaling off on the server, a slow reader, a fast writer",
        port: 8080,
        setup: &[Setup::Sysctl {
            side: "srv",
            key: "net.ipv4.tcp_window_scaling",
            value: "0",
        }],
        traffic: TrafficDef {
            read_size: 4096,
            read_delay: ms(10),
            idle_before_read: ms(1000),
            ..SERVER_READS_FAST
        },
        observe: &[
            (
                "Who tells its peer to stop sending?",
                "tcpq -e 'on tcp_select_window where win == 0 and sport == 8080 print pid, comm, task_comm, sport, dport, rcv_wnd, wscale_ok' --duration 3s",
            ),
            (
                "Was window scaling negotiated, and how large do windows get?",
                "tcpq -e 'on tcp_select_window where sport == 8080 count by comm, wscale_ok, rcv_wscale' --duration 3s",
            ),
        ],
        fix: &[
            "ip netns exec tcpq-lab-zero-window-srv sysctl -w net.ipv4.tcp_window_scaling=1",
            "tcpq lab rerun zero-window",
        ],
    },
    Scenario {
        name: "loss",
        summary: "retransmissions: 2% of the client's packets dropped on their way to the server",
        port: 8081,
        setup: &[
            Setup::WireLoss { percent: 2 },
            Setup::GsoMaxSegs {
                side: "cli",
                segs: 4,
            },
        ],
        traffic: TrafficDef {
            client: Traffic::Stream {
                pace: Some((65536, ms(20))),
            },
            ..SERVER_READS_FAST
        },
        observe: &[
            (
                "Who retransmits, to whom?",
                "tcpq -e 'on tcp_retransmit where dport == 8081 count by comm, daddr, dport' --duration 3s",
            ),
            (
                "How many segments does each retransmitted skb carry?",
                "tcpq -e 'on tcp_retransmit where dport == 8081 print pid, comm, state, segs' --duration 1s",
            ),
        ],
        fix: &[
            "ip netns exec tcpq-lab-loss-srv nft delete table inet tcpq_lab",
        ],
    },
    Scenario {
        name: "resets",
        summary: "RSTs: connections to a closed port, and connections the client aborts",
        port: 8082,
        setup: &[],
        traffic: TrafficDef {
            client: Traffic::Resets {
                closed_port: 8092,
                every: ms(250),
            },
            ..SERVER_READS_FAST
        },
        observe: &[(
            "Which segments carry RST, and whose socket sent them?",
            "tcpq -e 'on tcp_select_window where dport == 8082 and (tcp_flags == 4 or tcp_flags == 20) print pid, comm, task_comm, sport, dport, tcp_flags, state' --duration 2s",
        )],
        fix: &[],
    },
    Scenario {
        name: "slow-start",
        summary: "cwnd growth on fresh connections, from the initial window of 10 segments",
        port: 8083,
        setup: &[],
        traffic: TrafficDef {
            client: Traffic::Bursts {
                bytes: 4 << 20,
                idle: ms(1000),
            },
            ..SERVER_READS_FAST
        },
        observe: &[(
            "How does the congestion window of a fresh connection grow?",
            "tcpq -e 'on tcp_probe where dport == 8083 print sock_cookie, snd_cwnd, ssthresh, srtt, snd_wnd' --duration 3s",
        )],
        fix: &[
            "ip netns exec tcpq-lab-slow-start-cli ip route change 10.213.250.0/24 dev lab-cli initcwnd 40",
        ],
    },
    Scenario {
        name: "backlog",
        summary: "a full accept queue: net.core.somaxconn=4, a server that accepts one per second",
        port: 8084,
        setup: &[Setup::Sysctl {
            side: "srv",
            key: "net.core.somaxconn",
            value: "4",
        }],
        traffic: TrafficDef {
            backlog: 4096,
            hold_accepted: true,
            accept_every: ms(1000),
            client: Traffic::Crowd {
                first: 24,
                more: 2,
                every: ms(1000),
            },
            ..SERVER_READS_FAST
        },
        observe: &[(
            "Which connections retransmit, and in which state?",
            "tcpq -e 'on tcp_retransmit where dport == 8084 count by comm, state' --duration 3s",
        )],
        fix: &[
            "ip netns exec tcpq-lab-backlog-srv sysctl -w net.core.somaxconn=4096",
            "tcpq lab rerun backlog",
        ],
    },
];

pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

impl Scenario {
    /// `tcpq-lab-NAME-{cli,srv}`.
    pub fn netns(&self, side: &str) -> String {
        format!("tcpq-lab-{}-{side}", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_are_distinct_and_short() {
        let mut ports = std::collections::HashSet::new();
        for s in SCENARIOS {
            assert!(ports.insert(s.port), "{}: port used twice", s.name);
            // `ip netns` names are fine at any length, but keep them readable.
            assert!(s.netns("srv").len() < 32, "{}", s.name);
            assert!(!s.observe.is_empty(), "{}", s.name);
            for (_, cmd) in s.observe {
                assert!(cmd.starts_with("tcpq "), "{cmd}");
            }
        }
    }
}
