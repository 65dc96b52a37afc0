//! The lab's traffic: a server (`lab-reader`) and a client (`lab-writer`),
//! run by `tcpq lab __serve NAME` / `tcpq lab __send NAME` inside the lab's
//! own namespaces (`ip netns exec`), so the lab needs nothing but the tcpq
//! binary.
//!
//! Bounds, enforced here and not by the caller: every process refuses to run
//! outside a `tcpq-lab-*` namespace, only ever talks to the lab's server
//! address, and exits by itself after at most [`MAX_SECONDS`].
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use super::scenario::{Scenario, Traffic};

/// No lab process lives longer than this, whatever it is asked.
pub const MAX_SECONDS: u64 = 60;

/// The server's address inside the lab's server namespace.
pub const SRV_ADDR: Ipv4Addr = Ipv4Addr::new(10, 213, 250, 2);
/// The client's address inside the lab's client namespace.
pub const CLI_ADDR: Ipv4Addr = Ipv4Addr::new(10, 213, 250, 1);

/// Name this process (the kernel's comm, 15 bytes at most) so tcpq's
/// `comm` shows who is who. Threads created afterwards inherit it.
pub fn set_comm(name: &str) -> std::io::Result<()> {
    let mut buf = [0u8; 16];
    let n = name.len().min(15);
    buf[..n].copy_from_slice(&name.as_bytes()[..n]);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes
    // from a buffer that lives across the call.
    let rc = unsafe { libc::prctl(libc::PR_SET_NAME, buf.as_ptr() as libc::c_ulong, 0, 0, 0) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The name of the `ip netns` namespace this process is in, if any: the
/// entry of `/run/netns` with the same inode as `/proc/self/ns/net`.
pub fn current_netns() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let me = std::fs::metadata("/proc/self/ns/net").ok()?;
    for e in std::fs::read_dir("/run/netns").ok()?.flatten() {
        if let Ok(m) = std::fs::metadata(e.path()) {
            if m.ino() == me.ino() && m.dev() == me.dev() {
                return e.file_name().to_str().map(str::to_owned);
            }
        }
    }
    None
}

fn deadline_from(seconds: u64) -> Instant {
    Instant::now() + Duration::from_secs(seconds.clamp(1, MAX_SECONDS))
}

fn left(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

/// Sleep `d`, or until the deadline if that comes first. False when the
/// deadline has passed.
fn nap(d: Duration, deadline: Instant) -> bool {
    match left(deadline) {
        Some(l) => {
            std::thread::sleep(d.min(l));
            left(deadline).is_some()
        }
        None => false,
    }
}

fn check_namespace(sc: &Scenario, side: &str) -> Result<(), String> {
    let want = sc.netns(side);
    match current_netns() {
        Some(ns) if ns == want => Ok(()),
        other => Err(format!(
            "refusing to run outside the lab's namespace {want} (in {})",
            other.as_deref().unwrap_or("an unnamed namespace")
        )),
    }
}

/// A listening socket with an explicit backlog (std's is fixed).
fn listen(port: u16, backlog: i32) -> std::io::Result<TcpListener> {
    let l = TcpListener::bind(SocketAddr::new(IpAddr::V4(SRV_ADDR), port))?;
    // SAFETY: listen(2) on a socket we own; re-listening updates the backlog.
    if unsafe { libc::listen(l.as_raw_fd(), backlog) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(l)
}

/// Accept until the deadline, polling so the deadline is honoured.
fn accept_until(l: &TcpListener, deadline: Instant) -> Option<TcpStream> {
    l.set_nonblocking(true).ok()?;
    loop {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).ok()?;
                return Some(s);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if !nap(Duration::from_millis(5), deadline) {
                    return None;
                }
            }
            Err(_) => return None,
        }
    }
}

/// Read from `s` until EOF, an error or the deadline: `size` bytes per
/// read, `delay` between reads, `idle` before the first.
fn drain(mut s: TcpStream, size: usize, delay: Duration, idle: Duration, deadline: Instant) {
    if !idle.is_zero() && !nap(idle, deadline) {
        return;
    }
    let mut buf = vec![0u8; size];
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    while left(deadline).is_some() {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => return,
        }
        if !delay.is_zero() && !nap(delay, deadline) {
            return;
        }
    }
}

