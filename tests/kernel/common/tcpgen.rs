//! Drive the project's traffic generator (`tcpq-netlab`'s `traffic`, run
//! as `tcpq lab __gen server|client ...`) inside a test's namespaces. The
//! processes name themselves `tcpq-reader` / `tcpq-writer` (kernel comm)
//! unless told otherwise (`--comm`), and log JSON lines with their pid and
//! ports.

use super::capture::stop_child;
use super::{wait_for, NetnsPair, Tcpq};
use serde_json::Value;
use std::fs::File;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `tcpq lab __gen`: the words that start a generator (after `ip netns
/// exec NS`), e.g. in a shell command a test hands to `tcpq -c`.
pub fn gen_command() -> String {
    format!("{} lab __gen", Tcpq::bin())
}

fn spawn(ns: &str, args: &[String], stderr_path: &Path) -> Child {
    spawn_as(
        ns,
        args,
        stderr_path,
        &Launch::default(),
        Path::new(Tcpq::bin()),
    )
}

/// How to start a generator besides its namespace: as another user, inside
/// a cgroup. The socket's `uid` and cgroup are fixed when it is created, so
/// the process must be in them from the start.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// Real and effective uid (`setpriv --reuid/--regid`); the log file is
    /// created beforehand and handed to that user.
    pub uid: Option<u32>,
    /// A cgroup v2 directory to enter before exec (`cgroup.procs`).
    pub cgroup: Option<PathBuf>,
}

fn spawn_as(ns: &str, args: &[String], stderr_path: &Path, launch: &Launch, exe: &Path) -> Child {
    let mut argv: Vec<String> = vec!["ip".into(), "netns".into(), "exec".into(), ns.into()];
    if let Some(uid) = launch.uid {
        argv.extend([
            "setpriv".into(),
            format!("--reuid={uid}"),
            format!("--regid={uid}"),
            "--clear-groups".into(),
        ]);
    }
    argv.push(exe.display().to_string());
    argv.extend(["lab".into(), "__gen".into()]);
    argv.extend(args.iter().cloned());
    let mut cmd = match &launch.cgroup {
        // `exec` keeps the pid that joined the cgroup; children inherit it.
        Some(cg) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(r#"echo $$ > "$0/cgroup.procs" && exec "$@""#)
                .arg(cg)
                .args(&argv);
            c
        }
        None => {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            File::create(stderr_path).expect("create stderr file"),
        ))
        .spawn()
        .expect("spawn the traffic generator")
}

/// Create `path` empty and give it to `uid` (a generator running as that
/// user appends its log there).
fn hand_over(path: &Path, uid: u32) {
    File::create(path).expect("create log file");
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).expect("chown log file");
}

/// The parsed JSON-lines log of one tcpgen process.
#[derive(Debug, Clone, Default)]
pub struct TcpGenLog {
    pub events: Vec<Value>,
    pub stderr: String,
}

impl TcpGenLog {
    pub fn read(log: &Path, stderr: &Path) -> TcpGenLog {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        TcpGenLog {
            events: text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect(),
            stderr: std::fs::read_to_string(stderr).unwrap_or_default(),
        }
    }
    /// Every record with this `event`, in order.
    pub fn all(&self, event: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["event"] == event).collect()
    }
    /// The first record with this `event`.
    pub fn get(&self, event: &str) -> Option<&Value> {
        self.events.iter().find(|e| e["event"] == event)
    }
    pub fn pid(&self) -> u32 {
        self.events
            .first()
            .and_then(|e| e["pid"].as_u64())
            .expect("tcpgen log has no pid") as u32
    }
    pub fn comm(&self) -> String {
        self.events
            .first()
            .and_then(|e| e["comm"].as_str())
            .unwrap_or("")
            .to_string()
    }
    /// `bytes` of the `done` record.
    pub fn bytes(&self) -> u64 {
        self.get("done")
            .and_then(|e| e["bytes"].as_u64())
            .unwrap_or(0)
    }
    /// `lport` of the `done` (or `accepted`/`connected`) record.
    pub fn lport(&self) -> u16 {
        ["done", "accepted", "connected"]
            .iter()
            .find_map(|ev| self.get(ev).and_then(|e| e["lport"].as_u64()))
            .unwrap_or(0) as u16
    }
}

