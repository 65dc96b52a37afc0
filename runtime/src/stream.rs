//! Streaming events and, at the end, printing in-kernel counts.
use std::{
    future::poll_fn,
    io::{self, Write},
    task::Poll,
    time::{Duration, SystemTime},
};

use tokio::time::Instant;

use aya::maps::{MapData, RingBuf};
use tcpq_abi::{AggKey, Event, MAX_KEY_SLOTS};

use crate::agg::{self, What};
use tcpq_dsl::plan::{Action, Column};
use tokio::io::{unix::AsyncFd, Interest};

use crate::{
    clock::{Clock, Zone},
    render::{decode, EventTable, Format, Names, Stamp, Stamps, Timebase, Value},
    session::{Attached, Session, SessionError, Stats},
};

/// How to run a session.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    pub format: Format,
    /// Stop after this long; `Some(ZERO)` detaches right after attaching.
    pub duration: Option<Duration>,
    /// Stamps in front of printed events (`-T`, `-t`).
    pub stamps: Stamps,
    /// Stop when this file descriptor becomes readable (`tcpq -c`: a pipe
    /// written once the command has exited). The caller keeps it open for
    /// the whole run.
    pub stop_fd: Option<std::os::fd::RawFd>,
}

/// Errors while streaming.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Writing the output failed (other than a closed pipe, which ends the
    /// run normally).
    #[error("cannot write output: {0}")]
    Output(#[source] io::Error),
    /// Waiting on the ring buffer or a signal failed.
    #[error("cannot wait for events: {0}")]
    Poll(#[source] io::Error),
    /// Reading the kernel-side maps at the end failed.
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// Why a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    Duration,
    Interrupt,
    Terminate,
    /// The reader of our output went away.
    OutputClosed,
    /// Every printing clause reached its `limit`.
    Limit,
    /// [`RunOptions::stop_fd`] became readable.
    StopFd,
}

/// A borrowed descriptor for `AsyncFd` (the caller owns it).
struct Watched(std::os::fd::RawFd);

impl std::os::fd::AsRawFd for Watched {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0
    }
}

/// What happened during a run.
#[derive(Debug)]
pub struct RunReport {
    pub stop: StopReason,
    /// Events printed.
    pub events: u64,
    /// Per clause: probe name and counters.
    pub stats: Vec<(String, Stats)>,
}

impl RunReport {
    /// Lines for stderr: lost events and a full aggregation map.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (probe, s) in &self.stats {
            if s.lost > 0 {
                out.push(format!(
                    "{} events lost (ring buffer full){}",
                    s.lost,
                    self.suffix(probe)
                ));
            }
            if s.missed > 0 {
                out.push(format!(
                    "{} probe runs skipped by the kernel (another run of the same program was \
                     active on that CPU){}",
                    s.missed,
                    self.suffix(probe)
                ));
            }
            if s.agg_full > 0 {
                out.push(format!(
                    "{} events not counted (aggregation map full){}",
                    s.agg_full,
                    self.suffix(probe)
                ));
            }
        }
        out
    }

    /// The run's accounting as one JSON object, for `--format json` (on
    /// stderr): `{"tcpq":"summary","events":M,"lost":N,...,"clauses":[...]}`.
    /// `events` is what was printed; `lost`, `missed` and `not_counted`
    /// are summed over clauses, and each clause has its own counters.
    pub fn summary_json(&self) -> String {
        let sum = |f: fn(&Stats) -> u64| self.stats.iter().map(|(_, s)| f(s)).sum::<u64>();
        crate::render::to_json(&SummaryJson {
            tcpq: "summary",
            events: self.events,
            lost: sum(|s| s.lost),
            missed: sum(|s| s.missed),
            not_counted: sum(|s| s.agg_full),
            clauses: self
                .stats
                .iter()
                .map(|(probe, s)| ClauseSummaryJson {
                    probe,
                    matched: s.matched,
                    lost: s.lost,
                    missed: s.missed,
                    not_counted: s.agg_full,
                })
                .collect(),
        })
    }

    fn suffix(&self, probe: &str) -> String {
        if self.stats.len() > 1 {
            format!(" in {probe}")
        } else {
            String::new()
        }
    }
}

/// [`RunReport::summary_json`]'s line; fields in this order ("tcpq" first).
#[derive(serde::Serialize)]
struct SummaryJson<'a> {
    tcpq: &'static str,
    events: u64,
    lost: u64,
    missed: u64,
    not_counted: u64,
    clauses: Vec<ClauseSummaryJson<'a>>,
}

