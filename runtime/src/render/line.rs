//! An event's row written straight into the caller's buffer: the
//! streamer's path, a million rows a second. Each column becomes a
//! [`Cell`] (numbers, borrowed names and the socket's raw words: nothing
//! allocated for the types events print) and is written as text or JSON
//! next to its neighbours. [`Cell::value`] is the same value as a
//! [`Value`]; the tests hold both spellings to [`Value::text`] and
//! [`Value::json`], so the row writer and the table say the same thing.
use std::io::Write as _;
use std::net::Ipv6Addr;

use tcpq_dsl::plan::{Column, FieldType, Header, Source, Unit};

use super::{civil_from_days, family_name, tcp_state_name, Names, Value};
use crate::clock::Clock;

/// One column's value, ready to be written.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Cell<'a> {
    Uint(u64),
    Int(i64),
    Bool(bool),
    /// A boolean shown as a word in text (`tlp`'s `R`/`L`).
    Flag(bool, &'a str),
    /// A name (state, family, errno, reason): text as is, quoted in JSON.
    Word(&'a str),
    /// A number with a unit suffix in text, bare in JSON.
    Unit(u64, &'static str),
    /// A kernel address, `0x...` (a string in JSON).
    Hex(u64),
    Addr(Ipv6Addr),
    /// A command name's bytes and length (never empty: empty is `Null`).
    Comm([u8; 16], usize),
    /// A wall-clock time, ns since the epoch: RFC 3339 with microseconds.
    Time(u64),
    /// `HH:MM:SS.ffffff` of a wall-clock time at an offset east of UTC
    /// (text only: `-T`).
    Clock(u64, i64),
    /// Seconds with microseconds, negative for an earlier time (`-t`):
    /// nanoseconds relative to the start.
    Elapsed(i128),
    /// What needs an allocation anyway (a kernel symbol's name).
    Other(Value),
    Null,
}

/// A column's cell: [`super::column_value`] without the allocation.
pub(crate) fn column_cell<'a>(
    c: &'a Column,
    ev: &tcpq_abi::Event,
    clock: &Clock,
    names: &'a Names,
) -> Cell<'a> {
    let slot = |i: usize| {
        c.slots
            .get(i)
            .and_then(|&s| ev.vals.get(s as usize))
            .copied()
            .unwrap_or(0)
    };
    let raw = match c.source {
        Source::Slots => [slot(0), slot(1)],
        Source::Header(Header::Time) => [clock.wall_ns(ev.ktime_ns), 0],
        Source::Header(Header::Ktime) => [ev.ktime_ns, 0],
        Source::Header(Header::Cpu) => [u64::from(ev.cpu), 0],
    };
    if let Some(sc) = &c.scale {
        return Cell::Uint(sc.apply(raw[0]));
    }
    match (&c.labels, decode_cell(c.ty, raw, names)) {
        (Some(words), Cell::Bool(b)) => Cell::Flag(b, &words[usize::from(b)]),
        (_, v) => v,
    }
}

/// [`super::decode`] as a cell, for a column's first two slot values.
pub(crate) fn decode_cell(ty: FieldType, vals: [u64; 2], names: &Names) -> Cell<'_> {
    let [v0, v1] = vals;
    fn named(v0: u64, t: &std::collections::HashMap<u64, String>) -> Cell<'_> {
        match t.get(&v0) {
            Some(s) => Cell::Word(s.as_str()),
            None => Cell::Uint(v0),
        }
    }
    match ty {
        FieldType::Uint(Unit::DropReason) => named(v0, &names.drop_reasons),
        FieldType::Uint(Unit::RstReason) => named(v0, &names.rst_reasons),
        FieldType::Uint(Unit::KernelSymbol) => match names.symbol(v0) {
            Some(s) => Cell::Other(Value::Str(s)),
            None => Cell::Hex(v0),
        },
        FieldType::Uint(Unit::Address) => Cell::Hex(v0),
        FieldType::Uint(Unit::Micros) => Cell::Unit(v0, "us"),
        FieldType::Uint(Unit::Millis) => Cell::Unit(v0, "ms"),
        FieldType::Uint(_) | FieldType::Port => Cell::Uint(v0),
        FieldType::Int(Unit::Errno) => match tcpq_dsl::errno::name(v0 as i64) {
            Some(n) => Cell::Word(n),
            None => Cell::Int(v0 as i64),
        },
        FieldType::Int(_) => Cell::Int(v0 as i64),
        FieldType::Bool => Cell::Bool(v0 != 0),
        FieldType::Addr => Cell::Addr(Ipv6Addr::from(tcpq_abi::addr_bytes([v0, v1]))),
        FieldType::Comm => {
            let bytes = tcpq_abi::comm_bytes([v0, v1]);
            match bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len()) {
                0 => Cell::Null,
                n => Cell::Comm(bytes, n),
            }
        }
        FieldType::TcpState => match tcp_state_name(v0) {
            Some(s) => Cell::Word(s),
            None if v0 == 0 => Cell::Null,
            None => Cell::Uint(v0),
        },
        FieldType::Family => match family_name(v0) {
            Some(s) => Cell::Word(s),
            None => Cell::Uint(v0),
        },
        FieldType::Time => Cell::Time(v0),
    }
}

