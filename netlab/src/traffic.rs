//! The traffic generator: a server and a client, each run as its own
//! process inside a namespace (`ip netns exec NS tcpq lab __gen server|client
//! OPTIONS`), so the kernel sees a process of its own (its pid, its comm,
//! its uid and cgroup when started under `setpriv` or in a cgroup) own each
//! socket.
//!
//! ```text
//! server --bind ADDR --port P [--idle-before-read S] [--read-size N]
//!        [--read-delay-ms D] [--rcvbuf N] [--max-seconds T] [--backlog N]
//!        [--accept-delay S] [--accept N] [--close-unread]
//!        [--reply K --reply-after B --reply-delay S] [--hold-accepted-ms MS]
//!        [--burst N [--burst-inflight B] [--go-file F] [--close-file F]]
//!        [--last-cpu] [--log FILE] [--ready-file F] [--comm NAME]
//! client --connect ADDR --port P --bytes N [--max-seconds T] [--sndbuf N]
//!        [--hold-seconds H] [--hold-after-ack S] [--connections N]
//!        [--pause-ms MS] [--read-reply K | --read-to-eof] [--linger0]
//!        [--connect-timeout S] [--blocking-connect] [--handoff NAME]
//!        [--pace-ms MS] [--refused-port P] [--crowd FIRST,MORE,EVERY_MS]
//!        [--fill EAGAIN_COUNT,AFTER,PAUSE_MS] [--port-sweep] [--log FILE] [--comm NAME]
//! stream ...  (see [`crate::stream`]: receive calls as fast as it can)
//! ```
//!
//! Every run is bounded: it refuses to start outside a `tcpq-*` namespace,
//! ends by itself after `--max-seconds` (at most [`MAX_SECONDS`]), and makes
//! or accepts at most [`MAX_CONNECTIONS`] connections. The server accepts
//! `--accept` connections (default 1) one after the other, or with
//! `--accept 0` every connection until the deadline, each served on a
//! thread of its own. The client makes `--connections` connections
//! (default one) one after the other, `--pause-ms` apart, or with
//! `--connections 0` as many as fit before the deadline; it stops writing
//! after `--bytes` or at the deadline. Each process renames itself (the
//! kernel's comm) to
//! `--comm`, by default `tcpq-reader` / `tcpq-writer`.
//!
//! The log (`--log`) is JSON lines; every line has "event", "pid", "comm",
//! "uid" (the real uid), "t" (seconds since start) and "wall" (epoch
//! seconds, comparable with pcap timestamps). Events: server: listening,
//! accepted, first_read, replied, closed_unread, done, burst and closed
//! (`--burst`); client: connecting, connected, done, reply, closing, closed
//! (one of each per connection), refused, timeout, connect_error (each with
//! "errno": the kernel's name, or null for the client's own
//! `--connect-timeout`), phase (`--handoff`), send (`--fill`: one per send
//! call, "ret" what it returned, as the kernel's `sock_sendmsg` did: bytes,
//! or the negative errno, with "errno" its name or null).
use crate::{Error, Result};
use serde_json::{json, Map, Value};
use std::fs::File;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// No generator process lives longer than this, whatever it is asked.
pub const MAX_SECONDS: f64 = 120.0;
/// Connections one process makes or accepts, at most.
pub const MAX_CONNECTIONS: u32 = 1000;
/// One-byte writes of a server's `--burst`, at most.
pub const MAX_BURST: u32 = 100_000;
/// `--fill`'s -EAGAIN sends, and its sends after the shutdown, at most.
pub const MAX_FILL_SENDS: u32 = 100;
/// The prefix of every namespace a generator agrees to run in.
pub const NAMESPACE_PREFIX: &str = "tcpq-";

/// The server's behaviour.
#[derive(Debug, Clone)]
pub struct Server {
    pub bind: IpAddr,
    pub port: u16,
    /// Accepted but unread this long: the receive queue fills and the
    /// window closes.
    pub idle_before_read: Duration,
    pub read_size: usize,
    pub read_delay: Duration,
    /// SO_RCVBUF on the listener (the accepted socket inherits it, and the
    /// SYN-ACK's window is derived from it).
    pub rcvbuf: Option<u32>,
    pub max_seconds: f64,
    /// listen() backlog (capped by net.core.somaxconn).
    pub backlog: i32,
    /// Wait this long after listen() before the first accept().
    pub accept_delay: Duration,
    /// Connections to accept one after the other; 0: all until the
    /// deadline, each on its own thread.
    pub accept: u32,
    /// Close each connection as soon as data arrives, unread (a reset).
    pub close_unread: bool,
    /// Send this many bytes back once `reply_after` bytes were read, after
    /// `reply_delay`.
    pub reply: usize,
    pub reply_after: usize,
    pub reply_delay: Duration,
    /// Accept one connection every this long and never read it (a full
    /// accept queue); with `accept` 0.
    pub hold_accepted: Option<Duration>,
    /// On the accepted connection, with `accept` 1: this many one-byte
    /// writes (at most [`MAX_BURST`]), each its own segment (TCP_NODELAY
    /// and MSG_EOR, a blocking socket), then wait until every byte is
    /// acknowledged (logged as `burst`), then hold the connection open.
    pub burst: u32,
    /// With `burst`: before each write, wait until at most this many bytes
    /// (here: segments) are unacknowledged (SIOCOUTQ).
    pub burst_inflight: Option<u32>,
    /// With `burst`: start writing once this file exists, not at once.
    pub go_file: Option<PathBuf>,
    /// With `burst`: close once this file exists, not right after the
    /// burst is acknowledged.
    pub close_file: Option<PathBuf>,
    /// Run on the last CPU this process may use.
    pub last_cpu: bool,
    pub log: Option<PathBuf>,
    /// Written (with this process's pid) once the server listens.
    pub ready_file: Option<PathBuf>,
    pub comm: String,
}