#[derive(serde::Serialize)]
struct ClauseSummaryJson<'a> {
    probe: &'a str,
    matched: u64,
    lost: u64,
    missed: u64,
    not_counted: u64,
}

/// The event loop and the stop signals, set up before anything is
/// attached: from [`Runner::new`] on, Ctrl-C and SIGTERM no longer kill
/// the process but end the run cleanly (detach, print counts), even if
/// they arrive while probes are still being attached.
pub struct Runner {
    rt: tokio::runtime::Runtime,
    signals: Signals,
}

struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Runner {
    pub fn new() -> Result<Runner, StreamError> {
        use tokio::signal::unix::{signal, SignalKind};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(StreamError::Poll)?;
        let signals = {
            let _guard = rt.enter();
            Signals {
                int: signal(SignalKind::interrupt()).map_err(StreamError::Poll)?,
                term: signal(SignalKind::terminate()).map_err(StreamError::Poll)?,
            }
        };
        Ok(Runner { rt, signals })
    }

    /// Stream until Ctrl-C, SIGTERM or the duration; then print counts.
    pub fn run(
        &mut self,
        session: &mut Session,
        opts: RunOptions,
        out: &mut dyn Write,
    ) -> Result<RunReport, StreamError> {
        let Runner { rt, signals } = self;
        rt.block_on(run(session, signals, opts, out))
    }
}

/// [`Runner::new`] then [`Runner::run`], for callers with nothing to do
/// between them.
pub fn run_blocking(
    session: &mut Session,
    opts: RunOptions,
    out: &mut dyn Write,
) -> Result<RunReport, StreamError> {
    Runner::new()?.run(session, opts, out)
}

struct Printer {
    /// Per clause with events: its table.
    tables: Vec<Option<EventTable>>,
    /// Prefix rows with the probe name (several clauses).
    prefixed: bool,
    /// Per clause: events printed so far (for `limit`).
    printed: Vec<u64>,
    /// Per clause: intervals printed so far (for `every`).
    intervals: Vec<u64>,
    /// Rows read from the ring buffers, not yet written: one buffer for
    /// every row, written out in large writes ([`OUT_CHUNK`]).
    rows: Vec<u8>,
}

/// Rows are written out once this many bytes have gathered (and at the
/// end of every read of a ring buffer).
const OUT_CHUNK: usize = 64 << 10;

/// After a read of the ring buffers that printed events, wait this long
/// before waiting for more: the events that arrive meanwhile are read in
/// one go, so a busy stream costs one wakeup per batch, not per event
/// (measured under 1 M events/s: 0.08 wakeups per event without the
/// pause). A quiet stream is not delayed: an event that finds the buffers
/// empty still wakes the reader at once. The pause is short against the
/// default buffer: 1 MiB holds ~1,950 events, ~2 ms at 1 M/s.
const BATCH_PAUSE: Duration = Duration::from_micros(250);

/// Stream until stopped, then print counts.
async fn run(
    session: &mut Session,
    signals: &mut Signals,
    opts: RunOptions,
    out: &mut dyn Write,
) -> Result<RunReport, StreamError> {
    let prefixed = session.clauses.len() > 1;
    let mut printer = Printer {
        tables: Vec::new(),
        prefixed,
        printed: vec![0; session.clauses.len()],
        intervals: vec![0; session.clauses.len()],
        rows: Vec::with_capacity(2 * OUT_CHUNK),
    };
    // Events' `time`: their ktime plus one offset, measured now.
    let base = Timebase {
        clock: Clock::measure(),
        zone: Zone::Local,
        start_ktime_ns: session.attach_ktime_ns,
    };
    for c in &session.clauses {
        printer.tables.push(match &c.plan.action {
            Action::Print { columns } => Some(EventTable::new(
                columns,
                prefixed.then_some(c.plan.probe.as_str()),
                opts.format,
                opts.stamps,
                base,
            )),
            Action::Count { .. } | Action::Aggregate { .. } => None,
        });
    }

    let mut stop = StopReason::Duration;
    let mut events = 0u64;
    let zero = opts.duration == Some(Duration::ZERO);
    if !zero {
        for t in printer.tables.iter().flatten() {
            if let Some(h) = t.header() {
                if write_line(out, &h)? {
                    stop = StopReason::OutputClosed;
                }
            }
        }
        flush(out)?;
    }
    if !zero && stop != StopReason::OutputClosed {
        // Take the ring buffers out so the sessions' maps stay borrowable.
        let mut rings: Vec<(usize, AsyncFd<RingBuf<MapData>>)> = Vec::new();
        for (i, c) in session.clauses.iter_mut().enumerate() {
            if let Some(rb) = c.events.take() {
                // SAFETY: the RingBuf owns its map fd and keeps it open
                // until `into_inner` hands it back below; nothing else
                // closes or replaces it meanwhile.
                let fd = unsafe { AsyncFd::register_with_interest(rb, Interest::READABLE) }
                    .map_err(|e| StreamError::Poll(e.into_parts().1))?;
                rings.push((i, fd));
            }
        }
        let result = pump(
            session,
            &mut rings,
            signals,
            &mut printer,
            opts,
            out,
            &mut events,
        )
        .await;
        // Give the ring buffers back: they belong to the session.
        for (i, fd) in rings {
            session.clauses[i].events = Some(fd.into_inner());
        }
        stop = result?;
    }

    if stop != StopReason::OutputClosed {
        for (i, c) in session.clauses.iter_mut().enumerate() {
            if c.plan.action.is_print() {
                continue;
            }
            // What remains at exit is the last interval, stamped like the
            // others.
            let stamp = c.plan.output.every_ms.map(|_| Stamp {
                interval: printer.intervals.get(i).copied().unwrap_or(0) + 1,
                time: SystemTime::now(),
            });
            let data = if stamp.is_some() {
                c.take_aggregates()?
            } else {
                c.aggregates()?
            };
            if print_aggregation(c, &data, prefixed, stamp, opts.format, &session.names, out)? {
                break;
            }
        }
        flush(out)?;
    }

    let mut stats = Vec::new();
    for c in &session.clauses {
        stats.push((c.plan.probe.clone(), c.stats()?));
    }
    Ok(RunReport {
        stop,
        events,
        stats,
    })
}

