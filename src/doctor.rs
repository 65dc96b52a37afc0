//! `tcpq doctor`: what this kernel offers tcpq, found by trying, and for
//! every probe in the catalog the strategy it would use or why it cannot
//! run; then the TCP sysctls that shape windows and loss recovery, for
//! tcpq's own network namespace and every `--netns` given, with the
//! dangerous values flagged and why (`tcpq_runtime::sysctls`). Text for
//! people; `--format json` is one object whose `features` member is
//! exactly what `tests/fixtures/kernels/*.json` record and whose `sysctls`
//! member has one entry per namespace.
use std::{path::Path, process::ExitCode, time::Instant};

use serde_json::{json, Value};
use tcpq_dsl::catalog::PROBES;
use tcpq_runtime::{
    btf::{Btf, VMLINUX_BTF},
    features::{KernelFeatures, Needs, Support},
    netns,
    offsets::Offsets,
    strategy::{self, check},
    sysctls::{self, Level, Setting},
    templates::owner_programs,
    tracefs::Tracefs,
};

/// The sysctls of one namespace, or why they could not be read.
struct NsSysctls {
    ns: netns::Netns,
    settings: Result<Vec<Setting>, String>,
}

/// Resolve `--netns` specs (tcpq's own namespace first, each once).
fn namespaces(specs: &[String]) -> Result<Vec<netns::Netns>, String> {
    let mut all = vec![netns::find("host").map_err(|e| e.to_string())?];
    for spec in specs {
        let ns = netns::find(spec).map_err(|e| e.to_string())?;
        if !all.iter().any(|n| n.inode == ns.inode) {
            all.push(ns);
        }
    }
    Ok(all)
}

fn read_sysctls(all: Vec<netns::Netns>, kernel: Option<(u32, u32)>) -> Vec<NsSysctls> {
    all.into_iter()
        .map(|ns| {
            let settings = netns::pin(&ns)
                .and_then(|p| sysctls::read_in(&p, kernel))
                .map_err(|e| e.to_string());
            NsSysctls { ns, settings }
        })
        .collect()
}

fn settings_json(settings: &[Setting]) -> Value {
    serde_json::to_value(settings).unwrap_or(Value::Null)
}

fn print_settings(settings: &[Setting]) {
    for s in settings {
        let value = s
            .value
            .clone()
            .unwrap_or_else(|| format!("({})", s.error.as_deref().unwrap_or("unreadable")));
        let flag = match s.level {
            Level::Ok => "",
            Level::Danger => "DANGER",
            Level::Warning => "WARNING",
            Level::Note => "note",
        };
        if flag.is_empty() {
            println!("    {:<40} {value}", s.name);
            continue;
        }
        println!("    {:<40} {value}  {flag}", s.name);
        for l in crate::counters::wrap(&s.why, 70) {
            println!("        {l}");
        }
    }
}

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

pub fn run(as_json: bool, btf_path: Option<&Path>, netns: &[String]) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    let spaces = match namespaces(netns) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("tcpq: error: {e}");
            return Ok(ExitCode::from(crate::EXIT_USAGE));
        }
    };
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
    let ns_sysctls = read_sysctls(spaces, sysctls::kernel_version(&features.kernel.release));
    let host_wide = sysctls::read_host_wide();
    // A namespace asked for but not readable (entering it needs
    // CAP_SYS_ADMIN) is a runtime failure, after the report.
    let code = if ns_sysctls.iter().any(|n| n.settings.is_err()) {
        ExitCode::from(crate::EXIT_RUNTIME)
    } else {
        ExitCode::SUCCESS
    };
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
            "sysctls": ns_sysctls.iter().map(|n| {
                let mut o = json!({
                    "netns": n.ns.inode,
                    "netns_label": n.ns.label(),
                    "current": n.ns.current,
                });
                match &n.settings {
                    Ok(s) => o["settings"] = settings_json(s),
                    Err(e) => o["error"] = json!(e),
                }
                o
            }).collect::<Vec<_>>(),
            "host_wide_sysctls": settings_json(&host_wide),
            "elapsed_ms": (elapsed.as_secs_f64() * 1e4).round() / 10.0,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        for n in &ns_sysctls {
            if let Err(e) = &n.settings {
                eprintln!("tcpq: error: sysctls of {}: {e}", n.ns.label());
            }
        }
        return Ok(code);
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
    println!("tcp sysctls (per network namespace; `tcpq doctor --netns NS` adds one):");
    for n in &ns_sysctls {
        println!("  {} (netns {})", n.ns.label(), n.ns.inode);
        match &n.settings {
            Ok(s) => print_settings(s),
            Err(e) => println!("    cannot read: {e}"),
        }
    }
    println!("  host-wide (one value for every namespace):");
    print_settings(&host_wide);
    println!("checked in {:.1} ms", elapsed.as_secs_f64() * 1e3);
    for n in &ns_sysctls {
        if let Err(e) = &n.settings {
            eprintln!("tcpq: error: sysctls of {}: {e}", n.ns.label());
        }
    }
    Ok(code)
}
