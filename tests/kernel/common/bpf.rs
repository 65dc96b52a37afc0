//! What a process holds in the kernel, from the kernel's side:
//! `/proc/<pid>/fdinfo` (program and map ids) and `bpftool` (whether an id
//! still exists).
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

/// Each fd's `/proc/<pid>/fdinfo` entry, as a lookup of its `key:` lines
/// (`get("prog_id:")`), for those still readable.
fn fdinfos(pid: u32) -> Vec<impl Fn(&str) -> Option<String>> {
    let dir = format!("/proc/{pid}/fdinfo");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|entry| std::fs::read_to_string(entry.unwrap().path()).ok())
        .map(|text| {
            move |key: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(key))
                    .map(|v| v.trim().to_owned())
            }
        })
        .collect()
}

/// BPF programs (id → tag) and maps (ids) whose fds `pid` holds.
pub fn bpf_fds(pid: u32) -> (BTreeMap<u32, String>, Vec<u32>) {
    let mut progs = BTreeMap::new();
    let mut maps = Vec::new();
    for get in fdinfos(pid) {
        if let (Some(id), Some(tag)) = (get("prog_id:"), get("prog_tag:")) {
            progs.insert(id.parse().unwrap(), tag);
        } else if let Some(id) = get("map_id:") {
            maps.push(id.parse().unwrap());
        }
    }
    (progs, maps)
}

pub fn bpftool_json(args: &[&str]) -> Option<Value> {
    let out = Command::new("bpftool").args(args).arg("-j").output().ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

pub fn prog_exists(id: u32) -> bool {
    bpftool_json(&["prog", "show", "id", &id.to_string()]).is_some()
}

pub fn map_exists(id: u32) -> bool {
    bpftool_json(&["map", "show", "id", &id.to_string()]).is_some()
}

/// Programs and maps of a stopped tcpq must be gone from the kernel (they
/// are freed after an RCU grace period, hence the wait).
pub fn assert_released(progs: &BTreeMap<u32, String>, maps: &[u32], how: &str) {
    let gone = super::wait_for(Duration::from_secs(5), || {
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

/// The tracepoint names of the raw tracepoint links `pid` holds (one entry
/// a link), from each link fd's fdinfo (`link_type`, `tp_name`).
pub fn raw_tp_links(pid: u32) -> Vec<String> {
    let mut names: Vec<String> = fdinfos(pid)
        .into_iter()
        .filter(|get| get("link_type:").as_deref() == Some("raw_tracepoint"))
        .filter_map(|get| get("tp_name:"))
        .collect();
    names.sort();
    names
}
