//! `tcpq doctor` on this kernel: the JSON shape, and every catalog probe
//! available.
use crate::common;
use tcpq_kernel_test::kernel_test;

use std::process::Command;

use serde_json::Value;

#[kernel_test]
fn doctor_json_lists_every_probe_available_here() {
    let out = Command::new(env!("CARGO_BIN_EXE_tcpq"))
        .args(["doctor", "--format", "json"])
        .output()
        .expect("run tcpq doctor");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert!(v["kernel"]["release"]
        .as_str()
        .is_some_and(|r| !r.is_empty()));
    assert_eq!(v["privilege"]["euid"], 0);
    assert!(v["btf"]["path"].is_string(), "{}", v["btf"]);
    let f = &v["features"];
    for key in ["tracepoint", "raw_tracepoint", "kprobe", "tracing"] {
        assert!(f["program_types"][key]["ok"].is_boolean(), "{key}");
    }
    assert_eq!(f["ring_buffer"]["ok"], true);
    assert_eq!(f["probe_read_kernel"]["ok"], true);

    let probes = v["probes"].as_array().expect("probes list");
    let names: Vec<&str> = probes.iter().filter_map(|p| p["name"].as_str()).collect();
    for p in tcpq_dsl::catalog::PROBES {
        assert!(names.contains(&p.name), "{} missing from {names:?}", p.name);
    }
    for p in probes {
        for key in ["name", "strategy", "available", "reason"] {
            assert!(p.get(key).is_some(), "{key} missing in {p}");
        }
        assert_eq!(p["available"], true, "{p}");
        assert!(p["strategy"].is_string(), "{p}");
        assert!(p["reason"].is_string(), "{p}");
    }
}

#[kernel_test]
fn doctor_text_names_each_probe() {
    let out = Command::new(env!("CARGO_BIN_EXE_tcpq"))
        .arg("doctor")
        .output()
        .expect("run tcpq doctor");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for p in tcpq_dsl::catalog::PROBES {
        assert!(text.contains(p.name), "{} missing:\n{text}", p.name);
    }
    assert!(text.contains("program types"), "{text}");
}

/// Run tcpq in a private mount namespace where /sys/kernel/btf is an empty
/// tmpfs: a kernel without BTF, as far as tcpq can tell.
fn without_kernel_btf(args: &[&str]) -> std::process::Output {
    Command::new("unshare")
        .args([
            "-m",
            "sh",
            "-c",
            r#"mount -t tmpfs none /sys/kernel/btf && exec "$@""#,
            "sh",
            env!("CARGO_BIN_EXE_tcpq"),
        ])
        .args(args)
        .output()
        .expect("unshare")
}

