//! The TCP sysctls that shape windows and loss recovery, read per network
//! namespace, and what is dangerous about their values.
//!
//! Every `net.ipv4.tcp_*` setting here is per namespace (each namespace has
//! its own copy, `struct netns_ipv4`), so it is read inside the namespace
//! from `/proc/sys/net/ipv4/...` (which follows the reading thread's
//! namespace). `net.core.rmem_max` and `net.core.wmem_max` are host-wide:
//! the kernel keeps one value, init_net's; other namespaces see it
//! read-only (measured on 6.18: mode 0444 and EACCES on write inside a
//! namespace) or not at all on older kernels. They are read once, in tcpq's
//! own namespace.
use std::io;

use crate::netns::{NetnsError, Pinned};

/// Per-namespace TCP settings, in report order.
pub const PER_NETNS: &[&str] = &[
    "net.ipv4.tcp_window_scaling",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
    "net.ipv4.tcp_moderate_rcvbuf",
    "net.ipv4.tcp_adv_win_scale",
    "net.ipv4.tcp_workaround_signed_windows",
    "net.ipv4.tcp_shrink_window",
    "net.ipv4.tcp_sack",
    "net.ipv4.tcp_timestamps",
    "net.ipv4.tcp_congestion_control",
];

/// Host-wide settings (one value for every namespace).
pub const HOST_WIDE: &[&str] = &["net.core.rmem_max", "net.core.wmem_max"];

/// How bad a value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Note,
    Warning,
    Danger,
}

impl Level {
    pub fn word(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Note => "note",
            Level::Warning => "warning",
            Level::Danger => "danger",
        }
    }
}

/// One setting as read, with the verdict on its value.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Setting {
    /// `net.ipv4.tcp_window_scaling`.
    pub name: &'static str,
    /// As `sysctl -n` prints it, whitespace between fields made one space;
    /// None when it could not be read (`error` says why).
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `netns` or `host`.
    pub scope: &'static str,
    pub level: Level,
    /// Why the value matters (empty for ok).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub why: String,
}

fn path_of(name: &str) -> String {
    format!("/proc/sys/{}", name.replace('.', "/"))
}

/// Read `names` in the calling thread's namespace.
fn read_raw(names: &[&'static str]) -> Vec<(&'static str, Result<String, String>)> {
    names
        .iter()
        .map(|&n| {
            let v = match std::fs::read_to_string(path_of(n)) {
                Ok(s) => Ok(s.split_whitespace().collect::<Vec<_>>().join(" ")),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    Err("not on this kernel".to_owned())
                }
                Err(e) => Err(e.to_string()),
            };
            (n, v)
        })
        .collect()
}

/// The per-namespace settings of `ns`, judged. `kernel` is the running
/// kernel's (major, minor), for settings that changed meaning.
pub fn read_in(ns: &Pinned, kernel: Option<(u32, u32)>) -> Result<Vec<Setting>, NetnsError> {
    let raw = ns.run(|| read_raw(PER_NETNS))?;
    Ok(judge(&raw, "netns", kernel))
}

/// The host-wide settings, read where tcpq runs.
pub fn read_host_wide() -> Vec<Setting> {
    judge(&read_raw(HOST_WIDE), "host", None)
}

/// `6.18.44-fc-v1300` → (6, 18).
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(['.', '-']);
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

