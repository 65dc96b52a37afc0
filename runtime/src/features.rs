//! What this kernel and this process can do, found by looking and trying,
//! never assumed from a version number.
use std::path::Path;

use crate::{btf::VMLINUX_BTF, tracefs::Tracefs};

/// Capability bits (`linux/capability.h`).
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Whether this process may load and attach tracing programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Privilege {
    /// Effective uid 0.
    Root,
    /// `CAP_BPF` and `CAP_PERFMON` (or `CAP_SYS_ADMIN`) without being root.
    Capabilities,
    /// Neither: loading will fail with EPERM.
    None,
}

impl Privilege {
    /// Look at the effective uid and `CapEff` in `/proc/self/status`.
    pub fn current() -> Privilege {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            return Privilege::Root;
        }
        let caps = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("CapEff:"))
                    .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            })
            .unwrap_or(0);
        let has = |bit: u32| caps & (1u64 << bit) != 0;
        if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
            Privilege::Capabilities
        } else {
            Privilege::None
        }
    }

    pub fn sufficient(self) -> bool {
        self != Privilege::None
    }
}

/// A snapshot of what tcpq relies on.
#[derive(Clone, Debug)]
pub struct Features {
    /// `/sys/kernel/btf/vmlinux` exists.
    pub btf: bool,
    /// A mounted tracefs, if any (not mounted by this call).
    pub tracefs: Option<Tracefs>,
    pub privilege: Privilege,
}

impl Features {
    /// Look, without changing anything (no mount, no load).
    pub fn detect() -> Features {
        Features {
            btf: Path::new(VMLINUX_BTF).is_file(),
            tracefs: Tracefs::find(),
            privilege: Privilege::current(),
        }
    }

    /// Whether a classic tracepoint exists (false without tracefs).
    pub fn tracepoint(&self, category: &str, name: &str) -> bool {
        self.tracefs
            .as_ref()
            .is_some_and(|t| t.exists(category, name))
    }
}
