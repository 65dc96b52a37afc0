//! However a tcpq run ends (SIGKILL, a runtime error after attaching, a
//! panic) it leaves no program or map in the kernel, and two tcpq at once do
//! not disturb each other. Ground truth: the ids a process holds in
//! `/proc/<pid>/fdinfo` before it ends, then `bpftool` after.
mod common;

use common::bpf::{assert_released, bpf_fds};
use common::tcpq::{field_u64, json_lines};
use common::Tcpq;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

const ATTACH: Duration = Duration::from_secs(20);

#[test]
fn sigkill_leaves_nothing_behind() {
    if !common::require_root() {
        return;
    }
    let mut t = Tcpq::spawn(&["-e", "on tcp_select_window where win == 0 print pid, comm"]);
    t.wait_attached(ATTACH);
    let (progs, maps) = bpf_fds(t.pid().unwrap());
    assert!(progs.len() >= 4, "{progs:?}");
    assert!(!maps.is_empty());
    common::kill(t.pid().unwrap(), libc::SIGKILL);
    let (status, _, _) = t.wait(Duration::from_secs(10));
    assert!(!status.success());
    assert_released(&progs, &maps, "SIGKILL");
}

/// A real runtime error after attaching: stdout is /dev/full, so printing the
/// final counts fails with ENOSPC. Exit 1, say why, detach everything.
#[test]
fn a_runtime_error_after_attaching_exits_1_and_detaches() {
    if !common::require_root() {
        return;
    }
    let dir = common::TempDir::new("enospc");
    let err_path = dir.join("stderr");
    let mut child = Command::new(Tcpq::bin())
        .args(["-e", "on tcp_retransmit count by comm"])
        .stdin(Stdio::null())
        .stdout(
            std::fs::File::options()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let stderr = || std::fs::read_to_string(&err_path).unwrap_or_default();
    common::wait_for(ATTACH, || {
        stderr()
            .lines()
            .any(common::tcpq::says_attached)
            .then_some(())
    })
    .unwrap_or_else(|| panic!("tcpq did not attach: {}", stderr()));
    let (progs, maps) = bpf_fds(child.id());
    assert!(progs.len() >= 4, "{progs:?}");
    common::kill(child.id(), libc::SIGINT);
    let status = common::wait_for(Duration::from_secs(10), || child.try_wait().ok().flatten())
        .expect("tcpq did not exit after SIGINT");
    assert_eq!(status.code(), Some(1), "stderr:\n{}", stderr());
    assert!(
        stderr().contains("cannot write output"),
        "the error must say what failed: {}",
        stderr()
    );
    assert_released(&progs, &maps, "a write error");
}

/// `TCPQ_TEST_PANIC_AFTER_ATTACH=1` (a test hook in src/main.rs) panics
/// while the session is alive; unwinding must detach it.
#[test]
fn a_panic_with_probes_attached_leaves_nothing_behind() {
    if !common::require_root() {
        return;
    }
    let mut child = Command::new(Tcpq::bin())
        .args(["-e", "on tcp_probe count by comm"])
        .env("TCPQ_TEST_PANIC_AFTER_ATTACH", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen)
        .lines()
        .any(common::tcpq::says_attached)
    {
        let n = err.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "tcpq exited before attaching: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    let (progs, maps) = bpf_fds(child.id());
    assert!(progs.len() >= 4, "{progs:?}");
    common::kill(child.id(), libc::SIGINT);
    err.read_to_end(&mut seen).unwrap();
    let status = child.wait().unwrap();
    let text = String::from_utf8_lossy(&seen);
    assert!(!status.success(), "the hook must panic: {text}");
    assert!(text.contains("panicked"), "{text}");
    assert_released(&progs, &maps, "a panic");
}

/// Segments sent to `port` on loopback: a connection, a few writes, close.
fn talk_to(listener: &TcpListener) {
    let port = listener.local_addr().unwrap().port();
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (mut s, _) = listener.accept().unwrap();
    for _ in 0..5 {
        c.write_all(b"hello").unwrap();
        let mut b = [0u8; 5];
        s.read_exact(&mut b).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Two tcpq on the same probe with different filters: each loads its own
/// copy, so each prints only (and all of) its own port's segments.
#[test]
fn two_tcpq_at_once_get_their_own_answers() {
    if !common::require_root() {
        return;
    }
    let la = TcpListener::bind("127.0.0.1:0").unwrap();
    let lb = TcpListener::bind("127.0.0.1:0").unwrap();
    let (pa, pb) = (
        la.local_addr().unwrap().port(),
        lb.local_addr().unwrap().port(),
    );
    let prog = |p: u16| format!("on tcp_select_window where dport == {p} print sport, dport");
    let (qa, qb) = (prog(pa), prog(pb));
    let mut a = Tcpq::spawn(&["-e", &qa, "--format", "json"]);
    let mut b = Tcpq::spawn(&["-e", &qb, "--format", "json"]);
    a.wait_attached(ATTACH);
    b.wait_attached(ATTACH);
    talk_to(&la);
    talk_to(&lb);
    std::thread::sleep(Duration::from_millis(300));
    let (sa, oa, ea) = a.stop(Duration::from_secs(10));
    let (sb, ob, eb) = b.stop(Duration::from_secs(10));
    assert!(sa.success() && sb.success(), "{ea}\n{eb}");
    for (port, out) in [(pa, &oa), (pb, &ob)] {
        let evs = json_lines(out);
        assert!(
            !evs.is_empty(),
            "tcpq watching dport {port} saw nothing:\n{out}"
        );
        for e in &evs {
            assert_eq!(field_u64(e, "dport"), port as u64, "{e}");
        }
    }
}
