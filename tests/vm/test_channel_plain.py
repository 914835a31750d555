#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Channels host <-> guest over ivshmem-plain (no interrupts: both sides poll).
  - the host formats the /dev/shm file with `ivshmem format` (a channel "ctl");
  - without the driver, the guest's uncached sysfs mapping is refused for channels
    with a clear message (the ring needs cacheable memory);
  - with ivshmem.ko: host -> guest lines, guest -> host lines, a 1 MiB binary stream
    guest -> host compared byte for byte, and the exit codes of `ivshmem send/recv`.
The host side uses the host build of the same CLI, through the library's file backend."""
import os
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rig import Guest, build_file, run_test  # noqa: E402


def host_cli(*args, stdin=None, timeout=120):
    return subprocess.run([build_file("tools/ivshmem"), *args], input=stdin,
                          capture_output=True, timeout=timeout)


def body(tap):
    blob = os.urandom(1 << 20)
    with Guest("chanplain", timeout=180) as g:
        shm = g.add_plain(size="16M", addr="0x08")
        g.add_tool()
        g.add_driver(load=False)
        r = host_cli("format", "--force", "--name", "chan-plain", "--channel", "ctl",
                     "--channel", "bulk:256K", shm)
        tap.ok(r.returncode == 0, f"host: ivshmem format ({r.stderr.decode().strip() or 'ok'})")
        # The control tty is held open for the whole script (see test_driver_doorbell.py).
        g.script = r"""
exec 4</dev/ttyS2
d=/sys/bus/pci/devices/0000:00:08.0
out=$(ivshmem send -b sysfs -t 2000 0000:00:08.0 ctl x 2>&1)
rc=$?
diag "sysfs: $out"
ok "channels on the uncached sysfs mapping are refused (exit $rc)" test $rc = 1
ok "... saying why" sh -c "echo '$out' | grep -q cacheable"
ok "insmod ivshmem.ko" insmod /lib/ivshmem.ko
ok "the region is named chan-plain" test "$(cat /sys/class/ivshmem/ivshmem0/name)" = chan-plain
ivshmem recv --lines -n 3 -t 60000 /dev/ivshmem0 ctl > /tmp/got 2>/tmp/err
rc=$?
diag "recv: $(cat /tmp/err)"
ok "recv 3 lines from the host (exit $rc)" test $rc = 0
ok "they are the host's lines" test "$(cat /tmp/got | tr '\n' ,)" = "one,two,three,"
ok "send 2 lines to the host" sh -c 'printf "alpha\nbeta\n" | ivshmem send --lines -t 60000 /dev/ivshmem0 ctl'
IFS= read -r go <&4
ok "stream 1 MiB to the host" sh -c 'ivshmem read -l 1M /dev/ivshmem0 --offset 15M | ivshmem send -t 60000 /dev/ivshmem0 bulk'
ivshmem recv -t 300 /dev/ivshmem0 ctl >/dev/null 2>&1
ok "recv with nobody sending times out with exit 4" test $? = 4
"""
        # The host's half runs next to the guest, one step after the other.
        results = {}

        def host_side():
            # --linger: wait until the guest read them (it may still be booting), else our
            # own recv below would take them as a departed sender's leftovers.
            results["send"] = host_cli("send", "--lines", "-t", "90000", "--linger", "90000",
                                       shm, "ctl", stdin=b"one\ntwo\nthree\n")
            results["recv"] = host_cli("recv", "--lines", "-n", "2", "-t", "90000", shm, "ctl")
            g.send("go")
            results["bulk"] = host_cli("recv", "-t", "90000", shm, "bulk")

        # The blob the guest streams back sits at 15 MiB, clear of the layout's sections.
        with open(shm, "r+b") as f:
            f.seek(15 << 20)
            f.write(blob)
        g.start()
        t = threading.Thread(target=host_side, daemon=True)
        t.start()
        res = g.wait()
        t.join(timeout=120)
        tap.guest(res)
        s, rv, b = results.get("send"), results.get("recv"), results.get("bulk")
        tap.ok(s is not None and s.returncode == 0,
               f"host: send delivered ({s and s.stderr.decode().strip()})")
        tap.ok(rv is not None and rv.returncode == 0 and rv.stdout == b"alpha\nbeta\n",
               f"host: received the guest's lines ({rv and rv.stdout!r})")
        tap.ok(b is not None and b.returncode == 0 and b.stdout == blob,
               f"host: the 1 MiB stream arrived intact ({b and len(b.stdout)} bytes, "
               f"exit {b and b.returncode}, {b and b.stderr.decode().strip()})")


run_test(body)
