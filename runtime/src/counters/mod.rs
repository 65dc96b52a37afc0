//! The kernel's SNMP and netstat counters, read like `nstat` reads them.
//!
//! `/proc/net/snmp` and `/proc/net/netstat` hold header/value line pairs
//! (`Tcp: ... RetransSegs ...` then `Tcp: ... 12 ...`); `/proc/net/snmp6`
//! holds `Ip6InReceives 123` lines. Each counter is named as iproute2's
//! `nstat` names it (misc/nstat.c, `load_ugly_table`): the word before the
//! colon glued to the field (`TcpRetransSegs`, `TcpExtTCPToZeroWindowAdv`,
//! `IpExtInOctets`), snmp6's names as they are. Like nstat, the values that
//! are settings or gauges rather than counters (`TcpRtoMin`, `TcpMaxConn`,
//! `TcpCurrEstab`, `IpForwarding`, ...) are left out, so every name here
//! is one `nstat` prints and a delta always means "events in between".
//!
//! Counters are per network namespace: [`read_in`] reads them inside one
//! (on a thread of its own, `/proc/thread-self/net/...`). [`meaning`] says
//! what each TCP counter counts, from the kernel source.
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use crate::netns::{NetnsError, Pinned};

mod meaning;
pub use meaning::{meaning, Meaning, MEANINGS};

/// nstat's `useless_numbers`: settings and gauges, not event counters.
pub const NOT_COUNTERS: &[&str] = &[
    "IpForwarding",
    "IpDefaultTTL",
    "TcpRtoAlgorithm",
    "TcpRtoMin",
    "TcpRtoMax",
    "TcpMaxConn",
    "TcpCurrEstab",
];

/// The groups `tcpq counters` shows without names: the TCP ones.
pub const TCP_GROUPS: &[&str] = &["Tcp", "TcpExt"];

/// snmp6's prefixes, longest first (`UdpLite6` before `Udp6`).
const SNMP6_GROUPS: &[&str] = &["Icmp6", "UdpLite6", "Udp6", "Ip6"];

/// One counter's value at one reading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counter {
    /// As nstat prints it: `TcpExtTCPToZeroWindowAdv`.
    pub name: String,
    /// The word before the colon (`TcpExt`), or snmp6's prefix (`Ip6`).
    pub group: String,
    pub value: u64,
}

impl Counter {
    /// The name without its group: `TCPToZeroWindowAdv`.
    pub fn field(&self) -> &str {
        &self.name[self.group.len()..]
    }
}

/// Every counter of one namespace at one moment, in the kernel's order
/// (snmp, netstat, snmp6).
#[derive(Clone, Debug)]
pub struct Reading {
    pub counters: Vec<Counter>,
    /// When it was taken (wall clock, for stamps).
    pub time: SystemTime,
    /// When it was taken (monotonic, for the interval's length).
    pub instant: Instant,
}

impl Reading {
    pub fn get(&self, name: &str) -> Option<u64> {
        self.counters
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.value)
    }

    /// Every name, in order.
    pub fn names(&self) -> Vec<&str> {
        self.counters.iter().map(|c| c.name.as_str()).collect()
    }
}

/// Why counters could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CountersError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: line {line}: {why}")]
    Parse {
        path: PathBuf,
        line: usize,
        why: String,
    },
    #[error("cannot watch counters: {0}")]
    Runtime(#[source] io::Error),
}

/// Parse `/proc/net/snmp` or `/proc/net/netstat`: pairs of lines, a header
/// `Group: Name Name ...` and its values `Group: 1 2 ...`. `path` is for
/// errors only.
pub fn parse_table(text: &str, path: &str) -> Result<Vec<Counter>, CountersError> {
    let err = |line: usize, why: String| CountersError::Parse {
        path: PathBuf::from(path),
        line,
        why,
    };
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if !lines.len().is_multiple_of(2) {
        return Err(err(lines.len(), "a header line without its values".into()));
    }
    for (i, pair) in lines.chunks(2).enumerate() {
        let n = i * 2 + 1;
        let (hg, names) = pair[0]
            .split_once(':')
            .ok_or_else(|| err(n, format!("no `Group:` in {:?}", pair[0])))?;
        let (vg, values) = pair[1]
            .split_once(':')
            .ok_or_else(|| err(n + 1, format!("no `Group:` in {:?}", pair[1])))?;
        if hg != vg {
            return Err(err(
                n + 1,
                format!("values of `{vg}` follow the header of `{hg}`"),
            ));
        }
        let names: Vec<&str> = names.split_whitespace().collect();
        let values: Vec<&str> = values.split_whitespace().collect();
        if names.len() != values.len() {
            return Err(err(
                n + 1,
                format!(
                    "`{hg}` has {} names but {} values",
                    names.len(),
                    values.len()
                ),
            ));
        }
        for (field, value) in names.iter().zip(values) {
            let name = format!("{hg}{field}");
            if NOT_COUNTERS.contains(&name.as_str()) {
                continue;
            }
            let value = value
                .parse()
                .map_err(|_| err(n + 1, format!("`{name}` is `{value}`, not a counter")))?;
            out.push(Counter {
                name,
                group: hg.to_owned(),
                value,
            });
        }
    }
    Ok(out)
}

