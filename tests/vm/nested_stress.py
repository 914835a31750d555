#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Boot L2 guests in one L1 guest over and over, and count the boots that fail: the
measurement behind the nested tests' one-L2-at-a-time rule (docs/testing.md, "Nested
guests"). Not a test of ours (it is not in a suite): it measures QEMU's TCG.

    IVSHMEM_NESTED_L2S=2 IVSHMEM_NESTED_ROUNDS=10 tests/vm/nested_stress.py

Each round starts IVSHMEM_NESTED_L2S L2 guests at once (default 1) with l2_launch (no boot
retry: this measures what l2_start's retry is for), each of which boots and reports; L1
waits for all of them (each bounded by 100 s). A boot fails when its guest never
reports exit status 0; L1 itself dying (a kernel panic, a hang until its hard timeout) ends
the run. Prints one line per boot, the failed guests' console tails and the L1 kernel's
panic/lockup lines, then "# BOOTS n failed m" (and "not ok" if m > 0 or L1 died)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nested import Nested  # noqa: E402
from rig import run_test  # noqa: E402

L2S = int(os.environ.get("IVSHMEM_NESTED_L2S", "1"))
ROUNDS = int(os.environ.get("IVSHMEM_NESTED_ROUNDS", "10"))
L2_TIMEOUT = 100

L1_SCRIPT = r"""
failed=0
boots=0
for i in $(seq 1 @ROUNDS@); do
	for g in @NAMES@; do l2_launch $g; done
	for g in @NAMES@; do
		d=/tmp/l2/$g
		pid=$(l2_pid $g)
		while l2_alive $g; do sleep 0.2; done
		wait $pid
		rc=$?
		boots=$((boots + 1))
		if grep -q '^RIG-EXIT 0' $d/verdict.log; then
			v "# BOOT round=$i guest=$g ok qemu_rc=$rc seconds=$(elapsed $(cat $d/start) $(now))"
		else
			failed=$((failed + 1))
			v "# BOOT round=$i guest=$g FAILED qemu_rc=$rc seconds=$(elapsed $(cat $d/start) $(now))"
			tail -n 20 $d/console.log | sed "s/^/# console $i $g| /" >&3
		fi
	done
done
v "# BOOTS $boots failed $failed"
dmesg | grep -A 30 -E 'lockup|BUG|Kernel panic|Oops' | sed 's/^/# L1 dmesg| /' >&3
"""


def body(tap):
    names = " ".join(f"g{i}" for i in range(L2S))
    with Nested("stress", timeout=(L2_TIMEOUT + 20) * ROUNDS + 240) as n:
        for name in names.split():
            n.add_l2(name, timeout=L2_TIMEOUT).script = 'ok "booted" true'
        n.l1.script = L1_SCRIPT.replace("@ROUNDS@", str(ROUNDS)).replace("@NAMES@", names)
        r = n.run()
        for line in r.lines:
            if line.startswith("# "):
                tap.diag(line[2:])
        summary = [line for line in r.lines if line.startswith("# BOOTS ")]
        tap.ok(r.error is None, f"L1 lived through {ROUNDS} rounds of {L2S} L2 guest(s) at once"
               + (f" ({r.error})" if r.error else ""))
        if r.error:
            tap.diag(n.l1.console_tail(60))
        tap.ok(bool(summary) and summary[0].split()[-1] == "0",
               f"every L2 boot succeeded ({summary[0][2:] if summary else 'no summary'})")


run_test(body)
