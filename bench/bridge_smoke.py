#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""CI smoke run of bench/bridge.py (TAP): the harness starts, measures and reports sanely.

    bridge_smoke.py BUILD_DIR

Runs `bench/bridge.py --quick` (one round, two sizes, 0.1 s per measurement, ~10-20 s) and checks
its JSON and Markdown: every contender measured every size, every number is positive and
finite and agrees with the others (records/s x size = MB/s), every goal ratio was computed and
the report has its tables. Never a timing assertion: the numbers depend on the machine.
Also checks that bad options are refused with status 2.
"""
import json
import math
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
n = 0
failed = 0


def ok(cond, desc):
    global n, failed
    n += 1
    failed += not cond
    print(f"{'' if cond else 'not '}ok {n} - {desc}", flush=True)
    return cond


def positive(x):
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def check_results(data):
    meta, results = data["meta"], data["results"]
    want = ([("bw", c, s) for c in ["bridge"] + [f"ucx {t}" for t in meta["ucx_bw"]]
             for s in meta["sizes"]] +
            [("rtt", c, s) for c in ["bridge", "local channel"] +
             [f"ucx {t}" for t in meta["ucx_lat"]] for s in meta["rtt_sizes"]])
    got = {(r["kind"], r["contender"], r["size"]): r for r in results}
    missing = [w for w in want if w not in got]
    ok(not missing, f"every contender measured every size ({len(want)} measurements; missing: "
       f"{missing})")
    bad = []
    for (kind, c, size), r in got.items():
        keys = ("rec_s", "mb_s", "secs") if kind == "bw" else ("rtt_us", "rtt_mean_us")
        if not all(positive(r.get(k)) for k in keys):
            bad.append((kind, c, size, {k: r.get(k) for k in keys}))
        elif kind == "bw" and abs(r["rec_s"] * size / 1e6 - r["mb_s"]) > 0.02 * r["mb_s"]:
            bad.append((kind, c, size, "records/s x size != MB/s"))
    ok(not bad, f"every number positive, finite and consistent ({bad})")
    ratios = data["ratios"]
    keys = [f"bw {s}" for s in meta["sizes"]] + [f"rtt {s}" for s in meta["rtt_sizes"]]
    ok(all(len(ratios[k]["vs_stream"]) == 1 and positive(ratios[k]["vs_stream"][0]) and
           positive(ratios[k]["vs_best"][0]) for k in keys),
       f"a same-round goal ratio for every size ({ratios})")


def main():
    build = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="ivshmem-bridge-bench-") as tmp:
        out = os.path.join(tmp, "run.json")
        r = subprocess.run([sys.executable, os.path.join(HERE, "bridge.py"), "--build", build,
                            "--quick", "--json", out], capture_output=True, text=True, timeout=240)
        if not ok(r.returncode == 0, f"bridge.py --quick exits 0 (exit {r.returncode})"):
            print("# " + r.stderr.replace("\n", "\n# "))
        else:
            with open(out) as f:
                check_results(json.load(f))
            md = r.stdout
            ok(all(h in md for h in ("#### Bandwidth", "#### Round trip", "#### Rounds",
                                     "| 64 B |", "| 64 KiB |", "goal >= 0.8", "goal <= 1.5")),
               "the Markdown report has its three tables and both goals")
        for bad in (["--sizes", "4"], ["--cpus", "1"], ["--ucx-bw", "tag_bw"], ["--rounds", "0"]):
            r = subprocess.run([sys.executable, os.path.join(HERE, "bridge.py"), "--build", build,
                                *bad], capture_output=True, text=True, timeout=30)
            ok(r.returncode == 2 and "error" in r.stderr,
               f"bridge.py {' '.join(bad)}: refused with status 2 ({r.stderr.strip()[-120:]})")
    print(f"1..{n}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
