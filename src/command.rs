//! `tcpq -c CMD`: run a command and trace only it.
//!
//! "Only it" is the command and every process it starts: tcpq creates a
//! cgroup v2 of its own (`tcpq-c-PID` at the root of the cgroup2
//! hierarchy), adds `cgroup == ID` to every clause (a socket keeps the
//! cgroup of the process that created it, and an accepted connection its
//! listener's), attaches, and only then starts `sh -c CMD`, which enters
//! that cgroup before it executes (children inherit it). A socket the
//! command did not create (one inherited from tcpq's caller, or passed
//! over a unix socket) is not traced.
//!
//! The run stops when the command has exited and the connections it
//! opened have finished closing (no socket of the cgroup left in a state
//! other than LISTEN, CLOSE or TIME_WAIT, in any network namespace tcpq
//! can enter), at most [`LINGER`] after it exited, so that the ends of its
//! connections (FIN handshakes, `tcp_close`) are seen. If tcpq stops first
//! (Ctrl-C, `--duration`, `limit`), every process of the cgroup gets
//! SIGTERM, and once the command has exited (SIGKILL after [`LINGER`]),
//! SIGKILL whatever it left. At the end the cgroup is removed, after
//! moving any process still in it (a daemon left by a command that exited
//! on its own) back to tcpq's own cgroup.
//!
//! tcpq's exit status keeps its own meaning (0: traced to the end; 1, 2 as
//! always); the command's status is reported on stderr.
use std::ffi::CString;
use std::io::{self, Write as _};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long after the command exits tcpq waits, at most, for its
/// connections to finish closing (and how long a SIGTERM'd command gets).
pub const LINGER: Duration = Duration::from_secs(2);

/// A cgroup v2 of tcpq's own, removed on drop.
pub struct Cgroup {
    dir: PathBuf,
    /// tcpq's own cgroup's `cgroup.procs`: where leftovers go back to.
    home_procs: PathBuf,
    /// The cgroup's id (its directory's inode number): the `cgroup` field.
    pub id: u64,
}

/// The first cgroup2 mount point in /proc/self/mountinfo.
pub(crate) fn cgroup2_mount() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|l| {
        let (before, after) = l.split_once(" - ")?;
        (after.split_whitespace().next() == Some("cgroup2"))
            .then(|| before.split_whitespace().nth(4).map(PathBuf::from))
            .flatten()
    })
}

/// tcpq's own cgroup v2 path (`0::/PATH` in /proc/self/cgroup).
fn own_cgroup() -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
}

