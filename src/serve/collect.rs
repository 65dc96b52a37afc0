//! One scrape: every clause's per-CPU aggregation map read when
//! Prometheus asks (never copied on a timer), combined over CPUs by
//! `tcpq_runtime::agg`, and encoded with the official `prometheus-client`
//! crate as the families `tcpq_dsl::metrics` defines.
//!
//! The [`Scrape`] is the crate's [`Collector`]: it is read from the
//! kernel's maps at the request, registered into a fresh registry and
//! encoded. `prometheus-client` 0.26 has no summary type, so the families
//! of `avg` and `stats` (`_sum` and `_count`, no quantiles) are written
//! here, after its output ([`Scrape::write_summaries`]), with the same
//! label escaping.
//!
//! Between the read and the families stands each clause's
//! [`ClauseState`] (`limit.rs`: the series limit, the overflow series and
//! idle expiry, and why they are as they are): a label set beyond the
//! limit, and the retained totals of expired ones, are exported in the
//! family's overflow series, `{otel_metric_overflow="true"}`. Expiry runs
//! on its own timer ([`expire`]) as well as scrapes read.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use tcpq_abi::{AggKey, MAX_KEY_SLOTS};
use tcpq_dsl::metrics::{Family, Kind, Sample};
use tcpq_dsl::plan::Column;
use tcpq_runtime::agg::{self, Agg};
use tcpq_runtime::render::Names;
use tcpq_runtime::SessionError;

use super::reload::{Reloads, ServedClause};

use super::limit::Split;

/// What `tcpq serve` exports, fixed at start: each family with the
/// clauses that feed it (several when clauses share a name given with
/// `as`: their series add up).
#[derive(Clone, Debug)]
pub struct Exported {
    pub families: Vec<Exports>,
    /// `--kubernetes`: the k8s labels of series keyed by cgroup.
    pub kubernetes: Option<std::sync::Arc<super::kubernetes::Resolver>>,
}

/// One family and where its series come from.
#[derive(Clone, Debug)]
pub struct Exports {
    pub family: Family,
    pub help: String,
    /// Indices of the served clauses (`ServedSet::clauses`), with their
    /// `by` keys.
    pub clauses: Vec<(usize, Vec<Column>)>,
}

/// The overflow series' one label: OpenTelemetry's `otel.metric.overflow`
/// as its Prometheus exporters write it.
pub const OVERFLOW_LABEL: (&str, &str) = ("otel_metric_overflow", "true");

/// A family's series, by label values.
#[derive(Clone, Debug, Default)]
struct Acc {
    count: u64,
    sum: i128,
    min: Option<i128>,
    max: Option<i128>,
    /// Histograms: count per kernel bucket.
    buckets: BTreeMap<u64, u64>,
}

impl Acc {
    fn add(&mut self, a: &Agg) {
        if a.count == 0 {
            return;
        }
        self.count += a.count;
        self.sum += a.sum;
        self.min = Some(self.min.map_or(a.min, |m| m.min(a.min)));
        self.max = Some(self.max.map_or(a.max, |m| m.max(a.max)));
    }
}

