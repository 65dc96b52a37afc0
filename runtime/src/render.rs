//! Turning record slots into text and JSON, one column at a time.
//!
//! Output streams, so text columns have fixed widths chosen per type (not
//! per observed value); a value wider than its column pushes the rest of
//! its row right rather than being cut.
use std::{fmt::Write as _, net::Ipv6Addr};

mod line;

use tcpq_dsl::plan::{Column, FieldType, Header, Source, Unit};

use crate::clock::{Clock, Zone};

/// Output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns under a header.
    #[default]
    Text,
    /// One JSON object per line, keys = column names.
    Json,
}

/// Kernel TCP state names, by `sk_state` value (`include/net/tcp_states.h`).
pub fn tcp_state_name(v: u64) -> Option<&'static str> {
    Some(match v {
        1 => "ESTABLISHED",
        2 => "SYN_SENT",
        3 => "SYN_RECV",
        4 => "FIN_WAIT1",
        5 => "FIN_WAIT2",
        6 => "TIME_WAIT",
        7 => "CLOSE",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        12 => "NEW_SYN_RECV",
        13 => "BOUND_INACTIVE",
        _ => return None,
    })
}

/// Address family names.
pub fn family_name(v: u64) -> Option<&'static str> {
    match v {
        2 => Some("AF_INET"),
        10 => Some("AF_INET6"),
        _ => None,
    }
}

/// Names the kernel gives to numbers: enum values from its BTF, function
/// addresses from kallsyms. Loaded by the session ([`crate::names`]), only
/// when a program prints such a field, and handed to every decode; empty,
/// a number shows as the number.
#[derive(Debug, Default)]
pub struct Names {
    pub drop_reasons: std::collections::HashMap<u64, String>,
    pub rst_reasons: std::collections::HashMap<u64, String>,
    /// Sorted (address, name) of kernel text symbols.
    pub symbols: Vec<(u64, String)>,
}

impl Names {
    /// `function+0xoff` for a kernel text address.
    pub fn symbol(&self, addr: u64) -> Option<String> {
        let i = self.symbols.partition_point(|(a, _)| *a <= addr);
        let (base, name) = self.symbols.get(i.checked_sub(1)?)?;
        Some(if addr == *base {
            name.clone()
        } else {
            format!("{name}+{:#x}", addr - base)
        })
    }
}

fn named(v: u64, table: &std::collections::HashMap<u64, String>) -> Value {
    match table.get(&v) {
        Some(s) => Value::Str(s.clone()),
        None => Value::Uint(v),
    }
}

/// A rendered value, before layout.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Uint(u64),
    Int(i64),
    Bool(bool),
    /// A boolean shown in text as a word (`tlp`: `R`, `L`), in JSON as
    /// `true`/`false`.
    Flag(bool, String),
    /// Text shown as is (quoted in JSON).
    Str(String),
    /// A number shown with a unit suffix in text, bare in JSON.
    Unit(u64, &'static str),
    /// A number already written out (`12.345678`): right-aligned in text,
    /// bare in JSON.
    Number(String),
    /// Unknown (empty `comm`): `-` in text, `null` in JSON.
    Null,
}

