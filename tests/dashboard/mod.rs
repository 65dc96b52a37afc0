//! The Grafana dashboard's queries (deploy/grafana/tcpq-dashboard.json), as
//! data: every panel's PromQL with the dashboard's template variables
//! replaced, ready to send to a Prometheus.
//!
//! Shared by `tests/deploy.rs` (which has promtool parse each one) and any
//! test that runs them against a live Prometheus scraping `tcpq serve`:
//! include it with `#[path = "../dashboard/mod.rs"] mod dashboard;` (from
//! tests/kernel/, `#[path = "../../dashboard/mod.rs"]`) and call
//! [`queries`], or [`queries_with`] to choose the variables' values (the
//! node's `instance`, a `$__rate_interval` that fits the scrape interval).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The dashboard, relative to the repository.
pub const DASHBOARD: &str = "deploy/grafana/tcpq-dashboard.json";

/// Values for the dashboard's variables and Grafana's built-in ones, as
/// Grafana would substitute them: `$instance` is a regex (`=~`), "All"
/// being `.+`; the intervals are PromQL durations.
pub const DEFAULT_VARIABLES: &[(&str, &str)] = &[
    ("instance", ".+"),
    ("__rate_interval", "1m"),
    ("__interval", "30s"),
    ("__range", "1h"),
];

/// One query of one panel.
#[derive(Clone, Debug)]
pub struct Query {
    pub panel: String,
    pub ref_id: String,
    /// As written in the dashboard, variables and all.
    pub raw: String,
    /// With every variable replaced: plain PromQL.
    pub expr: String,
    /// An instant query (tables), not a range.
    pub instant: bool,
}

pub fn path() -> PathBuf {
    Path::new(ROOT).join(DASHBOARD)
}

/// The dashboard as JSON.
pub fn dashboard() -> serde_json::Value {
    let text = std::fs::read_to_string(path()).expect("read the dashboard");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// Every panel, rows' nested panels included, in order.
pub fn panels(dash: &serde_json::Value) -> Vec<&serde_json::Value> {
    let mut out = Vec::new();
    for p in dash["panels"].as_array().expect("panels") {
        out.push(p);
        if let Some(inner) = p["panels"].as_array() {
            out.extend(inner);
        }
    }
    out
}

/// Replace Grafana's `${name}`, `$name` and `[[name]]` forms. A variable
/// left (one `vars` does not name) is an error, so a misspelt `$instnace`
/// fails here rather than in Grafana.
pub fn substitute(expr: &str, vars: &[(&str, &str)]) -> Result<String, String> {
    let mut out = expr.to_string();
    // Longest names first: `$__rate_interval` before `$__range`'s prefix.
    let mut sorted: Vec<&(&str, &str)> = vars.iter().collect();
    sorted.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    for (name, value) in sorted {
        out = out
            .replace(&format!("${{{name}}}"), value)
            .replace(&format!("[[{name}]]"), value);
        // `$name` only where the name ends (not `$instance_x`).
        let pat = format!("${name}");
        let mut s = String::new();
        let mut rest = out.as_str();
        while let Some(i) = rest.find(&pat) {
            let after = &rest[i + pat.len()..];
            let ends = !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
            s.push_str(&rest[..i]);
            s.push_str(if ends { value } else { &pat });
            rest = after;
        }
        s.push_str(rest);
        out = s;
    }
    match out.find('$') {
        Some(i) => Err(format!(
            "`{expr}`: unknown variable at `{}`",
            &out[i..out.len().min(i + 20)]
        )),
        None => Ok(out),
    }
}

/// Every panel's queries with `vars` substituted.
pub fn queries_with(vars: &[(&str, &str)]) -> Result<Vec<Query>, String> {
    let dash = dashboard();
    let mut out = Vec::new();
    for p in panels(&dash) {
        let Some(targets) = p["targets"].as_array() else {
            continue;
        };
        let panel = p["title"].as_str().unwrap_or("").to_string();
        for t in targets {
            let raw = t["expr"]
                .as_str()
                .ok_or_else(|| format!("panel `{panel}`: a target without expr"))?
                .to_string();
            out.push(Query {
                panel: panel.clone(),
                ref_id: t["refId"].as_str().unwrap_or("").to_string(),
                expr: substitute(&raw, vars).map_err(|e| format!("panel `{panel}`: {e}"))?,
                raw,
                instant: t["instant"].as_bool().unwrap_or(false),
            });
        }
    }
    Ok(out)
}

/// [`queries_with`] the [`DEFAULT_VARIABLES`].
pub fn queries() -> Vec<Query> {
    queries_with(DEFAULT_VARIABLES).expect("the dashboard's queries")
}
