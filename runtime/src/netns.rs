//! Network namespaces: which exist, and reading the kernel from inside one.
//!
//! TCP's kernel state is per network namespace: the counters of
//! `/proc/net/snmp` and `/proc/net/netstat`, the `net.ipv4.tcp_*` sysctls,
//! and the sockets sock_diag lists. To read another namespace tcpq enters it
//! with `setns(2)` on a thread of its own (a namespace is a property of the
//! thread, so the rest of tcpq stays where it is), does the reading there
//! and returns the result.
//!
//! A namespace is named by the inode of its `ns/net` file (`net:[4026531840]`),
//! the same number the templates read from `sock_net(sk)->ns.inum` and print
//! as `netns`. [`list`] finds every namespace it can open: the ones `ip netns`
//! names (bind mounts under `/run/netns`) and the ones some process is in
//! (`/proc/PID/ns/net`), each once.
//!
//! Inside the thread, read `/proc/thread-self/net/...`, never
//! `/proc/self/net/...` or `/proc/net/...`: those follow the process's main
//! thread, which stays in the namespace tcpq started in. `/proc/sys/net`
//! and netlink sockets created on the thread follow the thread.
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Where `ip netns add NAME` bind-mounts its namespaces.
pub const NAMED_DIR: &str = "/run/netns";

/// One network namespace tcpq can enter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Netns {
    /// The namespace's inode number: the `netns` field of every probe.
    pub inode: u64,
    /// Its names under `/run/netns` (`ip netns`), sorted; often none.
    pub names: Vec<String>,
    /// A file that opens it: `/run/netns/NAME` or `/proc/PID/ns/net`.
    pub path: PathBuf,
    /// Whether tcpq itself runs in it.
    pub current: bool,
}

impl Netns {
    /// How to name it to a person: its first `ip netns` name, `host` for
    /// tcpq's own, else `netns:INODE`.
    pub fn label(&self) -> String {
        match self.names.first() {
            Some(n) => n.clone(),
            None if self.current => "host".to_owned(),
            None => format!("netns:{}", self.inode),
        }
    }
}

/// Why a namespace could not be found or entered.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("no network namespace `{spec}`: {why}")]
    NotFound { spec: String, why: String },
    #[error("cannot open network namespace {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot enter network namespace {path}: {source} (entering another namespace needs CAP_SYS_ADMIN)"
    )]
    Enter {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the thread reading network namespace {0} panicked")]
    Panicked(PathBuf),
}

/// The inode of a namespace file (`/proc/PID/ns/net`, `/run/netns/NAME`).
pub fn inode_of(path: &Path) -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(path)?.ino())
}

/// The namespace tcpq's calling thread is in.
pub fn current_inode() -> io::Result<u64> {
    inode_of(Path::new("/proc/thread-self/ns/net"))
}

/// Every network namespace tcpq can open, each once: tcpq's own first, then
/// the named ones (by name), then the others by inode. Processes that exit
/// while this runs are skipped, never an error.
pub fn list() -> io::Result<Vec<Netns>> {
    let current = current_inode()?;
    let mut all: Vec<Netns> = Vec::new();
    let add = |all: &mut Vec<Netns>, inode: u64, path: PathBuf, name: Option<String>| {
        match all.iter_mut().find(|n| n.inode == inode) {
            Some(n) => {
                if let Some(name) = name {
                    // A named path opens it without depending on a process.
                    if n.names.is_empty() && !n.current {
                        n.path = path;
                    }
                    n.names.push(name);
                    n.names.sort();
                }
            }
            None => all.push(Netns {
                inode,
                names: name.into_iter().collect(),
                path,
                current: inode == current,
            }),
        }
    };
    add(
        &mut all,
        current,
        PathBuf::from("/proc/thread-self/ns/net"),
        None,
    );
    if let Ok(dir) = std::fs::read_dir(NAMED_DIR) {
        for e in dir.flatten() {
            let path = e.path();
            let Some(name) = e.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            // A name whose namespace is gone is an empty file, not a bind
            // mount of an nsfs inode: opening it as a namespace fails later,
            // so keep only what stat says is a namespace (nsfs inodes live
            // on their own device, unlike the files of /run).
            if is_nsfs(&path) {
                if let Ok(inode) = inode_of(&path) {
                    add(&mut all, inode, path, Some(name));
                }
            }
        }
    }
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
        if let Ok(inode) = inode_of(&path) {
            add(&mut all, inode, path, None);
        }
    }
    // Own first, then named (by name), then by inode.
    all.sort_by(|a, b| {
        (!a.current, a.names.is_empty(), a.names.first(), a.inode).cmp(&(
            !b.current,
            b.names.is_empty(),
            b.names.first(),
            b.inode,
        ))
    });
    Ok(all)
}

/// Whether `path` is a namespace file (on nsfs).
fn is_nsfs(path: &Path) -> bool {
    // NSFS_MAGIC from <linux/magic.h>.
    const NSFS_MAGIC: i64 = 0x6e73_6673;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid C string and `st` a valid out-pointer.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    rc == 0 && st.f_type as i64 == NSFS_MAGIC
}

