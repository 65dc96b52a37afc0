//! `tcpq doctor`: what this kernel offers tcpq, found by trying, and for
//! every probe in the catalog the strategy it would use or why it cannot
//! run. Text for people; `--format json` is one object whose `features`
//! member is exactly what `tests/fixtures/kernels/*.json` record.
use std::{path::Path, process::ExitCode, time::Instant};

use serde_json::{json, Value};
use tcpq_dsl::catalog::PROBES;
use tcpq_runtime::{
    btf::{Btf, VMLINUX_BTF},
    features::{KernelFeatures, Needs, Support},
    offsets::Offsets,
    session::owner_programs,
    strategy::{self, check},
    tracefs::Tracefs,
};

/// One probe's verdict.
struct Verdict {
    name: &'static str,
    strategy: Option<String>,
    attach: Option<String>,
    available: bool,
    reason: String,
    skipped: Vec<Value>,
    unavailable_fields: Vec<Value>,
    /// Every strategy of the probe, in order, and whether this kernel
    /// meets its requirements (`--strategy NAME` forces one).
    strategies: Vec<Value>,
}

/// Decide every catalog probe against `f`: the strategy that fills all of
/// the probe's fields, else one that runs with fewer, else why none runs.
fn verdicts(f: &KernelFeatures) -> Vec<Verdict> {
    PROBES
        .iter()
        .map(|p| {
            let strategies: Vec<_> = p.strategies.iter().map(|s| s.to_plan()).collect();
            let all: Vec<String> = p.all_fields().map(|f| f.name.to_owned()).collect();
            let chosen = strategy::choose(&strategies, &all, &all, f)
                .or_else(|_| strategy::choose(&strategies, &[], &all, f));
            let each: Vec<Value> = strategies
                .iter()
                .map(|s| {
                    let reasons = strategy::unmet(s, f);
                    json!({
                        "name": s.name,
                        "attach": s.attach.describe(),
                        "available": reasons.is_empty(),
                        "reasons": reasons,
                    })
                })
                .collect();
            match chosen {
                Ok(c) => {
                    let mut reason = Vec::new();
                    for k in &c.skipped {
                        reason.push(format!("{} skipped: {}", k.name, k.reasons.join("; ")));
                    }
                    // Fields grouped by why they are unavailable.
                    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
                    for (field, why) in &c.unavailable {
                        match groups.iter_mut().find(|(w, _)| *w == why.as_str()) {
                            Some((_, fs)) => fs.push(field),
                            None => groups.push((why, vec![field])),
                        }
                    }
                    for (why, fields) in groups {
                        reason.push(format!(
                            "runs without {}: {why}",
                            fields
                                .iter()
                                .map(|f| format!("`{f}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                    if reason.is_empty() {
                        reason.push("every requirement met, every field available".into());
                    }
                    Verdict {
                        name: p.name,
                        strategy: Some(c.strategy.name.clone()),
                        attach: Some(c.strategy.attach.describe()),
                        available: true,
                        reason: reason.join("; "),
                        skipped: c
                            .skipped
                            .iter()
                            .map(|k| json!({"name": k.name, "attach": k.attach, "reasons": k.reasons}))
                            .collect(),
                        unavailable_fields: c
                            .unavailable
                            .iter()
                            .map(|(f, why)| json!({"field": f, "reason": why}))
                            .collect(),
                        strategies: each,
                    }
                }
                Err(e) => Verdict {
                    name: p.name,
                    strategy: None,
                    attach: None,
                    available: false,
                    reason: e.to_string(),
                    skipped: e
                        .tried
                        .iter()
                        .map(|k| json!({"name": k.name, "attach": k.attach, "reasons": k.reasons}))
                        .collect(),
                    unavailable_fields: vec![],
                    strategies: each,
                },
            }
        })
        .collect()
}

fn yes(s: &Support) -> &'static str {
    if s.ok {
        "yes"
    } else {
        "NO "
    }
}

pub fn run(as_json: bool, btf_path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    // Root may mount tracefs (as a run would); others only look.
    let (tracefs, tracefs_note) = if root {
        match Tracefs::locate() {
            Ok(t) => (Some(t), None),
            Err(e) => (None, Some(e.to_string())),
        }
    } else {
        (Tracefs::find(), None)
    };
    let btf = match btf_path {
        Some(p) => Btf::parse_file(p),
        None => Btf::from_sys_fs(),
    };
    let features = KernelFeatures::detect(
        &Needs::catalog(),
        btf.as_ref(),
        btf_path.is_some(),
        tracefs.as_ref(),
        true,
    );
    let offsets = match (&btf, &tracefs) {
        (Ok(b), Some(t)) => Some(Offsets::resolve(b, t)),
        _ => None,
    };
    let verdicts = verdicts(&features);
    let owner_gaps: Vec<String> = owner_programs()
        .into_iter()
        .flat_map(|(_, points)| points)
        .map(|p| p.requirement())
        .filter_map(|r| check(&r, &features).err())
        .collect();
    let elapsed = start.elapsed();

    if as_json {
        let v = json!({
            "kernel": features.kernel,
            "btf": features.btf,
            "tracefs": features.tracefs,
            "privilege": features.privilege,
            "probes": verdicts.iter().map(|v| json!({
                "name": v.name,
                "strategy": v.strategy,
                "attach": v.attach,
                "available": v.available,
                "reason": v.reason,
                "skipped": v.skipped,
                "unavailable_fields": v.unavailable_fields,
                "strategies": v.strategies,
            })).collect::<Vec<_>>(),
            "owner_tracking_gaps": owner_gaps,
            "offsets": offsets.as_ref().map(|o| json!({
                "unresolved": o.missing.iter().map(|(_, what, why)| format!("{what}: {why}")).collect::<Vec<_>>(),
                "notes": o.notes,
            })),
            "features": features,
            "elapsed_ms": (elapsed.as_secs_f64() * 1e4).round() / 10.0,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }

    let f = &features;
    println!(
        "kernel      {} {} ({})",
        f.kernel.release, f.kernel.machine, f.kernel.version
    );
    let p = &f.privilege;
    if p.euid == 0 {
        println!("privilege   root (euid 0)");
    } else if p.missing.is_empty() {
        println!("privilege   euid {}, capabilities suffice", p.euid);
    } else {
        println!(
            "privilege   euid {}: missing {} (CapEff {}); loading will fail with EPERM",
            p.euid,
            p.missing.join(" and "),
            p.cap_eff
        );
    }
    match (&f.btf.path, &f.btf.error) {
        (Some(path), _) => println!(
            "btf         {path}{}",
            if f.btf.from_flag { " (--btf)" } else { "" }
        ),
        (None, e) => println!(
            "btf         NONE: {}; give one with --btf PATH (default {VMLINUX_BTF})",
            e.as_deref().unwrap_or("not found")
        ),
    }
    match (&f.tracefs, tracefs_note) {
        (Some(t), _) => println!("tracefs     {t}"),
        (None, Some(n)) => println!("tracefs     NONE: {n}"),
        (None, None) => println!("tracefs     not mounted (run as root to mount it)"),
    }
    println!("program types (load `r0 = 0; exit`):");
    for (k, s) in &f.program_types {
        println!("  {k:<15} {}  {}", yes(s), s.detail);
    }
    println!("attach types:");
    for (k, s) in &f.attach_types {
        println!("  {k:<15} {}  {}", yes(s), s.detail);
    }
    println!(
        "  {:<15} {}  {}",
        "ring buffer",
        yes(&f.ring_buffer),
        f.ring_buffer.detail
    );
    println!(
        "  {:<15} {}  {}",
        "probe_read",
        yes(&f.probe_read_kernel),
        f.probe_read_kernel.detail
    );
    println!("functions (kallsyms: kprobe target; BTF: fentry target):");
    for (name, i) in &f.functions {
        println!(
            "  {name:<22} kallsyms {:<3}  btf {}",
            if i.kallsyms { "yes" } else { "no" },
            if i.btf { "yes" } else { "no" }
        );
    }
    let absent: Vec<&String> = f
        .tracepoints
        .iter()
        .filter(|(_, e)| !**e)
        .map(|(k, _)| k)
        .collect();
    println!(
        "tracepoints {} looked for, {} absent{}",
        f.tracepoints.len(),
        absent.len(),
        if absent.is_empty() {
            String::new()
        } else {
            format!(
                ": {}",
                absent
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    if let Some(o) = &offsets {
        for (_, what, why) in &o.missing {
            println!("unresolved  {what}: {why}");
        }
        for n in &o.notes {
            println!("note        {n}");
        }
    }
    for g in &owner_gaps {
        println!("owners      {g}: some sockets' pid/comm will be unknown");
    }
    println!("probes:");
    for v in &verdicts {
        match (&v.strategy, &v.attach) {
            (Some(s), Some(a)) => println!("  {:<18} {s} ({a})", v.name),
            _ => println!("  {:<18} CANNOT RUN", v.name),
        }
        println!("  {:<18} {}", "", v.reason);
    }
    if f.btf.path.is_none() {
        let still: Vec<&str> = verdicts
            .iter()
            .filter(|v| v.available)
            .map(|v| v.name)
            .collect();
        println!(
            "without BTF, from tracepoint formats alone: {}",
            if still.is_empty() {
                "no probe runs".to_owned()
            } else {
                still.join(", ")
            }
        );
    }
    println!("checked in {:.1} ms", elapsed.as_secs_f64() * 1e3);
    Ok(ExitCode::SUCCESS)
}
