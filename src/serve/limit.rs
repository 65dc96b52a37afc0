//! Cardinality at run time: a per-clause series limit and an idle-key
//! expiry, with what leaves a series of its own kept in one overflow
//! series per family, so that a family's total never goes down.
//!
//! **The model is OpenTelemetry's.** Its metrics SDKs cap the attribute
//! sets a stream tracks (2000 by default) and aggregate every measurement
//! beyond the cap into one data point whose only attribute is
//! `otel.metric.overflow=true`: the total stays right, a query that
//! filters or groups by an attribute undercounts, and the overflow point
//! says by how much. `tcpq serve` does the same per clause:
//! `--series-limit N` (default [`DEFAULT_SERIES_LIMIT`], OpenTelemetry's
//! default, counted as it counts: label sets, a histogram's label set
//! being one histogram whatever its buckets) label sets get a series of
//! their own, first come first served; the values of every further label
//! set go to the family's series `{otel_metric_overflow="true"}` (the name
//! OpenTelemetry's Prometheus exporters give the attribute), which has no
//! `by` label at all. Why an extra label and no marker value in the `by`
//! labels: a marker (`comm="overflow"`) can be a real value of a string
//! label, and would be grouped with it by `sum by (comm)`; a series
//! without the `by` labels cannot be mistaken for any label set,
//! `sum(F)` includes it, `sum by (comm)(F)` shows it as the group with no
//! `comm`, `F{otel_metric_overflow="true"}` selects it, and promtool
//! accepts families whose series differ in label names. Each label set
//! refused a series of its own counts once in
//! `tcpq_series_dropped_total{metric}` (Prometheus exporters' way of
//! saying data was left out: a counter of it, like `tcpq_map_full_total`).
//!
//! **Idle expiry** (`--series-idle`, default [`DEFAULT_SERIES_IDLE`]) is
//! what keeps the kernel's map, and tcpq, flat: the aggregation map holds
//! a fixed number of keys (16384 per clause), and a key nobody deletes
//! stays forever, so a `by dport` or `by pid` clause would fill it with
//! dead ports and processes and then count nothing more
//! (`tcpq_map_full_total`). A label set none of whose kernel keys changed
//! for the idle time is deleted from the kernel's map (each key read and
//! deleted in one system call, [`tcpq_runtime::session::Attached::take_keys`],
//! which says what window remains), and its last values move into the
//! clause's retained totals, exported in the overflow series: the family's
//! total never goes down, and the label set's own series ends (Prometheus
//! marks it stale; if the label set comes back it is a new series, from
//! zero). The price, stated in docs/serve.md: at an expiry the overflow
//! series grows by the expired series' total at once, so `increase()` of
//! the overflow series (and `sum(increase(F))`) counts those values a
//! second time in the window that holds the expiry; `increase(sum(F))`
//! and `sum(F)` do not. The idle time should therefore be long against
//! the range of the queries (10 minutes against the usual 5-minute
//! `rate()`s: a series idle that long contributes nothing to them).
//!
//! **Only clauses that can exceed the limit are limited.** A clause whose
//! labels can make at most `--series-limit` label sets (`--check`'s bound:
//! a boolean, a TCP state, no label at all) cannot fill the kernel's map
//! with dead keys nor exceed the limit; its series are never dropped nor
//! expired, and cost no state here.
//!
//! **State stays bounded**: per limited clause, one entry per label set
//! in the kernel's map now (the map's size bounds it), and retained totals
//! per histogram bucket (the plan's buckets bound them); nothing is kept
//! per label set once it has left the map. Everything a clause keeps is
//! one [`ClauseState`], which a reload can carry over for a clause whose
//! plan did not change.
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use tcpq_abi::{AggKey, MAX_KEY_SLOTS};
use tcpq_dsl::plan::ClausePlan;
use tcpq_runtime::agg::Agg;

/// `--series-limit`'s default: OpenTelemetry's default cardinality limit
/// (2000 attribute sets per stream), counted the same way.
pub const DEFAULT_SERIES_LIMIT: usize = 2000;
/// `--series-idle`'s default: twice the usual 5-minute `rate()` range.
pub const DEFAULT_SERIES_IDLE: &str = "10m";

/// The flags' values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Label sets with a series of their own per clause; `None`: no limit
    /// (nor expiry).
    pub series: Option<usize>,
    /// How long a label set may stay unchanged; `None`: forever.
    pub idle: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            series: Some(DEFAULT_SERIES_LIMIT),
            idle: Some(Duration::from_secs(600)),
        }
    }
}

impl Limits {
    /// Whether a clause whose labels make at most `bound` label sets
    /// (`None`: unbounded) is limited and expires: when the bound exceeds
    /// the limit. Without a limit (`--series-limit 0`) nothing is: every
    /// label set the kernel's map holds is exported, and stays there.
    pub fn applies_to(&self, bound: Option<u64>) -> bool {
        match (self.series, bound) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(n), Some(b)) => b > n as u64,
        }
    }

    /// How often expiry looks at the maps: a quarter of the idle time,
    /// between 100 ms and 1 minute (a label set goes at most that much
    /// after its idle time).
    pub fn tick(&self) -> Option<Duration> {
        self.idle
            .map(|d| (d / 4).clamp(Duration::from_millis(100), Duration::from_secs(60)))
    }
}

