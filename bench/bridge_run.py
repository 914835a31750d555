# SPDX-License-Identifier: MIT
"""The two contenders of bench/bridge.py, each measuring one thing at one size.

BridgePath: app (bridge-bench-peer) -> channel on host A's region -> ivshmem-bridge A -> UCX/TCP
over the veth pair -> ivshmem-bridge B -> channel on host B's region -> app, and back. The whole
set-up (namespaces, servers, bridges: tests/host/bridgelib.py's Pair) and the two peers stay up
for the run, so a measurement is only records moving.

UcxPerftest: ucx_perftest on the same veth pair, server in namespace B, client in A, with
UCX_TLS=tcp and UCX_NET_DEVICES=<veth> (the bridges get the same variables). One process pair per
measurement: the set-up is outside ucx_perftest's own timing.

Pinning (cpus = (A, B), the default (0, 1)): every process of host A (its peer, its bridge with
all its threads, the ucx_perftest client) runs on CPU A, every process of host B on CPU B: each
"host" gets one CPU, for both contenders alike. Unpinned, two busy-polling ucx_perftest
processes that land on one CPU make round trips of a scheduler tick (~16 ms here).

Every measurement returns a dict with the same keys: rec_s, mb_s (10^6 bytes/s) for bandwidth,
rtt_us (p50 round trip) and rtt_mean_us for round trips, secs (the measured interval).
"""
import os
import subprocess
import time

from bridgelib import cpu_seconds

MB = 1e6
MIB = 1024.0 * 1024.0


class BenchError(RuntimeError):
    """A measurement failed: the message says which and why (with the peer's or tool's words)."""


class Peer:
    """One bridge-bench-peer (bench/bridge_bench_peer.c): commands on stdin, one answer each."""

    def __init__(self, site, binary, channel, ring, timeout_ms, cpu):
        self.name = site.name
        argv = [binary, site.server_target, channel, "--ring", ring, "--timeout", str(timeout_ms)]
        self.proc = site.host.popen(pinned(cpu, argv),
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, bufsize=1)
        ready = self.proc.stdout.readline().strip()
        if not ready.startswith("ready"):
            why = self.proc.stderr.read()[-300:] if self.proc.poll() is not None else ""
            raise BenchError(f"peer on host {self.name} did not start: {ready!r} {why}")

    def command(self, line):
        self.proc.stdin.write(line + "\n")

    def answer(self):
        line = self.proc.stdout.readline().strip()
        if not line.startswith("ok"):
            raise BenchError(f"peer on host {self.name}: {line or 'exited'} "
                             f"(exit {self.proc.poll()})")
        return dict(kv.split("=", 1) for kv in line.split()[1:])

    def quit(self):
        if self.proc.poll() is None:
            self.command("quit")
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def pinned(cpu, argv):
    """@argv run on CPU @cpu only (None: anywhere), its threads included."""
    return argv if cpu is None else ["taskset", "-c", str(cpu), *argv]


