//! `tcpq doctor` on this kernel: the JSON shape, and every catalog probe
//! available (root only; with CI set, not being root is a failure).
mod common;

use std::process::Command;

use serde_json::Value;

#[test]
fn doctor_json_lists_every_probe_available_here() {
    if !common::require_root() {
        return;
    }
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

#[test]
fn doctor_text_names_each_probe() {
    if !common::require_root() {
        return;
    }
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
