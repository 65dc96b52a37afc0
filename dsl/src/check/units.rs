//! Literals with units as plain numbers in a field's unit (`64KiB` is
//! 65536 bytes, `1.5s` is 1500000 microseconds), and how units read in
//! messages. Which comparison the number goes into is `encode.rs`.
use crate::ast::{Literal, Value};
use crate::diagnostic::{Code, Diagnostic};
use crate::plan::{FieldType, Unit};

use super::{shown, Checker};

impl Checker {
    /// A literal as a plain number in `unit` (`64KiB` → 65536 for bytes,
    /// `1.5s` → 1500000 for microseconds). `None` after reporting.
    pub(super) fn in_unit(&mut self, unit: Unit, lit: &Literal, name: &str) -> Option<i128> {
        let (value, frac, suffix) = match &lit.value {
            Value::Int { value, suffix } => (*value, None, suffix.as_deref()),
            Value::Frac { text, suffix } => (0, Some(text.as_str()), suffix.as_deref()),
            other => {
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::TypeMismatch,
                        format!("{} is {}, not a number", shown(lit), other.kind()),
                        lit.span.clone(),
                        "expected a number",
                    )
                    .with_help(format!("`{name}` takes a number here")),
                );
                return None;
            }
        };
        let Some(suffix) = suffix else {
            if frac.is_some() {
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::MissingUnit,
                        format!("{} has a fraction but no unit", shown(lit)),
                        lit.span.clone(),
                        "fraction without a unit",
                    )
                    .with_help(match unit_examples(unit) {
                        Some(ex) => format!(
                            "a fraction needs a unit that makes it whole, e.g. `{}{ex}`",
                            lit.value
                        ),
                        None => format!("`{name}` counts whole things: write a whole number"),
                    }),
                );
                return None;
            }
            return Some(value);
        };
        let Some(factor) = unit_factor(unit, suffix) else {
            let help = match unit_examples(unit) {
                Some(_) => format!(
                    "`{name}` is in {}: write {}",
                    unit_words(unit),
                    unit_list(unit)
                ),
                None => format!("`{name}` has no unit: write a plain number"),
            };
            self.diagnostics.push(
                Diagnostic::error(
                    Code::UnitSuffix,
                    format!("`{suffix}` is not a unit of `{name}`"),
                    lit.span.clone(),
                    if unit == Unit::None {
                        format!("`{name}` has no unit")
                    } else {
                        format!("`{name}` is in {}", unit_words(unit))
                    },
                )
                .with_help(help),
            );
            return None;
        };
        let v = match frac {
            None => value.checked_mul(factor),
            Some(text) => decimal_times(text, factor),
        };
        match v {
            Some(v) => Some(v),
            None => {
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::InvalidLiteral,
                        format!(
                            "{} is not a whole number of {}",
                            shown(lit),
                            unit_words(unit)
                        ),
                        lit.span.clone(),
                        "not whole in this unit",
                    )
                    .with_help(format!(
                        "`{name}` is in {}; write a value that is a whole number of them",
                        unit_words(unit)
                    )),
                );
                None
            }
        }
    }

    /// A literal's value in `unit` without reporting (for cross-checks of
    /// values already checked elsewhere).
    pub(super) fn quiet_value(&mut self, unit: Unit, lit: &Literal) -> Option<i128> {
        let n = self.diagnostics.len();
        let v = self.in_unit(unit, lit, "");
        self.diagnostics.truncate(n);
        v
    }
}

pub(super) fn unit_words(u: Unit) -> &'static str {
    match u {
        Unit::None => "no unit",
        Unit::Bytes => "bytes",
        Unit::Micros => "microseconds",
        Unit::Millis => "milliseconds",
        Unit::Nanos => "nanoseconds",
        Unit::Segments => "segments",
        Unit::DropReason => "a drop reason number",
        Unit::RstReason => "a reset reason number",
        Unit::KernelSymbol | Unit::Address => "a kernel address",
        Unit::Errno => "an errno",
    }
}

