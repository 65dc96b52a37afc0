//! The modifiers after a clause's action: `top N`, `every DUR` and `limit
//! N`, each once and only where it applies, into the clause's [`Output`].
//! How the output is printed is the runtime's.
use crate::ast::{ModifierKind, Value};
use crate::diagnostic::{Code, Diagnostic};
use crate::plan::Output;
use crate::resolve::RAction;

use super::{Checker, MIN_EVERY_MS};

impl Checker {
    pub(super) fn modifiers(&mut self, mods: &[crate::ast::Modifier], action: &RAction) -> Output {
        let mut out = Output::default();
        let is_print = matches!(action, RAction::Print { .. });
        for m in mods {
            let word = m.kind.word();
            let misplaced = match m.kind {
                ModifierKind::Top | ModifierKind::Every if is_print => Some(format!(
                    "`{word}` applies to aggregations (`count`, `sum`, `hist`, ...), not to `print`"
                )),
                ModifierKind::Limit if !is_print => Some(
                    "`limit` applies to `print`; an aggregation prints once at the end (or `every DUR`)"
                        .to_string(),
                ),
                _ => None,
            };
            let already = match m.kind {
                ModifierKind::Top => out.top.is_some(),
                ModifierKind::Every => out.every_ms.is_some(),
                ModifierKind::Limit => out.limit.is_some(),
            };
            if misplaced.is_some() || already {
                let help = misplaced.unwrap_or_else(|| format!("keep one `{word}`"));
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::BadModifier,
                        if already {
                            format!("`{word}` is given twice")
                        } else {
                            format!("`{word}` does not apply here")
                        },
                        m.span.clone(),
                        format!("`{word}` here"),
                    )
                    .with_help(help),
                );
                continue;
            }
            match m.kind {
                ModifierKind::Every => {
                    // The command line's `--duration` reads DUR the same way.
                    let ms = self.duration_ms(&m.value, "every");
                    if let Some(ms) = ms {
                        if ms < MIN_EVERY_MS as i128 || ms > u64::MAX as i128 {
                            self.diagnostics.push(
                                Diagnostic::error(
                                    Code::OutOfRange,
                                    format!("`every {}` is too short", m.value.value),
                                    m.value.span.clone(),
                                    format!("at least {MIN_EVERY_MS}ms"),
                                )
                                .with_help(format!("print at most every {MIN_EVERY_MS}ms")),
                            );
                        } else {
                            out.every_ms = Some(ms as u64);
                        }
                    }
                }
                ModifierKind::Top | ModifierKind::Limit => {
                    let n = match &m.value.value {
                        Value::Int {
                            value,
                            suffix: None,
                        } if *value >= 1 && *value <= u64::MAX as i128 => Some(*value as u64),
                        _ => {
                            self.diagnostics.push(
                                Diagnostic::error(
                                    Code::InvalidLiteral,
                                    format!(
                                        "`{word} {}` needs a whole number from 1 up",
                                        m.value.value
                                    ),
                                    m.value.span.clone(),
                                    "not a count",
                                )
                                .with_help(format!("write e.g. `{word} 10`")),
                            );
                            None
                        }
                    };
                    if m.kind == ModifierKind::Top {
                        out.top = n.or(out.top);
                    } else {
                        out.limit = n.or(out.limit);
                    }
                }
            }
        }
        out
    }
}
