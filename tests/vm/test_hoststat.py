#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The example host-kernel module ivshmem_hoststat.ko (kernel/examples/, docs/host-kernel.md
"Example module") in an L1 guest, no L2: the "host kernel" is a TCG guest's (1.5 GiB,
panic_on_warn). The region is a /dev/shm file formatted by the static `ivshmem` tool and
attached through /dev/ivshmem-host by tests/vm/guest/hoststat_peer.c, which also plays the
guest kernel's part of the request protocol from user space (eventfds for doorbells). Two busy
shell loops on the one vCPU stand for QEMU vCPU threads: each waits for the other, so each has
steal time (sched_info.run_delay) to report.
  - the module loads before the region exists and finds it when it is attached;
  - a first `ivshmem recv --count 3` gets 3 records and leaves; the module closes its end and
    reopens the channel for the next reader;
  - 100 requests over doorbells (PUBLISH and GET alternately), one answered without a doorbell,
    two refused (EINVAL), one run_delay figure;
  - the main reader (`ivshmem recv`, file backend) gets every record the module published, in
    order, and ends with exit 0 when the region is removed (the remove callback closes the
    end: EPIPE after the last record); hoststat_check checks each record (magic, version,
    sizes, seq and dropped, time, memory = MemTotal, load, vCPU counters monotonic, run_delay
    > 0, /proc/TID/schedstat now >= the last record) and the counts against the module's;
  - the module's counters reconcile with the requester's (requests, answers, bad, published on
    request) and the removal ran once;
  - the region attached again is found again (the channel reopened); a hostile cons (far past
    what was published) breaks the channel: the module closes its end and says why; it reopens
    only after a reader found the inconsistent ring (docs/channel.md: a send-only opener
    leaves a departed sender's records to a receiver);
  - a region whose channel has a corrupt ring_cap is refused with a message, never opened;
  - rmmod of both modules; no WARNING, BUG or Oops."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rig import Guest, build_file, run_test  # noqa: E402

SCRIPT = r"""
ok "insmod ivshmem_host.ko" insmod /lib/ivshmem_host.ko
f=/dev/shm/hoststat
ok "ivshmem format: channel hoststat, raw section hoststat-req" \
	ivshmem format --size 1M --name hoststat --channel hoststat --raw hoststat-req:4K $f
sh -c 'while :; do :; done' &
b1=$!
sh -c 'while :; do :; done' &
b2=$!
hp=/sys/module/ivshmem_hoststat/parameters
ok "insmod ivshmem_hoststat.ko before the region is attached" \
	insmod /lib/ivshmem_hoststat.ko vcpu_tids=$b1,$b2 period_ms=200
(ivshmem recv --count 3 --timeout 60000 $f hoststat >/tmp/first 2>/tmp/first.err; echo $? >/tmp/first.rc) &
(hoststat_peer $f hoststat 100 /tmp/go >/tmp/peer.out 2>&1; echo $? >/tmp/peer.rc) &
ok "a first reader gets 3 records and leaves" wait_for 90 test -s /tmp/first.rc
ok "... with exit 0 and 3 records of 160 bytes" test "$(cat /tmp/first.rc):$(wc -c </tmp/first)" = 0:480
ok "the module closes its end and reopens the channel (opens = 2)" \
	wait_for 10 sh -c "test \$(cat $hp/opens) = 2"
echo 0 >$hp/period_ms
base=$(cat $hp/published)
(ivshmem recv $f hoststat >/tmp/records 2>/tmp/recv.err; echo $? >/tmp/recv.rc) &
ok "the module connects to the second reader" wait_for 20 sh -c "test \$(cat $hp/connected) = 1"
echo 200 >$hp/period_ms
touch /tmp/go
ok "the requester finished its requests" wait_for 240 grep -q PEER-READY /tmp/peer.out
sleep 2
peer_pid=$(pidof hoststat_peer)
kill -TERM $peer_pid
ok "the requester exits 0 (region removed)" wait_for 30 test -s /tmp/peer.rc
grep -E '^(ok|not ok|#)' /tmp/peer.out >&3
ok "... with exit status 0" test "$(cat /tmp/peer.rc)" = 0
ok "the reader ends when the region is removed" wait_for 30 test -s /tmp/recv.rc
ok "... with exit 0 (EPIPE: the module closed its end)" test "$(cat /tmp/recv.rc)" = 0
cat /tmp/recv.err >&3
diag "module: published=$(cat $hp/published) (base $base) on_request=$(cat $hp/published_on_request) dropped=$(cat $hp/dropped) requests=$(cat $hp/requests) answers=$(cat $hp/answers) bad=$(cat $hp/bad_requests) spurious=$(cat $hp/spurious) ring_errors=$(cat $hp/ring_errors) opens=$(cat $hp/opens) removals=$(cat $hp/removals)"
ok "the removal ran the remove callback once" test "$(cat $hp/removals)" = 1
ok "no longer connected" test "$(cat $hp/connected)" = 0
ok "requests = answers = 104, as the requester made" \
	test "$(cat $hp/requests):$(cat $hp/answers)" = 104:104
ok "2 bad requests, no ring error, nothing dropped" \
	test "$(cat $hp/bad_requests):$(cat $hp/ring_errors):$(cat $hp/dropped)" = 2:0:0
ok "records published on request = the requester's successful PUBLISH requests (50)" \
	sh -c "grep -q 'PEER requests=104 published=50' /tmp/peer.out && test $(cat $hp/published_on_request) = 50"
memtotal=$(awk '/^MemTotal/ {print $2}' /proc/meminfo)
hoststat_check /tmp/records $(( $(cat $hp/published) - base )) $(cat $hp/published_on_request) $b1,$b2 $memtotal schedstat >&3
ok "hoststat_check: every record the module published, checked" test $? = 0
kill $b1 $b2

(hoststat_peer $f hoststat hold >/tmp/hold1.out 2>&1; echo $? >/tmp/hold1.rc) &
ok "the module finds the region again when it is re-attached and reopens the channel (opens = 3)" \
	wait_for 20 sh -c "test \$(cat $hp/opens) = 3"
# A hostile peer: cons of the module's ring (slot 0 after the reset: 4096 + 512 + 128) jumps ahead.
printf '\377\377\377\377' | dd of=$f bs=1 seek=4736 conv=notrunc 2>/dev/null
ok "corrupt ring indices break the channel: the module closes its end, saying why" \
	wait_for 20 sh -c 'dmesg | grep -q "the reader corrupted the ring indices; closing our end"'
# Its ring may hold records for a receiver (docs/channel.md "Opening"): a send-only end waits for one.
ok "... and does not reopen while its ring is inconsistent (opens = 3)" test "$(cat $hp/opens)" = 3
ivshmem recv --timeout 5000 $f hoststat >/dev/null 2>/tmp/bad.err
rc=$?
ok "a reader then finds the ring corrupt and says so (exit $rc: $(cat /tmp/bad.err))" \
	sh -c "test $rc != 0 && grep -q corrupt /tmp/bad.err"
ok "... after which the module resets the channel and reopens it (opens = 4)" \
	wait_for 20 sh -c "test \$(cat $hp/opens) = 4"
kill -TERM $(pidof hoststat_peer)
ok "the second removal ran the remove callback (removals = 2)" \
	wait_for 10 sh -c "test -s /tmp/hold1.rc && test \$(cat $hp/removals) = 2"

g=/dev/shm/bad
ivshmem format --size 1M --name bad --channel hoststat --raw hoststat-req:4K $g
# The channel is the first section (offset 4096); its ring_cap (offset 16) becomes 12288.
printf '\000\060\000\000' | dd of=$g bs=1 seek=4112 conv=notrunc 2>/dev/null
ok "rmmod ivshmem_hoststat" rmmod ivshmem_hoststat
ok "insmod ivshmem_hoststat.ko region=bad" insmod /lib/ivshmem_hoststat.ko region=bad
(hoststat_peer $g bad hold >/tmp/hold.out 2>&1; echo $? >/tmp/hold.rc) &
ok "a corrupt ring_cap is refused with a message" \
	wait_for 10 sh -c 'dmesg | grep -q "region bad: hoststat: ring size does not fit the channel section"'
sleep 1
ok "... and the channel is never opened, no request served" \
	test "$(cat $hp/opens):$(cat $hp/connected)" = 0:0
kill -TERM $(pidof hoststat_peer)
ok "the holder detaches" wait_for 10 test -s /tmp/hold.rc
ok "rmmod ivshmem_hoststat" rmmod ivshmem_hoststat
ok "rmmod ivshmem_host (no reference leaked)" rmmod ivshmem_host
dmesg | grep ivshmem_hoststat | sed 's/^/# /' >&3
ok "no kernel warnings" sh -c '! dmesg | grep -E "WARNING|BUG|Oops|leak"'
"""


def body(tap):
    with Guest("hoststat", timeout=480, mem=1536, kernel_args="panic_on_warn=1") as g:
        g.add_file("/lib/ivshmem_host.ko", g.kmod("ivshmem_host.ko"))
        g.add_file("/lib/ivshmem_hoststat.ko", g.kmod("ivshmem_hoststat.ko"))
        g.add_tool()
        g.add_file("/bin/hoststat_peer", build_file("tests/vm/hoststat_peer.static"))
        g.add_file("/bin/hoststat_check", build_file("tests/vm/hoststat_check.static"))
        g.script = SCRIPT
        g.start()
        tap.guest(g.wait())


run_test(body)
