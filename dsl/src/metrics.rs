//! Aggregations as Prometheus metrics: the names (`as NAME`, or the one
//! lowering derives), the unit each value is exported in, and what a
//! metric name may be. `tcpq serve` exports a plan through these rules;
//! nothing here touches the kernel.
//!
//! A derived name is a function of the probe and the aggregation alone, so
//! it is the same on every run and every host:
//!
//! - `count`: `tcpq_<probe>_events` (a counter: `…_events_total`);
//! - `sum F`, `avg F`, `stats F`, `hist F`, `lhist F, …`:
//!   `tcpq_<probe>_<F>[_<unit>]`, the unit `seconds` for a field in
//!   microseconds or milliseconds, `bytes` for one in bytes, none for the
//!   others (segments, ports, plain numbers), and not added again when the
//!   field's name already ends with it;
//! - `min F`, `max F`: the same name with `_min` or `_max` after it (the
//!   names of `stats F`'s least and greatest values too).
//!
//! [`families`] says what a clause exports (type, labels, unit),
//! [`serve_problems`] what `tcpq serve` refuses in a program (it never
//! drops part of one), [`conflicts`] which clauses of several programs
//! export one name differently, [`help`] the HELP line and
//! [`Family::series`] an upper bound of the series.
use crate::catalog;
use crate::diagnostic::{Diagnostic, Problem};
use crate::plan::{Action, AggFunc, ClausePlan, Column, FieldType, Plan, Unit};

/// What [`check_name`] finds wrong with a metric name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameFault {
    /// A character Prometheus does not allow (`-`, `.`, ...), at byte `at`.
    BadChar { c: char, at: usize },
    /// The first character is a digit.
    LeadingDigit,
    /// It ends with a suffix the exposition formats give to the samples
    /// of a counter (`_total`), a summary or histogram (`_count`, `_sum`),
    /// or a histogram's buckets (`_bucket`).
    ReservedSuffix(&'static str),
}

/// Suffixes a metric name may not end with: the formats add them.
pub const RESERVED_SUFFIXES: [&str; 4] = ["_total", "_count", "_sum", "_bucket"];

/// A name Prometheus accepts (`[a-zA-Z_:][a-zA-Z0-9_:]*`) that does not end
/// with one of [`RESERVED_SUFFIXES`].
pub fn check_name(name: &str) -> Result<(), NameFault> {
    for (at, c) in name.char_indices() {
        let ok = c.is_ascii_alphabetic() || c == '_' || c == ':' || (at > 0 && c.is_ascii_digit());
        if !ok {
            return Err(match c.is_ascii_digit() {
                true => NameFault::LeadingDigit,
                false => NameFault::BadChar { c, at },
            });
        }
    }
    match RESERVED_SUFFIXES.iter().find(|s| name.ends_with(*s)) {
        Some(s) => Err(NameFault::ReservedSuffix(s)),
        None => Ok(()),
    }
}

/// A name made valid: every character Prometheus does not allow becomes
/// `_`, and a reserved suffix loses its `_` (`x_total` → `xtotal`): for a
/// diagnostic's help.
pub fn fixed_name(name: &str) -> String {
    let mut out: String = name
        .char_indices()
        .map(
            |(i, c)| match c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                true if i == 0 && c.is_ascii_digit() => '_',
                true => c,
                false => '_',
            },
        )
        .collect();
    if let Some(s) = RESERVED_SUFFIXES.iter().find(|s| out.ends_with(*s)) {
        let cut = out.len() - s.len();
        out.replace_range(cut..cut + 1, "");
    }
    out
}

/// How a value of type `ty` is exported: the base unit's name (the
/// metric name's last word) and how many of the field's units make one
/// of it (the value is divided by that: an exact power of ten, so the
/// quotient is the double nearest the decimal one, `15 µs` is `1.5e-5`).
/// `None`: exported as the number it is (segments, ports, counts).
pub fn export_unit(ty: FieldType) -> Option<(&'static str, f64)> {
    match ty {
        FieldType::Uint(u) | FieldType::Int(u) => match u {
            Unit::Micros => Some(("seconds", 1e6)),
            Unit::Millis => Some(("seconds", 1e3)),
            Unit::Nanos => Some(("seconds", 1e9)),
            Unit::Bytes => Some(("bytes", 1.0)),
            _ => None,
        },
        _ => None,
    }
}

