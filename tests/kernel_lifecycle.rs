//! What tcpq leaves in the kernel, checked from the kernel's side.
//!
//! Ground truth: `/proc/<pid>/fdinfo` (each BPF program and map fd a process
//! holds carries `prog_id`/`prog_tag` or `map_id`) and `bpftool` (program
//! names, map contents, whether an id still exists). A program's tag is the
//! kernel's hash of its instructions, so equal tags mean byte-identical
//! programs were loaded.
mod common;

use common::Tcpq;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

const ATTACH: Duration = Duration::from_secs(20);

/// BPF programs (id → tag) and maps (ids) whose fds `pid` holds.
fn bpf_fds(pid: u32) -> (BTreeMap<u32, String>, Vec<u32>) {
    let mut progs = BTreeMap::new();
    let mut maps = Vec::new();
    let dir = format!("/proc/{pid}/fdinfo");
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
        let Ok(text) = std::fs::read_to_string(entry.unwrap().path()) else {
            continue;
        };
        let get = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.trim().to_owned())
        };
        if let (Some(id), Some(tag)) = (get("prog_id:"), get("prog_tag:")) {
            progs.insert(id.parse().unwrap(), tag);
        } else if let Some(id) = get("map_id:") {
            maps.push(id.parse().unwrap());
        }
    }
    (progs, maps)
}

