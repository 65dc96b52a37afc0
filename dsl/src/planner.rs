//! Pass 4: a checked program → [`Plan`], the plain value the runtime loads.
//!
//! The template and attach strategies depend only on the probe; the `where`
//! clause only changes the filter instructions written into the template's
//! config map. That is what keeps "a where-clause never changes the loaded
//! bytes" true.
use crate::catalog::ProbeDef;
use crate::check::{Checked, Cond, Test};
use crate::diagnostic::{Code, Diagnostic};
use crate::filter::{self, CompileError};
use crate::plan::{Action, ClausePlan, CmpOp, Insn, Jump, LoadSpec, Plan};

/// Produce the plan of a checked program.
pub fn plan(checked: &Checked) -> Result<Plan, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let mut clauses = Vec::new();
    for c in &checked.clauses {
        // A view's fixed filter goes first: `tcp_connect where X` is
        // `tcp_state where oldstate == SYN_SENT and newstate == ESTABLISHED
        // and X`.
        let cond = c
            .probe
            .implicit
            .iter()
            .rev()
            .map(|&(slot, value, equal)| {
                Cond::Test(Test {
                    slots: vec![(slot, value)],
                    op: if equal { CmpOp::Eq } else { CmpOp::Ne },
                    signed: false,
                    mask: u64::MAX,
                    bind: None,
                })
            })
            .fold(c.filter.clone(), |acc, t| match acc {
                None => Some(t),
                Some(rest) => Some(Cond::And(Box::new(t), Box::new(rest))),
            });
        let filter::Compiled {
            insns: filter,
            binds,
        } = match filter::compile(cond.as_ref()) {
            Ok(f) => f,
            Err(CompileError::TooLong(n)) => {
                // `check` already rejects this with a located diagnostic;
                // this guards callers that build a `Checked` themselves.
                errors.push(Diagnostic::unlocated(
                    Code::FilterTooLong,
                    format!(
                        "the `where` clause of `{}` needs {n} filter instructions; at most {} fit",
                        c.probe.name,
                        tcpq_abi::MAX_INSNS
                    ),
                ));
                continue;
            }
        };
        let loads = loads_for(c.probe, &filter, &c.action);
        let mut strategies: Vec<_> = c.probe.strategies.iter().map(|s| s.to_plan()).collect();
        // A strategy that makes the filter's first test cheaper goes first;
        // the others keep their order behind it.
        if let Some((program, _)) = first_test_preference(c.probe, &filter) {
            if let Some(k) = strategies.iter().position(|s| s.program == program) {
                let s = strategies.remove(k);
                strategies.insert(0, s);
            }
        }
        clauses.push(ClausePlan {
            loads,
            probe: c.probe.name.to_string(),
            template: c.probe.template.to_string(),
            strategies,
            where_source: c.where_source.clone(),
            where_words: c.where_words.clone(),
            where_omitted: c.where_omitted.clone(),
            filter,
            binds,
            field_spans: c.field_spans.clone(),
            action: c.action.clone(),
            output: c.output.clone(),
        });
    }
    if errors.is_empty() {
        Ok(Plan {
            clauses,
            left_out: Vec::new(),
        })
    } else {
        Err(errors)
    }
}

/// The program (`FIRST_TEST_PREFERS`) that makes the filter's first test
/// cheaper, when that test alone can reject an event, with the field it
/// reads.
pub(crate) fn first_test_preference(
    probe: &ProbeDef,
    filter: &[Insn],
) -> Option<(&'static str, &'static str)> {
    let first = filter
        .first()
        .filter(|i| (i.jt == Jump::Reject) != (i.jf == Jump::Reject))
        .and_then(|i| probe.field_at_slot(i.slot))?;
    let program = probe
        .strategies
        .iter()
        .map(|s| s.abi.program)
        .find(|program| {
            crate::catalog::FIRST_TEST_PREFERS
                .iter()
                .any(|(p, fields)| p == program && fields.contains(&first.name))
        })?;
    Some((program, first.name))
}

/// The loads the template must do for this clause: one per loaded field
/// that the filter or the output uses, in slot order.
fn loads_for(probe: &ProbeDef, filter: &[Insn], action: &Action) -> Vec<LoadSpec> {
    let mut slots: Vec<u8> = filter.iter().map(|i| i.slot).collect();
    slots.extend(action.columns().flat_map(|c| c.slots.iter().copied()));
    slots.sort_unstable();
    slots.dedup();
    slots
        .into_iter()
        .filter_map(|s| probe.field_at_slot(s))
        .filter_map(|f| f.load_spec())
        .collect()
}
