//! `tcpq counters`: the kernel's own SNMP/netstat counters, like `nstat`,
//! per network namespace, as deltas over `--duration` or `--every`, with
//! what each TCP counter means beside it.
//!
//! The reading, naming, selection and meanings live in
//! `tcpq_runtime::counters`; this is the command line and the rendering.
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde::Serialize;
use tcpq_runtime::counters::{self, Reading, Stop, WatchOptions};
use tcpq_runtime::netns::{self, Pinned};
use tcpq_runtime::render::{rfc3339_millis, to_json, Stamp, Value};

use crate::{OutputFormat, EXIT_USAGE};

#[derive(Args, Debug)]
#[command(
    about = "Show the kernel's TCP counters (like nstat), per network namespace, with what each one means",
    long_about = "Show the kernel's SNMP and netstat counters (/proc/net/snmp, netstat, snmp6: \
                  what nstat shows, named as nstat names them), per network namespace.\n\n\
                  Without --duration or --every: the absolute values now, once (like `nstat -a`). \
                  With --duration DUR: what moved during DUR (one reading at the start, one at the \
                  end; Ctrl-C or SIGTERM ends it early and still prints what moved so far). With \
                  --every DUR: what moved in each interval, each stamped with its wall-clock time \
                  and number, until --duration or Ctrl-C.\n\n\
                  Only counters that are not zero are shown (like nstat); -z shows them all. Each \
                  TCP counter is printed with its meaning; `tcpq counters --explain [NAME...]` \
                  explains them at length (every TCP counter without NAME).",
    after_help = "Examples:\n  tcpq counters --duration 10s\n  tcpq counters TCPToZeroWindowAdv TCPWinProbe RetransSegs --every 1s\n  tcpq counters '*Retrans*' --netns web --duration 30s --format json\n  tcpq counters --explain TCPToZeroWindowAdv\n  tcpq counters --explain            (every TCP counter, one line each)"
)]
pub struct CountersArgs {
    /// Counters to show: names as nstat prints them (`TcpExtTCPToZeroWindowAdv`),
    /// names without their group in any case (`TCPToZeroWindowAdv`,
    /// `retranssegs`; Tcp and TcpExt win when several groups have one), or
    /// globs (`'*Retrans*'`). Default: every Tcp and TcpExt counter.
    #[arg(value_name = "NAME")]
    names: Vec<String>,

    /// Read the counters of this network namespace: an `ip netns` name,
    /// `host` (tcpq's own), a path to a namespace file, `pid:PID` or an
    /// inode (as probes print `netns`). Repeatable. Default: tcpq's own.
    #[arg(long = "netns", value_name = "NS")]
    netns: Vec<String>,

    /// Read every network namespace tcpq can open (`ip netns` names and
    /// those some process is in).
    #[arg(long, conflicts_with = "netns")]
    all_netns: bool,

    /// Print what moved during DUR (`5s`, `250ms`, `1m`), then exit.
    #[arg(long, value_name = "DUR", value_parser = crate::parse_duration)]
    duration: Option<Duration>,

    /// Print what moved in each interval of DUR, until --duration or Ctrl-C.
    #[arg(long, value_name = "DUR", value_parser = parse_every)]
    every: Option<Duration>,

    /// Show counters that are zero (did not move) too.
    #[arg(short = 'z', long = "zeros", visible_alias = "all")]
    zeros: bool,

    /// Explain the counters NAME select (without NAME: every TCP counter,
    /// one line each), from the kernel source, and exit.
    #[arg(long)]
    explain: bool,