/// Find one namespace by what a user writes after `--netns`: an `ip netns`
/// name, `host` (tcpq's own), a path to a namespace file, `pid:PID`, or an
/// inode number (as `netns` prints it).
pub fn find(spec: &str) -> Result<Netns, NetnsError> {
    let not_found = |why: String| NetnsError::NotFound {
        spec: spec.to_owned(),
        why,
    };
    let all = list().map_err(|e| not_found(format!("cannot list namespaces: {e}")))?;
    let by_inode = |inode: u64, path: Option<PathBuf>| -> Result<Netns, NetnsError> {
        if let Some(n) = all.iter().find(|n| n.inode == inode) {
            return Ok(n.clone());
        }
        match path {
            Some(path) => Ok(Netns {
                inode,
                names: Vec::new(),
                path,
                current: false,
            }),
            None => Err(not_found(format!(
                "no process or `ip netns` name is in a namespace with inode {inode}"
            ))),
        }
    };
    if spec == "host" {
        return Ok(all[0].clone());
    }
    if let Some(n) = all.iter().find(|n| n.names.iter().any(|x| x == spec)) {
        return Ok(n.clone());
    }
    if let Some(pid) = spec.strip_prefix("pid:") {
        let pid: u32 = pid
            .parse()
            .map_err(|_| not_found(format!("`{pid}` is not a process id")))?;
        let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
        let inode = inode_of(&path).map_err(|e| not_found(format!("process {pid}: {e}")))?;
        return by_inode(inode, Some(path));
    }
    if spec.contains('/') {
        let path = PathBuf::from(spec);
        if !is_nsfs(&path) {
            return Err(not_found(format!(
                "{} is not a namespace file",
                path.display()
            )));
        }
        let inode = inode_of(&path).map_err(|e| not_found(e.to_string()))?;
        return by_inode(inode, Some(path));
    }
    if let Ok(inode) = spec.parse::<u64>() {
        return by_inode(inode, None);
    }
    let names: Vec<&str> = all
        .iter()
        .flat_map(|n| n.names.iter().map(String::as_str))
        .collect();
    Err(not_found(if names.is_empty() {
        "`ip netns list` names none; give a path, `pid:PID` or an inode".to_owned()
    } else {
        format!("`ip netns` names {}", names.join(", "))
    }))
}

/// Run `f` inside `ns`, on a thread of its own, and return what it returns.
/// tcpq's own namespace runs `f` on a new thread too, so that `f` can always
/// read `/proc/thread-self/net`.
pub fn run_in<T, F>(ns: &Netns, f: F) -> Result<T, NetnsError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    pin(ns)?.run(f)
}

/// A namespace held open: its file stays open as long as this lives, so the
/// namespace cannot disappear or be replaced under a name between two
/// readings (`ip netns del` only unmounts the name; a process whose
/// `/proc/PID/ns/net` found it may exit).
#[derive(Debug)]
pub struct Pinned {
    pub ns: Netns,
    /// None for tcpq's own namespace: nothing to enter.
    file: Option<File>,
}

/// Open `ns` once, for several [`Pinned::run`]s.
pub fn pin(ns: &Netns) -> Result<Pinned, NetnsError> {
    let file = if ns.current {
        None
    } else {
        Some(File::open(&ns.path).map_err(|source| NetnsError::Open {
            path: ns.path.clone(),
            source,
        })?)
    };
    Ok(Pinned {
        ns: ns.clone(),
        file,
    })
}

impl Pinned {
    /// Run `f` inside the namespace, on a thread of its own (see [`run_in`]).
    pub fn run<T, F>(&self, f: F) -> Result<T, NetnsError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let path = self.ns.path.clone();
        let file = match &self.file {
            Some(f) => Some(f.try_clone().map_err(|source| NetnsError::Open {
                path: path.clone(),
                source,
            })?),
            None => None,
        };
        let thread_path = path.clone();
        let handle = std::thread::spawn(move || -> Result<T, NetnsError> {
            if let Some(file) = file {
                // SAFETY: `file` is an open namespace file for the whole call.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                if rc != 0 {
                    return Err(NetnsError::Enter {
                        path: thread_path,
                        source: io::Error::last_os_error(),
                    });
                }
            }
            Ok(f())
        });
        handle.join().map_err(|_| NetnsError::Panicked(path))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_namespace_comes_first_and_runs_in_place() {
        let all = list().expect("list namespaces");
        assert!(all[0].current, "{all:?}");
        assert_eq!(all.iter().filter(|n| n.current).count(), 1);
        let own = current_inode().unwrap();
        assert_eq!(all[0].inode, own);
        let inside = run_in(&all[0], || current_inode().unwrap()).unwrap();
        assert_eq!(inside, own);
        assert_eq!(find("host").unwrap().inode, own);
        assert_eq!(find(&own.to_string()).unwrap().inode, own);
        let me = std::process::id();
        assert_eq!(find(&format!("pid:{me}")).unwrap().inode, own);
    }

    #[test]
    fn unknown_names_say_what_exists() {
        let e = find("tcpq-no-such-namespace").unwrap_err();
        assert!(matches!(e, NetnsError::NotFound { .. }), "{e}");
        assert!(e.to_string().contains("tcpq-no-such-namespace"), "{e}");
        let e = find("pid:notanumber").unwrap_err();
        assert!(e.to_string().contains("not a process id"), "{e}");
        let e = find("/etc/hostname").unwrap_err();
        assert!(e.to_string().contains("not a namespace file"), "{e}");
    }
}
