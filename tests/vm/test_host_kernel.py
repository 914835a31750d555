#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ivshmem_host.ko (the host-kernel peer) in an L1 guest: these machines cannot load
modules, so the "host kernel" is a TCG guest's (-cpu max, 1.5 GiB, panic_on_warn). No
L2 guest here: the module is driven from user space (tests/vm/guest/hosttest.c, our
server, ivshmem-kernel-peer, ivshmem-client) and from its in-kernel API test module
(tests/vm/guest/ivshmem_host_kapi_test.c):
  - refusals: non-shmem fds, read-only fds, unsealed memfds when seals are required,
    bad sizes and names, a second ATTACH, a taken name, bad binds, bad PEER reports;
  - a marker written through the kernel mapping is read from a user mmap of the memfd;
  - RING reaches a peer's eventfd; own-eventfd signals reach the module's callback,
    which echoes them to a peer (a ring deferred from the wake-up), 100 times;
  - lifetime: closing the attaching file, killing its process, a hole punched in a
    sealed memfd and an unsealed memfd shrunk each run the remove callback; the API
    fails with ENODEV after; 20 attach/detach cycles and 10 hole/shrink cycles leave no
    vmap, no pinned memory and no module reference behind;
  - ivshmem-server --kernel-peer: clients see the kernel as peer 0, ring it and get the
    module's echo; the module's peer callback counts every join and leave; a second
    server with the same name fails at start-up; the server's exit removes the region;
    a hole punched in its /dev/shm memory removes the region and the kernel peer leaves;
  - ivshmem-kernel-peer against our server (the server going away removes the region)
    and against QEMU's contrib server (SIGTERM removes it), when scripts/qemu-contrib.sh
    built it."""
import glob
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nested import _ldd  # noqa: E402
from rig import Guest, build_file, run_test  # noqa: E402

QEMU_CONTRIB = "/var/cache/ivshmem-ci/qemu-contrib"

# The host peers, in the L1 guest: our server with --kernel-peer, then the tool with our
# server. Clients ring peer 0 (the kernel) and wait for the module's echo (echo_last=1).
PEERS_SCRIPT = r"""
k=/lib/ivshmem_host_kapi_test.ko
p=/sys/module/ivshmem_host_kapi_test/parameters
param() { cat $p/$1; }
param_is() { test "$(cat $p/$1)" = "$2"; }
# seen N: the peer callback saw N joins and N leaves (a leave comes once the client hung up).
seen() { wait_for 10 param_is leaves $1 && param_is joins $1; }
# ring_known SOCK ID N: the same through ivshmem-kernel-peer, which reports a join only
# once it read the server's notice: a client that rang at once could reach the kernel before
# its join did. So each client waits for a second peer (--wait-peers 2) that starts only
# after the module heard of the client; the module echoes to it (echo_peer).
ring_known() { n=0; i=0; j=$(param joins); while [ $i -lt $3 ]; do
    ivshmem-client -S $1 --wait-peers 2 --notify $2:0 --wait 1 --timeout 5000 >/dev/null &
    c=$!
    wait_for 10 param_is joins $((j + 1))
    cat $p/last_joined >$p/echo_peer
    ivshmem-client -S $1 --wait 1 --timeout 500 >/dev/null
    wait $c && n=$((n+1))
    j=$((j + 2)); i=$((i+1)); done; echo $n; }
# stop PID: SIGTERM, then its exit status.
stop() { kill -TERM $1; wait $1; }
# stop_removes PID STATUS WHO: WHO exits STATUS on SIGTERM, and that removes the region.
stop_removes() { stop $1; rc=$?; ok "$3 exits $2 on SIGTERM ($rc)" test $rc = $2
    ok "$3's exit removed the region: remove callback ran" param_is removed 1
    ok "the API test module unloads" rmmod ivshmem_host_kapi_test; }
# ring_kernel SOCK ID N: N clients in turn ring peer ID's vector 0 and wait for the
# module's echo; prints how many got it.
ring_kernel() { n=0; i=0; while [ $i -lt $3 ]; do
    ivshmem-client -S $1 --notify $2:0 --wait 1 --timeout 5000 >/dev/null && n=$((n+1))
    i=$((i+1)); done; echo $n; }