/// The client's behaviour.
#[derive(Debug, Clone)]
pub struct Client {
    pub connect: IpAddr,
    pub port: u16,
    pub bytes: u64,
    pub max_seconds: f64,
    pub sndbuf: Option<u32>,
    /// After writing, wait up to this long for all data to be acked.
    pub hold_seconds: f64,
    /// With `hold_seconds`: keep the socket open this long after the last
    /// ack.
    pub hold_after_ack: f64,
    /// Connections one after the other; 0: until the deadline.
    pub connections: u32,
    /// Between two connections.
    pub pause: Duration,
    /// After the data is acknowledged, read this many bytes back.
    pub read_reply: usize,
    /// After writing, read until the peer closes (or the deadline).
    pub read_to_eof: bool,
    /// Close with SO_LINGER 0: abort with a reset.
    pub linger0: bool,
    /// Give up connecting after this long (logged as timeout, errno null).
    pub connect_timeout: Option<f64>,
    /// connect() blocking, without a timeout: the kernel's SYN retries
    /// bound it.
    pub blocking_connect: bool,
    /// One connection, written by this process, then by a forked child
    /// renamed NAME, then by this process again.
    pub handoff: Option<String>,
    /// Write `bytes` every this long, until the deadline.
    pub pace: Option<Duration>,
    /// Before each connection, one to this port, where nobody listens:
    /// the peer's kernel answers with a reset.
    pub refused_port: Option<u16>,
    /// Connection i (from 0) goes to port `port + i`: one port each, for
    /// tests of many label sets (`count by dport`).
    pub port_sweep: bool,
    /// `first` connections at once, then `more` every `every` (at most
    /// 128 in all), each held open until the deadline.
    pub crowd: Option<Crowd>,
    /// Instead of writing `bytes` as the socket takes them: fill the
    /// socket, then write after shutting it down, every send's return
    /// logged (see [`Fill`]).
    pub fill: Option<Fill>,
    pub log: Option<PathBuf>,
    pub comm: String,
}

/// `--fill EAGAIN_COUNT,AFTER,PAUSE_MS`: sends that return byte counts and
/// negative errnos. On the non-blocking socket, sends of 64 KiB (the peer
/// not reading: whole, then partial, then -EAGAIN, pausing `pause` after
/// each -EAGAIN) until `agains` (EAGAIN_COUNT) of them returned -EAGAIN or `bytes` were
/// written; then `shutdown(SHUT_WR)` and `after` sends of one byte
/// (-EPIPE: tcp_sendmsg_locked's check of SEND_SHUTDOWN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    pub agains: u32,
    pub after: u32,
    pub pause: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct Crowd {
    pub first: u32,
    pub more: u32,
    pub every: Duration,
}

impl Server {
    pub fn new(bind: IpAddr, port: u16) -> Server {
        Server {
            bind,
            port,
            idle_before_read: Duration::ZERO,
            read_size: 65536,
            read_delay: Duration::ZERO,
            rcvbuf: None,
            max_seconds: 10.0,
            backlog: 16,
            accept_delay: Duration::ZERO,
            accept: 1,
            close_unread: false,
            reply: 0,
            reply_after: 1,
            reply_delay: Duration::from_millis(500),
            hold_accepted: None,
            burst: 0,
            burst_inflight: None,
            go_file: None,
            close_file: None,
            last_cpu: false,
            log: None,
            ready_file: None,
            comm: "tcpq-reader".into(),
        }
    }
}

impl Client {
    pub fn new(connect: IpAddr, port: u16, bytes: u64) -> Client {
        Client {
            connect,
            port,
            bytes,
            max_seconds: 10.0,
            sndbuf: None,
            hold_seconds: 0.0,
            hold_after_ack: 0.0,
            connections: 1,
            pause: Duration::ZERO,
            read_reply: 0,
            read_to_eof: false,
            linger0: false,
            connect_timeout: None,
            blocking_connect: false,
            handoff: None,
            pace: None,
            refused_port: None,
            port_sweep: false,
            crowd: None,
            fill: None,
            log: None,
            comm: "tcpq-writer".into(),
        }
    }
}

// ---------------------------------------------------------------------------
// Options

