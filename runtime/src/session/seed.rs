//! Owner seeding: the owners of sockets from before tcpq started, read
//! from /proc on another thread (`crate::owners`), written into the
//! templates' `LISTENERS` and `TUPLES` maps once the owner programs run,
//! never over what those programs learned themselves. Which programs track
//! owners is `crate::templates`; when they attach is `attach.rs`.
use aya::{
    maps::{MapData, MapError},
    Ebpf, Pod,
};
use tcpq_abi::maps;

use super::{
    pod::{PodListenKey, PodOwner, PodTupleKey},
    SessionError,
};

/// Write the owners read from /proc into a template's `LISTENERS` and
/// `TUPLES` maps, after its programs attached: only where they have not
/// learned an owner themselves meanwhile (`BPF_NOEXIST`).
pub(super) fn seed_owners(
    ebpf: &mut Ebpf,
    template: &str,
    seeds: &crate::owners::Seeds,
) -> Result<(), SessionError> {
    let listeners = seeds
        .listeners
        .iter()
        .map(|(k, o)| (PodListenKey(*k), PodOwner(*o)));
    insert_absent(ebpf, template, maps::LISTENERS, listeners)?;
    let tuples = seeds
        .tuples
        .iter()
        .map(|(k, o)| (PodTupleKey(*k), PodOwner(*o)));
    insert_absent(ebpf, template, maps::TUPLES, tuples)
}

/// Insert each entry into hash map `name` unless it holds the key already
/// (`BPF_NOEXIST`; EEXIST is not an error).
fn insert_absent<K: Pod, V: Pod>(
    ebpf: &mut Ebpf,
    template: &str,
    name: &str,
    entries: impl Iterator<Item = (K, V)>,
) -> Result<(), SessionError> {
    const BPF_NOEXIST: u64 = 1;
    let fail = |source: MapError| SessionError::Map {
        template: template.to_owned(),
        map: name.to_owned(),
        source: Box::new(source),
    };
    let map = ebpf.map_mut(name).ok_or_else(|| SessionError::MissingMap {
        template: template.to_owned(),
        map: name.to_owned(),
    })?;
    let mut map: aya::maps::HashMap<&mut MapData, K, V> =
        aya::maps::HashMap::try_from(map).map_err(fail)?;
    for (k, v) in entries {
        match map.insert(k, v, BPF_NOEXIST) {
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::EEXIST) => {}
            r => r.map_err(fail)?,
        }
    }
    Ok(())
}

/// The owners of sockets from before the start, read from /proc on
/// another thread.
pub(super) enum Seeds {
    Scanning(std::thread::JoinHandle<crate::owners::Seeds>),
    /// `None`: not needed, or the scan panicked (a bug; owners of sockets
    /// from before the start then stay unknown).
    Ready(Option<crate::owners::Seeds>),
}

impl Seeds {
    pub(super) fn get(&mut self) -> Option<&crate::owners::Seeds> {
        if let Seeds::Scanning(_) = self {
            let Seeds::Scanning(h) = std::mem::replace(self, Seeds::Ready(None)) else {
                unreachable!()
            };
            *self = Seeds::Ready(h.join().ok());
        }
        match self {
            Seeds::Ready(found) => found.as_ref(),
            Seeds::Scanning(_) => None,
        }
    }
}
