//! Choosing how to attach a probe: a pure function of the probe's
//! strategies (best first), the fields the program uses, and what the
//! kernel was found to offer. No kernel is touched here, so the choice can
//! be replayed over recorded feature sets (`tests/fixtures/kernels/`).
use serde::Serialize;
use tcpq_dsl::plan::{Requirement, Strategy};

use crate::features::KernelFeatures;

/// A strategy that was not taken, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub name: String,
    /// `raw tracepoint net:net_dev_queue`, `fentry tcp_retransmit_skb`.
    pub attach: String,
    pub reasons: Vec<String>,
}

/// The strategy taken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Choice {
    pub strategy: Strategy,
    /// Earlier strategies, and why each was passed over.
    pub skipped: Vec<Skipped>,
    /// Fields of the probe this strategy cannot fill here (none of them is
    /// used by the program), with the reason.
    pub unavailable: Vec<(String, String)>,
}

/// No strategy can serve the program on this kernel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}", self.describe())]
pub struct NoStrategy {
    /// Every strategy, in order, with its reasons.
    pub tried: Vec<Skipped>,
    /// Used fields that a strategy able to run could not fill.
    pub missing_fields: Vec<String>,
}

impl NoStrategy {
    fn describe(&self) -> String {
        let mut s = String::new();
        if !self.missing_fields.is_empty() {
            s.push_str(&format!(
                "no strategy provides {} on this kernel; ",
                self.missing_fields
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        s.push_str("tried ");
        s.push_str(
            &self
                .tried
                .iter()
                .map(|t| format!("{} ({}): {}", t.name, t.attach, t.reasons.join("; ")))
                .collect::<Vec<_>>()
                .join(", then "),
        );
        s
    }
}

/// Take the first strategy whose requirements this kernel meets and which
/// fills every field in `used`. `all_fields` are the probe's fields (for
/// `provides` lists and for reporting what the choice cannot fill).
/// Why `s` cannot attach on this kernel, each reason once; empty when
/// every requirement is met.
pub fn unmet(s: &Strategy, f: &KernelFeatures) -> Vec<String> {
    let mut reasons: Vec<String> = Vec::new();
    for why in s.requirements().iter().filter_map(|r| check(r, f).err()) {
        if !reasons.contains(&why) {
            reasons.push(why);
        }
    }
    reasons
}

pub fn choose(
    strategies: &[Strategy],
    used: &[String],
    all_fields: &[String],
    f: &KernelFeatures,
) -> Result<Choice, NoStrategy> {
    let mut skipped = Vec::new();
    let mut missing_fields: Vec<String> = Vec::new();
    for s in strategies {
        let reasons = unmet(s, f);
        if !reasons.is_empty() {
            skipped.push(Skipped {
                name: s.name.clone(),
                attach: s.attach.describe(),
                reasons,
            });
            continue;
        }
        let unavailable = unavailable_fields(s, all_fields, f);
        let missing: Vec<&(String, String)> = unavailable
            .iter()
            .filter(|(field, _)| used.contains(field))
            .collect();
        if missing.is_empty() {
            return Ok(Choice {
                strategy: s.clone(),
                skipped,
                unavailable,
            });
        }
        for (field, _) in &missing {
            if !missing_fields.contains(field) {
                missing_fields.push(field.clone());
            }
        }
        skipped.push(Skipped {
            name: s.name.clone(),
            attach: s.attach.describe(),
            reasons: missing
                .iter()
                .map(|(field, why)| format!("cannot fill `{field}`: {why}"))
                .collect(),
        });
    }
    Err(NoStrategy {
        tried: skipped,
        missing_fields,
    })
}

/// Fields of the probe that `s` cannot fill on this kernel, with why.
pub fn unavailable_fields(
    s: &Strategy,
    all: &[String],
    f: &KernelFeatures,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for field in all {
        if !s.provides.is_empty() && !s.provides.contains(field) {
            out.push((
                field.clone(),
                format!("strategy {} does not provide it", s.name),
            ));
            continue;
        }
        let why: Vec<String> = s
            .field_requires
            .iter()
            .filter(|fr| fr.fields.contains(field))
            .flat_map(|fr| fr.requires.iter().filter_map(|r| check(r, f).err()))
            .collect();
        if !why.is_empty() {
            out.push((field.clone(), why.join("; ")));
        }
    }
    out
}

/// Whether the kernel meets `r`; if not, why, in words.
pub fn check(r: &Requirement, f: &KernelFeatures) -> Result<(), String> {
    let support = |map: &std::collections::BTreeMap<String, crate::features::Support>,
                   key: &str|
     -> Result<(), String> {
        match map.get(key) {
            Some(s) if s.ok => Ok(()),
            Some(s) => Err(s.detail.clone()),
            None => Err(format!("{key}: not tried")),
        }
    };
    let tracepoint = |category: &str, name: &str| -> Result<(), String> {
        if f.tracefs.is_none() {
            return Err("tracefs is not mounted".into());
        }
        match f.tracepoints.get(&format!("{category}:{name}")) {
            Some(true) => Ok(()),
            Some(false) => Err(format!(
                "tracepoint {category}:{name} does not exist on this kernel"
            )),
            None => Err(format!("tracepoint {category}:{name} was not looked for")),
        }
    };
    match r {
        Requirement::Btf => match &f.btf.path {
            Some(_) => Ok(()),
            None => Err(format!(
                "no kernel BTF ({}); pass --btf PATH",
                f.btf.error.as_deref().unwrap_or("not found")
            )),
        },
        Requirement::ProbeReadKernel if f.probe_read_kernel.ok => Ok(()),
        Requirement::ProbeReadKernel => Err(f.probe_read_kernel.detail.clone()),
        Requirement::RingBuffer if f.ring_buffer.ok => Ok(()),
        Requirement::RingBuffer => Err(f.ring_buffer.detail.clone()),
        Requirement::Tracepoint { category, name } => {
            tracepoint(category, name)?;
            support(&f.program_types, "tracepoint")
        }
        Requirement::RawTracepoint { category, name } => {
            tracepoint(category, name)?;
            support(&f.program_types, "raw_tracepoint")
        }
        Requirement::TracepointField {
            category,
            name,
            field,
        } => {
            tracepoint(category, name)?;
            match f.tracepoint_fields.get(&format!("{category}:{name}")) {
                Some(fields) if fields.contains(field) => Ok(()),
                Some(_) => Err(format!(
                    "tracepoint {category}:{name} has no field `{field}` on this kernel"
                )),
                None => Err(format!("the format of {category}:{name} was not read")),
            }
        }
        Requirement::RawTracepointArg { name, position, ty } => {
            match f.raw_tracepoint_args.get(name) {
                None => Err(format!("the prototype of {name} was not looked for")),
                Some(None) if f.btf.path.is_none() => Err(format!(
                    "raw tracepoint {name}: no BTF to check its arguments against"
                )),
                Some(None) => Err(format!("no btf_trace_{name} in the kernel's BTF")),
                Some(Some(args)) => match args.get(*position) {
                    Some(have) if have == ty => Ok(()),
                    Some(have) => Err(format!(
                        "raw tracepoint {name} argument {position} is `{have}`, not `{ty}`"
                    )),
                    None => Err(format!(
                        "raw tracepoint {name} has {} arguments, none at {position}",
                        args.len()
                    )),
                },
            }
        }
        Requirement::Kprobe { function } => {
            support(&f.attach_types, "kprobe")?;
            match f.functions.get(function) {
                Some(i) if i.kallsyms => Ok(()),
                Some(_) => Err(format!(
                    "{function} is not in kallsyms (inlined or static on this kernel)"
                )),
                None => Err(format!("{function} was not looked for")),
            }
        }
        Requirement::Fentry { function } => {
            support(&f.program_types, "tracing")?;
            support(&f.attach_types, "fentry")?;
            match f.functions.get(function) {
                Some(i) if i.btf => Ok(()),
                Some(_) => Err(format!("{function} is not in the kernel's BTF")),
                None => Err(format!("{function} was not looked for")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{FunctionInfo, Support};
    use tcpq_dsl::plan::{Attach, FieldRequirement};

    fn ok() -> Support {
        Support {
            ok: true,
            detail: "tried".into(),
        }
    }

    fn kernel() -> KernelFeatures {
        let mut f = KernelFeatures {
            tracefs: Some("/sys/kernel/tracing".into()),
            ring_buffer: ok(),
            probe_read_kernel: ok(),
            ..Default::default()
        };
        f.btf.path = Some("/sys/kernel/btf/vmlinux".into());
        for k in ["tracepoint", "raw_tracepoint", "kprobe"] {
            f.program_types.insert(k.into(), ok());
            f.attach_types.insert(k.into(), ok());
        }
        f.program_types.insert("tracing".into(), ok());
        f.attach_types.insert(
            "fentry".into(),
            Support {
                ok: false,
                detail: "attach an fentry trampoline: EPERM".into(),
            },
        );
        f.tracepoints.insert("tcp:tcp_probe".into(), true);
        f.tracepoint_fields
            .insert("tcp:tcp_probe".into(), vec!["snd_cwnd".into()]);
        f.functions.insert(
            "tcp_rcv_established".into(),
            FunctionInfo {
                kallsyms: true,
                btf: true,
            },
        );
        f
    }

    fn strategy(name: &str, attach: Attach) -> Strategy {
        Strategy {
            name: name.into(),
            program: format!("prog_{name}"),
            attach,
            how: String::new(),
            also: vec![],
            requires: vec![],
            provides: vec![],
            field_requires: vec![],
            quick: None,
        }
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn first_working_strategy_wins_and_skips_are_explained() {
        let f = kernel();
        let list = vec![
            strategy(
                "fentry",
                Attach::Fentry {
                    function: "tcp_rcv_established".into(),
                    exit: false,
                },
            ),
            strategy(
                "kprobe",
                Attach::Kprobe {
                    function: "tcp_rcv_established".into(),
                    ret: false,
                },
            ),
            strategy(
                "tracepoint",
                Attach::Tracepoint {
                    category: "tcp".into(),
                    name: "tcp_probe".into(),
                },
            ),
        ];
        let c = choose(&list, &[], &[], &f).unwrap();
        assert_eq!(c.strategy.name, "kprobe");
        assert_eq!(c.skipped.len(), 1);
        assert!(c.skipped[0].reasons[0].contains("EPERM"), "{:?}", c.skipped);
    }

    #[test]
    fn a_strategy_that_cannot_fill_a_used_field_is_skipped() {
        let f = kernel();
        let mut tp = strategy(
            "tracepoint",
            Attach::Tracepoint {
                category: "tcp".into(),
                name: "tcp_probe".into(),
            },
        );
        tp.field_requires = vec![FieldRequirement {
            fields: names(&["srtt"]),
            requires: vec![Requirement::TracepointField {
                category: "tcp".into(),
                name: "tcp_probe".into(),
                field: "srtt".into(),
            }],
        }];
        let all = names(&["snd_cwnd", "srtt"]);
        // Unused: the strategy runs, and says what it cannot fill.
        let c = choose(std::slice::from_ref(&tp), &names(&["snd_cwnd"]), &all, &f).unwrap();
        assert_eq!(c.unavailable.len(), 1);
        assert_eq!(c.unavailable[0].0, "srtt");
        // Used: no strategy; the error names the field and what was tried.
        let e = choose(&[tp], &names(&["srtt"]), &all, &f).unwrap_err();
        assert_eq!(e.missing_fields, names(&["srtt"]));
        let text = e.to_string();
        assert!(
            text.contains("`srtt`") && text.contains("tracepoint (tracepoint tcp:tcp_probe)"),
            "{text}"
        );
    }

    #[test]
    fn provides_limits_fields() {
        let f = kernel();
        let mut s = strategy(
            "tracepoint",
            Attach::Tracepoint {
                category: "tcp".into(),
                name: "tcp_probe".into(),
            },
        );
        s.provides = names(&["snd_cwnd"]);
        let all = names(&["snd_cwnd", "srtt"]);
        assert!(choose(std::slice::from_ref(&s), &names(&["snd_cwnd"]), &all, &f).is_ok());
        assert!(choose(&[s], &names(&["srtt"]), &all, &f).is_err());
    }

    #[test]
    fn missing_btf_and_tracefs_are_named() {
        let mut f = kernel();
        f.btf.path = None;
        f.btf.error = Some("cannot read BTF".into());
        assert!(check(&Requirement::Btf, &f).unwrap_err().contains("--btf"));
        f.tracefs = None;
        let e = check(
            &Requirement::Tracepoint {
                category: "tcp".into(),
                name: "tcp_probe".into(),
            },
            &f,
        )
        .unwrap_err();
        assert!(e.contains("tracefs"), "{e}");
    }
}
