#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ivshmem-bridge between two "hosts" (issue 17, docs/multihost.md "Guarantees").

Two network namespaces joined by a veth pair (netns.py), each with its own ivshmem-server
region, a bridge and host peers (bridge_peer.c); UCX is forced onto TCP over the veth.

  1. 10^6 records with sequence numbers and checksums, both directions at once, sizes
     16..256 bytes: no loss, no duplicate, boundaries and bytes intact; the rate is printed;
  2. close drains: N records then close; a late reader gets all N, then EPIPE;
  3. back-pressure: a stalled remote reader stops the local sender (it blocks after what
     the rings and the window hold), the bridges' memory stays bounded, and every record
     arrives once the reader reads;
  4. a killed remote peer surfaces as ECONNRESET on this side, within the bound;
  5. a cut link (ip link set down) surfaces as ECONNRESET on both sides within the bound
     (dead-ms 3000 here + 1 s); after `ip link set up` the link comes back and carries again;
  6. an idle bridge (link up, channel paired, nothing to send) uses ~0 CPU.

Needs root (namespaces): when they cannot be made the test fails with the reason, it never skips.
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import taplib  # noqa: E402  (SIGTERM -> SystemExit, so the namespaces are removed)
from taplib import ok, diag, done  # noqa: E402
from bridgelib import Pair, wait_until, cpu_seconds, rss_kib, sanitized, dead_ms  # noqa: E402
from netns import NetnsError  # noqa: E402

BRIDGE, SERVER, CLI, PEER, FAKE, SRC = sys.argv[1:7]
TOOLS = dict(bridge=BRIDGE, server=SERVER, cli=CLI, peer=PEER, fake=FAKE, src=SRC)
SLOW = sanitized(BRIDGE)          # ASan/UBSan build: fewer records, wider timers (bridgelib)
DEAD_MS = dead_ms(BRIDGE)         # bridgelib's configuration
RECORDS = 50000 if SLOW else 1000000
BOUND_S = DEAD_MS / 1000 + 1.0   # docs/multihost.md: a lost link, dead-ms + 1 s
PEER_BOUND_S = 3.0 + 1.0         # a dead peer: the channel's dead_ms (3000 by default) + 1 s


def result(p, timeout):
    """Wait for a bridge_peer; (exit code, its key=value line as a dict, stderr)."""
    try:
        out, err = p.communicate(timeout=timeout)
    except Exception:
        p.kill()
        out, err = p.communicate()
        err += b"\n(killed: timed out)"
    vals = {}
    for line in out.decode().splitlines():
        if "=" in line:
            vals = dict(kv.split("=", 1) for kv in line.split())
    return p.returncode, vals, err.decode()


def opened(p):
    """Wait for a peer's 'open' line."""
    return p.stdout.readline().strip() == b"open"


def million(p):
    n = RECORDS
    if SLOW:
        diag(f"sanitizer build: {n} records each way instead of 10^6, dead-ms {DEAD_MS}")
    t0 = time.monotonic()
    a = p.a.peer("bulk", "--send", str(n), "--recv", str(n), "--seed", "10", "--max", "256")
    b = p.b.peer("bulk", "--send", str(n), "--recv", str(n), "--seed", "11", "--max", "256")
    ra, va, ea = result(a, 240)
    rb, vb, eb = result(b, 240)
    secs = time.monotonic() - t0
    ok(ra == 0 and va.get("received") == str(n) and va.get("sent") == str(n),
       f"{n} records B->A arrive in order, intact (sizes 16..256)", f"{va} {ea}\n{p.a.log()}")
    ok(rb == 0 and vb.get("received") == str(n) and vb.get("sent") == str(n),
       f"{n} records A->B arrive in order, intact, at the same time", f"{vb} {eb}\n{p.b.log()}")
    if ra == 0 and rb == 0:
        mb = (int(va["bytes"]) + int(vb["bytes"])) / 1e6
        diag(f"2 x {n} records ({mb:.0f} MB) through the bridges in {secs:.1f} s: "
             f"{2 * n / secs:,.0f} records/s, {mb / secs:.1f} MB/s (both directions together)")
    ok(secs < 120, f"the run took {secs:.1f} s (bound 120 s)")


