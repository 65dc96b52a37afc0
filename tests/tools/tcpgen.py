#!/usr/bin/env python3
"""Bounded TCP traffic generator for tcpq's kernel tests (python3 stdlib only).

  tcpgen.py server --bind ADDR --port P [--idle-before-read S] [--read-size N]
                   [--read-delay-ms D] [--rcvbuf N] [--max-seconds T]
                   [--backlog N] [--accept-delay S]
                   [--accept N] [--close-unread] [--reply K --reply-after B
                   --reply-delay S] [--last-cpu] --log FILE --ready-file F
                   [--comm NAME]
  tcpgen.py client --connect ADDR --port P --bytes N [--max-seconds T]
                   [--sndbuf N] [--hold-seconds H] [--connections N]
                   [--read-reply K] [--linger0] [--connect-timeout S]
                   [--blocking-connect] [--handoff NAME] --log FILE [--comm NAME]

Every run is bounded: the server accepts --accept connections (default 1),
one after the other, and exits when the last peer closes or after
--max-seconds; the client makes --connections connections (default 1), one
after the other, and stops writing after --bytes or --max-seconds. Each process renames itself with prctl(PR_SET_NAME) so the
kernel's comm is recognisable (`tcpq-reader` / `tcpq-writer` by default).

The log is JSON lines; every line has "event", "pid", "comm", "t" (seconds
since start) and "wall" (epoch seconds, comparable with pcap timestamps). Events: server: listening, accepted, first_read, done;
client: connecting, connected, done, closing, closed (one of each per connection), reply,
refused, timeout, connect_error (each with "errno": the name, or null for the client's own
--connect-timeout). Every record also carries "uid" (the real uid, for tests
run under `setpriv --reuid`).
"""

import argparse
import ctypes
import ctypes.util
import errno
import fcntl
import json
import os
import select
import socket
import struct
import sys
import termios
import time

PR_SET_NAME = 15
T0 = time.monotonic()


def set_comm(name):
    """Set the kernel comm of this (main) thread, i.e. /proc/<pid>/comm."""
    raw = name.encode()[:15]
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(PR_SET_NAME, ctypes.c_char_p(raw), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "prctl(PR_SET_NAME): " + os.strerror(err))
    with open("/proc/self/comm") as f:
        got = f.read().strip()
    if got != raw.decode():
        raise RuntimeError("comm is %r, wanted %r" % (got, raw))
    return got


class Log:
    def __init__(self, path, comm):
        self.f = open(path, "a", buffering=1)
        self.comm = comm

    def __call__(self, event, **kw):
        rec = {"event": event, "pid": os.getpid(), "comm": self.comm, "uid": os.getuid(),
               "t": round(time.monotonic() - T0, 6), "wall": time.time()}
        rec.update(kw)
        self.f.write(json.dumps(rec, sort_keys=True) + "\n")
        self.f.flush()


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def ports(sock):
    return {"lport": sock.getsockname()[1], "rport": sock.getpeername()[1]}


def remaining(deadline):
    return max(0.0, deadline - time.monotonic())