/// The seed story's exchange in `pair`, over IPv4 to `port`: a server
/// (`tcpq-reader`) that waits `idle` seconds before it reads, then reads
/// 16 KiB every 2 ms, and a client (`tcpq-writer`) that writes 1 MiB to it
/// as fast as it can; both give up after 8 s. With window scaling off on
/// the server, its window reaches zero. Returns the client's log and the
/// server's once both are done.
pub fn slow_reader_exchange(
    pair: &NetnsPair,
    port: u16,
    idle: &str,
    dir: &Path,
) -> (TcpGenLog, TcpGenLog) {
    let server_args = [
        "--idle-before-read",
        idle,
        "--read-size",
        "16384",
        "--read-delay-ms",
        "2",
        "--max-seconds",
        "8",
    ];
    transfer(
        pair,
        port,
        1 << 20,
        &server_args,
        &["--max-seconds", "8"],
        dir,
    )
}

/// One transfer in `pair`, over IPv4 to `port`: a server started with
/// `server_args`, a client that writes `bytes` with `client_args`. Returns
/// the client's log and the server's once both are done (10 s each at
/// most).
pub fn transfer(
    pair: &NetnsPair,
    port: u16,
    bytes: u64,
    server_args: &[&str],
    client_args: &[&str],
    dir: &Path,
) -> (TcpGenLog, TcpGenLog) {
    let addr = IpAddr::V4(pair.srv_v4());
    let mut server = Server::start(&pair.srv, addr, port, server_args, dir);
    let mut client = Client::start(&pair.cli, addr, port, bytes, client_args, dir);
    let wlog = client.wait(Duration::from_secs(10));
    let rlog = server.wait(Duration::from_secs(10));
    (wlog, rlog)
}

/// A generator `server` (comm `tcpq-reader` unless `--comm` is passed);
/// killed on Drop.
pub struct Server {
    child: Option<Child>,
    pub log: PathBuf,
    pub stderr: PathBuf,
}

