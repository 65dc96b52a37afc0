//! Binding a plan to this kernel's numbers: each named kernel constant a
//! filter compares with (`reason == NETFILTER_DROP`) becomes the value this
//! kernel's BTF gives it, or a located error. Only the plan's filter values
//! change; what reads the enums from BTF is `kernel.rs`.
use tcpq_dsl::plan::Plan;

use super::{Kernel, SessionError, Unbound};

impl Kernel {
    /// `plan` with every named kernel constant of its filters
    /// ([`tcpq_dsl::plan::InsnBind`]) replaced by this kernel's number,
    /// from [`Kernel::enums`]. A constant this kernel lacks is an error
    /// pointing at where the program names it.
    pub fn bind(&self, plan: &Plan) -> Result<Plan, SessionError> {
        bind_plan(plan, &self.enums)
    }
}

/// [`Kernel::bind`] over an explicit table of enums (value, constant).
pub fn bind_plan(
    plan: &Plan,
    enums: &std::collections::HashMap<String, Vec<(u64, String)>>,
) -> Result<Plan, SessionError> {
    let mut bound = plan.clone();
    for c in &mut bound.clauses {
        for b in &c.binds {
            let e = &b.bind;
            let unavailable = |why: String, suggestion: Option<String>| {
                SessionError::ConstantUnavailable(Box::new(Unbound {
                    probe: c.probe.clone(),
                    enum_name: e.enum_name.clone(),
                    constant: e.constant.clone(),
                    span: e.span,
                    why,
                    suggestion,
                }))
            };
            let Some(values) = enums.get(&e.enum_name) else {
                return Err(unavailable(
                    format!("this kernel's BTF has no `enum {}`", e.enum_name),
                    None,
                ));
            };
            let Some((v, _)) = values.iter().find(|(_, n)| *n == e.constant) else {
                let names = values.iter().map(|(_, n)| n.as_str());
                let suggestion =
                    tcpq_dsl::diagnostic::suggest(&e.constant, names).map(str::to_owned);
                return Err(unavailable(
                    format!(
                        "its {} constants are this kernel's; this one is newer or older",
                        values.len()
                    ),
                    suggestion,
                ));
            };
            match c.filter.get_mut(usize::from(b.insn)) {
                Some(insn) => insn.value = *v,
                None => {
                    return Err(SessionError::PlanTooBig {
                        probe: c.probe.clone(),
                        what: format!("binding of instruction {} past the filter", b.insn),
                    })
                }
            }
        }
    }
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reason named in the program takes the number of the kernel it
    /// runs on: the same plan binds to different numbers on kernels that
    /// number the enum differently, and a name a kernel lacks is a located
    /// error with the closest name it has.
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
            let b = bind_plan(&plan, &enums).unwrap();
            let values: Vec<u64> = b.clauses[0].filter.iter().map(|i| i.value).collect();
            assert_eq!(values, [nf, 3]);
            let mut vals = [0u64; tcpq_abi::N_SLOTS];
            vals[tcpq_abi::slot::drop::REASON as usize] = nf;
            assert!(tcpq_dsl::filter::run(&b.clauses[0].filter, &vals));
            vals[tcpq_abi::slot::drop::REASON as usize] = 0;
            assert!(!tcpq_dsl::filter::run(&b.clauses[0].filter, &vals));
        }
        let old = kernel(&[
            (3, "SKB_DROP_REASON_NO_SOCKET"),
            (9, "SKB_DROP_REASON_NETFILTER"),
        ]);
        match bind_plan(&plan, &old) {
            Err(SessionError::ConstantUnavailable(u)) => {
                assert_eq!(u.constant, "SKB_DROP_REASON_NETFILTER_DROP");
                assert_eq!(&src[u.span.0..u.span.1], "NETFILTER_DROP");
                assert_eq!(u.suggestion.as_deref(), Some("SKB_DROP_REASON_NETFILTER"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            bind_plan(&plan, &Default::default()),
            Err(SessionError::ConstantUnavailable(_))
        ));
    }
}
