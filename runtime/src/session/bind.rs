//! Binding a plan to this kernel: the one step between the language's
//! final plan and loading it. For each clause it takes the first strategy
//! this kernel supports (the plan's order), checks that every kernel
//! location a used field needs resolved, gives each named kernel constant
//! (`reason == NETFILTER_DROP`) this kernel's number, and places the
//! chosen program's quick first step at this kernel's offset. Everything
//! else in the `CONFIG` entry is the plan's.
//!
//! What goes wrong is returned as located diagnostics, every clause's
//! together: a field this kernel lacks points at where the program names
//! it, a constant at the constant, a probe that cannot attach at the
//! probe (the plan carries the spans: nothing is parsed again).
use tcpq_abi::TemplateConfig;
use tcpq_dsl::{
    plan::{ClausePlan, Plan},
    Diagnostic,
};

use super::Kernel;
use crate::strategy::Choice;

/// A plan bound to this kernel: what [`super::Session::open`] loads.
#[derive(Clone, Debug)]
pub struct Bound {
    /// The plan, its named constants replaced by this kernel's numbers.
    pub plan: Plan,
    /// Per clause, in the plan's order.
    pub clauses: Vec<BoundClause>,
}

/// One clause bound to this kernel.
#[derive(Clone, Debug)]
pub struct BoundClause {
    /// The strategy taken, and the ones passed over with why.
    pub choice: Choice,
    /// The template's `CONFIG` entry, complete: the plan's, with the
    /// constants' numbers and the chosen program's quick step placed.
    pub config: TemplateConfig,
}

impl Bound {
    /// Clause `k` alone, as a plan of its own: what a [`super::Session`]
    /// of that one clause loads (`tcpq serve` opens one per clause, so that
    /// a reload keeps each unchanged clause's maps). The ring buffer size
    /// is the plan's; the owner programs' timing only when the clause uses
    /// the owner. `None` past the last clause.
    pub fn clause(&self, k: usize) -> Option<Bound> {
        let c = self.plan.clauses.get(k)?;
        let plan = Plan {
            clauses: vec![c.clone()],
            left_out: Vec::new(),
            ring_bytes: self.plan.ring_bytes,
            owner_io: self.plan.owner_io.filter(|_| c.uses_owner()),
        };
        Some(Bound {
            plan,
            clauses: vec![self.clauses.get(k)?.clone()],
        })
    }
}

impl Kernel {
    /// Bind `plan` to this kernel (see the module's doc). Every problem of
    /// every clause is returned, each located in the program's source.
    pub fn bind(&self, plan: &Plan) -> Result<Bound, Vec<Diagnostic>> {
        let mut plan = plan.clone();
        let mut problems = Vec::new();
        let mut clauses = Vec::with_capacity(plan.clauses.len());
        for c in &mut plan.clauses {
            problems.extend(bind_constants(c, &self.enums));
            problems.extend(self.unresolved_fields(c));
            let choice = match self.choose(c) {
                Ok(choice) => choice,
                Err(e) => {
                    let why = e.to_string();
                    problems.push(tcpq_dsl::probe_unavailable(c.probe_span, &c.probe, &why));
                    continue;
                }
            };
            let mut config = c.config;
            if let Some(q) = &choice.strategy.quick {
                let loc = q
                    .entry
                    .filter(|&i| self.offsets.has(i))
                    .map(|i| self.offsets.locs[i as usize]);
                config.quick = q.place(loc);
            }
            clauses.push(BoundClause { choice, config });
        }
        match problems.is_empty() {
            true => Ok(Bound { plan, clauses }),
            false => Err(problems),
        }
    }

    /// A field the clause uses whose kernel location this kernel lacks
    /// ([`ClausePlan::needs`]): it would read zeros, so the clause is
    /// refused. One diagnostic per field, at its first use.
    fn unresolved_fields(&self, c: &ClausePlan) -> Vec<Diagnostic> {
        c.needs
            .iter()
            .filter_map(|n| {
                let idx = *n.offsets.iter().find(|i| !self.offsets.has(**i))?;
                Some(tcpq_dsl::field_unavailable(
                    c.field_span(&n.field),
                    &c.probe,
                    &n.field,
                    &self.offsets.why_unresolved(idx),
                ))
            })
            .collect()
    }
}

