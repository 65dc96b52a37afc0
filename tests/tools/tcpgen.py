#!/usr/bin/env python3
"""Bounded TCP traffic generator for tcpq's kernel tests (python3 stdlib only).

  tcpgen.py server --bind ADDR --port P [--idle-before-read S] [--read-size N]
                   [--read-delay-ms D] [--rcvbuf N] [--max-seconds T]
                   --log FILE --ready-file F [--comm NAME]
  tcpgen.py client --connect ADDR --port P --bytes N [--max-seconds T]
                   [--sndbuf N] [--hold-seconds H] --log FILE [--comm NAME]

Every run is bounded: the server accepts one connection and exits when the
peer closes or after --max-seconds; the client stops writing after --bytes or
--max-seconds. Each process renames itself with prctl(PR_SET_NAME) so the
kernel's comm is recognisable (`tcpq-reader` / `tcpq-writer` by default).

The log is JSON lines; every line has "event", "pid", "comm", "t" (seconds
since start) and "wall" (epoch seconds, comparable with pcap timestamps). Events: server: listening, accepted, first_read, done;
client: connected, done, closed.
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
        rec = {"event": event, "pid": os.getpid(), "comm": self.comm,
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
    deadline = time.monotonic() + a.max_seconds
    ls = socket.socket(family_of(a.bind), socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if a.rcvbuf:
        # Set on the listener: the accepted socket inherits it, and the
        # window advertised in the SYN-ACK is derived from it.
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, a.rcvbuf)
    ls.bind((a.bind, a.port))
    ls.listen(1)
    log("listening", addr=a.bind, port=a.port,
        rcvbuf=ls.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
    tmp = a.ready_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(tmp, a.ready_file)

    ls.settimeout(remaining(deadline))
    try:
        conn, peer = ls.accept()
    except socket.timeout:
        log("done", bytes=0, reason="accept timeout")
        return 2
    ls.close()
    log("accepted", peer=peer[0], **ports(conn))

    # Accepted but unread: the receive queue fills and the window closes.
    if a.idle_before_read > 0:
        time.sleep(min(a.idle_before_read, remaining(deadline)))

    total = 0
    reads = 0
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
        if a.read_delay_ms > 0:
            time.sleep(min(a.read_delay_ms / 1000.0, remaining(deadline)))
    log("done", bytes=total, reads=reads, reason=reason, **ports(conn))
    conn.close()
    return 0


def outq(sock):
    """Bytes not yet acknowledged by the peer (SIOCOUTQ)."""
    buf = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
    return struct.unpack("i", buf)[0]


def client(a):
    comm = set_comm(a.comm or "tcpq-writer")
    log = Log(a.log, comm)
    deadline = time.monotonic() + a.max_seconds
    s = socket.socket(family_of(a.connect), socket.SOCK_STREAM)
    if a.sndbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, a.sndbuf)
    s.settimeout(remaining(deadline))
    s.connect((a.connect, a.port))
    s.setblocking(False)
    log("connected", **ports(s))
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
    log("done", bytes=total, reason=reason, unacked=unacked, **ports(s))
    if a.hold_seconds > 0:
        time.sleep(remaining(min(deadline, time.monotonic() + a.hold_after_ack)))
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

    a = p.parse_args(argv)
    if a.max_seconds <= 0 or a.max_seconds > 120:
        p.error("--max-seconds must be in (0, 120]")
    return server(a) if a.cmd == "server" else client(a)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
