#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The example host-kernel module end to end (kernel/examples/, docs/host-kernel.md "Example
module"): an L1 guest (the "host": TCG, -cpu max, kvm_amd) loads ivshmem_host.ko, runs
`ivshmem-server --kernel-peer hoststat` (the kernel is peer 0) and QEMU for an L2 guest under
KVM in L1 (ivshmem-doorbell, 2 vectors, ioeventfd=on), then loads ivshmem_hoststat.ko with the
L2 QEMU's vCPU thread (named with -name debug-threads=on). In L2:
  - `ivshmem format` lays out the served region from the guest (driver backend);
  - `ivshmem recv` (driver backend, sleeping on doorbells) reads the host kernel's records;
  - ivshmem_hoststat_guest.ko makes 100 requests over doorbells from the guest kernel
    (PUBLISH and GET alternately), each answered by the host kernel and rung back;
  - hoststat_check checks every record (seq, time, memory = L1's MemTotal, the vCPU thread's
    counters monotonic and its run_delay > 0) and the counts against the host module's;
  - the counters reconcile across the two kernels: the guest's requests/answers/published
    against the host's requests/answers/published_on_request; the host rang the sleeping
    reader (reader_kicks > 0) with no ring error;
  - stopping the server removes the region: the host module's remove callback runs.
The rig's checks: no warnings but the known nested-KVM ones; L2 ran under KVM (or the TCG
fallback, reported)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nested import Nested, counts, run_nested  # noqa: E402
from rig import build_file, run_test  # noqa: E402

ROUNDS = 100

L2_SCRIPT = r"""
ok "ivshmem.ko bound the doorbell device" wait_for 10 test -e /dev/ivshmem0
ok "ivshmem format from the guest: channel hoststat, raw section hoststat-req" \
	ivshmem format --name hoststat --channel hoststat --raw hoststat-req:4K /dev/ivshmem0
(ivshmem recv --vector 0 /dev/ivshmem0 hoststat >/tmp/records 2>/tmp/recv.err; echo $? >/tmp/recv.rc) &
v "# FORMATTED"
ctl_read cmd
ok "insmod ivshmem_hoststat_guest.ko: @ROUNDS@ guest-kernel requests, each answered" \
	insmod /lib/ivshmem_hoststat_guest.ko rounds=@ROUNDS@ vector=1
gp=/sys/module/ivshmem_hoststat_guest/parameters
v "# GUESTKERNEL requests=$(cat $gp/requests) answers=$(cat $gp/answers) published=$(cat $gp/published) not_connected=$(cat $gp/not_connected)"
sleep 2
v "# GUEST-DONE"
ctl_read cmd
set -- $cmd
# check PUBLISHED ON_REQUEST TIDS MEMTOTAL: the host stopped publishing; wait for all of it.
want=$(( $2 * (96 + 32 * $(echo $4 | tr ',' '\n' | wc -l)) ))
ok "the reader received all $2 records ($want bytes)" \
	wait_for 30 sh -c "test \$(wc -c </tmp/records) -ge $want"
kill -TERM $(pidof ivshmem) 2>/dev/null
wait_for 10 test -s /tmp/recv.rc
cat /tmp/recv.err >&3
hoststat_check /tmp/records $2 $3 $4 $5 >&3
ok "hoststat_check: every record the host kernel published, checked" test $? = 0
ok "rmmod ivshmem_hoststat_guest" rmmod ivshmem_hoststat_guest
"""

