#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Issue 4's seed scenario, exactly: a `-machine pc` guest gets two ivshmem-plain
devices hot-added through the monitor (16M at 00:10.0, 8M at 00:11.0) after it
reported "ready"; the host writes "1234567\\n" and "7654321\\n" into the backing
files; inside the guest `ivshmem` finds each device by PCI address and reads the
right 8 bytes. Then the host gives both regions a header with a name, and the
guest finds them by name (signature) and reads the data behind the header.
Finally one device is hot-removed while `ivshmem watch` has it mapped: the
program must fail with a clear error, never print stale bytes or hang."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from guestlib import expect_bytes, layout_header, write_at  # noqa: E402
from rig import Guest, run_test  # noqa: E402

FIRST = b"1234567\n"
SECOND = b"7654321\n"


def body(tap):
    with Guest("seed", timeout=150, machine="pc") as g:
        g.add_tool()
        shm1 = f"/dev/shm/ivshmem-seed-{os.getpid()}-1"
        shm2 = f"/dev/shm/ivshmem-seed-{os.getpid()}-2"
        g.shm_files += [shm1, shm2]     # removed by the rig on exit
        for path, size in ((shm1, 16 << 20), (shm2, 8 << 20)):
            with open(path, "wb") as f:
                f.truncate(size)
        g.script = f"""
ok "no ivshmem device before the hot-add" test "$(ivshmem list --json)" = "[]"
diag ready
ctl_read go
ok "00:10.0 appears after the hot-add" wait_for 20 test -e /sys/bus/pci/devices/0000:00:10.0/resource2
ok "00:11.0 appears after the hot-add" wait_for 20 test -e /sys/bus/pci/devices/0000:00:11.0/resource2
ivshmem list
ivshmem list --json > /tmp/list.json
ok "list shows both, without restarting anything" test "$(grep -c '"bdf"' /tmp/list.json)" = 2
ok "list reports 16M for 00:10.0" grep -q '"bdf": "0000:00:10.0", "size": 16777216, "type": "plain"' /tmp/list.json
ok "list reports 8M for 00:11.0" grep -q '"bdf": "0000:00:11.0", "size": 8388608, "type": "plain"' /tmp/list.json
{expect_bytes("/tmp/first", FIRST)}
{expect_bytes("/tmp/second", SECOND)}
ivshmem read 0000:00:10.0 --length 8 > /tmp/got1; rc1=$?
ok "read 0000:00:10.0 (full BDF) exits 0" test $rc1 = 0
ok "0000:00:10.0 holds 1234567" cmp /tmp/got1 /tmp/first
ivshmem read 00:11.0 --length 8 > /tmp/got2
ok "00:11.0 (short BDF) holds 7654321" cmp /tmp/got2 /tmp/second
ivshmem read pci:0000:00:11.0 --offset 0 --length 8 > /tmp/got2b
ok "pci:0000:00:11.0 holds 7654321" cmp /tmp/got2b /tmp/second
diag "phase1-done"
ctl_read go2
ivshmem list
ivshmem read name:seed-first --offset 4096 --length 8 > /tmp/got3; rc3=$?
ok "name:seed-first resolves (exit $rc3)" test $rc3 = 0
ok "name:seed-first reads 1234567" cmp /tmp/got3 /tmp/first
ivshmem read name:seed-second --offset 4096 --length 8 > /tmp/got4
ok "name:seed-second reads 7654321" cmp /tmp/got4 /tmp/second
ivshmem read name:nonesuch --length 8 > /dev/null 2>/tmp/err; rc=$?
diag "$(cat /tmp/err)"
ok "an unknown name exits 3 (no such device)" test $rc = 3
ivshmem read 00:12.0 2>/tmp/err >/dev/null; rc=$?
ok "an absent BDF exits 3" test $rc = 3
ivshmem read 00:99.0 2>/tmp/err >/dev/null; rc=$?
diag "$(cat /tmp/err)"
ok "a malformed BDF exits 2 (usage)" test $rc = 2
ivshmem dump 00:10.0 --offset 16M 2>/tmp/err >/dev/null; rc=$?
ok "an offset past the end exits 2" test $rc = 2
ivshmem read 00:10.0 --offset 4093 --length 11 > /tmp/odd
{expect_bytes("/tmp/oddexp", bytes(3) + FIRST)}
ok "unaligned offset/length read is byte-exact" cmp /tmp/odd /tmp/oddexp
printf 'abcdefghijk' | ivshmem write 00:11.0 --offset 8195
ok "unaligned write exits 0" test $? = 0
ivshmem watch 00:11.0 --offset 4096 --length 8 --interval 50 > /tmp/watch.out 2>/tmp/watch.err &
wpid=$!
ivshmem watch --backend devmem 00:11.0 --offset 4096 --length 8 --interval 50 > /tmp/dwatch.out 2>/tmp/dwatch.err &
dpid=$!
ok "watch prints the first snapshot" wait_for 10 grep -q 7654321 /tmp/watch.out
ok "devmem watch prints the first snapshot" wait_for 10 grep -q 7654321 /tmp/dwatch.out
diag "unplug-now"
ctl_read go3
ok "00:11.0 disappears after device_del" wait_for 20 test ! -e /sys/bus/pci/devices/0000:00:11.0
wait $wpid; wrc=$?
diag "watch: $(cat /tmp/watch.err)"
ok "watch exits 3 when its device is removed while mapped" test $wrc = 3
ok "... and says the device was removed" grep -q removed /tmp/watch.err
wait $dpid; drc=$?
diag "devmem watch: $(cat /tmp/dwatch.err)"
ok "devmem watch exits 3 too (its mapping is not revoked: the presence check catches it)" test $drc = 3
ok "devmem watch never printed all-ones as data" test -z "$(grep 'ff ff ff ff' /tmp/dwatch.out)"
ok "list no longer shows 00:11.0" test "$(ivshmem list --json | grep -c '"bdf"')" = 1
"""
        g.start()
        g.wait_line(r"^# ready", timeout=60)
        for i, (path, size, addr) in enumerate(((shm1, "16M", "0x10"), (shm2, "8M", "0x11")), 1):
            out = g.hmp(f"object_add memory-backend-file,size={size},share=on,"
                        f"mem-path={path},id=shm{i}")
            tap.ok(out == "", f"object_add shm{i} ({size}) {out!r}")
            out = g.hmp(f"device_add ivshmem-plain,memdev=shm{i},bus=pci.0,addr={addr},id=iv{i}")
            tap.ok(out == "", f"device_add ivshmem-plain at {addr} {out!r}")
        write_at(shm1, 0, FIRST)
        write_at(shm2, 0, SECOND)
        g.send("go")
        g.wait_line(r"^# phase1-done", timeout=60)
        # Give both regions a named header; the data moves behind it (data_offset 4096).
        write_at(shm1, 0, layout_header("seed-first", 16 << 20))
        write_at(shm1, 4096, FIRST)
        write_at(shm2, 0, layout_header("seed-second", 8 << 20))
        write_at(shm2, 4096, SECOND)
        g.send("go2")
        g.wait_line(r"^# unplug-now", timeout=60)
        t0 = time.monotonic()
        out = g.hmp("device_del iv2")
        tap.ok(out == "", f"device_del iv2 {out!r}")
        g.send("go3")
        res = g.wait()
        tap.diag(f"unplug to guest exit: {time.monotonic() - t0:.1f} s")
        tap.guest(res)
        with open(shm2, "rb") as f:
            f.seek(8195)
            got = f.read(11)
        tap.ok(got == b"abcdefghijk", f"host sees the guest's unaligned write ({got!r})")


run_test(body)