/// Decode a column's value from its slots' values (in `col.slots` order).
/// Missing slots read as zero rather than failing: a short key is a bug in
/// the plan, not in the user's input. `names` turns reasons and kernel
/// addresses into names.
pub fn decode(ty: FieldType, vals: &[u64], names: &Names) -> Value {
    let v0 = vals.first().copied().unwrap_or(0);
    let v1 = vals.get(1).copied().unwrap_or(0);
    match ty {
        FieldType::Uint(Unit::DropReason) => named(v0, &names.drop_reasons),
        FieldType::Uint(Unit::RstReason) => named(v0, &names.rst_reasons),
        FieldType::Uint(Unit::KernelSymbol) => match names.symbol(v0) {
            Some(s) => Value::Str(s),
            None => Value::Str(format!("{v0:#x}")),
        },
        FieldType::Uint(Unit::Address) => Value::Str(format!("{v0:#x}")),
        FieldType::Uint(Unit::Micros) => Value::Unit(v0, "us"),
        FieldType::Uint(Unit::Millis) => Value::Unit(v0, "ms"),
        // A point on a clock, not a duration: a plain number.
        FieldType::Uint(Unit::Nanos) => Value::Uint(v0),
        FieldType::Uint(_) | FieldType::Port => Value::Uint(v0),
        // 0, or the error's name (`EPERM`); a number without one as is.
        FieldType::Int(Unit::Errno) => match tcpq_dsl::errno::name(v0 as i64) {
            Some(n) => Value::Str(n.to_owned()),
            None => Value::Int(v0 as i64),
        },
        FieldType::Int(_) => Value::Int(v0 as i64),
        FieldType::Bool => Value::Bool(v0 != 0),
        FieldType::Addr => {
            let ip = Ipv6Addr::from(tcpq_abi::addr_bytes([v0, v1]));
            Value::Str(match ip.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => ip.to_string(),
            })
        }
        FieldType::Comm => {
            let bytes = tcpq_abi::comm_bytes([v0, v1]);
            let n = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            if n == 0 {
                Value::Null
            } else {
                Value::Str(String::from_utf8_lossy(&bytes[..n]).into_owned())
            }
        }
        FieldType::TcpState => match tcp_state_name(v0) {
            Some(s) => Value::Str(s.to_owned()),
            // No socket (a reset to a closed port): no state.
            None if v0 == 0 => Value::Null,
            None => Value::Uint(v0),
        },
        FieldType::Family => match family_name(v0) {
            Some(s) => Value::Str(s.to_owned()),
            None => Value::Uint(v0),
        },
        FieldType::Time => Value::Str(rfc3339_micros(
            std::time::UNIX_EPOCH + std::time::Duration::from_nanos(v0),
        )),
    }
}

impl Value {
    pub fn text(&self) -> String {
        match self {
            Value::Uint(v) => v.to_string(),
            Value::Int(v) => v.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Flag(_, word) => word.clone(),
            Value::Str(s) => s.clone(),
            Value::Unit(v, u) => format!("{v}{u}"),
            Value::Number(n) => n.clone(),
            Value::Null => "-".to_owned(),
        }
    }

    /// The value as JSON text (see its `Serialize`).
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn right_aligned(&self) -> bool {
        matches!(
            self,
            Value::Uint(_) | Value::Int(_) | Value::Unit(..) | Value::Number(_)
        )
    }
}

/// JSON: numbers bare (a unit is text only), text quoted, unknown `null`.
impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Uint(v) | Value::Unit(v, _) => s.serialize_u64(*v),
            Value::Int(v) => s.serialize_i64(*v),
            Value::Bool(b) | Value::Flag(b, _) => s.serialize_bool(*b),
            Value::Str(t) => s.serialize_str(t),
            // Written out already (`12.345600`): as is, trailing zeros and
            // all, which an f64 would not keep.
            Value::Number(n) => match serde_json::value::RawValue::from_string(n.clone()) {
                Ok(raw) => raw.serialize(s),
                Err(_) => s.serialize_str(n),
            },
            Value::Null => s.serialize_unit(),
        }
    }
}

/// One JSON object of named values, keys in the order given (a map built
/// by serde_json would sort them). Extra names or values are left out.
pub struct JsonRow<'a, K> {
    pub names: &'a [K],
    pub values: &'a [Value],
}

impl<K: AsRef<str>> serde::Serialize for JsonRow<'_, K> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let n = self.names.len().min(self.values.len());
        let mut m = s.serialize_map(Some(n))?;
        for (k, v) in self.names.iter().zip(self.values) {
            m.serialize_entry(k.as_ref(), v)?;
        }
        m.end()
    }
}

/// `value` as one line of JSON. Serializing tcpq's own types cannot fail
/// (every map key is a string); were it to, the line would be empty.
pub fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// When one `every` interval was read: its number (from 1) and the wall
/// clock at the read. The streamer takes the time; the renderer is given
/// it, so rendering stays a pure function (and snapshot tests fix it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub interval: u64,
    pub time: std::time::SystemTime,
}

