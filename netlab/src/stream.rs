//! The streaming generator: as many receive calls a second as this machine
//! can make (or a set rate of them), each one event of tcpq's
//! `tcp_recvmsg` (the `sock:sock_recv_length` tracepoint fires once per
//! receive call, empty or not), counted exactly by the generator itself.
//!
//! ```text
//! stream --bind ADDR --port P [--flows N] [--threads T] [--rate CALLS_PER_S]
//!        [--seconds S] [--write-every K] [--write-size B] [--rcvbuf N]
//!        [--log FILE] [--comm NAME]
//! ```
//!
//! One process, inside a `tcpq-*` namespace: it listens on ADDR:P, makes
//! `--flows` connections to itself (default 4) and splits their accepted
//! ends among `--threads` threads (default 2). Each thread goes round its
//! flows: a non-blocking `recv` of up to 64 KiB on the accepted socket
//! (the socket whose local port is P), and after every `--write-every`
//! receives (default 64) a write of `--write-size` bytes (default 64) on
//! that flow's connecting end, so the receives find data now and then
//! (most find none: `-11`, EAGAIN). The receive buffers are large
//! (`--rcvbuf`, default 4 MiB) so no write ever waits. With `--rate` the
//! threads pace themselves to that many receive calls a second in all;
//! without it they go as fast as they can, for `--seconds` (default 5,
//! at most [`crate::traffic::MAX_SECONDS`]).
//!
//! At the end it prints one JSON line on stdout (and logs it, with
//! `--log`): `{"event":"done","recv_calls":N,...}`: `recv_calls` is every
//! receive call made on a socket with local port P, the count a tracer of
//! `tcp_recvmsg where sport == P` must account for (written + lost).
use crate::traffic::{check_namespace, set_comm, setsockopt_int, MAX_CONNECTIONS, MAX_SECONDS};
use crate::{Error, Result};
use serde_json::json;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Threads one generator runs, at most.
pub const MAX_THREADS: usize = 64;

/// A streaming run's settings.
#[derive(Debug, Clone)]
pub struct Stream {
    pub bind: IpAddr,
    pub port: u16,
    pub flows: usize,
    pub threads: usize,
    /// Receive calls per second in all; `None`: as fast as possible.
    pub rate: Option<f64>,
    pub seconds: f64,
    pub write_every: u64,
    pub write_size: usize,
    pub rcvbuf: i32,
    pub log: Option<PathBuf>,
    pub comm: String,
}

/// What one run did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub recv_calls: u64,
    /// Receive calls that found nothing (-EAGAIN).
    pub recv_empty: u64,
    pub recv_bytes: u64,
    pub send_calls: u64,
}

impl Stream {
    pub fn new(bind: IpAddr, port: u16) -> Stream {
        Stream {
            bind,
            port,
            flows: 4,
            threads: 2,
            rate: None,
            seconds: 5.0,
            write_every: 64,
            write_size: 64,
            rcvbuf: 4 << 20,
            log: None,
            comm: "tcpq-stream".into(),
        }
    }

    /// Parse `stream ...`'s options (after the word `stream`).
    pub fn parse(args: &[String]) -> Result<Stream> {
        let usage = |m: String| Error::Usage(m);
        let mut bind = None;
        let mut port = None;
        let mut s = Stream::new(IpAddr::from([0, 0, 0, 0]), 0);
        let mut it = args.iter();
        fn num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T> {
            v.parse()
                .map_err(|_| Error::Usage(format!("{name}: `{v}` is not a number")))
        }
        while let Some(a) = it.next() {
            let v = it
                .next()
                .ok_or_else(|| usage(format!("{a} needs a value")))?;
            match a.as_str() {
                "--bind" => {
                    bind = Some(
                        v.parse()
                            .map_err(|_| usage(format!("--bind: `{v}` is not an address")))?,
                    )
                }
                "--port" => port = Some(num::<u16>(a, v)?),
                "--flows" => s.flows = num(a, v)?,
                "--threads" => s.threads = num(a, v)?,
                "--rate" => s.rate = Some(num::<f64>(a, v)?).filter(|&r| r > 0.0),
                "--seconds" => s.seconds = num(a, v)?,
                "--write-every" => s.write_every = num(a, v)?,
                "--write-size" => s.write_size = num(a, v)?,
                "--rcvbuf" => s.rcvbuf = num(a, v)?,
                "--log" => s.log = Some(PathBuf::from(v)),
                "--comm" => s.comm = v.clone(),
                other => return Err(usage(format!("stream: unknown option {other}"))),
            }
        }
        s.bind = bind.ok_or_else(|| usage("--bind is required".into()))?;
        s.port = port.ok_or_else(|| usage("--port is required".into()))?;
        if !(s.seconds > 0.0 && s.seconds <= MAX_SECONDS) {
            return Err(usage(format!("--seconds must be in (0, {MAX_SECONDS}]")));
        }
        if s.flows == 0 || s.flows as u32 > MAX_CONNECTIONS {
            return Err(usage(format!("--flows must be in 1..={MAX_CONNECTIONS}")));
        }
        if s.threads == 0 || s.threads > MAX_THREADS || s.threads > s.flows {
            return Err(usage(format!(
                "--threads must be in 1..={MAX_THREADS} and at most --flows"
            )));
        }
        if s.write_every == 0 || s.write_size == 0 || s.write_size > 65536 {
            return Err(usage(
                "--write-every must be at least 1, --write-size in 1..=65536".into(),
            ));
        }
        Ok(s)
    }

