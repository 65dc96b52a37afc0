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

    /// Delete `keys` from the aggregation map, each with the values it held
    /// at its deletion (combined over CPUs; `None`: it was not there).
    /// `tcpq serve`'s idle-key expiry: the values move into its retained
    /// totals, so the delete must hand back everything counted until then.
    ///
    /// Each key is read and deleted in one `BPF_MAP_LOOKUP_AND_DELETE_ELEM`
    /// (per-CPU hash maps have it since Linux 5.14: the kernel copies every
    /// CPU's value and unlinks the element under the bucket's lock, so no
    /// map update can come between the two). What remains is a program
    /// that found the element before the unlink and adds to it in place
    /// after the copy (the templates add through the pointer the lookup
    /// returned, without the bucket's lock): that one event is lost, a
    /// window as long as one run of the program. An event after the
    /// unlink creates the key afresh, from zero. On an older kernel (the
    /// command refused) the key is read, then deleted: events added
    /// between the two system calls are lost too.
    pub fn take_keys(
        &mut self,
        keys: &[AggKey],
    ) -> Result<Vec<(AggKey, Option<crate::agg::Agg>)>, SessionError> {
        use std::os::fd::{AsFd, AsRawFd};
        let name = self.agg_map();
        let signed = self.plan.action.aggregates_signed();
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| {
            self.map_err(
                name,
                MapError::SyscallError(aya::sys::SyscallError {
                    call: "nr_cpus",
                    io_error: e,
                }),
            )
        })?;
        let fd = match self.map(name)? {
            aya::maps::Map::PerCpuHashMap(d) => d.fd().as_fd().as_raw_fd(),
            _ => {
                return Err(SessionError::MissingMap {
                    template: self.plan.template.clone(),
                    map: name.to_owned(),
                })
            }
        };
        let mut out = Vec::with_capacity(keys.len());
        let mut supported = true;
        let mut values = vec![AggValue::default(); cpus];
        for k in keys {
            let small = [k.vals[0], k.vals[1]];
            let key_ptr = match self.small_key {
                true => small.as_ptr(),
                false => k.vals.as_ptr(),
            };
            if supported {
                match lookup_and_delete(fd, key_ptr.cast(), values.as_mut_ptr().cast()) {
                    Ok(true) => {
                        out.push((
                            *k,
                            Some(crate::agg::Agg::combine_as(signed, values.clone())),
                        ));
                        continue;
                    }
                    Ok(false) => {
                        out.push((*k, None));
                        continue;
                    }
                    // Refused: a kernel before 5.14.
                    Err(e)
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::EINVAL | libc::EOPNOTSUPP | ENOTSUPP)
                        ) => {}
                    Err(e) => {
                        return Err(self.map_err(
                            name,
                            MapError::SyscallError(aya::sys::SyscallError {
                                call: "bpf_map_lookup_and_delete_elem",
                                io_error: e,
                            }),
                        ))
                    }
                }
                supported = false;
            }
            // An older kernel: read, then delete.
            let read = match self.small_key {
                true => self.read_one(name, PodSmallAggKey(small))?,
                false => self.read_one(name, PodAggKey(*k))?,
            };
            match self.small_key {
                true => self.remove_keys(std::iter::once(PodSmallAggKey(small)))?,
                false => self.remove_keys(std::iter::once(PodAggKey(*k)))?,
            }
            out.push((*k, read.map(|v| crate::agg::Agg::combine_as(signed, v))));
        }
        Ok(out)
    }

    /// One key's per-CPU values, `None` when it is not in the map.
    fn read_one<K: Pod>(&self, name: &str, key: K) -> Result<Option<Vec<AggValue>>, SessionError> {
        let map = self.map(name)?;
        let agg: PerCpuHashMap<&MapData, K, PodAggValue> =
            PerCpuHashMap::try_from(map).map_err(|e| self.map_err(name, e))?;
        match agg.get(&key, 0) {
            Ok(v) => Ok(Some(v.iter().map(|v| v.0).collect())),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(self.map_err(name, e)),
        }
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

/// The kernel's internal "operation not supported" (`ENOTSUPP`, 524),
/// which `BPF_MAP_LOOKUP_AND_DELETE_ELEM` returned before 5.14 for maps
/// without it.
const ENOTSUPP: i32 = 524;

/// `BPF_MAP_LOOKUP_AND_DELETE_ELEM` on map `fd`: true when the key was
/// there (its values, one per possible CPU, written to `value`), false
/// when it was not. aya 0.14 offers the command only for queues and
/// stacks.
fn lookup_and_delete(
    fd: std::os::fd::RawFd,
    key: *const u8,
    value: *mut u8,
) -> std::io::Result<bool> {
    /// `union bpf_attr`'s member for the `BPF_MAP_*_ELEM` commands.
    #[repr(C)]
    struct ElemAttr {
        map_fd: u32,
        _pad: u32,
        key: u64,
        value: u64,
        flags: u64,
    }
    const BPF_MAP_LOOKUP_AND_DELETE_ELEM: libc::c_long = 21;
    let attr = ElemAttr {
        map_fd: fd as u32,
        _pad: 0,
        key: key as u64,
        value: value as u64,
        flags: 0,
    };
    // SAFETY: `attr` is a valid `bpf_attr` prefix of the size passed; the
    // key is the map's key size and `value` holds one value per possible
    // CPU (the caller's buffers, alive for the call).
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_LOOKUP_AND_DELETE_ELEM,
            &attr as *const ElemAttr,
            std::mem::size_of::<ElemAttr>() as u32,
        )
    };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOENT) => Ok(false),
        _ => Err(e),
    }
}