    /// Output format: text, or one JSON object per namespace and interval.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

fn parse_every(s: &str) -> Result<Duration, String> {
    let d = crate::duration_flag(s, "--every")?;
    if d.is_zero() {
        return Err("an interval must be longer than 0".into());
    }
    Ok(d)
}

pub fn run(args: CountersArgs) -> anyhow::Result<ExitCode> {
    let json = matches!(args.format, OutputFormat::Json);
    // Names are checked against this kernel's own counters (tcpq's
    // namespace: every namespace of a host has the same set).
    let here = std::thread::spawn(counters::read_here)
        .join()
        .map_err(|_| anyhow::anyhow!("reading counters panicked"))??;
    let selected = match counters::select(&args.names, &here.counters) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tcpq: error: {e}");
            if matches!(e, counters::SelectError::Unknown { .. }) {
                eprintln!("tcpq: `tcpq counters --explain` lists the TCP counters; `tcpq counters -z '*'` shows every one");
            }
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    if args.explain {
        match explain(&selected, args.names.is_empty(), json) {
            // `| head` closed the pipe: that is the reader's choice.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            r => r?,
        }
        return Ok(ExitCode::SUCCESS);
    }

    let namespaces = match namespaces(&args) {
        Ok(n) => n,
        Err(Failure::Usage(m)) => {
            eprintln!("tcpq: error: {m}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
        Err(Failure::Runtime(e)) => return Err(e),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut printer = Printer {
        selected: &selected,
        zeros: args.zeros,
        json,
        namespaces: &namespaces,
        header_done: false,
        broken: false,
    };

    if args.duration.is_none() && args.every.is_none() {
        let readings: Vec<Reading> = namespaces
            .iter()
            .map(counters::read_in)
            .collect::<Result<_, _>>()
            .map_err(flat)?;
        printer.absolute(&readings, &mut out);
        let _ = out.flush();
        return Ok(ExitCode::SUCCESS);
    }

    let opts = WatchOptions {
        every: args.every,
        duration: args.duration,
    };
    let labels: Vec<String> = namespaces
        .iter()
        .map(|p| format!("{} (netns {})", p.ns.label(), p.ns.inode))
        .collect();
    let what = match (args.every, args.duration) {
        (Some(e), Some(d)) => format!(
            "; what moved every {} for {}",
            crate::show_duration(e),
            crate::show_duration(d)
        ),
        (Some(e), None) => format!("; what moved every {}", crate::show_duration(e)),
        (None, Some(d)) => format!("; what moved in {}", crate::show_duration(d)),
        (None, None) => String::new(),
    };
    let stop = counters::watch(
        &namespaces,
        opts,
        |_| {
            eprintln!(
                "tcpq: counters: first reading taken in {}{what}; Ctrl-C to stop",
                labels.join(", ")
            );
        },
        |iv| {
            let stamp = args.every.map(|_| Stamp {
                interval: iv.number,
                time: iv
                    .after
                    .first()
                    .map_or_else(std::time::SystemTime::now, |r| r.time),
            });
            printer.interval(&iv, stamp, &mut out);
            let _ = out.flush();
            !printer.broken
        },
    )
    .map_err(flat)?;
    if matches!(stop, Stop::Interrupt | Stop::Terminate) {
        eprintln!("tcpq: counters: stopped by a signal; the last interval ends there");
    }
    Ok(ExitCode::SUCCESS)
}

/// The error as one line: its message already names its cause (a namespace
/// error quotes the OS error), so anyhow's chain would say it twice.
fn flat(e: counters::CountersError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

enum Failure {
    Usage(String),
    Runtime(anyhow::Error),
}

/// The namespaces to read, each once, held open.
fn namespaces(args: &CountersArgs) -> Result<Vec<Pinned>, Failure> {
    let mut found: Vec<netns::Netns> = Vec::new();
    if args.all_netns {
        found = netns::list().map_err(|e| Failure::Runtime(e.into()))?;
    } else if args.netns.is_empty() {
        found.push(netns::find("host").map_err(|e| Failure::Runtime(e.into()))?);
    } else {
        for spec in &args.netns {
            let ns = netns::find(spec).map_err(|e| Failure::Usage(e.to_string()))?;
            if !found.iter().any(|n| n.inode == ns.inode) {
                found.push(ns);
            }
        }
    }
    let mut pinned = Vec::new();
    for ns in &found {
        match netns::pin(ns) {
            Ok(p) => pinned.push(p),
            // With --all-netns a process may exit between listing and
            // opening: skip its namespace, say so.
            Err(e) if args.all_netns => eprintln!("tcpq: note: skipped: {e}"),
            Err(e) => return Err(Failure::Runtime(e.into())),
        }
    }
    Ok(pinned)
}

struct Printer<'a> {
    selected: &'a [String],
    zeros: bool,
    json: bool,
    namespaces: &'a [Pinned],
    header_done: bool,
    /// stdout was closed (e.g. `| head`): stop.
    broken: bool,
}

impl Printer<'_> {
    fn line(&mut self, out: &mut dyn Write, s: &str) {
        if !self.broken && writeln!(out, "{s}").is_err() {
            self.broken = true;
        }
    }

    /// The selected counters of one namespace, in order, with their
    /// value, skipping zeros unless -z.
    fn rows<'v>(&self, values: &'v [(String, u64)]) -> Vec<&'v (String, u64)> {
        values
            .iter()
            .filter(|(n, v)| (self.zeros || *v != 0) && self.selected.contains(n))
            .collect()
    }

    fn absolute(&mut self, readings: &[Reading], out: &mut dyn Write) {
        for (p, r) in self.namespaces.iter().zip(readings) {
            let values: Vec<(String, u64)> = r
                .counters
                .iter()
                .map(|c| (c.name.clone(), c.value))
                .collect();
            let rows = self.rows(&values);
            if self.json {
                let line = to_json(&AbsoluteJson {
                    time: rfc3339_millis(r.time),
                    netns: p.ns.inode,
                    netns_label: p.ns.label(),
                    absolute: true,
                    counters: CountersJson(&rows),
                });
                self.line(out, &line);
            } else {
                self.text_block(&p.ns.label(), "value", &rows, out);
            }
        }
    }

    fn interval(&mut self, iv: &counters::Interval<'_>, stamp: Option<Stamp>, out: &mut dyn Write) {
        if !self.json {
            if let Some(s) = &stamp {
                self.line(out, &s.banner());
                // Each interval's block has its own header.
                self.header_done = false;
            }
        }
        for ((p, before), after) in self.namespaces.iter().zip(iv.before).zip(iv.after) {
            let deltas = counters::delta(before, after);
            let rows = self.rows(&deltas);
            let seconds = after.instant.duration_since(before.instant).as_secs_f64();
            if self.json {
                let line = to_json(&IntervalJson {
                    time: rfc3339_millis(after.time),
                    interval: iv.number,
                    seconds: Value::Number(format!("{seconds:.3}")),
                    netns: p.ns.inode,
                    netns_label: p.ns.label(),
                    counters: CountersJson(&rows),
                });
                self.line(out, &line);
            } else {
                self.text_block(&p.ns.label(), "delta", &rows, out);
            }
        }
    }

    /// Text rows: `netns  counter  value  meaning`. The header is printed
    /// once, or once per interval after its banner with --every.
    fn text_block(
        &mut self,
        label: &str,
        what: &str,
        rows: &[&(String, u64)],
        out: &mut dyn Write,
    ) {
        let nw = self
            .namespaces
            .iter()
            .map(|p| p.ns.label().len())
            .max()
            .unwrap_or(5)
            .max(5);
        let cw = self
            .selected
            .iter()
            .map(String::len)
            .max()
            .unwrap_or(7)
            .max(7);
        let header = format!("{:<nw$}  {:<cw$}  {what:>12}  meaning", "netns", "counter");
        if !self.header_done {
            self.line(out, &header);
            self.header_done = true;
        }
        if rows.is_empty() {
            let none = if self.zeros {
                "(no counter selected)"
            } else {
                "(none moved)"
            };
            self.line(out, &format!("{label:<nw$}  {none}"));
        }
        for (name, v) in rows {
            let meaning = counters::meaning(name).map_or("", |m| m.short);
            let l = format!("{label:<nw$}  {name:<cw$}  {v:>12}  {meaning}");
            self.line(out, l.trim_end());
        }
    }
}

/// Without `--duration`/`--every`: one namespace's absolute values.
#[derive(Serialize)]
struct AbsoluteJson<'a> {
    time: String,
    netns: u64,
    netns_label: String,
    absolute: bool,
    counters: CountersJson<'a>,
}

