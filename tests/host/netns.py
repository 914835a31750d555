# SPDX-License-Identifier: MIT
"""Two "hosts" on one machine: two network namespaces joined by a veth pair.

    from netns import TwoHosts, NetnsError
    with TwoHosts() as net:                   # raises NetnsError (with the reason) if impossible
        net.a.addr, net.b.addr                # "10.231.X.1", "10.231.X.2" (a /30 inside the pair)
        net.a.dev, net.b.dev                  # the veth device names inside each namespace
        net.a.run(["ip", "addr"])             # subprocess.run inside host A (capture_output, text=False)
        p = net.b.popen(["prog", ...], env=...)  # subprocess.Popen inside host B
        net.a.ucx_env()                       # os.environ + UCX_TLS=tcp, UCX_NET_DEVICES=<dev>
        net.cut()                             # ip link set <a.dev> down  (the link is cut both ways)
        net.heal()                            # ... up again (returns once both ends are UP)
    # on leaving (or SIGTERM / SIGINT while inside): every process started with popen() is killed,
    # both namespaces are deleted (deleting a namespace removes its veth end, and so the pair).

Only addresses inside the two namespaces are used; nothing is routed elsewhere. Names are unique per
process (pid) so parallel tests do not collide. Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and `ip`.

Command line (for a person debugging): `python3 tests/host/netns.py` creates the pair, connects a TCP
socket from A to B across it and removes everything.
"""
import os
import shutil
import signal
import subprocess
import sys
import time


class NetnsError(RuntimeError):
    """Namespaces or veth could not be created: the message says which command failed and why."""


def _ip(*args, check=True):
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and r.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


class Host:
    """One namespace: its name, its veth device and address; run/popen inside it."""

    def __init__(self, ns, dev, addr, owner):
        self.ns, self.dev, self.addr = ns, dev, addr
        self._owner = owner

    def _argv(self, argv):
        return ["ip", "netns", "exec", self.ns, *argv]

    def run(self, argv, timeout=60, **kw):
        kw.setdefault("capture_output", True)
        return subprocess.run(self._argv(argv), timeout=timeout, **kw)

    def popen(self, argv, **kw):
        p = subprocess.Popen(self._argv(argv), **kw)
        self._owner._procs.append(p)
        return p

    def ucx_env(self, extra=None):
        """The environment that makes UCX use TCP on this host's veth only (never shared memory)."""
        env = dict(os.environ, UCX_TLS="tcp", UCX_NET_DEVICES=self.dev, UCX_WARN_UNUSED_ENV_VARS="n")
        env.update(extra or {})
        return env


class TwoHosts:
    def __init__(self, tag=None):
        tag = tag or f"{os.getpid() % 100000}"
        self.tag = tag
        subnet = 4 * (os.getpid() % 60)          # one /30 in 10.231.<pid % 250>.0/24
        third = os.getpid() % 250
        self.a = Host(f"ivbr-a-{tag}", f"vbra{tag}", f"10.231.{third}.{subnet + 1}", self)
        self.b = Host(f"ivbr-b-{tag}", f"vbrb{tag}", f"10.231.{third}.{subnet + 2}", self)
        self._procs = []
        self._old = {}

    # ---- life cycle ----------------------------------------------------------------------------

    def __enter__(self):
        if os.geteuid() != 0:
            raise NetnsError("network namespaces need root (CAP_NET_ADMIN, CAP_SYS_ADMIN); "
                             f"running as uid {os.geteuid()}")
        if not shutil.which("ip"):
            raise NetnsError("the 'ip' command (iproute2) is not installed")
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            self._old[sig] = signal.signal(sig, self._on_signal)
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _on_signal(self, signum, frame):
        # The with block's exit (and so close()) runs while this exception unwinds.
        raise SystemExit(128 + signum)

    def _create(self):
        for h in (self.a, self.b):
            _ip("netns", "del", h.ns, check=False)      # a leftover of a killed run with our pid
            _ip("netns", "add", h.ns)
        _ip("link", "add", self.a.dev, "netns", self.a.ns, "type", "veth", "peer", "name", self.b.dev,
            "netns", self.b.ns)
        for h in (self.a, self.b):
            _ip("-n", h.ns, "link", "set", "lo", "up")
            _ip("-n", h.ns, "addr", "add", f"{h.addr}/30", "dev", h.dev)
            _ip("-n", h.ns, "link", "set", h.dev, "up")
        self.wait_up()
        self.check_tcp()

    def wait_up(self, timeout=10.0):
        """Until both ends report operstate UP: the kernel's link watch lags the carrier by up
        to a second, and UCX ignores an interface that is not yet RUNNING."""
        end = time.monotonic() + timeout
        while True:
            states = [_ip("-n", h.ns, "-o", "link", "show", "dev", h.dev).stdout for h in (self.a, self.b)]
            if all("state UP" in st for st in states):
                return
            if time.monotonic() > end:
                raise NetnsError(f"the veth pair did not come up within {timeout:.0f} s: {states}")
            time.sleep(0.05)

    def check_tcp(self):
        """A TCP connection from A to B across the pair (no ping on minimal systems)."""
        code = ("import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); s.listen(1); "
                "print(s.getsockname()[1],flush=True); c,_=s.accept(); c.sendall(b'ok')")
        srv = self.b.popen([sys.executable, "-c", code, self.b.addr], stdout=subprocess.PIPE)
        port = srv.stdout.readline().decode().strip()
        cli = self.a.run([sys.executable, "-c", "import socket,sys; s=socket.create_connection("
                          "(sys.argv[1],int(sys.argv[2])),5); print(s.recv(2).decode())",
                          self.b.addr, port or "0"], timeout=10)
        srv.wait(5)
        if cli.stdout.strip() != b"ok":
            raise NetnsError(f"the veth pair does not pass TCP from {self.a.addr} to {self.b.addr}: "
                             f"{cli.stderr.decode()[-300:]}")

    def close(self):
        for p in self._procs:
            if p.poll() is None:
                p.kill()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self._procs = []
        for h in (self.a, self.b):
            _ip("netns", "del", h.ns, check=False)
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}

    # ---- the link --------------------------------------------------------------------------------

    def cut(self):
        _ip("-n", self.a.ns, "link", "set", self.a.dev, "down")

    def heal(self):
        _ip("-n", self.a.ns, "link", "set", self.a.dev, "up")
        self.wait_up()


if __name__ == "__main__":
    try:
        with TwoHosts() as net:
            print(f"{net.a.ns} {net.a.dev} {net.a.addr} <-> {net.b.ns} {net.b.dev} {net.b.addr}: "
                  "TCP passes")
    except NetnsError as e:
        print(f"netns: {e}", file=sys.stderr)
        sys.exit(1)