/// The clauses' counters the self-metrics show.
#[derive(Clone, Debug, Default)]
pub struct Health {
    /// Per family name of the clause: events lost (ring buffer full),
    /// events not counted (aggregation map full), probe runs the kernel
    /// skipped, label sets refused a series of their own.
    pub per_metric: BTreeMap<String, (u64, u64, u64, u64)>,
    /// (probe, strategy) of each attached clause.
    pub attached: Vec<(String, String)>,
    /// `--kubernetes`: cgroup ids not resolved, by reason.
    pub kubernetes_unresolved: Option<Vec<(&'static str, u64)>>,
}

/// Label (name, value) pairs, in the family's order.
type Labels = Vec<(String, String)>;

/// A family's series by label values.
type Series = BTreeMap<Labels, Acc>;

/// Everything one scrape shows.
#[derive(Debug)]
pub struct Scrape {
    families: Vec<(Exports, Series)>,
    health: Health,
    /// How long the scrape before this one took.
    last_duration: Option<Duration>,
    reloads: Reloads,
}

impl Scrape {
    /// Read every clause's aggregation map (each once) and its counters
    /// now, each taken in by its clause's state (`ServedClause::collector`);
    /// `clauses` is `None` until every probe is attached.
    pub fn read(
        exported: &Exported,
        clauses: Option<&mut [ServedClause]>,
        reloads: Reloads,
        last_duration: Option<Duration>,
    ) -> Result<Scrape, SessionError> {
        let now = Instant::now();
        let mut data: Data<'_> = BTreeMap::new();
        let mut health = Health::default();
        let attached = clauses.is_some();
        let clauses: &mut [ServedClause] = clauses.unwrap_or_default();
        // Each served clause is a session of its one clause.
        for (i, served) in clauses.iter_mut().enumerate() {
            let s = &served.session;
            let state = &mut served.collector;
            for c in &s.clauses {
                let entries = c.aggregates()?;
                let split = match state.limited() {
                    true => {
                        state.observe(&entries, now);
                        state.route(entries)
                    }
                    false => Split {
                        own: entries,
                        overflow: Vec::new(),
                    },
                };
                data.insert(i, (split, &s.names));
                let st = c.stats()?;
                let name = c.plan.metric.as_ref().map_or("", |m| m.name.as_str());
                let e = health.per_metric.entry(name.to_owned()).or_default();
                e.0 += st.lost;
                e.1 += st.agg_full;
                e.2 += st.missed;
                e.3 += state.dropped();
                let probe = (c.plan.probe.clone(), c.strategy.name.clone());
                if !health.attached.contains(&probe) {
                    health.attached.push(probe);
                }
            }
        }
        let mut kube = exported.kubernetes.as_ref().map(|k| k.scrape());
        let families = exported
            .families
            .iter()
            .map(|e| {
                let s = series(e, &data, attached, kube.as_mut());
                (e.clone(), s)
            })
            .collect();
        health.kubernetes_unresolved = kube.map(|k| k.unresolved());
        Ok(Scrape {
            families,
            health,
            last_duration,
            reloads,
        })
    }

    /// The scrape in the Prometheus text format 0.0.4 (`openmetrics`
    /// false) or OpenMetrics 1.0.0 (ending with `# EOF`).
    pub fn encode(self, openmetrics: bool) -> Result<String, std::fmt::Error> {
        let scrape = std::sync::Arc::new(self);
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(scrape.clone()));
        let mut out = String::new();
        match openmetrics {
            true => prometheus_client::encoding::text::encode_registry(&mut out, &registry)?,
            false => prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?,
        }
        scrape.write_summaries(&mut out)?;
        if openmetrics {
            prometheus_client::encoding::text::encode_eof(&mut out)?;
        }
        Ok(out)
    }

    /// The summary families (`avg F`, `stats F`): `# HELP`, `# TYPE NAME
    /// summary`, then per label set `NAME_sum` and `NAME_count`; the same
    /// in both formats (neither needs `_created`).
    fn write_summaries(&self, out: &mut String) -> std::fmt::Result {
        for (e, series) in &self.families {
            let f = &e.family;
            if f.kind != Kind::Summary {
                continue;
            }
            writeln!(out, "# HELP {} {}", f.name, escape_help(&e.help))?;
            writeln!(out, "# TYPE {} summary", f.name)?;
            for (labels, acc) in series {
                let l = label_text(labels);
                writeln!(out, "{}_sum{l} {}", f.name, float(scaled(f, acc.sum)))?;
                writeln!(out, "{}_count{l} {}", f.name, acc.count)?;
            }
        }
        Ok(())
    }
}