ivshmem-server -F --memfd -l 1M -n 1 -S /tmp/kp.sock --kernel-peer kp >/tmp/kp.log 2>&1 &
spid=$!
ok "ivshmem-server --kernel-peer kp starts" wait_for 20 test -S /tmp/kp.sock
ok "the API test module takes region kp" insmod $k region=kp echo_last=1
ivshmem-server -F --memfd -l 1M -S /tmp/kp2.sock --kernel-peer kp >/tmp/kp2.log 2>&1
rc=$?
diag "$(cat /tmp/kp2.log)"
ok "a second server with --kernel-peer kp exits 1 at start-up: name taken" sh -c \
    "test $rc = 1 && grep -q 'already attached' /tmp/kp2.log && ! test -e /tmp/kp2.sock"
ok "a client sees the kernel as peer 0 with 1 vector" sh -c \
    'ivshmem-client -S /tmp/kp.sock --list | grep -qx "peer 0 1"'
n=$(ring_kernel /tmp/kp.sock 0 20)
ok "20 clients rang the kernel peer and got the module's echo ($n)" test "$n" = 20
ok "the module's callback counted 20 own-vector signals" test "$(param echoes)" = 20
ok "its peer callback saw 21 joins and 21 leaves" seen 21
stop_removes $spid 0 "the server"
diag "server log: $(tr '\n' '|' </tmp/kp.log)"

ivshmem-server -F --memfd -l 1M -n 2 -S /tmp/t.sock >/tmp/t.log 2>&1 &
spid=$!
ok "ivshmem-server (no --kernel-peer) starts" wait_for 20 test -S /tmp/t.sock
ivshmem-kernel-peer -S /tmp/t.sock -n 2 -v kt 2>/tmp/kt.log &
kpid=$!
ok "ivshmem-kernel-peer attaches kt as peer 0" wait_for 20 grep -q "is peer 0 of" /tmp/kt.log
ok "the API test module takes region kt" insmod $k region=kt
n=$(ring_known /tmp/t.sock 0 10)
ok "10 clients rang the tool's kernel peer and got the echo ($n)" test "$n" = 10
ok "the peer callback saw 20 joins and 20 leaves" seen 20
stop $spid
wait $kpid
rc=$?
diag "tool log: $(tr '\n' '|' </tmp/kt.log)"
ok "the tool exits 1 when the server goes away ($rc)" sh -c \
    "test $rc = 1 && grep -q 'went away' /tmp/kt.log"
ok "and the region is removed: remove callback ran" test "$(param removed)" = 1
ok "the API test module unloads" rmmod ivshmem_host_kapi_test

mkdir -p /dev/shm && mount -t tmpfs tmpfs /dev/shm
ivshmem-server -F -M kh -l 1M -S /tmp/h.sock --kernel-peer kh >/tmp/h.log 2>&1 &
spid=$!
ok "ivshmem-server -M kh --kernel-peer kh starts" wait_for 20 test -S /tmp/h.sock
ok "the API test module takes region kh" insmod $k region=kh
ok "a hole punched in /dev/shm/kh" hosttest punch /dev/shm/kh
ok "makes the module remove the region" wait_for 10 param_is removed 1
ivshmem-client -S /tmp/h.sock --list >/dev/null
ok "the next join finds it gone: the server lets the kernel peer leave" \
    wait_for 10 grep -q "removed its region" /tmp/h.log