/// `server ...` or `client ...` as written on the command line.
pub enum Role {
    Server(Server),
    Client(Client),
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// Parse the generator's command line (after `__gen`).
pub fn parse(args: &[String]) -> Result<Role> {
    let usage = |m: String| Error::Usage(m);
    let (role, rest) = args
        .split_first()
        .ok_or_else(|| usage("server or client?".into()))?;
    let mut opts: Vec<(String, Option<String>)> = Vec::new();
    let flags = [
        "--close-unread",
        "--last-cpu",
        "--linger0",
        "--blocking-connect",
        "--read-to-eof",
        "--port-sweep",
    ];
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        if !a.starts_with("--") {
            return Err(usage(format!("unexpected argument `{a}`")));
        }
        if flags.contains(&a.as_str()) {
            opts.push((a.clone(), None));
        } else {
            let v = it
                .next()
                .ok_or_else(|| usage(format!("{a} needs a value")))?;
            opts.push((a.clone(), Some(v.clone())));
        }
    }
    let get = |name: &str| -> Option<&str> {
        opts.iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    };
    let has = |name: &str| opts.iter().any(|(k, _)| k == name);
    fn num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T> {
        v.parse()
            .map_err(|_| Error::Usage(format!("{name}: `{v}` is not a number")))
    }
    let need = |name: &str| get(name).ok_or_else(|| usage(format!("{name} is required")));
    let known: &[&str] = match role.as_str() {
        "server" => &[
            "--bind",
            "--port",
            "--idle-before-read",
            "--read-size",
            "--read-delay-ms",
            "--rcvbuf",
            "--max-seconds",
            "--backlog",
            "--accept-delay",
            "--accept",
            "--close-unread",
            "--reply",
            "--reply-after",
            "--reply-delay",
            "--hold-accepted-ms",
            "--burst",
            "--burst-inflight",
            "--go-file",
            "--close-file",
            "--last-cpu",
            "--log",
            "--ready-file",
            "--comm",
        ],
        "client" => &[
            "--connect",
            "--port",
            "--bytes",
            "--max-seconds",
            "--sndbuf",
            "--hold-seconds",
            "--hold-after-ack",
            "--connections",
            "--pause-ms",
            "--read-reply",
            "--read-to-eof",
            "--linger0",
            "--connect-timeout",
            "--blocking-connect",
            "--handoff",
            "--pace-ms",
            "--refused-port",
            "--crowd",
            "--fill",
            "--port-sweep",
            "--log",
            "--comm",
        ],
        other => return Err(usage(format!("`{other}`: server or client?"))),
    };
    if let Some((k, _)) = opts.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        return Err(usage(format!("{role}: unknown option {k}")));
    }
    let max_seconds: f64 = match get("--max-seconds") {
        Some(v) => num("--max-seconds", v)?,
        None => 10.0,
    };
    if !(max_seconds > 0.0 && max_seconds <= MAX_SECONDS) {
        return Err(usage(format!(
            "--max-seconds must be in (0, {MAX_SECONDS}]"
        )));
    }
    let addr = |name: &str| -> Result<IpAddr> {
        let v = need(name)?;
        v.parse()
            .map_err(|_| usage(format!("{name}: `{v}` is not an address")))
    };
    let port: u16 = num("--port", need("--port")?)?;
    let log = get("--log").map(PathBuf::from);
    let ms = |v: &str, name: &str| -> Result<Duration> {
        Ok(Duration::from_secs_f64(
            num::<f64>(name, v)?.max(0.0) / 1000.0,
        ))
    };
    if role == "server" {
        let mut s = Server::new(addr("--bind")?, port);
        s.max_seconds = max_seconds;
        s.log = log;
        if let Some(v) = get("--idle-before-read") {
            s.idle_before_read = secs(num("--idle-before-read", v)?);
        }
        if let Some(v) = get("--read-size") {
            s.read_size = num::<usize>("--read-size", v)?.max(1);
        }
        if let Some(v) = get("--read-delay-ms") {
            s.read_delay = ms(v, "--read-delay-ms")?;
        }
        if let Some(v) = get("--rcvbuf") {
            s.rcvbuf = Some(num("--rcvbuf", v)?).filter(|&n| n > 0);
        }
        if let Some(v) = get("--backlog") {
            s.backlog = num("--backlog", v)?;
        }
        if let Some(v) = get("--accept-delay") {
            s.accept_delay = secs(num("--accept-delay", v)?);
        }
        if let Some(v) = get("--accept") {
            s.accept = num("--accept", v)?;
        }
        if s.accept > MAX_CONNECTIONS {
            return Err(usage(format!("--accept must be at most {MAX_CONNECTIONS}")));
        }
        s.close_unread = has("--close-unread");
        if let Some(v) = get("--reply") {
            s.reply = num("--reply", v)?;
        }
        if let Some(v) = get("--reply-after") {
            s.reply_after = num("--reply-after", v)?;
        }
        if let Some(v) = get("--reply-delay") {
            s.reply_delay = secs(num("--reply-delay", v)?);
        }
        if let Some(v) = get("--hold-accepted-ms") {
            s.hold_accepted = Some(ms(v, "--hold-accepted-ms")?);
        }
        if let Some(v) = get("--burst") {
            s.burst = num("--burst", v)?;
        }
        if s.burst > MAX_BURST {
            return Err(usage(format!("--burst must be at most {MAX_BURST}")));
        }
        if let Some(v) = get("--burst-inflight") {
            s.burst_inflight = Some(num("--burst-inflight", v)?);
        }
        s.go_file = get("--go-file").map(PathBuf::from);
        s.close_file = get("--close-file").map(PathBuf::from);
        if s.burst == 0
            && (s.go_file.is_some() || s.close_file.is_some() || s.burst_inflight.is_some())
        {
            return Err(usage(
                "--burst-inflight, --go-file and --close-file go with --burst".into(),
            ));
        }
        if s.burst > 0 && s.accept != 1 {
            return Err(usage("--burst serves one connection (--accept 1)".into()));
        }
        s.last_cpu = has("--last-cpu");
        s.ready_file = get("--ready-file").map(PathBuf::from);
        if let Some(v) = get("--comm").filter(|v| !v.is_empty()) {
            s.comm = v.to_string();
        }
        return Ok(Role::Server(s));
    }
    let mut c = Client::new(addr("--connect")?, port, num("--bytes", need("--bytes")?)?);
    c.max_seconds = max_seconds;
    c.log = log;
    if let Some(v) = get("--sndbuf") {
        c.sndbuf = Some(num("--sndbuf", v)?).filter(|&n| n > 0);
    }
    if let Some(v) = get("--hold-seconds") {
        c.hold_seconds = num("--hold-seconds", v)?;
    }
    if let Some(v) = get("--hold-after-ack") {
        c.hold_after_ack = num("--hold-after-ack", v)?;
    }
    if let Some(v) = get("--connections") {
        c.connections = num("--connections", v)?;
    }
    if c.connections > MAX_CONNECTIONS {
        return Err(usage(format!(
            "--connections must be at most {MAX_CONNECTIONS}"
        )));
    }
    if let Some(v) = get("--pause-ms") {
        c.pause = ms(v, "--pause-ms")?;
    }
    if let Some(v) = get("--read-reply") {
        c.read_reply = num("--read-reply", v)?;
    }
    c.read_to_eof = has("--read-to-eof");
    if c.read_to_eof && c.read_reply > 0 {
        return Err(usage("--read-reply or --read-to-eof, not both".into()));
    }
    c.linger0 = has("--linger0");
    if let Some(v) = get("--connect-timeout") {
        c.connect_timeout = Some(num::<f64>("--connect-timeout", v)?).filter(|&t| t > 0.0);
    }
    c.blocking_connect = has("--blocking-connect");
    c.handoff = get("--handoff")
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    if let Some(v) = get("--pace-ms") {
        c.pace = Some(ms(v, "--pace-ms")?);
    }
    if let Some(v) = get("--refused-port") {
        c.refused_port = Some(num("--refused-port", v)?);
    }
    if let Some(v) = get("--crowd") {
        let p: Vec<&str> = v.split(',').collect();
        let [first, more, every] = p[..] else {
            return Err(usage("--crowd FIRST,MORE,EVERY_MS".into()));
        };
        c.crowd = Some(Crowd {
            first: num("--crowd", first)?,
            more: num("--crowd", more)?,
            every: ms(every, "--crowd")?,
        });
    }
    if let Some(v) = get("--fill") {
        let p: Vec<&str> = v.split(',').collect();
        let [agains, after, pause] = p[..] else {
            return Err(usage("--fill EAGAIN_COUNT,AFTER,PAUSE_MS".into()));
        };
        let fill = Fill {
            agains: num("--fill", agains)?,
            after: num("--fill", after)?,
            pause: ms(pause, "--fill")?,
        };
        if fill.agains > MAX_FILL_SENDS || fill.after > MAX_FILL_SENDS {
            return Err(usage(format!(
                "--fill: EAGAIN_COUNT and AFTER must be at most {MAX_FILL_SENDS}"
            )));
        }
        if c.pace.is_some() || c.crowd.is_some() || c.handoff.is_some() {
            return Err(usage(
                "--fill does not go with --pace-ms, --crowd or --handoff".into(),
            ));
        }
        c.fill = Some(fill);
    }
    c.port_sweep = has("--port-sweep");
    if c.port_sweep {
        let last = u32::from(c.port) + c.connections.max(1) - 1;
        if c.connections == 0 || last > u32::from(u16::MAX) {
            return Err(usage(format!(
                "--port-sweep needs --connections N with --port + N - 1 at most {}",
                u16::MAX
            )));
        }
    }
    if let Some(v) = get("--comm").filter(|v| !v.is_empty()) {
        c.comm = v.to_string();
    }
    Ok(Role::Client(c))
}