fn bpftool_json(args: &[&str]) -> Option<Value> {
    let out = Command::new("bpftool").args(args).arg("-j").output().ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn prog_name(id: u32) -> String {
    let v = bpftool_json(&["prog", "show", "id", &id.to_string()])
        .unwrap_or_else(|| panic!("bpftool prog show id {id} failed"));
    v["name"].as_str().unwrap_or_default().to_owned()
}

fn prog_exists(id: u32) -> bool {
    bpftool_json(&["prog", "show", "id", &id.to_string()]).is_some()
}

fn map_exists(id: u32) -> bool {
    bpftool_json(&["map", "show", "id", &id.to_string()]).is_some()
}

/// The value bytes of the single entry of the map named `name` among `maps`.
fn map_value(maps: &[u32], name: &str) -> Vec<String> {
    for &id in maps {
        let Some(info) = bpftool_json(&["map", "show", "id", &id.to_string()]) else {
            continue;
        };
        if info["name"].as_str() != Some(name) {
            continue;
        }
        let dump = bpftool_json(&["map", "dump", "id", &id.to_string()])
            .unwrap_or_else(|| panic!("bpftool map dump id {id} failed"));
        return dump[0]["value"]
            .as_array()
            .unwrap_or_else(|| panic!("map {name} ({id}) dump: {dump}"))
            .iter()
            .map(|b| b.as_str().unwrap_or_default().to_owned())
            .collect();
    }
    panic!("no map named {name} among {maps:?}");
}

/// Programs by name with their tags.
fn named_tags(progs: &BTreeMap<u32, String>) -> BTreeMap<String, String> {
    progs
        .iter()
        .map(|(&id, tag)| (prog_name(id), tag.clone()))
        .collect()
}

#[test]
fn a_where_clause_changes_map_contents_not_the_loaded_program() {
    if !common::require_root() {
        return;
    }
    let mut a = Tcpq::spawn(&["-e", "on tcp_select_window where win == 0 print pid, comm"]);
    let mut b = Tcpq::spawn(&[
        "-e",
        "on tcp_select_window where sport == 4242 and not wscale_ok or daddr == 10.1.2.3 print pid, comm",
    ]);
    a.wait_attached(ATTACH);
    b.wait_attached(ATTACH);
    let (pa, ma) = bpf_fds(a.pid().unwrap());
    let (pb, mb) = bpf_fds(b.pid().unwrap());
    let (ta, tb) = (named_tags(&pa), named_tags(&pb));
    assert!(
        ta.contains_key("tcpq_selwin_ndq"),
        "tcpq a holds no tcp_select_window program: {ta:?}"
    );
    // Two separate loads ...
    assert!(pa.keys().all(|id| !pb.contains_key(id)));
    // ... of the same instructions, program by program.
    assert_eq!(ta, tb, "program tags differ between the two where clauses");
    // What differs is the configuration map.
    let (ca, cb) = (map_value(&ma, "TCPQ_CONFIG"), map_value(&mb, "TCPQ_CONFIG"));
    assert_ne!(ca, cb, "the two filters wrote the same TCPQ_CONFIG");
    // And the kernel offsets written by both are the same.
    assert_eq!(
        map_value(&ma, "TCPQ_OFFSETS"),
        map_value(&mb, "TCPQ_OFFSETS")
    );
    a.stop(Duration::from_secs(10));
    b.stop(Duration::from_secs(10));
}

/// Programs and maps of a stopped tcpq must be gone from the kernel (they are
/// freed after an RCU grace period, hence the short wait).
fn assert_released(progs: &BTreeMap<u32, String>, maps: &[u32], how: &str) {
    let gone = common::wait_for(Duration::from_secs(5), || {
        (!progs.keys().any(|&id| prog_exists(id)) && !maps.iter().any(|&id| map_exists(id)))
            .then_some(())
    });
    assert!(
        gone.is_some(),
        "after {how}, still loaded: programs {:?}, maps {:?}",
        progs
            .keys()
            .filter(|&&id| prog_exists(id))
            .collect::<Vec<_>>(),
        maps.iter()
            .filter(|&&id| map_exists(id))
            .collect::<Vec<_>>()
    );
}

fn run_and_signal(sig: i32, how: &str) {
    let mut t = Tcpq::spawn(&["-e", "on tcp_retransmit count by comm"]);
    t.wait_attached(ATTACH);
    let pid = t.pid().unwrap();
    let (progs, maps) = bpf_fds(pid);
    assert!(
        progs.len() >= 4,
        "expected the template and owner programs: {progs:?}"
    );
    common::kill(pid, sig);
    let (status, stdout, stderr) = t.wait(Duration::from_secs(10));
    assert!(status.success(), "{how}: exit {status}; stderr:\n{stderr}");
    // Aggregates are printed on the way out (a header at least).
    assert!(
        stdout.contains("count"),
        "{how}: no final count in:\n{stdout}"
    );
    assert_released(&progs, &maps, how);
}

#[test]
fn sigint_detaches_everything() {
    if !common::require_root() {
        return;
    }
    run_and_signal(libc::SIGINT, "SIGINT");
}

#[test]
fn sigterm_detaches_everything() {
    if !common::require_root() {
        return;
    }
    run_and_signal(libc::SIGTERM, "SIGTERM");
}

#[test]
fn duration_ends_the_run_and_detaches() {
    if !common::require_root() {
        return;
    }
    let mut t = Tcpq::spawn(&[
        "-e",
        "on tcp_probe print pid, comm, srtt",
        "--duration",
        "1500ms",
    ]);
    t.wait_attached(ATTACH);
    let (progs, maps) = bpf_fds(t.pid().unwrap());
    let (status, _, stderr) = t.wait(Duration::from_secs(15));
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
    assert_released(&progs, &maps, "--duration");

    // `--duration 0`: attach, detach, exit 0.
    let mut z = Tcpq::spawn(&[
        "-e",
        "on tcp_select_window where win == 0 print pid",
        "--duration",
        "0",
    ]);
    let (status, _, stderr) = z.wait(Duration::from_secs(15));
    assert!(
        status.success(),
        "--duration 0: exit {status}; stderr:\n{stderr}"
    );
    assert!(
        stderr.lines().any(common::tcpq::says_attached),
        "--duration 0 must still attach: {stderr}"
    );
}

#[test]
fn without_privileges_exit_1_and_say_what_is_missing() {
    if !common::require_root() {
        return;
    }
    // A copy the unprivileged user can execute wherever the checkout lives.
    let dir = common::TempDir::new("unpriv");
    let bin = dir.join("tcpq");
    std::fs::copy(Tcpq::bin(), &bin).unwrap();
    Command::new("chmod")
        .args(["755", dir.path().to_str().unwrap(), bin.to_str().unwrap()])
        .status()
        .unwrap();
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(&bin)
        .args(["-e", "on tcp_retransmit count", "--duration", "1s"])
        .output()
        .expect("setpriv");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{err}");
    assert!(
        err.contains("root") && err.contains("CAP_BPF"),
        "the message must say what is missing: {err}"
    );
    assert!(!err.contains("attached"), "{err}");
}
