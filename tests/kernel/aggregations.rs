//! tcpq's in-kernel aggregations against the kernel's own view.
//!
//! - `hist win`, `lhist win`, `stats win` and `count` of the windows a slow
//!   reader advertises (`tcp_select_window`, window scaling off so `win` is
//!   bytes) against the windows in a packet capture of the same segments,
//!   bucketed by the test itself. The reader's side sends only ACKs (no
//!   TSO), so one segment is one event.
//! - `limit 3` of the same probe: tcpq stops by itself after three events.
//! - `stats mss` and `stats srtt` of the writer's socket on the segments it
//!   sends (`tcp_select_window`) against `ss -ti` of the live connection
//!   once every byte is acknowledged: the MSS is constant, so min and max
//!   equal ss's `mss`; the FIN sent when the writer closes carries the
//!   srtt ss saw (no RTT sample arrives in between), so ss's value lies
//!   between tcpq's least and greatest. (`tcp_probe` would not do: its
//!   tracepoint fires before the ACK it reports updates srtt.)
//!
//! - `every 200ms` of `sum size` on the writer's `tcp_sendmsg` calls, in
//!   text and JSON: each interval is stamped (RFC 3339, UTC), the stamps
//!   count up, lie within the run and are about 200 ms apart, and the
//!   intervals' sums add up to the run's total.
//!
//! - `stats`, `sum`, `hist` and `lhist` of the signed `ret` of
//!   `tcp_sendmsg` against the returns a non-blocking writer saw: byte
//!   counts, -EAGAIN once its buffer is full, -EPIPE after shutdown.
//!
//! - `avg`, `min`, `max` of `tcp_sendmsg` sizes and `count by comm top 2`
//!   against three writers' logs (3, 2 and 1 connections of known sizes).
//!
//! (Retransmission sums are in `retransmit.rs`.)

use crate::common;
use tcpq_kernel_test::kernel_test;