async fn pump(
    session: &mut Session,
    rings: &mut [(usize, AsyncFd<RingBuf<MapData>>)],
    signals: &mut Signals,
    printer: &mut Printer,
    opts: RunOptions,
    out: &mut dyn Write,
    events: &mut u64,
) -> Result<StopReason, StreamError> {
    let sleep = async {
        match opts.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep);
    let stop_fd = match opts.stop_fd {
        // SAFETY: the caller keeps `fd` open for the whole run (see
        // `RunOptions::stop_fd`); it is only polled, never read or closed.
        Some(fd) => Some(
            unsafe { AsyncFd::register_with_interest(Watched(fd), Interest::READABLE) }
                .map_err(|e| StreamError::Poll(e.into_parts().1))?,
        ),
        None => None,
    };
    let stop_requested = async {
        match &stop_fd {
            Some(fd) => {
                let _ = fd.readable().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stop_requested);
    // `every DUR`: when each aggregation clause prints next.
    let start = Instant::now();
    let mut due: Vec<Option<Instant>> = session
        .clauses
        .iter()
        .map(|c| {
            c.plan
                .output
                .every_ms
                .map(|ms| start + Duration::from_millis(ms))
        })
        .collect();
    let far = start + Duration::from_secs(365 * 24 * 3600);

    loop {
        let next = due.iter().flatten().min().copied().unwrap_or(far);
        let ready = poll_fn(|cx| {
            for (k, (_, fd)) in rings.iter().enumerate() {
                match fd.poll_read_ready(cx) {
                    Poll::Ready(Ok(mut guard)) => {
                        guard.clear_ready();
                        return Poll::Ready(Ok(k));
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
            Poll::Pending
        });
        let stop = tokio::select! {
            r = ready => {
                let k = r.map_err(StreamError::Poll)?;
                let (i, fd) = &mut rings[k];
                let before = *events;
                let closed = drain(session, *i, fd.get_mut(), printer, out, events)?;
                if *events > before && !closed {
                    // Let the next events gather (see BATCH_PAUSE). A
                    // blocking sleep: signals and timers wait for it.
                    std::thread::sleep(BATCH_PAUSE);
                }
                // The first event of a clause that prints the owner: from
                // now on, learn who uses each socket (the plan's `owner_io`).
                if *events > before && session.has_deferred() && session.clauses[*i].plan.uses_owner() {
                    session.attach_deferred()?;
                }
                if closed {
                    Some(StopReason::OutputClosed)
                } else if printer.limits_reached(session) {
                    Some(StopReason::Limit)
                } else {
                    None
                }
            }
            _ = tokio::time::sleep_until(next) => {
                let now = Instant::now();
                let mut closed = false;
                for (i, d) in due.iter_mut().enumerate() {
                    let (Some(at), Some(ms)) = (*d, session.clauses[i].plan.output.every_ms) else {
                        continue;
                    };
                    if at > now {
                        continue;
                    }
                    *d = Some(at + Duration::from_millis(ms));
                    let c = &mut session.clauses[i];
                    printer.intervals[i] += 1;
                    let stamp = Stamp { interval: printer.intervals[i], time: SystemTime::now() };
                    let data = c.take_aggregates()?;
                    if print_aggregation(c, &data, printer.prefixed, Some(stamp), opts.format, &session.names, out)? {
                        closed = true;
                        break;
                    }
                }
                flush(out)?;
                closed.then_some(StopReason::OutputClosed)
            }
            _ = signals.int.recv() => Some(StopReason::Interrupt),
            _ = signals.term.recv() => Some(StopReason::Terminate),
            _ = &mut sleep => Some(StopReason::Duration),
            _ = &mut stop_requested => Some(StopReason::StopFd),
        };
        if let Some(stop) = stop {
            if stop != StopReason::OutputClosed && stop != StopReason::Limit {
                // Print what arrived before the stop.
                for (i, fd) in rings.iter_mut() {
                    if drain(session, *i, fd.get_mut(), printer, out, events)? {
                        return Ok(StopReason::OutputClosed);
                    }
                }
            }
            return Ok(stop);
        }
    }
}

/// Print every queued event of one clause. Returns true when the output
/// was closed.
impl Printer {
    /// Whether the run is over by `limit`: every clause prints, has a
    /// `limit` and has reached it. (With an aggregation in the program the
    /// run goes on; a clause past its limit prints nothing more.)
    fn limits_reached(&self, session: &Session) -> bool {
        let mut any = false;
        for (i, c) in session.clauses.iter().enumerate() {
            if !c.plan.action.is_print() {
                return false;
            }
            match c.plan.output.limit {
                Some(n) if self.printed[i] >= n => any = true,
                _ => return false,
            }
        }
        any
    }
}

fn drain(
    session: &Session,
    clause: usize,
    rb: &mut RingBuf<MapData>,
    printer: &mut Printer,
    out: &mut dyn Write,
    events: &mut u64,
) -> Result<bool, StreamError> {
    let Some(table) = printer.tables.get(clause).and_then(Option::as_ref) else {
        return Ok(false);
    };
    let limit = session.clauses[clause]
        .plan
        .output
        .limit
        .unwrap_or(u64::MAX);
    let rows = &mut printer.rows;
    while let Some(item) = rb.next() {
        let Some(ev) = decode_event(&item) else {
            continue;
        };
        drop(item);
        if printer.printed[clause] >= limit {
            continue;
        }
        *events += 1;
        printer.printed[clause] += 1;
        table.write_row(&ev, &session.names, rows);
        if rows.len() >= OUT_CHUNK && write_rows(out, rows)? {
            return Ok(true);
        }
    }
    if write_rows(out, rows)? {
        return Ok(true);
    }
    flush(out).map(|()| false)
}

/// Write the gathered rows and empty the buffer; true when the reader
/// has gone (EPIPE).
fn write_rows(out: &mut dyn Write, rows: &mut Vec<u8>) -> Result<bool, StreamError> {
    let r = out.write_all(rows);
    rows.clear();
    match r {
        Ok(()) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(true),
        Err(e) => Err(StreamError::Output(e)),
    }
}

/// An event record from ring buffer bytes; `None` if too short.
pub fn decode_event(bytes: &[u8]) -> Option<Event> {
    if bytes.len() < std::mem::size_of::<Event>() {
        return None;
    }
    // SAFETY: the length was checked; Event is #[repr(C)] plain integers,
    // valid for any bit pattern; read_unaligned needs no alignment.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<Event>()) })
}

/// The rows of a `count` clause: key columns' values and the count;
/// `names` as for [`decode`].
pub fn count_rows(keys: &[Column], counts: &[(AggKey, u64)], names: &Names) -> Vec<Vec<Value>> {
    if keys.is_empty() {
        let total: u64 = counts.iter().map(|(_, n)| n).sum();
        return vec![vec![Value::Uint(total)]];
    }
    counts
        .iter()
        .map(|(k, n)| {
            let mut pos = 0usize;
            let mut row = Vec::with_capacity(keys.len() + 1);
            for c in keys {
                let end = (pos + c.slots.len()).min(MAX_KEY_SLOTS);
                row.push(decode(c.ty, &k.vals[pos.min(end)..end], names));
                pos = end;
            }
            row.push(Value::Uint(*n));
            row
        })
        .collect()
}

/// Print one aggregation clause's results. Returns true when the output
/// was closed.
fn print_aggregation(
    c: &Attached,
    data: &[(AggKey, agg::Agg)],
    prefixed: bool,
    stamp: Option<Stamp>,
    format: Format,
    names: &Names,
    out: &mut dyn Write,
) -> Result<bool, StreamError> {
    let (what, keys) = match &c.plan.action {
        Action::Print { .. } => return Ok(false),
        Action::Count { keys } => (What::Count, keys),
        Action::Aggregate { func, value, keys } => (What::Func(*func, value), keys),
    };
    let mut extra = Vec::new();
    if prefixed {
        extra.push(("probe".to_owned(), Value::Str(c.plan.probe.clone())));
    }
    let top = c.plan.output.top;
    for line in agg::lines(keys, what, data, top, stamp, &extra, format, names) {
        if write_line(out, &line)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Write one line; true when the reader has gone (EPIPE).
fn write_line(out: &mut dyn Write, line: &str) -> Result<bool, StreamError> {
    match writeln!(out, "{line}") {
        Ok(()) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(true),
        Err(e) => Err(StreamError::Output(e)),
    }
}

fn flush(out: &mut dyn Write) -> Result<(), StreamError> {
    match out.flush() {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(StreamError::Output(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::Table;
    use tcpq_dsl::plan::{FieldType, Unit};

    #[test]
    fn count_rows_split_keys_by_slot_count() {
        let keys = vec![
            Column {
                name: "comm".into(),
                ty: FieldType::Comm,
                slots: vec![1, 2],
                source: Default::default(),
                scale: None,
                labels: None,
            },
            Column {
                name: "dport".into(),
                ty: FieldType::Port,
                slots: vec![12],
                source: Default::default(),
                scale: None,
                labels: None,
            },
        ];
        let mut k = AggKey::default();
        let w = tcpq_abi::comm_words(b"curl\0\0\0\0\0\0\0\0\0\0\0\0");
        k.vals[0] = w[0];
        k.vals[1] = w[1];
        k.vals[2] = 443;
        let rows = count_rows(&keys, &[(k, 7)], &Names::default());
        assert_eq!(
            rows,
            vec![vec![
                Value::Str("curl".into()),
                Value::Uint(443),
                Value::Uint(7)
            ]]
        );
        let t = Table::new(&keys, &["count"], Format::Json);
        assert_eq!(t.row(&rows[0]), r#"{"comm":"curl","dport":443,"count":7}"#);
    }

    #[test]
    fn count_without_keys_is_one_total() {
        let rows = count_rows(
            &[],
            &[(AggKey::default(), 3), (AggKey::default(), 2)],
            &Names::default(),
        );
        assert_eq!(rows, vec![vec![Value::Uint(5)]]);
        let rows = count_rows(&[], &[], &Names::default());
        assert_eq!(rows, vec![vec![Value::Uint(0)]]);
        let t = Table::new(&[], &["count"], Format::Json);
        assert_eq!(t.row(&rows[0]), r#"{"count":0}"#);
        let _ = Unit::None;
    }

    #[test]
    fn the_json_summary_is_one_object_naming_itself() {
        let r = RunReport {
            stop: StopReason::Interrupt,
            events: 5,
            stats: vec![
                (
                    "a\"b".into(),
                    Stats {
                        matched: 8,
                        lost: 3,
                        ..Stats::default()
                    },
                ),
                (
                    "c".into(),
                    Stats {
                        lost: 1,
                        agg_full: 2,
                        ..Stats::default()
                    },
                ),
            ],
        };
        let line = r.summary_json();
        assert!(line.starts_with(r#"{"tcpq":"summary","#), "{line}");
        assert_eq!(
            line,
            r#"{"tcpq":"summary","events":5,"lost":4,"missed":0,"not_counted":2,"clauses":[{"probe":"a\"b","matched":8,"lost":3,"missed":0,"not_counted":0},{"probe":"c","matched":0,"lost":1,"missed":0,"not_counted":2}]}"#
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["events"], 5);
        assert_eq!(v["lost"], 4);
        assert_eq!(v["not_counted"], 2);
        assert_eq!(v["clauses"][0]["probe"], "a\"b");
        assert_eq!(v["clauses"][0]["matched"], 8);
    }

    #[test]
    fn short_records_are_skipped() {
        assert!(decode_event(&[0u8; 10]).is_none());
        let mut b = vec![0u8; std::mem::size_of::<Event>()];
        b[0] = 42;
        b[16 + 8 * 3] = 7;
        let e = decode_event(&b).unwrap();
        assert_eq!(e.ktime_ns, 42);
        assert_eq!(e.vals[3], 7);
    }
}