/// The unit of a numeric field.
pub(super) fn field_unit(ty: FieldType) -> Unit {
    match ty {
        FieldType::Uint(u) | FieldType::Int(u) => u,
        _ => Unit::None,
    }
}

/// Suffixes a unit takes, for help lines.
fn unit_list(u: Unit) -> &'static str {
    match u {
        Unit::Bytes => "a plain number of bytes or `B`, `KB`, `KiB`, `MB`, `MiB`, `GB`, `GiB`",
        Unit::Micros => "a plain number of microseconds or `us`, `ms`, `s`",
        Unit::Millis => "`ms`, `s`, `m` or `h`",
        Unit::Nanos => "a plain number of nanoseconds or `ns`, `us`, `ms`, `s`",
        Unit::Segments => "a plain number of segments",
        Unit::None => "a plain number",
        Unit::DropReason | Unit::RstReason => {
            "a reason by name (`NO_SOCKET`) or a plain number (this kernel's value)"
        }
        Unit::KernelSymbol | Unit::Address => "a plain number (a kernel address)",
        Unit::Errno => "an errno name (`EPERM`), or a number as the kernel passes it (-1)",
    }
}

/// A typical suffix of a unit that takes fractions.
fn unit_examples(u: Unit) -> Option<&'static str> {
    match u {
        Unit::Bytes => Some("MiB"),
        Unit::Micros | Unit::Millis | Unit::Nanos => Some("s"),
        _ => None,
    }
}

/// `text` (decimal digits with one `.`) times `factor`, when whole.
fn decimal_times(text: &str, factor: i128) -> Option<i128> {
    let (int, frac) = text.split_once('.')?;
    let neg = int.starts_with('-');
    let int: i128 = int.trim_start_matches('-').replace('_', "").parse().ok()?;
    let digits = frac.len() as u32;
    if digits > 18 {
        return None;
    }
    let scale = 10i128.pow(digits);
    let frac: i128 = frac.parse().ok()?;
    let total = int
        .checked_mul(scale)?
        .checked_add(frac)?
        .checked_mul(factor)?;
    if total % scale != 0 {
        return None;
    }
    Some(if neg { -(total / scale) } else { total / scale })
}

/// How many plain units one `suffix` is: `KiB` for bytes is 1024, `ms` for
/// microseconds is 1000. `None` when the suffix does not fit the unit.
fn unit_factor(unit: Unit, suffix: &str) -> Option<i128> {
    let factor: i128 = match (unit, suffix) {
        (Unit::Bytes, "B") => 1,
        (Unit::Bytes, "KB" | "kB") => 1_000,
        (Unit::Bytes, "KiB") => 1 << 10,
        (Unit::Bytes, "MB") => 1_000_000,
        (Unit::Bytes, "MiB") => 1 << 20,
        (Unit::Bytes, "GB") => 1_000_000_000,
        (Unit::Bytes, "GiB") => 1 << 30,
        (Unit::Micros, "us") => 1,
        (Unit::Micros, "ms") => 1_000,
        (Unit::Micros, "s") => 1_000_000,
        (Unit::Millis, "ms") => 1,
        (Unit::Millis, "s") => 1_000,
        (Unit::Millis, "m" | "min") => 60_000,
        (Unit::Millis, "h") => 3_600_000,
        (Unit::Nanos, "ns") => 1,
        (Unit::Nanos, "us") => 1_000,
        (Unit::Nanos, "ms") => 1_000_000,
        (Unit::Nanos, "s") => 1_000_000_000,
        (Unit::Segments, "seg" | "segs" | "segments") => 1,
        _ => return None,
    };
    Some(factor)
}

pub(super) fn max_unsigned(bits: u8) -> i128 {
    if bits >= 64 {
        u64::MAX as i128
    } else {
        (1i128 << bits) - 1
    }
}