    /// Run in this process (after checking the namespace); prints the
    /// `done` line on stdout.
    pub fn run(&self) -> Result<Counts> {
        check_namespace()?;
        let comm = set_comm(&self.comm)?;
        let io = |what: &str, source: std::io::Error| Error::Io {
            what: what.to_string(),
            source,
        };
        // Sleeps of the pacing end when asked, not up to 50 µs later.
        // SAFETY: PR_SET_TIMERSLACK takes a plain integer.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
        let addr = SocketAddr::new(self.bind, self.port);
        let listener = TcpListener::bind(addr).map_err(|e| io(&format!("listen on {addr}"), e))?;
        let mut flows = Vec::with_capacity(self.flows);
        for _ in 0..self.flows {
            let client = TcpStream::connect(addr).map_err(|e| io("connect", e))?;
            let (server, _) = listener.accept().map_err(|e| io("accept", e))?;
            client.set_nodelay(true).map_err(|e| io("TCP_NODELAY", e))?;
            for fd in [server.as_raw_fd(), client.as_raw_fd()] {
                setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, self.rcvbuf)
                    .and_then(|()| {
                        setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, self.rcvbuf)
                    })
                    .map_err(|e| io("SO_RCVBUF", e))?;
            }
            server
                .set_nonblocking(true)
                .map_err(|e| io("O_NONBLOCK", e))?;
            client
                .set_nonblocking(true)
                .map_err(|e| io("O_NONBLOCK", e))?;
            flows.push((server, client));
        }
        drop(listener);
        let per_thread = self.rate.map(|r| r / self.threads as f64);
        let t0 = Instant::now();
        let end = t0 + Duration::from_secs_f64(self.seconds);
        let counts: Vec<Counts> = std::thread::scope(|sc| {
            let handles: Vec<_> = (0..self.threads)
                .map(|t| {
                    let mine: Vec<(RawFd, RawFd)> = flows
                        .iter()
                        .skip(t)
                        .step_by(self.threads)
                        .map(|(s, c)| (s.as_raw_fd(), c.as_raw_fd()))
                        .collect();
                    sc.spawn(move || self.thread(&mine, per_thread, t0, end))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        let secs = t0.elapsed().as_secs_f64();
        let mut total = Counts::default();
        for c in &counts {
            total.recv_calls += c.recv_calls;
            total.recv_empty += c.recv_empty;
            total.recv_bytes += c.recv_bytes;
            total.send_calls += c.send_calls;
        }
        let line = json!({
            "event": "done",
            "comm": comm,
            "pid": std::process::id(),
            "port": self.port,
            "flows": self.flows,
            "threads": self.threads,
            "rate": self.rate,
            "seconds": (secs * 1e6).round() / 1e6,
            "recv_calls": total.recv_calls,
            "recv_empty": total.recv_empty,
            "recv_bytes": total.recv_bytes,
            "send_calls": total.send_calls,
            "recv_calls_per_s": (total.recv_calls as f64 / secs).round() as u64,
        })
        .to_string();
        if let Some(p) = &self.log {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .and_then(|mut f| writeln!(f, "{line}"))
                .map_err(|e| io(&p.display().to_string(), e))?;
        }
        println!("{line}");
        drop(flows);
        Ok(total)
    }

    /// One thread's loop over its flows until `end`, at `rate` receive
    /// calls a second (paced against the clock every 256 calls) or flat out.
    fn thread(
        &self,
        flows: &[(RawFd, RawFd)],
        rate: Option<f64>,
        t0: Instant,
        end: Instant,
    ) -> Counts {
        let mut c = Counts::default();
        let mut buf = vec![0u8; 65536];
        let out = vec![b'x'; self.write_size];
        let mut since_write = 0u64;
        'run: loop {
            for _ in 0..256 {
                for &(srv, cli) in flows {
                    // SAFETY: recv(2) into a buffer of its length that
                    // lives across the call, on a socket this run owns.
                    let n = unsafe {
                        libc::recv(srv, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT)
                    };
                    c.recv_calls += 1;
                    if n > 0 {
                        c.recv_bytes += n as u64;
                    } else {
                        c.recv_empty += 1;
                    }
                    since_write += 1;
                    if since_write >= self.write_every {
                        since_write = 0;
                        // SAFETY: send(2) of a buffer that lives across it.
                        unsafe {
                            libc::send(cli, out.as_ptr().cast(), out.len(), libc::MSG_DONTWAIT)
                        };
                        c.send_calls += 1;
                    }
                }
            }
            let now = Instant::now();
            if now >= end {
                break 'run;
            }
            if let Some(r) = rate {
                // When the calls made so far are due; sleep until then.
                let due = t0 + Duration::from_secs_f64(c.recv_calls as f64 / r);
                if due > now {
                    std::thread::sleep(due.min(end) - now);
                }
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_and_bounds() {
        let s = Stream::parse(&args(
            "--bind 127.0.0.1 --port 9 --flows 8 --threads 2 --rate 1000000 --seconds 3",
        ))
        .unwrap();
        assert_eq!((s.port, s.flows, s.threads), (9, 8, 2));
        assert_eq!(s.rate, Some(1e6));
        assert!(Stream::parse(&args("--bind 127.0.0.1 --port 9 --seconds 500")).is_err());
        assert!(Stream::parse(&args("--bind 127.0.0.1 --port 9 --flows 1 --threads 2")).is_err());
        assert!(Stream::parse(&args("--port 9")).is_err());
        assert!(Stream::parse(&args("--bind 127.0.0.1 --port 9 --nope 1")).is_err());
    }

    #[test]
    fn refuses_outside_a_tcpq_namespace() {
        // The test runs in the host's (unnamed) namespace.
        if crate::netns::current_netns().is_some_and(|n| n.starts_with("tcpq-")) {
            return;
        }
        let s = Stream::parse(&args("--bind 127.0.0.1 --port 9 --seconds 1")).unwrap();
        assert!(matches!(s.run(), Err(Error::Bound(_))));
    }
}