/// Parse `/proc/net/snmp6`: `Name value` lines.
pub fn parse_snmp6(text: &str, path: &str) -> Result<Vec<Counter>, CountersError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut it = line.split_whitespace();
        let (Some(name), Some(value)) = (it.next(), it.next()) else {
            continue;
        };
        let value = value.parse().map_err(|_| CountersError::Parse {
            path: PathBuf::from(path),
            line: i + 1,
            why: format!("`{name}` is `{value}`, not a counter"),
        })?;
        let group = SNMP6_GROUPS
            .iter()
            .find(|g| name.starts_with(*g) && name.len() > g.len())
            .copied()
            .unwrap_or("");
        out.push(Counter {
            name: name.to_owned(),
            group: group.to_owned(),
            value,
        });
    }
    Ok(out)
}

/// Read every counter of the namespace the calling *thread* is in
/// (`/proc/thread-self/net`). snmp6 is optional (no IPv6), like nstat.
pub fn read_here() -> Result<Reading, CountersError> {
    let read = |name: &str| -> Result<Option<String>, CountersError> {
        let path = format!("/proc/thread-self/net/{name}");
        match std::fs::read_to_string(&path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if name == "snmp6" && e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(CountersError::Read {
                path: path.into(),
                source,
            }),
        }
    };
    let time = SystemTime::now();
    let instant = Instant::now();
    let snmp = read("snmp")?.unwrap_or_default();
    let netstat = read("netstat")?.unwrap_or_default();
    let snmp6 = read("snmp6")?;
    let mut counters = parse_table(&snmp, "/proc/net/snmp")?;
    counters.extend(parse_table(&netstat, "/proc/net/netstat")?);
    if let Some(s) = snmp6 {
        counters.extend(parse_snmp6(&s, "/proc/net/snmp6")?);
    }
    Ok(Reading {
        counters,
        time,
        instant,
    })
}

/// Read every counter of `ns`, from inside it.
pub fn read_in(ns: &Pinned) -> Result<Reading, CountersError> {
    ns.run(read_here)?
}

/// What moved from `before` to `after`: every counter of `before`, in its
/// order, with the increase. A counter that went down (it cannot, unless
/// it wrapped) counts 0, as nstat does; one that appeared in between is
/// left out.
pub fn delta(before: &Reading, after: &Reading) -> Vec<(String, u64)> {
    before
        .counters
        .iter()
        .filter_map(|b| {
            let a = after.get(&b.name)?;
            Some((b.name.clone(), a.saturating_sub(b.value)))
        })
        .collect()
}

/// Why a NAME argument selects nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("no counter `{arg}` here{}", did_you_mean(.suggestion))]
    Unknown {
        arg: String,
        suggestion: Option<String>,
    },
    #[error("`{arg}` names several counters: {}; write one in full", .candidates.join(", "))]
    Ambiguous {
        arg: String,
        candidates: Vec<String>,
    },
    #[error("the pattern `{arg}` matches no counter here")]
    NoMatch { arg: String },
}

fn did_you_mean(s: &Option<String>) -> String {
    match s {
        Some(s) => format!("; did you mean `{s}`?"),
        None => String::new(),
    }
}

/// Which counters `args` name, among `all` (one reading's counters), in
/// `all`'s order, each once. No argument: the TCP groups (`Tcp`,
/// `TcpExt`). Each argument is one of:
/// - a name as nstat prints it, in any case (`TcpExtTCPToZeroWindowAdv`);
/// - a name without its group (`TCPToZeroWindowAdv`, `RetransSegs`), any
///   case; when several groups have it, the TCP groups win, and several
///   matches otherwise are an error that lists them;
/// - a glob with `*` and `?` (`'*Retrans*'`), matched without case against
///   the full name and against the name without its group.
pub fn select(args: &[String], all: &[Counter]) -> Result<Vec<String>, SelectError> {
    let mut chosen = vec![false; all.len()];
    if args.is_empty() {
        for (i, c) in all.iter().enumerate() {
            chosen[i] = TCP_GROUPS.contains(&c.group.as_str());
        }
    }
    for arg in args {
        for i in resolve(arg, all)? {
            chosen[i] = true;
        }
    }
    Ok(all
        .iter()
        .zip(chosen)
        .filter(|(_, c)| *c)
        .map(|(c, _)| c.name.clone())
        .collect())
}