/// One namespace's interval: what moved in `seconds`.
#[derive(Serialize)]
struct IntervalJson<'a> {
    time: String,
    interval: u64,
    /// `{:.3}`, written out: three decimals always.
    seconds: Value,
    netns: u64,
    netns_label: String,
    counters: CountersJson<'a>,
}

/// `{"Name":n,...}` in the kernel's order.
struct CountersJson<'a>(&'a [&'a (String, u64)]);

impl Serialize for CountersJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (n, v) in self.0 {
            m.serialize_entry(n, v)?;
        }
        m.end()
    }
}

/// `--explain --format json`: one counter.
#[derive(Serialize)]
struct ExplainJson<'a> {
    name: &'a str,
    short: Option<&'a str>,
    long: Option<&'a str>,
}

/// `--explain`: each selected counter's meaning; without NAME, every TCP
/// counter on one line each.
fn explain(selected: &[String], all_tcp: bool, json: bool) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let width = selected.iter().map(String::len).max().unwrap_or(0);
    for name in selected {
        let m = counters::meaning(name);
        if json {
            let (short, long) = m.map_or((None, None), |m| {
                (Some(m.short), (!m.long.is_empty()).then_some(m.long))
            });
            writeln!(out, "{}", to_json(&ExplainJson { name, short, long }))?;
            continue;
        }
        match m {
            Some(m) if all_tcp => writeln!(out, "{name:<width$}  {}", m.short)?,
            Some(m) => {
                writeln!(out, "{name}: {}", m.short)?;
                if !m.long.is_empty() {
                    for l in wrap(m.long, 76) {
                        writeln!(out, "    {l}")?;
                    }
                }
            }
            None => writeln!(
                out,
                "{name}: tcpq has no description of this counter (it knows the Tcp and TcpExt ones); see the kernel's Documentation/networking/snmp_counter.rst"
            )?,
        }
    }
    out.flush()?;
    Ok(())
}

