#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Benchmark ivshmem-bridge against ucx_perftest on the same veth link, in interleaved rounds.

    sudo python3 bench/bridge.py --build build --rounds 5 > report.md    # ~2 min
    sudo python3 bench/bridge.py --quick                                  # smoke run, ~10 s

Two "hosts" are two network namespaces joined by a veth pair (tests/host/netns.py), each with
its own ivshmem-server and ivshmem-bridge (tests/host/bridgelib.py). The bridge path is
app -> channel -> bridge A -> UCX/TCP -> bridge B -> channel -> app (bench/bridge_bench_peer.c
at both ends); the baseline is ucx_perftest between the same two namespaces over the same
veth with the same UCX settings (UCX_TLS=tcp, UCX_NET_DEVICES=<veth>). Each round measures
every size with every contender, alternating which goes first, so a ratio is taken between
numbers measured seconds apart. The Markdown report goes to stdout, progress to stderr; see
docs/multihost.md "Numbers" and docs/benchmarks.md.
"""
import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SOURCE, "tests", "host"))

from bridgelib import Pair  # noqa: E402
from bridge_report import Report, size_name  # noqa: E402
from bridge_run import BenchError, BridgePath, LocalChannel, UcxPerftest  # noqa: E402
from netns import NetnsError  # noqa: E402

CHANNEL = "bench"
UCX_PORT = 13337


def parse_size(s):
    units = {"K": 1 << 10, "M": 1 << 20}
    s = s.strip().upper().rstrip("B").rstrip("I")
    return int(s[:-1]) * units[s[-1]] if s and s[-1] in units else int(s)


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="ivshmem-bridge records/s, MB/s and round trip against ucx_perftest on the "
                    "same veth link, in interleaved rounds (docs/multihost.md, \"Numbers\"). "
                    "Needs root (network namespaces), ucx_perftest (Debian ucx-utils) and a "
                    "build with UCX (ivshmem-bridge, ivshmem-server, tools/ivshmem, "
                    "bench/bridge-bench-peer).")
    ap.add_argument("--build", default=os.environ.get("IVSHMEM_BUILD_DIR") or
                    os.path.join(SOURCE, "build"), help="meson build directory (default: build)")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 5; 1 with --quick)")
    ap.add_argument("--sizes", default="64,1K,16K,256K,1M",
                    help="record sizes for bandwidth (default 64,1K,16K,256K,1M)")
    ap.add_argument("--rtt-sizes", default="64",
                    help="record sizes for the round trip (default 64)")
    ap.add_argument("--secs", type=float, default=1.0,
                    help="aim for this long per measurement (default 1.0)")
    ap.add_argument("--ucx-bw", default="stream_bw,tag_bw",
                    help="ucx_perftest bandwidth tests (default stream_bw,tag_bw; stream_bw "
                         "is the goal's baseline, the bridge uses UCP streams)")
    ap.add_argument("--ucx-lat", default="stream_lat,tag_lat",
                    help="ucx_perftest round-trip tests (default stream_lat,tag_lat)")
    ap.add_argument("--ucx-outstanding", type=int, default=0,
                    help="ucx_perftest -O N for the bandwidth tests: sends in flight "
                         "(default: ucx_perftest's own)")
    ap.add_argument("--ring", default="4M", help="channel ring per direction (default 4M)")
    ap.add_argument("--window", default="16M",
                    help="bridge receive window of the channel (default 16M: 16 records of 1 MiB)")
    ap.add_argument("--cpus", default="0,1",
                    help="CPU of host A's processes, CPU of host B's "
                         "(default 0,1; 'none': unpinned)")
    ap.add_argument("--dead-ms", type=int, default=10000,
                    help="the bridges' dead-ms (keepalive a quarter of it; default 10000): on a "
                         "shared machine a scheduling stall must not cut the link mid-run")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: sizes 64,64K, 0.1 s per measurement, stream tests only")
    ap.add_argument("--json", help="write every measurement of every round to this file")
    a = ap.parse_args(argv)
    if a.quick:
        a.sizes, a.secs, a.ucx_bw, a.ucx_lat = "64,64K", 0.1, "stream_bw", "stream_lat"
    if a.rounds is None:
        a.rounds = 1 if a.quick else 5
    try:
        a.sizes = [parse_size(s) for s in a.sizes.split(",")]
        a.rtt_sizes = [parse_size(s) for s in a.rtt_sizes.split(",")]
    except (ValueError, KeyError, IndexError):
        ap.error("--sizes/--rtt-sizes: a comma-separated list of sizes such as 64,1K,1M")
    a.ucx_bw, a.ucx_lat = a.ucx_bw.split(","), a.ucx_lat.split(",")
    try:
        a.cpus = (None, None) if a.cpus == "none" else tuple(int(c) for c in a.cpus.split(","))
    except ValueError:
        a.cpus = ()
    if len(a.cpus) != 2:
        ap.error("--cpus A,B (two CPU numbers) or --cpus none")
    if "stream_bw" not in a.ucx_bw or "stream_lat" not in a.ucx_lat:
        ap.error("stream_bw and stream_lat are the goals' baselines: "
                 "keep them in --ucx-bw/--ucx-lat")
    if a.rounds < 1 or a.secs <= 0 or min(a.sizes + a.rtt_sizes) < 8 or a.dead_ms < 400:
        ap.error("--rounds >= 1, --secs > 0, --dead-ms >= 400, sizes >= 8 bytes (a record "
                 "carries its number)")
    return a


def tools_of(build):
    tools = {"bridge": "bridge/ivshmem-bridge", "server": "server/ivshmem-server",
             "cli": "tools/ivshmem", "bench_peer": "bench/bridge-bench-peer"}
    tools = {k: os.path.join(build, v) for k, v in tools.items()}
    missing = [p for p in tools.values() if not os.access(p, os.X_OK)]
    if missing:
        raise BenchError(f"missing {', '.join(missing)}: build with UCX (libucx-dev): "
                         f"meson setup {build} && ninja -C {build}")
    if not shutil.which("ucx_perftest"):
        raise BenchError("ucx_perftest is not installed: apt-get install ucx-utils")
    if os.geteuid() != 0:
        raise BenchError("needs root: it creates two network namespaces and a veth pair")
    return dict(tools, peer=None, fake=None, src=SOURCE)


def machine():
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}"


def binary_id(path):
    """12 hex digits of a binary's SHA-256 and its build time: which bridge was measured."""
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    built = time.strftime("%Y-%m-%d %H:%M", time.gmtime(os.stat(path).st_mtime))
    return f"sha256 {digest}, built {built} UTC"


