#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ivshmem.ko on two ivshmem-plain devices in one guest:
  - the uncached sysfs resource2 mapping is benchmarked first (before the driver
    claims BAR2: x86 PAT refuses an uncached mapping of a range the driver holds
    write-back), then the driver's cacheable mapping, in the same guest run;
  - two devices at once, sysfs attributes, the host sees what the guest wrote;
  - interrupt calls on a plain device fail with EOPNOTSUPP; libivshmem's driver backend;
  - concurrent openers; 100 load/unload cycles without leaks;
  - hot-unplug via the monitor while a process has the device mapped."""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from guestlib import layout_header  # noqa: E402
from rig import Guest, build_file, run_test  # noqa: E402

SIZE = 16 << 20


def bench_lines(lines):
    """{(kind, which): {key: float}} from the guest's '# BENCH' lines."""
    out = {}
    for line in lines:
        m = re.match(r"# BENCH (\w+) (\S+) (.*)", line)
        if m:
            which = "driver" if m.group(2).startswith("/dev/") else "resource2"
            out[(m.group(1), which)] = {k: float(v) for k, v in
                                         (kv.split("=") for kv in m.group(3).split())}
    return out


def body(tap):
    with Guest("drvplain", timeout=240) as g:
        # 2 GiB (a sparse file) does not fit the 32-bit PCI hole, so the firmware puts BAR2
        # above 4 GiB where the MTRRs say write-back; in the hole they say uncached, and the
        # kernel then downgrades every mapping (also the driver's) to UC-.
        shm0 = g.add_plain(size="2G", addr="0x08", id="shm0")
        g.add_plain(size="16M", addr="0x09", id="shm1", data=layout_header("drv-named", SIZE))
        g.add_driver(load=False)
        g.add_tool()
        g.add_file("/bin/drvtest", build_file("tests/vm/drvtest.static"))
        g.script = r"""
d0=/sys/bus/pci/devices/0000:00:08.0
d1=/sys/bus/pci/devices/0000:00:09.0
# 1. the uncached sysfs mapping, before the driver owns BAR2
drvtest bench-copy $d0/resource2 8 4 >&3
drvtest bench-pingpong $d0/resource2 3000 >&3

# 2. the driver
ok "insmod ivshmem.ko" insmod /lib/ivshmem.ko
ok "two devices: /dev/ivshmem0 and /dev/ivshmem1" test -c /dev/ivshmem0 -a -c /dev/ivshmem1
ok "both bound to ivshmem" test "$(basename $(readlink $d0/driver))$(basename $(readlink $d1/driver))" = ivshmemivshmem
c=/sys/class/ivshmem/ivshmem0
ok "sysfs size" test "$(cat $c/size)" = 2147483648
ok "sysfs has_doorbell 0" test "$(cat $c/has_doorbell)" = 0
ok "sysfs vectors 0" test "$(cat $c/vectors)" = 0
ok "sysfs ivposition 0" test "$(cat $c/ivposition)" = 0
ok "class device under the PCI device" test -d $d0/ivshmem/ivshmem0
diag "$(drvtest info /dev/ivshmem0)"
ok "sysfs name of an unformatted region is empty" test -z "$(cat $c/name)"
ok "sysfs name from the layout header" test "$(cat /sys/class/ivshmem/ivshmem1/name)" = drv-named
# With the driver bound, BAR0/BAR2 are its own: `ivshmem list` reads its attributes instead.
ivshmem list --json >/tmp/list.json 2>&1
diag "list: $(cat /tmp/list.json)"
ok "ivshmem list shows the driver-bound device's name" grep -q '"drv-named"' /tmp/list.json
ok "ivshmem name: selector finds it through the driver" sh -c 'ivshmem info name:drv-named | grep -q 0000:00:09.0'
# The driver's mapping must really be write-back: ask PAT.
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
bar=$(sed -n 3p $d0/resource | cut -d' ' -f1)
pat=/sys/kernel/debug/x86/pat_memtype_list
if [ -r $pat ] && grep -q "mem " $pat; then
	diag "PAT: $(grep "mem $bar-" $pat)"
	diag "MTRR: $(cat /proc/mtrr | tr '\n' ';')"
	ok "PAT memtype of BAR2 is write-back" sh -c "grep 'mem $bar-' $pat | grep -q write-back"
	diag "$(ivshmem info /dev/ivshmem0 | grep 'memory type')"
	ok "ivshmem info reports the same memory type" sh -c "ivshmem info /dev/ivshmem0 | grep -q 'memory type: *write-back ($pat)'"
else
	diag "PAT is off in this guest: every mapping is write-back"
fi
drvtest bench-copy /dev/ivshmem0 8 4 >&3
drvtest bench-pingpong /dev/ivshmem0 3000 >&3
drvtest plain /dev/ivshmem0 >&3
drvtest lib 0000:00:08.0 >&3
drvtest lib /dev/ivshmem1 >&3
drvtest concurrent /dev/ivshmem0 4 150 >&3

# 3. load/unload cycles; a leak shows in /proc/iomem, vmalloc or slab
rmmod ivshmem
slab0=$(awk '/^SUnreclaim/ {print $2}' /proc/meminfo)
vm0=$(grep -c memremap /proc/vmallocinfo)
i=0
while [ $i -lt 100 ]; do
	insmod /lib/ivshmem.ko || break
	[ -c /dev/ivshmem1 ] || break
	rmmod ivshmem || break
	i=$((i + 1))
done
ok "100 load/unload cycles ($i done)" test $i = 100
ok "no ivshmem claim left in /proc/iomem" sh -c '! grep -q ivshmem /proc/iomem'
ok "no ivshmem interrupts or major left" sh -c '! grep -q ivshmem /proc/interrupts /proc/devices'
ok "no memremap left in vmalloc" test "$(grep -c memremap /proc/vmallocinfo)" = "$vm0"
slab1=$(awk '/^SUnreclaim/ {print $2}' /proc/meminfo)
diag "unreclaimable slab before/after 100 cycles: $slab0 / $slab1 kB"
ok "unreclaimable slab grew less than 256 kB" test $((slab1 - slab0)) -lt 256

# 4. hot-unplug of a mapped device
insmod /lib/ivshmem.ko
drvtest hold /dev/ivshmem1 $d1 60000 >&3 &
holder=$!
wait $holder
ok "the holder passed" test $? = 0
ok "device 1 is gone, device 0 still works" sh -c 'test ! -e /dev/ivshmem1 && drvtest info /dev/ivshmem0 >/dev/null'
ok "rmmod after the unplug (no reference leaked)" rmmod ivshmem
ok "no kernel warnings" sh -c '! dmesg | grep -E "WARNING|BUG|Oops|leak"'
"""
        t0 = time.monotonic()
        g.start()
        g.wait_line(r"HOLDING", timeout=200)
        out = g.hmp("device_del shm1")
        tap.ok("rror" not in out, f"device_del shm1 accepted ({out or 'no output'})")
        res = g.wait()
        tap.diag(f"guest ran for {time.monotonic() - t0:.1f} s")
        tap.guest(res)
        with open(shm0, "rb") as f:
            f.seek(3)
            got = f.read(9)
        tap.ok(got == b"unaligned", f"host reads what the guest wrote through the driver ({got!r})")
        b = bench_lines(res.lines)
        for kind, key in (("copy", "write_Bps"), ("copy", "read_Bps"),
                          ("pingpong", "roundtrips_per_s")):
            drv = b.get((kind, "driver"), {}).get(key)
            raw = b.get((kind, "resource2"), {}).get(key)
            if tap.ok(drv is not None and raw is not None, f"bench {kind} {key} measured both ways"):
                tap.diag(f"BENCH {kind} {key}: driver {drv:.3g}, resource2 {raw:.3g}, "
                         f"ratio {drv / raw:.2f}x")


run_test(body)
