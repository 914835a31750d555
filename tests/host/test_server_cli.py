#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ivshmem-server's command line and startup: bad flags and sizes (clear error, exit 2,
no crash), power-of-two rounding with a log line, 64 GiB, the three backings, modes,
stale socket replaced but a live server never displaced, daemon mode with its pid
file, SIGINT. Also ivshmem-client's script mode and exit codes.

Usage: test_server_cli.py IVSHMEM_SERVER IVSHMEM_CLIENT
"""
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import taplib  # noqa: E402
from taplib import ok  # noqa: E402

SERVER, CLIENT = sys.argv[1], sys.argv[2]


def run(args, timeout=10, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)


def wait_socket(path, proc=None, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.exists(path) and stat.S_ISSOCK(os.stat(path).st_mode):
            return True
        if proc and proc.poll() is not None:
            return False
        time.sleep(0.01)
    return False


class Server:
    """ivshmem-server -F in the background, stderr captured to a file."""

    def __init__(self, tmp, *args, sock=None, env_extra=None):
        self.sock = sock or os.path.join(tmp, "sock")
        self.log = open(os.path.join(tmp, f"server-{time.monotonic_ns()}.log"), "w+")
        self.proc = subprocess.Popen([SERVER, "-F", "-S", self.sock, *args],
                                     stderr=self.log, stdout=subprocess.DEVNULL,
                                     env={**os.environ, **(env_extra or {})})
        self.ready = wait_socket(self.sock, self.proc)

    def wait_log(self, needle, timeout=5.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.proc.poll() is None:
            if needle in self.text():
                return True
            time.sleep(0.01)
        return needle in self.text()

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -1

    def text(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()


def bad_usage(tmp):
    sock = os.path.join(tmp, "bad.sock")
    cases = [
        (["-l", "0"], "too small"),
        (["-l", "abc"], "not a size"),
        (["-l", "4Q"], "not a size"),
        (["-l", "-1"], "not a size"),
        (["-l", "99999999999999999999"], "too large"),
        (["-l", "16E"], "too large"),
        (["-n", "257"], "-n"),
        (["-n", "x"], "-n"),
        (["-M", "a/b"], "POSIX shm name"),
        (["-M", ""], "POSIX shm name"),
        (["--socket-mode", "999"], "octal mode"),
        (["--socket-group", "no-such-group-xyz"], "no group"),
        (["--max-peers", "0"], "--max-peers"),
        (["--max-peers", "65537"], "--max-peers"),
        (["--log", "kafka"], "neither"),
        (["--bogus"], "unrecognized"),
        (["--memfd", "-M", "x"], "cannot be combined"),
        (["-m", "/tmp", "--memfd"], "cannot be combined"),
    ]
    for args, want in cases:
        r = run([SERVER, "-F", "-S", sock, *args])
        ok(r.returncode == 2 and want in r.stderr and "Try 'ivshmem-server --help'" in r.stderr,
           f"{' '.join(args) or 'empty'}: exit 2 with '{want}'", r.stderr)
    ok(not os.path.exists(sock), "no socket left behind by failed starts")
    r = run([SERVER, "-F", "-S", "/tmp/" + "x" * 120, "--memfd"])
    ok(r.returncode == 1 and "too long" in r.stderr, "socket path over 107 bytes: exit 1, 'too long'",
       r.stderr)
    r = run([SERVER, "-F", "-S", sock, "-m", "/nonexistent-dir"])
    ok(r.returncode == 1 and "/nonexistent-dir" in r.stderr, "-m missing dir: exit 1 naming it",
       r.stderr)
    r = run([SERVER, "--help"])
    ok(r.returncode == 0 and "-S, --socket" in r.stdout and "/tmp/ivshmem_socket" in r.stdout,
       "--help: exit 0, documents -S and QEMU's default socket")
    r = run([SERVER, "-h"])
    ok(r.returncode == 0 and "Usage" in r.stdout, "-h works")
    r = run([SERVER, "--version"])
    ok(r.returncode == 0 and "protocol version 0" in r.stdout, "--version")


def client_info(sock):
    r = run([CLIENT, "-S", sock, "--list"])
    info = {}
    for line in r.stdout.splitlines():
        k, _, v = line.partition(" ")
        info.setdefault(k, []).append(v)
    return r, info


def sizes_and_backings(tmp):
    s = Server(tmp, "--memfd", "-l", "3M")
    ok(s.ready, "server with -l 3M starts")
    r, info = client_info(s.sock)
    ok(info.get("size") == [str(4 << 20)], "3M is rounded up to 4M", r.stdout + r.stderr)
    s.stop()
    ok("rounded up to 4M" in s.text(), "with a log line saying so", s.text())

    s = Server(tmp, "--memfd", "-l", "64G", "-n", "256")
    ok(s.ready, "64G with 256 vectors starts (sparse memfd)", s.text())
    if s.ready:
        r, info = client_info(s.sock)
        ok(info.get("size") == [str(64 << 30)] and info.get("vectors") == ["256"],
           "a host peer maps 64 GiB and has 256 vectors", r.stdout + r.stderr)
    s.stop()

    s = Server(tmp, "--memfd", "-l", "40G")
    if s.ready:
        r, info = client_info(s.sock)
        ok(info.get("size") == [str(64 << 30)], "40G rounds up to 64G", r.stdout + r.stderr)
    else:
        ok(False, "40G starts", s.text())
    s.stop()

    name = f"ivshmem-test-{os.getpid()}"
    s = Server(tmp, "-M", name, "-l", "1M", "--shm-mode", "0640")
    ok(s.ready, "POSIX shm backing (-M) starts")
    st = os.stat(f"/dev/shm/{name}")
    ok(st.st_size == 1 << 20 and stat.S_IMODE(st.st_mode) == 0o640,
       f"/dev/shm/{name}: 1 MiB, mode 0640 (got {oct(stat.S_IMODE(st.st_mode))})")
    sst = os.stat(s.sock)
    ok(stat.S_IMODE(sst.st_mode) == 0o600, "socket mode defaults to 0600")
    s.stop()
    ok(not os.path.exists(f"/dev/shm/{name}"), f"/dev/shm/{name} removed at exit, as QEMU's server does")

    s = Server(tmp, "-m", tmp, "-l", "2M", "--socket-mode", "0660")
    ok(s.ready, "-m DIR backing starts")
    ok(not [f for f in os.listdir(tmp) if f.startswith("ivshmem.")],
       "-m: the file in DIR is already unlinked")
    ok(stat.S_IMODE(os.stat(s.sock).st_mode) == 0o660, "--socket-mode 0660 applied")
    r, info = client_info(s.sock)
    ok(info.get("size") == [str(2 << 20)], "-m: peers get 2 MiB", r.stdout + r.stderr)
    s.stop()


def socket_ownership(tmp):
    path = os.path.join(tmp, "stale.sock")
    # A stale socket: bound once, nobody listening any more.
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(path)
    dead.close()
    s = Server(tmp, "--memfd", sock=path)
    ok(s.wait_log("listening on") and "stale" in s.text(), "a stale socket file is replaced (and logged)", s.text())
    # A live server on the path is never displaced.
    s2 = Server(tmp, "--memfd", sock=path)
    rc = s2.proc.wait(5)
    ok(rc == 1 and "another server is listening" in s2.text(),
       "a second server on a live socket refuses: exit 1", s2.text())
    r, info = client_info(path)
    ok(r.returncode == 0 and info.get("id"), "the first server still serves its socket",
       r.stdout + r.stderr)
    ok(s.stop(signal.SIGINT) == 0, "SIGINT: clean exit 0")
    ok(not os.path.exists(path), "socket removed on exit")
    # A regular file where the socket should go is never removed.
    with open(path, "w") as f:
        f.write("precious")
    r = run([SERVER, "-F", "-S", path, "--memfd"])
    ok(r.returncode == 1 and "not a socket" in r.stderr and open(path).read() == "precious",
       "a regular file at the socket path is left alone: exit 1", r.stderr)
    os.unlink(path)


def socket_appears_listening(tmp):
    """A client that connects the moment the socket file appears is never refused."""
    path = os.path.join(tmp, "race.sock")
    refused, starts = 0, 40
    for _ in range(starts):
        proc = subprocess.Popen([SERVER, "-F", "-S", path, "--memfd"],
                                stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        end = time.monotonic() + 5
        while not os.path.exists(path) and time.monotonic() < end and proc.poll() is None:
            pass
        c = socket.socket(socket.AF_UNIX)
        try:
            c.connect(path)
        except OSError:
            refused += 1
        c.close()
        proc.terminate()
        proc.wait(5)
    ok(refused == 0, f"{starts} starts, a client connecting as soon as the file exists: "
       f"refused {refused} times")
    ok(not [f for f in os.listdir(tmp) if f.startswith("race.sock")],
       "no socket or temporary name left behind")
    # A path with no room for the temporary name is bound in place.
    longdir = os.path.join(tmp, "d" * max(1, 100 - len(tmp) - 8))
    os.mkdir(longdir)
    longpath = os.path.join(longdir, "s" * (107 - len(longdir) - 1))
    s = Server(tmp, "--memfd", sock=longpath)
    r, info = client_info(longpath)
    ok(len(longpath) == 107 and s.ready and r.returncode == 0 and info.get("id"),
       "a 107-byte socket path still works", s.text() + r.stderr)
    s.stop()


def daemon_mode(tmp):
    sock = os.path.join(tmp, "d.sock")
    pidfile = os.path.join(tmp, "d.pid")
    r = run([SERVER, "-S", sock, "-p", pidfile, "--memfd", "--log", "stderr"])
    ok(r.returncode == 0, "daemon mode: the starting process exits 0", r.stderr)
    ok(os.path.exists(pidfile) and wait_socket(sock, timeout=1),
       "pid file and socket exist when it returns")
    pid = int(open(pidfile).read())
    ok(os.getsid(pid) != os.getsid(0), "the daemon left our session")
    r, info = client_info(sock)
    ok(r.returncode == 0, "the daemon serves clients", r.stderr)
    os.kill(pid, signal.SIGTERM)
    for _ in range(200):
        if not os.path.exists(f"/proc/{pid}"):
            break
        time.sleep(0.02)
    ok(os.path.exists(pidfile) and not os.path.exists(sock),
       "SIGTERM: the daemon removes its socket and keeps its pid file (as QEMU's server)")
    r = run([SERVER, "-S", sock, "-p", "/nonexistent-dir/x.pid", "--memfd", "--log", "stderr"])
    ok(r.returncode == 1 and "cannot write pid file" in r.stderr,
       "unwritable pid file: exit 1, and the daemon's error reaches our stderr", r.stderr)
    time.sleep(0.2)
    ok(not os.path.exists(sock), "and no daemon is left holding the socket")


def systemd_integration(tmp):
    import shutil
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    npath = os.path.join(tmp, "notify.sock")
    notify.bind(npath)
    notify.settimeout(5)
    s = Server(tmp, "--memfd", env_extra={"NOTIFY_SOCKET": npath})
    try:
        msg = notify.recv(64)
    except socket.timeout:
        msg = b""
    ok(msg == b"READY=1", f"Type=notify: READY=1 sent to $NOTIFY_SOCKET ({msg!r})")
    s.stop()
    activate = shutil.which("systemd-socket-activate")
    if not activate:
        print("# systemd-socket-activate missing: socket activation not checked")
        return
    if "socket activation: yes" not in run([SERVER, "--version"]).stdout:
        print("# built without libsystemd: socket activation not checked")
        return
    path = os.path.join(tmp, "activated.sock")
    log = open(os.path.join(tmp, "activate.log"), "w+")
    p = subprocess.Popen([activate, "-l", path, SERVER, "-F", "--memfd"], stderr=log,
                         stdout=subprocess.DEVNULL)
    wait_socket(path)
    r, info = client_info(path)
    activated = r.returncode == 0 and info.get("id") == ["0"]
    p.send_signal(signal.SIGTERM)
    p.wait(5)
    log.seek(0)
    text = log.read()
    ok(activated and f"listening on {path} (from systemd)" in text,
       "socket activation: the server serves the socket systemd passed, logs its path", text)


def client_script_mode(tmp):
    s = Server(tmp, "--memfd", "-n", "2")
    waiter = subprocess.Popen([CLIENT, "-S", s.sock, "--wait", "3", "--vector", "1",
                               "--timeout", "5000"], stdout=subprocess.PIPE, text=True)
    for _ in range(300):
        if "peer 0 joined" in s.text():
            break
        time.sleep(0.01)
    r = run([CLIENT, "-S", s.sock, "--wait-peers", "1", "--list", "--notify", "0:1",
             "--notify", "0:all", "--notify", "all"])
    ok(r.returncode == 0 and "peer 0 2" in r.stdout, "client lists peer 0 with 2 vectors",
       r.stdout + r.stderr)
    out, _ = waiter.communicate(timeout=10)
    ok(waiter.returncode == 0 and "vector 1" in out,
       "a waiting client gets its 3 interrupts on vector 1", out)
    r = run([CLIENT, "-S", s.sock, "--wait", "1", "--timeout", "100"])
    ok(r.returncode == 4 and "timed out" in r.stderr, "wait timeout: exit 4", r.stderr)
    r = run([CLIENT, "-S", s.sock, "--notify", "999:0"])
    ok(r.returncode == 1 and "no peer 999" in r.stderr, "notify unknown peer: exit 1", r.stderr)
    r = run([CLIENT, "-S", s.sock, "--notify", "7"])
    ok(r.returncode == 2, "bad --notify spec: exit 2", r.stderr)
    r = run([CLIENT, "-S", s.sock, "--wait-peers", "5", "--timeout", "100"])
    ok(r.returncode == 4, "--wait-peers timeout: exit 4", r.stderr)
    r = run([CLIENT, "-S", os.path.join(tmp, "none.sock"), "--list"])
    ok(r.returncode == 3 and "is it running" in r.stderr, "no server: exit 3", r.stderr)
    r = run([CLIENT, "-S", s.sock], input="help\ndump\nint 0 0\nbogus\n")
    ok(r.returncode == 0 and "int PEER VECTOR" in r.stdout and "our_id" in r.stdout
       and "invalid command" in r.stdout, "interactive help/dump/int/invalid", r.stdout)
    r = run([CLIENT, "--help"])
    ok(r.returncode == 0 and "--wait" in r.stdout, "client --help")
    s.stop()

    s = Server(tmp, "--memfd", "--max-peers", "1")
    holder = subprocess.Popen([CLIENT, "-S", s.sock, "--wait-peers", "9", "--timeout", "3000"],
                              stderr=subprocess.DEVNULL)
    ok(s.wait_log("peer 0 joined"), "--max-peers 1: the first client joins")
    r = run([CLIENT, "-S", s.sock, "--list"])
    ok(r.returncode == 1 and "closed the connection" in r.stderr,
       "the second is refused; the client says the server closed the connection", r.stderr)
    ok("--max-peers" in s.text(), "the server logs why", s.text())
    holder.kill()
    holder.wait()
    s.stop()


with tempfile.TemporaryDirectory(prefix="ivsrv-cli-") as tmp:
    bad_usage(tmp)
    sizes_and_backings(tmp)
    socket_ownership(tmp)
    socket_appears_listening(tmp)
    daemon_mode(tmp)
    systemd_integration(tmp)
    client_script_mode(tmp)
sys.exit(taplib.done())
