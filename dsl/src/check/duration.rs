//! One duration grammar for the language and the command line.
//!
//! `every DUR` in a program and `--duration DUR` (and `tcpq counters
//! --every DUR`) on the command line read DUR the same way: the grammar's
//! `number` token (`5s`, `1.5s`, `1_000ms`), then
//! [`Checker::duration_ms`], the one function both call (`ms`, `s`,
//! `m`/`min`, `h` through `in_unit`; a fraction must make a whole number
//! of milliseconds). So a spelling one of them accepts, the other accepts
//! too, and a bad one gets the same diagnostic from both. Only the range
//! is each use's own: `every` needs at least
//! [`MIN_EVERY_MS`](super::MIN_EVERY_MS) (`output.rs`), `--duration` at
//! least 0.
use std::time::Duration;

use super::Checker;
use crate::ast::{Literal, Value};
use crate::diagnostic::{Diagnostic, Problem};
use crate::plan::Unit;

impl Checker {
    /// A duration literal in milliseconds; `name` is how the user wrote
    /// what it belongs to (`every`, `--duration`), for the messages. Any
    /// integer comes back (negative too): the range is the caller's.
    pub(super) fn duration_ms(&mut self, lit: &Literal, name: &str) -> Option<i128> {
        let unitless = matches!(
            &lit.value,
            Value::Int { suffix: None, .. } | Value::Frac { suffix: None, .. }
        );
        if unitless {
            self.diagnostics.push(Diagnostic::new(
                Problem::DurationWithoutUnit {
                    name: name.to_owned(),
                    value: lit.value.to_string(),
                },
                lit.span.clone(),
            ));
            return None;
        }
        self.in_unit(Unit::Millis, lit, name)
    }
}

/// A command-line duration (`--duration 5s`), read as the language reads
/// `every 5s`; `name` is the flag, for the messages. At least zero (a
/// negative one is [`crate::diagnostic::Code::OutOfRange`]). Spans point into `text`.
pub fn parse_duration(text: &str, name: &str) -> Result<Duration, Vec<Diagnostic>> {
    let lit = crate::parse::parse_number(text)?;
    let mut c = Checker {
        diagnostics: Vec::new(),
    };
    match c.duration_ms(&lit, name) {
        Some(ms) if ms < 0 => Err(vec![Diagnostic::new(
            Problem::NegativeDuration {
                name: name.to_owned(),
                value: lit.value.to_string(),
            },
            lit.span.clone(),
        )]),
        // Beyond u64 milliseconds (584 million years) is out of range too.
        Some(ms) => match u64::try_from(ms) {
            Ok(ms) => Ok(Duration::from_millis(ms)),
            Err(_) => Err(vec![Diagnostic::new(
                Problem::DurationTooLong {
                    name: name.to_owned(),
                    value: lit.value.to_string(),
                },
                lit.span.clone(),
            )]),
        },
        None => Err(c.diagnostics),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Code;

    /// What `every TEXT` says in a program: the interval, or the
    /// diagnostics (code, message, help).
    fn every(text: &str) -> Result<u64, Vec<(Code, String, Option<String>)>> {
        let src = format!("on tcp_probe count every {text}");
        match crate::compile(&src, "<test>", &[]) {
            Ok(p) => Ok(p.clauses[0].output.every_ms.expect("every_ms")),
            Err(ds) => Err(ds
                .into_iter()
                .map(|d| (d.code, d.message, d.help))
                .collect()),
        }
    }

    fn flag(text: &str) -> Result<u64, Vec<(Code, String, Option<String>)>> {
        parse_duration(text, "every")
            .map(|d| d.as_millis() as u64)
            .map_err(|ds| {
                ds.into_iter()
                    .map(|d| (d.code, d.message, d.help))
                    .collect()
            })
    }

    /// Every spelling `every` takes or refuses, the command line takes or
    /// refuses the same way, with the same words (named `every` here so
    /// that they compare). Syntax errors compare by code: what else could
    /// follow differs between a program and a lone value.
    #[test]
    fn every_and_the_command_line_read_durations_alike() {
        let cases = [
            "200ms",
            "10ms",
            "5s",
            "1.5s",
            "1m",
            "2min",
            "1h",
            "1_000ms",
            "0x10s",
            "5",
            "1.5",
            "5x",
            "5parsecs",
            "5S",
            "5sec",
            "1.5ms",
            "0.0001s",
            ".5s",
            "5 s",
            "s",
            "\"5s\"",
            "1e3s",
            "99999999999999999999s",
            "-",
        ];
        for text in cases {
            let (a, b) = (every(text), flag(text));
            match (&a, &b) {
                (Err(x), Err(y)) if x.iter().all(|d| d.0 == Code::Syntax) => {
                    let codes = |v: &Vec<(Code, String, Option<String>)>| {
                        v.iter().map(|d| d.0).collect::<Vec<_>>()
                    };
                    assert_eq!(codes(x), codes(y), "{text}");
                }
                _ => assert_eq!(a, b, "{text}"),
            }
        }
        assert_eq!(flag("1.5s"), Ok(1500));
        assert_eq!(flag("2min"), Ok(120_000));
    }

    /// A bad unit: the code, the message and the help, naming the flag.
    #[test]
    fn a_bad_unit_names_the_flag() {
        let d = &parse_duration("200x", "--duration").unwrap_err()[0];
        assert_eq!(d.code, Code::UnitSuffix);
        assert_eq!(d.message, "`x` is not a unit of `--duration`");
        assert_eq!(
            d.help.as_deref(),
            Some("`--duration` is in milliseconds: write `ms`, `s`, `m` or `h`")
        );
        assert_eq!(d.span, 0..4);
        let d = &every("200x").unwrap_err()[0];
        assert_eq!(
            (d.0, d.1.as_str()),
            (Code::UnitSuffix, "`x` is not a unit of `every`")
        );
    }

    /// Only the ranges differ: `every` wants at least 10 ms, a duration
    /// at least 0.
    #[test]
    fn ranges_are_each_uses_own() {
        assert_eq!(flag("0s"), Ok(0));
        assert_eq!(flag("5ms"), Ok(5));
        assert!(matches!(
            &every("5ms").unwrap_err()[..],
            [(Code::OutOfRange, ..)]
        ));
        let d = &parse_duration("-1s", "--duration").unwrap_err()[0];
        assert_eq!(
            (d.code, d.message.as_str()),
            (Code::OutOfRange, "`--duration -1s` is negative")
        );
        assert!(matches!(
            &every("-1s").unwrap_err()[..],
            [(Code::OutOfRange, ..)]
        ));
    }
}
