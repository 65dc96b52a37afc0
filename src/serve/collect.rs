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
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

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

/// What the collector keeps of one served clause from one scrape to the
/// next, and across a reload that keeps the clause (`reload.rs`): nothing
/// yet. The run-time series limit's retained totals belong here.
#[derive(Debug, Default)]
pub struct ClauseState {}

/// Series a family keeps per scrape. Every label set is admitted now; the
/// run-time series limit (and idle-key expiry, with totals retained so
/// that a counter never goes down) is to be decided here, per clause.
fn admit(_clause: usize, _labels: &[(String, String)]) -> bool {
    true
}

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
    /// skipped.
    pub per_metric: BTreeMap<String, (u64, u64, u64)>,
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
    /// now; `clauses` is `None` until every probe is attached.
    pub fn read(
        exported: &Exported,
        clauses: Option<&mut [ServedClause]>,
        reloads: Reloads,
        last_duration: Option<Duration>,
    ) -> Result<Scrape, SessionError> {
        let mut data: Data<'_> = BTreeMap::new();
        let mut health = Health::default();
        let attached = clauses.is_some();
        let clauses: &[ServedClause] = clauses.map_or(&[], |c| &*c);
        // Each served clause is a session of its one clause.
        for (i, served) in clauses.iter().enumerate() {
            let s = &served.session;
            for c in &s.clauses {
                data.insert(i, (c.aggregates()?, &s.names));
                let st = c.stats()?;
                let name = c.plan.metric.as_ref().map_or("", |m| m.name.as_str());
                let e = health.per_metric.entry(name.to_owned()).or_default();
                e.0 += st.lost;
                e.1 += st.agg_full;
                e.2 += st.missed;
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

/// Per served clause: its aggregates, and the kernel's names its keys
/// may show.
type Data<'a> = BTreeMap<usize, (Vec<(AggKey, Agg)>, &'a Names)>;

/// Each label set's accumulated values, over every clause of the family.
/// With no `by` keys there is one series from the start (a counter at 0
/// until something counts), so a rate or increase starts from there.
fn series(
    e: &Exports,
    data: &Data<'_>,
    attached: bool,
    mut kube: Option<&mut super::kubernetes::Labeller<'_>>,
) -> Series {
    let mut out = Series::new();
    let histogram = matches!(e.family.sample, Sample::Buckets { .. });
    for (clause, keys) in &e.clauses {
        let Some((read, names)) = data.get(clause) else {
            continue;
        };
        for (k, a) in read {
            let values = agg::key_values(keys, k, names);
            let mut labels: Labels = keys
                .iter()
                .zip(&values)
                .map(|(c, v)| (c.name.clone(), v.text()))
                .collect();
            if let Some(k) = kube.as_deref_mut() {
                k.extend(keys, &values, &mut labels);
            }
            if !admit(*clause, &labels) {
                continue;
            }
            let acc = out.entry(labels).or_default();
            acc.add(a);
            if histogram {
                // The bucket is the key slot after the `by` keys.
                let n: usize = keys.iter().map(|c| c.slots.len()).sum();
                let b = k.vals[n.min(MAX_KEY_SLOTS - 1)];
                *acc.buckets.entry(b).or_default() += a.count;
            }
        }
    }
    if attached && e.family.labels.is_empty() && out.is_empty() {
        out.insert(Vec::new(), Acc::default());
    }
    out
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
        type Pick = fn(&(u64, u64, u64)) -> u64;
        let per_metric: [(&str, &str, Pick); 3] = [
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
        d.insert(0, (data, &names));
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