use common::tcpgen::{slow_reader_exchange, transfer};
use common::tcpq::{field_str, field_u64, json_lines};
use common::{ss_ti, sysctl, Capture, Client, NetnsPair, Server, Tcpq, TempDir};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Buckets of a JSON histogram row: (min, max) → count, empty ones left out.
fn buckets(row: &Value) -> BTreeMap<(Option<u64>, Option<u64>), u64> {
    row["buckets"]
        .as_array()
        .unwrap_or_else(|| panic!("no buckets in {row}"))
        .iter()
        .map(|b| {
            (
                (b["min"].as_u64(), b["max"].as_u64()),
                b["count"].as_u64().unwrap(),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[kernel_test]
fn window_histograms_match_the_capture() {
    let t0 = Instant::now();
    let pair = NetnsPair::new();
    sysctl(&pair.srv, "net.ipv4.tcp_window_scaling", "0");
    let port = pair.port();
    let dir = TempDir::new("kagg");
    let pcap = dir.join("srv.pcap");

    let on = format!("on tcp_select_window where sport == {port}");
    let programs = [
        format!("{on} hist win"),
        format!("{on} lhist win, 0, 65536, 8192"),
        format!("{on} stats win"),
        format!("{on} count by dport"),
    ];
    let mut runs: Vec<Tcpq> = programs
        .iter()
        .map(|p| Tcpq::spawn(&["-e", p, "--format", "json"]))
        .collect();
    let limit_program = format!("{on} print win limit 3");
    let mut limited = Tcpq::spawn(&["-e", &limit_program, "--format", "json"]);
    for t in runs.iter_mut().chain(std::iter::once(&mut limited)) {
        t.wait_attached(Duration::from_secs(10));
    }

    let mut cap = Capture::start(&pair.srv, pair.srv_if(), &format!("tcp port {port}"), &pcap);
    let (wlog, rlog) = slow_reader_exchange(&pair, port, "0.5", dir.path());
    let stats = cap.stop();
    std::thread::sleep(Duration::from_millis(200));
    let outs: Vec<(String, String)> = runs
        .iter_mut()
        .map(|t| {
            let (status, out, err) = t.stop(Duration::from_secs(5));
            assert!(status.success(), "{:?}: {status}\n{err}", t.args);
            (out, err)
        })
        .collect();
    // `limit 3` ended on its own long before.
    let (lstatus, lout, lerr) = limited.wait(Duration::from_secs(1));

    assert_eq!(rlog.bytes(), 1 << 20, "reader {rlog:?}");
    assert_eq!(wlog.bytes(), 1 << 20, "writer {wlog:?}");
    assert_eq!(
        stats.dropped_by_kernel, 0,
        "tcpdump dropped: {}",
        stats.stderr
    );

    let wire: Vec<u64> = common::packets(&pcap)
        .into_iter()
        .filter(|p| p.sport == port && !p.syn())
        .map(|p| u64::from(p.win))
        .collect();
    assert!(
        wire.len() > 10,
        "too few segments on the wire: {}",
        wire.len()
    );
    let ctx = |i: usize| {
        format!(
            "\nwire: {} segments from the reader\ntcpq {:?} stdout:\n{}\nstderr:\n{}",
            wire.len(),
            programs[i],
            outs[i].0,
            outs[i].1
        )
    };

    // hist win: power-of-two buckets, computed here from the capture.
    let mut want: BTreeMap<(Option<u64>, Option<u64>), u64> = BTreeMap::new();
    for &w in &wire {
        let (lo, hi) = match w {
            0 => (0, 0),
            w => {
                let b = 63 - w.leading_zeros();
                (1 << b, (2 << b) - 1)
            }
        };
        *want.entry((Some(lo), Some(hi))).or_default() += 1;
    }
    let rows = json_lines(&outs[0].0);
    assert_eq!(rows.len(), 1, "{}", ctx(0));
    assert_eq!(buckets(&rows[0]), want, "hist win != capture{}", ctx(0));

    // lhist win, 0, 65536, 8192: eight buckets of 8 KiB and one for 64 KiB
    // and above (none: the window field is 16 bits, at most 65535).
    let mut want: BTreeMap<(Option<u64>, Option<u64>), u64> = BTreeMap::new();
    for &w in &wire {
        let lo = w / 8192 * 8192;
        *want.entry((Some(lo), Some(lo + 8191))).or_default() += 1;
    }
    let rows = json_lines(&outs[1].0);
    assert_eq!(rows.len(), 1, "{}", ctx(1));
    assert_eq!(buckets(&rows[0]), want, "lhist win != capture{}", ctx(1));

    // stats win.
    let rows = json_lines(&outs[2].0);
    assert_eq!(rows.len(), 1, "{}", ctx(2));
    let n = wire.len() as u64;
    let sum: u64 = wire.iter().sum();
    assert_eq!(field_u64(&rows[0], "count"), n, "{}", ctx(2));
    assert_eq!(field_u64(&rows[0], "avg"), sum / n, "{}", ctx(2));
    assert_eq!(
        field_u64(&rows[0], "min"),
        *wire.iter().min().unwrap(),
        "{}",
        ctx(2)
    );
    assert_eq!(
        field_u64(&rows[0], "max"),
        *wire.iter().max().unwrap(),
        "{}",
        ctx(2)
    );

    // count by dport: one key, the writer's port.
    let rows = json_lines(&outs[3].0);
    assert_eq!(rows.len(), 1, "{}", ctx(3));
    assert_eq!(
        field_u64(&rows[0], "dport"),
        u64::from(wlog.lport()),
        "{}",
        ctx(3)
    );
    assert_eq!(field_u64(&rows[0], "count"), n, "{}", ctx(3));

    // limit 3.
    assert!(lstatus.success(), "limit: {lstatus}\n{lerr}");
    let rows = json_lines(&lout);
    assert_eq!(
        rows.len(),
        3,
        "limit 3 printed {}:\n{lout}\n{lerr}",
        rows.len()
    );
    for (row, w) in rows.iter().zip(&wire) {
        assert_eq!(field_u64(row, "win"), *w, "limit: first windows differ");
    }
    eprintln!(
        "aggregations: {} segments, hist/lhist/stats/count agree with the capture, limit 3 \
         stopped by itself, {:?}",
        wire.len(),
        t0.elapsed()
    );
}

/// `rto:204` (ms) from an `ss -ti` line for `port`.
fn ss_rto(ss: &str, port: u16) -> Option<f64> {
    let needle = format!(":{port} ");
    let mut lines = ss.lines();
    while let Some(l) = lines.next() {
        if l.starts_with("ESTAB") && l.contains(&needle) {
            return lines
                .next()?
                .split_whitespace()
                .find_map(|w| w.strip_prefix("rto:"))?
                .parse()
                .ok();
        }
    }
    None
}

/// `mss:1448` and `rtt:0.123/0.05` from an `ss -ti` line for `port`.
fn ss_mss_rtt(ss: &str, port: u16) -> Option<(u64, f64)> {
    let needle = format!(":{port} ");
    let mut lines = ss.lines();
    while let Some(l) = lines.next() {
        if !(l.starts_with("ESTAB") && l.contains(&needle)) {
            continue;
        }
        let info = lines.next()?;
        let mss = info
            .split_whitespace()
            .find_map(|w| w.strip_prefix("mss:"))?
            .parse()
            .ok()?;
        let rtt = info
            .split_whitespace()
            .find_map(|w| w.strip_prefix("rtt:"))?
            .split('/')
            .next()?
            .parse()
            .ok()?;
        return Some((mss, rtt));
    }
    None
}

#[kernel_test]
fn socket_stats_match_ss() {
    let pair = NetnsPair::new();
    let port = pair.port();
    let dir = TempDir::new("kss");
    let program = format!(
        "on tcp_select_window where dport == {port} stats mss\n\
         on tcp_select_window where dport == {port} stats srtt\n\
         on tcp_select_window where dport == {port} stats rto"
    );
    let mut tcpq = Tcpq::spawn(&["-e", &program, "--format", "json"]);
    tcpq.wait_attached(Duration::from_secs(10));
    let mut server = Server::start(
        &pair.srv,
        IpAddr::V4(pair.srv_v4()),
        port,
        &["--max-seconds", "10"],
        dir.path(),
    );
    let mut client = Client::start(
        &pair.cli,
        IpAddr::V4(pair.srv_v4()),
        port,
        4 << 20,
        &[
            "--max-seconds",
            "8",
            "--hold-seconds",
            "3",
            "--hold-after-ack",
            "2",
        ],
        dir.path(),
    );
    // Every byte acknowledged, the socket still open: ss sees the final
    // state that the last tcp_probe event saw.
    client.wait_event("done", Duration::from_secs(10));
    let ss = ss_ti(&pair.cli);
    client.wait(Duration::from_secs(10));
    server.wait(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(200));
    let (status, out, err) = tcpq.stop(Duration::from_secs(5));
    assert!(status.success(), "{status}\n{err}");
    let (mss, rtt_ms) =
        ss_mss_rtt(&ss, port).unwrap_or_else(|| panic!("no connection to :{port} in\n{ss}"));
    let rows = json_lines(&out);
    let ctx = format!("\nss:\n{ss}\ntcpq:\n{out}\n{err}");
    assert_eq!(rows.len(), 3, "{ctx}");
    let (m, s, r) = (&rows[0], &rows[1], &rows[2]);
    assert!(field_u64(m, "count") > 10, "{ctx}");
    assert_eq!(field_u64(m, "min"), mss, "mss min != ss mss{ctx}");
    assert_eq!(field_u64(m, "max"), mss, "mss max != ss mss{ctx}");
    assert_eq!(field_u64(s, "count"), field_u64(m, "count"), "{ctx}");
    // ss prints srtt in ms with three decimals, i.e. whole microseconds
    // like tcpq; allow one for rounding.
    let rtt_us = rtt_ms * 1000.0;
    let (lo, hi) = (field_u64(s, "min") as f64, field_u64(s, "max") as f64);
    assert!(
        lo - 1.0 <= rtt_us && rtt_us <= hi + 1.0,
        "ss rtt {rtt_us}us outside tcpq's srtt range [{lo}, {hi}]{ctx}"
    );
    // rto: the kernel keeps jiffies, ss prints jiffies_to_usecs / 1000 and
    // tcpq converts with the HZ it found; on a sub-millisecond path it sits
    // at the 200 ms floor plus a few jiffies, the same before and after the
    // last send.
    let rto_ms = ss_rto(&ss, port).unwrap_or_else(|| panic!("no rto for :{port} in\n{ss}"));
    let rto_us = rto_ms * 1000.0;
    let (rlo, rhi) = (field_u64(r, "min") as f64, field_u64(r, "max") as f64);
    assert!(
        rlo <= rto_us && rto_us <= rhi,
        "ss rto {rto_us}us outside tcpq's rto range [{rlo}, {rhi}]{ctx}"
    );
    assert!(rlo >= 200_000.0, "rto below the kernel's 200 ms floor{ctx}");
    eprintln!(
        "socket stats: mss {mss} == ss, ss rtt {rtt_us}us in [{lo}, {hi}]us, \
         ss rto {rto_us}us in [{rlo}, {rhi}]us"
    );
}

/// Unix milliseconds of tcpq's `2024-06-04T15:21:04.123Z` (RFC 3339, UTC,
/// milliseconds); `None` for anything else.
fn rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 24 || &s[23..] != "Z" || b[4] != b'-' || b[10] != b'T' || b[19] != b'.' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss, ms) = (n(11..13)?, n(14..16)?, n(17..19)?, n(20..23)?);
    // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000 + ms)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The stamps of an `every` run, (interval, unix ms) in output order: the
/// JSON records' `interval` and `time`, or the text banners
/// `@ TIME interval N`. Checks that intervals count 1, 2, ... and that the
/// times increase, lie within the run and are `every_ms` apart (loosely:
/// the VM is shared), the last one (at exit) at most that.
fn check_stamps(stamps: &[(u64, i64)], every_ms: i64, run: (i64, i64), ctx: &str) {
    assert!(stamps.len() >= 4, "too few intervals{ctx}");
    for (i, (n, t)) in stamps.iter().enumerate() {
        assert_eq!(*n, i as u64 + 1, "interval numbers{ctx}");
        assert!(
            run.0 <= *t && *t <= run.1,
            "interval {n} at {t} outside the run {run:?}{ctx}"
        );
    }
    let gaps: Vec<i64> = stamps.windows(2).map(|w| w[1].1 - w[0].1).collect();
    let (last, full) = gaps.split_last().unwrap();
    for g in full {
        assert!(
            every_ms / 2 <= *g && *g <= every_ms * 3,
            "intervals {gaps:?} ms apart, not ~{every_ms}{ctx}"
        );
    }
    let mean = full.iter().sum::<i64>() / full.len() as i64;
    assert!(
        (every_ms * 8 / 10..=every_ms * 13 / 10).contains(&mean),
        "intervals {mean} ms apart on average, not ~{every_ms}: {gaps:?}{ctx}"
    );
    assert!(
        (0..=every_ms * 3).contains(last),
        "the last interval (at exit) {last} ms after the one before{ctx}"
    );
    // The first interval ends `every_ms` after attaching: no earlier.
    assert!(
        stamps[0].1 - run.0 >= every_ms - 5,
        "first interval too early{ctx}"
    );
}

/// `every 200ms`, live: each interval's block says when it was read (JSON
/// `time`, text banner), the times step by the interval, and the sums of
/// the intervals add up to the run's total, the bytes the writer sent.
#[kernel_test]
fn every_intervals_are_stamped_with_the_wall_clock() {
    assert_eq!(
        rfc3339_ms("2024-06-04T15:21:04.123Z"),
        Some(1_717_514_464_123)
    );
    assert_eq!(
        rfc3339_ms("2000-02-29T00:00:00.000Z"),
        Some(951_782_400_000)
    );
    let pair = NetnsPair::new();
    let port = pair.port();
    let dir = TempDir::new("kevery");
    let every = format!("on tcp_sendmsg where dport == {port} sum size every 200ms");
    let json_program = format!("{every}\non tcp_sendmsg where dport == {port} sum size");
    let started = now_ms();
    let mut json = Tcpq::spawn(&["-e", &json_program, "--format", "json"]);
    let mut text = Tcpq::spawn(&["-e", &every]);
    json.wait_attached(Duration::from_secs(10));
    text.wait_attached(Duration::from_secs(10));
    // A slow reader spreads the writer's sends over about a second.
    let server_args = [
        "--read-size",
        "16384",
        "--read-delay-ms",
        "15",
        "--max-seconds",
        "8",
    ];
    let client_args = ["--max-seconds", "8"];
    let (wlog, _) = transfer(&pair, port, 1 << 20, &server_args, &client_args, dir.path());
    std::thread::sleep(Duration::from_millis(500));
    let (jstatus, jout, jerr) = json.stop(Duration::from_secs(5));
    let (tstatus, tout, terr) = text.stop(Duration::from_secs(5));
    let stopped = now_ms();
    assert!(jstatus.success(), "{jstatus}\n{jerr}");
    assert!(tstatus.success(), "{tstatus}\n{terr}");
    assert_eq!(wlog.bytes(), 1 << 20, "writer {wlog:?}");

    // JSON: one record per interval (no keys: a total, even when zero),
    // then the other clause's total at exit.
    let jctx = format!("\ntcpq {json_program:?}:\n{jout}\n{jerr}");
    let rows = json_lines(&jout);
    let (stamped, total): (Vec<&Value>, Vec<&Value>) =
        rows.iter().partition(|r| r.get("interval").is_some());
    let stamps: Vec<(u64, i64)> = stamped
        .iter()
        .map(|r| {
            let t = r["time"]
                .as_str()
                .unwrap_or_else(|| panic!("no time in {r}{jctx}"));
            let ms = rfc3339_ms(t).unwrap_or_else(|| panic!("time {t:?} is not RFC 3339{jctx}"));
            (field_u64(r, "interval"), ms)
        })
        .collect();
    check_stamps(&stamps, 200, (started, stopped), &jctx);
    assert_eq!(total.len(), 1, "{jctx}");
    assert!(
        total[0].get("time").is_none(),
        "a total is not stamped{jctx}"
    );
    let summed: u64 = stamped.iter().map(|r| field_u64(r, "sum")).sum();
    assert_eq!(
        summed,
        field_u64(total[0], "sum"),
        "intervals != total{jctx}"
    );
    assert!(summed >= 1 << 20, "sent 1 MiB, asked {summed}{jctx}");

    // Text: a banner opens each interval's block.
    let tctx = format!("\ntcpq {every:?}:\n{tout}\n{terr}");
    let stamps: Vec<(u64, i64)> = tout
        .lines()
        .filter_map(|l| l.strip_prefix("@ "))
        .map(|b| {
            let (t, n) = b
                .split_once(" interval ")
                .unwrap_or_else(|| panic!("banner {b:?}{tctx}"));
            let ms = rfc3339_ms(t).unwrap_or_else(|| panic!("time {t:?} is not RFC 3339{tctx}"));
            (n.parse().unwrap(), ms)
        })
        .collect();
    check_stamps(&stamps, 200, (started, stopped), &tctx);
    let blocks = tout.lines().filter(|l| l.trim() == "sum").count();
    assert_eq!(blocks, stamps.len(), "one table per banner{tctx}");
    eprintln!(
        "every: {} JSON and {} text intervals, 200 ms apart, summing to {summed} bytes",
        stamped.len(),
        stamps.len()
    );
}

/// `ret` of `tcp_sendmsg` is signed: `stats`, `sum`, `hist` and `lhist` of
/// it, live, against the returns the writer itself saw. The writer's sends
/// return negative errnos as well as byte counts (the generator's
/// `--fill`): a non-blocking socket to a reader that does not read yet
/// fills its buffer (sends of 64 KiB, some partial, then -EAGAIN, five
/// times), and after `shutdown(SHUT_WR)` every send is -EPIPE (three). Its
/// log has each send's return, what `sock_sendmsg` returned: tcpq's `ret`.
/// The least value is -EPIPE, the sum counts the errnos negative, and the
/// negative returns land in the histograms' `(..., 0)` and `[-4K, 0)`
/// buckets.
#[kernel_test]
fn signed_values_aggregate_against_the_writers_returns() {
    let pair = NetnsPair::new();
    let port = pair.port();
    let dir = TempDir::new("ksigned");
    let on = format!("on tcp_sendmsg where dport == {port}");
    let programs = [
        format!("{on} stats ret"),
        format!("{on} sum ret"),
        format!("{on} hist ret"),
        format!("{on} lhist ret, -4KiB, 64KiB, 4KiB"),
    ];
    let mut runs: Vec<Tcpq> = programs
        .iter()
        .map(|p| Tcpq::spawn(&["-e", p, "--format", "json"]))
        .collect();
    for t in &mut runs {
        t.wait_attached(Duration::from_secs(10));
    }
    let mut server = Server::start(
        &pair.srv,
        IpAddr::V4(pair.srv_v4()),
        port,
        &["--idle-before-read", "3", "--max-seconds", "6"],
        dir.path(),
    );
    // 64 MiB: a bound far above what the socket buffers take before the
    // first -EAGAIN (under 1 MiB here).
    let mut writer = Client::start(
        &pair.cli,
        IpAddr::V4(pair.srv_v4()),
        port,
        64 << 20,
        &["--fill", "5,3,50", "--max-seconds", "6"],
        dir.path(),
    );
    let wlog = writer.wait(Duration::from_secs(10));
    server.wait(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(200));
    let outs: Vec<String> = runs
        .iter_mut()
        .map(|t| {
            let (status, out, err) = t.stop(Duration::from_secs(5));
            assert!(status.success(), "{:?}: {status}\n{err}", t.args);
            out
        })
        .collect();
    let rets: Vec<i64> = wlog
        .all("send")
        .iter()
        .map(|e| {
            e["ret"]
                .as_i64()
                .unwrap_or_else(|| panic!("a send without its return: {e}"))
        })
        .collect();
    let ctx = |i: usize| {
        format!(
            "\nwriter's returns: {rets:?}\ntcpq {:?}:\n{}",
            programs[i], outs[i]
        )
    };
    assert!(rets.contains(&-11) && rets.contains(&-32), "{}", ctx(0));
    let n = rets.len() as u64;
    let sum: i64 = rets.iter().sum();
    let (min, max) = (*rets.iter().min().unwrap(), *rets.iter().max().unwrap());
    let int = |row: &Value, k: &str| {
        row[k]
            .as_i64()
            .unwrap_or_else(|| panic!("no signed `{k}` in {row}"))
    };

    let rows = json_lines(&outs[0]);
    assert_eq!(rows.len(), 1, "{}", ctx(0));
    assert_eq!(field_u64(&rows[0], "count"), n, "{}", ctx(0));
    assert_eq!(int(&rows[0], "min"), min, "min ret{}", ctx(0));
    assert_eq!(int(&rows[0], "max"), max, "max ret{}", ctx(0));
    assert_eq!(
        int(&rows[0], "avg"),
        sum.div_euclid(n as i64),
        "avg ret (rounded down){}",
        ctx(0)
    );
    let rows = json_lines(&outs[1]);
    assert_eq!(int(&rows[0], "sum"), sum, "sum ret{}", ctx(1));

    // hist: every negative return in (..., 0), the others by power of two.
    let mut want: BTreeMap<(Option<i64>, Option<i64>), u64> = BTreeMap::new();
    for &r in &rets {
        let b = match r {
            r if r < 0 => (None, Some(-1)),
            0 => (Some(0), Some(0)),
            r => {
                let k = 63 - r.leading_zeros() as i64;
                (Some(1 << k), Some((2 << k) - 1))
            }
        };
        *want.entry(b).or_default() += 1;
    }
    let signed_buckets = |row: &Value| -> BTreeMap<(Option<i64>, Option<i64>), u64> {
        row["buckets"]
            .as_array()
            .unwrap_or_else(|| panic!("no buckets in {row}"))
            .iter()
            .map(|b| {
                (
                    (b["min"].as_i64(), b["max"].as_i64()),
                    b["count"].as_u64().unwrap(),
                )
            })
            .filter(|(_, c)| *c > 0)
            .collect()
    };
    let rows = json_lines(&outs[2]);
    assert_eq!(rows.len(), 1, "{}", ctx(2));
    assert_eq!(signed_buckets(&rows[0]), want, "hist ret{}", ctx(2));

    // lhist -4KiB..64KiB by 4KiB: the errnos in [-4096, -1], 64 KiB sends
    // at or above MAX.
    let mut want: BTreeMap<(Option<i64>, Option<i64>), u64> = BTreeMap::new();
    for &r in &rets {
        let b = if r >= 65536 {
            (Some(65536), None)
        } else {
            let lo = r.div_euclid(4096) * 4096;
            (Some(lo), Some(lo + 4095))
        };
        *want.entry(b).or_default() += 1;
    }
    let rows = json_lines(&outs[3]);
    assert_eq!(rows.len(), 1, "{}", ctx(3));
    assert_eq!(signed_buckets(&rows[0]), want, "lhist ret{}", ctx(3));
    eprintln!(
        "signed: {n} sends (least {min}, greatest {max}, sum {sum}): stats/sum/hist/lhist of ret \
         agree with the writer"
    );
}

/// `avg`, `min`, `max` and `count ... top N` of `tcp_sendmsg` sizes against
/// the writers' own logs: three writers (distinct comms) make 3, 2 and 1
/// connections and send 1000, 3000 and 500 bytes on each, one send call
/// per connection (the socket's buffer takes it whole).
#[kernel_test]
fn avg_min_max_and_top_match_the_writers() {
    let pair = NetnsPair::new();
    let port = pair.port();
    let dir = TempDir::new("avgtop");
    let program = format!(
        "on tcp_sendmsg where dport == {port} avg size\n\
         on tcp_sendmsg where dport == {port} min size\n\
         on tcp_sendmsg where dport == {port} max size\n\
         on tcp_sendmsg where dport == {port} count by comm top 2"
    );
    let mut tcpq = Tcpq::spawn(&["-e", &program, "--format", "json"]);
    tcpq.wait_attached(Duration::from_secs(10));
    let mut server = Server::start(
        &pair.srv,
        IpAddr::V4(pair.srv_v4()),
        port,
        &["--accept", "6", "--max-seconds", "20"],
        dir.path(),
    );
    let writers = [
        ("w-three", 3, 1000u64),
        ("w-two", 2, 3000),
        ("w-one", 1, 500),
    ];
    let mut sizes: Vec<u64> = Vec::new();
    let mut per_comm: Vec<(&str, u64)> = Vec::new();
    for (comm, n, bytes) in writers {
        let mut c = Client::start(
            &pair.cli,
            IpAddr::V4(pair.srv_v4()),
            port,
            bytes,
            &["--comm", comm, "--connections", &n.to_string()],
            dir.path(),
        );
        let log = c.wait(Duration::from_secs(10));
        let done: Vec<u64> = log
            .all("done")
            .iter()
            .map(|e| e["bytes"].as_u64().unwrap())
            .collect();
        assert_eq!(done, vec![bytes; n], "{comm}: {log:?}");
        sizes.extend(&done);
        per_comm.push((comm, n as u64));
    }
    server.wait(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(200));
    let (status, out, err) = tcpq.stop(Duration::from_secs(5));
    assert!(status.success(), "{status}\n{err}");
    let rows = json_lines(&out);
    let ctx = format!("\ntcpq:\n{out}\n{err}");
    let one = |key: &str| -> u64 {
        let r: Vec<&Value> = rows.iter().filter(|r| r.get(key).is_some()).collect();
        assert_eq!(r.len(), 1, "one `{key}` row{ctx}");
        field_u64(r[0], key)
    };
    let n = sizes.len() as u64;
    assert_eq!(one("avg"), sizes.iter().sum::<u64>() / n, "{ctx}");
    assert_eq!(one("min"), *sizes.iter().min().unwrap(), "{ctx}");
    assert_eq!(one("max"), *sizes.iter().max().unwrap(), "{ctx}");
    let counts: Vec<(String, u64)> = rows
        .iter()
        .filter(|r| r.get("comm").is_some())
        .map(|r| (field_str(r, "comm"), field_u64(r, "count")))
        .collect();
    per_comm.sort_by_key(|c| std::cmp::Reverse(c.1));
    let want: Vec<(String, u64)> = per_comm[..2]
        .iter()
        .map(|(c, k)| (c.to_string(), *k))
        .collect();
    assert_eq!(counts, want, "top 2 by count{ctx}");
}
