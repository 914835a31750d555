# SPDX-License-Identifier: MIT
"""Two bridged "hosts" for the bridge tests (and the benchmark / VM tests that reuse them).

    from bridgelib import Pair
    with Pair(tools, channels=["x", "y"]) as p:   # TwoHosts (netns.py), a server and a bridge per host
        p.a.peer("x", "--send", "10")             # bridge_peer on host A's region, channel x (Popen)
        p.a.bridge.log()                          # what bridge A logged so far
        p.a.server_target                         # "server:/tmp/.../a.sock"
        p.a.start_bridge(extra=[...])             # (re)start bridge A (stops a running one first)

`channels` are names, or "name:RING:WINDOW" for sizes of their own.
`tools` is a dict: bridge, server, cli (ivshmem), peer, fake (binaries), src (source root). Bridge A listens on
its veth address, port 7100 (peer "B" accept); bridge B dials it (peer "A"). Every channel in
`channels` is carried between the two. The shared secret is written to a 0600 file in the
temporary directory. Everything (namespaces, processes, shm objects, files) is removed on exit.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time

from netns import TwoHosts

PORT = 7100


def sanitized(binary):
    """True for an ASan/UBSan build (./test.sh asan): several times slower, so the tests scale
    their record counts down and their timers up, and say so."""
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


def dead_ms(binary):
    """The tests' dead-ms (keepalive a quarter of it). A bridge's silence is its keepalive plus
    how late it gets the CPU: on the loaded 2-core CI machine (a `yes` per core, other jobs'
    guests) the longest gap measured between frames of a healthy link was 0.84 s with keepalive
    0.5 s. 3 s (the default) leaves it 2.25 s; sanitizer builds run several times slower."""
    return 8000 if sanitized(binary) else 3000


def wait_until(pred, timeout=10.0, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Site:
    """One host: its namespace, ivshmem-server, bridge and peers."""

    def __init__(self, pair, host, name, tmp):
        self.pair, self.host, self.name, self.tmp = pair, host, name, tmp
        self.sock = os.path.join(tmp, f"{name}.sock")
        self.shm = f"ivshmem-test-bridge-{name}-{os.getpid()}"
        self.server_target = f"server:{self.sock}"
        self.logpath = os.path.join(tmp, f"bridge-{name}.log")
        self.server = None
        self.bridge = None
        self.bridge_args = []

    def start_server(self, size="16M"):
        self.server = self.host.popen([self.pair.tools["server"], "-F", "-S", self.sock, "-M",
                                       self.shm, "-l", size, "-n", "2"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_until(lambda: os.path.exists(self.sock), 5):
            raise RuntimeError(f"ivshmem-server {self.name} did not start")
        r = subprocess.run([self.pair.tools["cli"], "format", "--force", "--name", f"bridge{self.name}",
                            f"/dev/shm/{self.shm}"], capture_output=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"ivshmem format of {self.shm}: {r.stderr.decode()}")

    def start_bridge(self, args=None, env=None):
        self.stop_bridge()
        if args is not None:
            self.bridge_args = args
        self.logf = open(self.logpath, "ab")
        self.bridge = self.host.popen([self.pair.tools["bridge"], *self.bridge_args],
                                      stdout=self.logf, stderr=self.logf,
                                      env=self.host.ucx_env(env))
        return self.bridge

    def stop_bridge(self, sig=None):
        """Stop the bridge (SIGTERM unless @sig); its exit status (None if none ran, -9 if it
        had to be killed after 10 s)."""
        rc = None
        if self.bridge:
            if self.bridge.poll() is None:
                self.bridge.send_signal(sig or signal.SIGTERM)
            try:
                rc = self.bridge.wait(10)
            except subprocess.TimeoutExpired:
                self.bridge.kill()
                self.bridge.wait()
                rc = -9
        self.bridge = None
        return rc

    def log(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def peer(self, channel, *args, stdout=subprocess.PIPE, ring=None):
        argv = [self.pair.tools["peer"], self.server_target, channel, *args]
        if ring:
            argv += ["--ring", ring]
        # Unbuffered: a test reads the "open" line, then communicate()s for the rest; a buffered
        # readline() may take the result line along with it, and communicate() would not see it.
        return self.host.popen(argv, stdout=stdout, stderr=subprocess.PIPE, bufsize=0)

    def close(self):
        self.stop_bridge()
        if self.server and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(5)
            except subprocess.TimeoutExpired:
                self.server.kill()
        if os.path.exists(f"/dev/shm/{self.shm}"):
            os.unlink(f"/dev/shm/{self.shm}")


class Pair:
    def __init__(self, tools, channels=("x",), ring="1M", window=None, extra_a=(), extra_b=(),
                 accept_names=("B",)):
        self.tools = tools
        self.channels = list(channels)
        self.ring, self.window = ring, window
        self.extra_a, self.extra_b = list(extra_a), list(extra_b)
        self.accept_names = list(accept_names)
        self.dead_ms = dead_ms(tools["bridge"])

    def __enter__(self):
        self.tmp = tempfile.mkdtemp(prefix="ivshmem-bridge-test-")
        self.secret = os.path.join(self.tmp, "secret")
        fd = os.open(self.secret, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, os.urandom(24).hex().encode() + b"\n")
        os.close(fd)
        self.net = TwoHosts().__enter__()
        try:
            self.a = Site(self, self.net.a, "A", self.tmp)
            self.b = Site(self, self.net.b, "B", self.tmp)
            for s in (self.a, self.b):
                s.start_server()
            self.a.start_bridge(self.config_args("A") + self.extra_a)
            self.b.start_bridge(self.config_args("B") + self.extra_b)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def config_args(self, who):
        """Flags for bridge A (listens, accepts B) or B (dials A); channels via a config file."""
        site = self.a if who == "A" else self.b
        conf = os.path.join(self.tmp, f"{who}.conf")
        lines = [f"name {who}", f"region {site.server_target}", f"secret-file {self.secret}",
                 f"keepalive-ms {self.dead_ms // 4}", f"dead-ms {self.dead_ms}"]
        if who == "A":
            lines.append(f"listen {self.net.a.addr}:{PORT}")
            lines += [f"peer {n} accept" for n in self.accept_names]
        else:
            lines.append(f"peer A connect {self.net.a.addr}:{PORT}")
        other = "B" if who == "A" else "A"
        for spec in self.channels:     # "name" or "name:ring:window"
            c, ring, window = (spec.split(":") + [self.ring, self.window])[:3]
            lines.append(f"channel {c} {other} ring {ring or self.ring}" +
                         (f" window {window}" if window else ""))
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        return ["--config", conf]

    def stop_bridges(self):
        """SIGTERM both bridges: [(name, exit status, log)]. A clean stop is 0; a crash, a
        sanitizer report (leaks at exit too) or a hang is not."""
        return [(s.name, s.stop_bridge(), s.log()) for s in (self.a, self.b)]

    def wait_link(self, timeout=10):
        return wait_until(lambda: "is up" in self.a.log() and "is up" in self.b.log(), timeout)

    def __exit__(self, *exc):
        for s in (getattr(self, "a", None), getattr(self, "b", None)):
            if s:
                s.close()
        self.net.close() if hasattr(self, "net") else None
        shutil.rmtree(self.tmp, ignore_errors=True)
        return False