def pin_process(pid, cpu):
    """Move every thread of a running process to CPU @cpu (the bridges are started by bridgelib)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(tid), {cpu})


class BridgePath:
    """Records through channel -> bridge A -> UCX/TCP -> bridge B -> channel."""

    name = "bridge"

    def __init__(self, pair, peer_binary, channel, ring, timeout_ms, cpus):
        self.pair = pair
        self.a = Peer(pair.a, peer_binary, channel, ring, timeout_ms, cpus[0])
        self.b = Peer(pair.b, peer_binary, channel, ring, timeout_ms, cpus[1])
        if cpus[0] is not None:
            pin_process(pair.a.bridge.pid, cpus[0])
            pin_process(pair.b.bridge.pid, cpus[1])

    def _bridge_cpu(self):
        return sum(cpu_seconds(s.bridge.pid) for s in (self.pair.a, self.pair.b))

    def bandwidth(self, size, count):
        """A sends @count records of @size, B receives them: A's first send to B's last record."""
        cpu0 = self._bridge_cpu()
        self.b.command(f"recv {size} {count}")
        self.a.command(f"send {size} {count}")
        start = float(self.a.answer()["start"])
        secs = float(self.b.answer()["end"]) - start
        cpu = self._bridge_cpu() - cpu0
        if secs <= 0:
            raise BenchError(f"bridge {size} B: nothing to time ({count} records in {secs} s)")
        rate = count / secs
        return {"rec_s": rate, "mb_s": rate * size / MB, "secs": secs, "bridge_cpu_s": cpu}

    def round_trip(self, size, count):
        """A sends a record, B sends it back, A waits for it: @count times."""
        self.b.command(f"echo {size} {count}")
        self.a.command(f"ping {size} {count}")
        r = self.a.answer()
        self.b.answer()
        return {"rtt_us": float(r["p50_us"]), "rtt_mean_us": float(r["mean_us"]),
                "secs": float(r["mean_us"]) * count / 1e6}

    def close(self):
        self.a.quit()
        self.b.quit()


class LocalChannel:
    """For comparison only: the same ping-pong between two peers of one region (host A's), no
    bridge: what the two channel hops at the ends of the bridge path cost on this machine."""

    name = "local channel"

    def __init__(self, site, peer_binary, channel, timeout_ms, cpus):
        self.a = Peer(site, peer_binary, channel, "64K", timeout_ms, cpus[0])
        self.b = Peer(site, peer_binary, channel, "64K", timeout_ms, cpus[1])

    round_trip = BridgePath.round_trip
    close = BridgePath.close


class UcxPerftest:
    """ucx_perftest TEST across the veth pair (server in namespace B, client in A)."""

    def __init__(self, net, test, port, cpus, outstanding=0):
        self.net, self.test, self.port, self.cpus = net, test, port, cpus
        # -O: sends in flight in bandwidth tests (0: ucx_perftest's default)
        self.extra = ["-O", str(outstanding)] if outstanding and test.endswith("_bw") else []
        self.name = f"ucx {test}"

    def _listening(self):
        out = self.net.b.run(["ss", "-Hltn"], timeout=10).stdout.decode()
        return f":{self.port} " in out

    def _run(self, size, count):
        server = self.net.b.popen(pinned(self.cpus[1], ["ucx_perftest", "-p", str(self.port)]),
                                  env=self.net.b.ucx_env(),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        end = time.monotonic() + 10
        while not self._listening():
            if server.poll() is not None or time.monotonic() > end:
                server.kill()
                raise BenchError(f"ucx_perftest server did not listen on port {self.port}: "
                                 f"{server.stderr.read().decode()[-300:]}")
            time.sleep(0.02)
        warmup = max(10, min(1000, count // 10))
        try:
            r = self.net.a.run(pinned(self.cpus[0], [
                "ucx_perftest", self.net.b.addr, "-p", str(self.port), "-t", self.test,
                "-s", str(size), "-n", str(count), "-w", str(warmup), "-f", "-v", *self.extra]),
                               env=self.net.a.ucx_env(), timeout=120)
        finally:
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        lines = [ln for ln in r.stdout.decode().splitlines() if ln.strip()]
        if r.returncode != 0 or not lines:
            raise BenchError(f"ucx_perftest -t {self.test} -s {size}: exit {r.returncode}: "
                             f"{r.stderr.decode()[-400:]}")
        # -f -v: a CSV header, then iterations,typical_lat,avg_lat,overall_lat,avg_bw,overall_bw,
        # avg_mr,overall_mr. Latency: one way (half the round trip); bandwidth in MiB/s.
        f = [float(x) for x in lines[-1].split(",")]
        if len(f) != 8:
            raise BenchError(f"ucx_perftest -t {self.test}: unexpected output {lines[-1]!r}")
        return f

    def bandwidth(self, size, count):
        f = self._run(size, count)
        rate = f[7]
        return {"rec_s": rate, "mb_s": f[5] * MIB / MB, "secs": f[0] / rate if rate else 0.0}

    def round_trip(self, size, count):
        f = self._run(size, count)
        return {"rtt_us": 2 * f[1], "rtt_mean_us": 2 * f[3], "secs": 2 * f[3] * f[0] / 1e6}