/// Write `total` bytes (or until the deadline), in 64 KiB writes.
fn write_for(s: &mut TcpStream, total: u64, deadline: Instant) -> std::io::Result<u64> {
    let chunk = [b'x'; 65536];
    let _ = s.set_write_timeout(Some(Duration::from_millis(200)));
    let mut sent = 0u64;
    while sent < total && left(deadline).is_some() {
        let n = chunk.len().min((total - sent) as usize);
        match s.write(&chunk[..n]) {
            Ok(n) => sent += n as u64,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(sent)
}

fn connect(port: u16, deadline: Instant) -> std::io::Result<TcpStream> {
    let to = left(deadline).unwrap_or(Duration::from_millis(1));
    TcpStream::connect_timeout(&SocketAddr::new(IpAddr::V4(SRV_ADDR), port), to)
}

/// Close with RST instead of FIN: `SO_LINGER` on, 0 seconds.
fn abort(s: TcpStream) {
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
    drop(s);
}

/// `tcpq lab __serve NAME`: the server side. Writes `ready_file` once
/// listening.
pub fn serve(sc: &Scenario, seconds: u64, ready_file: &Path) -> Result<(), String> {
    check_namespace(sc, "srv")?;
    set_comm("lab-reader").map_err(|e| format!("prctl: {e}"))?;
    let deadline = deadline_from(seconds);
    let t = &sc.traffic;
    let l = listen(sc.port, t.backlog).map_err(|e| format!("listen on {}: {e}", sc.port))?;
    let tmp = ready_file.with_extension("tmp");
    std::fs::write(&tmp, format!("{}\n", std::process::id()))
        .and_then(|_| std::fs::rename(&tmp, ready_file))
        .map_err(|e| format!("{}: {e}", ready_file.display()))?;
    let mut held = Vec::new();
    let mut workers = Vec::new();
    while let Some(s) = accept_until(&l, deadline) {
        if t.hold_accepted {
            // The backlog scenario: accept slowly, keep what was accepted.
            held.push(s);
            if !nap(t.accept_every, deadline) {
                break;
            }
            continue;
        }
        let (size, delay, idle) = (t.read_size, t.read_delay, t.idle_before_read);
        workers.push(std::thread::spawn(move || {
            drain(s, size, delay, idle, deadline)
        }));
        workers.retain(|w| !w.is_finished());
    }
    drop(held);
    // Reader threads end at the deadline at the latest.
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

/// `tcpq lab __send NAME`: the client side.
pub fn send(sc: &Scenario, seconds: u64) -> Result<(), String> {
    check_namespace(sc, "cli")?;
    set_comm("lab-writer").map_err(|e| format!("prctl: {e}"))?;
    let deadline = deadline_from(seconds);
    match &sc.traffic.client {
        Traffic::Stream { pace } => {
            let mut s = connect(sc.port, deadline).map_err(|e| format!("connect: {e}"))?;
            while left(deadline).is_some() {
                match pace {
                    // As fast as the window allows.
                    None => {
                        write_for(&mut s, u64::MAX, deadline).map_err(|e| format!("write: {e}"))?;
                    }
                    Some((bytes, every)) => {
                        write_for(&mut s, *bytes, deadline).map_err(|e| format!("write: {e}"))?;
                        nap(*every, deadline);
                    }
                }
            }
        }
        Traffic::Bursts {
            bytes,
            bursts,
            idle,
        } => {
            // A fresh connection, a few bursts with idle gaps, repeated.
            while left(deadline).is_some() {
                let Ok(mut s) = connect(sc.port, deadline) else {
                    nap(Duration::from_millis(200), deadline);
                    continue;
                };
                for i in 0..*bursts {
                    if i > 0 && !nap(*idle, deadline) {
                        break;
                    }
                    if write_for(&mut s, *bytes, deadline).is_err() {
                        break;
                    }
                }
                drop(s);
                nap(*idle, deadline);
            }
        }
        Traffic::Resets { closed_port, every } => {
            while left(deadline).is_some() {
                // A port nobody listens on: the server's kernel answers RST.
                let _ = connect(*closed_port, deadline);
                // An established connection the client aborts: RST, not FIN.
                if let Ok(mut s) = connect(sc.port, deadline) {
                    let _ = s.write_all(&[b'x'; 1024]);
                    nap(Duration::from_millis(20), deadline);
                    abort(s);
                }
                nap(*every, deadline);
            }
        }
        Traffic::Crowd { first, more, every } => {
            // Many connections at once against a short accept queue; each
            // thread holds its connection until the deadline.
            let mut threads = Vec::new();
            let port = sc.port;
            let open = |n: u32, threads: &mut Vec<std::thread::JoinHandle<()>>| {
                for _ in 0..n {
                    threads.push(std::thread::spawn(move || {
                        if let Ok(s) = connect(port, deadline) {
                            while nap(Duration::from_millis(200), deadline) {}
                            drop(s);
                        }
                    }));
                }
            };
            open(*first, &mut threads);
            while nap(*every, deadline) {
                if threads.len() < 128 {
                    open(*more, &mut threads);
                }
            }
            for t in threads {
                let _ = t.join();
            }
        }
    }
    Ok(())
}
