//! Literals with units as plain numbers in a field's unit (`64KiB` is
//! 65536 bytes, `1.5s` is 1500000 microseconds), and how units read in
//! messages. Which comparison the number goes into is `encode.rs`.
use crate::ast::{Literal, Value};
pub(super) use crate::diagnostic::unit_words;
use crate::diagnostic::{Diagnostic, Problem, Shown};
use crate::plan::{FieldType, Unit};

use super::Checker;

impl Checker {
    /// A literal as a plain number in `unit` (`64KiB` → 65536 for bytes,
    /// `1.5s` → 1500000 for microseconds). `None` after reporting.
    pub(super) fn in_unit(&mut self, unit: Unit, lit: &Literal, name: &str) -> Option<i128> {
        let (value, frac, suffix) = match &lit.value {
            Value::Int { value, suffix } => (*value, None, suffix.as_deref()),
            Value::Frac { text, suffix } => (0, Some(text.as_str()), suffix.as_deref()),
            other => {
                self.diagnostics.push(Diagnostic::new(
                    Problem::NotANumber {
                        value: Shown::of(lit),
                        kind: other.kind(),
                        field: name.to_owned(),
                    },
                    lit.span.clone(),
                ));
                return None;
            }
        };
        let Some(suffix) = suffix else {
            if frac.is_some() {
                self.diagnostics.push(Diagnostic::new(
                    Problem::FractionWithoutUnit {
                        value: Shown::of(lit),
                        literal: lit.value.to_string(),
                        field: name.to_owned(),
                        unit,
                    },
                    lit.span.clone(),
                ));
                return None;
            }
            return Some(value);
        };
        let Some(factor) = unit_factor(unit, suffix) else {
            self.diagnostics.push(Diagnostic::new(
                Problem::NotAUnit {
                    suffix: suffix.to_owned(),
                    field: name.to_owned(),
                    unit,
                },
                lit.span.clone(),
            ));
            return None;
        };
        let v = match frac {
            None => value.checked_mul(factor),
            Some(text) => decimal_times(text, factor),
        };
        match v {
            Some(v) => Some(v),
            None => {
                self.diagnostics.push(Diagnostic::new(
                    Problem::NotWholeInUnit {
                        value: Shown::of(lit),
                        field: name.to_owned(),
                        unit,
                    },
                    lit.span.clone(),
                ));
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

/// The unit of a numeric field.
pub(super) fn field_unit(ty: FieldType) -> Unit {
    match ty {
        FieldType::Uint(u) | FieldType::Int(u) => u,
        _ => Unit::None,
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