/// The name lowering gives an aggregation without `as` (see the module's
/// doc); `None` for `print`.
pub fn derived_name(probe: &str, action: &Action) -> Option<String> {
    match action {
        Action::Print { .. } => None,
        Action::Count { .. } => Some(format!("tcpq_{probe}_events")),
        Action::Aggregate { func, value, .. } => {
            let mut name = format!("tcpq_{probe}_{}", value.name);
            if let Some((unit, _)) = export_unit(value.ty) {
                if !name.ends_with(&format!("_{unit}")) {
                    name = format!("{name}_{unit}");
                }
            }
            match func {
                AggFunc::Min => name.push_str("_min"),
                AggFunc::Max => name.push_str("_max"),
                _ => {}
            }
            Some(name)
        }
    }
}

/// The Prometheus type of an exported family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    /// `_sum` and `_count`, no quantiles.
    Summary,
    /// Classic buckets (`_bucket{le=...}`), `_sum`, `_count`.
    Histogram,
}

impl Kind {
    pub fn word(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Summary => "summary",
            Kind::Histogram => "histogram",
        }
    }
}

/// What each series of a family holds, of the kernel's per-key count,
/// sum, least and greatest value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sample {
    /// The count (`count`).
    Count,
    /// The sum (`sum F`).
    Sum,
    /// The least value (`min F`, and `stats F`'s `_min`).
    Min,
    /// The greatest value (`max F`, and `stats F`'s `_max`).
    Max,
    /// Sum and count (`avg F`, `stats F`).
    SumCount,
    /// The kernel's buckets, with sum and count (`hist`, `lhist`); `func`
    /// and `signed` say where each bucket's edges are.
    Buckets { func: AggFunc, signed: bool },
}

/// How many values a label can take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    /// A fixed set (a boolean, a TCP state, a family, a reason).
    Values(u64),
    /// A port: 65536.
    PerPort,
    /// A process id or name: as many as processes, up to the kernel's
    /// `PID_MAX_LIMIT` (4194304 on 64-bit).
    PerProcess,
    /// Any number of `bits` bits (a uid, a window, a cgroup id).
    PerValue { bits: u8 },
    /// Addresses: as many as there are peers.
    Unbounded,
}

/// The kernel's most process ids on 64-bit (`PID_MAX_LIMIT`,
/// `include/linux/threads.h`).
pub const PID_MAX_LIMIT: u64 = 4 * 1024 * 1024;

impl Domain {
    /// Its size; `None` when only the traffic bounds it.
    pub fn bound(self) -> Option<u64> {
        match self {
            Domain::Values(n) => Some(n),
            Domain::PerPort => Some(65536),
            Domain::PerProcess => Some(PID_MAX_LIMIT),
            Domain::PerValue { bits } => 1u64.checked_shl(u32::from(bits)),
            Domain::Unbounded => None,
        }
    }

    /// `per-port`, `per-process`, ...: the flag `tcpq serve --check` shows.
    pub fn flag(self) -> Option<&'static str> {
        match self {
            Domain::Values(_) => None,
            Domain::PerPort => Some("per-port"),
            Domain::PerProcess => Some("per-process"),
            Domain::PerValue { .. } => Some("per-value"),
            Domain::Unbounded => Some("unbounded"),
        }
    }
}

/// One label: a `by` key, named after its field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub name: String,
    pub domain: Domain,
}