/// Run a generator from its command line: the exit status (0 done, 2 a
/// server whose accept timed out), or an error.
pub fn main(args: &[String]) -> Result<i32> {
    if let Some(("stream", rest)) = args.split_first().map(|(r, rest)| (r.as_str(), rest)) {
        return crate::stream::Stream::parse(rest)?.run().map(|_| 0);
    }
    match parse(args)? {
        Role::Server(s) => s.run(),
        Role::Client(c) => c.run(),
    }
}

/// Refuse to run outside a namespace this project made.
pub fn check_namespace() -> Result<String> {
    match crate::netns::current_netns() {
        Some(ns) if ns.starts_with(NAMESPACE_PREFIX) => Ok(ns),
        other => Err(Error::Bound(format!(
            "refusing to make traffic outside a {NAMESPACE_PREFIX}* network namespace (in {})",
            other.as_deref().unwrap_or("an unnamed namespace")
        ))),
    }
}

// ---------------------------------------------------------------------------
// Pieces

/// Name this process (the kernel's comm, 15 bytes at most) so a tracer's
/// `comm` shows who is who. Threads created afterwards inherit it.
pub fn set_comm(name: &str) -> Result<String> {
    let mut buf = [0u8; 16];
    let n = name.len().min(15);
    buf[..n].copy_from_slice(&name.as_bytes()[..n]);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes
    // from a buffer that lives across the call.
    let rc = unsafe { libc::prctl(libc::PR_SET_NAME, buf.as_ptr() as libc::c_ulong, 0, 0, 0) };
    if rc != 0 {
        return Err(io("prctl(PR_SET_NAME)", std::io::Error::last_os_error()));
    }
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn io(what: &str, source: std::io::Error) -> Error {
    Error::Io {
        what: what.to_string(),
        source,
    }
}

/// The JSON-lines log of one process (or nothing, without `--log`).
struct Log {
    file: Option<File>,
    comm: String,
    t0: Instant,
}

impl Log {
    fn open(path: &Option<PathBuf>, comm: &str, t0: Instant) -> Result<Log> {
        let file = match path {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| io(&p.display().to_string(), e))?,
            ),
            None => None,
        };
        Ok(Log {
            file,
            comm: comm.to_string(),
            t0,
        })
    }

    fn with_comm(&self, comm: &str) -> Log {
        Log {
            file: self.file.as_ref().and_then(|f| f.try_clone().ok()),
            comm: comm.to_string(),
            t0: self.t0,
        }
    }

    fn event(&self, event: &str, fields: Value) {
        let Some(mut f) = self.file.as_ref() else {
            return;
        };
        let mut rec = Map::new();
        rec.insert("event".into(), event.into());
        // SAFETY: getpid/getuid have no preconditions.
        rec.insert("pid".into(), unsafe { libc::getpid() }.into());
        rec.insert("comm".into(), self.comm.clone().into());
        rec.insert("uid".into(), unsafe { libc::getuid() }.into());
        let t = (self.t0.elapsed().as_secs_f64() * 1e6).round() / 1e6;
        rec.insert("t".into(), t.into());
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        rec.insert("wall".into(), wall.into());
        if let Value::Object(m) = fields {
            rec.extend(m);
        }
        // One write per line: lines of two processes sharing the file
        // (a handoff's parent and child) never interleave.
        let line = format!("{}\n", Value::Object(rec));
        let _ = f.write_all(line.as_bytes());
    }
}

struct Deadline(Instant);

impl Deadline {
    fn after(seconds: f64) -> Deadline {
        Deadline(Instant::now() + secs(seconds.min(MAX_SECONDS)))
    }
    fn left(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }
    fn passed(&self) -> bool {
        self.left().is_zero()
    }
    /// Sleep `d`, or until the deadline if that comes first.
    fn nap(&self, d: Duration) {
        std::thread::sleep(d.min(self.left()));
    }
}

/// poll(2) one fd for `events`, at most `timeout`: whether it is ready.
fn wait_fd(fd: RawFd, events: libc::c_short, timeout: Duration) -> bool {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: one pollfd that lives across the call.
    let n = unsafe { libc::poll(&mut p, 1, ms) };
    n > 0
}

