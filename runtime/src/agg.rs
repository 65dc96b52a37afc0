//! In-kernel aggregations, read back and printed: combining the per-CPU
//! values of the `AGG` map, `avg`/`stats` from count and sum, `top N`, and
//! histograms drawn as bars (text) or given as buckets (JSON).
//!
//! Everything here is a pure function of the map's contents, so it is
//! tested without a kernel.
use std::collections::BTreeMap;

use tcpq_abi::{AggKey, AggValue, MAX_KEY_SLOTS};
use tcpq_dsl::plan::{AggFunc, Column, FieldType, Unit};

use crate::render::{decode, decode_column, rfc3339_millis, Format, Names, Stamp, Table, Value};

/// One key's values, combined over CPUs, as numbers (an unsigned value's
/// or a signed one's). `sum` is kept wider than the kernel's per-CPU
/// 64 bits so that adding CPUs cannot wrap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Agg {
    pub count: u64,
    pub sum: i128,
    pub min: i128,
    pub max: i128,
}

impl Agg {
    /// Combine per-CPU values of an unsigned value.
    pub fn combine(per_cpu: impl IntoIterator<Item = AggValue>) -> Agg {
        Agg::combine_as(false, per_cpu)
    }

    /// Combine per-CPU values: counts and sums add; min and max only over
    /// CPUs that counted (the others hold zeroes). `signed`: the kernel's
    /// words are `i64` (a per-CPU sum wraps past ±2^63, an unsigned one
    /// past 2^64).
    pub fn combine_as(signed: bool, per_cpu: impl IntoIterator<Item = AggValue>) -> Agg {
        let num = |v: u64| {
            if signed {
                i128::from(v as i64)
            } else {
                i128::from(v)
            }
        };
        let mut a = Agg::default();
        for v in per_cpu {
            if v.count == 0 {
                continue;
            }
            let (min, max) = (num(v.min), num(v.max));
            if a.count == 0 || min < a.min {
                a.min = min;
            }
            if a.count == 0 || max > a.max {
                a.max = max;
            }
            a.count += v.count;
            a.sum += num(v.sum);
        }
        a
    }

    fn add(&mut self, o: &Agg) {
        if o.count == 0 {
            return;
        }
        if self.count == 0 || o.min < self.min {
            self.min = o.min;
        }
        if self.count == 0 || o.max > self.max {
            self.max = o.max;
        }
        self.count += o.count;
        self.sum += o.sum;
    }

    /// sum / count, rounded down (towards minus infinity).
    pub fn avg(&self) -> Option<i128> {
        (self.count > 0).then(|| self.sum.div_euclid(i128::from(self.count)))
    }
}

/// What a clause aggregates: `count` (no value) or a function of a value.
#[derive(Clone, Copy, Debug)]
pub enum What<'a> {
    Count,
    Func(AggFunc, &'a Column),
}