/// A metric family one clause exports.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    /// The name as Prometheus shows it, before the suffixes its formats
    /// add (`_total`, `_bucket`, `_sum`, `_count`).
    pub name: String,
    pub kind: Kind,
    pub sample: Sample,
    /// The `by` keys, in order.
    pub labels: Vec<Label>,
    /// The unit values are exported in (`seconds`, `bytes`) and how many
    /// of the field's units make one ([`export_unit`]); `None`: as counted.
    pub unit: Option<(&'static str, f64)>,
    /// Named with `as` (else derived).
    pub given: bool,
    /// Where the clause names it (`as NAME`), else its probe.
    pub span: (usize, usize),
    /// For a histogram: the value's width in bits (how many log2 buckets
    /// it can have).
    pub value_bits: u8,
}

/// The families a clause exports: one, but three for `stats F` (the
/// summary, `_min` and `_max`); none for `print`.
pub fn families(c: &ClausePlan) -> Vec<Family> {
    let Some(m) = &c.metric else {
        return Vec::new();
    };
    let probe = catalog::probe(&c.probe);
    let labels: Vec<Label> = c
        .action
        .keys()
        .iter()
        .map(|k| Label {
            name: k.name.clone(),
            domain: domain(probe, k),
        })
        .collect();
    let family = |name: String, kind: Kind, sample: Sample, unit, bits| Family {
        name,
        kind,
        sample,
        labels: labels.clone(),
        unit,
        given: m.given,
        span: m.span.unwrap_or(c.probe_span),
        value_bits: bits,
    };
    match &c.action {
        Action::Print { .. } => Vec::new(),
        Action::Count { .. } => vec![family(
            m.name.clone(),
            Kind::Counter,
            Sample::Count,
            None,
            0,
        )],
        Action::Aggregate { func, value, .. } => {
            let unit = export_unit(value.ty);
            let signed = matches!(value.ty, FieldType::Int(_));
            let bits = probe
                .and_then(|p| p.field(&value.name))
                .map_or(64, |f| f.bits);
            let one = |kind, sample| vec![family(m.name.clone(), kind, sample, unit, bits)];
            match *func {
                // A sum of a signed value can go down: not a counter.
                AggFunc::Sum if signed => one(Kind::Gauge, Sample::Sum),
                AggFunc::Sum => one(Kind::Counter, Sample::Sum),
                AggFunc::Min => one(Kind::Gauge, Sample::Min),
                AggFunc::Max => one(Kind::Gauge, Sample::Max),
                AggFunc::Avg => one(Kind::Summary, Sample::SumCount),
                AggFunc::Stats => vec![
                    family(m.name.clone(), Kind::Summary, Sample::SumCount, unit, bits),
                    family(
                        format!("{}_min", m.name),
                        Kind::Gauge,
                        Sample::Min,
                        unit,
                        bits,
                    ),
                    family(
                        format!("{}_max", m.name),
                        Kind::Gauge,
                        Sample::Max,
                        unit,
                        bits,
                    ),
                ],
                f @ (AggFunc::Hist | AggFunc::Lhist { .. }) => {
                    one(Kind::Histogram, Sample::Buckets { func: f, signed })
                }
            }
        }
    }
}

/// How many values a key of `probe` can take.
fn domain(probe: Option<&catalog::ProbeDef>, k: &Column) -> Domain {
    let bits = probe.and_then(|p| p.field(&k.name)).map_or(64, |f| f.bits);
    match k.ty {
        FieldType::Bool => Domain::Values(2),
        FieldType::TcpState => Domain::Values(catalog::TCP_STATES.len() as u64),
        FieldType::Family => Domain::Values(catalog::FAMILIES.len() as u64),
        FieldType::Port => Domain::PerPort,
        FieldType::Comm => Domain::PerProcess,
        FieldType::Addr => Domain::Unbounded,
        _ if k.name == "pid" || k.name == "task_pid" => Domain::PerProcess,
        FieldType::Uint(Unit::DropReason) => {
            Domain::Values(crate::reasons::DROP_REASONS.len() as u64)
        }
        FieldType::Uint(Unit::RstReason) => {
            Domain::Values(crate::reasons::RST_REASONS.len() as u64)
        }
        FieldType::Int(Unit::Errno) => Domain::Values(crate::errno::names().count() as u64 + 1),
        _ => Domain::PerValue { bits },
    }
}

