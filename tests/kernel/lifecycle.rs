//! What tcpq leaves in the kernel, checked from the kernel's side.
//!
//! Ground truth: `/proc/<pid>/fdinfo` (each BPF program and map fd a process
//! holds carries `prog_id`/`prog_tag` or `map_id`) and `bpftool` (program
//! names, map contents, whether an id still exists). A program's tag is the
//! kernel's hash of its instructions, so equal tags mean byte-identical
//! programs were loaded.
use crate::common;
use tcpq_kernel_test::kernel_test;

use common::bpf::{assert_released, bpf_fds, bpftool_json};
use common::Tcpq;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

const ATTACH: Duration = Duration::from_secs(20);

fn prog_name(id: u32) -> String {
    let v = bpftool_json(&["prog", "show", "id", &id.to_string()])
        .unwrap_or_else(|| panic!("bpftool prog show id {id} failed"));
    v["name"].as_str().unwrap_or_default().to_owned()
}

/// The value bytes of the single entry of the map named `name` among `maps`
/// (the first such map).
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

/// The bytes of global `name` within the `.rodata` section of template
/// `template`'s object (the section the loader makes a map of).
fn rodata_symbol(template: &str, name: &str) -> std::ops::Range<usize> {
    use object::{Object, ObjectSection, ObjectSymbol};
    let path = format!(
        "{}/probe-templates/prebuilt/{template}.bpfel.o",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let file = object::File::parse(&*bytes).unwrap();
    let sym = file
        .symbols()
        .find(|s| s.name() == Ok(name))
        .unwrap_or_else(|| panic!("{path}: no symbol {name}"));
    let section = file.section_by_index(sym.section_index().unwrap()).unwrap();
    assert_eq!(section.name(), Ok(".rodata"), "{name}");
    let start = (sym.address() - section.address()) as usize;
    start..start + sym.size() as usize
}

/// Programs by name with their tags.
fn named_tags(progs: &BTreeMap<u32, String>) -> BTreeMap<String, String> {
    progs
        .iter()
        .map(|(&id, tag)| (prog_name(id), tag.clone()))
        .collect()
}

#[kernel_test]
fn a_where_clause_changes_map_contents_not_the_loaded_program() {
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
    // What differs is the configuration: the template's read-only globals
    // (one `.rodata` map an object), where `TCPQ_RO_CONFIG` changed ...
    let (ra, rb) = (map_value(&ma, ".rodata"), map_value(&mb, ".rodata"));
    let config = rodata_symbol("tcp_select_window", tcpq_abi::globals::CONFIG);
    let offsets = rodata_symbol("tcp_select_window", tcpq_abi::globals::OFFSETS);
    assert!(ra.len() >= config.end && ra.len() >= offsets.end, "{ra:?}");
    assert_ne!(
        ra[config.clone()],
        rb[config],
        "the two filters set the same {}",
        tcpq_abi::globals::CONFIG
    );
    // ... and the kernel offsets set by both are the same, and resolved.
    assert_eq!(ra[offsets.clone()], rb[offsets.clone()]);
    assert!(ra[offsets].iter().any(|b| b != "0x00"), "no offset set");
    a.stop(Duration::from_secs(10));
    b.stop(Duration::from_secs(10));
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

#[kernel_test]
fn sigint_detaches_everything() {
    run_and_signal(libc::SIGINT, "SIGINT");
}

#[kernel_test]
fn sigterm_detaches_everything() {
    run_and_signal(libc::SIGTERM, "SIGTERM");
}

#[kernel_test]
fn duration_ends_the_run_and_detaches() {
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

#[kernel_test]
fn without_privileges_exit_1_and_say_what_is_missing() {
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

/// Ids of the programs some live process holds a descriptor of.
fn held_programs() -> std::collections::HashSet<u32> {
    let mut held = std::collections::HashSet::new();
    for dir in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(fds) = std::fs::read_dir(dir.path().join("fdinfo")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(text) = std::fs::read_to_string(fd.path()) else {
                continue;
            };
            // A link's fdinfo names its program too (`prog_id:`).
            for id in text.lines().filter_map(|l| l.strip_prefix("prog_id:")) {
                if let Ok(id) = id.trim().parse() {
                    held.insert(id);
                }
            }
        }
    }
    held
}

/// tcpq's programs (`tcpq_*`) the kernel has, id → name.
fn tcpq_programs() -> BTreeMap<u32, String> {
    let all = bpftool_json(&["prog", "show"]).expect("bpftool prog show");
    all.as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            let name = p["name"].as_str()?;
            name.starts_with("tcpq_")
                .then(|| (p["id"].as_u64().unwrap() as u32, name.to_owned()))
        })
        .collect()
}

/// Issue 21: every probe, run with `--duration 0`, leaves nothing of
/// tcpq's in the kernel. Program ids only grow, so a program above the
/// highest id from before the run that no live process holds (other
/// tests' tcpq may run meanwhile) and that outlives the wait (freeing
/// follows an RCU grace period) stayed attached: a perf event, a link or
/// a pin kept it. Links are checked by program too (`bpftool link show`).
/// The programs: for every probe `print pid, comm` (owner programs
/// attached at the first event), a `comm` filter (owner programs at the
/// start), and for `tcp_sendmsg`/`tcp_recvmsg` `size` (the syscall
/// entries, classic tracepoints).
#[kernel_test]
fn every_probe_with_duration_zero_leaves_nothing_attached() {
    let list = common::run_ok(Tcpq::bin(), &["-l", "--format", "json"]);
    let probes: Vec<String> = list
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["name"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(probes.len() >= 16, "{probes:?}");
    let mut programs = Vec::new();
    for p in &probes {
        programs.push(format!("on {p} print pid, comm"));
        programs.push(format!("on {p} where comm == \"tcpq-nobody\" print pid"));
    }
    programs.push("on tcp_sendmsg print pid, size, ret".into());
    programs.push("on tcp_recvmsg print pid, size, ret".into());
    programs.push("on tcp_probe where snd_wnd == 0 print pid, comm".into());
    for program in &programs {
        let floor = tcpq_programs()
            .keys()
            .chain(held_programs().iter())
            .copied()
            .max()
            .unwrap_or(0);
        let mut t = Tcpq::spawn(&["-e", program, "--duration", "0"]);
        let (status, _, stderr) = t.wait(Duration::from_secs(15));
        assert!(
            status.success(),
            "{program}: exit {status}; stderr:\n{stderr}"
        );
        assert!(
            stderr.lines().any(common::tcpq::says_attached),
            "{program}: did not attach: {stderr}"
        );
        let left = || -> BTreeMap<u32, String> {
            let held = held_programs();
            tcpq_programs()
                .into_iter()
                .filter(|(id, _)| *id > floor && !held.contains(id))
                .collect()
        };
        let gone = common::wait_for(Duration::from_secs(5), || left().is_empty().then_some(()));
        let links = bpftool_json(&["link", "show"]).unwrap_or_default();
        let left = left();
        let linked: Vec<&serde_json::Value> = links
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|l| {
                        l["prog_id"]
                            .as_u64()
                            .is_some_and(|id| left.contains_key(&(id as u32)))
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            gone.is_some(),
            "{program}: still loaded 5 s after exit: {left:?}; their links: {linked:?}"
        );
    }
}
