//! The modifiers after a clause's action: `top N`, `every DUR` and `limit
//! N`, each once and only where it applies, into the clause's [`Output`].
//! How the output is printed is the runtime's.
use crate::ast::{ModifierKind, Value};
use crate::diagnostic::{Diagnostic, Problem};
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
                ModifierKind::Top | ModifierKind::Every => is_print,
                ModifierKind::Limit => !is_print,
            };
            let already = match m.kind {
                ModifierKind::Top => out.top.is_some(),
                ModifierKind::Every => out.every_ms.is_some(),
                ModifierKind::Limit => out.limit.is_some(),
            };
            if misplaced || already {
                self.diagnostics.push(Diagnostic::new(
                    Problem::BadModifier {
                        word,
                        twice: already,
                        misplaced,
                    },
                    m.span.clone(),
                ));
                continue;
            }
            match m.kind {
                ModifierKind::Every => {
                    // The command line's `--duration` reads DUR the same way.
                    let ms = self.duration_ms(&m.value, "every");
                    if let Some(ms) = ms {
                        if ms < MIN_EVERY_MS as i128 || ms > u64::MAX as i128 {
                            self.diagnostics.push(Diagnostic::new(
                                Problem::EveryTooShort {
                                    value: m.value.value.to_string(),
                                    min_ms: MIN_EVERY_MS,
                                },
                                m.value.span.clone(),
                            ));
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
                            self.diagnostics.push(Diagnostic::new(
                                Problem::NotACount {
                                    word,
                                    value: m.value.value.to_string(),
                                },
                                m.value.span.clone(),
                            ));
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