def close_drains(p):
    n = 5000
    a = p.a.peer("drain", "--send", str(n), "--close", "--linger", "20000", "--seed", "20")
    ok(opened(a), "close: sender open")
    b = p.b.peer("drain", "--recv", str(n), "--until-end", "--delay-ms", "1500", "--seed", "21",
                 "--peer-seed", "20")
    ra, va, ea = result(a, 60)
    rb, vb, eb = result(b, 60)
    ok(ra == 0 and va.get("sent") == str(n), f"close: the sender sent {n} and closed", ea)
    ok(rb == 0 and vb.get("received") == str(n) and vb.get("end") == "EPIPE",
       f"close drains: the late remote reader got all {n} records, then EPIPE",
       f"{vb} {eb}\n{p.b.log()}")


def back_pressure(p):
    n = 50000
    rss0 = [rss_kib(p.a.bridge.pid), rss_kib(p.b.bridge.pid)]
    b = p.b.peer("slow", "--recv", "0", "--until-end", "--delay-ms", "4000", "--seed", "31",
                 "--peer-seed", "30", "--max", "512", ring="64K")
    ok(opened(b), "back-pressure: the remote reader is open (and does not read for 4 s)")
    a = p.a.peer("slow", "--send", str(n), "--send-timeout", "1500", "--close", "--linger", "30000",
                 "--seed", "30", "--max", "512", ring="64K")
    time.sleep(2.5)
    rss1 = [rss_kib(p.a.bridge.pid), rss_kib(p.b.bridge.pid)]
    ra, va, ea = result(a, 60)
    rb, vb, eb = result(b, 60)
    k = int(va.get("blocked_after", "0") or 0)
    held = int(va.get("sent_bytes", "0") or 0)
    # At most what the two 64 KiB rings and the 64 KiB window hold (payload bytes).
    ok(ra == 0 and 0 < k < n and held <= 3 * 65536,
       f"back-pressure: the sender blocked after {k} of {n} records, {held} bytes (the two 64 KiB "
       f"rings and the 64 KiB window are full)", f"{va} {ea}")
    growth = max(r1 - r0 for r0, r1 in zip(rss0, rss1))
    diag(f"bridge RSS before/while stalled: A {rss0[0]}/{rss1[0]} KiB, B {rss0[1]}/{rss1[1]} KiB")
    ok(growth < 16 * 1024, f"back-pressure: the bridges' memory grew by {growth} KiB (bound 16 MiB)")
    ok(rb == 0 and vb.get("received") == str(k) and vb.get("end") == "EPIPE",
       f"back-pressure: once it reads, the reader gets exactly those {k} records, then EPIPE",
       f"{vb} {eb}\n{p.b.log()}")


def pair_up(p, channel, seed):
    """Two peers on @channel that exchanged one record each (the session is paired)."""
    a = p.a.peer(channel, "--send", "1", "--recv", "1", "--until-end", "--seed", str(seed))
    b = p.b.peer(channel, "--send", "1", "--recv", "1", "--until-end", "--seed", str(seed ^ 1))
    return a, b


def killed_peer(p):
    a, b = pair_up(p, "kill", 40)
    ok(opened(a) and opened(b), "killed peer: both ends open")
    time.sleep(1.0)   # one record each way: the session is paired and in use
    t0 = time.monotonic()
    b.send_signal(signal.SIGKILL)
    b.wait()          # reaped at once, as a real parent would: a zombie still "exists" for kill(pid, 0)
    ra, va, ea = result(a, 20)
    lat = float(va.get("end_at", 0)) - t0
    ok(va.get("end") == "ECONNRESET" and va.get("received") == "1",
       "killed peer: a SIGKILLed remote peer is ECONNRESET on this side (after its record)",
       f"{va} {ea}\n{p.a.log()}\n{p.b.log()}")
    diag(f"killed remote peer -> ECONNRESET in {lat * 1000:.0f} ms")
    ok(0 <= lat <= PEER_BOUND_S, f"killed peer: within {lat:.2f} s (bound {PEER_BOUND_S:.1f} s)")