/// `{a="x",b="y"}` with the formats' escaping of label values (`\`, `"`,
/// newline); empty for no labels.
fn label_text(labels: &[(String, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// HELP text escaping (`\` and newline), as the library does.
fn escape_help(h: &str) -> String {
    h.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A float as Prometheus writes one (`+Inf`, `NaN`, shortest digits).
fn float(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if v.is_nan() {
        return "NaN".into();
    }
    format!("{v:?}")
}

/// A value of the family's field in the unit it is exported in.
fn scaled(f: &Family, v: i128) -> f64 {
    v as f64 / f.unit.map_or(1.0, |u| u.1)
}

/// Per served clause: its aggregates (those beyond its series limit
/// apart), and the kernel's names its keys may show.
type Data<'a> = BTreeMap<usize, (Split, &'a Names)>;

/// Each label set's accumulated values, over every clause of the family,
/// and the overflow series (every clause's label sets beyond its limit
/// and retained totals). With no `by` keys there is one series from the
/// start (a counter at 0 until something counts), so a rate or increase
/// starts from there.
fn series(
    e: &Exports,
    data: &Data<'_>,
    attached: bool,
    mut kube: Option<&mut super::kubernetes::Labeller<'_>>,
) -> Series {
    let mut out = Series::new();
    let histogram = matches!(e.family.sample, Sample::Buckets { .. });
    let overflow: Labels = vec![(OVERFLOW_LABEL.0.into(), OVERFLOW_LABEL.1.into())];
    for (clause, keys) in &e.clauses {
        let Some((split, names)) = data.get(clause) else {
            continue;
        };
        // The bucket is the key slot after the `by` keys.
        let n: usize = keys.iter().map(|c| c.slots.len()).sum();
        let mut fold = |labels: Labels, k: &AggKey, a: &Agg| {
            let acc = out.entry(labels).or_default();
            acc.add(a);
            if histogram {
                let b = k.vals[n.min(MAX_KEY_SLOTS - 1)];
                *acc.buckets.entry(b).or_default() += a.count;
            }
        };
        for (k, a) in &split.own {
            let values = agg::key_values(keys, k, names);
            let mut labels: Labels = keys
                .iter()
                .zip(&values)
                .map(|(c, v)| (c.name.clone(), v.text()))
                .collect();
            if let Some(k) = kube.as_deref_mut() {
                k.extend(keys, &values, &mut labels);
            }
            fold(labels, k, a);
        }
        for (k, a) in &split.overflow {
            fold(overflow.clone(), k, a);
        }
    }
    if attached && e.family.labels.is_empty() && out.is_empty() {
        out.insert(Vec::new(), Acc::default());
    }
    out
}

/// Idle expiry, on its timer: read every limited clause's map (taken in
/// as a scrape does), delete the label sets idle for `--series-idle` from
/// the kernel's map and move their values into the retained totals. The
/// number of kernel keys deleted.
pub fn expire(clauses: &mut [ServedClause]) -> Result<usize, SessionError> {
    let now = Instant::now();
    let mut n = 0;
    for served in clauses.iter_mut() {
        let state = &mut served.collector;
        let Some(c) = served.session.clauses.first_mut() else {
            continue;
        };
        if !state.limited() {
            continue;
        }
        let entries = c.aggregates()?;
        state.observe(&entries, now);
        let due = state.due(now);
        if due.is_empty() {
            continue;
        }
        let keys: Vec<AggKey> = due.iter().map(|(k, _)| *k).collect();
        let taken = c.take_keys(&keys)?;
        state.retire(&due, &taken);
        n += keys.len();
    }
    Ok(n)
}

/// A histogram's buckets for the encoder: (upper bound in the exported
/// unit, count) from the kernel's first bucket up to the highest one with
/// events (`le` is the bucket's greatest value: 2^k - 1 for log2 bucket
/// k), every one of them for `lhist`; then `+Inf` with the rest (the
/// bucket from `lhist`'s MAX up has no finite bound). The OpenMetrics
/// encoder writes `+Inf` only when it is in the list.
fn buckets(f: &Family, acc: &Acc) -> Vec<(f64, u64)> {
    let mut out = finite_buckets(f, acc);
    let finite: u64 = out.iter().map(|(_, n)| n).sum();
    out.push((f64::INFINITY, acc.count.saturating_sub(finite)));
    out
}

fn finite_buckets(f: &Family, acc: &Acc) -> Vec<(f64, u64)> {
    let Sample::Buckets { func, signed } = f.sample else {
        return Vec::new();
    };
    let last = match func {
        tcpq_dsl::plan::AggFunc::Lhist { min, max, step } => {
            Some((i128::from(max) - i128::from(min)) / i128::from(step.max(1)))
        }
        _ => acc.buckets.keys().next_back().map(|&b| i128::from(b)),
    };
    let Some(last) = last else {
        return Vec::new();
    };
    (0..=last.max(0) as u64)
        .filter_map(|b| {
            let (_, hi) = agg::bucket_bounds(func, b, signed);
            Some((scaled(f, hi?), acc.buckets.get(&b).copied().unwrap_or(0)))
        })
        .collect()
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (e, series) in &self.families {
            let f = &e.family;
            let ty = match f.kind {
                Kind::Counter => MetricType::Counter,
                Kind::Gauge => MetricType::Gauge,
                Kind::Histogram => MetricType::Histogram,
                // Written by `write_summaries`.
                Kind::Summary => continue,
            };
            let mut family = encoder.encode_descriptor(&f.name, &e.help, None, ty)?;
            for (labels, acc) in series {
                let mut m = family.encode_family(labels)?;
                match (f.kind, f.sample) {
                    (Kind::Counter, Sample::Count) => {
                        m.encode_counter::<NoLabelSet, _, u64>(&acc.count, None)?
                    }
                    (Kind::Counter, _) => match f.unit {
                        Some(_) => {
                            m.encode_counter::<NoLabelSet, _, f64>(&scaled(f, acc.sum), None)?
                        }
                        None => m.encode_counter::<NoLabelSet, _, u64>(
                            &u64::try_from(acc.sum.max(0)).unwrap_or(u64::MAX),
                            None,
                        )?,
                    },
                    (Kind::Histogram, _) => m.encode_histogram::<NoLabelSet>(
                        scaled(f, acc.sum),
                        acc.count,
                        &buckets(f, acc),
                        None,
                    )?,
                    (_, sample) => {
                        let v = match sample {
                            Sample::Min => acc.min,
                            Sample::Max => acc.max,
                            _ => Some(acc.sum),
                        };
                        // No least or greatest value before the first event.
                        let Some(v) = v else { continue };
                        match f.unit {
                            Some(_) => m.encode_gauge(&scaled(f, v))?,
                            None => {
                                m.encode_gauge(&(v.clamp(i64::MIN.into(), i64::MAX.into()) as i64))?
                            }
                        }
                    }
                }
            }
        }
        self.encode_health(&mut encoder)
    }
}

impl Scrape {
    /// tcpq's own metrics.
    fn encode_health(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let h = &self.health;
        type Pick = fn(&(u64, u64, u64, u64)) -> u64;
        let per_metric: [(&str, &str, Pick); 4] = [
            (
                "tcpq_events_lost",
                "Events a printing clause dropped because its ring buffer was full (aggregations use none).",
                |c| c.0,
            ),
            (
                "tcpq_map_full",
                "Events not counted because the clause's aggregation map was full (a key too many).",
                |c| c.1,
            ),
            (
                "tcpq_probe_runs_missed",
                "Probe runs the kernel skipped because the same program was already running on that CPU.",
                |c| c.2,
            ),
            (
                "tcpq_series_dropped",
                "Label sets refused a series of their own by --series-limit: their values are in the family's otel_metric_overflow=\"true\" series.",
                |c| c.3,
            ),
        ];
        for (name, help, pick) in per_metric {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (metric, counts) in &h.per_metric {
                let labels = [("metric".to_string(), metric.clone())];
                family
                    .encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&pick(counts), None)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "tcpq_probe_attached",
            "1 for each probe attached, with the attach strategy this kernel uses.",
            None,
            MetricType::Gauge,
        )?;
        for (probe, strategy) in &h.attached {
            let labels = [
                ("probe".to_string(), probe.clone()),
                ("strategy".to_string(), strategy.clone()),
            ];
            family.encode_family(&labels)?.encode_gauge(&1u64)?;
        }
        if let Some(counts) = &h.kubernetes_unresolved {
            let mut family = encoder.encode_descriptor(
                "tcpq_kubernetes_unresolved",
                "cgroup ids of series keyed by cgroup that --kubernetes could not name (each id once, by the first reason met); their series lack the k8s labels not found.",
                None,
                MetricType::Counter,
            )?;
            for (reason, n) in counts {
                let labels = [("reason".to_string(), reason.to_string())];
                family
                    .encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(n, None)?;
            }
        }
        if let Some(d) = self.last_duration {
            encoder
                .encode_descriptor(
                    "tcpq_scrape_duration_seconds",
                    "How long the previous scrape took: reading every clause's maps and encoding them.",
                    None,
                    MetricType::Gauge,
                )?
                .encode_gauge(&d.as_secs_f64())?;
        }
        self.reloads.encode(encoder)?;
        let version = [("version".to_string(), env!("CARGO_PKG_VERSION").to_string())];
        encoder
            .encode_descriptor(
                "tcpq_build",
                "The tcpq binary serving these metrics.",
                None,
                MetricType::Info,
            )?
            .encode_info(&version)
    }
}

#[cfg(test)]
mod tests {
    use super::super::limit::ClauseState;
    use super::*;

    fn exports(src: &str) -> Exported {
        let plan = tcpq_dsl::compile(src, "<test>", &[]).unwrap();
        let mut families = Vec::new();
        for (i, c) in plan.clauses.iter().enumerate() {
            for f in tcpq_dsl::metrics::families(c) {
                families.push(Exports {
                    family: f,
                    help: "Help.".into(),
                    clauses: vec![(i, c.action.keys().to_vec())],
                });
            }
        }
        Exported {
            families,
            kubernetes: None,
        }
    }

    fn scrape(src: &str, data: Vec<(AggKey, Agg)>) -> Scrape {
        let e = exports(src);
        let names = Names::default();
        let mut d = BTreeMap::new();
        d.insert(
            0,
            (
                Split {
                    own: data,
                    overflow: Vec::new(),
                },
                &names,
            ),
        );
        Scrape {
            families: e
                .families
                .iter()
                .map(|x| (x.clone(), series(x, &d, true, None)))
                .collect(),
            health: Health::default(),
            last_duration: None,
            reloads: Reloads::default(),
        }
    }

    fn key(vals: &[u64]) -> AggKey {
        let mut k = AggKey::default();
        k.vals[..vals.len()].copy_from_slice(vals);
        k
    }

    fn agg(count: u64, sum: i128) -> Agg {
        Agg {
            count,
            sum,
            min: 0,
            max: 0,
        }
    }

    /// One scrape of clause 0 through `state` at `now`: its text.
    fn scrape_through(
        src: &str,
        state: &mut ClauseState,
        data: &[(AggKey, Agg)],
        now: Instant,
    ) -> String {
        let e = exports(src);
        state.observe(data, now);
        let names = Names::default();
        let mut d = BTreeMap::new();
        d.insert(0, (state.route(data.to_vec()), &names));
        let mut health = Health::default();
        let name = e.families[0].family.name.clone();
        health.per_metric.insert(name, (0, 0, 0, state.dropped()));
        let s = Scrape {
            families: e
                .families
                .iter()
                .map(|x| (x.clone(), series(x, &d, true, None)))
                .collect(),
            health,
            last_duration: None,
            reloads: Reloads::default(),
        };
        s.encode(false).unwrap()
    }

    /// The samples of `family` in a scrape: (labels text, value).
    fn samples(text: &str, family: &str) -> Vec<(String, f64)> {
        text.lines()
            .filter(|l| l.starts_with(family) && !l.starts_with('#'))
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                Some((k[family.len()..].to_string(), v.parse().ok()?))
            })
            .collect()
    }

    /// The limit, the overflow series and expiry, as one scrape after the
    /// other sees them: at most `limit` label sets of their own plus one
    /// `{otel_metric_overflow="true"}`; every label set beyond the limit
    /// counted once as dropped; the family's total, and the overflow
    /// series, never go down, across an expiry too (the values a key held
    /// when it was deleted move into the overflow series).
    #[test]
    fn the_limit_folds_into_one_overflow_series_and_totals_never_go_down() {
        use super::super::limit::Limits;
        let src = "on tcp_connect_attempt count by dport as c";
        let plan = tcpq_dsl::compile(src, "<test>", &[]).unwrap();
        let limits = Limits {
            series: Some(2),
            idle: Some(Duration::from_secs(10)),
        };
        let mut state = ClauseState::new(&plan.clauses[0], limits);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let count = |n: u64| agg(n, n as i128);
        let total = |t: &str| samples(t, "c_total").iter().map(|s| s.1).sum::<f64>();
        let overflow = |t: &str| {
            samples(t, "c_total")
                .iter()
                .find(|s| s.0 == "{otel_metric_overflow=\"true\"}")
                .map(|s| s.1)
        };
        let dropped = |t: &str| samples(t, "tcpq_series_dropped_total")[0].1;

        // Ports 1..=5, counting 1..=5: 1 and 2 have series of their own.
        let mut kernel: Vec<(AggKey, Agg)> = (1..=5).map(|p| (key(&[p]), count(p))).collect();
        let t = scrape_through(src, &mut state, &kernel, at(0));
        let own: Vec<_> = samples(&t, "c_total");
        assert_eq!(own.len(), 3, "{t}");
        assert!(t.contains("c_total{dport=\"1\"} 1\n"), "{t}");
        assert!(t.contains("c_total{dport=\"2\"} 2\n"), "{t}");
        assert_eq!(overflow(&t), Some(12.0), "{t}");
        assert_eq!(total(&t), 15.0);
        assert_eq!(dropped(&t), 3.0, "{t}");

        // Port 1 counts on; port 6 arrives with no room: dropped too.
        kernel[0].1 = count(10);
        kernel.push((key(&[6]), count(6)));
        let t = scrape_through(src, &mut state, &kernel, at(5));
        assert_eq!(total(&t), 30.0, "{t}");
        assert_eq!(overflow(&t), Some(18.0), "{t}");
        assert_eq!(dropped(&t), 4.0, "{t}");
        let (before_total, before_overflow) = (total(&t), overflow(&t).unwrap());

        // At 12 s, ports 2..=5 have been idle 10 s: deleted, with what they
        // held then (port 2 one event more than the last read saw).
        state.observe(&kernel, at(12));
        let mut due = state.due(at(12));
        due.sort_by_key(|(k, _)| k.vals);
        let ports: Vec<u64> = due.iter().map(|(k, _)| k.vals[0]).collect();
        assert_eq!(ports, [2, 3, 4, 5]);
        let taken: Vec<(AggKey, Option<Agg>)> = due
            .iter()
            .map(|(k, a)| (*k, Some(if k.vals[0] == 2 { count(3) } else { *a })))
            .collect();
        state.retire(&due, &taken);
        kernel.retain(|(k, _)| !ports.contains(&k.vals[0]));
        let t = scrape_through(src, &mut state, &kernel, at(12));
        assert!(!t.contains("dport=\"2\""), "an expired series stays: {t}");
        assert_eq!(total(&t), before_total + 1.0, "{t}");
        assert!(overflow(&t).unwrap() >= before_overflow);
        // 3 + 3 + 4 + 5 retained, and port 6 (still beyond the limit when
        // it came: it stays in the overflow).
        assert_eq!(overflow(&t), Some(21.0), "{t}");
        assert_eq!(dropped(&t), 4.0, "{t}");

        // A slot is free again: port 7 gets a series of its own.
        kernel.push((key(&[7]), count(1)));
        let t = scrape_through(src, &mut state, &kernel, at(13));
        assert!(t.contains("c_total{dport=\"7\"} 1\n"), "{t}");
        assert_eq!(dropped(&t), 4.0, "{t}");
        assert_eq!(total(&t), before_total + 2.0, "{t}");
        assert_eq!(samples(&t, "c_total").len(), 3, "{t}");
    }

    /// Below the limit nothing changes: no overflow series, nothing dropped.
    #[test]
    fn under_the_limit_every_label_set_is_its_own_series() {
        use super::super::limit::Limits;
        let src = "on tcp_connect_attempt count by dport as c";
        let plan = tcpq_dsl::compile(src, "<test>", &[]).unwrap();
        let mut state = ClauseState::new(&plan.clauses[0], Limits::default());
        let kernel: Vec<(AggKey, Agg)> = (1..=5).map(|p| (key(&[p]), agg(p, 0))).collect();
        let t = scrape_through(src, &mut state, &kernel, Instant::now());
        assert_eq!(samples(&t, "c_total").len(), 5, "{t}");
        assert!(!t.contains("{otel_metric_overflow"), "{t}");
        assert!(
            t.contains("tcpq_series_dropped_total{metric=\"c\"} 0\n"),
            "{t}"
        );
    }

    /// A histogram's overflow series keeps the kernel's buckets.
    #[test]
    fn an_overflowing_histogram_keeps_its_buckets() {
        use super::super::limit::Limits;
        let src = "on tcp_probe hist srtt by dport as h";
        let plan = tcpq_dsl::compile(src, "<test>", &[]).unwrap();
        let limits = Limits {
            series: Some(1),
            idle: None,
        };
        let mut state = ClauseState::new(&plan.clauses[0], limits);
        let kernel = vec![
            (key(&[80, 1]), agg(1, 1)),
            (key(&[443, 1]), agg(2, 2)),
            (key(&[443, 4]), agg(1, 9)),
            (key(&[8080, 4]), agg(3, 30)),
        ];
        let t = scrape_through(src, &mut state, &kernel, Instant::now());
        let o = "{otel_metric_overflow=\"true\"";
        for want in [
            format!("h_bucket{o},le=\"1e-06\"}} 2\n"),
            format!("h_bucket{o},le=\"1.5e-05\"}} 6\n"),
            format!("h_count{o}}} 6\n"),
            "h_count{dport=\"80\"} 1\n".to_string(),
        ] {
            assert!(t.contains(&want), "{want}\n{t}");
        }
    }

    /// A log2 histogram's `le`s are the kernel's bucket edges (bucket k
    /// holds up to 2^k - 1 µs), in seconds, cumulative, empty ones up to
    /// the highest seen included; `_sum` and `_count` the kernel's.
    #[test]
    fn histogram_edges_are_the_kernels_buckets() {
        // Buckets 1 (1 µs) and 4 (8..15 µs): 3 events, sum 30 µs.
        let s = scrape(
            "on tcp_probe hist srtt as tcp_srtt_seconds",
            vec![(key(&[1]), agg(1, 1)), (key(&[4]), agg(2, 29))],
        );
        let text = s.encode(false).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("tcp_srtt")).collect();
        assert_eq!(
            lines,
            [
                r#"tcp_srtt_seconds_bucket{le="0"} 0"#,
                r#"tcp_srtt_seconds_bucket{le="1e-06"} 1"#,
                r#"tcp_srtt_seconds_bucket{le="3e-06"} 1"#,
                r#"tcp_srtt_seconds_bucket{le="7e-06"} 1"#,
                r#"tcp_srtt_seconds_bucket{le="1.5e-05"} 3"#,
                r#"tcp_srtt_seconds_bucket{le="+Inf"} 3"#,
                "tcp_srtt_seconds_sum 0.00003",
                "tcp_srtt_seconds_count 3",
            ],
            "{text}"
        );
        assert!(
            text.contains("# TYPE tcp_srtt_seconds histogram\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
        let s = scrape(
            "on tcp_probe hist srtt as tcp_srtt_seconds",
            vec![(key(&[1]), agg(1, 1)), (key(&[4]), agg(2, 29))],
        );
        let om = s.encode(true).unwrap();
        assert!(
            om.contains("tcp_srtt_seconds_bucket{le=\"+Inf\"} 3\n"),
            "{om}"
        );
        assert_eq!(om.matches("le=\"+Inf\"").count(), 1, "{om}");
    }

    /// A signed log2 histogram: the negative values' bucket first
    /// (`le="-1"`), then 0, 1, 3, ...
    #[test]
    fn signed_histograms_start_below_zero() {
        let s = scrape(
            "on tcp_recvmsg hist ret as r",
            vec![(key(&[0]), agg(2, -22)), (key(&[3]), agg(1, 2))],
        );
        let text = s.encode(false).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("r_bucket")).collect();
        assert_eq!(
            lines,
            [
                r#"r_bucket{le="-1"} 2"#,
                r#"r_bucket{le="0"} 2"#,
                r#"r_bucket{le="1"} 2"#,
                r#"r_bucket{le="3"} 3"#,
                r#"r_bucket{le="+Inf"} 3"#,
            ],
            "{text}"
        );
    }

    /// `lhist`: every linear edge, always; the bucket from MAX up only in
    /// `+Inf`.
    #[test]
    fn linear_histograms_have_every_edge() {
        let s = scrape(
            "on tcp_probe lhist srtt, 0, 30, 10 as x",
            vec![(key(&[1]), agg(1, 5)), (key(&[4]), agg(2, 100))],
        );
        let text = s.encode(false).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("x_bucket")).collect();
        assert_eq!(
            lines,
            [
                r#"x_bucket{le="9e-06"} 1"#,
                r#"x_bucket{le="1.9e-05"} 1"#,
                r#"x_bucket{le="2.9e-05"} 1"#,
                r#"x_bucket{le="+Inf"} 3"#,
            ],
            "{text}"
        );
    }

    /// A counter is `NAME_total` with its TYPE line naming the same in
    /// 0.0.4; in OpenMetrics `# TYPE NAME counter` and `# EOF` last.
    /// Label values keep tcpq's spelling, escaped.
    #[test]
    fn counters_and_labels_in_both_formats() {
        let comm = |s: &[u8]| {
            let mut b = [0u8; 16];
            b[..s.len()].copy_from_slice(s);
            tcpq_abi::comm_words(&b)
        };
        let w = comm(b"a\"b\\c");
        let src = "on tcp_select_window where win == 0 count by comm as tcp_zero_window_segments";
        let text = scrape(src, vec![(key(&w), agg(7, 0))])
            .encode(false)
            .unwrap();
        assert!(
            text.contains("# TYPE tcp_zero_window_segments_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("tcp_zero_window_segments_total{comm=\"a\\\"b\\\\c\"} 7\n"),
            "{text}"
        );
        let om = scrape(src, vec![(key(&w), agg(7, 0))])
            .encode(true)
            .unwrap();
        assert!(
            om.contains("# TYPE tcp_zero_window_segments counter\n"),
            "{om}"
        );
        assert!(om.ends_with("# EOF\n"), "{om}");
        // No key: one series from the start.
        let text = scrape("on tcp_connect count as c", vec![])
            .encode(false)
            .unwrap();
        assert!(text.contains("\nc_total 0\n"), "{text}");
    }

    /// `stats`: a summary (sum in the exported unit, count) and the least
    /// and greatest values as gauges.
    #[test]
    fn stats_are_a_summary_and_two_gauges() {
        let s = scrape(
            "on tcp_probe stats srtt by dport as tcp_srtt_seconds",
            vec![(
                key(&[443]),
                Agg {
                    count: 4,
                    sum: 4000,
                    min: 500,
                    max: 2000,
                },
            )],
        );
        let text = s.encode(true).unwrap();
        for want in [
            "# TYPE tcp_srtt_seconds summary\n",
            "tcp_srtt_seconds_sum{dport=\"443\"} 0.004\n",
            "tcp_srtt_seconds_count{dport=\"443\"} 4\n",
            "# TYPE tcp_srtt_seconds_min gauge\n",
            "tcp_srtt_seconds_min{dport=\"443\"} 0.0005\n",
            "tcp_srtt_seconds_max{dport=\"443\"} 0.002\n",
        ] {
            assert!(text.contains(want), "{want}\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1);
    }
}
