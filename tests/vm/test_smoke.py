#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Smoke test of the rig: a guest boots with ivshmem-plain, finds 1af4:1110 in sysfs,
reads what the host wrote into the backing file and writes an answer the host reads.
A second device, backed by a memfd, shows the rig's other backing."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rig import Guest, run_test  # noqa: E402

GREETING = b"IVSHMEM!"          # 8 bytes: one 64-bit devmem read
ANSWER = b"fromVM42"           # written back as two 32-bit stores


def le64(b):
    return int.from_bytes(b, "little")


def body(tap):
    with Guest("smoke", timeout=120) as g:
        shm = g.add_plain(size="4M", addr="0x08", data=GREETING)
        g.add_plain(size="2M", addr="0x09", memfd=True)    # a memfd backing, private to QEMU
        # The rig's own busybox only: this test must not depend on our tools working.
        # Only the rig's busybox: this test must not depend on our own tools working.
        # sysfs resource2 can only be mmap'd, so busybox devmem reads the BAR directly.
        g.script = f"""
dev=/sys/bus/pci/devices/0000:00:08.0
ok "1af4:1110 present at the fixed address 00:08.0" test "$(cat $dev/vendor):$(cat $dev/device)" = "0x1af4:0x1110"
ok "class is 0x050000 (RAM)" test "$(cat $dev/class)" = "0x050000"
bar2=$(sed -n 3p $dev/resource | cut -d' ' -f1)
diag "BAR2 at $bar2"
got=$(devmem $bar2 64)
diag "read $got"
ok "guest reads the host's string from BAR2" test $((got)) = $(( {hex(le64(GREETING))} ))
mem=/sys/bus/pci/devices/0000:00:09.0
ok "the memfd-backed device is there too" test "$(cat $mem/vendor):$(cat $mem/device)" = "0x1af4:0x1110"
mbar=$(sed -n 3p $mem/resource | cut -d' ' -f1)
devmem $mbar 32 0x5a5aa5a5
ok "memfd-backed memory holds what the guest wrote" test $(( $(devmem $mbar 32) )) = $(( 0x5a5aa5a5 ))
devmem $((bar2 + 4096)) 32 {hex(le64(ANSWER[:4]))} &&
devmem $((bar2 + 4100)) 32 {hex(le64(ANSWER[4:]))}
ok "guest wrote its answer" test $? = 0
"""
        t0 = time.monotonic()
        res = g.run()
        boot = f"{g.boot_seconds:.1f} s" if g.boot_seconds is not None else "never"
        tap.diag(f"guest booted: {boot} (QEMU start to /init); ran for "
                 f"{time.monotonic() - t0:.1f} s in all (boot + script + poweroff)")
        tap.guest(res)
        with open(shm, "rb") as f:
            f.seek(4096)
            got = f.read(len(ANSWER))
        tap.ok(got == ANSWER, f"host reads the guest's answer from the backing file (got {got!r})")


run_test(body)
