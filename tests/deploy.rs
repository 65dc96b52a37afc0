//! deploy/, checked without a kernel or a cluster:
//! - the Grafana dashboard is well formed, shows every metric `tcpq serve`
//!   exports, and every query is PromQL that promtool parses (its queries
//!   as data: `tests/dashboard/mod.rs`, for tests against a live
//!   Prometheus);
//! - the example recipe of the Kubernetes ConfigMap compiles, to
//!   aggregations only (`serve` refuses printing clauses);
//! - `deploy/check.sh` passes: kustomize, kubernetes-validate,
//!   promtool's rule tests, hadolint (see that script).
//!
//! promtool and the tools of deploy/check.sh are installed by .ci/run;
//! without them these tests say what they skipped, and fail when CI is set.
mod dashboard;

use std::path::{Path, PathBuf};
use std::process::Command;

use dashboard::{Query, ROOT};

/// The metrics `tcpq serve` exports, as the dashboard must show them
/// (histograms through their `_bucket` series).
const METRICS: &[&str] = &[
    "tcp_zero_window_segments_total",
    "tcp_connects_without_window_scaling_total",
    "tcp_accepts_without_window_scaling_total",
    "tcp_retransmitted_segments_total",
    "tcp_srtt_seconds_bucket",
    "tcpq_events_lost_total",
    "tcpq_map_full_total",
    "tcpq_probe_attached",
    "tcpq_scrape_duration_seconds",
    "tcpq_build_info",
];

/// A tool on PATH (or in deploy/check.sh's venv), or a printed reason to
/// skip; with CI set, a missing tool fails the test.
fn tool(name: &str, install: &str) -> Option<PathBuf> {
    let venv = std::env::var_os("TCPQ_DEPLOY_TOOLS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/tcpq-deploy-tools"))
        });
    let mut dirs: Vec<PathBuf> = venv.into_iter().map(|v| v.join("bin")).collect();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    if let Some(found) = dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file()) {
        return Some(found);
    }
    let why = format!("{name} not found ({install})");
    if std::env::var_os("CI").is_some() {
        panic!("CI is set and {why}");
    }
    eprintln!("SKIPPED: {why}");
    None
}

