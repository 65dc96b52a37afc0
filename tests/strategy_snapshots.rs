//! Strategy choice replayed over recorded kernels: every catalog probe,
//! against the features `tcpq doctor --format json` recorded on this VM's
//! 6.18 and on Debian's 6.1 under qemu (`scripts/kernel-matrix.sh --record
//! tests/fixtures/kernels`). No kernel is touched; runs anywhere.
use std::collections::BTreeMap;

use serde_json::{json, Value};
use tcpq_dsl::catalog::PROBES;
use tcpq_runtime::{features::KernelFeatures, strategy::choose};

fn load(name: &str) -> KernelFeatures {
    let path = format!(
        "{}/tests/fixtures/kernels/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Per probe: the choice when the program uses every field, and when it
/// uses none (the strategy that still runs, and what it cannot fill).
fn choices(f: &KernelFeatures) -> BTreeMap<&'static str, Value> {
    PROBES
        .iter()
        .map(|p| {
            let strategies: Vec<_> = p.strategies.iter().map(|s| s.to_plan()).collect();
            let all: Vec<String> = p.all_fields().map(|f| f.name.to_owned()).collect();
            let show = |used: &[String]| match choose(&strategies, used, &all, f) {
                Ok(c) => json!({
                    "strategy": c.strategy.name,
                    "attach": c.strategy.attach.describe(),
                    "skipped": c.skipped,
                    "unavailable": c.unavailable,
                }),
                Err(e) => json!({ "error": e.to_string(), "missing_fields": e.missing_fields }),
            };
            (
                p.name,
                json!({ "every_field": show(&all), "no_field": show(&[]) }),
            )
        })
        .collect()
}

#[test]
fn host_6_18() {
    insta::assert_json_snapshot!(choices(&load("host-6.18")));
}

#[test]
fn debian_6_1() {
    insta::assert_json_snapshot!(choices(&load("debian-6.1")));
}

/// What each kernel offers beyond the catalog's needs today: the kprobe
/// and fentry strategies a template could add (a synthetic list, since no
/// template program for them exists yet).
#[test]
fn function_strategies_follow_the_kernel() {
    use tcpq_dsl::plan::{Attach, Strategy};
    let s = |name: &str, attach: Attach| Strategy {
        name: name.into(),
        program: format!("tcpq_{name}"),
        attach,
        how: String::new(),
        also: vec![],
        requires: vec![],
        provides: vec![],
        field_requires: vec![],
        quick: None,
    };
    let list = vec![
        s(
            "fexit",
            Attach::Fentry {
                function: "tcp_retransmit_skb".into(),
                exit: true,
            },
        ),
        s(
            "kprobe",
            Attach::Kprobe {
                function: "tcp_retransmit_skb".into(),
                ret: false,
            },
        ),
        s(
            "raw_tracepoint",
            Attach::RawTracepoint {
                category: "tcp".into(),
                name: "tcp_retransmit_skb".into(),
            },
        ),
    ];
    let pick = |k: &str| {
        let c = choose(&list, &[], &[], &load(k)).unwrap();
        json!({ "strategy": c.strategy.name, "skipped": c.skipped })
    };
    insta::assert_json_snapshot!(
        json!({ "host-6.18": pick("host-6.18"), "debian-6.1": pick("debian-6.1") })
    );
}