impl Stamp {
    /// The text banner that opens an interval's block:
    /// `@ 2025-06-04T15:21:04.123Z interval 3`.
    pub fn banner(&self) -> String {
        format!("@ {} interval {}", rfc3339_millis(self.time), self.interval)
    }
}

/// RFC 3339 in UTC with milliseconds, `2025-06-04T15:21:04.123Z`: one
/// spelling for every host of an incident, sortable as text, and read by
/// `date -d` and log tools alike.
/// Times before 1970 print as 1970 (a wall clock that far off is broken).
pub fn rfc3339_millis(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// RFC 3339 in UTC with microseconds, `2026-12-07T05:46:01.123456Z`: an
/// event's `time`, precise enough to line up with a packet capture
/// (tcpdump and pcap files keep microseconds). Digits below a microsecond
/// are cut, never rounded into the next second.
pub fn rfc3339_micros(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// `HH:MM:SS.ffffff` of a wall-clock time (nanoseconds since the epoch)
/// in `zone`: the `TIME` column of `-T`, spelt like tcpdump's default
/// timestamps (BCC's tools print `HH:MM:SS`, without the fraction).
pub fn clock_time(wall_ns: u64, zone: Zone) -> String {
    let secs = (wall_ns / 1_000_000_000) as i64;
    let local = secs + zone.offset_at(secs);
    let of_day = local.rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        wall_ns % 1_000_000_000 / 1_000
    )
}

/// Seconds from `start_ns` to `ns` with microseconds, `12.345678`: the
/// `TIME(s)` column of `-t` (BCC's), negative for an earlier time.
pub fn elapsed_seconds(ns: u64, start_ns: u64) -> String {
    let (sign, d) = if ns >= start_ns {
        ("", ns - start_ns)
    } else {
        ("-", start_ns - ns)
    };
    format!(
        "{sign}{}.{:06}",
        d / 1_000_000_000,
        d % 1_000_000_000 / 1_000
    )
}

/// (year, month, day) of a day count since 1970-01-01, proleptic
/// Gregorian (Howard Hinnant's `civil_from_days`, for days >= 0).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// Text width reserved for a type.
pub fn type_width(ty: FieldType) -> usize {
    match ty {
        FieldType::Uint(Unit::Micros | Unit::Millis) => 10,
        // CLOCK_MONOTONIC ns: 16 digits after 115 days of uptime.
        FieldType::Uint(Unit::Nanos) => 16,
        FieldType::Uint(_) => 10,
        // ECONNREFUSED, EHOSTUNREACH (12), NET_XMIT_DROP (13).
        FieldType::Int(Unit::Errno) => 13,
        FieldType::Int(_) => 6,
        FieldType::Bool => 5,
        FieldType::Addr => 15,
        FieldType::Port => 5,
        FieldType::Comm => 16,
        FieldType::TcpState => 11,
        FieldType::Family => 8,
        // `2026-12-07T05:46:01.123456Z`
        FieldType::Time => 27,
    }
}

/// Whether a type's text is right-aligned (numbers) or left-aligned.
fn type_right_aligned(ty: FieldType) -> bool {
    // Errors are names (and 0), left-aligned like other names.
    ty != FieldType::Int(Unit::Errno)
        && matches!(ty, FieldType::Uint(_) | FieldType::Int(_) | FieldType::Port)
}

/// Lays out rows of one column set.
#[derive(Clone, Debug)]
pub struct Table {
    names: Vec<String>,
    widths: Vec<usize>,
    right: Vec<bool>,
    format: Format,
}

impl Table {
    /// A table for `columns`, plus extra trailing unsigned columns by name
    /// (`count`).
    pub fn new(columns: &[Column], extra: &[&str], format: Format) -> Table {
        let mut names = Vec::new();
        let mut widths = Vec::new();
        let mut right = Vec::new();
        for c in columns {
            names.push(c.name.clone());
            widths.push(type_width(c.ty).max(c.name.len()));
            right.push(type_right_aligned(c.ty));
        }
        let alone = columns.is_empty();
        for e in extra {
            names.push((*e).to_owned());
            // Alone on its line, a count needs no room to align under.
            widths.push(if alone { e.len() } else { 8.max(e.len()) });
            right.push(true);
        }
        Table {
            names,
            widths,
            right,
            format,
        }
    }

    /// The header line (text only; JSON has none).
    pub fn header(&self) -> Option<String> {
        if self.format == Format::Json {
            return None;
        }
        let cells: Vec<String> = self.names.to_vec();
        Some(self.layout(&cells, &self.right))
    }

    /// One row.
    pub fn row(&self, values: &[Value]) -> String {
        match self.format {
            Format::Json => to_json(&JsonRow {
                names: &self.names,
                values,
            }),
            Format::Text => {
                let cells: Vec<String> = values.iter().map(Value::text).collect();
                let right: Vec<bool> = values
                    .iter()
                    .zip(&self.right)
                    .map(|(v, r)| *r && (v.right_aligned() || matches!(v, Value::Null)))
                    .collect();
                self.layout(&cells, &right)
            }
        }
    }

    fn layout(&self, cells: &[String], right: &[bool]) -> String {
        let mut out = String::new();
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            let w = self.widths.get(i).copied().unwrap_or(0);
            if right.get(i).copied().unwrap_or(false) {
                let _ = write!(out, "{cell:>w$}");
            } else if i == last {
                out.push_str(cell);
            } else {
                let _ = write!(out, "{cell:<w$}");
            }
        }
        out
    }
}