/// Names of the value columns after the keys.
pub fn value_names(what: What<'_>) -> Vec<&'static str> {
    match what {
        What::Count => vec!["count"],
        What::Func(AggFunc::Stats, _) => vec!["count", "avg", "min", "max"],
        What::Func(f, _) => vec![f.word()],
    }
}

/// A number in the value's unit (`us` for microseconds in text), signed
/// for a signed value; beyond 64 bits (a sum over CPUs) it saturates.
fn unit_value(value_ty: FieldType, v: i128, names: &Names) -> Value {
    match value_ty {
        FieldType::Int(_) => Value::Int(v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64),
        FieldType::Uint(u) => decode(
            FieldType::Uint(u),
            &[v.clamp(0, i128::from(u64::MAX)) as u64],
            names,
        ),
        _ => Value::Uint(v.clamp(0, i128::from(u64::MAX)) as u64),
    }
}

/// Split a key into its columns' values.
pub fn key_values(keys: &[Column], k: &AggKey, names: &Names) -> Vec<Value> {
    let mut pos = 0usize;
    let mut row = Vec::with_capacity(keys.len());
    for c in keys {
        let end = (pos + c.slots.len()).min(MAX_KEY_SLOTS);
        row.push(decode_column(c, &k.vals[pos.min(end)..end], names));
        pos = end;
    }
    row
}

/// Rows (key values then aggregate values) of a non-histogram
/// aggregation, largest first, at most `top`; `names` as for
/// [`decode`].
pub fn rows(
    keys: &[Column],
    what: What<'_>,
    data: &[(AggKey, Agg)],
    top: Option<u64>,
    names: &Names,
) -> Vec<Vec<Value>> {
    let mut data: Vec<(AggKey, Agg)> = data.to_vec();
    if keys.is_empty() {
        // One total, even when nothing matched.
        let mut total = Agg::default();
        for (_, a) in &data {
            total.add(a);
        }
        data = vec![(AggKey::default(), total)];
    }
    let rank = |a: &Agg| -> i128 {
        match what {
            What::Count | What::Func(AggFunc::Stats, _) => i128::from(a.count),
            What::Func(AggFunc::Sum, _) => a.sum,
            What::Func(AggFunc::Avg, _) => a.avg().unwrap_or(i128::MIN),
            What::Func(AggFunc::Min, _) => a.min,
            _ => a.max,
        }
    };
    data.sort_by(|a, b| {
        rank(&b.1)
            .cmp(&rank(&a.1))
            .then_with(|| a.0.vals.cmp(&b.0.vals))
    });
    if let Some(n) = top {
        data.truncate(usize::try_from(n).unwrap_or(usize::MAX));
    }
    data.iter()
        .map(|(k, a)| {
            let mut row = key_values(keys, k, names);
            let opt = |v: Option<i128>, ty: FieldType| {
                v.map_or(Value::Null, |v| unit_value(ty, v, names))
            };
            let some = (a.count > 0).then_some(());
            match what {
                What::Count => row.push(Value::Uint(a.count)),
                What::Func(f, col) => match f {
                    AggFunc::Sum => row.push(unit_value(col.ty, a.sum, names)),
                    AggFunc::Avg => row.push(opt(a.avg(), col.ty)),
                    AggFunc::Min => row.push(opt(some.map(|_| a.min), col.ty)),
                    AggFunc::Max => row.push(opt(some.map(|_| a.max), col.ty)),
                    AggFunc::Stats => {
                        row.push(Value::Uint(a.count));
                        row.push(opt(a.avg(), col.ty));
                        row.push(opt(some.map(|_| a.min), col.ty));
                        row.push(opt(some.map(|_| a.max), col.ty));
                    }
                    AggFunc::Hist | AggFunc::Lhist { .. } => row.push(Value::Uint(a.count)),
                },
            }
            row
        })
        .collect()
}

/// One histogram bucket: inclusive bounds (`None`: open) and its count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub lo: Option<i128>,
    pub hi: Option<i128>,
    pub count: u64,
}

/// The inclusive bounds of bucket `b` (see `tcpq_abi::bucket`). A signed
/// value's `hist` has every negative value in bucket 0, `(..., 0)`, and
/// the unsigned buckets one up. Below an unsigned `lhist`'s `MIN` of 0
/// there is nothing: no upper bound.
pub fn bucket_bounds(func: AggFunc, b: u64, signed: bool) -> (Option<i128>, Option<i128>) {
    match func {
        AggFunc::Lhist { min, max, step } => {
            let (min, max, step) = (i128::from(min), i128::from(max), i128::from(step.max(1)));
            let last = 1 + (max - min) / step;
            let b = i128::from(b);
            if b == 0 {
                let below = min - 1;
                (None, (signed || below >= 0).then_some(below))
            } else if b >= last {
                (Some(max), None)
            } else {
                let lo = min + (b - 1) * step;
                (Some(lo), Some(lo + step - 1))
            }
        }
        _ => {
            let b = match (signed, b) {
                (true, 0) => return (None, Some(-1)),
                (true, b) => b - 1,
                (false, b) => b,
            };
            match b.min(64) {
                0 => (Some(0), Some(0)),
                b => (Some(1 << (b - 1)), Some((1i128 << b) - 1)),
            }
        }
    }
}