/// One label set in the kernel's map now.
#[derive(Clone, Debug)]
struct LabelSet {
    /// It has a series of its own (else its values are in the overflow).
    own: bool,
    /// When one of its keys last changed, as the reads saw it.
    changed: Instant,
    /// Its kernel keys (one, or one per histogram bucket), with the values
    /// the last read saw.
    keys: HashMap<AggKey, Agg>,
}

/// One clause's cardinality state between scrapes.
#[derive(Clone, Debug)]
pub struct ClauseState {
    /// Whether the limit and expiry apply ([`Limits::applies_to`]).
    limited: bool,
    limits: Limits,
    /// Key slots of the `by` keys; a histogram's bucket is the slot after.
    by_slots: usize,
    /// Label sets in the kernel's map, by their `by` slots.
    sets: HashMap<AggKey, LabelSet>,
    /// How many of them have a series of their own.
    own: usize,
    /// Values of label sets no longer in the kernel's map, by the rest of
    /// their key (the bucket; the `by` slots zeroed).
    retained: BTreeMap<[u64; MAX_KEY_SLOTS], Agg>,
    /// Label sets refused a series of their own, since the start.
    dropped: u64,
}

/// A clause's entries split for a scrape.
#[derive(Clone, Debug, Default)]
pub struct Split {
    /// Kernel entries of label sets with a series of their own.
    pub own: Vec<(AggKey, Agg)>,
    /// Entries of the overflow series: the kernel's for label sets beyond
    /// the limit, and the retained totals (the `by` slots zeroed).
    pub overflow: Vec<(AggKey, Agg)>,
}

impl ClauseState {
    pub fn new(clause: &ClausePlan, limits: Limits) -> ClauseState {
        let bound = tcpq_dsl::metrics::families(clause)
            .first()
            .map_or(Some(1), |f| f.series().0);
        ClauseState {
            limited: limits.applies_to(bound),
            limits,
            by_slots: clause.action.keys().iter().map(|c| c.slots.len()).sum(),
            sets: HashMap::new(),
            own: 0,
            retained: BTreeMap::new(),
            dropped: 0,
        }
    }

    /// A state under which nothing is limited (a session without its
    /// clause, which `Bound::clause` never makes).
    pub fn unlimited() -> ClauseState {
        ClauseState {
            limited: false,
            limits: Limits {
                series: None,
                idle: None,
            },
            by_slots: 0,
            sets: HashMap::new(),
            own: 0,
            retained: BTreeMap::new(),
            dropped: 0,
        }
    }

    /// Whether the limit and expiry apply to this clause.
    pub fn limited(&self) -> bool {
        self.limited
    }