/// An upper bound of the series a family can have: (label sets, or
/// `None` when unbounded; series per label set).
impl Family {
    pub fn series(&self) -> (Option<u64>, u64) {
        let keys = self
            .labels
            .iter()
            .try_fold(1u64, |n, l| Some(n.saturating_mul(l.domain.bound()?)));
        let per_key = match self.sample {
            Sample::SumCount => 2,
            // Finite `le`s, `+Inf`, `_sum` and `_count`.
            Sample::Buckets { func, signed } => finite_edges(func, signed, self.value_bits) + 3,
            _ => 1,
        };
        (keys, per_key)
    }
}

/// How many finite `le` bounds a histogram can have: a log2 one a bucket
/// per bit and one for 0 (and one for the negative values of a signed
/// field); a linear one every bucket with an upper bound (not the one
/// from MAX up, which is `+Inf`; nor the one below MIN when nothing is).
fn finite_edges(func: AggFunc, signed: bool, bits: u8) -> u64 {
    match func {
        AggFunc::Lhist { min, max, step } => {
            let inner = (i128::from(max) - i128::from(min)) / i128::from(step.max(1));
            let below = u64::from(signed || min > 0);
            inner as u64 + below
        }
        _ => u64::from(bits) + 1 + u64::from(signed),
    }
}

/// What `tcpq serve` refuses in a plan, each located: a printing clause
/// (at its `print`), and `top`, `every` and `limit` (at each). `serve`
/// exports every aggregation whole, or nothing.
pub fn serve_problems(plan: &Plan) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for c in &plan.clauses {
        if c.action.is_print() {
            out.push(Diagnostic::new(
                Problem::NotForServe { what: "print" },
                c.action_span.0..c.action_span.1,
            ));
        }
        for (word, (a, b)) in &c.modifier_spans {
            let what = match *word {
                "top" => "top",
                "every" => "every",
                _ => "limit",
            };
            // `limit` after `print` is said with the `print`.
            if !(what == "limit" && c.action.is_print()) {
                out.push(Diagnostic::new(Problem::NotForServe { what }, *a..*b));
            }
        }
    }
    out
}

/// One program given to `tcpq serve`, for [`conflicts`].
pub struct Served<'a> {
    /// How diagnostics name it (a path, `<recipe NAME>`).
    pub origin: &'a str,
    pub source: &'a str,
    pub plan: &'a Plan,
}