def server(a):
    comm = set_comm(a.comm or "tcpq-reader")
    log = Log(a.log, comm)
    if a.last_cpu:
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    deadline = time.monotonic() + a.max_seconds
    ls = socket.socket(family_of(a.bind), socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if a.rcvbuf:
        # Set on the listener: the accepted socket inherits it, and the
        # window advertised in the SYN-ACK is derived from it.
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, a.rcvbuf)
    ls.bind((a.bind, a.port))
    ls.listen(a.backlog)
    log("listening", addr=a.bind, port=a.port,
        rcvbuf=ls.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
    tmp = a.ready_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(tmp, a.ready_file)

    if a.accept_delay > 0:
        # Connections that finish the handshake meanwhile wait in the
        # accept queue (and beyond its limit are dropped).
        time.sleep(min(a.accept_delay, remaining(deadline)))
    ls.settimeout(remaining(deadline))
    for _ in range(a.accept):
        try:
            conn, peer = ls.accept()
        except socket.timeout:
            log("done", bytes=0, reason="accept timeout")
            return 2
        log("accepted", peer=peer[0], **ports(conn))
        serve_one(a, log, conn, deadline)
    ls.close()
    return 0


def serve_one(a, log, conn, deadline):
    # Taken now: after a reset the socket no longer has a peer.
    where = ports(conn)
    if a.close_unread:
        # Wait for data, then close without reading it: the kernel answers
        # with a reset (data was lost) instead of a FIN.
        select.select([conn], [], [], remaining(deadline))
        log("closed_unread", **where)
        conn.close()
        return

    # Accepted but unread: the receive queue fills and the window closes.
    if a.idle_before_read > 0:
        time.sleep(min(a.idle_before_read, remaining(deadline)))

    total = 0
    reads = 0
    replied = a.reply <= 0
    reason = "deadline"
    conn.setblocking(False)
    while True:
        left = remaining(deadline)
        if left <= 0:
            break
        r, _, _ = select.select([conn], [], [], left)
        if not r:
            continue
        try:
            data = conn.recv(a.read_size)
        except (BlockingIOError, InterruptedError):
            continue
        except ConnectionResetError:
            reason = "reset"
            break
        if not data:
            reason = "eof"
            break
        if reads == 0:
            log("first_read", bytes=len(data))
        total += len(data)
        reads += 1
        if not replied and total >= a.reply_after:
            # Late enough that every ACK of the peer's data has arrived
            # there: the reply is then the last segment the peer receives.
            time.sleep(min(a.reply_delay, remaining(deadline)))
            conn.setblocking(True)
            conn.sendall(b"r" * a.reply)
            conn.setblocking(False)
            log("replied", bytes=a.reply)
            replied = True
        if a.read_delay_ms > 0:
            time.sleep(min(a.read_delay_ms / 1000.0, remaining(deadline)))
    log("done", bytes=total, reads=reads, reason=reason, **where)
    conn.close()


def outq(sock):
    """Bytes not yet acknowledged by the peer (SIOCOUTQ)."""
    buf = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
    return struct.unpack("i", buf)[0]


def client(a):
    comm = set_comm(a.comm or "tcpq-writer")
    log = Log(a.log, comm)
    deadline = time.monotonic() + a.max_seconds
    if a.handoff:
        return handoff(a, log, deadline)
    for _ in range(a.connections):
        rc = client_one(a, log, deadline)
        if rc != 0:
            return rc
    return 0


def send_all(s, n, deadline):
    """Send n bytes on the blocking socket s and wait until the peer has
    acknowledged them all (or the deadline passes): every ACK for them
    arrives before the function returns."""
    chunk = b"x" * 65536
    total = 0
    while total < n and remaining(deadline) > 0:
        total += s.send(chunk[: min(len(chunk), n - total)])
    while outq(s) > 0 and remaining(deadline) > 0:
        time.sleep(0.01)
    return total


def handoff(a, log, deadline):
    """One connection used by two processes in turn: this one sends --bytes,
    a forked child renamed --handoff sends --bytes on the same socket and
    exits, then this one sends --bytes again. Events: connected, phase (with
    "phase" 1, 2 or 3, logged by the process that sends it, once its bytes
    are acknowledged), closed."""
    # Parent and child on different CPUs where there are two: a per-CPU
    # cache of who used a socket last must still see the socket change hands.
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[0]})
    s = socket.create_connection((a.connect, a.port), timeout=remaining(deadline))
    log("connected", **ports(s))
    time.sleep(0.2)
    log("phase", phase=1, bytes=send_all(s, a.bytes, deadline))
    time.sleep(0.2)
    child = os.fork()
    if child == 0:
        try:
            os.sched_setaffinity(0, {cpus[-1]})
            clog = Log(a.log, set_comm(a.handoff))
            clog("phase", phase=2, bytes=send_all(s, a.bytes, deadline))
            time.sleep(0.2)
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    log("phase", phase=3, bytes=send_all(s, a.bytes, deadline))
    time.sleep(0.2)
    s.close()
    log("closed")
    return 0