/// The histograms of a `hist`/`lhist` clause: per key (the key slots
/// before the bucket), its buckets from the lowest to the highest
/// non-empty one (empty ones between included), keys with the most events
/// first, at most `top`; `names` as for [`decode`].
pub fn histograms(
    keys: &[Column],
    func: AggFunc,
    signed: bool,
    data: &[(AggKey, Agg)],
    top: Option<u64>,
    names: &Names,
) -> Vec<(Vec<Value>, Vec<Bucket>)> {
    let n: usize = keys.iter().map(|k| k.slots.len()).sum();
    let bucket_slot = n.min(MAX_KEY_SLOTS - 1);
    let mut groups: BTreeMap<Vec<u64>, BTreeMap<u64, u64>> = BTreeMap::new();
    for (k, a) in data {
        let prefix = k.vals[..bucket_slot].to_vec();
        *groups
            .entry(prefix)
            .or_default()
            .entry(k.vals[bucket_slot])
            .or_default() += a.count;
    }
    let mut out: Vec<(u64, Vec<u64>, Vec<Bucket>)> = groups
        .into_iter()
        .map(|(prefix, buckets)| {
            let total = buckets.values().sum();
            let lo = buckets.keys().next().copied().unwrap_or(0);
            let hi = buckets.keys().next_back().copied().unwrap_or(0);
            let list = (lo..=hi)
                .map(|b| {
                    let (l, h) = bucket_bounds(func, b, signed);
                    Bucket {
                        lo: l,
                        hi: h,
                        count: buckets.get(&b).copied().unwrap_or(0),
                    }
                })
                .collect();
            (total, prefix, list)
        })
        .collect();
    out.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    if let Some(t) = top {
        out.truncate(usize::try_from(t).unwrap_or(usize::MAX));
    }
    out.into_iter()
        .map(|(_, prefix, list)| {
            let mut k = AggKey::default();
            k.vals[..prefix.len()].copy_from_slice(&prefix);
            (key_values(keys, &k, names), list)
        })
        .collect()
}

/// `1K`, `64M`, `-4K`: powers of 1024 when exact, like bpftrace.
fn short(v: i128) -> String {
    const SUFFIX: [&str; 8] = ["", "K", "M", "G", "T", "P", "E", "Z"];
    let mut v = v;
    let mut i = 0;
    while v.abs() >= 1024 && v % 1024 == 0 && i < SUFFIX.len() - 1 {
        v /= 1024;
        i += 1;
    }
    format!("{v}{}", SUFFIX[i])
}

/// A bucket's label: `[0]`, `[4, 8)`, `(..., 10)`, `[100, ...)`.
pub fn bucket_label(b: &Bucket) -> String {
    match (b.lo, b.hi) {
        (Some(l), Some(h)) if l == h => format!("[{}]", short(l)),
        (Some(l), Some(h)) => format!("[{}, {})", short(l), short(h.saturating_add(1))),
        (None, Some(h)) => format!("(..., {})", short(h.saturating_add(1))),
        (Some(l), None) => format!("[{}, ...)", short(l)),
        (None, None) => "[...]".into(),
    }
}

/// Width of the bars in text output.
const BAR_WIDTH: usize = 40;

