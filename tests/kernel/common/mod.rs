//! Shared harness of the kernel tests.
//!
//! Every helper here only touches loopback or network namespaces the test
//! itself created (`tcpq-t-<pid>-<counter>-{cli,srv}`), and every resource is
//! owned by a guard whose `Drop` removes it, so a failing or panicking test
//! cleans up after itself. Namespaces left by crashed earlier runs (whose pid
//! is gone) are swept once, by the gate (`../gate.rs`), before any test runs.
#![allow(dead_code, unused_imports)]

pub mod bpf;
pub mod capture;
pub mod netns;
pub mod prometheus;
pub mod ss;
pub mod tcpgen;
pub mod tcpq;
pub mod tracefs;

pub use capture::{count, packets, tcpdump_syns, Capture, Packet, TcpdumpSyn};
pub use netns::{Loss, NetnsPair};
pub use ss::{ss_all, ss_port, SsLine, SsSock};
pub use tcpgen::{Client, Launch, Server, TcpGenLog};
pub use tcpq::Tcpq;
pub use tracefs::TraceInstance;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Prefix of every namespace (and tracefs instance) a test creates.
pub const PREFIX: &str = "tcpq-t-";

/// Delete `tcpq-t-<pid>-*` namespaces whose creating process is gone, and
/// `tcpq-t-<pid>-*` tracefs instances likewise. Namespaces of live test
/// processes (another test binary running right now) are left alone.
pub fn sweep_stale() {
    for ns in netns::list_namespaces() {
        if let Some(pid) = owner_pid(&ns) {
            if !pid_alive(pid) {
                netns::delete_namespace(&ns);
            }
        }
    }
    tracefs::sweep_stale();
}

/// The pid embedded in `tcpq-t-<pid>-...`, if the name is ours.
pub fn owner_pid(name: &str) -> Option<i32> {
    name.strip_prefix(PREFIX)?.split('-').next()?.parse().ok()
}

pub fn pid_alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Run `cmd` inside namespace `ns` (`ip netns exec`); never panics on a
/// non-zero exit, the caller inspects the `Output`.
pub fn exec(ns: &str, cmd: &[&str]) -> Output {
    tcpq_netlab::netns::exec(ns, cmd).unwrap_or_else(|e| panic!("{e}"))
}

/// Like `exec` but panics with stderr when the command fails.
pub fn exec_ok(ns: &str, cmd: &[&str]) -> String {
    tcpq_netlab::netns::exec_ok(ns, cmd).unwrap_or_else(|e| panic!("{e}"))
}

/// Run a command in the current (root) namespace and panic with its stderr
/// when it fails.
pub fn run_ok(prog: &str, args: &[&str]) -> String {
    tcpq_netlab::netns::run(prog, args).unwrap_or_else(|e| panic!("{e}"))
}

/// `sysctl -w key=value` inside `ns` (per-netns sysctls such as
/// `net.ipv4.tcp_window_scaling`), verified by reading it back.
pub fn sysctl(ns: &str, key: &str, value: &str) {
    tcpq_netlab::netns::sysctl(ns, key, value).unwrap_or_else(|e| panic!("{e}"));
}

/// Absolute values of the namespace's SNMP/netstat counters
/// (`ip netns exec ns nstat -asz`: absolute, don't touch the history file,
/// include zeros). With an empty `counters` slice every counter is returned;
/// otherwise only the named ones, and a name the kernel doesn't have panics.
pub fn nstat(ns: &str, counters: &[&str]) -> HashMap<String, u64> {
    let text = exec_ok(ns, &["nstat", "-a", "-s", "-z"]);
    let all = parse_nstat(&text);
    if counters.is_empty() {
        return all;
    }
    counters
        .iter()
        .map(|c| {
            let v = *all
                .get(*c)
                .unwrap_or_else(|| panic!("nstat in {ns} has no counter {c}"));
            (c.to_string(), v)
        })
        .collect()
}

/// Parse `nstat` output: `Name value rate`, one per line, `#` comments.
pub fn parse_nstat(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let name = it.next()?;
            let value = it.next()?.parse().ok()?;
            Some((name.to_string(), value))
        })
        .collect()
}

/// `ss -tin` inside `ns`: for failure messages (socket state, windows, wscale).
pub fn ss_ti(ns: &str) -> String {
    let out = exec(ns, &["ss", "-tiena"]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh, empty, per-test scratch directory under the system temp dir,
/// removed on Drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "{PREFIX}{}-{}-{tag}",
            std::process::id(),
            next_id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    /// Keep the directory (for post-mortem) when the test is failing.
    pub fn keep_on_panic(&self) -> bool {
        std::thread::panicking() && std::env::var_os("TCPQ_TEST_KEEP").is_some()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.keep_on_panic() {
            eprintln!("keeping {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Process-wide counter: unique ids for namespaces, ports, temp dirs.
pub fn next_id() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Poll `f` every 10 ms until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Send `sig` to `pid` (ignoring ESRCH).
pub fn kill(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a pid we spawned; no memory is involved.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}