impl Cgroup {
    pub fn create() -> Result<Cgroup, String> {
        let mnt = cgroup2_mount().ok_or(
            "-c needs a cgroup v2 hierarchy to tell the command's sockets apart, and none is \
             mounted (mount -t cgroup2 none /sys/fs/cgroup); -p PID traces a running process",
        )?;
        let home = own_cgroup().unwrap_or_else(|| "/".into());
        let home_procs = mnt.join(home.trim_start_matches('/')).join("cgroup.procs");
        let me = std::process::id();
        let mut last = None;
        for n in 0..100 {
            let dir = mnt.join(format!("tcpq-c-{me}-{n}"));
            match std::fs::create_dir(&dir) {
                Ok(()) => {
                    let id = std::fs::metadata(&dir)
                        .map_err(|e| format!("cannot read cgroup {}: {e}", dir.display()))?
                        .ino();
                    return Ok(Cgroup {
                        dir,
                        home_procs,
                        id,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(format!("-c: cannot create cgroup {}: {e}", dir.display())),
            }
        }
        Err(format!(
            "-c: cannot create a cgroup under {}: {}",
            mnt.display(),
            last.map_or("".into(), |e| e.to_string())
        ))
    }

    fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // A process may fork while being moved: a few rounds.
        for _ in 0..10 {
            let pids = std::fs::read_to_string(self.procs()).unwrap_or_default();
            for pid in pids.split_whitespace() {
                if let Ok(mut f) = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&self.home_procs)
                {
                    let _ = f.write_all(pid.as_bytes());
                }
            }
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!(
            "tcpq: warning: could not remove cgroup {}",
            self.dir.display()
        );
    }
}

/// The command, running in its cgroup.
pub struct Traced {
    child: Child,
    command: String,
    /// Readable once the command has exited and lingered (see the module).
    stop_read: OwnedFd,
    stopping: Arc<AtomicBool>,
    watcher: Option<std::thread::JoinHandle<()>>,
    /// The cgroup's directory, to end every process in it.
    cgroup: PathBuf,
}

/// Start `sh -c CMD` inside `cg` (it joins before it executes anything).
pub fn spawn(command: &str, cg: &Cgroup) -> io::Result<Traced> {
    let procs = CString::new(cg.procs().as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::other("cgroup path holds a NUL byte"))?;
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c").arg(command);
    // SAFETY: between fork and exec the closure calls only open(2),
    // write(2) and close(2), which are async-signal-safe, on memory
    // prepared before the fork; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // "0" moves the writing process.
            let n = libc::write(fd, b"0".as_ptr().cast(), 1);
            let err = io::Error::last_os_error();
            libc::close(fd);
            if n != 1 {
                return Err(err);
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 just created both and nothing else owns them.
    let (stop_read, stop_write) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let stopping = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stopping = stopping.clone();
        let pid = child.id();
        let cgroup = cg.id;
        std::thread::spawn(move || {
            wait_exited(pid);
            if !stopping.load(Ordering::SeqCst) {
                linger(cgroup, &stopping);
            }
            let mut w = std::fs::File::from(stop_write);
            let _ = w.write_all(b"x");
        })
    };
    Ok(Traced {
        child,
        command: command.to_owned(),
        stop_read,
        stopping,
        watcher: Some(watcher),
        cgroup: cg.dir.clone(),
    })
}

/// Until `pid` (our child) has exited, without reaping it: only
/// [`Traced::finish`] reaps, so a signal it sends can never reach a
/// reused pid.
fn wait_exited(pid: u32) {
    loop {
        // SAFETY: an all-zero siginfo_t is a valid value for waitid to fill.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid siginfo_t; WNOWAIT leaves the child
        // waitable.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

/// TCP states in which a socket of the command may still send or receive.
fn still_open(state: u64) -> bool {
    // LISTEN 10, CLOSE 7, TIME_WAIT 6, NEW_SYN_RECV 12 (not a full socket).
    !matches!(state, 6 | 7 | 10 | 12)
}

/// Whether any socket of cgroup `id` is still open, in any namespace tcpq
/// can enter. Errors count as "none": lingering is best effort.
fn sockets_open(id: u64) -> bool {
    use tcpq_dsl::sockets::SOCKETS;
    let (Some(cg), Some(st)) = (SOCKETS.field("cgroup"), SOCKETS.field("state")) else {
        return false;
    };
    let (cg, st) = (usize::from(cg.slots[0]), usize::from(st.slots[0]));
    let Ok(namespaces) = tcpq_runtime::netns::list() else {
        return false;
    };
    namespaces.iter().any(|ns| {
        tcpq_runtime::sockets::dump(ns).is_ok_and(|socks| {
            socks
                .iter()
                .any(|s| s.have & (1 << cg) != 0 && s.vals[cg] == id && still_open(s.vals[st]))
        })
    })
}

fn linger(id: u64, stopping: &AtomicBool) {
    let until = Instant::now() + LINGER;
    while Instant::now() < until && !stopping.load(Ordering::SeqCst) && sockets_open(id) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Traced {
    /// For [`tcpq_runtime::RunOptions::stop_fd`].
    pub fn stop_fd(&self) -> RawFd {
        self.stop_read.as_raw_fd()
    }

    /// After the run: end the command if it still runs, reap it, and say
    /// how it ended (on stderr).
    pub fn finish(mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let status = match self.child.try_wait() {
            Ok(Some(st)) => Ok(st),
            _ => {
                let pid = self.child.id() as libc::pid_t;
                // SAFETY: kill(2) on our own unreaped child.
                unsafe { libc::kill(pid, libc::SIGTERM) };
                self.signal_all(libc::SIGTERM);
                let st = wait_timeout(&mut self.child, LINGER).or_else(|| {
                    // SAFETY: as above; still not reaped.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    self.child.wait().ok()
                });
                // What the command started and left behind ends too.
                self.signal_all(libc::SIGKILL);
                st.ok_or(())
            }
        };
        if let Some(w) = self.watcher.take() {
            let _ = w.join();
        }
        match status {
            Ok(st) => eprintln!("tcpq: command `{}` {}", self.command, describe(st)),
            Err(()) => eprintln!("tcpq: command `{}`: its status is unknown", self.command),
        }
    }
}

impl Traced {
    /// Signal every process in the command's cgroup (what it started).
    fn signal_all(&self, sig: libc::c_int) {
        let pids = std::fs::read_to_string(self.cgroup.join("cgroup.procs")).unwrap_or_default();
        for pid in pids
            .split_whitespace()
            .filter_map(|p| p.parse::<libc::pid_t>().ok())
        {
            if pid != self.child.id() as libc::pid_t {
                // SAFETY: kill(2) has no memory preconditions; the pid was in
                // our cgroup a moment ago.
                unsafe { libc::kill(pid, sig) };
            }
        }
    }
}

fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let until = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(10)),
            _ => return None,
        }
    }
}

/// `exited with status 0`, `was killed by signal 15 (SIGTERM from tcpq)`.
fn describe(st: ExitStatus) -> String {
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(s)) => format!("was killed by signal {s}"),
        _ => format!("ended ({st})"),
    }
}