    /// Label sets refused a series of their own, since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn set_key(&self, k: &AggKey) -> AggKey {
        let mut s = *k;
        s.vals[self.by_slots.min(MAX_KEY_SLOTS)..].fill(0);
        s
    }

    fn rest_key(&self, k: &AggKey) -> AggKey {
        let mut r = *k;
        r.vals[..self.by_slots.min(MAX_KEY_SLOTS)].fill(0);
        r
    }

    /// Take in one read of the kernel's map at `now`: new label sets get a
    /// series of their own while there is room (in key order within one
    /// read, so that a run is reproducible), the others count as dropped;
    /// a key whose values differ from the last read marks its set changed.
    pub fn observe(&mut self, entries: &[(AggKey, Agg)], now: Instant) {
        if !self.limited {
            return;
        }
        let mut new: Vec<AggKey> = entries
            .iter()
            .map(|(k, _)| self.set_key(k))
            .filter(|s| !self.sets.contains_key(s))
            .collect();
        new.sort_by_key(|k| k.vals);
        new.dedup();
        for s in new {
            let own = self.limits.series.is_none_or(|n| self.own < n);
            match own {
                true => self.own += 1,
                false => self.dropped += 1,
            }
            self.sets.insert(
                s,
                LabelSet {
                    own,
                    changed: now,
                    keys: HashMap::new(),
                },
            );
        }
        for (k, a) in entries {
            let s = self.set_key(k);
            let Some(set) = self.sets.get_mut(&s) else {
                continue;
            };
            if set.keys.get(k) != Some(a) {
                set.keys.insert(*k, *a);
                set.changed = now;
            }
        }
    }

    /// `entries` (the read [`ClauseState::observe`] took in) as a scrape
    /// exports them.
    pub fn route(&self, entries: Vec<(AggKey, Agg)>) -> Split {
        if !self.limited {
            return Split {
                own: entries,
                overflow: Vec::new(),
            };
        }
        let mut out = Split::default();
        for (k, a) in entries {
            match self.sets.get(&self.set_key(&k)).is_none_or(|s| s.own) {
                true => out.own.push((k, a)),
                false => out.overflow.push((k, a)),
            }
        }
        out.overflow
            .extend(self.retained.iter().map(|(k, a)| (AggKey { vals: *k }, *a)));
        out
    }

    /// The kernel keys of every label set idle since `now - idle`, with
    /// the values last read; those sets are forgotten (their slots free).
    /// Hand the keys to `take_keys`, then what it returns to
    /// [`ClauseState::retire`].
    pub fn due(&mut self, now: Instant) -> Vec<(AggKey, Agg)> {
        let Some(idle) = self.limits.idle.filter(|_| self.limited) else {
            return Vec::new();
        };
        let gone: Vec<AggKey> = self
            .sets
            .iter()
            .filter(|(_, s)| now.saturating_duration_since(s.changed) >= idle)
            .map(|(k, _)| *k)
            .collect();
        let mut keys = Vec::new();
        for g in gone {
            if let Some(s) = self.sets.remove(&g) {
                self.own -= usize::from(s.own);
                keys.extend(s.keys);
            }
        }
        keys
    }

    /// Keys deleted from the kernel's map, `taken` in the order of `due`
    /// (what [`ClauseState::due`] returned): the values each held at its
    /// deletion (`None`: it was gone already, and the last read's value
    /// stands) into the retained totals.
    pub fn retire(&mut self, due: &[(AggKey, Agg)], taken: &[(AggKey, Option<Agg>)]) {
        for (i, (k, seen)) in due.iter().enumerate() {
            let at_delete = taken
                .get(i)
                .filter(|(t, _)| t == k)
                .and_then(|(_, a)| *a)
                .unwrap_or(*seen);
            let rest = self.rest_key(k);
            self.retained.entry(rest.vals).or_default().add(&at_delete);
        }
    }

    /// Label sets with a series of their own now, and in the kernel's map
    /// in all (for tests and `--check`'s wording).
    #[cfg(test)]
    pub fn counts(&self) -> (usize, usize) {
        (self.own, self.sets.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clause(src: &str) -> ClausePlan {
        tcpq_dsl::compile(src, "<test>", &[]).unwrap().clauses[0].clone()
    }

    fn key(v: &[u64]) -> AggKey {
        let mut k = AggKey::default();
        k.vals[..v.len()].copy_from_slice(v);
        k
    }

    fn agg(count: u64) -> Agg {
        Agg {
            count,
            sum: count as i128,
            min: 1,
            max: 1,
        }
    }

    fn limits(n: usize, idle_s: u64) -> Limits {
        Limits {
            series: Some(n),
            idle: Some(Duration::from_secs(idle_s)),
        }
    }

    /// Small domains are never limited; per-port ones are; with no limit
    /// nothing is.
    #[test]
    fn only_clauses_that_can_exceed_the_limit_are_limited() {
        let l = limits(10, 60);
        assert!(!ClauseState::new(&clause("on tcp_connect count"), l).limited);
        assert!(!ClauseState::new(&clause("on tcp_connect count by wscale_ok"), l).limited);
        assert!(ClauseState::new(&clause("on tcp_connect count by dport"), l).limited);
        assert!(ClauseState::new(&clause("on tcp_connect count by daddr"), l).limited);
        let none = Limits {
            series: None,
            idle: None,
        };
        assert!(!ClauseState::new(&clause("on tcp_connect count by dport"), none).limited);
        // A limit above the domain's bound: not limited.
        assert!(
            !ClauseState::new(&clause("on tcp_connect count by dport"), limits(70000, 1)).limited
        );
    }

    /// A histogram's label set is all its buckets: it expires only when
    /// none changed, and its buckets are retained bucket by bucket.
    #[test]
    fn a_histogram_label_set_expires_whole_and_keeps_its_buckets() {
        let mut s = ClauseState::new(&clause("on tcp_probe hist srtt by dport"), limits(1, 10));
        let t0 = Instant::now();
        // dport 80: buckets 3 and 5.
        let e = vec![(key(&[80, 3]), agg(2)), (key(&[80, 5]), agg(1))];
        s.observe(&e, t0);
        assert_eq!(s.counts(), (1, 1));
        // Bucket 5 changes at 6 s: nothing is due at 12 s.
        let e2 = vec![(key(&[80, 3]), agg(2)), (key(&[80, 5]), agg(4))];
        s.observe(&e2, t0 + Duration::from_secs(6));
        assert!(s.due(t0 + Duration::from_secs(12)).is_empty());
        let due = s.due(t0 + Duration::from_secs(16));
        assert_eq!(due.len(), 2);
        assert_eq!(s.counts(), (0, 0));
        s.retire(&due, &[]);
        let split = s.route(Vec::new());
        let mut retained = split.overflow;
        retained.sort_by_key(|(k, _)| k.vals);
        assert_eq!(
            retained,
            vec![(key(&[0, 3]), agg(2)), (key(&[0, 5]), agg(4))]
        );
    }
}