/// Greedy word wrap.
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for w in text.split_whitespace() {
        if !cur.is_empty() && cur.len() + 1 + w.len() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_words() {
        assert_eq!(wrap("a bb ccc dddd", 6), ["a bb", "ccc", "dddd"]);
        assert_eq!(wrap("", 6), Vec::<String>::new());
    }

    #[test]
    fn json_keeps_order() {
        let rows = [("TcpB".to_string(), 2u64), ("TcpA".to_string(), 1u64)];
        let refs: Vec<&(String, u64)> = rows.iter().collect();
        assert_eq!(
            to_json(&AbsoluteJson {
                time: "T".into(),
                netns: 7,
                netns_label: "host".into(),
                absolute: true,
                counters: CountersJson(&refs),
            }),
            r#"{"time":"T","netns":7,"netns_label":"host","absolute":true,"counters":{"TcpB":2,"TcpA":1}}"#
        );
        // `seconds` keeps its three decimals.
        assert_eq!(
            to_json(&IntervalJson {
                time: "T".into(),
                interval: 2,
                seconds: Value::Number(format!("{:.3}", 1.0)),
                netns: 7,
                netns_label: "a\"b".into(),
                counters: CountersJson(&[]),
            }),
            r#"{"time":"T","interval":2,"seconds":1.000,"netns":7,"netns_label":"a\"b","counters":{}}"#
        );
        assert_eq!(
            to_json(&ExplainJson {
                name: "TcpX",
                short: Some("s"),
                long: None
            }),
            r#"{"name":"TcpX","short":"s","long":null}"#
        );
    }
}
