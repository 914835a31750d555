#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The rig's own failure paths: each must end in bounded time with a message naming the problem,
and print the console. A rig that hangs or passes a broken guest would make every VM test worthless."""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rig  # noqa: E402
from rig import Guest, RigError, guest_kernel, run_test  # noqa: E402


def timed(guest):
    t0 = time.monotonic()
    res = guest.run()
    return res, time.monotonic() - t0


def body(tap):
    # 1. A kernel that is not a kernel: QEMU or the firmware gives up; never booted.
    with tempfile.TemporaryDirectory() as kdir:
        os.makedirs(os.path.join(kdir, "boot"))
        with open(os.path.join(kdir, "boot", "vmlinuz-0.0-junk"), "wb") as f:
            f.write(b"\x7fNOT A KERNEL" * 1000)
        with Guest("junk-kernel", kernel_dir=kdir, boot_timeout=20, timeout=30) as g:
            res, secs = timed(g)
            tap.ok(not res.passed and res.error is not None and "never booted" in res.error,
                   f"junk kernel fails: {res.error}")
            tap.ok(secs < 40, f"junk kernel fails within bounds ({secs:.1f} s)")

    # 2. The guest's init dies at once: kernel panic, -no-reboot stops QEMU; no verdict.
    with Guest("no-init", kernel_args="rdinit=/nonexistent", boot_timeout=60, timeout=90) as g:
        res, secs = timed(g)
        tap.ok(not res.passed and res.error is not None and "never booted" in res.error,
               f"guest without init is reported: {res.error}")
        console = g.console_tail()
        tap.ok("panic" in console.lower() or "init" in console.lower(),
               "the console tail shows why (panic / init)")

    # 3. A script that hangs: the hard timeout kills it. (30 s: a loaded CI machine can take
    #    15 s to boot, and the check below needs the script to have started.)
    with Guest("hang", timeout=30) as g:
        g.script = 'pass "started"\nsleep 3600\n'
        res, secs = timed(g)
        tap.ok(res.error is not None and "hard timeout" in res.error,
               f"hanging guest hits the hard timeout: {res.error}")
        tap.ok(secs < 55, f"and is killed in bounded time ({secs:.1f} s)")
        tap.ok(res.lines == ["ok started"], "verdict lines before the hang are kept")

    # 3b. A guest that does not reach its init in time: the boot timeout names it.
    with Guest("slow-boot", boot_timeout=1, timeout=60) as g:
        res, secs = timed(g)
        tap.ok(res.error is not None and "never booted" in res.error and secs < 10,
               f"boot timeout is reported ({secs:.1f} s): {res.error}")

    # 4. A guest that reports a failure, and one that exits non-zero, do not pass.
    with Guest("says-fail", timeout=60) as g:
        g.script = 'fail "deliberate"\n'
        res = g.run()
        tap.ok(not res.passed and res.exit_code == 0, "a 'not ok' line fails the guest")
    with Guest("exit-3", timeout=60) as g:
        g.script = 'exit 3\n'
        res = g.run()
        tap.ok(not res.passed and res.exit_code == 3, "a non-zero script exit fails the guest")

    # 5. Missing pieces are named with a fix, not a stack trace.
    try:
        guest_kernel("/nonexistent-kernel-dir")
        tap.ok(False, "missing guest kernel is reported")
    except RigError as e:
        tap.ok("scripts/guest-kernel.sh" in str(e), f"missing guest kernel names the fix: {e}")

    # 6. IVSHMEM_VM_KVM=1 without KVM: a RigError naming the device and the switch, before
    #    QEMU starts (it used to end in a TypeError on boot_seconds). The device path is
    #    pointed somewhere empty so that this holds on machines with KVM too.
    saved = os.environ.get("IVSHMEM_VM_KVM"), rig.KVM_DEVICE
    os.environ["IVSHMEM_VM_KVM"] = "1"
    rig.KVM_DEVICE = "/nonexistent/kvm"
    try:
        with Guest("no-kvm", timeout=30) as g:
            try:
                g.start()
                tap.ok(False, "IVSHMEM_VM_KVM=1 without KVM is refused")
            except RigError as e:
                tap.ok("/nonexistent/kvm" in str(e) and "IVSHMEM_VM_KVM" in str(e) and g.proc is None,
                       f"IVSHMEM_VM_KVM=1 without KVM fails cleanly before QEMU starts: {e}")
    finally:
        rig.KVM_DEVICE = saved[1]
        if saved[0] is None:
            del os.environ["IVSHMEM_VM_KVM"]
        else:
            os.environ["IVSHMEM_VM_KVM"] = saved[0]


run_test(body)