def cut_link(p):
    a, b = pair_up(p, "cut", 50)
    ok(opened(a) and opened(b), "cut link: both ends open")
    time.sleep(1.0)
    t0 = time.monotonic()
    p.net.cut()
    ra, va, ea = result(a, 20)
    rb, vb, eb = result(b, 20)
    la, lb = float(va.get("end_at", 0)) - t0, float(vb.get("end_at", 0)) - t0
    ok(va.get("end") == "ECONNRESET" and vb.get("end") == "ECONNRESET",
       "cut link: ip link set down is ECONNRESET on both sides",
       f"{va} {ea} {vb} {eb}\n{p.a.log()}\n{p.b.log()}")
    diag(f"cut link -> ECONNRESET in {la * 1000:.0f} ms (A), {lb * 1000:.0f} ms (B)")
    ok(0 <= la <= BOUND_S and 0 <= lb <= BOUND_S,
       f"cut link: within {max(la, lb):.2f} s (bound {BOUND_S:.1f} s)")
    ok("nothing received for" in p.a.log() and "nothing received for" in p.b.log(),
       "cut link: both bridges log the dead link", p.a.log())
    p.net.heal()
    ok(wait_until(lambda: p.b.log().count("is up") >= 2, 15),
       "cut link: after ip link set up, bridge B dials again and the link is up", p.b.log())
    a, b = p.a.peer("cut", "--send", "100", "--recv", "100", "--seed", "52", ring="1M"), \
        p.b.peer("cut", "--send", "100", "--recv", "100", "--seed", "53", ring="1M")
    ra, va, ea = result(a, 30)
    rb, vb, eb = result(b, 30)
    ok(ra == 0 and rb == 0, "cut link: after the reset both sides reopen and 100 records cross "
       "each way", f"{va} {ea} {vb} {eb}\n{p.a.log()}\n{p.b.log()}")


def idle(p):
    a, b = pair_up(p, "idle", 60)
    ok(opened(a) and opened(b), "idle: a paired channel")
    time.sleep(1.0)
    c0 = [cpu_seconds(p.a.bridge.pid), cpu_seconds(p.b.bridge.pid)]
    t0 = time.monotonic()
    time.sleep(3.0)   # the measurement window
    c1 = [cpu_seconds(p.a.bridge.pid), cpu_seconds(p.b.bridge.pid)]
    t = time.monotonic() - t0
    used = max(c1[0] - c0[0], c1[1] - c0[1])
    diag(f"idle bridges: A {1000 * (c1[0] - c0[0]):.0f} ms, B {1000 * (c1[1] - c0[1]):.0f} ms of CPU "
         f"in {t:.1f} s")
    ok(used <= (0.15 if SLOW else 0.06), f"idle: a bridge used {used * 1000:.0f} ms of CPU in {t:.1f} s (bound 60 ms, 2 %)")
    for x in (a, b):
        x.kill()
        x.wait()


def main():
    channels = ["bulk:1M:1M", "drain", "slow:64K:64K", "kill", "cut", "idle"]
    try:
        with Pair(TOOLS, channels=channels, ring="1M", window="256K") as p:
            if not ok(p.wait_link(), "the bridges authenticate and the link comes up",
                      p.a.log() + p.b.log()):
                return done()
            for step in (million, close_drains, back_pressure, killed_peer, cut_link, idle):
                diag(f"--- {step.__name__}")
                step(p)
            for s in (p.a, p.b):
                ok(s.bridge.poll() is None, f"bridge {s.name} is still running at the end", s.log())
            for name, rc, log in p.stop_bridges():
                ok(rc == 0, f"bridge {name} exits 0 on SIGTERM (status {rc})", log[-3000:])
    except NetnsError as e:
        ok(False, f"two network namespaces joined by veth: {e}")
    return done()


if __name__ == "__main__":
    sys.exit(main())
