//! Reading an attached clause's maps back: its `STATS` counters (and the
//! kernel's own `recursion_misses`), its aggregation map whole or one
//! `every` interval at a time. What the maps are filled with at load is
//! `attach.rs` and `seed.rs`; how the numbers are shown is `agg.rs`.
use aya::{
    maps::{MapData, MapError, PerCpuArray, PerCpuHashMap},
    Pod,
};
use tcpq_abi::{maps, stat, AggKey, AggValue};
use tcpq_dsl::plan::{Action, AggFunc};

use super::{
    pod::{PodAggKey, PodAggValue, PodSmallAggKey},
    Attached, SessionError,
};

/// The `STATS` counters of one clause, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub matched: u64,
    pub lost: u64,
    pub agg_full: u64,
    pub read_err: u64,
    /// Runs the kernel skipped because the program was already running on
    /// that CPU (`recursion_misses` of every program of the clause).
    pub missed: u64,
}

impl Attached {
    fn template(&self) -> &str {
        &self.plan.template
    }

    /// Read the `STATS` counters.
    pub fn stats(&self) -> Result<Stats, SessionError> {
        let map = self.map(maps::STATS)?;
        let arr: PerCpuArray<&MapData, u64> =
            PerCpuArray::try_from(map).map_err(|e| self.map_err(maps::STATS, e))?;
        let get = |i: u32| -> Result<u64, SessionError> {
            Ok(arr
                .get(&i, 0)
                .map_err(|e| self.map_err(maps::STATS, e))?
                .iter()
                .sum())
        };
        Ok(Stats {
            matched: get(stat::MATCHED)?,
            lost: get(stat::LOST)?,
            agg_full: get(stat::AGG_FULL)?,
            read_err: get(stat::READ_ERR)?,
            missed: self.recursion_misses(),
        })
    }

    /// The kernel's `recursion_misses` of this clause's programs, from
    /// `/proc/self/fdinfo` (0 where a kernel does not report it).
    fn recursion_misses(&self) -> u64 {
        use std::os::fd::{AsFd, AsRawFd};
        self.ebpf
            .programs()
            .filter_map(|(_, p)| p.fd().ok())
            .filter_map(|fd| {
                let raw = fd.as_fd().as_raw_fd();
                std::fs::read_to_string(format!("/proc/self/fdinfo/{raw}")).ok()
            })
            .filter_map(|info| {
                info.lines()
                    .find_map(|l| l.strip_prefix("recursion_misses:"))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            })
            .sum()
    }