impl Cell<'_> {
    /// Right-aligned in text when its column's type is (numbers).
    pub(crate) fn right_aligned(&self) -> bool {
        matches!(
            self,
            Cell::Uint(_) | Cell::Int(_) | Cell::Unit(..) | Cell::Elapsed(_) | Cell::Null
        ) || matches!(self, Cell::Other(v) if v.right_aligned() || matches!(v, Value::Null))
    }

    /// The text spelling ([`Value::text`]'s), appended to `out`.
    pub(crate) fn write_text(&self, out: &mut Vec<u8>) {
        match self {
            Cell::Uint(v) => uint(out, *v),
            Cell::Int(v) => int(out, *v),
            Cell::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Cell::Flag(_, w) | Cell::Word(w) => out.extend_from_slice(w.as_bytes()),
            Cell::Unit(v, u) => {
                uint(out, *v);
                out.extend_from_slice(u.as_bytes());
            }
            Cell::Hex(v) => {
                let _ = write!(out, "{v:#x}");
            }
            Cell::Addr(ip) => addr(out, ip),
            Cell::Comm(b, n) => out.extend_from_slice(String::from_utf8_lossy(&b[..*n]).as_bytes()),
            Cell::Time(ns) => rfc3339_micros(out, *ns),
            Cell::Clock(ns, offset) => clock(out, *ns, *offset),
            Cell::Elapsed(d) => elapsed(out, *d),
            Cell::Other(v) => out.extend_from_slice(v.text().as_bytes()),
            Cell::Null => out.push(b'-'),
        }
    }

    /// The JSON spelling ([`Value::json`]'s), appended to `out`.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Cell::Uint(v) | Cell::Unit(v, _) => uint(out, *v),
            Cell::Int(v) => int(out, *v),
            Cell::Bool(b) | Cell::Flag(b, _) => {
                out.extend_from_slice(if *b { b"true" } else { b"false" })
            }
            Cell::Word(w) => json_str(out, w),
            Cell::Comm(b, n) => json_str(out, &String::from_utf8_lossy(&b[..*n])),
            Cell::Hex(_) | Cell::Addr(_) | Cell::Time(_) | Cell::Clock(..) => {
                // Digits, letters, `.`, `:` and `-`: nothing to escape.
                out.push(b'"');
                self.write_text(out);
                out.push(b'"');
            }
            Cell::Elapsed(d) => elapsed(out, *d),
            Cell::Other(v) => {
                let _ = serde_json::to_writer(&mut *out, v);
            }
            Cell::Null => out.extend_from_slice(b"null"),
        }
    }

    /// The same value as a [`Value`] (for the table of a test, and to hold
    /// the two spellings to each other).
    #[cfg(test)]
    pub(crate) fn value(&self) -> Value {
        let text = || {
            let mut t = Vec::new();
            self.write_text(&mut t);
            String::from_utf8(t).unwrap()
        };
        match self {
            Cell::Uint(v) => Value::Uint(*v),
            Cell::Int(v) => Value::Int(*v),
            Cell::Bool(b) => Value::Bool(*b),
            Cell::Flag(b, w) => Value::Flag(*b, (*w).to_owned()),
            Cell::Unit(v, u) => Value::Unit(*v, u),
            Cell::Elapsed(_) => Value::Number(text()),
            Cell::Other(v) => v.clone(),
            Cell::Null => Value::Null,
            _ => Value::Str(text()),
        }
    }
}