/// How printed events are stamped besides their columns: the CLI's `-T`
/// and `-t` (BCC's habit). Aggregation rows are not affected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamps {
    /// `-T`: text rows begin with `TIME`, `HH:MM:SS.ffffff` in local time.
    /// (JSON rows always carry `time`.)
    pub clock: bool,
    /// `-t`: a `TIME(s)` column (JSON: `elapsed`), seconds since tcpq
    /// began attaching its probes, with microseconds.
    pub elapsed: bool,
}

/// What events' stamps are shown against: fixed for a run, given to the
/// renderer so that rendering stays a pure function (snapshot tests fix
/// it).
#[derive(Clone, Copy, Debug)]
pub struct Timebase {
    /// CLOCK_MONOTONIC to wall clock.
    pub clock: Clock,
    /// The zone of `-T`'s `TIME`.
    pub zone: Zone,
    /// CLOCK_MONOTONIC ns when tcpq began attaching: the zero of `-t`.
    pub start_ktime_ns: u64,
}

/// A column in front of a clause's own, for events.
#[derive(Clone, Debug)]
enum Lead {
    /// `-T`'s `TIME` (text).
    Clock,
    /// `-t`'s `TIME(s)` / `elapsed`.
    Elapsed,
    /// The event's `time`, in every JSON row whose clause does not print
    /// a column named `time` itself.
    Time,
    /// The clause's probe, when a program has several.
    Probe(String),
}

/// Header / key, text width and alignment of a lead column.
fn lead_cell(l: &Lead, format: Format) -> (String, usize, bool) {
    match l {
        Lead::Clock => ("TIME".into(), 15, false),
        Lead::Elapsed if format == Format::Json => ("elapsed".into(), 0, true),
        // `12345.678901`, right-aligned like every number.
        Lead::Elapsed => ("TIME(s)".into(), 12, true),
        Lead::Time => ("time".into(), type_width(FieldType::Time), false),
        Lead::Probe(_) => ("probe".into(), type_width(FieldType::Comm), false),
    }
}

