#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Conformance against the real thing: the same scenarios against QEMU's own
contrib/ivshmem-server (built from Debian's qemu source package by scripts/qemu-contrib.sh)
and against ours, with QEMU's contrib/ivshmem-client, our ivshmem-client and the ivshmem CLI
(libivshmem) as peers. Compared:
  - the bytes each socket receives: protocol version, own ID, shm fd, every peer's eventfds,
    leave notices, for the 1st, 2nd and 3rd peer and with -n 0;
  - which eventfd rings whom (each holder's copy of (peer, vector) wakes exactly that one);
  - join order across sockets: when a newcomer holds its own vectors, every existing peer
    already has the join notice queued (so an answer to the newcomer is never lost);
  - IDs after a leave, and a peer that sends a byte;
  - doorbells among mixed clients, QEMU's interactive syntax ("int 1 0;int 1 1"), and both
    interactive clients reconnecting after a server restart;
  - invocations QEMU's server accepts (-M /name, -n 0, -l 1.5M, extra arguments, -F -p PATH)
    and the ones it refuses (exit status);
  - files and modes under umask 002 after start and after SIGTERM (shm unlinked, pid file
    kept, socket removed), a pre-existing /dev/shm object, daemon mode with relative paths.
Every difference must be listed in DELIBERATE below with its reason and must have a row in
docs/server.md's comparison table; a listed difference that is no longer observed fails too.

Usage: test_qemu_conformance.py OUR_SERVER OUR_CLIENT IVSHMEM_CLI
QEMU's binaries: $IVSHMEM_QEMU_CONTRIB (a directory holding ivshmem-server and ivshmem-client,
what scripts/qemu-contrib.sh prints). ./test.sh sets it: then missing binaries fail the test.
Unset, the default cache of the installed QEMU's version is tried, else the test is skipped.
"""
import array
import errno
import fcntl
import mmap
import os
import re
import select
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import termios
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from unixsock import listening  # noqa: E402
DOCS = os.path.join(HERE, "..", "..", "docs", "server.md")
CACHE = "/var/cache/ivshmem-ci/qemu-contrib"

if len(sys.argv) != 4:
    sys.exit(__doc__.split("Usage: ")[1].split("\n")[0])
OURS = {"server": os.path.abspath(sys.argv[1]), "client": os.path.abspath(sys.argv[2])}
CLI = os.path.abspath(sys.argv[3])
VEC = 2           # vectors in most scenarios: enough to tell vectors apart
MIB = 1 << 20

# Differences from QEMU's server that we keep on purpose. Each: what ours does instead (the
# value the scenario observes on our server), why, and a regular expression that must match a
# row of docs/server.md's table "Compared with QEMU's example server" (which says the same).
DELIBERATE = {
    "usage error exit status": dict(
        ours=2,
        why="usage errors exit 2 in all our tools (1 is 'could not start or keep running'), so "
            "scripts can tell a typo from a failure",
        doc=r"^\| usage errors \| exit 1 \| exit 2"),
    "-n 65 (more than QEMU's 64 vectors)": dict(
        ours="starts",
        why="QEMU's device masks the doorbell vector to 8 bits, so up to 256 are addressable",
        doc=r"^\| `-n` \| at most 64 \| up to 256"),
    "-l 2G (more than 1 GiB)": dict(
        ours="starts",
        why="QEMU's server cannot size above 1 GiB (32-bit size); ours backs any size",
        doc=r"^\| `-l` \| at most 1 GiB"),
    "-l 0": dict(
        ours="refused",
        why="QEMU's server starts with a 1-byte region that no device can map; ours refuses "
            "sizes under 4 KiB with a usage error",
        doc=r"^\| `-l` \|.*`-l 0` starts.*\|.*under 4 KiB is a usage error"),
    "-v without -F": dict(
        ours="starts",
        why="our server logs to syslog when daemonized, so verbose works there too",
        doc=r"^\| `-v` \| needs `-F` \| also when daemonized"),
    "socket mode under umask 002": dict(
        ours=0o600,
        why="anyone who can connect gets the memory and every doorbell: 0600 by default, "
            "--socket-mode/--socket-group open it deliberately",
        doc=r"^\| socket mode \| follows the umask \| 0600"),
    "new /dev/shm object mode under umask 002": dict(
        ours=0o600,
        why="shared memory is data, not a program: no execute bit, owner only by default "
            "(--shm-mode/--shm-group)",
        doc=r"^\| new `/dev/shm/NAME` mode \| 0700.*\| 0600"),
    "an existing /dev/shm/NAME of another user": dict(
        ours="refused",
        why="its owner could chmod it back, read every peer's memory and truncate it (issue 10 "
            "item 5): ours uses only objects owned by its own effective UID",
        doc=r"^\| an existing `/dev/shm/NAME` \| adopted whoever owns it \| .*owned by our effective UID"),
    "a stale socket file": dict(
        ours="starts",
        why="a socket left by a crashed server is replaced (a live one never is), so a "
            "restart after a crash needs no manual cleanup",
        doc=r"^\| a stale socket file \| refuses to start \| replaced"),
    "leave notices on shutdown": dict(
        ours="every peer hears of every other",
        why="QEMU's server drops peers in order, so later peers hear of earlier ones only; "
            "ours tells everyone everything before closing. Harmless: the sockets close next",
        doc=r"^\| shutdown \| later peers hear of earlier .*\| every peer hears of every other"),
}
# Rows of that table this test does not compare, and where they are tested instead.
TESTED_ELSEWHERE = {
    "default pid file": "test_server_dropin (a daemon's default pid file is /var/run: not "
                        "started from a test that runs both servers side by side)",
    "a client that stops reading": "test_server_hardening (QEMU's server loses messages at "
                                   "random there, nothing to compare byte for byte)",
    "`--memfd`": "test_server_cli and others: options QEMU's server does not have",
    "when the socket file appears": "test_server_cli (40 starts, each connecting the moment the "
                                    "file exists; QEMU's bind-to-listen window is too short to "
                                    "hit in every run, nothing to compare run for run)",
}

count = failed = 0
observed_diffs = set()


def ok(cond, desc, detail=None):
    global count, failed
    count += 1
    print(f"{'' if cond else 'not '}ok {count} - {desc}", flush=True)
    if not cond:
        failed += 1
        for line in str(detail or "").splitlines()[-40:]:
            print(f"#   {line}", flush=True)
    return cond


def diag(msg):
    print(f"# {msg}", flush=True)


def compare(name, qemu, ours, detail=""):
    """QEMU's result is the reference: ours must equal it, or be DELIBERATE's value."""
    if name in DELIBERATE:
        observed_diffs.add(name)
        want = DELIBERATE[name]["ours"]
        return ok(ours == want and qemu != want,
                  f"{name}: deliberate difference (QEMU {fmt(qemu)}, ours {fmt(want)})",
                  f"ours: {fmt(ours)}; QEMU's: {fmt(qemu)}; listed in DELIBERATE as "
                  f"{fmt(want)} because {DELIBERATE[name]['why']}. If it is gone, remove it "
                  f"there and from docs/server.md\n{detail}")
    return ok(ours == qemu, f"{name}: same as QEMU's ({fmt(qemu)})",
              f"QEMU's: {fmt(qemu)}\nours:   {fmt(ours)}\n{detail}")


def fmt(v):
    return oct(v) if isinstance(v, int) and not isinstance(v, bool) and v > 0o77 and v < 0o10000 \
        else repr(v)


def find_qemu():
    d = os.environ.get("IVSHMEM_QEMU_CONTRIB")
    required = bool(d)
    if not d:
        ver = subprocess.run(["dpkg-query", "-W", "-f=${source:Version}", "qemu-system-x86"],
                             capture_output=True, text=True).stdout.strip()
        d = os.path.join(CACHE, ver) if ver else ""
    paths = {k: os.path.join(d, f"ivshmem-{k}") for k in ("server", "client")}
    if d and all(os.access(p, os.X_OK) for p in paths.values()):
        return paths
    why = (f"QEMU's ivshmem-server/ivshmem-client not found in '{d}' "
           "(build them: scripts/qemu-contrib.sh, then IVSHMEM_QEMU_CONTRIB=<printed dir>)")
    if required:
        print("1..1\nnot ok 1 - QEMU's contrib binaries are present\n#   " + why, flush=True)
        sys.exit(1)
    print(f"1..0 # SKIP {why}", flush=True)
    sys.exit(0)


QEMU = find_qemu()
SERVERS = {"qemu": QEMU["server"], "ours": OURS["server"]}
CLIENTS = {"qemu": QEMU["client"], "ours": OURS["client"]}
STDBUF = shutil.which("stdbuf")   # QEMU's client printf()s into a pipe: make it unbuffered


def deadline_after(seconds):
    return time.monotonic() + seconds


def poll_until(cond, timeout=5.0, step=0.01):
    end = deadline_after(timeout)
    while True:
        v = cond()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


# ---------------------------------------------------------------------------------------
# A raw peer: speaks the protocol by hand and records exactly what arrives.
# ---------------------------------------------------------------------------------------
def fd_kind(fd):
    target = os.readlink(f"/proc/self/fd/{fd}")
    if target == "anon_inode:[eventfd]":
        return "efd"
    if target.startswith("/dev/shm/") or target.startswith("/memfd:") or " (deleted)" in target:
        return "shm"
    return target


class Peer:
    """One client socket; every message is kept as (value, fd kind or None, fd or -1)."""

    def __init__(self, path, timeout=5.0):
        self.msgs = []
        self.eof = False
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        end = deadline_after(timeout)
        while True:
            try:
                self.sock.connect(path)
                break
            except OSError as e:  # QEMU's server binds before it listens
                if e.errno not in (errno.ECONNREFUSED, errno.ENOENT) or time.monotonic() > end:
                    self.sock.close()
                    raise
                time.sleep(0.01)

    def _recv(self, flags=0):
        try:
            data, anc, mflags, _ = self.sock.recvmsg(8, socket.CMSG_SPACE(4 * 4), flags)
        except ConnectionResetError:  # closed by the server with our byte unread
            data, anc, mflags = b"", [], 0
        if not data:
            self.eof = True
            return None
        while len(data) < 8:
            more = self.sock.recv(8 - len(data))
            if not more:
                raise AssertionError(f"EOF inside a message after {data!r}")
            data += more
        fds = []
        for level, typ, payload in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds += list(struct.unpack(f"{len(payload) // 4}i", payload[:len(payload) // 4 * 4]))
        if len(fds) > 1 or mflags & socket.MSG_CTRUNC:
            for fd in fds:
                os.close(fd)
            raise AssertionError(f"a message carried {len(fds)} fds (flags {mflags:#x})")
        value = struct.unpack("<q", data)[0]
        fd = fds[0] if fds else -1
        m = (value, fd_kind(fd) if fd >= 0 else None, fd)
        self.msgs.append(m)
        return m

    def read(self, n, timeout=5.0):
        """The next n messages (fewer on EOF or timeout)."""
        got = []
        end = deadline_after(timeout)
        while len(got) < n and not self.eof:
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                break
            m = self._recv()
            if m:
                got.append(m)
        return got

    def pending(self):
        """What is queued right now, without waiting."""
        got = []
        while not self.eof:
            try:
                m = self._recv(socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            if m:
                got.append(m)
        return got

    def until_eof(self, timeout=5.0):
        got = []
        end = deadline_after(timeout)
        while not self.eof and time.monotonic() < end:
            got += self.read(1, max(0.0, end - time.monotonic()))
        return got

    def greeting(self, n_vectors, n_peers, timeout=5.0):
        return self.read(3 + n_vectors * (n_peers + 1), timeout)

    def own_id(self):
        return self.msgs[1][0] if len(self.msgs) > 1 else None

    def shm_fd(self):
        return next((fd for v, k, fd in self.msgs if k == "shm"), -1)

    def vectors_of(self, peer):
        return [fd for v, k, fd in self.msgs if v == peer and k == "efd"]

    def forget(self):
        """Close the fds received so far and drop the record (a long-lived idle peer)."""
        for _, _, fd in self.msgs:
            if fd >= 0:
                os.close(fd)
        self.msgs = []

    def close(self):
        self.sock.close()
        for _, _, fd in self.msgs:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.msgs = []


def shape(msgs):
    """Messages without fd numbers: what the bytes and the fd types say."""
    return [(v, k) for v, k, _ in msgs]


def model_greeting(own, existing, n):
    out = [(0, None), (own, None), (-1, "shm")]
    for p in existing:
        out += [(p, "efd")] * n
    return out + [(own, "efd")] * n


# ---------------------------------------------------------------------------------------
# Servers and clients as processes
# ---------------------------------------------------------------------------------------
class Proc:
    """A child process with stdout and stderr in one file, in order; reaped by stop()."""
    live = []

    def __init__(self, tmp, args, stdin=None, cwd=None, umask=None, name="proc"):
        self.log = open(os.path.join(tmp, f"{name}-{time.monotonic_ns()}.log"), "w+")
        pre = (lambda: os.umask(umask)) if umask is not None else None
        self.proc = subprocess.Popen(args, stdin=stdin, stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=cwd, preexec_fn=pre)
        Proc.live.append(self)

    def text(self):
        with open(self.log.name) as f:
            return f.read()

    def wait_text(self, pattern, timeout=5.0, start=0):
        """Poll for `pattern` in what it printed from `start` (from that line's beginning)."""
        rx = re.compile(pattern, re.M)

        def find():
            gone = self.proc.poll() is not None   # read after this: nothing more will come
            text = self.text()
            return rx.search(text, text.rfind("\n", 0, start) + 1) or (None if gone else False)
        return poll_until(lambda: find() is not False, timeout) and find()

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = "hung"
        if self.proc.stdin:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        if self in Proc.live:
            Proc.live.remove(self)
        return rc


class Server(Proc):
    def __init__(self, kind, tmp, *args, sock=None, foreground=True, **kw):
        self.kind = kind
        self.foreground = foreground
        self.sock = sock or os.path.join(tmp, f"{kind}.sock")
        argv = [SERVERS[kind]] + (["-F"] if foreground else []) + ["-S", self.sock, *args]
        super().__init__(tmp, argv, name=f"server-{kind}", **kw)

    def ready(self, timeout=5.0):
        """The socket is there (and, in the foreground, the server still running)."""
        def up():
            return (os.path.exists(self.sock) and stat.S_ISSOCK(os.lstat(self.sock).st_mode)
                    and listening(self.sock))

        def failed():  # a daemon's starting process exits 0 once it is up
            rc = self.proc.poll()
            return rc is not None and (self.foreground or rc != 0)
        poll_until(lambda: failed() or up(), timeout)
        return not failed() and up()


class Names:
    """Unique /dev/shm names; whatever is left is unlinked at exit."""

    def __init__(self):
        self.used = []

    def __call__(self, tag):
        n = f"ivshmem-conf-{os.getpid()}-{len(self.used)}-{tag}"
        self.used.append(n)
        return n

    def cleanup(self):
        for n in self.used:
            try:
                os.unlink(f"/dev/shm/{n}")
            except FileNotFoundError:
                pass


shm_name = Names()


def exists(path):
    return os.path.lexists(path)


def ring(fd):
    os.write(fd, struct.pack("=Q", 1))


def drain(fd):
    try:
        return struct.unpack("=Q", os.read(fd, 8))[0]
    except BlockingIOError:
        return 0


# ---------------------------------------------------------------------------------------
# Protocol scenarios: the bytes each socket receives
# ---------------------------------------------------------------------------------------
def protocol_run(kind, tmp):
    """Three peers join, two leave, the server stops: everything each socket received."""
    r = {}
    s = Server(kind, tmp, "-M", shm_name("proto"), "-l", "1M", "-n", str(VEC))
    peers = []
    try:
        assert s.ready(), f"{kind} server did not start: {s.text()}"
        for i in range(3):
            p = Peer(s.sock)
            p.greeting(VEC, i)
            peers.append(p)
            # every existing peer already holds the newcomer's join notice
            r[f"join {i}: queued at existing peers when the newcomer holds its vectors"] = \
                [shape(q.pending()) for q in peers[:i]]
        a, b, c = peers
        r["greeting of the 1st, 2nd and 3rd peer"] = [shape(p.msgs[:3 + VEC * (i + 1)])
                                                     for i, p in enumerate(peers)]
        st = os.fstat(a.shm_fd())
        r["shm fd: size"] = st.st_size
        # c leaves by closing; b leaves by sending a byte (any data drops a client)
        c.close()
        r["leave by close: notices"] = [shape(a.read(1)), shape(b.read(1))]
        b.sock.send(b"x")
        r["leave by sending a byte: notices; the sender is closed"] = [shape(a.read(1)),
                                                                       shape(b.until_eof(2))]
        b.close()
        d = Peer(s.sock)
        d.greeting(VEC, 1)
        r["IDs are not reused: the next peer after 0,1,2 (1 and 2 gone)"] = d.own_id()
        e = Peer(s.sock)
        e.greeting(VEC, 2)
        a.read(VEC * 2)
        d.read(VEC)
        peers = [a, d, e]
        rc = s.stop()
        r["SIGTERM: exit status"] = rc
        r["leave notices on shutdown"] = [shape(p.until_eof(3)) for p in peers]
    finally:
        for p in peers:
            p.close()
        s.stop()
    return r


def protocol_scenarios(tmp):
    got = {k: protocol_run(k, tmp) for k in ("qemu", "ours")}
    q, o = got["qemu"], got["ours"]
    want_greetings = [model_greeting(i, list(range(i)), VEC) for i in range(3)]
    ok(q["greeting of the 1st, 2nd and 3rd peer"] == want_greetings,
       "QEMU's server sends the greetings of the protocol model", q)
    for i in range(3):
        name = f"join {i}: queued at existing peers when the newcomer holds its vectors"
        ok(q[name] == [[(i, "efd")] * VEC] * i, f"QEMU's server: {name}", q[name])
    ok(q["shm fd: size"] == MIB, "QEMU's server: the shm fd is 1 MiB with -l 1M")
    for name in q:
        if name == "leave notices on shutdown":
            continue
        compare(name, q[name], o[name])
    # Shutdown: QEMU drops peers in order; the model for it and the deliberate one for ours.
    ids = [0, 3, 4]
    qemu_model = [[(ids[j], None) for j in range(i)] for i in range(3)]
    ours_model = [sorted((p, None) for p in ids if p != me) for me in ids]
    sd_q = q["leave notices on shutdown"]
    sd_o = [sorted(x) for x in o["leave notices on shutdown"]]
    ok(sd_q == qemu_model, "QEMU's server on SIGTERM: later peers hear of earlier ones", sd_q)
    compare("leave notices on shutdown", "later peers hear of earlier ones",
            "every peer hears of every other" if sd_o == ours_model else sd_o)


def eventfd_routing(kind, tmp):
    s = Server(kind, tmp, "-M", shm_name("route"), "-l", "1M", "-n", str(VEC))
    peers = []
    bad = []
    try:
        assert s.ready(), s.text()
        for i in range(3):
            p = Peer(s.sock)
            p.greeting(VEC, i)
            peers.append(p)
            for q in peers[:i]:
                q.read(VEC)
        for holder in peers:
            for owner in peers:
                for v in range(VEC):
                    ring(holder.vectors_of(owner.own_id())[v])
                    woke = [(o.own_id(), w) for o in peers for w in range(VEC)
                            if drain(o.vectors_of(o.own_id())[w])]
                    if woke != [(owner.own_id(), v)]:
                        bad.append((holder.own_id(), owner.own_id(), v, woke))
    finally:
        for p in peers:
            p.close()
        s.stop()
    return bad


def inq(sock):
    """Bytes queued on a socket (FIONREAD): looks at the queue without taking from it."""
    buf = array.array("i", [0])
    fcntl.ioctl(sock.fileno(), termios.FIONREAD, buf, True)
    return buf[0]


def join_order(kind, tmp, idle=200, joins=20):
    """With `idle` peers present, `joins` newcomers one after another. The moment a newcomer's
    socket holds its whole greeting (own vectors last), how many existing peers had nothing
    queued yet, i.e. had not been sent the join notice. QEMU's order makes that 0; the
    reverse order (newcomer first, then the broadcast) shows as a window of about a
    broadcast's length, which watching the queues with FIONREAD catches."""
    s = Server(kind, tmp, "-M", shm_name("order"), "-l", "1M", "-n", "1")
    peers, late = [], 0
    try:
        assert s.ready(), s.text()
        for i in range(idle):
            p = Peer(s.sock)
            p.greeting(1, i)
            for q in peers:
                q.read(1)
                q.forget()
            p.forget()
            peers.append(p)
        greeting = 8 * (3 + len(peers) + 1)
        for _ in range(joins):
            n = Peer(s.sock)
            end = deadline_after(5)
            while inq(n.sock) < greeting and time.monotonic() < end:
                pass
            queued = [inq(q.sock) for q in peers]
            late += queued.count(0)
            n.greeting(1, len(peers))
            n.close()
            for q in peers:
                q.read(2)   # its join and leave notices
                q.forget()
    finally:
        for p in peers:
            p.close()
        s.stop()
    return late


def zero_vectors(kind, tmp):
    s = Server(kind, tmp, "-M", shm_name("n0"), "-l", "1M", "-n", "0")
    a = b = None
    try:
        if not s.ready():
            return f"refused: {s.text().strip()}"
        a = Peer(s.sock)
        ga = shape(a.greeting(0, 0))
        b = Peer(s.sock)
        gb = shape(b.greeting(0, 1))
        b.close()
        return [ga, gb, shape(a.read(1, 2))]
    finally:
        for p in (a, b):
            if p:
                p.close()
        s.stop()


# ---------------------------------------------------------------------------------------
# Mixed clients: QEMU's client, ours, the CLI
# ---------------------------------------------------------------------------------------
class Interactive(Proc):
    def __init__(self, kind, tmp, sock):
        argv = [CLIENTS[kind], "-S", sock] + (["-v"] if kind == "ours" else [])
        if STDBUF and kind == "qemu":   # ours flushes; an LD_PRELOAD would upset ASan
            argv = [STDBUF, "-o0", "-e0"] + argv
        super().__init__(tmp, argv, stdin=subprocess.PIPE, name=f"client-{kind}")
        self.kind = kind

    def send(self, line):
        try:
            self.proc.stdin.write((line + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # it exited: what it printed says why

    def dump(self, timeout=2.0):
        """(own ID, other peers' IDs) from 'dump' ('help' after it marks its end), or None."""
        mark = len(self.text())
        self.send("dump;help")
        m = self.wait_text(r"our_id = (-?\d+)\n((?:.*\n)*?)(?:cmd> )*dump: dump peers", timeout,
                           mark)
        if not m:
            return None
        return int(m.group(1)), {int(x) for x in re.findall(r"peer_id = (\d+)", m.group(2))}

    def knows(self, peer, timeout=5.0):
        """Poll with 'dump' until the client lists `peer`."""
        return bool(poll_until(lambda: (self.dump() or (0, set()))[1] >= {peer}, timeout, 0))

    def new_peer(self, known, timeout=5.0):
        """Poll with 'dump' until the client lists a peer not in `known`; its ID or None."""
        def new():
            d = self.dump()
            return d and (d[1] - set(known))
        got = poll_until(new, timeout, 0)
        return min(got) if got else None


PROMPT = r"^(?:cmd> )*"


def qemu_notified(c, vector, start):
    """QEMU's client prints its own ID as the sender: 'receive notification from peer_id=ME'."""
    return c.wait_text(rf"{PROMPT}receive notification from peer_id=\d+ vector={vector}$", 5, start)


def ours_notified(c, vector, start):
    return c.wait_text(rf"{PROMPT}received event on vector {vector} ", 5, start)


def cli(*args, timeout=10):
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout)


def mixed_clients(kind, tmp):
    """QEMU's client, ours and the CLI on one server; the steps that did not work."""
    fails = []

    t = [time.monotonic()]

    def step(cond, what):
        if not cond:
            fails.append(what)
        if os.environ.get("IVSHMEM_CONFORMANCE_DEBUG"):
            diag(f"{time.monotonic() - t[0]:.2f}s {'ok' if cond else 'FAIL'} {what}")
            t[0] = time.monotonic()
        return cond

    s = Server(kind, tmp, "-M", shm_name("mixed"), "-l", "1M", "-n", str(VEC))
    qc = oc = waiter = None
    try:
        assert s.ready(), s.text()
        target = "server:" + s.sock
        qc = Interactive("qemu", tmp, s.sock)
        step(qc.wait_text(r"listen on server socket"), "QEMU's client connects")
        qd = qc.dump()
        oc = Interactive("ours", tmp, s.sock)
        m = oc.wait_text(r"connected to .* as peer (\d+)")
        if not step(qd and m, "our client connects and says its ID"):
            return fails
        qid, oid = qd[0], int(m.group(1))
        step(qc.knows(oid), "QEMU's client hears of our client")
        waiter = subprocess.Popen([CLI, "wait", "--timeout", "20000", target, "1"],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wid = qc.new_peer({oid})
        step(wid is not None, "QEMU's client hears of 'ivshmem wait server:SOCK 1'")
        qc.send(f"int {wid} 1")
        try:
            out, _ = waiter.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            waiter.kill()
            out, _ = waiter.communicate()
        step(waiter.returncode == 0 and "vector 1" in out,
             f"QEMU's client 'int {wid} 1' wakes 'ivshmem wait' on vector 1 ({out.strip()})")
        mark = len(oc.text())
        qc.send(f"int {oid} 0;int {oid} 1")
        step(ours_notified(oc, 0, mark) and ours_notified(oc, 1, mark),
             f"QEMU's client 'int {oid} 0;int {oid} 1' rings both vectors of our client")
        mark = len(qc.text())
        oc.send(f"int {qid} 1")
        step(qemu_notified(qc, 1, mark), f"our client 'int {qid} 1' rings QEMU's client vector 1")
        mark = len(qc.text())
        r = cli("notify", target, str(qid), "0")
        step(r.returncode == 0 and qemu_notified(qc, 0, mark),
             f"'ivshmem notify {target} {qid} 0' rings QEMU's client ({r.stderr.strip()})")
        step(qc.dump() == (qid, {oid}), "QEMU's client saw the CLI peers leave")
        mark = len(oc.text())
        qc.send("int all")
        step(ours_notified(oc, 0, mark) and ours_notified(oc, 1, mark),
             "QEMU's client 'int all' rings every vector of our client")
        mark = len(qc.text())
        oc.send(f"int {qid} all")
        step(qemu_notified(qc, 0, mark) and qemu_notified(qc, 1, mark),
             f"our client 'int {qid} all' rings both vectors of QEMU's client")
        mark, omark = len(qc.text()), len(oc.text())
        oc.send("int all;dump")
        step(qemu_notified(qc, 0, mark) and qemu_notified(qc, 1, mark)
             and oc.wait_text(rf"our_id = {oid}$", 5, omark), "our client 'int all;dump'")

        # The server goes away and comes back: both interactive clients reconnect.
        qmark, omark = len(qc.text()), len(oc.text())
        step(s.stop() == 0, "the server stops on SIGTERM")
        step(qc.wait_text(r"disconnected from server", 5, qmark),
             "QEMU's client says it lost the server")
        step(oc.wait_text(r"disconnected from server", 5, omark),
             "our client says it lost the server")
        s = Server(kind, tmp, "-M", shm_name("mixed2"), "-l", "1M", "-n", str(VEC), sock=s.sock)
        step(s.ready(), "the server restarts on the same socket")
        step(qc.wait_text(r"listen on server socket", 5, qmark), "QEMU's client is back")
        m = oc.wait_text(r"connected to .* as peer (\d+)", 5, omark)
        if step(m, "our client is back and says its new ID"):
            oid = int(m.group(1))
            step(qc.knows(oid), "QEMU's client hears of our client again")
            mark = len(oc.text())
            qc.send(f"int {oid} 1")
            step(ours_notified(oc, 1, mark), "and rings it after the reconnect")
        oc.send("quit")
        try:
            rc = oc.proc.wait(5)
        except subprocess.TimeoutExpired:
            rc = "hung"
        step(rc == 0, f"our client: 'quit' exits 0 ({rc})")
    finally:
        if waiter and waiter.poll() is None:
            waiter.kill()
            waiter.wait()
        for c in (qc, oc):
            if c:
                c.stop()
                if fails:
                    fails.append(f"--- {c.kind}'s client said (last lines):")
                    fails += c.text().splitlines()[-15:]
        s.stop()
    return fails


def client_syntax(tmp):
    """The same interactive command lines to QEMU's client and to ours, on our server: the
    doorbells that arrive at a raw peer must be the same."""
    lines = ["int 0 1", "int 0 0;int 0 1", "int 0 all", "int all", "int  0   1",
             "int 0 1;dump;help", "bogus;int 0 0", ";;int 0 1;;", "int 0 0\rint 0 1",
             "int0 1", "int 0", "int 0 xyz", "int 0 1 junk", "int 0 +1", "int\t0\t1",
             "int 9 0", "int 0 7", "int -1 0", "int 0 -1", "int 99999999999 0", "INT 0 0",
             " int 0 0", "int all ", "int all;int 0 0", "?", "dump", "help"]
    result = {}
    s = Server("ours", tmp, "--memfd", "-l", "1M", "-n", str(VEC))
    rx = None
    try:
        assert s.ready(), s.text()
        rx = Peer(s.sock)
        rx.greeting(VEC, 0)
        for kind in ("qemu", "ours"):
            c = Interactive(kind, tmp, s.sock)
            rx.read(VEC)          # its join notice: it is connected
            c.knows(0)            # and has processed rx's eventfds (QEMU's reads them late)
            got = []
            for line in lines:
                mark = len(c.text())
                c.send(line)
                c.send("dump")    # a marker: the line before has been handled
                c.wait_text(rf"{PROMPT}our_id = ", 5, mark)
                own = rx.vectors_of(rx.own_id())
                got.append([drain(own[v]) for v in range(VEC)])
            result[kind] = got
            c.stop()
            rx.read(1)            # its leave notice
    finally:
        if rx:
            rx.close()
        s.stop()
    for i, line in enumerate(lines):
        compare(f"client line {line!r}: doorbells (per vector) that arrive",
                result["qemu"][i], result["ours"][i])


# ---------------------------------------------------------------------------------------
# Flags, files and modes
# ---------------------------------------------------------------------------------------
def start_probe(kind, tmp, args, foreground=True, cwd=None, umask=None):
    """Start with args; 'starts' plus what a peer gets, or 'refused'/'exit N'."""
    s = Server(kind, tmp, *args, foreground=foreground, cwd=cwd, umask=umask)
    try:
        if not s.ready(3):
            rc = s.stop()
            return {"result": "refused" if rc in (1, 2) else f"exit {rc}", "rc": rc}
        p = Peer(s.sock)
        p.read(3, 3)
        p.read(256, 0.2)   # own vectors: as many as arrive until it is quiet
        out = {"result": "starts", "size": os.fstat(p.shm_fd()).st_size if p.shm_fd() >= 0 else None,
               "vectors": len(p.vectors_of(p.own_id()))}
        p.close()
        out["rc"] = s.stop()
        return out
    finally:
        s.stop()


def flags(tmp):
    def both(args_fn):
        return {k: start_probe(k, tmp, args_fn(k)) for k in ("qemu", "ours")}

    accepted = [
        ("-M /NAME (POSIX-style leading slash)", lambda k: ["-M", "/" + shm_name("slash")]),
        ("-n 0", lambda k: ["-M", shm_name("n0"), "-n", "0"]),
        ("-l 1.5M (a fraction: rounded up to 2M)", lambda k: ["-M", shm_name("frac"), "-l", "1.5M"]),
        ("-l 1m (lower-case suffix)", lambda k: ["-M", shm_name("lower"), "-l", "1m"]),
        ("-l 1048576 (bytes)", lambda k: ["-M", shm_name("bytes"), "-l", "1048576"]),
        ("-l 3M (rounded up to 4M)", lambda k: ["-M", shm_name("3m"), "-l", "3M"]),
        ("-n 64", lambda k: ["-M", shm_name("n64"), "-n", "64"]),
        ("extra positional arguments", lambda k: ["-M", shm_name("extra"), "extra", "args"]),
        ("-v with -F", lambda k: ["-v", "-M", shm_name("verbose")]),
        ("-m DIR", lambda k: ["-m", tmp, "-l", "2M"]),
    ]
    for name, fn in accepted:
        r = both(fn)
        ok(r["qemu"]["result"] == "starts", f"QEMU's server accepts {name}", r["qemu"])
        compare(name, {k: v for k, v in r["qemu"].items()},
                {k: v for k, v in r["ours"].items()})
    # -M /NAME means /dev/shm/NAME, and while running
    res = {}
    for kind in ("qemu", "ours"):
        n = shm_name("slash2")
        s = Server(kind, tmp, "-M", "/" + n, "-l", "1M")
        res[kind] = s.ready() and exists(f"/dev/shm/{n}") and os.stat(f"/dev/shm/{n}").st_size
        s.stop()
    compare("-M /NAME: the object is /dev/shm/NAME while running", res["qemu"], res["ours"])

    # -F -p PATH: QEMU ignores the pid file in the foreground
    res = {}
    for kind in ("qemu", "ours"):
        pid_ok = os.path.join(tmp, f"fg-{kind}.pid")
        pid_bad = os.path.join(tmp, "no-such-dir", "x.pid")
        a = start_probe(kind, tmp, ["-M", shm_name("fgp"), "-p", pid_ok])
        b = start_probe(kind, tmp, ["-M", shm_name("fgp2"), "-p", pid_bad])
        res[kind] = (a["result"], exists(pid_ok), b["result"])
    compare("-F -p PATH: started, pid file written?, unwritable pid file", res["qemu"], res["ours"])

    refused = [
        ("-x (unknown flag)", ["-x"]),
        ("-l abc", ["-l", "abc"]),
        ("-n -1", ["-n", "-1"]),
        ("-n x", ["-n", "x"]),
    ]
    codes = {"qemu": set(), "ours": set()}
    for name, args in refused:
        r = {k: start_probe(k, tmp, ["-M", shm_name("bad")] + args) for k in ("qemu", "ours")}
        ok(r["qemu"]["result"] == "refused", f"QEMU's server refuses {name}", r["qemu"])
        ok(r["ours"]["result"] == "refused", f"ours refuses {name}", r["ours"])
        for k in r:
            codes[k].add(r[k]["rc"])
    compare("usage error exit status", min(codes["qemu"]), max(codes["ours"]),
            f"QEMU's: {codes['qemu']}, ours: {codes['ours']}")
    for name, args in (("-n 65 (more than QEMU's 64 vectors)", ["-n", "65"]),
                       ("-l 2G (more than 1 GiB)", ["-l", "2G"]),
                       ("-l 0", ["-l", "0"])):
        r = {k: start_probe(k, tmp, ["-M", shm_name("ext")] + args)["result"]
             for k in ("qemu", "ours")}
        compare(name, r["qemu"], r["ours"])
    # -v without -F: QEMU refuses before daemonizing
    r = {}
    for kind in ("qemu", "ours"):
        pidf = os.path.join(tmp, f"vd-{kind}.pid")
        n = shm_name("vd")
        res = start_probe(kind, tmp, ["-v", "-M", n, "-p", pidf], foreground=False)
        r[kind] = res["result"]
        stop_daemon(pidf)
        kill_marked(n)
    compare("-v without -F", r["qemu"], r["ours"])


def kill_marked(marker):
    """SIGKILL any process whose command line holds `marker` (a unique shm name): a daemon
    whose pid file is not where it should be (the defect being tested) must not outlive us."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read() and int(pid) != os.getpid():
                    os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError):
            pass


def stop_daemon(pidfile, timeout=5.0):
    try:
        pid = int(open(pidfile).read().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True

    def gone():
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().split(") ")[1][0] == "Z"
        except FileNotFoundError:
            return True
    if not poll_until(gone, timeout):
        os.kill(pid, signal.SIGKILL)
        return False
    return True


def mode(path):
    try:
        return stat.S_IMODE(os.lstat(path).st_mode)
    except FileNotFoundError:
        return None


def files_and_modes(tmp):
    new_obj, pre_obj, stale, daemon, foreign = {}, {}, {}, {}, {}
    for kind in ("qemu", "ours"):
        # A fresh object under umask 002
        n = shm_name("files")
        s = Server(kind, tmp, "-M", n, "-l", "1M", umask=0o002)
        up = s.ready()
        r = {"starts": up, "socket mode": mode(s.sock), "shm mode": mode(f"/dev/shm/{n}"),
             "shm size": os.stat(f"/dev/shm/{n}").st_size if exists(f"/dev/shm/{n}") else None}
        r["SIGTERM exit"] = s.stop()
        r["after SIGTERM: socket"] = exists(s.sock)
        r["after SIGTERM: /dev/shm object"] = exists(f"/dev/shm/{n}")
        new_obj[kind] = r

        # A pre-existing 0660 object, smaller than asked, with contents
        n = shm_name("pre")
        fd = os.open(f"/dev/shm/{n}", os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o660)
        os.fchmod(fd, 0o660)
        os.ftruncate(fd, 64 << 10)
        os.pwrite(fd, b"precious", 0)
        os.close(fd)
        s = Server(kind, tmp, "-M", n, "-l", "1M", umask=0o002)
        r = {"starts": s.ready()}
        if r["starts"]:
            r["mode"] = mode(f"/dev/shm/{n}")
            p = Peer(s.sock)
            p.read(3 + 1)
            st = os.fstat(p.shm_fd())
            r["size a peer gets"] = st.st_size
            with mmap.mmap(p.shm_fd(), 8, mmap.MAP_SHARED, mmap.PROT_READ) as m:
                r["old contents seen by a peer"] = m[:8] == b"precious"
            p.close()
        r["SIGTERM exit"] = s.stop()
        r["after SIGTERM: /dev/shm object"] = exists(f"/dev/shm/{n}")
        pre_obj[kind] = r

        # Another user's object: QEMU's server (as root) adopts it
        if os.geteuid() == 0:
            n = shm_name("foreign")
            fd = os.open(f"/dev/shm/{n}", os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
            os.fchown(fd, 65534, 65534)
            os.close(fd)
            foreign[kind] = start_probe(kind, tmp, ["-M", n, "-l", "1M"])["result"]

        # A stale socket file
        path = os.path.join(tmp, f"stale-{kind}.sock")
        dead = socket.socket(socket.AF_UNIX)
        dead.bind(path)
        dead.close()
        stale[kind] = _stale(kind, tmp, path)

        # Daemon mode, relative paths, as QEMU's docs show it
        d = os.path.join(tmp, f"daemon-{kind}")
        os.mkdir(d)
        n = shm_name("daemon")
        s = Server(kind, tmp, "-p", "rel.pid", "-M", n, "-l", "1M", sock="rel.sock",
                   foreground=False, cwd=d, umask=0o002)
        try:
            rc = s.proc.wait(5)
        except subprocess.TimeoutExpired:
            rc = "did not return"
        pidf = os.path.join(d, "rel.pid")
        sockf = os.path.join(d, "rel.sock")
        r = {"starting process exit": rc,
             "pid file in the working directory": bool(poll_until(lambda: exists(pidf), 3)),
             "socket in the working directory": bool(poll_until(lambda: exists(sockf), 3))}
        if exists(sockf):
            p = Peer(sockf)
            r["serves"] = len(p.read(3)) == 3
            p.close()
        r["SIGTERM: the daemon ends"] = stop_daemon(pidf)
        kill_marked(n)
        r["after SIGTERM: socket"] = exists(sockf)
        r["after SIGTERM: pid file"] = exists(pidf)
        r["after SIGTERM: /dev/shm object"] = exists(f"/dev/shm/{n}")
        s.stop()
        daemon[kind] = r

    for key in new_obj["qemu"]:
        name = {"socket mode": "socket mode under umask 002",
                "shm mode": "new /dev/shm object mode under umask 002"}.get(key, f"-M NAME: {key}")
        compare(name, new_obj["qemu"][key], new_obj["ours"][key])
    for key in pre_obj["qemu"]:
        compare(f"pre-existing 0660 /dev/shm object: {key}", pre_obj["qemu"][key],
                pre_obj["ours"].get(key))
    compare("a stale socket file", stale["qemu"], stale["ours"])
    if foreign:
        compare("an existing /dev/shm/NAME of another user", foreign["qemu"], foreign["ours"])
    else:
        diag("not root: another user's /dev/shm object not checked")
        observed_diffs.add("an existing /dev/shm/NAME of another user")
    hugetlbfs(tmp)
    for key in daemon["qemu"]:
        compare(f"daemon mode, -p rel.pid -S rel.sock: {key}", daemon["qemu"][key],
                daemon["ours"].get(key))


def hugetlbfs(tmp):
    """-m on hugetlbfs with -l 1M: both size to the next power of two the filesystem takes."""
    mounts = [line.split()[1] for line in open("/proc/mounts") if line.split()[2] == "hugetlbfs"]
    free = int(re.search(r"HugePages_Free:\s+(\d+)", open("/proc/meminfo").read()).group(1))
    if not mounts or free < 2 or not os.access(mounts[0], os.W_OK):
        diag(f"no writable hugetlbfs with 2 free huge pages ({mounts}, {free} free): -m on "
             "hugetlbfs not compared")
        return
    r = {k: start_probe(k, tmp, ["-m", mounts[0], "-l", "1M"]) for k in ("qemu", "ours")}
    compare(f"-m {mounts[0]} -l 1M (hugetlbfs)", r["qemu"], r["ours"])


def _stale(kind, tmp, path):
    s = Server(kind, tmp, "-M", shm_name("stale"), sock=path)
    up = s.ready(2) and poll_until(lambda: _connects(path), 2)
    s.stop()
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    return "starts" if up else "refused"


def _connects(path):
    try:
        p = Peer(path, timeout=0.2)
    except OSError:
        return False
    got = len(p.read(3, 1)) == 3
    p.close()
    return got


def docs_table(all_ran):
    """DELIBERATE and the comparison table of docs/server.md say the same."""
    try:
        text = open(DOCS).read()
    except OSError as e:
        ok(False, f"docs/server.md is readable ({e})")
        return
    section = text.split("## Compared with QEMU's example server", 1)[-1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines()
            if line.startswith("| ") and not line.startswith("| |") and "---" not in line]
    ok(rows, "docs/server.md has the table 'Compared with QEMU's example server'")
    for name, d in DELIBERATE.items():
        ok(any(re.search(d["doc"], row) for row in rows),
           f"docs/server.md's comparison table has the deliberate difference '{name}'",
           f"no row matches /{d['doc']}/; what it must say: {d['why']}")
    for row in rows:
        first = row.split("|")[1].strip()
        ok(any(re.search(d["doc"], row) for d in DELIBERATE.values())
           or any(first.startswith(k) for k in TESTED_ELSEWHERE),
           f"comparison table row '{first}' is a deliberate difference checked here or "
           "named in TESTED_ELSEWHERE", row)
    stale = set(DELIBERATE) - observed_diffs
    if all_ran:
        ok(not stale, "every difference listed as deliberate was checked by a scenario", stale)


def routing_and_order(tmp):
    for kind in ("qemu", "ours"):
        bad = eventfd_routing(kind, tmp)
        ok(not bad, f"[{kind}] every holder's copy of (peer, vector) wakes exactly that one", bad)
    late = {k: join_order(k, tmp) for k in ("qemu", "ours")}
    ok(late["qemu"] == 0, "QEMU's server: every existing peer has the join notice queued "
       "before a newcomer holds its own vectors (200 idle peers, 20 joins)", late)
    compare("join notices not yet queued when a newcomer held its vectors (of 4000)",
            late["qemu"], late["ours"])
    z = {k: zero_vectors(k, tmp) for k in ("qemu", "ours")}
    ok(z["qemu"] == [model_greeting(0, [], 0), model_greeting(1, [0], 0), [(1, None)]],
       "QEMU's server with -n 0: greetings without eventfds, leave notices as usual", z)
    compare("-n 0: what two peers receive", z["qemu"], z["ours"])


def mixed(tmp):
    for kind in ("qemu", "ours"):
        fails = mixed_clients(kind, tmp)
        ok(not fails, f"[{kind} server] QEMU's client, our client and the ivshmem CLI ring "
           "each other, and both interactive clients reconnect", "\n".join(fails))


# Scenario groups; IVSHMEM_CONFORMANCE_ONLY=mixed,flags runs a subset (for debugging; the
# docs check then only covers what ran).
GROUPS = {
    "protocol": protocol_scenarios,
    "routing": routing_and_order,
    "mixed": mixed,
    "syntax": client_syntax,
    "flags": flags,
    "files": files_and_modes,
}


def main():
    only = [g for g in os.environ.get("IVSHMEM_CONFORMANCE_ONLY", "").split(",") if g]
    tmp = tempfile.mkdtemp(prefix="ivshmem-conf-")
    t0 = time.monotonic()
    try:
        for name, fn in GROUPS.items():
            if only and name not in only:
                continue
            t1 = time.monotonic()
            try:
                fn(tmp)
            except Exception as e:  # a broken scenario is a failure, never a crash without TAP
                import traceback
                ok(False, f"{name}: the scenarios ran to the end ({type(e).__name__}: {e})",
                   traceback.format_exc())
            finally:
                for p in list(Proc.live):
                    p.stop(signal.SIGKILL)
                diag(f"{name}: {time.monotonic() - t1:.1f} s")
        docs_table(all_ran=not only)
    finally:
        for p in list(Proc.live):
            p.stop(signal.SIGKILL)
        shm_name.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    diag(f"took {time.monotonic() - t0:.1f} s")


main()
print(f"1..{count}")
sys.exit(1 if failed else 0)