fn uint(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

fn int(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

fn addr(out: &mut Vec<u8>, ip: &Ipv6Addr) {
    let _ = match ip.to_ipv4_mapped() {
        Some(v4) => write!(out, "{v4}"),
        None => write!(out, "{ip}"),
    };
}

/// A JSON string, escaped as serde_json escapes it.
fn json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b < 0x7f)
    {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// `n` as exactly `width` digits (the caller keeps `n` below 10^width).
fn digits(out: &mut Vec<u8>, mut n: u64, width: usize) {
    let at = out.len();
    out.resize(at + width, b'0');
    for i in (0..width).rev() {
        out[at + i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// [`super::rfc3339_micros`] of ns since the epoch.
pub(crate) fn rfc3339_micros(out: &mut Vec<u8>, ns: u64) {
    let secs = ns / 1_000_000_000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    if y < 10_000 {
        digits(out, y, 4);
    } else {
        uint(out, y);
    }
    out.push(b'-');
    digits(out, m, 2);
    out.push(b'-');
    digits(out, d, 2);
    out.push(b'T');
    clock_of_day(out, rem, ns % 1_000_000_000 / 1_000);
    out.push(b'Z');
}

fn clock_of_day(out: &mut Vec<u8>, of_day: u64, micros: u64) {
    digits(out, of_day / 3600, 2);
    out.push(b':');
    digits(out, of_day / 60 % 60, 2);
    out.push(b':');
    digits(out, of_day % 60, 2);
    out.push(b'.');
    digits(out, micros, 6);
}

/// [`super::clock_time`], with the zone's offset at that time given.
pub(crate) fn clock(out: &mut Vec<u8>, wall_ns: u64, offset: i64) {
    let secs = (wall_ns / 1_000_000_000) as i64;
    let of_day = (secs + offset).rem_euclid(86_400) as u64;
    clock_of_day(out, of_day, wall_ns % 1_000_000_000 / 1_000);
}

/// [`super::elapsed_seconds`] of `ns - start_ns`.
pub(crate) fn elapsed(out: &mut Vec<u8>, d: i128) {
    if d < 0 {
        out.push(b'-');
    }
    let d = d.unsigned_abs() as u64;
    uint(out, d / 1_000_000_000);
    out.push(b'.');
    digits(out, d % 1_000_000_000 / 1_000, 6);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(c: &Cell) -> (String, String) {
        let (mut t, mut j) = (Vec::new(), Vec::new());
        c.write_text(&mut t);
        c.write_json(&mut j);
        (String::from_utf8(t).unwrap(), String::from_utf8(j).unwrap())
    }

    /// Every type's cell, written, spells what its [`Value`] spells
    /// ([`super::super::decode`]'s value, from the same slots).
    #[test]
    fn cells_spell_what_values_spell() {
        let mut names = Names::default();
        names.drop_reasons.insert(3, "NO_SOCKET".into());
        names.symbols = vec![(0x1000, "tcp_v4_rcv".into())];
        let v6 = tcpq_abi::addr_words(&"fe80::1".parse::<Ipv6Addr>().unwrap().octets());
        let lo = tcpq_abi::v4_mapped_lo([127, 0, 0, 1]);
        let comm = tcpq_abi::comm_words(b"a\"b\\c\x01\xffd\0\0\0\0\0\0\0\0");
        let ns = 1_796_622_361_123_456_999u64;
        let cases: Vec<(FieldType, [u64; 2])> = vec![
            (FieldType::Uint(Unit::DropReason), [3, 0]),
            (FieldType::Uint(Unit::DropReason), [4, 0]),
            (FieldType::Uint(Unit::RstReason), [1, 0]),
            (FieldType::Uint(Unit::KernelSymbol), [0x1010, 0]),
            (FieldType::Uint(Unit::KernelSymbol), [0x10, 0]),
            (FieldType::Uint(Unit::Address), [0xffff_8880_1234, 0]),
            (FieldType::Uint(Unit::Micros), [250, 0]),
            (FieldType::Uint(Unit::Millis), [u64::MAX, 0]),
            (FieldType::Uint(Unit::Nanos), [7, 0]),
            (FieldType::Uint(Unit::Bytes), [0, 0]),
            (FieldType::Port, [443, 0]),
            (FieldType::Int(Unit::Errno), [0, 0]),
            (FieldType::Int(Unit::Errno), [(-11i64) as u64, 0]),
            (FieldType::Int(Unit::Errno), [(-41i64) as u64, 0]),
            (FieldType::Int(Unit::Errno), [1, 0]),
            (FieldType::Int(Unit::None), [i64::MIN as u64, 0]),
            (FieldType::Bool, [2, 0]),
            (FieldType::Bool, [0, 0]),
            (FieldType::Addr, [0, lo]),
            (FieldType::Addr, v6),
            (FieldType::Comm, comm),
            (
                FieldType::Comm,
                tcpq_abi::comm_words(b"iperf3\0\0\0\0\0\0\0\0\0\0"),
            ),
            (FieldType::Comm, [0, 0]),
            (FieldType::TcpState, [1, 0]),
            (FieldType::TcpState, [0, 0]),
            (FieldType::TcpState, [99, 0]),
            (FieldType::Family, [10, 0]),
            (FieldType::Family, [3, 0]),
            (FieldType::Time, [ns, 0]),
            (FieldType::Time, [0, 0]),
        ];
        for (ty, vals) in cases {
            let cell = decode_cell(ty, vals, &names);
            let value = super::super::decode(ty, &vals, &names);
            assert_eq!(cell.value(), value, "{ty:?} {vals:?}");
            assert_eq!(both(&cell), (value.text(), value.json()), "{ty:?} {vals:?}");
            assert_eq!(
                cell.right_aligned(),
                value.right_aligned() || value == Value::Null,
                "{ty:?}"
            );
        }
    }

    #[test]
    fn stamps_spell_as_the_table_does() {
        let ns = 1_796_622_361_123_456_999u64;
        for offset in [0, 3600, -6 * 3600, 19 * 3600] {
            let mut out = Vec::new();
            clock(&mut out, ns, offset);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                super::super::clock_time(ns, crate::clock::Zone::Fixed(offset as i32))
            );
        }
        for (ns, start) in [
            (3_000_001_999u64, 1_000_000_000u64),
            (5, 5),
            (1_000, 2_500_000),
        ] {
            let mut out = Vec::new();
            elapsed(&mut out, i128::from(ns) - i128::from(start));
            assert_eq!(
                String::from_utf8(out).unwrap(),
                super::super::elapsed_seconds(ns, start)
            );
        }
    }
}