    /// Read the `AGG` map: each key's slot values with its count summed
    /// over CPUs, largest count first (ties by key, for stable output).
    pub fn counts(&self) -> Result<Vec<(AggKey, u64)>, SessionError> {
        let mut out: Vec<(AggKey, u64)> = self
            .agg_entries()?
            .into_iter()
            .map(|(k, per_cpu)| (k, per_cpu.iter().map(|v| v.count).sum()))
            .collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.vals.cmp(&b.0.vals)));
        Ok(out)
    }

    /// Read the `AGG` map with each key's per-CPU values combined.
    pub fn aggregates(&self) -> Result<Vec<(AggKey, crate::agg::Agg)>, SessionError> {
        let signed = self.plan.action.aggregates_signed();
        Ok(self
            .agg_entries()?
            .into_iter()
            .map(|(k, per_cpu)| (k, crate::agg::Agg::combine_as(signed, per_cpu)))
            .collect())
    }

    /// The aggregation map the template counts into: `AGG_SMALL` for a key
    /// of two words or fewer, else `AGG` ([`tcpq_abi::small_key`]).
    fn agg_map(&self) -> &'static str {
        match self.small_key {
            true => maps::AGG_SMALL,
            false => maps::AGG,
        }
    }

    /// Each key of the aggregation map, as an [`AggKey`], with its per-CPU
    /// values.
    fn agg_entries(&self) -> Result<Vec<(AggKey, Vec<AggValue>)>, SessionError> {
        match self.small_key {
            true => self.read_agg(maps::AGG_SMALL, |k: PodSmallAggKey| {
                let mut key = AggKey::default();
                key.vals[..2].copy_from_slice(&k.0);
                key
            }),
            false => self.read_agg(maps::AGG, |k: PodAggKey| k.0),
        }
    }

    fn read_agg<K: Pod>(
        &self,
        name: &str,
        key: impl Fn(K) -> AggKey,
    ) -> Result<Vec<(AggKey, Vec<AggValue>)>, SessionError> {
        let map = self.map(name)?;
        let agg: PerCpuHashMap<&MapData, K, PodAggValue> =
            PerCpuHashMap::try_from(map).map_err(|e| self.map_err(name, e))?;
        let mut out = Vec::new();
        for item in agg.iter() {
            let (k, per_cpu) = item.map_err(|e| self.map_err(name, e))?;
            out.push((key(k), per_cpu.iter().map(|v| v.0).collect()));
        }
        Ok(out)
    }

    /// One interval's aggregates (`every DUR`).
    ///
    /// Counts, sums and buckets (`count`, `sum`, `avg`, `hist`, `lhist`):
    /// the kernel's totals keep growing and the interval is the difference
    /// from the last read, so no event is lost between intervals (keys stay
    /// in the map; a full map is reported as `not_counted`).
    ///
    /// `min`, `max` and `stats` need the extremes of the interval alone, so
    /// their keys are read and then deleted: events the kernel adds to a key
    /// between its read and its deletion are lost (keys created after the
    /// read stay for the next interval).
    pub fn take_aggregates(&mut self) -> Result<Vec<(AggKey, crate::agg::Agg)>, SessionError> {
        let extremes = matches!(
            self.plan.action,
            Action::Aggregate {
                func: AggFunc::Min | AggFunc::Max | AggFunc::Stats,
                ..
            }
        );
        if !extremes {
            let mut out = Vec::new();
            for (k, now) in self.aggregates()? {
                let before = self.prev.insert(k, now).unwrap_or_default();
                let delta = crate::agg::Agg {
                    count: now.count - before.count,
                    sum: now.sum - before.sum,
                    min: 0,
                    max: 0,
                };
                if delta.count > 0 {
                    out.push((k, delta));
                }
            }
            return Ok(out);
        }
        let data = self.aggregates()?;
        let keys = data.iter().map(|(k, _)| k);
        match self.small_key {
            true => self.remove_keys(keys.map(|k| PodSmallAggKey([k.vals[0], k.vals[1]])))?,
            false => self.remove_keys(keys.map(|k| PodAggKey(*k)))?,
        }
        Ok(data)
    }

    /// Delete `keys` from the aggregation map.
    fn remove_keys<K: Pod>(&mut self, keys: impl Iterator<Item = K>) -> Result<(), SessionError> {
        let name = self.agg_map();
        let map = self
            .ebpf
            .map_mut(name)
            .ok_or_else(|| SessionError::MissingMap {
                template: self.plan.template.clone(),
                map: name.to_owned(),
            })?;
        let mut agg: PerCpuHashMap<&mut MapData, K, PodAggValue> = PerCpuHashMap::try_from(map)
            .map_err(|e| SessionError::Map {
                template: self.plan.template.clone(),
                map: name.to_owned(),
                source: Box::new(e),
            })?;
        for k in keys {
            // Already gone is fine: nothing else deletes, but be lenient.
            let _ = agg.remove(&k);
        }
        Ok(())
    }

    fn map(&self, name: &str) -> Result<&aya::maps::Map, SessionError> {
        self.ebpf.map(name).ok_or_else(|| SessionError::MissingMap {
            template: self.template().to_owned(),
            map: name.to_owned(),
        })
    }

    fn map_err(&self, map: &str, source: MapError) -> SessionError {
        SessionError::Map {
            template: self.template().to_owned(),
            map: map.to_owned(),
            source: Box::new(source),
        }
    }
}