/// The indexes in `all` that one argument names.
fn resolve(arg: &str, all: &[Counter]) -> Result<Vec<usize>, SelectError> {
    if arg.contains(['*', '?']) {
        let hits: Vec<usize> = all
            .iter()
            .enumerate()
            .filter(|(_, c)| glob(arg, &c.name) || glob(arg, c.field()))
            .map(|(i, _)| i)
            .collect();
        return if hits.is_empty() {
            Err(SelectError::NoMatch {
                arg: arg.to_owned(),
            })
        } else {
            Ok(hits)
        };
    }
    if let Some(i) = all.iter().position(|c| c.name == arg) {
        return Ok(vec![i]);
    }
    let exact: Vec<usize> = matching(all, |c| c.name.eq_ignore_ascii_case(arg));
    let bare_tcp = matching(all, |c| {
        TCP_GROUPS.contains(&c.group.as_str()) && c.field().eq_ignore_ascii_case(arg)
    });
    let bare = matching(all, |c| {
        !c.group.is_empty() && c.field().eq_ignore_ascii_case(arg)
    });
    for hits in [exact, bare_tcp, bare] {
        match hits.len() {
            0 => continue,
            1 => return Ok(hits),
            _ => {
                return Err(SelectError::Ambiguous {
                    arg: arg.to_owned(),
                    candidates: hits.iter().map(|&i| all[i].name.clone()).collect(),
                })
            }
        }
    }
    Err(SelectError::Unknown {
        arg: arg.to_owned(),
        suggestion: suggest(arg, all),
    })
}

fn matching(all: &[Counter], f: impl Fn(&Counter) -> bool) -> Vec<usize> {
    all.iter()
        .enumerate()
        .filter(|(_, c)| f(c))
        .map(|(i, _)| i)
        .collect()
}

/// The closest full name to `arg`, comparing with full names and with
/// names without their group (TCP groups first).
fn suggest(arg: &str, all: &[Counter]) -> Option<String> {
    use tcpq_dsl::diagnostic::suggest;
    let tcp = all
        .iter()
        .filter(|c| TCP_GROUPS.contains(&c.group.as_str()));
    if let Some(f) = suggest(arg, tcp.clone().map(Counter::field)) {
        return tcp.clone().find(|c| c.field() == f).map(|c| c.name.clone());
    }
    if let Some(n) = suggest(arg, all.iter().map(|c| c.name.as_str())) {
        return Some(n.to_owned());
    }
    let f = suggest(arg, all.iter().map(Counter::field))?;
    all.iter().find(|c| c.field() == f).map(|c| c.name.clone())
}

/// `*` any run, `?` one character; ASCII case ignored.
pub fn glob(pattern: &str, name: &str) -> bool {
    let p: Vec<u8> = pattern.bytes().map(|b| b.to_ascii_lowercase()).collect();
    let n: Vec<u8> = name.bytes().map(|b| b.to_ascii_lowercase()).collect();
    // Iterative matching with one backtrack point (the last `*`).
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// When to read: once more after `duration`, or every `every` (until
/// `duration`, if given, or a signal).
#[derive(Clone, Copy, Debug, Default)]
pub struct WatchOptions {
    pub every: Option<Duration>,
    pub duration: Option<Duration>,
}

/// One interval: the readings that open and close it, per namespace, in
/// the order the namespaces were given.
pub struct Interval<'a> {
    /// From 1.
    pub number: u64,
    pub before: &'a [Reading],
    pub after: &'a [Reading],
}

/// Why watching ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    Duration,
    Interrupt,
    Terminate,
    /// The consumer said stop (e.g. its output was closed).
    Consumer,
}

