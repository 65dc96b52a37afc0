//! The `where` clause in plain words, for `--explain` and the plan
//! (`` `win` is 0 and `sport` is 8080 ``). Only wording: what the
//! condition tests is `condition.rs`.
use crate::ast::{CmpOp, Value};
use crate::plan::{FieldType, Unit};
use crate::resolve::{RExpr, RSetItem};

use super::units::unit_words;

/// The condition in plain words, e.g. "`win` is 0 and `sport` is 8080".
/// A mix of `and` and `or` is always parenthesised: readers should not need
/// to know precedence.
pub(super) fn in_words(e: &RExpr) -> String {
    words(e, None)
}

/// [`in_words`] of `e` inside `parent` (parenthesised when it differs).
fn words(e: &RExpr, parent: Option<Bin>) -> String {
    let group = |me: Bin, a: &RExpr, b: &RExpr, word: &str| {
        let s = format!("{} {word} {}", words(a, Some(me)), words(b, Some(me)));
        match parent {
            Some(p) if p != me => format!("({s})"),
            _ => s,
        }
    };
    match e {
        RExpr::Invalid | RExpr::Omitted => "?".into(),
        RExpr::Bare(f) => format!("`{}` is true", f.def.name),
        RExpr::Not(x) => match &**x {
            RExpr::Bare(f) => format!("`{}` is false", f.def.name),
            other => format!("not ({})", words(other, None)),
        },
        RExpr::In { field, items, .. } => {
            let list: Vec<String> = items
                .iter()
                .map(|i| match i {
                    RSetItem::One(l) => l.value.to_string(),
                    RSetItem::Range(a, b, _) => format!("{}..{}", a.value, b.value),
                    RSetItem::Cidr(a, n, _) => format!("{a}/{n}"),
                })
                .collect();
            format!("`{}` is in [{}]", field.def.name, list.join(", "))
        }
        RExpr::And(a, b) => group(Bin::And, a, b, "and"),
        RExpr::Or(a, b) => group(Bin::Or, a, b, "or"),
        RExpr::Compare {
            field,
            op,
            value,
            scale,
            ..
        } => {
            let name = match scale {
                Some(s) => format!("{} {} {}", field.def.name, s.op.symbol(), s.by.value),
                None => field.def.name.to_string(),
            };
            let verb = match op {
                CmpOp::Eq => "is",
                CmpOp::Ne => "is not",
                CmpOp::Lt => "is below",
                CmpOp::Le => "is at most",
                CmpOp::Gt => "is above",
                CmpOp::Ge => "is at least",
            };
            let unit = match field.def.ty {
                // An errno's name says it all.
                FieldType::Int(Unit::Errno) => String::new(),
                FieldType::Uint(u) | FieldType::Int(u) if u != Unit::None => {
                    format!(" {}", unit_words(u))
                }
                _ => String::new(),
            };
            let prefix = match &value.value {
                Value::Str(t) if field.def.ty == FieldType::Comm && t.ends_with('*') => {
                    Some(format!("{:?}", &t[..t.len() - 1]))
                }
                _ => None,
            };
            let verb = match (&prefix, op) {
                (Some(_), CmpOp::Ne) => "does not start with",
                (Some(_), _) => "starts with",
                _ => verb,
            };
            let shown_value = prefix.unwrap_or_else(|| value.value.to_string());
            let from = match &value.from_param {
                Some(p) => format!(" (from `${p}`)"),
                None => String::new(),
            };
            let unit = if scale.is_some()
                || matches!(
                    value.value,
                    Value::Int {
                        suffix: Some(_),
                        ..
                    } | Value::Frac { .. }
                ) {
                String::new()
            } else {
                unit
            };
            format!("`{name}` {verb} {shown_value}{unit}{from}")
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Bin {
    And,
    Or,
}