/// The lines of one histogram. Text: a title (the key, if any), then one
/// line per bucket with a bar scaled to the largest bucket. JSON: one
/// object with the key columns and `buckets`.
pub fn histogram_lines(
    key_names: &[Column],
    key: &[Value],
    buckets: &[Bucket],
    extra: &[(String, Value)],
    title: &str,
    format: Format,
) -> Vec<String> {
    match format {
        Format::Json => vec![crate::render::to_json(&HistogramJson {
            extra,
            key_names,
            key,
            buckets,
        })],
        Format::Text => {
            let mut out = Vec::new();
            let mut head: Vec<String> = extra
                .iter()
                .map(|(n, v)| format!("{n} {}", v.text()))
                .collect();
            head.push(title.to_string());
            for (c, v) in key_names.iter().zip(key) {
                head.push(format!("{}={}", c.name, v.text()));
            }
            out.push(format!("{}:", head.join(" ")));
            let peak = buckets.iter().map(|b| b.count).max().unwrap_or(0);
            let labels: Vec<String> = buckets.iter().map(bucket_label).collect();
            let lw = labels.iter().map(String::len).max().unwrap_or(0).max(8);
            for (b, l) in buckets.iter().zip(&labels) {
                let n = if peak == 0 {
                    0
                } else {
                    usize::try_from(u128::from(b.count) * BAR_WIDTH as u128 / u128::from(peak))
                        .unwrap_or(BAR_WIDTH)
                };
                out.push(format!(
                    "{l:<lw$} {:>8} |{}{}|",
                    b.count,
                    "@".repeat(n),
                    " ".repeat(BAR_WIDTH - n)
                ));
            }
            out
        }
    }
}

/// A histogram as one JSON object: `extra`, then the key columns, then
/// `"buckets":[{"min":..,"max":..,"count":..},...]` (an open end `null`).
struct HistogramJson<'a> {
    extra: &'a [(String, Value)],
    key_names: &'a [Column],
    key: &'a [Value],
    buckets: &'a [Bucket],
}

#[derive(serde::Serialize)]
struct BucketJson {
    min: Option<i128>,
    max: Option<i128>,
    count: u64,
}

impl serde::Serialize for HistogramJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        for (n, v) in self.extra {
            m.serialize_entry(n, v)?;
        }
        for (c, v) in self.key_names.iter().zip(self.key) {
            m.serialize_entry(&c.name, v)?;
        }
        let buckets: Vec<BucketJson> = self
            .buckets
            .iter()
            .map(|b| BucketJson {
                min: b.lo,
                max: b.hi,
                count: b.count,
            })
            .collect();
        m.serialize_entry("buckets", &buckets)?;
        m.end()
    }
}

/// Every output line of one aggregation clause. `stamp` is set for an
/// `every` interval: text opens the block with its banner
/// (`@ 2025-06-04T15:21:04.123Z interval 3`), JSON starts each record with
/// `"interval":3,"time":"2025-06-04T15:21:04.123Z"`. `extra` are further
/// leading columns (the probe name with several clauses); `names` as for
/// [`decode`].
#[expect(
    clippy::too_many_arguments,
    reason = "the clause's shape (keys, what, top), its data, and how to show it; a struct would only rename the list"
)]
pub fn lines(
    keys: &[Column],
    what: What<'_>,
    data: &[(AggKey, Agg)],
    top: Option<u64>,
    stamp: Option<Stamp>,
    extra: &[(String, Value)],
    format: Format,
    names: &Names,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut lead: Vec<(String, Value)> = Vec::new();
    if let Some(st) = stamp {
        match format {
            Format::Text => out.push(st.banner()),
            Format::Json => {
                lead.push(("interval".to_owned(), Value::Uint(st.interval)));
                lead.push(("time".to_owned(), Value::Str(rfc3339_millis(st.time))));
            }
        }
    }
    lead.extend(extra.iter().cloned());
    out.extend(block(keys, what, data, top, &lead, format, names));
    out
}