/// The kernel's name of an errno (`ECONNREFUSED`), or its number.
pub fn errno_name(e: i32) -> Value {
    let name = match e {
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ECONNRESET => "ECONNRESET",
        libc::ECONNABORTED => "ECONNABORTED",
        libc::EPIPE => "EPIPE",
        libc::EPERM => "EPERM",
        libc::EACCES => "EACCES",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::ENOBUFS => "ENOBUFS",
        libc::EINVAL => "EINVAL",
        libc::EAGAIN => "EAGAIN",
        _ => return e.into(),
    };
    name.into()
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and
            // suitably aligned for it.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in, sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in6, sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

pub(crate) fn setsockopt_int(fd: RawFd, level: i32, opt: i32, v: i32) -> std::io::Result<()> {
    // SAFETY: setsockopt(2) with a pointer to an int that lives across it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            &v as *const i32 as *const libc::c_void,
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn getsockopt_int(fd: RawFd, level: i32, opt: i32) -> i32 {
    let mut v: i32 = 0;
    let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: getsockopt(2) into an int with its size.
    unsafe {
        libc::getsockopt(
            fd,
            level,
            opt,
            &mut v as *mut i32 as *mut libc::c_void,
            &mut len,
        )
    };
    v
}

/// The local port of a socket (0 when it has none).
fn local_port(fd: RawFd) -> u16 {
    // SAFETY: all-zero is a valid sockaddr_storage; getsockname(2) writes
    // at most `len` bytes into it.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let rc = unsafe { libc::getsockname(fd, &mut ss as *mut _ as *mut libc::sockaddr, &mut len) };
    if rc != 0 {
        return 0;
    }
    // sin_port and sin6_port sit at the same offset, right after the family.
    let sin = &ss as *const _ as *const libc::sockaddr_in;
    // SAFETY: the storage holds at least a sockaddr_in's bytes.
    u16::from_be(unsafe { (*sin).sin_port })
}

fn ports(s: &TcpStream) -> Value {
    json!({
        "lport": s.local_addr().map_or(0, |a| a.port()),
        "rport": s.peer_addr().map_or(0, |a| a.port()),
    })
}

/// Bytes not yet acknowledged by the peer (SIOCOUTQ).
fn outq(s: &TcpStream) -> i32 {
    let mut v: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int.
    unsafe { libc::ioctl(s.as_raw_fd(), libc::TIOCOUTQ, &mut v) };
    v
}

/// Close with RST instead of FIN: `SO_LINGER` on, 0 seconds.
fn set_linger0(s: &TcpStream) {
    let lg = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt(2) on a socket we own with a correctly sized value.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &lg as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

fn pin_to(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t with one CPU set, passed with its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The CPUs this process may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: sched_getaffinity(2) fills a cpu_set_t of the size given.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return vec![0];
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// How a connect() ended.
enum Connected {
    Ok(TcpStream),
    /// The socket (for its local port) and errno; `None`: our own timeout.
    Failed(RawFd, Option<i32>),
}

/// Connect to `addr`: blocking (only the kernel ends it) or with a
/// timeout (non-blocking, then poll, then SO_ERROR).
fn connect(
    addr: SocketAddr,
    sndbuf: Option<u32>,
    timeout: Option<Duration>,
) -> std::io::Result<Connected> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: socket(2); the fd is owned below (a TcpStream, or closed by
    // the caller through `Failed`).
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if let Some(n) = sndbuf {
        setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, n as i32)?;
    }
    let (ss, len) = sockaddr(addr);
    let set_nonblocking = |on: bool| {
        // SAFETY: fcntl(2) on our own fd.
        unsafe {
            let fl = libc::fcntl(fd, libc::F_GETFL);
            let fl = if on {
                fl | libc::O_NONBLOCK
            } else {
                fl & !libc::O_NONBLOCK
            };
            libc::fcntl(fd, libc::F_SETFL, fl);
        }
    };
    if timeout.is_some() {
        set_nonblocking(true);
    }
    // SAFETY: connect(2) with a sockaddr of `len` bytes.
    let rc = unsafe { libc::connect(fd, &ss as *const _ as *const libc::sockaddr, len) };
    let err = if rc == 0 {
        0
    } else {
        let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        match (e, timeout) {
            (libc::EINPROGRESS, Some(t)) => {
                if !wait_fd(fd, libc::POLLOUT, t) {
                    return Ok(Connected::Failed(fd, None));
                }
                getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ERROR)
            }
            (e, _) => e,
        }
    };
    if err != 0 {
        return Ok(Connected::Failed(fd, Some(err)));
    }
    set_nonblocking(false);
    // SAFETY: a connected stream socket we own and hand over.
    Ok(Connected::Ok(unsafe { TcpStream::from_raw_fd(fd) }))
}

fn close_fd(fd: RawFd) {
    // SAFETY: an fd we own and nothing else uses.
    unsafe { libc::close(fd) };
}

// ---------------------------------------------------------------------------
// The server

impl Server {
    /// Run the server in this process (after checking the namespace).
    pub fn run(&self) -> Result<i32> {
        check_namespace()?;
        let t0 = Instant::now();
        let comm = set_comm(&self.comm)?;
        let log = Log::open(&self.log, &comm, t0)?;
        if self.last_cpu {
            if let Some(&c) = allowed_cpus().last() {
                pin_to(c);
            }
        }
        let deadline = Deadline::after(self.max_seconds);
        let listener = self
            .listen()
            .map_err(|e| io(&format!("listen on {}:{}", self.bind, self.port), e))?;
        log.event(
            "listening",
            json!({"addr": self.bind.to_string(), "port": self.port,
                   "rcvbuf": getsockopt_int(listener.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF)}),
        );
        if let Some(ready) = &self.ready_file {
            let tmp = ready.with_extension("tmp");
            std::fs::write(&tmp, format!("{}\n", std::process::id()))
                .and_then(|_| std::fs::rename(&tmp, ready))
                .map_err(|e| io(&ready.display().to_string(), e))?;
        }
        if !self.accept_delay.is_zero() {
            // Connections that finish the handshake meanwhile wait in the
            // accept queue (and beyond its limit are dropped).
            deadline.nap(self.accept_delay);
        }
        if self.accept == 0 {
            self.accept_all(&listener, &log, &deadline);
            return Ok(0);
        }
        // Each accept waits as long as was left when the first began.
        let wait = deadline.left();
        for _ in 0..self.accept {
            if !wait_fd(listener.as_raw_fd(), libc::POLLIN, wait) {
                log.event("done", json!({"bytes": 0, "reason": "accept timeout"}));
                return Ok(2);
            }
            let (conn, peer) = listener.accept().map_err(|e| io("accept", e))?;
            let mut fields = ports(&conn);
            fields["peer"] = peer.ip().to_string().into();
            log.event("accepted", fields);
            self.serve_one(&log, conn, &deadline);
        }
        Ok(0)
    }

    fn listen(&self) -> std::io::Result<TcpListener> {
        let family = if self.bind.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        // SAFETY: socket(2); the fd becomes the TcpListener (or is closed).
        let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh socket we own.
        let l = unsafe { TcpListener::from_raw_fd(fd) };
        setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        if let Some(n) = self.rcvbuf {
            setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, n as i32)?;
        }
        let (ss, len) = sockaddr(SocketAddr::new(self.bind, self.port));
        // SAFETY: bind(2) and listen(2) on our socket, a sockaddr of `len`.
        unsafe {
            if libc::bind(fd, &ss as *const _ as *const libc::sockaddr, len) != 0
                || libc::listen(fd, self.backlog) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(l)
    }

    /// `--accept 0`: every connection until the deadline, each served on a
    /// thread of its own (or, with `hold_accepted`, kept unread).
    fn accept_all(&self, l: &TcpListener, log: &Log, deadline: &Deadline) {
        let mut held = Vec::new();
        std::thread::scope(|s| {
            let mut n = 0;
            while n < MAX_CONNECTIONS && wait_fd(l.as_raw_fd(), libc::POLLIN, deadline.left()) {
                let Ok((conn, peer)) = l.accept() else {
                    break;
                };
                n += 1;
                let mut fields = ports(&conn);
                fields["peer"] = peer.ip().to_string().into();
                log.event("accepted", fields);
                if let Some(every) = self.hold_accepted {
                    // A full accept queue: accept slowly, never read.
                    held.push(conn);
                    deadline.nap(every);
                    continue;
                }
                s.spawn(move || self.serve_one(log, conn, deadline));
            }
        });
        drop(held);
    }

    fn serve_one(&self, log: &Log, conn: TcpStream, deadline: &Deadline) {
        use std::io::{ErrorKind, Read, Write};
        // Taken now: after a reset the socket no longer has a peer.
        let wherefrom = ports(&conn);
        let fields = |extra: Value| {
            let mut f = wherefrom.clone();
            if let (Value::Object(f), Value::Object(e)) = (&mut f, extra) {
                f.extend(e);
            }
            f
        };
        if self.burst > 0 {
            self.burst_one(log, conn, deadline);
            return;
        }
        if self.close_unread {
            // Wait for data, then close without reading it: the kernel
            // answers with a reset (data was lost) instead of a FIN.
            wait_fd(conn.as_raw_fd(), libc::POLLIN, deadline.left());
            log.event("closed_unread", fields(json!({})));
            return;
        }
        if !self.idle_before_read.is_zero() {
            deadline.nap(self.idle_before_read);
        }
        let mut conn = conn;
        let mut buf = vec![0u8; self.read_size];
        let (mut total, mut reads) = (0usize, 0u64);
        let mut replied = self.reply == 0;
        let mut reason = "deadline";
        while !deadline.passed() {
            if !wait_fd(conn.as_raw_fd(), libc::POLLIN, deadline.left()) {
                continue;
            }
            let n = match conn.read(&mut buf) {
                Ok(0) => {
                    reason = "eof";
                    break;
                }
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                    continue
                }
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    reason = "reset";
                    break;
                }
                Err(_) => {
                    reason = "error";
                    break;
                }
            };
            if reads == 0 {
                log.event("first_read", json!({"bytes": n}));
            }
            total += n;
            reads += 1;
            if !replied && total >= self.reply_after {
                // Late enough that every ACK of the peer's data has arrived
                // there: the reply is then the last segment the peer gets.
                deadline.nap(self.reply_delay);
                let _ = conn.write_all(&vec![b'r'; self.reply]);
                log.event("replied", json!({"bytes": self.reply}));
                replied = true;
            }
            if !self.read_delay.is_zero() {
                deadline.nap(self.read_delay);
            }
        }
        log.event(
            "done",
            fields(json!({"bytes": total, "reads": reads, "reason": reason})),
        );
    }

    /// `--burst`: `burst` one-byte writes on `conn`, each pushed as a
    /// segment of its own (TCP_NODELAY, MSG_EOR), once `go_file` exists,
    /// at most `burst_inflight` unacknowledged; then wait until the peer has
    /// acknowledged every byte, so that when `burst` is logged this side
    /// has nothing left to send (the peer sends no data: no more segments
    /// leave here until the close); then hold the connection until
    /// `close_file` exists, and close it.
    fn burst_one(&self, log: &Log, conn: TcpStream, deadline: &Deadline) {
        let wherefrom = ports(&conn);
        let _ = conn.set_nodelay(true);
        if let Some(go) = &self.go_file {
            wait_file(go, deadline);
        }
        // A blocking write never outlives the deadline: SO_SNDTIMEO.
        let _ = conn.set_write_timeout(Some(deadline.left().max(Duration::from_millis(1))));
        let (mut writes, mut reason) = (0u32, "done".to_string());
        while writes < self.burst {
            if deadline.passed() {
                reason = "deadline".into();
                break;
            }
            if let Some(cap) = self.burst_inflight {
                while outq(&conn) > cap as i32 && !deadline.passed() {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
            // MSG_EOR: the kernel never appends the next write to this
            // one's skb (tcp_skb_can_collapse_to), so each write leaves as
            // a segment of its own however fast they come.
            // SAFETY: send(2) of one byte from a live buffer on our socket.
            let rc = unsafe {
                libc::send(
                    conn.as_raw_fd(),
                    b"x".as_ptr() as *const libc::c_void,
                    1,
                    libc::MSG_EOR | libc::MSG_NOSIGNAL,
                )
            };
            let sent = if rc < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(rc)
            };
            match sent {
                Ok(_) => writes += 1,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    reason = "deadline".into();
                    break;
                }
                Err(e) => {
                    let name = errno_name(e.raw_os_error().unwrap_or(0));
                    reason = format!(
                        "error: {}",
                        name.as_str().map_or(name.to_string(), str::to_string)
                    );
                    break;
                }
            }
        }
        let mut unacked = outq(&conn);
        while unacked > 0 && !deadline.passed() {
            deadline.nap(Duration::from_millis(10));
            unacked = outq(&conn);
        }
        let mut fields = wherefrom;
        fields["writes"] = writes.into();
        fields["bytes"] = writes.into();
        fields["unacked"] = unacked.into();
        fields["reason"] = reason.into();
        log.event("burst", fields);
        if let Some(close) = &self.close_file {
            wait_file(close, deadline);
        }
        drop(conn);
        log.event("closed", json!({}));
    }
}