/// Clauses of `programs` that export one name differently: each after
/// the first with a name, as (program index, diagnostic at the clause).
/// Clauses may share a name they give with `as` when they export the same
/// type, unit, labels and buckets (their series add up); a derived name is
/// one clause's. `reserved` are names tcpq exports itself.
pub fn conflicts(programs: &[Served<'_>], reserved: &[&str]) -> Vec<(usize, Diagnostic)> {
    let mut seen: Vec<(usize, Family)> = Vec::new();
    let mut out = Vec::new();
    for (i, p) in programs.iter().enumerate() {
        for c in &p.plan.clauses {
            for f in families(c) {
                let clash = |why: String, first: String| {
                    let derived = !f.given;
                    let problem = Problem::MetricConflict {
                        name: f.name.clone(),
                        first,
                        why,
                        derived,
                    };
                    (i, Diagnostic::new(problem, f.span.0..f.span.1))
                };
                if reserved.contains(&f.name.as_str()) {
                    out.push(clash(
                        "tcpq exports it itself".into(),
                        "tcpq's own metric".into(),
                    ));
                    continue;
                }
                let Some((j, g)) = seen.iter().find(|(_, g)| g.name == f.name) else {
                    seen.push((i, f));
                    continue;
                };
                let other = &programs[*j];
                let line = other.source[..g.span.0.min(other.source.len())]
                    .matches('\n')
                    .count()
                    + 1;
                let first = format!("in {} line {line}", other.origin);
                let why = if !(f.given && g.given) {
                    Some("a derived name is one clause's".to_string())
                } else if f.kind != g.kind || f.sample != g.sample {
                    Some(format!("a {} and a {}", g.kind.word(), f.kind.word()))
                } else if f
                    .labels
                    .iter()
                    .map(|l| &l.name)
                    .ne(g.labels.iter().map(|l| &l.name))
                {
                    let names = |f: &Family| {
                        let v: Vec<&str> = f.labels.iter().map(|l| l.name.as_str()).collect();
                        format!("{{{}}}", v.join(", "))
                    };
                    Some(format!("labels {} and {}", names(g), names(&f)))
                } else if f.unit.map(|u| u.0) != g.unit.map(|u| u.0) {
                    Some("values in different units".to_string())
                } else {
                    None
                };
                if let Some(why) = why {
                    out.push(clash(why, first));
                }
            }
        }
    }
    out
}

/// The HELP of clause `k` of `plan` (compiled from `source`): the comment
/// lines right above the clause, when they are not the recipe's header;
/// else the first sentence of the header's description; else the clause
/// in words.
pub fn help(source: &str, plan: &Plan, k: usize) -> String {
    let c = &plan.clauses[k];
    let before = &source[..c.probe_span.0.min(source.len())];
    // The lines before the clause's own (`on` is on the probe's line).
    let mut lines: Vec<&str> = before.lines().collect();
    if !before.ends_with('\n') {
        lines.pop();
    }
    let header = source
        .lines()
        .take_while(|l| l.trim_start().starts_with('#'))
        .count();
    let mut own: Vec<&str> = Vec::new();
    for (n, l) in lines.iter().enumerate().rev() {
        match l.trim_start().strip_prefix('#') {
            Some(text) if n >= header => own.push(text.trim()),
            _ => break,
        }
    }
    own.reverse();
    let own = own.join(" ");
    if !own.trim().is_empty() {
        return own.trim().to_string();
    }
    let description = crate::parse_recipe(source)
        .map(|r| r.description)
        .unwrap_or_default();
    let first = crate::recipe::summary(description.trim());
    if !first.is_empty() {
        return first.to_string();
    }
    clause_words(c)
}

/// `events on tcp_select_window where `win` is 0, by comm`.
fn clause_words(c: &ClausePlan) -> String {
    let what = match &c.action {
        Action::Print { .. } => "events".to_string(),
        Action::Count { .. } => "events".to_string(),
        Action::Aggregate { func, value, .. } => match func {
            AggFunc::Sum => format!("sum of {}", value.name),
            AggFunc::Min => format!("least {}", value.name),
            AggFunc::Max => format!("greatest {}", value.name),
            _ => value.name.clone(),
        },
    };
    let mut out = format!("{what} on {}", c.probe);
    if let Some(w) = &c.where_words {
        out.push_str(&format!(" where {w}"));
    }
    let keys: Vec<&str> = c.action.keys().iter().map(|k| k.name.as_str()).collect();
    if !keys.is_empty() {
        out.push_str(&format!(", by {}", keys.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_rules() {
        for ok in ["tcp_zero_window_segments", "a", "_x", "ns:rule", "X9_y"] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        assert_eq!(check_name("9lives"), Err(NameFault::LeadingDigit));
        assert_eq!(
            check_name("tcp-zero"),
            Err(NameFault::BadChar { c: '-', at: 3 })
        );
        assert_eq!(check_name("x.y"), Err(NameFault::BadChar { c: '.', at: 1 }));
        for s in RESERVED_SUFFIXES {
            assert_eq!(
                check_name(&format!("x{s}")),
                Err(NameFault::ReservedSuffix(s))
            );
        }
        assert_eq!(fixed_name("tcp-zero.win"), "tcp_zero_win");
        assert_eq!(fixed_name("9lives"), "_lives");
        assert_eq!(fixed_name("x_total"), "xtotal");
        for bad in ["9lives", "tcp-zero", "x_total", "é"] {
            assert_eq!(check_name(&fixed_name(bad)), Ok(()), "{bad}");
        }
    }

    fn plan(src: &str) -> crate::plan::ClausePlan {
        crate::compile(src, "<test>", &[])
            .unwrap()
            .clauses
            .remove(0)
    }

    #[test]
    fn derived_names_are_the_probe_the_field_and_the_unit() {
        let name = |src: &str| derived_name(&plan(src).probe, &plan(src).action).unwrap();
        assert_eq!(
            name("on tcp_select_window where win == 0 count by comm"),
            "tcpq_tcp_select_window_events"
        );
        assert_eq!(
            name("on tcp_retransmit sum segs"),
            "tcpq_tcp_retransmit_segs"
        );
        assert_eq!(
            name("on tcp_probe hist srtt"),
            "tcpq_tcp_probe_srtt_seconds"
        );
        assert_eq!(
            name("on tcp_probe min srtt"),
            "tcpq_tcp_probe_srtt_seconds_min"
        );
        assert_eq!(
            name("on tcp_probe max srtt by dport"),
            "tcpq_tcp_probe_srtt_seconds_max"
        );
        // Already in bytes by name: the unit is not said twice.
        assert_eq!(
            name("on tcp_select_window hist win_bytes"),
            "tcpq_tcp_select_window_win_bytes"
        );
        assert_eq!(
            name("on tcp_sendmsg stats size"),
            "tcpq_tcp_sendmsg_size_bytes"
        );
        assert_eq!(
            derived_name("tcp_probe", &plan("on tcp_probe print pid").action),
            None
        );
    }

    fn program(src: &str) -> Plan {
        crate::compile(src, "<test>", &[]).unwrap_or_else(|e| panic!("{src}: {e:?}"))
    }

    #[test]
    fn each_aggregation_is_one_prometheus_type() {
        let kinds = |src: &str| -> Vec<(String, Kind)> {
            families(&plan(src))
                .into_iter()
                .map(|f| (f.name, f.kind))
                .collect()
        };
        let one = |n: &str, k| vec![(n.to_string(), k)];
        assert_eq!(
            kinds("on tcp_select_window where win == 0 count by comm as tcp_zero_window_segments"),
            one("tcp_zero_window_segments", Kind::Counter)
        );
        assert_eq!(
            kinds("on tcp_retransmit sum segs as x"),
            one("x", Kind::Counter)
        );
        // A signed sum can go down.
        assert_eq!(kinds("on tcp_recvmsg sum ret as x"), one("x", Kind::Gauge));
        assert_eq!(kinds("on tcp_probe min srtt as x"), one("x", Kind::Gauge));
        assert_eq!(kinds("on tcp_probe avg srtt as x"), one("x", Kind::Summary));
        assert_eq!(
            kinds("on tcp_probe stats srtt as x"),
            vec![
                ("x".into(), Kind::Summary),
                ("x_min".into(), Kind::Gauge),
                ("x_max".into(), Kind::Gauge)
            ]
        );
        assert_eq!(
            kinds("on tcp_probe hist srtt as x"),
            one("x", Kind::Histogram)
        );
        assert_eq!(kinds("on tcp_probe print srtt"), vec![]);
        let f = &families(&plan("on tcp_probe hist srtt by dport, state"))[0];
        assert_eq!(f.unit, Some(("seconds", 1e6)));
        assert_eq!(
            f.labels,
            vec![
                Label {
                    name: "dport".into(),
                    domain: Domain::PerPort
                },
                Label {
                    name: "state".into(),
                    domain: Domain::Values(12)
                }
            ]
        );
        assert!(!f.given);
    }

    /// The bound multiplies the keys' domains, and a histogram's series
    /// per key are its edges, `+Inf`, `_sum` and `_count`.
    #[test]
    fn series_bounds_follow_the_keys_domains() {
        let series = |src: &str| families(&plan(src))[0].series();
        assert_eq!(series("on tcp_connect count"), (Some(1), 1));
        assert_eq!(series("on tcp_probe count by wscale_ok"), (Some(2), 1));
        assert_eq!(
            series("on tcp_probe count by wscale_ok, dport"),
            (Some(131072), 1)
        );
        assert_eq!(
            series("on tcp_probe count by comm"),
            (Some(PID_MAX_LIMIT), 1)
        );
        assert_eq!(series("on tcp_probe count by daddr"), (None, 1));
        assert_eq!(series("on tcp_probe avg srtt"), (Some(1), 2));
        // srtt is a 32-bit value: buckets 0 (for 0) to 32.
        let bits = crate::catalog::probe("tcp_probe")
            .unwrap()
            .field("srtt")
            .unwrap()
            .bits;
        assert_eq!(
            series("on tcp_probe hist srtt"),
            (Some(1), u64::from(bits) + 4)
        );
        // 0..100 by 10: ten edges (9, 19, ..., 99), nothing below 0.
        assert_eq!(series("on tcp_probe lhist srtt, 0, 100, 10"), (Some(1), 13));
        assert_eq!(
            series("on tcp_probe lhist srtt, 10, 100, 10"),
            (Some(1), 13)
        );
    }

    #[test]
    fn serve_refuses_what_it_cannot_export_where_it_is_written() {
        let src = "on tcp_probe print srtt limit 5\non tcp_retransmit count by comm top 3 every 1s";
        let d = serve_problems(&program(src));
        let at: Vec<(&str, crate::Code)> =
            d.iter().map(|d| (&src[d.span.clone()], d.code)).collect();
        assert_eq!(
            at,
            [
                ("print srtt", crate::Code::NotForServe),
                ("top 3", crate::Code::NotForServe),
                ("every 1s", crate::Code::NotForServe)
            ]
        );
        assert!(serve_problems(&program("on tcp_probe hist srtt by dport as x")).is_empty());
    }

    #[test]
    fn one_name_two_ways_is_a_conflict_and_the_same_way_adds_up() {
        let check = |a: &str, b: &str| -> Vec<String> {
            let (pa, pb) = (program(a), program(b));
            let programs = [
                Served {
                    origin: "a.tcpq",
                    source: a,
                    plan: &pa,
                },
                Served {
                    origin: "b.tcpq",
                    source: b,
                    plan: &pb,
                },
            ];
            conflicts(&programs, &["tcpq_events_lost"])
                .into_iter()
                .map(|(i, d)| format!("{i} {} {}", &[a, b][i][d.span.clone()], d.message))
                .collect()
        };
        assert_eq!(
            check(
                "on tcp_connect count by comm as x",
                "on tcp_accept count by comm as x"
            ),
            Vec::<String>::new()
        );
        let got = check(
            "on tcp_connect count by comm as x",
            "on tcp_accept count by dport as x",
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with("1 x ") && got[0].contains("labels {comm} and {dport}"),
            "{got:?}"
        );
        let got = check("on tcp_probe hist srtt as x", "on tcp_probe avg srtt as x");
        assert!(got[0].contains("a histogram and a summary"), "{got:?}");
        // A derived name is one clause's: pointed at the second probe.
        let got = check("on tcp_probe count", "on tcp_probe where dport == 80 count");
        assert_eq!(got.len(), 1);
        assert!(got[0].starts_with("1 tcp_probe "), "{got:?}");
        // tcpq's own names are taken, and `stats`'s `_min` is a name.
        assert_eq!(
            check(
                "on tcp_probe count as tcpq_events_lost",
                "on tcp_drop count"
            )
            .len(),
            1
        );
        assert_eq!(
            check(
                "on tcp_probe stats srtt as x",
                "on tcp_probe count as x_min"
            )
            .len(),
            1
        );
    }

    #[test]
    fn help_is_the_comment_above_the_clause_or_the_recipes_description() {
        let src = "# Zero windows. More words.\n#\n# @param port: port?  p\n\n# Connections.\n# Both sides.\n\
                   on tcp_connect count as a\non tcp_accept count as b\n";
        let p = program(src);
        assert_eq!(help(src, &p, 0), "Connections. Both sides.");
        assert_eq!(help(src, &p, 1), "Zero windows.");
        let src = "on tcp_select_window where win == 0 count by comm";
        assert_eq!(
            help(src, &program(src), 0),
            "events on tcp_select_window where `win` is 0, by comm"
        );
    }
}