/// Read every namespace once, call `started` with those readings, then
/// read again at the end of each interval and hand both to `interval`
/// (which returns false to stop). Ctrl-C and SIGTERM end the current
/// interval early: it is still read and handed over. The signal handlers
/// are installed before the first reading.
pub fn watch(
    namespaces: &[Pinned],
    opts: WatchOptions,
    started: impl FnOnce(&[Reading]),
    mut interval: impl FnMut(Interval<'_>) -> bool,
) -> Result<Stop, CountersError> {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CountersError::Runtime)?;
    rt.block_on(async {
        let mut int = signal(SignalKind::interrupt()).map_err(CountersError::Runtime)?;
        let mut term = signal(SignalKind::terminate()).map_err(CountersError::Runtime)?;
        let read_all =
            || -> Result<Vec<Reading>, CountersError> { namespaces.iter().map(read_in).collect() };
        let mut before = read_all()?;
        started(&before);
        let start = tokio::time::Instant::now();
        let end = opts.duration.map(|d| start + d);
        let mut number = 0u64;
        loop {
            let tick = opts.every.map(|e| start + e * (number as u32 + 1));
            let target = match (tick, end) {
                (Some(t), Some(e)) => Some(t.min(e)),
                (t, e) => t.or(e),
            };
            let sleep = async {
                match target {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            let stop = tokio::select! {
                _ = sleep => (target == end).then_some(Stop::Duration),
                _ = int.recv() => Some(Stop::Interrupt),
                _ = term.recv() => Some(Stop::Terminate),
            };
            let after = read_all()?;
            number += 1;
            let go_on = interval(Interval {
                number,
                before: &before,
                after: &after,
            });
            before = after;
            if let Some(s) = stop {
                return Ok(s);
            }
            if !go_on {
                return Ok(Stop::Consumer);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNMP: &str = "Ip: Forwarding DefaultTTL InReceives\nIp: 2 64 14434\n\
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens RetransSegs InErrs CurrEstab InCsumErrors\n\
Tcp: 1 200 120000 -1 44 7 0 3 1\n\
Udp: InDatagrams InErrors InCsumErrors\nUdp: 76 0 2\n";
    const NETSTAT: &str = "TcpExt: SyncookiesSent TCPToZeroWindowAdv TCPTimeouts\n\
TcpExt: 0 12 5\nIpExt: InNoRoutes InOctets\nIpExt: 0 279510677\n";
    const SNMP6: &str = "Ip6InReceives                   \t17\nIcmp6InErrors 0\nUdpLite6InDatagrams 0\nUdp6InDatagrams 3\n";

    fn all() -> Vec<Counter> {
        let mut v = parse_table(SNMP, "snmp").unwrap();
        v.extend(parse_table(NETSTAT, "netstat").unwrap());
        v.extend(parse_snmp6(SNMP6, "snmp6").unwrap());
        v
    }

    #[test]
    fn names_are_nstats() {
        let names: Vec<String> = all().into_iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "IpInReceives",
                "TcpActiveOpens",
                "TcpRetransSegs",
                "TcpInErrs",
                "TcpInCsumErrors",
                "UdpInDatagrams",
                "UdpInErrors",
                "UdpInCsumErrors",
                "TcpExtSyncookiesSent",
                "TcpExtTCPToZeroWindowAdv",
                "TcpExtTCPTimeouts",
                "IpExtInNoRoutes",
                "IpExtInOctets",
                "Ip6InReceives",
                "Icmp6InErrors",
                "UdpLite6InDatagrams",
                "Udp6InDatagrams",
            ]
        );
        let a = all();
        assert_eq!(a[9].field(), "TCPToZeroWindowAdv");
        assert_eq!(a[15].group, "UdpLite6");
        assert_eq!(a[12].value, 279510677);
    }

    #[test]
    fn malformed_tables_are_errors_with_a_line() {
        let e = parse_table("Tcp: A B\nTcp: 1\n", "snmp").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = parse_table("Tcp: A\n", "snmp").unwrap_err();
        assert!(e.to_string().contains("without its values"), "{e}");
        let e = parse_table("Tcp: A\nUdp: 1\n", "snmp").unwrap_err();
        assert!(e.to_string().contains("follow the header"), "{e}");
        let e = parse_table("Tcp: A\nTcp: x\n", "snmp").unwrap_err();
        assert!(e.to_string().contains("`TcpA` is `x`"), "{e}");
    }

    fn sel(args: &[&str]) -> Result<Vec<String>, SelectError> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        select(&args, &all())
    }

    #[test]
    fn default_selection_is_tcp_and_tcpext() {
        assert_eq!(
            sel(&[]).unwrap(),
            [
                "TcpActiveOpens",
                "TcpRetransSegs",
                "TcpInErrs",
                "TcpInCsumErrors",
                "TcpExtSyncookiesSent",
                "TcpExtTCPToZeroWindowAdv",
                "TcpExtTCPTimeouts"
            ]
        );
    }

    #[test]
    fn names_resolve_exactly_without_case_and_without_group() {
        assert_eq!(sel(&["TcpRetransSegs"]).unwrap(), ["TcpRetransSegs"]);
        assert_eq!(sel(&["tcpretranssegs"]).unwrap(), ["TcpRetransSegs"]);
        assert_eq!(sel(&["RetransSegs"]).unwrap(), ["TcpRetransSegs"]);
        assert_eq!(
            sel(&["tcptozerowindowadv"]).unwrap(),
            ["TcpExtTCPToZeroWindowAdv"]
        );
        // Tcp wins over Udp for a name both have; others must be unique.
        assert_eq!(sel(&["InCsumErrors"]).unwrap(), ["TcpInCsumErrors"]);
        assert_eq!(sel(&["InOctets"]).unwrap(), ["IpExtInOctets"]);
        // Order is the kernel's, each once.
        assert_eq!(
            sel(&["TCPTimeouts", "RetransSegs", "TcpRetransSegs"]).unwrap(),
            ["TcpRetransSegs", "TcpExtTCPTimeouts"]
        );
        let e = sel(&["InDatagrams"]).unwrap_err();
        assert!(
            matches!(&e, SelectError::Ambiguous { candidates, .. } if candidates.len() == 3),
            "{e}"
        );
    }

    #[test]
    fn globs_match_full_and_bare_names() {
        assert_eq!(sel(&["*Retrans*"]).unwrap(), ["TcpRetransSegs"]);
        assert_eq!(
            sel(&["TCPT*"]).unwrap(),
            ["TcpExtTCPToZeroWindowAdv", "TcpExtTCPTimeouts"]
        );
        assert_eq!(sel(&["udp*"]).unwrap().len(), 5);
        assert!(matches!(
            sel(&["*Nothing*"]),
            Err(SelectError::NoMatch { .. })
        ));
        assert!(glob("a*b?c", "AxxbYc"));
        assert!(!glob("a*b?c", "AxxbYcd"));
        assert!(glob("*", ""));
        assert!(glob("**x", "abx"));
    }

    #[test]
    fn unknown_names_suggest_the_closest() {
        let e = sel(&["TCPToZeroWindowAdc"]).unwrap_err();
        assert_eq!(
            e,
            SelectError::Unknown {
                arg: "TCPToZeroWindowAdc".into(),
                suggestion: Some("TcpExtTCPToZeroWindowAdv".into())
            }
        );
        assert!(e
            .to_string()
            .contains("did you mean `TcpExtTCPToZeroWindowAdv`"));
        let e = sel(&["TcpRetransSeg"]).unwrap_err();
        assert!(e.to_string().contains("`TcpRetransSegs`"), "{e}");
        let e = sel(&["zzzzzzzz"]).unwrap_err();
        assert_eq!(e.to_string(), "no counter `zzzzzzzz` here");
    }

    #[test]
    fn deltas_follow_the_first_reading() {
        let mk = |v: &[(&str, u64)]| Reading {
            counters: v
                .iter()
                .map(|(n, x)| Counter {
                    name: n.to_string(),
                    group: "Tcp".into(),
                    value: *x,
                })
                .collect(),
            time: SystemTime::now(),
            instant: Instant::now(),
        };
        let a = mk(&[("TcpA", 5), ("TcpB", 9), ("TcpC", 1)]);
        let b = mk(&[("TcpB", 12), ("TcpA", 5), ("TcpC", 0), ("TcpD", 4)]);
        assert_eq!(
            delta(&a, &b),
            [("TcpA".into(), 0), ("TcpB".into(), 3), ("TcpC".into(), 0)]
        );
    }

    /// This kernel's own counters parse, include the ones incidents need,
    /// and every TCP one has a meaning.
    #[test]
    fn this_kernels_counters_parse_and_every_tcp_one_has_a_meaning() {
        let r = std::thread::spawn(read_here).join().unwrap().unwrap();
        for n in [
            "TcpRetransSegs",
            "TcpExtTCPToZeroWindowAdv",
            "TcpExtTCPRetransFail",
            "IpExtInOctets",
        ] {
            assert!(r.get(n).is_some(), "{n} missing: {:?}", r.names());
        }
        for n in NOT_COUNTERS {
            assert!(r.get(n).is_none(), "{n}");
        }
        let missing: Vec<&str> = r
            .counters
            .iter()
            .filter(|c| TCP_GROUPS.contains(&c.group.as_str()))
            .filter(|c| meaning(&c.name).is_none())
            .map(|c| c.name.as_str())
            .collect();
        assert!(
            missing.is_empty(),
            "TCP counters of this kernel without a meaning (add them to counters/meaning.rs from the kernel source): {missing:?}"
        );
    }
}