fn judge(
    raw: &[(&'static str, Result<String, String>)],
    scope: &'static str,
    kernel: Option<(u32, u32)>,
) -> Vec<Setting> {
    let get = |n: &str| {
        raw.iter()
            .find(|(k, _)| *k == n)
            .and_then(|(_, v)| v.as_ref().ok())
            .map(String::as_str)
    };
    raw.iter()
        .map(|(name, v)| {
            let (value, error) = match v {
                Ok(s) => (Some(s.clone()), None),
                Err(e) => (None, Some(e.clone())),
            };
            let (level, why) = match &value {
                Some(val) => assess(name, val, &get, kernel),
                None => (Level::Ok, String::new()),
            };
            Setting {
                name,
                value,
                error,
                scope,
                level,
                why,
            }
        })
        .collect()
}

/// Bytes as a person reads them: `65535 bytes (64 KiB)`.
fn bytes(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{n} bytes ({} MiB)", n >> 20)
    } else if n >= 1 << 10 {
        format!("{n} bytes ({} KiB)", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// The verdict on one value. `get` reads the other settings of the same
/// namespace (tcp_moderate_rcvbuf's verdict quotes tcp_rmem's default).
fn assess<'a>(
    name: &str,
    value: &str,
    get: &impl Fn(&str) -> Option<&'a str>,
    kernel: Option<(u32, u32)>,
) -> (Level, String) {
    let ints: Vec<i64> = value
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    let one = ints.first().copied();
    let field = |setting: &str, i: usize| -> Option<i64> {
        get(setting)?.split_whitespace().nth(i)?.parse().ok()
    };
    let ok = (Level::Ok, String::new());
    match name {
        "net.ipv4.tcp_window_scaling" if one == Some(0) => (
            Level::Danger,
            "window scaling is off: connections of this namespace neither offer nor accept the \
             RFC 7323 window scale option, so every window, both ways, is at most 65535 bytes \
             (64 KiB) whatever the buffers: at most 64 KiB in flight per round trip (5.2 Mbit/s \
             at 100 ms RTT). The seed outage. Fix: sysctl -w net.ipv4.tcp_window_scaling=1 \
             (applies to new connections)"
                .to_owned(),
        ),
        "net.ipv4.tcp_sack" if one == Some(0) => (
            Level::Warning,
            "SACK is off (RFC 2018): a sender learns of one lost segment per round trip \
             (NewReno), so several losses in one window take several round trips or a \
             retransmission timeout to repair"
                .to_owned(),
        ),
        "net.ipv4.tcp_timestamps" if one == Some(0) => (
            Level::Warning,
            "TCP timestamps are off (RFC 7323): no PAWS protection against old duplicate \
             segments on fast links, and tcp_tw_reuse cannot reuse TIME-WAIT ports for new \
             outgoing connections"
                .to_owned(),
        ),
        "net.ipv4.tcp_rmem" => match ints.get(2) {
            Some(&max) if max < 65536 => (
                Level::Danger,
                format!(
                    "the receive buffer maximum is {}: sockets that do not set SO_RCVBUF \
                     never get more, so their window stays below 64 KiB",
                    bytes(max as u64)
                ),
            ),
            _ => ok,
        },
        "net.ipv4.tcp_wmem" => match ints.get(2) {
            Some(&max) if max < 65536 => (
                Level::Warning,
                format!(
                    "the send buffer maximum is {}: sockets that do not set SO_SNDBUF keep \
                     at most that much unacknowledged data in flight",
                    bytes(max as u64)
                ),
            ),
            _ => ok,
        },
        "net.ipv4.tcp_moderate_rcvbuf" if one == Some(0) => (
            Level::Warning,
            format!(
                "receive buffer auto-tuning is off: sockets keep the tcp_rmem default{} \
                 unless the application sets SO_RCVBUF, however far away the peer is",
                field("net.ipv4.tcp_rmem", 1)
                    .map(|d| format!(" ({})", bytes(d as u64)))
                    .unwrap_or_default()
            ),
        ),
        // Only when someone changed it (the default is 1), believing it works.
        "net.ipv4.tcp_adv_win_scale" if one != Some(1) && kernel.is_some_and(|k| k >= (6, 6)) => (
            Level::Note,
            "obsolete since Linux 6.6 (Documentation/networking/ip-sysctl.rst): the share of \
             the receive buffer advertised as window comes from a ratio each socket \
             measures (scaling_ratio), not from this setting"
                .to_owned(),
        ),
        "net.ipv4.tcp_workaround_signed_windows" if one == Some(1) => (
            Level::Warning,
            "connections without window scaling advertise at most 32767 bytes instead of \
             65535 (MAX_TCP_WINDOW in tcp_select_window)"
                .to_owned(),
        ),
        "net.ipv4.tcp_shrink_window" if one == Some(1) => (
            Level::Note,
            "an advertised window may shrink when memory runs short (RFC 7323 2.4); \
             TcpExtTCPWantZeroWindowAdv then no longer counts those moments on scaled \
             connections"
                .to_owned(),
        ),
        "net.core.rmem_max" => match one {
            Some(v) if v < 65536 => (
                Level::Warning,
                format!(
                    "applications that set SO_RCVBUF get at most {} of receive buffer \
                     (one value for every namespace)",
                    bytes(v as u64)
                ),
            ),
            _ => ok,
        },
        "net.core.wmem_max" => match one {
            Some(v) if v < 65536 => (
                Level::Warning,
                format!(
                    "applications that set SO_SNDBUF get at most {} of send buffer \
                     (one value for every namespace)",
                    bytes(v as u64)
                ),
            ),
            _ => ok,
        },
        _ => ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(pairs: &[(&'static str, &str)]) -> Vec<Setting> {
        let raw: Vec<_> = pairs.iter().map(|(n, v)| (*n, Ok(v.to_string()))).collect();
        judge(&raw, "netns", Some((6, 18)))
    }

    #[test]
    fn dangerous_values_say_why() {
        let s = judged(&[
            ("net.ipv4.tcp_window_scaling", "0"),
            ("net.ipv4.tcp_rmem", "4096 16384 32768"),
            ("net.ipv4.tcp_moderate_rcvbuf", "0"),
            ("net.ipv4.tcp_sack", "1"),
            ("net.ipv4.tcp_congestion_control", "cubic"),
        ]);
        assert_eq!(s[0].level, Level::Danger);
        assert!(s[0].why.contains("65535 bytes (64 KiB)"), "{}", s[0].why);
        assert_eq!(s[1].level, Level::Danger);
        assert!(s[1].why.contains("32768 bytes (32 KiB)"), "{}", s[1].why);
        assert_eq!(s[2].level, Level::Warning);
        assert!(s[2].why.contains("(16384 bytes (16 KiB))"), "{}", s[2].why);
        assert_eq!(s[3].level, Level::Ok);
        assert!(s[3].why.is_empty());
        assert_eq!(s[4].level, Level::Ok);
    }

    #[test]
    fn defaults_are_fine() {
        let s = judged(&[
            ("net.ipv4.tcp_window_scaling", "1"),
            ("net.ipv4.tcp_rmem", "4096 131072 6291456"),
            ("net.ipv4.tcp_wmem", "4096 16384 4194304"),
            ("net.ipv4.tcp_moderate_rcvbuf", "1"),
            ("net.ipv4.tcp_sack", "1"),
            ("net.ipv4.tcp_timestamps", "1"),
            ("net.ipv4.tcp_workaround_signed_windows", "0"),
            ("net.ipv4.tcp_shrink_window", "0"),
        ]);
        assert!(s.iter().all(|s| s.level == Level::Ok), "{s:?}");
    }

    #[test]
    fn versions() {
        assert_eq!(kernel_version("6.18.44-fc-v1300"), Some((6, 18)));
        assert_eq!(kernel_version("6.1.0-47-cloud-amd64"), Some((6, 1)));
        assert_eq!(kernel_version("x"), None);
    }

    /// Read in tcpq's own namespace: every setting exists on this kernel.
    #[test]
    fn this_namespace_has_every_setting() {
        let own = crate::netns::list().unwrap().remove(0);
        let s = read_in(&crate::netns::pin(&own).unwrap(), Some((6, 18))).unwrap();
        for x in &s {
            // tcp_shrink_window is new in 6.5.
            if x.name != "net.ipv4.tcp_shrink_window" {
                assert!(x.value.is_some(), "{x:?}");
            }
        }
        assert!(read_host_wide().iter().all(|x| x.value.is_some()));
    }
}