def client_one(a, log, deadline):
    s = socket.socket(family_of(a.connect), socket.SOCK_STREAM)
    if a.sndbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, a.sndbuf)
    if a.blocking_connect:
        # A plain blocking connect(): only the kernel ends it (Python's
        # timeout makes it non-blocking and polls, then reads SO_ERROR,
        # which also hands over a soft error the kernel only noted).
        s.settimeout(None)
    else:
        s.settimeout(min(remaining(deadline), a.connect_timeout or remaining(deadline)))
    log("connecting")
    # Each failure names its errno: the kernel's (ECONNREFUSED, ETIMEDOUT
    # when its SYN retries ran out, EHOSTUNREACH, ...), or null for
    # Python's own --connect-timeout (socket.timeout is TimeoutError, the
    # class of the kernel's ETIMEDOUT too).
    try:
        s.connect((a.connect, a.port))
    except ConnectionRefusedError as e:
        log("refused", lport=s.getsockname()[1], errno=errno.errorcode.get(e.errno))
        s.close()
        return 0
    except socket.timeout as e:
        log("timeout", lport=s.getsockname()[1],
            errno=errno.errorcode.get(e.errno) if e.errno else None)
        s.close()
        return 0
    except OSError as e:
        log("connect_error", lport=s.getsockname()[1], errno=errno.errorcode.get(e.errno, e.errno))
        s.close()
        return 0
    s.setblocking(False)
    where = ports(s)
    log("connected", **where)
    chunk = b"x" * 65536
    total = 0
    reason = "bytes"
    while total < a.bytes:
        left = remaining(deadline)
        if left <= 0:
            reason = "deadline"
            break
        _, w, _ = select.select([], [s], [], min(left, 0.2))
        if not w:
            continue
        try:
            n = s.send(chunk[: min(len(chunk), a.bytes - total)])
        except (BlockingIOError, InterruptedError):
            continue
        except OSError as e:
            reason = "error: %s" % errno.errorcode.get(e.errno, e.errno)
            break
        total += n
    unacked = None
    if a.hold_seconds > 0:
        # Keep the socket open (and this process its owner) until every byte
        # is acknowledged, then a little longer: retransmissions all happen
        # while the writer still owns the socket.
        hold_deadline = min(deadline, time.monotonic() + a.hold_seconds)
        while time.monotonic() < hold_deadline:
            unacked = outq(s)
            if unacked == 0:
                break
            time.sleep(0.01)
    log("done", bytes=total, reason=reason, unacked=unacked, **where)
    if a.read_reply > 0:
        got = 0
        while got < a.read_reply and remaining(deadline) > 0:
            r, _, _ = select.select([s], [], [], remaining(deadline))
            if not r:
                continue
            try:
                data = s.recv(a.read_reply - got)
            except (BlockingIOError, InterruptedError):
                continue
            if not data:
                break
            got += len(data)
        log("reply", bytes=got)
    if a.hold_seconds > 0:
        time.sleep(remaining(min(deadline, time.monotonic() + a.hold_after_ack)))
    log("closing")
    if a.linger0:
        # SO_LINGER {on, 0}: close() aborts the connection with a reset.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    log("closed")
    return 0


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("server")
    s.add_argument("--bind", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--idle-before-read", type=float, default=0.0)
    s.add_argument("--read-size", type=int, default=65536)
    s.add_argument("--read-delay-ms", type=float, default=0.0)
    s.add_argument("--rcvbuf", type=int, default=0)
    s.add_argument("--max-seconds", type=float, default=10.0)
    s.add_argument("--log", required=True)
    s.add_argument("--ready-file", required=True)
    s.add_argument("--comm", default="")
    s.add_argument("--last-cpu", action="store_true",
                   help="run on the last CPU this process may use")
    s.add_argument("--backlog", type=int, default=16,
                   help="listen() backlog (capped by net.core.somaxconn)")
    s.add_argument("--accept-delay", type=float, default=0.0,
                   help="wait this long after listen() before the first accept()")
    s.add_argument("--accept", type=int, default=1,
                   help="connections to accept, one after the other")
    s.add_argument("--close-unread", action="store_true",
                   help="close each connection as soon as data arrives, unread (a reset)")
    s.add_argument("--reply", type=int, default=0,
                   help="send this many bytes back once --reply-after bytes were read")
    s.add_argument("--reply-after", type=int, default=1)
    s.add_argument("--reply-delay", type=float, default=0.5,
                   help="seconds to wait before replying")

    c = sub.add_parser("client")
    c.add_argument("--connect", required=True)
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--bytes", type=int, required=True)
    c.add_argument("--max-seconds", type=float, default=10.0)
    c.add_argument("--sndbuf", type=int, default=0)
    c.add_argument("--hold-seconds", type=float, default=0.0,
                   help="after writing, wait up to this long for all data to be acked")
    c.add_argument("--hold-after-ack", type=float, default=0.0,
                   help="with --hold-seconds: keep the socket open this long after the last ack")
    c.add_argument("--log", required=True)
    c.add_argument("--comm", default="")
    c.add_argument("--handoff", default="",
                   help="one connection, written by this process, then by a forked "
                        "child renamed NAME, then by this process again")
    c.add_argument("--connections", type=int, default=1,
                   help="connect this many times, one after the other")
    c.add_argument("--read-reply", type=int, default=0,
                   help="after the data is acknowledged, read this many bytes back")
    c.add_argument("--linger0", action="store_true",
                   help="close with SO_LINGER 0: abort with a reset")
    c.add_argument("--connect-timeout", type=float, default=0.0,
                   help="give up connecting after this long (logged as timeout)")
    c.add_argument("--blocking-connect", action="store_true",
                   help="connect() blocking, without a timeout: the kernel's SYN retries bound it")

    a = p.parse_args(argv)
    if a.max_seconds <= 0 or a.max_seconds > 120:
        p.error("--max-seconds must be in (0, 120]")
    if a.cmd == "server" and not 1 <= a.accept <= 1000:
        p.error("--accept must be in [1, 1000]")
    if a.cmd == "client" and not 1 <= a.connections <= 1000:
        p.error("--connections must be in [1, 1000]")
    return server(a) if a.cmd == "server" else client(a)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