/// Give each named kernel constant of `c`'s filter
/// ([`tcpq_dsl::plan::InsnBind`]) its number in `enums` (value, constant
/// by BTF enum name); a constant missing there is a diagnostic at the
/// constant, with the closest name the kernel has.
fn bind_constants(
    c: &mut ClausePlan,
    enums: &std::collections::HashMap<String, Vec<(u64, String)>>,
) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    for b in c.binds.clone() {
        let e = &b.bind;
        let unavailable = |why: String, suggestion: Option<&str>| {
            tcpq_dsl::constant_unavailable(e.span, &e.constant, &e.enum_name, &why, suggestion)
        };
        let Some(values) = enums.get(&e.enum_name) else {
            problems.push(unavailable(
                format!("this kernel's BTF has no `enum {}`", e.enum_name),
                None,
            ));
            continue;
        };
        let Some((v, _)) = values.iter().find(|(_, n)| *n == e.constant) else {
            let names = values.iter().map(|(_, n)| n.as_str());
            let suggestion = tcpq_dsl::diagnostic::suggest(&e.constant, names);
            problems.push(unavailable(
                format!(
                    "its {} constants are this kernel's; this one is newer or older",
                    values.len()
                ),
                suggestion,
            ));
            continue;
        };
        // The plan's steps and its CONFIG entry alike; lowering made the
        // binding for a step it wrote, so this always finds it.
        let bound = c.bind_value(b.insn, *v);
        debug_assert!(bound, "binding of step {} past the filter", b.insn);
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reason named in the program takes the number of the kernel it
    /// runs on: the same plan binds to different numbers on kernels that
    /// number the enum differently (in the plan's steps and in the CONFIG
    /// entry alike), and a name a kernel lacks is a located error with the
    /// closest name it has.
    #[test]
    fn named_reasons_bind_to_each_kernels_numbers() {
        let src = "on tcp_drop where reason in [NETFILTER_DROP, NO_SOCKET] count";
        let plan = tcpq_dsl::compile(src, "<test>", &[]).unwrap();
        assert_eq!(plan.clauses[0].binds.len(), 2);
        assert!(plan.clauses[0].filter.iter().all(|i| i.value == 0));
        let kernel = |pairs: &[(u64, &str)]| {
            let mut m = std::collections::HashMap::new();
            m.insert(
                "skb_drop_reason".to_string(),
                pairs.iter().map(|(v, n)| (*v, n.to_string())).collect(),
            );
            m
        };
        // 6.18's numbers, and 6.1's (fewer reasons before NETFILTER_DROP).
        for (enums, nf) in [
            (
                kernel(&[
                    (3, "SKB_DROP_REASON_NO_SOCKET"),
                    (12, "SKB_DROP_REASON_NETFILTER_DROP"),
                ]),
                12,
            ),
            (
                kernel(&[
                    (3, "SKB_DROP_REASON_NO_SOCKET"),
                    (8, "SKB_DROP_REASON_NETFILTER_DROP"),
                ]),
                8,
            ),
        ] {
            let mut c = plan.clauses[0].clone();
            assert!(bind_constants(&mut c, &enums).is_empty());
            let values: Vec<u64> = c.filter.iter().map(|i| i.value).collect();
            assert_eq!(values, [nf, 3]);
            let abi: Vec<u64> = c.config.insns[..2].iter().map(|i| i.value).collect();
            assert_eq!(abi, [nf, 3]);
            let mut vals = [0u64; tcpq_abi::N_SLOTS];
            vals[tcpq_abi::slot::drop::REASON as usize] = nf;
            assert!(tcpq_dsl::filter::run(&c.filter, &vals));
            vals[tcpq_abi::slot::drop::REASON as usize] = 0;
            assert!(!tcpq_dsl::filter::run(&c.filter, &vals));
        }
        let old = kernel(&[
            (3, "SKB_DROP_REASON_NO_SOCKET"),
            (9, "SKB_DROP_REASON_NETFILTER"),
        ]);
        let mut c = plan.clauses[0].clone();
        let problems = bind_constants(&mut c, &old);
        assert_eq!(problems.len(), 1);
        let d = &problems[0];
        assert_eq!(d.code, tcpq_dsl::Code::ConstantUnavailable);
        assert_eq!(&src[d.span.clone()], "NETFILTER_DROP");
        assert!(
            d.help
                .as_deref()
                .is_some_and(|h| h.contains("SKB_DROP_REASON_NETFILTER")),
            "{d:?}"
        );
        // No enum at all: both constants are reported.
        let mut c = plan.clauses[0].clone();
        assert_eq!(bind_constants(&mut c, &Default::default()).len(), 2);
    }
}
