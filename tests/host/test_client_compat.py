#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ivshmem-client as a drop-in for QEMU's contrib/ivshmem-client, and its --wait count
(issue 11 item 7, issue 10 item 10), against our server:
  - interactive commands separated by ';', '\\r' or newlines, QEMU's lenient forms
    ("int1 0", "int PEER" = all), a last command without a newline at end of input;
  - it reconnects every second like QEMU's client: started before the server, after the
    server went away, with commands answered "not connected" meanwhile; end of input quits;
  - --no-reconnect: exit 3 without a server, 1 when it goes away; script mode never
    reconnects (exit 3 at once);
  - --wait adds 64-bit eventfd counts: one read of 0xffffffff is 4294967295 interrupts (it
    used to be added into an int as -1), and 0xffffffff + 1 reaches --wait 4294967296.
(tests/host/test_qemu_conformance.py compares the same command lines with QEMU's client.)

Usage: test_client_compat.py IVSHMEM_SERVER IVSHMEM_CLIENT
"""
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import taplib  # noqa: E402
from taplib import ok  # noqa: E402

SERVER, CLIENT = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
live = []


def poll_until(cond, timeout=5.0, step=0.01):
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


class Proc:
    """A child with stdout and stderr in one file."""

    def __init__(self, tmp, argv, stdin=None):
        self.log = open(os.path.join(tmp, f"p-{time.monotonic_ns()}.log"), "w+")
        self.proc = subprocess.Popen(argv, stdin=stdin, stdout=self.log, stderr=subprocess.STDOUT)
        live.append(self)

    def text(self):
        with open(self.log.name) as f:
            return f.read()

    def wait_text(self, pattern, start=0, timeout=5.0):
        rx = re.compile(pattern, re.M)
        return poll_until(lambda: rx.search(self.text(), start), timeout)

    def send(self, line):
        self.proc.stdin.write(line.encode())
        self.proc.stdin.flush()

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        if self.proc.stdin:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        if self in live:
            live.remove(self)
        return rc


def server(tmp, sock):
    s = Proc(tmp, [SERVER, "-F", "-S", sock, "--memfd", "-l", "1M", "-n", "2"])
    # Its "listening on" line, not the socket file: the file exists from bind() on (or is a
    # previous server's), and a connect() before listen() is refused.
    up = s.wait_text(r"listening on ")
    assert up, f"server did not start: {s.text()}"
    return s


class Peer:
    """A raw protocol peer: keeps every (value, fd) it is sent."""

    def __init__(self, sock):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(sock)
        self.sock.settimeout(5)
        self.msgs = []

    def read(self, n):
        for _ in range(n):
            data, anc, _, _ = self.sock.recvmsg(8, socket.CMSG_SPACE(4))
            fd = -1
            for level, typ, payload in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    fd = struct.unpack("i", payload[:4])[0]
            self.msgs.append((struct.unpack("<q", data)[0], fd))

    def own_id(self):
        return self.msgs[1][0]

    def fds_of(self, peer):
        return [fd for v, fd in self.msgs[3:] if v == peer and fd >= 0]

    def close(self):
        self.sock.close()
        for _, fd in self.msgs:
            if fd >= 0:
                os.close(fd)


def counts(fds):
    out = []
    for fd in fds:
        os.set_blocking(fd, False)
        try:
            out.append(struct.unpack("=Q", os.read(fd, 8))[0])
        except BlockingIOError:
            out.append(0)
    return out


def interactive_commands(tmp):
    sock = os.path.join(tmp, "cmd.sock")
    s = server(tmp, sock)
    p = Peer(sock)
    p.read(3 + 2)
    c = Proc(tmp, [CLIENT, "-S", sock], stdin=subprocess.PIPE)
    try:
        ok(c.wait_text(r"connected to .* as peer 1 \(2 vectors\)"), "interactive: connects, says its ID",
           c.text())
        p.read(2)
        own = p.fds_of(p.own_id())
        for line, want in (("int 0 0;int 0 1", [1, 1]), ("int 0 1\rint 0 1", [0, 2]),
                           ("int0 1", [0, 1]), ("int 0", [1, 1]), ("int 0 all;;int all", [2, 2]),
                           ("int 0 1 trailing words", [0, 1]), ("help;int 0 0", [1, 0]),
                           ("int 7 0", [0, 0]), ("int 0 9", [0, 0])):
            mark = len(c.text())
            c.send(line + ";dump\n")
            c.wait_text(r"our_id = 1$", mark)
            got = counts(own)
            ok(got == want, f"{line!r} rings {want}", c.text()[mark:])
        mark = len(c.text())
        c.send("int 7 0\nint 0 9\nbogus\n?\n")
        ok(c.wait_text(r"cannot find peer_id = 7(.*\n)*.*peer 0 has 2 vectors(.*\n)*.*invalid command"
                       r"(.*\n)*.*int PEER VECTOR", mark), "unknown peer, vector, command and '?' answered",
           c.text()[mark:])
        c.proc.stdin.close()
        ok(poll_until(lambda: c.proc.poll() is not None) and c.proc.returncode == 0,
           "end of input quits with status 0", c.text())
        r = subprocess.run([CLIENT, "-S", sock], input="int 0 1", capture_output=True, text=True,
                           timeout=10)
        ok(r.returncode == 0 and counts(own) == [0, 1],
           "a last command without a newline still runs at end of input", r.stdout + r.stderr)
    finally:
        c.stop()
        p.close()
        s.stop()


def reconnect(tmp):
    sock = os.path.join(tmp, "re.sock")
    c = Proc(tmp, [CLIENT, "-S", sock], stdin=subprocess.PIPE)
    s = None
    try:
        ok(c.wait_text(r"retrying every second"), "started without a server: it says it retries",
           c.text())
        mark = len(c.text())
        c.send("dump\n")
        ok(c.wait_text(r"not connected", mark), "meanwhile, commands say it is not connected")
        t0 = time.monotonic()
        s = server(tmp, sock)
        ok(c.wait_text(r"connected to .* as peer 0", mark, 3), "it connects once the server is up")
        ok(time.monotonic() - t0 < 2.5, f"within a retry period ({time.monotonic() - t0:.1f} s)")
        mark = len(c.text())
        s.stop()
        ok(c.wait_text(r"disconnected from server", mark), "the server goes: 'disconnected from server'",
           c.text()[mark:])
        s = server(tmp, sock)
        ok(c.wait_text(r"connected to .* as peer 0", mark, 3), "the server is back: it reconnects",
           c.text()[mark:])
        p = Peer(sock)
        p.read(3 + 2 + 2)
        mark = len(c.text())
        c.send("int 1 1;dump\n")
        c.wait_text(r"our_id = 0$", mark)
        ok(counts(p.fds_of(p.own_id())) == [0, 1], "and rings peers of the new server")
        p.close()
        s.stop()
        ok(c.wait_text(r"disconnected from server", mark), "gone again")
        c.proc.stdin.close()
        ok(poll_until(lambda: c.proc.poll() is not None) and c.proc.returncode == 0,
           "end of input while disconnected quits with status 0 at once")
    finally:
        c.stop()
        if s:
            s.stop()


def no_reconnect(tmp):
    sock = os.path.join(tmp, "nr.sock")
    t0 = time.monotonic()
    r = subprocess.run([CLIENT, "-S", sock, "--no-reconnect"], input="", capture_output=True,
                       text=True, timeout=10)
    ok(r.returncode == 3 and time.monotonic() - t0 < 2, "--no-reconnect without a server: exit 3",
       r.stderr)
    r = subprocess.run([CLIENT, "-S", sock, "--list"], capture_output=True, text=True, timeout=10)
    ok(r.returncode == 3, "script mode without a server: exit 3 at once (never retries)", r.stderr)
    s = server(tmp, sock)
    c = Proc(tmp, [CLIENT, "-S", sock, "--no-reconnect"], stdin=subprocess.PIPE)
    try:
        ok(c.wait_text(r"connected to"), "--no-reconnect connects", c.text())
        s.stop()
        ok(poll_until(lambda: c.proc.poll() is not None) and c.proc.returncode == 1,
           "--no-reconnect: the server goes away, exit 1", c.text())
    finally:
        c.stop()
        s.stop()


def wait_counts(tmp):
    sock = os.path.join(tmp, "w.sock")
    for want, rings, desc in (
            ("1", [0xffffffff], "one read of 0xffffffff satisfies --wait 1"),
            ("4294967295", [0xffffffff], "0xffffffff counts as 4294967295 interrupts"),
            ("4294967296", [0xffffffff, 1], "0xffffffff + 1 reaches --wait 4294967296 (64-bit sum)")):
        s = server(tmp, sock)   # a fresh one each time: the peer and the client are 0 and 1
        try:
            p = Peer(sock)
            p.read(3 + 2)
            c = Proc(tmp, [CLIENT, "-S", sock, "--wait", want, "--vector", "1", "--timeout", "5000"])
            p.read(2)
            fd = p.fds_of(p.msgs[5][0])[1]    # the client's vector 1, from its join notice
            for n in rings:
                os.write(fd, struct.pack("=Q", n))
            try:
                rc = c.proc.wait(10)
            except subprocess.TimeoutExpired:
                rc = "hung"
            ok(rc == 0 and re.search(r"vector 1 count 429496729[56]", c.text()), desc,
               f"status {rc}\n{c.text()}")
            c.stop()
            p.close()
        finally:
            s.stop()
    s = server(tmp, sock)
    try:
        r = subprocess.run([CLIENT, "-S", sock, "--wait", "18446744073709551615", "--timeout", "100"],
                           capture_output=True, text=True, timeout=10)
        ok(r.returncode == 4 and "of 18446744073709551615" in r.stderr,
           "--wait 2^64-1 is a valid count (times out: exit 4)", r.stderr)
    finally:
        s.stop()


with tempfile.TemporaryDirectory(prefix="ivshmem-client-") as tmp:
    for scenario in (interactive_commands, reconnect, no_reconnect, wait_counts):
        try:
            scenario(tmp)
        except Exception as e:  # a broken scenario is a failure, never a crash without TAP
            import traceback
            ok(False, f"{scenario.__name__} ran to the end ({type(e).__name__}: {e})",
               traceback.format_exc())
        finally:
            for p in list(live):
                p.stop(signal.SIGKILL)
sys.exit(taplib.done())