/// Without /sys/kernel/btf/vmlinux, doctor says which probes still run from
/// tracepoint formats alone (tcp_probe and its views, classic strategy)
/// and why the others cannot, naming `--btf PATH`; one of them really runs.
/// With `--btf` pointing at a copy of the kernel's BTF, every probe is
/// back, and a raw tracepoint program attaches and counts.
#[kernel_test]
fn without_kernel_btf_doctor_says_what_still_runs_and_btf_flag_restores_it() {
    let out = without_kernel_btf(&["doctor", "--format", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    let probes = v["probes"].as_array().unwrap();
    let available: Vec<&str> = probes
        .iter()
        .filter(|p| p["available"] == true)
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(available, ["tcp_probe", "tcp_rtt", "tcp_cwnd"], "{v:#}");
    for p in probes.iter().filter(|p| p["available"] == false) {
        let r = p["reason"].as_str().unwrap();
        assert!(
            r.contains("no kernel BTF") && r.contains("--btf PATH"),
            "{p}"
        );
    }
    let text = without_kernel_btf(&["doctor"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("without BTF, from tracepoint formats alone: tcp_probe, tcp_rtt, tcp_cwnd"),
        "{text}"
    );
    // One of them runs: the classic tracepoint's own fields, no socket.
    let run = without_kernel_btf(&[
        "-e",
        "on tcp_probe where snd_cwnd > 0 count",
        "--duration",
        "300ms",
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("tcp_probe via tracepoint"), "{stderr}");
    // A program using a socket field says which field needs BTF.
    let run = without_kernel_btf(&["-e", "on tcp_probe print comm", "--duration", "300ms"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("comm") && stderr.contains("BTF"),
        "{stderr}"
    );

    // --btf PATH: a copy of the kernel's BTF brings every probe back.
    let dir = common::TempDir::new("btf");
    let copy = dir.path().join("vmlinux.btf");
    std::fs::copy("/sys/kernel/btf/vmlinux", &copy).unwrap();
    let copy = copy.to_str().unwrap();
    let out = without_kernel_btf(&["doctor", "--format", "json", "--btf", copy]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["btf"]["from_flag"], true, "{}", v["btf"]);
    for p in v["probes"].as_array().unwrap() {
        assert_eq!(p["available"], true, "{p}");
    }
    let run = without_kernel_btf(&[
        "-e",
        "on tcp_state count",
        "--duration",
        "300ms",
        "--btf",
        copy,
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("tcp_state via raw_tracepoint"), "{stderr}");
}

/// `tcpq_runtime::netns` finds the namespaces a test creates by their
/// `ip netns` names, and code run inside one sees that namespace (its
/// inode, its own loopback-only interface list, its own sysctls), while
/// the calling thread stays in the host namespace.
#[kernel_test]
fn netns_lists_and_enters_the_namespaces_ip_netns_made() {
    use tcpq_runtime::netns;
    let pair = common::NetnsPair::new();
    common::exec_ok(
        &pair.srv,
        &["sysctl", "-qw", "net.ipv4.tcp_window_scaling=0"],
    );
    let host = netns::current_inode().unwrap();
    let all = netns::list().unwrap();
    assert!(all[0].current && all[0].inode == host, "{all:?}");
    for name in [&pair.cli, &pair.srv] {
        let ns = all
            .iter()
            .find(|n| n.names.contains(name))
            .unwrap_or_else(|| panic!("{name} not listed: {all:?}"));
        assert_eq!(netns::find(name).unwrap(), *ns);
        let expected =
            netns::inode_of(std::path::Path::new(&format!("/run/netns/{name}"))).unwrap();
        assert_eq!(ns.inode, expected);
        assert_ne!(ns.inode, host);
        let (inode, links, scaling) = netns::run_in(ns, || {
            let links: Vec<String> = std::fs::read_dir("/proc/thread-self/net/dev_snmp6")
                .map(|d| {
                    d.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            let scaling = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_window_scaling").unwrap();
            (
                netns::current_inode().unwrap(),
                links,
                scaling.trim().to_owned(),
            )
        })
        .unwrap();
        assert_eq!(inode, ns.inode);
        let veth = pair.if_of(name);
        assert!(links.iter().any(|l| l == veth), "{name}: {links:?}");
        assert_eq!(scaling, if *name == pair.srv { "0" } else { "1" }, "{name}");
    }
    // The caller never moved.
    assert_eq!(netns::current_inode().unwrap(), host);
}

/// `sysctl -n NAME` inside `ns` (or where the test runs, for None), with
/// whitespace between fields made one space, as doctor reports it.
fn sysctl_n(ns: Option<&str>, name: &str) -> String {
    let out = match ns {
        Some(ns) => common::exec_ok(ns, &["sysctl", "-n", name]),
        None => common::run_ok("sysctl", &["-n", name]),
    };
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// With `net.ipv4.tcp_window_scaling=0` in one test namespace, `tcpq doctor
/// --netns` flags it as dangerous there, with why, and not in the other
/// namespace nor on the host (unless the host has it off too); every value
/// it reports equals what `sysctl -n` reads inside that namespace.
#[kernel_test]
fn doctor_flags_window_scaling_off_in_the_namespace_that_has_it() {
    let pair = common::NetnsPair::new();
    common::sysctl(&pair.srv, "net.ipv4.tcp_window_scaling", "0");
    let out = Command::new(env!("CARGO_BIN_EXE_tcpq"))
        .args([
            "doctor", "--format", "json", "--netns", &pair.srv, "--netns", &pair.cli,
        ])
        .output()
        .expect("run tcpq doctor");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let entries = v["sysctls"].as_array().expect("sysctls");
    let labels: Vec<&str> = entries
        .iter()
        .map(|e| e["netns_label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["host", pair.srv.as_str(), pair.cli.as_str()]);
    for (e, ns) in entries.iter().zip([None, Some(&pair.srv), Some(&pair.cli)]) {
        let settings = e["settings"].as_array().unwrap_or_else(|| panic!("{e}"));
        assert!(settings.len() >= 9, "{e}");
        for s in settings {
            let name = s["name"].as_str().unwrap();
            assert_eq!(s["scope"], "netns", "{s}");
            let Some(value) = s["value"].as_str() else {
                // A setting this kernel lacks (tcp_shrink_window before 6.5).
                assert_eq!(s["error"], "not on this kernel", "{s}");
                continue;
            };
            assert_eq!(
                value,
                sysctl_n(ns.map(String::as_str), name),
                "{name} in {}",
                e["netns_label"]
            );
        }
        let ws = settings
            .iter()
            .find(|s| s["name"] == "net.ipv4.tcp_window_scaling")
            .unwrap();
        let off = ws["value"] == "0";
        if ns == Some(&pair.srv) {
            assert!(off, "{ws}");
        } else if ns == Some(&pair.cli) {
            assert!(!off, "{ws}");
        }
        if off {
            assert_eq!(ws["level"], "danger", "{ws}");
            let why = ws["why"].as_str().unwrap();
            assert!(why.contains("65535 bytes (64 KiB)"), "{why}");
        } else {
            assert_eq!(ws["level"], "ok", "{ws}");
            assert!(ws.get("why").is_none(), "{ws}");
        }
    }
    // Host-wide settings: the host's values, once.
    for s in v["host_wide_sysctls"].as_array().unwrap() {
        assert_eq!(s["scope"], "host");
        let name = s["name"].as_str().unwrap();
        assert_eq!(s["value"].as_str().unwrap(), sysctl_n(None, name), "{name}");
    }

    // Text says it under the namespace's name.
    let out = Command::new(env!("CARGO_BIN_EXE_tcpq"))
        .args(["doctor", "--netns", &pair.srv])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let section = text
        .split(&format!("  {} (netns ", pair.srv))
        .nth(1)
        .unwrap_or_else(|| panic!("no section for {}:\n{text}", pair.srv));
    let line = section
        .lines()
        .find(|l| l.contains("net.ipv4.tcp_window_scaling"))
        .unwrap();
    assert!(line.contains("DANGER"), "{line}");

    // An unknown namespace is a usage error.
    let out = Command::new(env!("CARGO_BIN_EXE_tcpq"))
        .args(["doctor", "--netns", "tcpq-no-such-namespace"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tcpq-no-such-namespace"));
}
