//! `tcpq serve --check`: per clause, what it would export and how many
//! series at most, before anything is loaded (the program is only
//! compiled; the kernel is not touched).
use std::fmt::Write as _;

use tcpq_dsl::metrics::{self, Domain, Kind};

use super::collect::Exported;
use super::limit::Limits;
use super::Program;

/// The report: for each program, one line per family its clauses export.
/// `kubernetes`: `--kubernetes`, which adds the k8s labels after `cgroup`.
pub fn report(
    programs: &[Program],
    exported: &Exported,
    limits: &Limits,
    kubernetes: bool,
) -> String {
    let mut out = String::new();
    let mut rows: Vec<[String; 6]> = Vec::new();
    let header = [
        "METRIC".to_string(),
        "TYPE".to_string(),
        "LABELS".to_string(),
        "SERIES".to_string(),
        "LIMIT".to_string(),
        "FROM".to_string(),
    ];
    for p in programs {
        for c in &p.plan.clauses {
            let line = p.source[..c.probe_span.0.min(p.source.len())]
                .matches('\n')
                .count()
                + 1;
            for f in metrics::families(c) {
                let shared = exported
                    .families
                    .iter()
                    .find(|e| e.family.name == f.name)
                    .is_some_and(|e| e.clauses.len() > 1);
                let name = match f.kind {
                    Kind::Counter => format!("{}_total", f.name),
                    _ => f.name.clone(),
                };
                let ty = match f.unit {
                    Some((unit, _)) => format!("{} ({unit})", f.kind.word()),
                    None => f.kind.word().to_string(),
                };
                let labels = match f.labels.is_empty() {
                    true => "-".to_string(),
                    false => f
                        .labels
                        .iter()
                        .map(|l| {
                            let label = match l.domain.flag() {
                                Some(flag) => format!("{} ({flag})", l.name),
                                None => {
                                    format!("{} ({})", l.name, l.domain.bound().unwrap_or(0))
                                }
                            };
                            match kubernetes && l.name == super::kubernetes::KEY {
                                true => {
                                    format!("{label}, {}", super::kubernetes::LABELS.join(", "))
                                }
                                false => label,
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                };
                let (keys, per_key) = f.series();
                let series = match keys {
                    Some(k) => format!("<= {}", k.saturating_mul(per_key)),
                    None => "unbounded".to_string(),
                };
                // At run time: the label sets of their own, plus overflow.
                let limit = match (limits.applies_to(keys), limits.series) {
                    (true, Some(n)) => format!(
                        "<= {} ({n} + overflow)",
                        (n as u64 + 1).saturating_mul(per_key)
                    ),
                    _ => "-".to_string(),
                };
                let from = format!(
                    "{}:{line} on {}{}",
                    p.origin,
                    c.probe,
                    if shared { " (shared)" } else { "" }
                );
                rows.push([name, ty, labels, series, limit, from]);
            }
        }
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| {
            rows.iter()
                .chain(std::iter::once(&header))
                .map(|r| r[i].len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    let flagged: Vec<&str> = programs
        .iter()
        .flat_map(|p| &p.plan.clauses)
        .flat_map(metrics::families)
        .flat_map(|f| f.labels)
        .filter_map(|l| match l.domain {
            Domain::Unbounded => Some("unbounded: one series per address seen"),
            Domain::PerProcess => Some(
                "per-process: one series per process (pid) or process name (comm), up to the \
                 kernel's PID_MAX_LIMIT",
            ),
            Domain::PerPort => Some("per-port: up to 65536 series per other label set"),
            Domain::PerValue { .. } => Some("per-value: one series per value the field takes"),
            Domain::Values(_) => None,
        })
        .fold(Vec::new(), |mut v, s| {
            if !v.contains(&s) {
                v.push(s);
            }
            v
        });
    if !flagged.is_empty() {
        let _ = writeln!(out);
        for f in flagged {
            let _ = writeln!(out, "{f}");
        }
    }
    let _ = writeln!(
        out,
        "\nSERIES is an upper bound from the labels' domains (a histogram: one per bucket, \
         +Inf, _sum and _count); nothing was attached."
    );
    let _ = match limits.series {
        Some(n) => writeln!(
            out,
            "LIMIT is the bound at run time where the labels can make more than {n} label sets \
             (--series-limit): the values of the others go to one series with only \
             otel_metric_overflow=\"true\"; {}",
            match limits.idle {
                Some(d) => format!(
                    "a label set unchanged for {} (--series-idle) leaves the kernel's map and \
                     its values move there too.",
                    words(d)
                ),
                None => "label sets never expire (--series-idle 0).".to_string(),
            }
        ),
        None => writeln!(out, "LIMIT: none (--series-limit 0)."),
    };
    out
}

/// A duration as the flags spell it: `10m`, `90s`, `1h`, `250ms`.
fn words(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    match ms {
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}