/// The value of a printed column in an event record: from its slots, or
/// from the record's header (`time`, `ktime`, `cpu`).
pub fn column_value(c: &Column, ev: &tcpq_abi::Event, clock: &Clock, names: &Names) -> Value {
    let raw: Vec<u64> = match c.source {
        Source::Slots => c
            .slots
            .iter()
            .map(|&s| ev.vals.get(s as usize).copied().unwrap_or(0))
            .collect(),
        Source::Header(Header::Time) => vec![clock.wall_ns(ev.ktime_ns)],
        Source::Header(Header::Ktime) => vec![ev.ktime_ns],
        Source::Header(Header::Cpu) => vec![u64::from(ev.cpu)],
    };
    match &c.scale {
        Some(sc) => Value::Uint(sc.apply(raw.first().copied().unwrap_or(0))),
        None => decode_column(c, &raw, names),
    }
}

/// [`decode`] for a column of the plan: a labelled boolean (`tlp`) shows
/// its word.
pub fn decode_column(c: &Column, vals: &[u64], names: &Names) -> Value {
    match (&c.labels, decode(c.ty, vals, names)) {
        (Some(words), Value::Bool(b)) => Value::Flag(b, words[usize::from(b)].clone()),
        (_, v) => v,
    }
}

/// Lays out the events of one printing clause.
#[derive(Clone, Debug)]
pub struct EventTable {
    table: Table,
    lead: Vec<Lead>,
    columns: Vec<Column>,
    base: Timebase,
    /// JSON: each cell's key as written before its value, with what
    /// comes before it: `{"time":`, `,"sport":`, ...
    json_keys: Vec<Vec<u8>>,
    /// `-T`: the zone's offset east of UTC for the last second asked
    /// (unix second, offset): `localtime_r` once a second, not per event.
    zone_offset: std::cell::Cell<(i64, i64)>,
}

