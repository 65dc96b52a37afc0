//! Streaming past capacity: every event the kernel produced is either
//! written or counted lost, exactly. Ground truth: the streaming
//! generator's own count of its receive calls (`tcpq lab __gen stream`,
//! netlab/src/stream.rs), each one `tcp_recvmsg` event on a socket whose
//! local port is the test's.
use crate::common;
use tcpq_kernel_test::kernel_test;

use common::tcpq::{field_u64, json_lines};
use common::Tcpq;
use std::time::Duration;

const ATTACH: Duration = Duration::from_secs(20);

/// Run the generator in `pair`'s server namespace (flows to itself over
/// loopback) while a tcpq prints every receive call on its port as JSON to
/// a file; returns (the generator's count, rows written, the summary line).
fn stream(rate: Option<u64>, seconds: &str, buffer: &str) -> (u64, u64, serde_json::Value) {
    let pair = common::NetnsPair::new();
    let sport = pair.port();
    let port = sport.to_string();
    let dir = common::TempDir::new("stream");
    let out = dir.join("events.json");
    let program = format!("on tcp_recvmsg where sport == {port} print sport, dport, ret");
    let mut t = Tcpq::spawn(&[
        "-e",
        &program,
        "--format",
        "json",
        "--buffer-size",
        buffer,
        "-o",
        out.to_str().unwrap(),
    ]);
    t.wait_attached(ATTACH);
    let addr = pair.srv_v4().to_string();
    let rate = rate.map(|r| r.to_string());
    let mut gen = vec![
        Tcpq::bin(),
        "lab",
        "__gen",
        "stream",
        "--bind",
        &addr,
        "--port",
        &port,
        "--seconds",
        seconds,
    ];
    if let Some(r) = &rate {
        gen.extend(["--rate", r]);
    }
    let done = common::exec_ok(&pair.srv, &gen);
    let done: serde_json::Value = serde_json::from_str(done.trim()).unwrap();
    let calls = field_u64(&done, "recv_calls");
    let (status, _, err) = t.stop(Duration::from_secs(60));
    assert!(status.success(), "{status}: {err}");
    let text = std::fs::read_to_string(&out).unwrap();
    let rows = json_lines(&text);
    assert!(
        rows.iter()
            .all(|r| field_u64(r, "sport") == u64::from(sport)),
        "a row of another port"
    );
    let summary = err
        .lines()
        .find(|l| l.starts_with(r#"{"tcpq":"summary""#))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap_or_else(|| panic!("no JSON summary on stderr:\n{err}"));
    eprintln!(
        "stream (rate {rate:?}, ring {buffer}): {calls} calls ({} /s), written {}, {err}",
        field_u64(&done, "recv_calls_per_s"),
        rows.len()
    );
    (calls, rows.len() as u64, summary)
}

/// Far more events than a 4096-byte ring holds (the generator flat out):
/// written + lost is the generator's count, exactly, and the loss is said.
#[kernel_test]
fn streaming_past_capacity_counts_every_event_written_or_lost() {
    let (calls, written, summary) = stream(None, "2", "4096");
    let lost = field_u64(&summary, "lost");
    assert!(calls > 100_000, "the generator made only {calls} calls");
    assert!(lost > 0, "nothing lost with a 4096-byte ring: {summary}");
    assert_eq!(
        written + lost,
        calls,
        "written {written} + lost {lost} vs {calls} calls"
    );
    assert_eq!(field_u64(&summary, "events"), written);
    assert_eq!(field_u64(&summary["clauses"][0], "matched"), calls);
}

/// At a modest rate (100,000 events/s for 2 s, an 8 MiB ring: 150 ms of
/// events, so the test is about accounting, not the CI machine's
/// scheduling), nothing is lost: every call is a row.
#[kernel_test]
fn streaming_at_a_modest_rate_loses_nothing() {
    let (calls, written, summary) = stream(Some(100_000), "2", "8m");
    assert!(calls >= 150_000, "the generator made only {calls} calls");
    assert_eq!(field_u64(&summary, "lost"), 0, "{summary}");
    assert_eq!(written, calls);
}