/// Wait until `path` exists, or the deadline passes.
fn wait_file(path: &std::path::Path, deadline: &Deadline) {
    while !path.exists() && !deadline.passed() {
        deadline.nap(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------
// The client

impl Client {
    /// Run the client in this process (after checking the namespace).
    pub fn run(&self) -> Result<i32> {
        check_namespace()?;
        let t0 = Instant::now();
        let comm = set_comm(&self.comm)?;
        let log = Log::open(&self.log, &comm, t0)?;
        let deadline = Deadline::after(self.max_seconds);
        if let Some(name) = &self.handoff {
            return self.handoff(name, &log, &deadline);
        }
        if let Some(crowd) = self.crowd {
            self.crowd(crowd, &log, &deadline);
            return Ok(0);
        }
        let mut n = 0;
        while self.connections == 0 || n < self.connections {
            if n > 0 {
                deadline.nap(self.pause);
            }
            if (self.connections == 0 && deadline.passed()) || n >= MAX_CONNECTIONS {
                break;
            }
            n += 1;
            if let Some(port) = self.refused_port {
                self.one(SocketAddr::new(self.connect, port), 0, &log, &deadline)?;
            }
            let port = match self.port_sweep {
                // Bounded by parse: port + connections - 1 <= 65535.
                true => self.port + (n - 1) as u16,
                false => self.port,
            };
            self.one(
                SocketAddr::new(self.connect, port),
                self.bytes,
                &log,
                &deadline,
            )?;
        }
        Ok(0)
    }

    /// One connection: connect, write `bytes` (or at the pace), hold, read
    /// the reply, close.
    fn one(&self, to: SocketAddr, bytes: u64, log: &Log, deadline: &Deadline) -> Result<()> {
        use std::io::{ErrorKind, Read};
        log.event("connecting", json!({}));
        let timeout = if self.blocking_connect {
            None
        } else {
            let left = deadline.left();
            Some(
                self.connect_timeout
                    .map_or(left, |t| secs(t).min(left))
                    .max(Duration::from_millis(1)),
            )
        };
        let mut s = match connect(to, self.sndbuf, timeout).map_err(|e| io("socket", e))? {
            Connected::Ok(s) => s,
            Connected::Failed(fd, err) => {
                let lport = local_port(fd);
                close_fd(fd);
                // Each failure names its errno: the kernel's (ECONNREFUSED,
                // ETIMEDOUT when its SYN retries ran out, EHOSTUNREACH,
                // ...), or null for the client's own timeout.
                let (event, errno) = match err {
                    Some(libc::ECONNREFUSED) => ("refused", errno_name(libc::ECONNREFUSED)),
                    Some(libc::ETIMEDOUT) => ("timeout", errno_name(libc::ETIMEDOUT)),
                    None => ("timeout", Value::Null),
                    Some(e) => ("connect_error", errno_name(e)),
                };
                log.event(event, json!({"lport": lport, "errno": errno}));
                return Ok(());
            }
        };
        let wherefrom = ports(&s);
        log.event("connected", wherefrom.clone());
        let fields = |extra: Value| {
            let mut f = wherefrom.clone();
            if let (Value::Object(f), Value::Object(e)) = (&mut f, extra) {
                f.extend(e);
            }
            f
        };
        let _ = s.set_nonblocking(true);
        let (total, reason) = match self.fill {
            Some(fill) => Self::fill(&mut s, fill, bytes, log, deadline),
            None => self.write(&mut s, bytes, deadline),
        };
        let mut unacked = Value::Null;
        if self.hold_seconds > 0.0 {
            // Keep the socket open (and this process its owner) until every
            // byte is acknowledged: retransmissions all happen while the
            // writer still owns the socket.
            let hold = Deadline(deadline.0.min(Instant::now() + secs(self.hold_seconds)));
            while !hold.passed() {
                let q = outq(&s);
                unacked = q.into();
                if q == 0 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        log.event(
            "done",
            fields(json!({"bytes": total, "reason": reason, "unacked": unacked})),
        );
        if self.read_reply > 0 || self.read_to_eof {
            let want = if self.read_to_eof {
                usize::MAX
            } else {
                self.read_reply
            };
            let mut got = 0usize;
            let mut eof = false;
            let mut buf = vec![0u8; want.min(65536)];
            while got < want && !deadline.passed() {
                if !wait_fd(s.as_raw_fd(), libc::POLLIN, deadline.left()) {
                    continue;
                }
                let room = (want - got).min(buf.len());
                match s.read(&mut buf[..room]) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => got += n,
                    Err(e)
                        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                    Err(_) => break,
                }
            }
            log.event("reply", json!({"bytes": got, "eof": eof}));
        }
        if self.hold_seconds > 0.0 {
            deadline.nap(secs(self.hold_after_ack));
        }
        log.event("closing", json!({}));
        if self.linger0 {
            set_linger0(&s);
        }
        drop(s);
        log.event("closed", json!({}));
        Ok(())
    }

    /// Write `bytes` on the non-blocking socket as it takes them (with
    /// `pace`: `bytes` again every `pace`, until the deadline). The total
    /// written and why the writes stopped.
    fn write(&self, s: &mut TcpStream, bytes: u64, deadline: &Deadline) -> (u64, String) {
        use std::io::{ErrorKind, Write};
        let chunk = vec![b'x'; 65536];
        let mut total = 0u64;
        let mut reason = "bytes".to_string();
        let mut goal = bytes;
        loop {
            if total >= goal {
                match self.pace {
                    Some(every) if !deadline.passed() => {
                        deadline.nap(every);
                        goal += bytes;
                        continue;
                    }
                    _ => break,
                }
            }
            if deadline.passed() {
                reason = "deadline".into();
                break;
            }
            if !wait_fd(
                s.as_raw_fd(),
                libc::POLLOUT,
                deadline.left().min(Duration::from_millis(200)),
            ) {
                continue;
            }
            let n = (goal - total).min(chunk.len() as u64) as usize;
            match s.write(&chunk[..n]) {
                Ok(n) => total += n as u64,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(e) => {
                    let name = errno_name(e.raw_os_error().unwrap_or(0));
                    reason = format!(
                        "error: {}",
                        name.as_str().map_or(name.to_string(), str::to_string)
                    );
                    break;
                }
            }
        }
        (total, reason)
    }

    /// `--fill`: see [`Fill`]. Each send is one send(2) of its own (std's
    /// write on a TCP socket is `send(fd, buf, len, MSG_NOSIGNAL)`: the
    /// -EPIPE is returned, not raised as SIGPIPE), logged as `send` right
    /// after it returned. The total written and why the sends stopped.
    fn fill(
        s: &mut TcpStream,
        fill: Fill,
        bytes: u64,
        log: &Log,
        deadline: &Deadline,
    ) -> (u64, String) {
        use std::io::Write;
        let send = |s: &mut TcpStream, buf: &[u8]| -> std::result::Result<usize, i32> {
            loop {
                match s.write(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.raw_os_error().unwrap_or(0)),
                }
            }
        };
        let logged = |ret: std::result::Result<usize, i32>| {
            let (ret, errno) = match ret {
                Ok(n) => (n as i64, Value::Null),
                Err(e) => (-(e as i64), errno_name(e)),
            };
            log.event("send", json!({"ret": ret, "errno": errno}));
        };
        let chunk = vec![b'x'; 65536];
        let (mut total, mut agains) = (0u64, 0u32);
        let mut reason = "again".to_string();
        while agains < fill.agains {
            if deadline.passed() {
                reason = "deadline".into();
                break;
            }
            if total >= bytes {
                reason = "bytes".into();
                break;
            }
            let n = (bytes - total).min(chunk.len() as u64) as usize;
            let ret = send(s, &chunk[..n]);
            logged(ret);
            match ret {
                Ok(n) => total += n as u64,
                Err(libc::EAGAIN) => {
                    agains += 1;
                    deadline.nap(fill.pause);
                }
                Err(e) => {
                    let name = errno_name(e);
                    reason = format!(
                        "error: {}",
                        name.as_str().map_or(name.to_string(), str::to_string)
                    );
                    break;
                }
            }
        }
        let _ = s.shutdown(std::net::Shutdown::Write);
        for _ in 0..fill.after {
            logged(send(s, b"x"));
        }
        (total, reason)
    }

    /// Send `n` bytes on the blocking socket and wait until the peer has
    /// acknowledged them all (or the deadline passes).
    fn send_all(s: &mut TcpStream, n: u64, deadline: &Deadline) -> u64 {
        use std::io::Write;
        let chunk = vec![b'x'; 65536];
        let mut total = 0u64;
        while total < n && !deadline.passed() {
            let k = (n - total).min(chunk.len() as u64) as usize;
            match s.write(&chunk[..k]) {
                Ok(k) => total += k as u64,
                Err(_) => break,
            }
        }
        while outq(s) > 0 && !deadline.passed() {
            std::thread::sleep(Duration::from_millis(10));
        }
        total
    }

    /// One connection used by two processes in turn: this one sends
    /// `bytes`, a forked child renamed `name` sends `bytes` on the same
    /// socket and exits, then this one sends `bytes` again. Events:
    /// connected, phase (1, 2 or 3, logged by the process that sent it,
    /// once its bytes are acknowledged), closed.
    fn handoff(&self, name: &str, log: &Log, deadline: &Deadline) -> Result<i32> {
        // Parent and child on different CPUs where there are two: a
        // per-CPU cache of who used a socket last must still see the
        // socket change hands.
        let cpus = allowed_cpus();
        pin_to(cpus[0]);
        let to = SocketAddr::new(self.connect, self.port);
        let mut s = TcpStream::connect_timeout(&to, deadline.left().max(Duration::from_millis(1)))
            .map_err(|e| io(&format!("connect {to}"), e))?;
        log.event("connected", ports(&s));
        let pause = Duration::from_millis(200);
        std::thread::sleep(pause);
        let sent = Self::send_all(&mut s, self.bytes, deadline);
        log.event("phase", json!({"phase": 1, "bytes": sent}));
        std::thread::sleep(pause);
        // SAFETY: this process has one thread, so the child may run any
        // code; it leaves with _exit and never returns here.
        let child = unsafe { libc::fork() };
        if child < 0 {
            return Err(io("fork", std::io::Error::last_os_error()));
        }
        if child == 0 {
            pin_to(*cpus.last().unwrap_or(&0));
            let comm = set_comm(name).unwrap_or_default();
            let clog = log.with_comm(&comm);
            let sent = Self::send_all(&mut s, self.bytes, deadline);
            clog.event("phase", json!({"phase": 2, "bytes": sent}));
            std::thread::sleep(pause);
            // SAFETY: _exit(2) ends the child without unwinding into the
            // parent's state.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: waitpid(2) on our own child.
        unsafe { libc::waitpid(child, &mut status, 0) };
        let sent = Self::send_all(&mut s, self.bytes, deadline);
        log.event("phase", json!({"phase": 3, "bytes": sent}));
        std::thread::sleep(pause);
        drop(s);
        log.event("closed", json!({}));
        Ok(0)
    }

    /// Many connections at once against a short accept queue; each thread
    /// holds its connection until the deadline.
    fn crowd(&self, crowd: Crowd, log: &Log, deadline: &Deadline) {
        let to = SocketAddr::new(self.connect, self.port);
        std::thread::scope(|s| {
            let mut started = 0u32;
            let mut open = |n: u32| {
                for _ in 0..n.min(128 - started.min(128)) {
                    started += 1;
                    s.spawn(move || {
                        let t = deadline.left().max(Duration::from_millis(1));
                        if let Ok(c) = TcpStream::connect_timeout(&to, t) {
                            log.event("connected", ports(&c));
                            while !deadline.passed() {
                                deadline.nap(Duration::from_millis(200));
                            }
                            drop(c);
                        }
                    });
                }
            };
            open(crowd.first);
            while !deadline.passed() {
                deadline.nap(crowd.every);
                if !deadline.passed() {
                    open(crowd.more);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    fn usage(line: &str) -> String {
        match parse(&args(line)) {
            Err(Error::Usage(m)) => m,
            Err(e) => panic!("{line}: not a usage error: {e}"),
            Ok(_) => panic!("{line}: accepted"),
        }
    }

    #[test]
    fn fill_takes_its_three_numbers() {
        let Ok(Role::Client(c)) = parse(&args(
            "client --connect 10.0.0.2 --port 9 --bytes 100 --fill 5,3,50",
        )) else {
            panic!("not a client");
        };
        assert_eq!(
            c.fill,
            Some(Fill {
                agains: 5,
                after: 3,
                pause: Duration::from_millis(50),
            })
        );
        assert!(
            usage("client --connect 10.0.0.2 --port 9 --bytes 1 --fill 5,3")
                .contains("EAGAIN_COUNT,AFTER,PAUSE_MS")
        );
        assert!(
            usage("client --connect 10.0.0.2 --port 9 --bytes 1 --fill 101,0,0")
                .contains("at most 100")
        );
        assert!(
            usage("client --connect 10.0.0.2 --port 9 --bytes 1 --fill 1,1,0 --pace-ms 5")
                .contains("does not go with")
        );
    }

    #[test]
    fn read_to_eof_is_a_flag_and_excludes_read_reply() {
        let Ok(Role::Client(c)) = parse(&args(
            "client --connect 10.0.0.2 --port 9 --bytes 0 --read-to-eof",
        )) else {
            panic!("not a client");
        };
        assert!(c.read_to_eof);
        assert!(
            usage("client --connect 10.0.0.2 --port 9 --bytes 0 --read-to-eof --read-reply 4")
                .contains("not both")
        );
    }

    #[test]
    fn burst_is_bounded_and_its_files_need_it() {
        let Ok(Role::Server(s)) = parse(&args(
            "server --bind 10.0.0.2 --port 9 --burst 40000 --burst-inflight 64 \
             --go-file /tmp/g --close-file /tmp/c",
        )) else {
            panic!("not a server");
        };
        assert_eq!(s.burst, 40000);
        assert_eq!(s.burst_inflight, Some(64));
        assert_eq!(s.go_file.as_deref(), Some(std::path::Path::new("/tmp/g")));
        assert_eq!(
            s.close_file.as_deref(),
            Some(std::path::Path::new("/tmp/c"))
        );
        assert!(usage("server --bind 10.0.0.2 --port 9 --burst 100001").contains("at most"));
        assert!(usage("server --bind 10.0.0.2 --port 9 --go-file /tmp/g").contains("--burst"));
        assert!(usage("server --bind 10.0.0.2 --port 9 --burst-inflight 4").contains("--burst"));
        assert!(
            usage("server --bind 10.0.0.2 --port 9 --burst 5 --accept 0").contains("--accept 1")
        );
    }

    #[test]
    fn port_sweep_needs_connections_within_the_port_range() {
        let Ok(Role::Client(c)) = parse(&args(
            "client --connect 10.0.0.2 --port 40000 --bytes 0 --connections 1000 --port-sweep",
        )) else {
            panic!("not a client");
        };
        assert!(c.port_sweep);
        assert!(usage(
            "client --connect 10.0.0.2 --port 65000 --bytes 0 --connections 1000 --port-sweep"
        )
        .contains("at most 65535"));
        assert!(
            usage("client --connect 10.0.0.2 --port 9 --bytes 0 --connections 0 --port-sweep")
                .contains("--connections N")
        );
    }

    #[test]
    fn errno_names_include_the_fill_errors() {
        assert_eq!(errno_name(libc::EAGAIN), "EAGAIN");
        assert_eq!(errno_name(libc::EPIPE), "EPIPE");
    }
}
