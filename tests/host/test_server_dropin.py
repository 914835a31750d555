#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ivshmem-server as a drop-in for QEMU's (issue 11) and its start-up hardening (issue 10):
flags QEMU's server accepts (-M /name, -n 0, operands, -l 1.5M, -F -p), conflicting flags,
sizes no peer could map, /dev/shm objects (ours reused with their mode, another user's
refused, removed at exit unless --keep-shm), daemon mode with relative paths and its errors on
the terminal, one default pid file per socket, hugetlbfs sizes.

Usage: test_server_dropin.py IVSHMEM_SERVER IVSHMEM_CLIENT
"""
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import taplib  # noqa: E402
from taplib import ok  # noqa: E402

SERVER, CLIENT = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])


def run(args, timeout=10, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)


def poll(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def is_sock(path):
    return os.path.exists(path) and stat.S_ISSOCK(os.stat(path).st_mode)


class Server:
    def __init__(self, tmp, *args):
        self.sock = os.path.join(tmp, f"s{time.monotonic_ns()}.sock")
        self.log = open(os.path.join(tmp, f"log{time.monotonic_ns()}"), "w+")
        self.proc = subprocess.Popen([SERVER, "-F", "-S", self.sock, *args], stderr=self.log,
                                     stdout=subprocess.DEVNULL)
        self.ready = poll(lambda: is_sock(self.sock) or self.proc.poll() is not None) \
            and is_sock(self.sock)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(5)

    def text(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()


def size_of(sock):
    r = run([CLIENT, "-S", sock, "--list"])
    for line in r.stdout.splitlines():
        if line.startswith("size "):
            return int(line.split()[1])
    return r.stderr


def shm(name):
    return f"/dev/shm/{name}"


def flags(tmp):
    name = f"ivs-dropin-{os.getpid()}"
    s = Server(tmp, "-M", "/" + name, "-l", "1.5M", "extra", "operands")
    ok(s.ready and os.path.exists(shm(name)), "-M /NAME is /dev/shm/NAME; operands do not stop it",
       s.text())
    ok(size_of(s.sock) == 2 << 20, "-l 1.5M is 1.5 MiB, rounded up to 2 MiB")
    ok("ignoring argument 'extra'" in s.text(), "operands are ignored with a warning", s.text())
    ok(s.stop() == 0 and not os.path.exists(shm(name)),
       "SIGTERM removes /dev/shm/NAME (as QEMU's server does)")
    s = Server(tmp, "-M", name, "--keep-shm")
    ok(s.ready, "--keep-shm starts", s.text())
    ok(s.stop() == 0 and os.path.exists(shm(name)), "--keep-shm leaves /dev/shm/NAME behind")
    os.unlink(shm(name))

    s = Server(tmp, "--memfd", "-n", "0")
    ok(s.ready, "-n 0 starts (QEMU's server takes it)", s.text())
    s.stop()
    pid = os.path.join(tmp, "fg.pid")
    s = Server(tmp, "--memfd", "-p", pid)
    ok(s.ready and not os.path.exists(pid), "-F -p PATH: no pid file in the foreground", s.text())
    s.stop()
    s = Server(tmp, "--memfd", "-p", "/nonexistent-dir/x.pid")
    ok(s.ready, "-F with an unwritable -p still starts (the pid file is ignored)", s.text())
    s.stop()

    sock = os.path.join(tmp, "refused.sock")
    r = run([SERVER, "-F", "-S", sock, "--memfd", "-M", name])
    ok(r.returncode == 2 and "cannot be combined" in r.stderr and not os.path.exists(shm(name)),
       "--memfd with -M: usage error, nothing created", r.stderr)
    r = run([SERVER, "-F", "-S", sock, "--memfd", "-l", "1E"])
    ok(r.returncode == 1 and "cannot map" in r.stderr and not os.path.exists(sock),
       "--memfd -l 1E: refused at start-up with a clear error, no socket left", r.stderr)
    r = run([SERVER, "-F", "-S", sock, "-M", name, "-l", "1E"])
    ok(r.returncode == 1 and not os.path.exists(shm(name)) and not os.path.exists(sock),
       "-M NAME -l 1E: refused, and the object it created is removed", r.stderr)


def shm_objects(tmp):
    name = f"ivs-pre-{os.getpid()}"
    fd = os.open(shm(name), os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o660)
    os.fchmod(fd, 0o660)
    os.pwrite(fd, b"precious", 0)
    os.close(fd)
    s = Server(tmp, "-M", name, "-l", "1M")
    st = os.stat(shm(name))
    ok(s.ready and stat.S_IMODE(st.st_mode) == 0o660 and st.st_size == 1 << 20,
       "our own pre-existing 0660 object: used, sized, its mode left alone", s.text())
    ok("existing object" in s.text(), "and the log says it was reused", s.text())
    s.stop()

    if os.geteuid() != 0:
        print("# SKIP another user's object: needs root to create one")
        return
    fd = os.open(shm(name), os.O_CREAT | os.O_RDWR, 0o666)
    os.fchown(fd, 65534, 65534)
    os.fchmod(fd, 0o666)
    os.close(fd)
    sock = os.path.join(tmp, "other.sock")
    r = run([SERVER, "-F", "-S", sock, "-M", name, "-l", "1M"])
    st = os.stat(shm(name))
    ok(r.returncode == 1 and "belongs to UID 65534" in r.stderr and st.st_size == 0
       and stat.S_IMODE(st.st_mode) == 0o666 and not os.path.exists(sock),
       "another user's /dev/shm/NAME: refused, left untouched, no socket", r.stderr)
    os.unlink(shm(name))
    os.mkdir(shm(name))
    r = run([SERVER, "-F", "-S", sock, "-M", name])
    ok(r.returncode == 1 and os.path.isdir(shm(name)), "a directory at /dev/shm/NAME: refused",
       r.stderr)
    os.rmdir(shm(name))


def daemon(tmp):
    d = os.path.join(tmp, "daemon")
    os.mkdir(d)
    name = f"ivs-daemon-{os.getpid()}"
    r = run([SERVER, "-S", "rel.sock", "-p", "rel.pid", "-M", name, "--log", "stderr"], cwd=d)
    pidf, sockf = os.path.join(d, "rel.pid"), os.path.join(d, "rel.sock")
    ok(r.returncode == 0 and os.path.exists(pidf) and is_sock(sockf),
       "daemon with relative -S and -p: both land in the working directory", r.stderr)
    pid = int(open(pidf).read()) if os.path.exists(pidf) else 0
    if pid:
        os.kill(pid, signal.SIGTERM)
        poll(lambda: not os.path.exists(f"/proc/{pid}"))
    ok(not os.path.exists(sockf) and os.path.exists(pidf) and not os.path.exists(shm(name)),
       "SIGTERM: socket and /dev/shm object removed, pid file kept (as QEMU's server)")

    r = run([SERVER, "-S", os.path.join(d, "x.sock"), "-p", "no-such-dir/x.pid", "--memfd"],
            cwd=d)
    ok(r.returncode == 1 and "cannot write pid file" in r.stderr
       and not os.path.exists(os.path.join(d, "x.sock")),
       "a daemon's start-up error reaches the terminal, exit 1, nothing left", r.stderr)

    if os.geteuid() != 0 or not os.access("/var/run", os.W_OK):
        print("# SKIP default pid files: /var/run is not writable")
        return
    pids = []
    for sockname in ("a.sock", "b-c.sock"):
        sock = os.path.join(d, sockname)
        esc = os.path.abspath(sock).lstrip("/").replace("-", "\\x2d").replace("/", "-")
        pidfile = f"/var/run/ivshmem-server-{esc}.pid"
        r = run([SERVER, "-S", sock, "--memfd"])
        ok(r.returncode == 0 and os.path.exists(pidfile),
           f"daemon without -p: its own pid file {pidfile}", r.stderr)
        if os.path.exists(pidfile):
            pids.append((int(open(pidfile).read()), pidfile))
    ok(len(pids) == 2 and pids[0][0] != pids[1][0], "two daemons, two pid files")
    for pid, pidfile in pids:
        os.kill(pid, signal.SIGTERM)
        poll(lambda: not os.path.exists(f"/proc/{pid}"))
        os.unlink(pidfile)


def hugetlbfs(tmp):
    mnt = os.path.join(tmp, "huge")
    os.mkdir(mnt)
    if run(["mount", "-t", "hugetlbfs", "-o", "pagesize=2M", "none", mnt]).returncode != 0:
        print("# SKIP hugetlbfs: cannot mount one here")
        return
    try:
        s = Server(tmp, "-m", mnt, "-l", "1M")
        ok(s.ready and "using 2097152" in s.text(),
           "-m HUGETLBFS -l 1M: 1 MiB refused by the filesystem, 2 MiB used (as QEMU's server)",
           s.text())
        s.stop()
    finally:
        run(["umount", mnt])


with tempfile.TemporaryDirectory(prefix="ivsrv-dropin-") as tmp:
    flags(tmp)
    shm_objects(tmp)
    daemon(tmp)
    hugetlbfs(tmp)
sys.exit(taplib.done())
