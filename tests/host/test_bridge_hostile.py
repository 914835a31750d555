#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A hostile remote bridge (bridge_fake.c, speaking UCX over the veth) against ivshmem-bridge.

Bridge A accepts the real bridge B (channel x) and a peer "C" (channel y). A fake "C" dials in
and misbehaves in one way per run: garbage before HELLO, a wrong secret, a name that is not
configured, a frame header longer than the maximum, a record above the channel's maximum, more
data than its credit, DATA for an id never announced, and half a frame followed by its death.
Each time bridge A must log one clear line naming the fault and drop that link only: the link to
B stays up and a stream of records between A and B, running the whole time, arrives complete.
A well-behaved fake (the control) is not dropped, so a drop is the fault's doing.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import taplib  # noqa: E402,F401
from taplib import ok, diag, done  # noqa: E402
from bridgelib import Pair, PORT, sanitized, wait_until  # noqa: E402
from netns import NetnsError  # noqa: E402

BRIDGE, SERVER, CLI, PEER, FAKE, SRC = sys.argv[1:7]
TOOLS = dict(bridge=BRIDGE, server=SERVER, cli=CLI, peer=PEER, fake=FAKE, src=SRC)

CASES = [  # scenario, name it claims, what bridge A must log
    ("garbage", "C", "bad magic"),
    ("badauth", "C", "authentication failed"),
    ("badauth", "mallory", "'mallory' is not a peer configured to connect to us"),
    ("oversized", "C", "payload longer than the announced maximum"),
    ("bigrecord", "C", "record above the maximum announced for the channel"),
    ("overcredit", "C", "more data than the credit it was given"),
    ("unknownid", "C", "never announced"),
    ("midrecord", "C", "connection lost in the middle of a frame"),
]


def fake(p, scenario, name, channel):
    # The fake vanishes on purpose with UCX open: under ASan that is no leak to fail on.
    asan = os.environ.get("ASAN_OPTIONS", "")
    r = p.net.b.run([FAKE, f"{p.net.a.addr}:{PORT}", name, p.secret, scenario, channel], timeout=30,
                    env=p.net.b.ucx_env({"ASAN_OPTIONS": (asan + ":" if asan else "") + "detect_leaks=0"}))
    return r.returncode, r.stdout.decode().strip(), r.stderr.decode()


def main():
    n = 20000 if sanitized(BRIDGE) else 200000
    try:
        # One channel to C per case: what one case leaves in a ring does not touch the next.
        carried = sum((["--channel", f"y{i}@C"] for i in range(len(CASES) + 1)), [])
        with Pair(TOOLS, channels=["x"], extra_a=["--peer", "C", *carried], accept_names=("B",),
                  ring="256K", window="256K") as p:
            if not ok(p.wait_link(), "bridges A and B are linked", p.a.log() + p.b.log()):
                return done()
            sa = p.a.peer("x", "--send", str(n), "--recv", str(n), "--seed", "70")
            sb = p.b.peer("x", "--send", str(n), "--recv", str(n), "--seed", "71")
            rc, out, err = fake(p, "good", "C", f"y{len(CASES)}")
            ok(rc == 0 and out == "kept", "control: a well-behaved C is accepted and kept", out + err)
            for i, (scenario, name, line) in enumerate(CASES):
                before = len(p.a.log())
                rc, out, err = fake(p, scenario, name, f"y{i}")
                want = "vanished" if scenario == "midrecord" else "dropped"
                # Refused before its AUTH went out, the fake may see its own send fail instead.
                ok((rc == 0 and out == want) or (name != "C" and "bridge_fake:" in err),
                   f"{scenario} ({name}): the fake was {want}", out + err)
                # A fake that vanished has not waited for the bridge to notice: give it time.
                wait_until(lambda: line in p.a.log()[before:], 10)
                after = p.a.log()[before:]
                hit = [x for x in after.splitlines() if line in x]
                ok(hit and "dropping this link" in hit[0],
                   f"{scenario}: bridge A logs '{line}' and drops that link", after)
                if hit:
                    diag(hit[0])
                ok(p.a.bridge.poll() is None, f"{scenario}: bridge A still runs", after)
            outs = []
            for s in (sa, sb):
                try:
                    o, e = s.communicate(timeout=120)
                except subprocess.TimeoutExpired:
                    s.kill()
                    o, e = s.communicate()
                outs.append((s.returncode, o.decode(), e.decode()))
            ok(all(rc == 0 and f"received={n}" in o for rc, o, e in outs),
               f"meanwhile {n} records each way between A and B arrived intact", str(outs))
            dropped_b = [x for x in p.a.log().splitlines() if "dropping" in x and " B " in x]
            ok(not dropped_b, "the link to B was never dropped", "\n".join(dropped_b) + "\n" + p.b.log())
            for bname, rc, log in p.stop_bridges():
                ok(rc == 0, f"bridge {bname} exits 0 on SIGTERM (status {rc})", log[-3000:])
    except NetnsError as e:
        ok(False, f"two network namespaces joined by veth: {e}")
    return done()


if __name__ == "__main__":
    sys.exit(main())