ok "clients no longer see peer 0" sh -c '! ivshmem-client -S /tmp/h.sock --list | grep -q "^peer 0 "'
stop $spid
rc=$?
ok "the server still exits 0 ($rc)" test $rc = 0
ok "the API test module unloads" rmmod ivshmem_host_kapi_test
"""

# QEMU's contrib/ivshmem-server (dynamically linked to glib) and the tool.
QEMU_SCRIPT = r"""
qemu-ivshmem-server -F -l 1M -n 1 -M qshm -S /tmp/q.sock >/tmp/q.log 2>&1 &
qpid=$!
ok "QEMU's contrib ivshmem-server starts in L1" wait_for 20 test -S /tmp/q.sock
ivshmem-kernel-peer -S /tmp/q.sock kq 2>/tmp/kq.log &
kpid=$!
ok "ivshmem-kernel-peer attaches kq to QEMU's server" wait_for 20 grep -q "is peer" /tmp/kq.log
id=$(sed -n 's/.*is peer \([0-9]*\) of.*/\1/p' /tmp/kq.log)
ok "the API test module takes region kq" insmod $k region=kq
n=$(ring_known /tmp/q.sock $id 5)
ok "5 clients of QEMU's server rang the kernel peer $id and got the echo ($n)" test "$n" = 5
ok "the peer callback saw 10 joins and 10 leaves" seen 10
stop_removes $kpid 0 "the tool"
stop $qpid
"""


def qemu_contrib_server():
    """QEMU's contrib ivshmem-server built by scripts/qemu-contrib.sh, or None."""
    d = os.environ.get("IVSHMEM_QEMU_CONTRIB")
    found = [os.path.join(d, "ivshmem-server")] if d else \
        sorted(glob.glob(os.path.join(QEMU_CONTRIB, "*", "ivshmem-server")))
    found = [f for f in found if os.access(f, os.X_OK)]
    return found[-1] if found else None


def body(tap):
    with Guest("hostkernel", timeout=300, mem=1536, kernel_args="panic_on_warn=1") as g:
        g.add_file("/lib/ivshmem_host.ko", g.kmod("ivshmem_host.ko"))
        g.add_file("/lib/ivshmem_host_kapi_test.ko", g.kmod("ivshmem_host_kapi_test.ko"))
        g.add_file("/bin/hosttest", build_file("tests/vm/hosttest.static"))
        g.add_file("/bin/ivshmem-server", build_file("server/ivshmem-server.static"))
        g.add_tool("ivshmem-client")
        g.add_tool("ivshmem-kernel-peer")
        qserver = qemu_contrib_server()
        if qserver:
            g.add_file("/bin/qemu-ivshmem-server", qserver)
            for lib in _ldd(qserver):
                g.add_file(lib, os.path.realpath(lib))
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
hosttest lost /lib/ivshmem_host_kapi_test.ko hole >&3
ok "hosttest lost hole" test $? = 0
hosttest lost /lib/ivshmem_host_kapi_test.ko shrink >&3
ok "hosttest lost shrink" test $? = 0
hosttest exit /lib/ivshmem_host_kapi_test.ko >&3
ok "hosttest exit" test $? = 0
""" + PEERS_SCRIPT + (QEMU_SCRIPT if qserver else
                      'pass "QEMU\'s contrib server with the tool # SKIP not built '
                      '(scripts/qemu-contrib.sh)"\n') + r"""

free0=$(awk '/^MemFree/ {print $2}' /proc/meminfo)
slab0=$(awk '/^SUnreclaim/ {print $2}' /proc/meminfo)
hosttest cycles 20 >&3
ok "hosttest cycles" test $? = 0
hosttest lostcycles 10 >&3
ok "hosttest lostcycles" test $? = 0
sync
echo 3 >/proc/sys/vm/drop_caches
free1=$(awk '/^MemFree/ {print $2}' /proc/meminfo)
slab1=$(awk '/^SUnreclaim/ {print $2}' /proc/meminfo)
diag "MemFree before/after 20 + 10 cycles of 64 MiB: $free0 / $free1 kB; SUnreclaim $slab0 / $slab1 kB"
ok "no pinned page leaked (MemFree dropped less than 32 MiB)" test $((free0 - free1)) -lt 32768
ok "unreclaimable slab grew less than 256 kB" test $((slab1 - slab0)) -lt 256
ok "no vmap of a region left" sh -c '! grep -q ivshmem_host /proc/vmallocinfo'
ok "rmmod ivshmem_host (no reference leaked)" rmmod ivshmem_host
ok "no kernel warnings" sh -c '! dmesg | grep -E "WARNING|BUG|Oops|leak"'
"""
        g.start()
        tap.guest(g.wait())


run_test(body)