impl EventTable {
    /// `probe`: the clause's probe when the program has several clauses
    /// (its rows then name it).
    pub fn new(
        columns: &[Column],
        probe: Option<&str>,
        format: Format,
        stamps: Stamps,
        base: Timebase,
    ) -> EventTable {
        let mut lead = Vec::new();
        let mut columns = columns.to_vec();
        let is_time = |c: &Column| c.name == "time" && c.source == Source::Header(Header::Time);
        match format {
            Format::Text if stamps.clock => lead.push(Lead::Clock),
            // JSON rows begin with `time` (a `time` the clause prints moves
            // there), unless the program named another column `time`.
            Format::Json if columns.iter().all(|c| c.name != "time" || is_time(c)) => {
                columns.retain(|c| !is_time(c));
                lead.push(Lead::Time);
            }
            _ => {}
        }
        if stamps.elapsed {
            lead.push(Lead::Elapsed);
        }
        if let Some(p) = probe {
            lead.push(Lead::Probe(p.to_owned()));
        }
        let mut table = Table::new(&columns, &[], format);
        let cells: Vec<(String, usize, bool)> = lead.iter().map(|l| lead_cell(l, format)).collect();
        table.names.splice(0..0, cells.iter().map(|c| c.0.clone()));
        table
            .widths
            .splice(0..0, cells.iter().map(|c| c.1.max(c.0.len())));
        table.right.splice(0..0, cells.iter().map(|c| c.2));
        let json_keys = table
            .names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{}{}:", if i == 0 { "{" } else { "," }, to_json(n)).into_bytes())
            .collect();
        EventTable {
            table,
            lead,
            columns,
            base,
            json_keys,
            zone_offset: std::cell::Cell::new((i64::MIN, 0)),
        }
    }

    /// The header line (text only).
    pub fn header(&self) -> Option<String> {
        self.table.header()
    }

    /// One event's row; `names` as for [`decode`].
    pub fn row(&self, ev: &tcpq_abi::Event, names: &Names) -> String {
        let mut out = Vec::new();
        self.write_row(ev, names, &mut out);
        out.pop();
        String::from_utf8(out).unwrap_or_default()
    }

    /// One event's row and a newline, appended to `out`: what [`row`]
    /// returns, without allocating for the types events print (the
    /// streamer reuses one buffer for every row).
    ///
    /// [`row`]: EventTable::row
    pub fn write_row(&self, ev: &tcpq_abi::Event, names: &Names, out: &mut Vec<u8>) {
        let b = &self.base;
        let n = self.lead.len() + self.columns.len();
        let last = n.saturating_sub(1);
        for i in 0..n {
            let cell = match self.lead.get(i) {
                Some(Lead::Clock) => {
                    let wall = b.clock.wall_ns(ev.ktime_ns);
                    line::Cell::Clock(wall, self.zone_offset_at(wall))
                }
                Some(Lead::Elapsed) => {
                    line::Cell::Elapsed(i128::from(ev.ktime_ns) - i128::from(b.start_ktime_ns))
                }
                Some(Lead::Time) => line::Cell::Time(b.clock.wall_ns(ev.ktime_ns)),
                Some(Lead::Probe(p)) => line::Cell::Word(p),
                None => line::column_cell(&self.columns[i - self.lead.len()], ev, &b.clock, names),
            };
            match self.table.format {
                Format::Json => {
                    out.extend_from_slice(&self.json_keys[i]);
                    cell.write_json(out);
                }
                Format::Text => {
                    if i > 0 {
                        out.extend_from_slice(b"  ");
                    }
                    let start = out.len();
                    cell.write_text(out);
                    // Widths count characters, as `format!`'s padding does.
                    let chars = out[start..].iter().filter(|&&c| c & 0xc0 != 0x80).count();
                    let pad = self
                        .table
                        .widths
                        .get(i)
                        .copied()
                        .unwrap_or(0)
                        .saturating_sub(chars);
                    let right =
                        self.table.right.get(i).copied().unwrap_or(false) && cell.right_aligned();
                    if pad > 0 && right {
                        out.splice(start..start, std::iter::repeat_n(b' ', pad));
                    } else if pad > 0 && i != last {
                        out.resize(out.len() + pad, b' ');
                    }
                }
            }
        }
        if self.table.format == Format::Json {
            if n == 0 {
                out.push(b'{');
            }
            out.push(b'}');
        }
        out.push(b'\n');
    }

    /// The zone's offset at a wall-clock time, looked up once a second.
    fn zone_offset_at(&self, wall_ns: u64) -> i64 {
        let secs = (wall_ns / 1_000_000_000) as i64;
        let (at, offset) = self.zone_offset.get();
        if at == secs {
            return offset;
        }
        let offset = self.base.zone.offset_at(secs);
        self.zone_offset.set((secs, offset));
        offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decoded without the kernel's names.
    fn plain(ty: FieldType, vals: &[u64]) -> Value {
        decode(ty, vals, &Names::default())
    }

    fn col(name: &str, ty: FieldType, slots: &[u8]) -> Column {
        Column {
            name: name.to_owned(),
            ty,
            slots: slots.to_vec(),
            source: Default::default(),
            scale: None,
            labels: None,
        }
    }

    /// Reasons and kernel addresses take the names they are given, and
    /// show as numbers without them.
    #[test]
    fn named_numbers_use_the_names_given() {
        let mut names = Names::default();
        names.drop_reasons.insert(3, "NO_SOCKET".into());
        names
            .rst_reasons
            .insert(1, "TCP_INVALID_ACK_SEQUENCE".into());
        names.symbols = vec![
            (0x1000, "tcp_v4_rcv".into()),
            (0x2000, "tcp_rcv_state_process".into()),
        ];
        let drop = FieldType::Uint(Unit::DropReason);
        let sym = FieldType::Uint(Unit::KernelSymbol);
        assert_eq!(decode(drop, &[3], &names), Value::Str("NO_SOCKET".into()));
        assert_eq!(decode(drop, &[4], &names), Value::Uint(4));
        assert_eq!(plain(drop, &[3]), Value::Uint(3));
        assert_eq!(
            decode(FieldType::Uint(Unit::RstReason), &[1], &names),
            Value::Str("TCP_INVALID_ACK_SEQUENCE".into())
        );
        assert_eq!(
            decode(sym, &[0x1000], &names),
            Value::Str("tcp_v4_rcv".into())
        );
        assert_eq!(
            decode(sym, &[0x1010], &names),
            Value::Str("tcp_v4_rcv+0x10".into())
        );
        assert_eq!(decode(sym, &[0x10], &names), Value::Str("0x10".into()));
        assert_eq!(plain(sym, &[0x1010]), Value::Str("0x1010".into()));
    }

    #[test]
    fn decodes_each_type() {
        let lo = tcpq_abi::v4_mapped_lo([127, 0, 0, 1]);
        assert_eq!(
            plain(FieldType::Addr, &[0, lo]),
            Value::Str("127.0.0.1".into())
        );
        let v6 = tcpq_abi::addr_words(&"fe80::1".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(plain(FieldType::Addr, &v6), Value::Str("fe80::1".into()));
        let w = tcpq_abi::comm_words(b"iperf3\0\0\0\0\0\0\0\0\0\0");
        assert_eq!(plain(FieldType::Comm, &w), Value::Str("iperf3".into()));
        assert_eq!(plain(FieldType::Comm, &[0, 0]), Value::Null);
        assert_eq!(
            plain(FieldType::TcpState, &[1]),
            Value::Str("ESTABLISHED".into())
        );
        assert_eq!(plain(FieldType::TcpState, &[99]), Value::Uint(99));
        assert_eq!(
            plain(FieldType::Family, &[10]),
            Value::Str("AF_INET6".into())
        );
        assert_eq!(
            plain(FieldType::Int(Unit::None), &[(-11i64) as u64]),
            Value::Int(-11)
        );
        let errno = |v: i64| plain(FieldType::Int(Unit::Errno), &[v as u64]);
        assert_eq!(errno(0), Value::Int(0));
        assert_eq!(errno(-1), Value::Str("EPERM".into()));
        assert_eq!(errno(-105).json(), r#""ENOBUFS""#);
        assert_eq!(errno(1), Value::Str("NET_XMIT_DROP".into()));
        assert_eq!(errno(-41), Value::Int(-41));
        assert_eq!(errno(0).json(), "0");
        assert_eq!(plain(FieldType::Bool, &[2]), Value::Bool(true));
        // A labelled boolean (tcp_retransmit's tlp): BCC's letters in
        // text, the boolean in JSON.
        let mut tlp = col("tlp", FieldType::Bool, &[18]);
        tlp.labels = Some(["R".into(), "L".into()]);
        let none = Names::default();
        let (probe, other) = (
            decode_column(&tlp, &[1], &none),
            decode_column(&tlp, &[0], &none),
        );
        assert_eq!((probe.text(), probe.json()), ("L".into(), "true".into()));
        assert_eq!((other.text(), other.json()), ("R".into(), "false".into()));
        assert_eq!(plain(FieldType::Uint(Unit::Micros), &[250]).text(), "250us");
        assert_eq!(plain(FieldType::Uint(Unit::Micros), &[250]).json(), "250");
        assert_eq!(plain(FieldType::Port, &[]), Value::Uint(0));
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_millis() {
        use std::time::{Duration, UNIX_EPOCH};
        let at = |s: u64, ms: u64| UNIX_EPOCH + Duration::from_millis(s * 1000 + ms);
        assert_eq!(rfc3339_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // `date -u -d @1717514464`: Tue Jun  4 15:21:04 UTC 2024.
        assert_eq!(
            rfc3339_millis(at(1_717_514_464, 123)),
            "2024-06-04T15:21:04.123Z"
        );
        // Leap days, the turn of a century, and the last millisecond of a year.
        assert_eq!(
            rfc3339_millis(at(951_782_400, 0)),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            rfc3339_millis(at(4_107_542_400, 0)),
            "2100-03-01T00:00:00.000Z"
        );
        assert_eq!(
            rfc3339_millis(at(1_735_689_599, 999)),
            "2024-12-31T23:59:59.999Z"
        );
        // Sub-millisecond digits are cut, not rounded up into the next second.
        let t = UNIX_EPOCH + Duration::from_nanos(1_999_999_999);
        assert_eq!(rfc3339_millis(t), "1970-01-01T00:00:01.999Z");
        assert_eq!(
            rfc3339_millis(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00.000Z"
        );
        let s = Stamp {
            interval: 3,
            time: at(1_717_514_464, 5),
        };
        assert_eq!(s.banner(), "@ 2024-06-04T15:21:04.005Z interval 3");
    }

    #[test]
    fn event_times_have_microseconds() {
        use std::time::{Duration, UNIX_EPOCH};
        // `date -u -d @1796622361`: Mon Dec  7 05:46:01 UTC 2026.
        let ns = 1_796_622_361_123_456_999u64;
        let t = UNIX_EPOCH + Duration::from_nanos(ns);
        assert_eq!(rfc3339_micros(t), "2026-12-07T05:46:01.123456Z");
        assert_eq!(
            plain(FieldType::Time, &[ns]).json(),
            r#""2026-12-07T05:46:01.123456Z""#
        );
        assert_eq!(rfc3339_micros(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        assert_eq!(clock_time(ns, Zone::Fixed(0)), "05:46:01.123456");
        // East of UTC, and across midnight both ways.
        assert_eq!(clock_time(ns, Zone::Fixed(3600)), "06:46:01.123456");
        assert_eq!(clock_time(ns, Zone::Fixed(-6 * 3600)), "23:46:01.123456");
        assert_eq!(clock_time(ns, Zone::Fixed(19 * 3600)), "00:46:01.123456");
        assert_eq!(elapsed_seconds(3_000_001_999, 1_000_000_000), "2.000001");
        assert_eq!(elapsed_seconds(5, 5), "0.000000");
        assert_eq!(elapsed_seconds(1_000, 2_500_000), "-0.002499");
        assert_eq!(plain(FieldType::Uint(Unit::Nanos), &[7]).text(), "7");
    }

    #[test]
    fn text_and_json_rows() {
        let cols = [
            col("comm", FieldType::Comm, &[1, 2]),
            col("rcv_wnd", FieldType::Uint(Unit::Bytes), &[18]),
            col("state", FieldType::TcpState, &[14]),
        ];
        let t = Table::new(&cols, &[], Format::Text);
        assert_eq!(t.header().unwrap(), "comm                 rcv_wnd  state");
        let row = [
            Value::Null,
            Value::Uint(65535),
            Value::Str("ESTABLISHED".into()),
        ];
        assert_eq!(t.row(&row), "-                      65535  ESTABLISHED");
        let j = Table::new(&cols, &[], Format::Json);
        assert!(j.header().is_none());
        assert_eq!(
            j.row(&row),
            r#"{"comm":null,"rcv_wnd":65535,"state":"ESTABLISHED"}"#
        );
        // Errors are names, left-aligned, 0 among them.
        let e = Table::new(
            &[
                col("err", FieldType::Int(Unit::Errno), &[17]),
                col("segs", FieldType::Uint(Unit::Segments), &[16]),
            ],
            &[],
            Format::Text,
        );
        assert_eq!(e.header().unwrap(), "err                  segs");
        assert_eq!(
            e.row(&[Value::Int(0), Value::Uint(3)]),
            "0                       3"
        );
        assert_eq!(
            e.row(&[Value::Str("ECONNREFUSED".into()), Value::Uint(1)]),
            "ECONNREFUSED            1"
        );
        let c = Table::new(&cols[..1], &["count"], Format::Json);
        assert_eq!(
            c.row(&[Value::Str("a\"b".into()), Value::Uint(3)]),
            r#"{"comm":"a\"b","count":3}"#
        );
        // A number written out keeps its digits; a unit is text only.
        let t = Table::new(&[], &["elapsed", "rto", "lost"], Format::Json);
        assert_eq!(
            t.row(&[
                Value::Number("2.500000".into()),
                Value::Unit(200, "ms"),
                Value::Null
            ]),
            r#"{"elapsed":2.500000,"rto":200,"lost":null}"#
        );
    }
}