def ucx_version():
    r = subprocess.run(["ucx_info", "-v"], capture_output=True, text=True)
    for word in r.stdout.split():
        if word[:1].isdigit() and "." in word:
            return word
    return "?"


class Runner:
    """Runs the rounds and learns, per contender and size, how many records fill --secs."""

    def __init__(self, args, contenders):
        self.args, self.contenders = args, contenders
        self.rate, self.last = {}, {}
        self.results = []

    def _count(self, c, kind, size):
        """Records (or round trips) for about --secs at the last rate, at most 4x the last count.
        The first time, an unrecorded probe of 8 MB (or 300 round trips) gives the rate: more
        than the TCP socket buffers, which a sender-timed ucx_perftest would otherwise take as
        delivered. Round trips: 1000 to 10000, so a p50 has samples and a round trip slowed by
        the machine's other jobs (ucx_perftest's means jump 20x under load) stays bounded."""
        key = (c.name, kind, size)
        if key not in self.rate:
            probe = max(20, min(50000, 8_000_000 // size)) if kind == "bw" else 300
            r = self._call(c, kind, size, probe)
            self.rate[key], self.last[key] = probe / max(r["secs"], 1e-6), probe
        lo, hi = (20, 10_000_000) if kind == "bw" else (1000, 10_000)
        want = min(self.rate[key] * self.args.secs, 4 * self.last[key])
        return int(max(lo, min(hi, want)))

    @staticmethod
    def _call(c, kind, size, count):
        return c.bandwidth(size, count) if kind == "bw" else c.round_trip(size, count)

    def measure(self, rnd, c, kind, size):
        count = self._count(c, kind, size)
        r = self._call(c, kind, size, count)
        self.rate[(c.name, kind, size)] = count / max(r["secs"], 1e-6)
        self.last[(c.name, kind, size)] = count
        r.update(round=rnd, kind=kind, contender=c.name, size=size, count=count)
        self.results.append(r)
        what = f"{r['mb_s']:.1f} MB/s" if kind == "bw" else f"RTT p50 {r['rtt_us']:.1f} us"
        print(f"  round {rnd} {kind} {size_name(size)} {c.name}: {what}", file=sys.stderr)

    def round(self, rnd):
        bw, lat = self.contenders
        flip = rnd % 2 == 0                      # even rounds: UCX first
        for kind, sizes, cs in (("bw", self.args.sizes, bw), ("rtt", self.args.rtt_sizes, lat)):
            order = cs[1:] + cs[:1] if flip else cs
            for size in sizes:
                for c in order:
                    self.measure(rnd, c, kind, size)
        return "ucx" if flip else "bridge"


def run(args, tools):
    """The rounds. Returns the report of the rounds that completed and the error that stopped
    the run (None): a failed round is left out, with the bridges' logs in the error."""
    t0 = time.time()
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t0))
    rounds, error = [], None
    link = ["--keepalive-ms", str(args.dead_ms // 4), "--dead-ms", str(args.dead_ms)]
    with Pair(tools, channels=[CHANNEL], ring=args.ring, window=args.window, extra_a=link,
              extra_b=link) as pair:
        if not pair.wait_link(15):
            raise BenchError(f"the bridges did not link up:\n{pair.a.log()}\n{pair.b.log()}")
        bridge = BridgePath(pair, tools["bench_peer"], CHANNEL, args.ring, 60000, args.cpus)
        local = None
        try:
            bw = [bridge] + [UcxPerftest(pair.net, t, UCX_PORT, args.cpus, args.ucx_outstanding)
                             for t in args.ucx_bw]
            local = LocalChannel(pair.a, tools["bench_peer"], "local", 60000, args.cpus)
            lat = ([bridge] + [UcxPerftest(pair.net, t, UCX_PORT, args.cpus) for t in args.ucx_lat]
                   + [local])
            runner = Runner(args, (bw, lat))
            for rnd in range(1, args.rounds + 1):
                load0 = os.getloadavg()[0]
                print(f"round {rnd}/{args.rounds} (load {load0:.2f})", file=sys.stderr)
                try:
                    first = runner.round(rnd)
                except BenchError as e:
                    error = (f"round {rnd} failed: {e}\nbridge A:\n{pair.a.log()}"
                             f"bridge B:\n{pair.b.log()}")
                    runner.results = [r for r in runner.results if r["round"] != rnd]
                    break
                rounds.append({"round": rnd, "first": first, "load_start": load0,
                               "load_end": os.getloadavg()[0]})
        finally:
            bridge.close()
            if local:
                local.close()
    meta = {"started": started, "ended": time.strftime("%H:%M:%S", time.gmtime()),
            "wall_s": time.time() - t0, "machine": machine(), "ucx_version": ucx_version(),
            "sizes": args.sizes, "rtt_sizes": args.rtt_sizes, "ucx_bw": args.ucx_bw,
            "ucx_lat": args.ucx_lat, "ring": args.ring, "window": args.window,
            "secs": args.secs, "cpus": args.cpus, "dead_ms": args.dead_ms,
            "ucx_outstanding": args.ucx_outstanding, "bridge": binary_id(tools["bridge"]),
            "stopped": error.splitlines()[0] if error else None}
    return Report(runner.results, rounds, meta), error


def main(argv):
    args = parse_args(argv)
    try:
        tools = tools_of(os.path.abspath(args.build))
        report, error = run(args, tools)
    except (BenchError, NetnsError, RuntimeError) as e:
        print(f"bench/bridge.py: {e}", file=sys.stderr)
        return 1
    if error:
        print(f"bench/bridge.py: {error}", file=sys.stderr)
        if not report.rounds:
            return 1
    print(report.markdown())
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": report.meta, "rounds": report.rounds, "results": report.results,
                       "ratios": report.summary()}, f, indent=1)
    return 1 if error else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