impl Server {
    /// Start the server in `ns` listening on `bind:port` with extra options
    /// (`--idle-before-read`, `--read-size`, `--read-delay-ms`, `--rcvbuf`,
    /// `--max-seconds`, ...), and wait (5 s) until it is listening.
    pub fn start(ns: &str, bind: IpAddr, port: u16, extra: &[&str], dir: &Path) -> Server {
        let log = dir.join(format!("server-{port}.jsonl"));
        let ready = dir.join(format!("server-{port}.ready"));
        let stderr = dir.join(format!("server-{port}.stderr"));
        let mut args: Vec<String> = [
            "server",
            "--bind",
            &bind.to_string(),
            "--port",
            &port.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(["--log".into(), log.display().to_string()]);
        args.extend(["--ready-file".into(), ready.display().to_string()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut s = Server {
            child: Some(spawn(ns, &args, &stderr)),
            log,
            stderr,
        };
        let ok = wait_for(Duration::from_secs(5), || {
            if ready.exists() {
                return Some(true);
            }
            match s.child.as_mut().unwrap().try_wait() {
                Ok(Some(_)) => Some(false),
                _ => None,
            }
        });
        if ok != Some(true) {
            panic!(
                "tcpgen server in {ns} did not become ready: {}",
                std::fs::read_to_string(&s.stderr).unwrap_or_default()
            );
        }
        s
    }

    pub fn pid(&self) -> u32 {
        self.log_now().pid()
    }

    pub fn log_now(&self) -> TcpGenLog {
        TcpGenLog::read(&self.log, &self.stderr)
    }

    /// Wait until the log has a record with `event` (e.g. "accepted"), or
    /// panic after `timeout` / when the server exits without it.
    pub fn wait_event(&mut self, event: &str, timeout: Duration) -> TcpGenLog {
        wait_event(
            &mut self.child,
            event,
            timeout,
            "server",
            &self.log,
            &self.stderr,
        )
    }

    /// Wait up to `timeout` for the server to exit by itself (SIGTERM after
    /// that), then return its log. Panics when it failed.
    pub fn wait(&mut self, timeout: Duration) -> TcpGenLog {
        wait_exit(&mut self.child, timeout, "server", &self.log, &self.stderr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A generator `client` (comm `tcpq-writer`); killed on Drop.
pub struct Client {
    child: Option<Child>,
    pub log: PathBuf,
    pub stderr: PathBuf,
}

impl Client {
    /// Start a client in `ns` that connects to `addr:port` and writes `bytes`
    /// as fast as the socket allows; `extra`: `--max-seconds`,
    /// `--hold-seconds`, `--hold-after-ack`, `--sndbuf`, `--comm`.
    pub fn start(
        ns: &str,
        addr: IpAddr,
        port: u16,
        bytes: u64,
        extra: &[&str],
        dir: &Path,
    ) -> Client {
        Self::start_as(ns, addr, port, bytes, extra, dir, &Launch::default())
    }

    /// `start`, as another user and/or inside a cgroup (see [`Launch`]).
    pub fn start_as(
        ns: &str,
        addr: IpAddr,
        port: u16,
        bytes: u64,
        extra: &[&str],
        dir: &Path,
        launch: &Launch,
    ) -> Client {
        let tag = super::next_id();
        let log = dir.join(format!("client-{port}-{tag}.jsonl"));
        let stderr = dir.join(format!("client-{port}-{tag}.stderr"));
        let mut args: Vec<String> = [
            "client",
            "--connect",
            &addr.to_string(),
            "--port",
            &port.to_string(),
            "--bytes",
            &bytes.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(["--log".into(), log.display().to_string()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut exe = PathBuf::from(Tcpq::bin());
        if let Some(uid) = launch.uid {
            hand_over(&log, uid);
            // The other user reaches the log and a copy of the binary
            // through the temp dir: the checkout itself may be private
            // (e.g. cloned under a `mktemp -d` directory, mode 0700).
            let mode = |p: &Path, m: u32| {
                let mut perm = std::fs::metadata(p).expect("stat").permissions();
                std::os::unix::fs::PermissionsExt::set_mode(&mut perm, m);
                std::fs::set_permissions(p, perm).expect("chmod");
            };
            mode(dir, 0o755);
            let copy = dir.join("tcpq-gen");
            if !copy.exists() {
                std::fs::copy(&exe, &copy).expect("copy tcpq");
            }
            mode(&copy, 0o755);
            exe = copy;
        }
        Client {
            child: Some(spawn_as(ns, &args, &stderr, launch, &exe)),
            log,
            stderr,
        }
    }

    pub fn log_now(&self) -> TcpGenLog {
        TcpGenLog::read(&self.log, &self.stderr)
    }

    /// Wait until the log has a record with `event` (e.g. "done"), or panic
    /// after `timeout` / when the client exits without it.
    pub fn wait_event(&mut self, event: &str, timeout: Duration) -> TcpGenLog {
        wait_event(
            &mut self.child,
            event,
            timeout,
            "client",
            &self.log,
            &self.stderr,
        )
    }

    pub fn wait(&mut self, timeout: Duration) -> TcpGenLog {
        wait_exit(&mut self.child, timeout, "client", &self.log, &self.stderr)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn wait_event(
    child: &mut Option<Child>,
    event: &str,
    timeout: Duration,
    what: &str,
    log: &Path,
    stderr: &Path,
) -> TcpGenLog {
    let got = wait_for(timeout, || {
        let l = TcpGenLog::read(log, stderr);
        if l.get(event).is_some() {
            return Some(Ok(l));
        }
        match child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(Some(st))) => Some(Err(format!("exited ({st}) before '{event}'"))),
            _ => None,
        }
    });
    match got {
        Some(Ok(l)) => l,
        Some(Err(why)) => panic!("tcpgen {what} {why}: {:?}", TcpGenLog::read(log, stderr)),
        None => panic!(
            "tcpgen {what}: no '{event}' within {timeout:?}: {:?}",
            TcpGenLog::read(log, stderr)
        ),
    }
}

fn wait_exit(
    child: &mut Option<Child>,
    timeout: Duration,
    what: &str,
    log: &Path,
    stderr: &Path,
) -> TcpGenLog {
    let Some(c) = child.take() else {
        return TcpGenLog::read(log, stderr);
    };
    let mut c = c;
    let exited = wait_for(timeout, || c.try_wait().ok().flatten());
    let st = match exited {
        Some(st) => st,
        None => stop_child(c, libc::SIGTERM, Duration::from_secs(2)),
    };
    let l = TcpGenLog::read(log, stderr);
    assert!(
        exited.is_some() && st.success(),
        "tcpgen {what} {} ({st}); log {:?}",
        if exited.is_some() {
            "failed"
        } else {
            "did not exit in time"
        },
        l
    );
    l
}