L1_SCRIPT = r"""
ok "insmod ivshmem_host.ko" insmod /lib/ivshmem_host.ko
server_start -n 2 -l 1M --kernel-peer hoststat
l2_start g
l2_wait_line g '^# FORMATTED' 200 >/dev/null
# The L2 guest's QEMU: the one with a vCPU thread (L1 also holds a VM with none).
q= tids=
for p in $(pidof qemu-system-x86_64); do
	t=$(for t in /proc/$p/task/*; do grep -q '^CPU 0/' $t/comm && basename $t; done)
	[ -n "$t" ] && q=$p tids=$t
done
diag "L2's QEMU is pid $q, its vCPU thread ${tids:-?} ($(cat /proc/$q/task/${tids:-0}/comm 2>/dev/null))"
ok "insmod ivshmem_hoststat.ko vcpu_tids=$tids" insmod /lib/ivshmem_hoststat.ko vcpu_tids=$tids period_ms=200
hp=/sys/module/ivshmem_hoststat/parameters
ok "the host kernel connects to the guest's reader" wait_for 30 sh -c "test \$(cat $hp/connected) = 1"
l2_send g go
l2_wait_line g '^# GUEST-DONE' 300 >/dev/null
echo 0 >$hp/period_ms
sleep 1
v "# HOSTKERNEL published=$(cat $hp/published) on_request=$(cat $hp/published_on_request) requests=$(cat $hp/requests) answers=$(cat $hp/answers) bad=$(cat $hp/bad_requests) spurious=$(cat $hp/spurious) ring_errors=$(cat $hp/ring_errors) reader_kicks=$(cat $hp/reader_kicks) kick_errors=$(cat $hp/kick_errors) dropped=$(cat $hp/dropped)"
l2_send g "check $(cat $hp/published) $(cat $hp/published_on_request) $tids $(awk '/^MemTotal/ {print $2}' /proc/meminfo)"
l2_wait g
server_stop
ok "stopping the server removed the region: the remove callback ran once" \
	test "$(cat $hp/removals)" = 1
ok "rmmod ivshmem_hoststat" rmmod ivshmem_hoststat
ok "rmmod ivshmem_host (no reference left)" rmmod ivshmem_host
"""


def body(tap):
    def make():
        n = Nested("hoststat", timeout=1100)
        g = n.add_l2("g", timeout=600)
        g.add_doorbell(vectors=2, addr="0x08", ioeventfd=True)
        g.qemu_extra += ["-name", "g,debug-threads=on"]
        g.add_driver()
        g.add_tool()
        g.add_file("/lib/ivshmem_hoststat_guest.ko", g.kmod("ivshmem_hoststat_guest.ko"))
        g.add_file("/bin/hoststat_check", build_file("tests/vm/hoststat_check.static"))
        g.script = L2_SCRIPT.replace("@ROUNDS@", str(ROUNDS))
        n.l1.add_file("/lib/ivshmem_host.ko", n.l1.kmod("ivshmem_host.ko"))
        n.l1.add_file("/lib/ivshmem_hoststat.ko", n.l1.kmod("ivshmem_hoststat.ko"))
        n.l1.script = L1_SCRIPT
        return n

    with run_nested(tap, make) as n:
        g = n.l2["g"]
        n.report(tap)
        host = counts(n.result.lines, "HOSTKERNEL")
        guest = counts(g.result.lines, "GUESTKERNEL")
        tap.diag(f"host kernel: {host}")
        tap.diag(f"guest kernel: {guest}")
        tap.ok(guest.get("requests") == guest.get("answers") == host.get("requests")
               == host.get("answers") == ROUNDS,
               f"requests and answers reconcile: guest {guest.get('requests')}/"
               f"{guest.get('answers')}, host {host.get('requests')}/{host.get('answers')} "
               f"(expected {ROUNDS})")
        tap.ok(guest.get("published") == host.get("on_request") == ROUNDS // 2
               and guest.get("not_connected") == 0,
               f"records published on the guest kernel's request: guest {guest.get('published')}, "
               f"host {host.get('on_request')} (expected {ROUNDS // 2})")
        tap.ok(host.get("bad") == 0 and host.get("ring_errors") == 0
               and host.get("kick_errors") == 0 and host.get("dropped") == 0,
               "no bad request, ring error, kick error or dropped record on the host")
        tap.ok((host.get("reader_kicks") or 0) > 0,
               f"the host kernel rang the guest's sleeping reader {host.get('reader_kicks')} times")
        tap.ok(n.accel == "kvm" or n.l1_virt == "none",
               f"L2 ran under KVM in L1 (accelerator {n.accel}; L1's CPU: {n.l1_virt})")


run_test(body)