/// The lines of one aggregation clause, after any banner.
fn block(
    keys: &[Column],
    what: What<'_>,
    data: &[(AggKey, Agg)],
    top: Option<u64>,
    extra: &[(String, Value)],
    format: Format,
    names: &Names,
) -> Vec<String> {
    if let What::Func(f @ (AggFunc::Hist | AggFunc::Lhist { .. }), col) = what {
        let title = format!("{} {}", f.word(), col.name);
        let signed = matches!(col.ty, FieldType::Int(_));
        let hs = histograms(keys, f, signed, data, top, names);
        if hs.is_empty() && format == Format::Text {
            return vec![format!("{title}: no events")];
        }
        return hs
            .iter()
            .flat_map(|(k, b)| histogram_lines(keys, k, b, extra, &title, format))
            .collect();
    }
    let mut cols: Vec<Column> = extra
        .iter()
        .map(|(n, v)| Column {
            name: n.clone(),
            ty: if matches!(v, Value::Uint(_)) {
                FieldType::Uint(Unit::None)
            } else {
                FieldType::Comm
            },
            slots: vec![],
            source: Default::default(),
            scale: None,
            labels: None,
        })
        .collect();
    cols.extend(keys.iter().cloned());
    let table = Table::new(&cols, &value_names(what), format);
    let mut out = Vec::new();
    if let Some(h) = table.header() {
        out.push(h);
    }
    for r in rows(keys, what, data, top, names) {
        let mut row: Vec<Value> = extra.iter().map(|(_, v)| v.clone()).collect();
        row.extend(r);
        out.push(table.row(&row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(count: u64, sum: u64, min: u64, max: u64) -> AggValue {
        AggValue {
            count,
            sum,
            min,
            max,
        }
    }

    fn col(name: &str, ty: FieldType, slots: &[u8]) -> Column {
        Column {
            name: name.into(),
            ty,
            slots: slots.to_vec(),
            source: Default::default(),
            scale: None,
            labels: None,
        }
    }

    fn key(vals: &[u64]) -> AggKey {
        let mut k = AggKey::default();
        k.vals[..vals.len()].copy_from_slice(vals);
        k
    }

    #[test]
    fn cpus_combine_ignoring_idle_ones() {
        let a = Agg::combine([v(2, 30, 10, 20), v(0, 0, 0, 0), v(1, 5, 5, 5)]);
        assert_eq!(
            a,
            Agg {
                count: 3,
                sum: 35,
                min: 5,
                max: 20
            }
        );
        assert_eq!(a.avg(), Some(11));
        // Per-CPU sums near 2^64 do not wrap when added.
        let big = Agg::combine([v(1, u64::MAX, 1, 1), v(1, u64::MAX, 1, 1)]);
        assert_eq!(big.sum, 2 * i128::from(u64::MAX));
        assert_eq!(Agg::default().avg(), None);
    }

    #[test]
    fn log2_and_linear_bounds_match_the_abi() {
        for x in [0u64, 1, 2, 3, 4, 7, 8, 1000, u64::MAX] {
            let (lo, hi) = bucket_bounds(AggFunc::Hist, tcpq_abi::log2_bucket(x), false);
            let x = i128::from(x);
            assert!(lo.unwrap() <= x && x <= hi.unwrap(), "{x}");
        }
        let f = AggFunc::Lhist {
            min: 10,
            max: 100,
            step: 10,
        };
        for x in [0u64, 9, 10, 19, 55, 99, 100, 5000] {
            let (lo, hi) = bucket_bounds(f, tcpq_abi::linear_bucket(x, 10, 100, 10), false);
            let x = i128::from(x);
            assert!(lo.unwrap_or(0) <= x && x <= hi.unwrap_or(i128::MAX), "{x}");
        }
        for x in [i64::MIN, -5, -1, 0, 1, 2, 3, 4, 1000, i64::MAX] {
            let (lo, hi) = bucket_bounds(AggFunc::Hist, tcpq_abi::signed_log2_bucket(x), true);
            let x = i128::from(x);
            assert!(lo.unwrap_or(i128::MIN) <= x && x <= hi.unwrap(), "{x}");
        }
        let f = AggFunc::Lhist {
            min: -100,
            max: 100,
            step: 50,
        };
        for x in [i64::MIN, -101, -100, -51, -50, -1, 0, 99, 100, i64::MAX] {
            let (lo, hi) = bucket_bounds(f, tcpq_abi::signed_linear_bucket(x, -100, 100, 50), true);
            let x = i128::from(x);
            assert!(
                lo.unwrap_or(i128::MIN) <= x && x <= hi.unwrap_or(i128::MAX),
                "{x}"
            );
        }
    }

    #[test]
    fn signed_values_combine_as_i64() {
        let n = |x: i64| x as u64;
        // CPU 0 saw -11 and 5; CPU 1 saw -32; CPU 2 nothing.
        let per_cpu = [
            v(2, n(-6), n(-11), 5),
            v(1, n(-32), n(-32), n(-32)),
            v(0, 0, 0, 0),
        ];
        let a = Agg::combine_as(true, per_cpu);
        assert_eq!(
            a,
            Agg {
                count: 3,
                sum: -38,
                min: -32,
                max: 5
            }
        );
        // Rounded down, as for unsigned values: -38 / 3 = -12.67 -> -13.
        assert_eq!(a.avg(), Some(-13));
        // The same words read as unsigned are huge: the flag matters.
        assert!(Agg::combine(per_cpu).min > i128::from(i64::MAX));
        let ret = col("ret", FieldType::Int(Unit::Bytes), &[17]);
        let ls = lines(
            &[],
            What::Func(AggFunc::Stats, &ret),
            &[(key(&[]), a)],
            None,
            None,
            &[],
            Format::Json,
            &Names::default(),
        );
        assert_eq!(ls, vec![r#"{"count":3,"avg":-13,"min":-32,"max":5}"#]);
    }

    #[test]
    fn signed_histograms_put_negatives_below_zero() {
        let ret = col("ret", FieldType::Int(Unit::Bytes), &[17]);
        // Buckets as the template numbers them (tcpq_abi::signed_log2_bucket).
        let data: Vec<(AggKey, Agg)> = [(-11i64, 2u64), (0, 1), (100, 3), (65536, 1)]
            .iter()
            .map(|&(x, c)| {
                (
                    key(&[tcpq_abi::signed_log2_bucket(x)]),
                    Agg::combine_as(true, [v(c, 0, 0, 0)]),
                )
            })
            .collect();
        let text = lines(
            &[],
            What::Func(AggFunc::Hist, &ret),
            &data[..3],
            None,
            None,
            &[],
            Format::Text,
            &Names::default(),
        );
        insta::assert_snapshot!(text.join("\n"), @r"
        hist ret:
        (..., 0)         2 |@@@@@@@@@@@@@@@@@@@@@@@@@@              |
        [0]              1 |@@@@@@@@@@@@@                           |
        [1]              0 |                                        |
        [2, 4)           0 |                                        |
        [4, 8)           0 |                                        |
        [8, 16)          0 |                                        |
        [16, 32)         0 |                                        |
        [32, 64)         0 |                                        |
        [64, 128)        3 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
        ");
        let json = lines(
            &[],
            What::Func(AggFunc::Hist, &ret),
            &data,
            None,
            None,
            &[],
            Format::Json,
            &Names::default(),
        );
        assert!(
            json[0].starts_with(
                r#"{"buckets":[{"min":null,"max":-1,"count":2},{"min":0,"max":0,"count":1},"#
            ),
            "{json:?}"
        );
        assert!(
            json[0].ends_with(r#"{"min":65536,"max":131071,"count":1}]}"#),
            "{json:?}"
        );
        let f = AggFunc::Lhist {
            min: -100,
            max: 100,
            step: 50,
        };
        let data: Vec<(AggKey, Agg)> = [(-200i64, 1u64), (-11, 2), (0, 1), (4096, 1)]
            .iter()
            .map(|&(x, c)| {
                (
                    key(&[tcpq_abi::signed_linear_bucket(x, -100, 100, 50)]),
                    Agg::combine_as(true, [v(c, 0, 0, 0)]),
                )
            })
            .collect();
        let text = lines(
            &[],
            What::Func(f, &ret),
            &data,
            None,
            None,
            &[],
            Format::Text,
            &Names::default(),
        );
        insta::assert_snapshot!(text.join("\n"), @r"
        lhist ret:
        (..., -100)        1 |@@@@@@@@@@@@@@@@@@@@                    |
        [-100, -50)        0 |                                        |
        [-50, 0)           2 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
        [0, 50)            1 |@@@@@@@@@@@@@@@@@@@@                    |
        [50, 100)          0 |                                        |
        [100, ...)         1 |@@@@@@@@@@@@@@@@@@@@                    |
        ");
    }

    #[test]
    fn stats_rows_and_top() {
        let srtt = col("srtt", FieldType::Uint(Unit::Micros), &[46]);
        let dport = col("dport", FieldType::Port, &[12]);
        let data = [
            (key(&[80]), Agg::combine([v(2, 300, 100, 200)])),
            (key(&[443]), Agg::combine([v(5, 50, 5, 20)])),
        ];
        let ls = lines(
            std::slice::from_ref(&dport),
            What::Func(AggFunc::Stats, &srtt),
            &data,
            Some(1),
            None,
            &[],
            Format::Json,
            &Names::default(),
        );
        assert_eq!(
            ls,
            vec![r#"{"dport":443,"count":5,"avg":10,"min":5,"max":20}"#]
        );
        let ls = lines(
            &[],
            What::Func(AggFunc::Avg, &srtt),
            &[],
            None,
            None,
            &[],
            Format::Text,
            &Names::default(),
        );
        assert_eq!(ls, vec!["avg", "  -"]);
    }

    #[test]
    fn histogram_text_and_json() {
        let win = col("win", FieldType::Uint(Unit::None), &[16]);
        let data = [
            (key(&[0]), Agg::combine([v(4, 0, 0, 0)])),
            (key(&[3]), Agg::combine([v(2, 10, 4, 6)])),
        ];
        let text = lines(
            &[],
            What::Func(AggFunc::Hist, &win),
            &data,
            None,
            None,
            &[],
            Format::Text,
            &Names::default(),
        );
        insta::assert_snapshot!(text.join("\n"), @r"
        hist win:
        [0]             4 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
        [1]             0 |                                        |
        [2, 4)          0 |                                        |
        [4, 8)          2 |@@@@@@@@@@@@@@@@@@@@                    |
        ");
        let json = lines(
            &[],
            What::Func(AggFunc::Hist, &win),
            &data,
            None,
            None,
            &[],
            Format::Json,
            &Names::default(),
        );
        assert_eq!(
            json,
            vec![
                r#"{"buckets":[{"min":0,"max":0,"count":4},{"min":1,"max":1,"count":0},{"min":2,"max":3,"count":0},{"min":4,"max":7,"count":2}]}"#
            ]
        );
        let f = AggFunc::Lhist {
            min: 1024,
            max: 4096,
            step: 1024,
        };
        let data = [
            (key(&[80, 0]), Agg::combine([v(1, 0, 0, 0)])),
            (key(&[80, 4]), Agg::combine([v(3, 0, 0, 0)])),
        ];
        let dport = col("dport", FieldType::Port, &[12]);
        let text = lines(
            &[dport],
            What::Func(f, &win),
            &data,
            None,
            None,
            &[],
            Format::Text,
            &Names::default(),
        );
        insta::assert_snapshot!(text.join("\n"), @r"
        lhist win dport=80:
        (..., 1K)        1 |@@@@@@@@@@@@@                           |
        [1K, 2K)         0 |                                        |
        [2K, 3K)         0 |                                        |
        [3K, 4K)         0 |                                        |
        [4K, ...)        3 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
        ");
    }
}
