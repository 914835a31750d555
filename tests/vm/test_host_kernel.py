#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ivshmem_host.ko (the host-kernel peer) in an L1 guest: these machines cannot load
modules, so the "host kernel" is a TCG guest's (-cpu max, 1.5 GiB, panic_on_warn). No
L2 guest yet: the module is driven from user space (tests/vm/guest/hosttest.c) and from
its in-kernel API test module (tests/vm/guest/ivshmem_host_kapi_test.c):
  - refusals: non-shmem fds, read-only fds, unsealed memfds when seals are required,
    bad sizes and names, a second ATTACH, a taken name, bad binds;
  - a marker written through the kernel mapping is read from a user mmap of the memfd;
  - RING reaches a peer's eventfd; own-eventfd signals reach the module's callback,
    which echoes them to a peer (a ring deferred from the wake-up), 100 times;
  - closing the attaching file runs the remove callback; 20 attach/detach cycles
    leave no vmap, no pinned memory and no module reference behind."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rig import Guest, build_file, run_test  # noqa: E402


def body(tap):
    with Guest("hostkernel", timeout=300, mem=1536, kernel_args="panic_on_warn=1") as g:
        g.add_file("/lib/ivshmem_host.ko", g.kmod("ivshmem_host.ko"))
        g.add_file("/lib/ivshmem_host_kapi_test.ko", g.kmod("ivshmem_host_kapi_test.ko"))
        g.add_file("/bin/hosttest", build_file("tests/vm/hosttest.static"))
        g.script = r"""
ok "insmod ivshmem_host.ko" insmod /lib/ivshmem_host.ko
ok "/dev/ivshmem-host exists, mode 0600" sh -c 'test -c /dev/ivshmem-host && stat -c %a /dev/ivshmem-host | grep -qx 600'
hosttest refusals >&3
ok "hosttest refusals" test $? = 0
hosttest kapi /lib/ivshmem_host_kapi_test.ko >&3
ok "hosttest kapi" test $? = 0
p=/sys/module/ivshmem_host_kapi_test/parameters
ok "closing the attaching file ran the remove callback" test "$(cat $p/removed)" = 1
ok "the module's callback saw 100 signals" test "$(cat $p/echoes)" = 100
ok "the in-kernel user unloads after the removal" rmmod ivshmem_host_kapi_test

free0=$(awk '/^MemFree/ {print $2}' /proc/meminfo)
slab0=$(awk '/^SUnreclaim/ {print $2}' /proc/meminfo)
hosttest cycles 20 >&3
ok "hosttest cycles" test $? = 0
sync
echo 3 >/proc/sys/vm/drop_caches
free1=$(awk '/^MemFree/ {print $2}' /proc/meminfo)
slab1=$(awk '/^SUnreclaim/ {print $2}' /proc/meminfo)
diag "MemFree before/after 20 cycles of 64 MiB: $free0 / $free1 kB; SUnreclaim $slab0 / $slab1 kB"
ok "no pinned page leaked (MemFree dropped less than 32 MiB)" test $((free0 - free1)) -lt 32768
ok "unreclaimable slab grew less than 256 kB" test $((slab1 - slab0)) -lt 256
ok "no vmap of a region left" sh -c '! grep -q ivshmem_host /proc/vmallocinfo'
ok "rmmod ivshmem_host (no reference leaked)" rmmod ivshmem_host
ok "no kernel warnings" sh -c '! dmesg | grep -E "WARNING|BUG|Oops|leak"'
"""
        g.start()
        tap.guest(g.wait())


run_test(body)