#[test]
fn dashboard_is_well_formed() {
    let dash = dashboard::dashboard();
    assert!(dash["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(dash["uid"].as_str().is_some_and(|u| !u.is_empty()));
    assert!(dash["schemaVersion"].as_u64().is_some());
    let vars = dash["templating"]["list"].as_array().expect("templating");
    let var = |n: &str| {
        vars.iter()
            .find(|v| v["name"] == n)
            .unwrap_or_else(|| panic!("no variable `{n}`"))
    };
    let ds = var("datasource");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    let inst = var("instance");
    assert_eq!(inst["type"], "query");
    assert_eq!(inst["datasource"]["uid"], "${datasource}");
    assert!(
        inst["definition"]
            .as_str()
            .is_some_and(|d| d.starts_with("label_values(tcpq_") && d.ends_with(", instance)")),
        "the instance variable lists tcpq's nodes: {}",
        inst["definition"]
    );

    let mut ids = std::collections::HashSet::new();
    for p in dashboard::panels(&dash) {
        let title = p["title"].as_str().unwrap_or("");
        assert!(!title.is_empty(), "a panel without a title: {p}");
        assert!(
            ids.insert(p["id"].as_u64().expect("panel id")),
            "panel id repeated: {title}"
        );
        let g = &p["gridPos"];
        let (x, w) = (g["x"].as_u64().unwrap(), g["w"].as_u64().unwrap());
        assert!(w > 0 && x + w <= 24, "`{title}` is outside the 24 columns");
        if p["type"] == "row" {
            continue;
        }
        assert!(
            p["description"].as_str().is_some_and(|d| d.len() > 20),
            "`{title}` says nothing about what it shows"
        );
        assert_eq!(
            p["datasource"]["uid"], "${datasource}",
            "`{title}`'s data source"
        );
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "`{title}` has no query");
        let mut refs = std::collections::HashSet::new();
        for t in targets {
            assert_eq!(
                t["datasource"]["uid"], "${datasource}",
                "`{title}`'s query data source"
            );
            assert!(
                t["expr"].as_str().is_some_and(|e| !e.is_empty()),
                "`{title}`: empty expr"
            );
            assert!(
                refs.insert(t["refId"].as_str().unwrap()),
                "`{title}`: refId repeated"
            );
        }
    }
}

#[test]
fn dashboard_shows_every_metric_on_the_chosen_nodes() {
    let qs = dashboard::queries_with(&[
        ("instance", "NODE"),
        ("__rate_interval", "1m"),
        ("__interval", "30s"),
        ("__range", "1h"),
    ])
    .unwrap();
    for m in METRICS {
        assert!(qs.iter().any(|q| q.expr.contains(m)), "no panel shows {m}");
    }
    // Every selector of a tcpq metric is narrowed to the chosen nodes.
    for q in &qs {
        let others = [
            "tcp_srtt_seconds_sum",
            "tcp_srtt_seconds_count",
            "node_netstat_Tcp_OutSegs",
            "up{",
            "scrape_duration_seconds{",
        ];
        for m in METRICS.iter().chain(&others) {
            let m = m.trim_end_matches('{');
            let mut rest = q.expr.as_str();
            while let Some(i) = rest.find(m) {
                let after = &rest[i + m.len()..];
                let word_ends = !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
                if word_ends {
                    assert!(
                        after.starts_with('{')
                            && after[..after.find('}').unwrap()].contains("instance=~\"NODE\""),
                        "panel `{}`: {m} is not narrowed to $instance in `{}`",
                        q.panel,
                        q.raw
                    );
                }
                rest = after;
            }
        }
    }
}

#[test]
fn variables_are_substituted_in_every_grafana_form() {
    let vars = dashboard::DEFAULT_VARIABLES;
    assert_eq!(
        dashboard::substitute("rate(x{instance=~\"$instance\"}[$__rate_interval])", vars).unwrap(),
        "rate(x{instance=~\".+\"}[1m])"
    );
    assert_eq!(
        dashboard::substitute("x{a=\"${instance}\", b=\"[[instance]]\"}[$__range]", vars).unwrap(),
        "x{a=\".+\", b=\".+\"}[1h]"
    );
    let e = dashboard::substitute("x{instance=~\"$instnace\"}", vars).unwrap_err();
    assert!(e.contains("$instnace"), "{e}");
}

/// Each query as a recording rule: `promtool check rules` parses its PromQL.
fn rule_file(qs: &[Query]) -> String {
    let mut s = String::from("groups:\n  - name: tcpq-dashboard\n    rules:\n");
    for (i, q) in qs.iter().enumerate() {
        // A JSON string is a YAML double-quoted scalar.
        s.push_str(&format!(
            "      - record: tcpq_dashboard:query_{i}\n        expr: {}\n",
            serde_json::to_string(&q.expr).unwrap()
        ));
    }
    s
}

fn promtool_check(promtool: &Path, rules: &str, tag: &str) -> std::process::Output {
    let path = std::env::temp_dir().join(format!("tcpq-deploy-{}-{tag}.yml", std::process::id()));
    std::fs::write(&path, rules).unwrap();
    let out = Command::new(promtool)
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .expect("run promtool");
    let _ = std::fs::remove_file(&path);
    out
}

#[test]
fn dashboard_queries_are_promql() {
    let Some(promtool) = tool("promtool", "apt-get install prometheus") else {
        return;
    };
    let qs = dashboard::queries();
    assert!(qs.len() >= 15, "only {} queries", qs.len());
    let out = promtool_check(&promtool, &rule_file(&qs), "ok");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool rejects a dashboard query:\n{text}"
    );
    assert!(
        text.contains(&format!("SUCCESS: {} rules found", qs.len())),
        "promtool did not parse all {} queries:\n{text}",
        qs.len()
    );
    // The check itself can fail: a query with a PromQL mistake is refused.
    let mut bad = qs[..1].to_vec();
    bad[0].expr = "sum by (instance (rate(tcp_retransmitted_segments_total[1m]))".into();
    let out = promtool_check(&promtool, &rule_file(&bad), "bad");
    assert!(!out.status.success(), "promtool accepted broken PromQL");
}

#[test]
fn example_recipe_is_aggregations_only() {
    let path = Path::new(ROOT).join("deploy/kubernetes/base/recipes/example.tcpq");
    let source = std::fs::read_to_string(&path).unwrap();
    let plan = tcpq_dsl::compile(&source, &path.display().to_string(), &[])
        .unwrap_or_else(|e| panic!("the example recipe does not compile: {e:?}"));
    assert!(!plan.clauses.is_empty());
    for c in &plan.clauses {
        assert!(
            !c.action.is_print(),
            "a printing clause, which serve refuses"
        );
    }
}

#[test]
fn deploy_checks_pass() {
    // check.sh reports what it skipped itself (and fails under CI).
    let out = Command::new("bash")
        .arg(Path::new(ROOT).join("deploy/check.sh"))
        .output()
        .expect("run deploy/check.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprint!("{stderr}");
    assert!(
        out.status.success(),
        "deploy/check.sh failed:\n{stdout}{stderr}"
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}
