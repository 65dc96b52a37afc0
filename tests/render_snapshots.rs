//! Snapshots of rendered aggregation output, text and JSON, for programs
//! compiled from source and fixed per-CPU map contents.
//!
//! `every` intervals carry the wall clock; here it is injected (a fixed
//! `SystemTime`), so the snapshots never see the real time.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tcpq_abi::{AggKey, AggValue};
use tcpq_dsl::plan::Action;
use tcpq_runtime::{
    agg::{self, Agg, What},
    render::{Stamp, Value},
    Format,
};

/// 2024-06-04T15:21:04.250Z, then one interval later.
fn clock(interval: u64, every: Duration) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_717_514_464_250) + every * (interval as u32 - 1)
}

fn key(vals: &[u64]) -> AggKey {
    let mut k = AggKey::default();
    k.vals[..vals.len()].copy_from_slice(vals);
    k
}

fn one(count: u64, sum: u64, min: u64, max: u64) -> Agg {
    Agg::combine([AggValue {
        count,
        sum,
        min,
        max,
    }])
}

/// Render `src` as tcpq's streamer does: `every` clauses once per
/// interval's data, the others once at the end (with the last data); the
/// probe column when there are several clauses.
fn render(src: &str, intervals: &[Vec<(AggKey, Agg)>], format: Format) -> String {
    let plan = tcpq_dsl::compile(src, "<test>", &[]).expect("compiles");
    let prefixed = plan.clauses.len() > 1;
    let mut out = Vec::new();
    for (i, data) in intervals.iter().enumerate() {
        let last = i + 1 == intervals.len();
        for c in &plan.clauses {
            if c.output.every_ms.is_none() && !last {
                continue;
            }
            let (what, keys) = match &c.action {
                Action::Print { .. } => continue,
                Action::Count { keys } => (What::Count, keys),
                Action::Aggregate { func, value, keys } => (What::Func(*func, value), keys),
            };
            let stamp = c.output.every_ms.map(|ms| Stamp {
                interval: i as u64 + 1,
                time: clock(i as u64 + 1, Duration::from_millis(ms)),
            });
            let extra: Vec<(String, Value)> = if prefixed {
                vec![("probe".into(), Value::Str(c.probe.clone()))]
            } else {
                vec![]
            };
            out.extend(agg::lines(
                keys,
                what,
                data,
                c.output.top,
                stamp,
                &extra,
                format,
            ));
        }
    }
    out.join("\n")
}

fn both(src: &str, intervals: &[Vec<(AggKey, Agg)>]) -> String {
    format!(
        "$ tcpq -e '{src}'\n{}\n\n$ tcpq -e '{src}' --format json\n{}",
        render(src, intervals, Format::Text),
        render(src, intervals, Format::Json)
    )
}

#[test]
fn every_count_by_key_is_stamped() {
    // Three intervals: two busy ones, then what remained at exit (none).
    let data = vec![
        vec![
            (key(&[443]), one(5, 0, 0, 0)),
            (key(&[80]), one(2, 0, 0, 0)),
        ],
        vec![(key(&[443]), one(1, 0, 0, 0))],
        vec![],
    ];
    insta::assert_snapshot!(
        "every_count_by_dport",
        both("on tcp_retransmit count by dport every 10s", &data)
    );
}

#[test]
fn every_histogram_and_stats_are_stamped() {
    let hist = vec![
        vec![(key(&[0]), one(4, 0, 0, 0)), (key(&[3]), one(2, 10, 4, 6))],
        vec![],
    ];
    insta::assert_snapshot!(
        "every_hist",
        both("on tcp_select_window hist win every 1s", &hist)
    );
    let stats = vec![
        vec![(key(&[]), one(3, 3000, 500, 1500))],
        vec![(key(&[]), one(1, 700, 700, 700))],
    ];
    insta::assert_snapshot!(
        "every_stats_two_clauses",
        both(
            "on tcp_probe stats srtt every 500ms; on tcp_probe max srtt",
            &stats
        )
    );
}

#[test]
fn json_time_is_rfc3339_and_interval_leads() {
    let out = render(
        "on tcp_retransmit count every 1m",
        &[vec![(key(&[]), one(7, 0, 0, 0))]],
        Format::Json,
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["interval"], 1);
    assert_eq!(v["time"], "2024-06-04T15:21:04.250Z");
    assert_eq!(v["count"], 7);
    assert!(out.starts_with(r#"{"interval":1,"time":"#), "{out}");
}
