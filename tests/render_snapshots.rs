//! Snapshots of rendered output, text and JSON, for programs compiled from
//! source: aggregations from fixed per-CPU map contents, events from fixed
//! records.
//!
//! `every` intervals and events carry the wall clock; here it is injected
//! (a fixed `SystemTime`, a fixed clock offset and time zone), so the
//! snapshots never see the real time.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tcpq_abi::{AggKey, AggValue, Event};
use tcpq_dsl::plan::Action;
use tcpq_runtime::{
    agg::{self, Agg, What},
    clock::{Clock, Zone},
    render::{EventTable, Names, Stamp, Stamps, Timebase, Value},
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
                &Names::default(),
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

/// CLOCK_MONOTONIC at 2026-12-07T05:46:01.123456789Z in these tests, and
/// when tcpq began attaching (1.5 s earlier).
const KTIME: u64 = 8_000_043_014_073;
const WALL_NS: i128 = 1_796_622_361_123_456_789;

/// An event of probe `probe` at `KTIME + after_ns` on `cpu`, with these
/// fields set (by the catalog's slots).
fn event(probe: &str, after_ns: u64, cpu: u32, fields: &[(&str, u64)]) -> Event {
    let p = tcpq_dsl::catalog::probe(probe).unwrap();
    let mut ev = Event {
        ktime_ns: KTIME + after_ns,
        cpu,
        _pad: 0,
        vals: [0; tcpq_abi::N_SLOTS],
    };
    for (name, v) in fields {
        let f = p.field(name).unwrap_or_else(|| panic!("no field {name}"));
        ev.vals[f.slots[0] as usize] = *v;
    }
    ev
}

/// Render events as tcpq's streamer does, with the clock fixed.
fn events(src: &str, evs: &[(usize, Event)], format: Format, stamps: Stamps, zone: Zone) -> String {
    let plan = tcpq_dsl::compile(src, "<test>", &[]).expect("compiles");
    let base = Timebase {
        clock: Clock::with_offset(WALL_NS - i128::from(KTIME)),
        zone,
        start_ktime_ns: KTIME - 1_500_000_000,
    };
    let prefixed = plan.clauses.len() > 1;
    let tables: Vec<EventTable> = plan
        .clauses
        .iter()
        .map(|c| {
            let Action::Print { columns } = &c.action else {
                panic!("print clauses only")
            };
            EventTable::new(
                columns,
                prefixed.then_some(c.probe.as_str()),
                format,
                stamps,
                base,
            )
        })
        .collect();
    let mut out: Vec<String> = tables.iter().filter_map(|t| t.header()).collect();
    for (clause, ev) in evs {
        out.push(tables[*clause].row(ev, &Names::default()));
    }
    out.join("\n")
}

#[test]
fn events_with_timestamps_and_elapsed() {
    let src = "on tcp_connect print pid, comm, sport, dport";
    let evs = [
        (
            0,
            event(
                "tcp_connect",
                0,
                1,
                &[("pid", 4712), ("sport", 41802), ("dport", 443)],
            ),
        ),
        (
            0,
            // 2.5 ms and a fraction of a microsecond later, on another CPU.
            event(
                "tcp_connect",
                2_500_700,
                0,
                &[("pid", 4713), ("sport", 41804), ("dport", 443)],
            ),
        ),
    ];
    let none = Stamps::default();
    let t = Stamps {
        clock: true,
        elapsed: false,
    };
    let tt = Stamps {
        clock: true,
        elapsed: true,
    };
    let e = Stamps {
        clock: false,
        elapsed: true,
    };
    let utc = Zone::Fixed(0);
    let text = format!(
        "$ tcpq -e '{src}'\n{}\n\n$ TZ=UTC tcpq -T -e '{src}'\n{}\n\n\
         $ TZ=Europe/Paris tcpq -T -t -e '{src}'\n{}\n\n$ tcpq -t -e '{src}'\n{}\n\n\
         $ tcpq -e '{src}' --format json\n{}\n\n$ tcpq -T -t -e '{src}' --format json\n{}",
        events(src, &evs, Format::Text, none, utc),
        events(src, &evs, Format::Text, t, utc),
        events(src, &evs, Format::Text, tt, Zone::Fixed(3600)),
        events(src, &evs, Format::Text, e, utc),
        events(src, &evs, Format::Json, none, utc),
        events(src, &evs, Format::Json, tt, utc),
    );
    insta::assert_snapshot!("events_timestamps", text);
}

#[test]
fn event_fields_time_ktime_cpu() {
    let src = "on tcp_connect print time, ktime, cpu, ktime / 1ms as ms, sport\n\
               on tcp_accept print cpu, sport";
    let evs = [
        (0, event("tcp_connect", 0, 1, &[("sport", 41802)])),
        (1, event("tcp_accept", 999, 3, &[("sport", 443)])),
    ];
    let s = Stamps::default();
    let text = format!(
        "$ tcpq -e '{src}'\n{}\n\n$ tcpq -e '{src}' --format json\n{}",
        events(src, &evs, Format::Text, s, Zone::Fixed(0)),
        events(src, &evs, Format::Json, s, Zone::Fixed(0)),
    );
    insta::assert_snapshot!("events_time_fields", text);
    // JSON: `time` first in every row, once, RFC 3339 UTC with
    // microseconds; `ktime` exact.
    let json = events(src, &evs, Format::Json, s, Zone::Fixed(0));
    let rows: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        json.lines().all(|l| l.starts_with(r#"{"time":""#)),
        "{json}"
    );
    assert_eq!(rows[0]["time"], "2026-12-07T05:46:01.123456Z");
    assert_eq!(rows[0]["ktime"], KTIME);
    assert_eq!(rows[1]["time"], "2026-12-07T05:46:01.123457Z");
    assert_eq!(rows[1]["cpu"], 3);
    assert_eq!(json.matches(r#""time""#).count(), 2, "{json}");
    // Renamed, it is printed where it was asked for too; a column of
    // another field named `time` keeps the name, and the row has no other.
    let json = events(
        "on tcp_connect print sport, time as t",
        &evs[..1],
        Format::Json,
        s,
        Zone::Fixed(0),
    );
    assert_eq!(
        json,
        r#"{"time":"2026-12-07T05:46:01.123456Z","sport":41802,"t":"2026-12-07T05:46:01.123456Z"}"#
    );
    let json = events(
        "on tcp_connect print sport as time",
        &evs[..1],
        Format::Json,
        s,
        Zone::Fixed(0),
    );
    assert_eq!(json, r#"{"time":41802}"#);
}
