#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Host kernel <-> guest kernel over ivshmem, with no patch to KVM or QEMU, under real KVM:
an L1 guest (the "host": TCG, -cpu max, kvm_amd) loads ivshmem_host.ko, runs
`ivshmem-server --kernel-peer nested` (the server attaches its memfd to /dev/ivshmem-host
and joins as a peer with every eventfd bound) and the host-kernel half of the test
(tests/vm/guest/ivshmem_host_nested.c); an L2 guest under KVM in L1 runs ivshmem.ko on
ivshmem-doorbell,vectors=2,ioeventfd=on and the guest-kernel half
(tests/vm/guest/ivshmem_nested_guest.c). Both halves use only the in-kernel APIs:
  - markers both ways: the host module writes one the guest module reads, and the reverse;
  - 1,000 guest-initiated round trips (guest kernel rings, the host kernel's eventfd callback
    echoes the sequence number and rings back) and 1,000 host-initiated ones (the reverse),
    each checked for its sequence number;
  - counts reconciled across the two kernels: what one side rang is what the other saw, and
    the guest's MSI-X interrupt counts match;
  - the guest's doorbells never left L1's kernel (ioeventfd): KVM's mmio_exits counter
    stays under one per 10 doorbells;
  - lifetime: the L2 guest leaving reaches the host module's peer callback as a leave;
    stopping the server removes the region (the host module's remove callback
    runs), then both modules unload; no warnings but the known nested-KVM ones."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nested import Nested, counts, run_nested  # noqa: E402
from rig import run_test  # noqa: E402

ROUNDS = 1000

L2_SCRIPT = r"""
ok "ivshmem.ko bound the doorbell device" wait_for 10 test -e /dev/ivshmem0
v "# ID $(cat /sys/class/ivshmem/ivshmem0/ivposition)"
ncpu=$(grep -c ^processor /proc/cpuinfo)
# irqs VECTOR: interrupts of ivshmem0's vector so far, all CPUs.
irqs() {
	awk -v n=$ncpu -v name="ivshmem0-$1" '$NF == name { s = 0; for (i = 2; i <= n + 1; i++) s += $i; print s }' /proc/interrupts
}
ctl_read cmd
set -- $cmd
ok "insmod ivshmem_nested_guest.ko host_peer=$2" insmod /lib/ivshmem_nested_guest.ko host_peer=$2
gp=/sys/module/ivshmem_nested_guest/parameters
ok "the guest kernel reads the host kernel's marker (in-kernel API)" test "$(cat $gp/host_marker)" = 1
a0=$(irqs 0)
a1=$(irqs 1)
if echo @ROUNDS@ >$gp/run 2>/tmp/run.err; then
	pass "guest kernel -> host kernel -> guest kernel: @ROUNDS@ round trips, mean $(cat $gp/rtt_ns) ns"
else
	fail "guest-initiated round trips: $(cat /tmp/run.err) after $(cat $gp/rounds)"
fi
v "# GUEST-DONE"
ctl_read cmd
v "# GUESTKERNEL rounds=$(cat $gp/rounds) echoes=$(cat $gp/echoes) echo_errors=$(cat $gp/echo_errors) irq0=$(( $(irqs 0) - a0 )) irq1=$(( $(irqs 1) - a1 )) rtt_ns=$(cat $gp/rtt_ns)"
ok "rmmod ivshmem_nested_guest" rmmod ivshmem_nested_guest
"""

L1_SCRIPT = r"""
ok "insmod ivshmem_host.ko" insmod /lib/ivshmem_host.ko
server_start -n 2 -l 1M --kernel-peer nested
ok "insmod ivshmem_host_nested.ko: the host kernel takes region 'nested', writes its marker" \
	insmod /lib/ivshmem_host_nested.ko region=nested
hp=/sys/module/ivshmem_host_nested/parameters
hid=$(dmesg | sed -n 's/.*ivshmem_host_nested: region nested, .* own id \([0-9]*\)$/\1/p' | tail -n 1)
diag "the host kernel is peer ${hid:-?}"
mount -t debugfs debugfs /sys/kernel/debug
exits=/sys/kernel/debug/kvm/mmio_exits
l2_start g
id=$(l2_wait_line g '^# ID [0-9]+$' 150 | cut -d' ' -f3)
if [ -n "$id" ] && [ -n "$hid" ]; then
	diag "the L2 guest kernel is peer $id"
	echo "$id" >$hp/peer
	e0=$(cat $exits)
	l2_send g "go $hid"
	l2_wait_line g '^# GUEST-DONE' 300 >/dev/null
	if echo @ROUNDS@ >$hp/run 2>/tmp/run.err; then
		pass "host kernel -> guest kernel -> host kernel: @ROUNDS@ round trips, mean $(cat $hp/rtt_ns) ns"
	else
		fail "host-initiated round trips: $(cat /tmp/run.err) after $(cat $hp/rounds)"
	fi
	e1=$(cat $exits)
	diag "KVM mmio_exits during 2 x @ROUNDS@ round trips: $((e1 - e0)) (L2 accelerator $L2_ACCEL)"
	if [ "$L2_ACCEL" = kvm ]; then
		ok "the guest's doorbells reached the host kernel through ioeventfd: $((e1 - e0)) MMIO exits to QEMU for 2 x @ROUNDS@ doorbells (< @ROUNDS@/5)" \
			test $((e1 - e0)) -lt $((@ROUNDS@ / 5))
	fi
	ok "the host kernel reads the guest kernel's marker (in-kernel API)" test "$(cat $hp/guest_marker)" = 1
	v "# HOSTKERNEL rounds=$(cat $hp/rounds) echoes=$(cat $hp/echoes) echo_errors=$(cat $hp/echo_errors) rtt_ns=$(cat $hp/rtt_ns)"
	l2_send g done
fi
l2_wait g
if [ -n "$id" ]; then
	ok "the guest leaving reached the host kernel's peer callback as a leave of peer $id" \
		wait_for 10 sh -c "test \"\$(cat $hp/left)\" = $id"
fi
server_stop
ok "stopping the server removed the region: the host module's remove callback ran" \
	test "$(cat $hp/removed)" = 1
ok "rmmod ivshmem_host_nested" rmmod ivshmem_host_nested
ok "rmmod ivshmem_host (no reference left)" rmmod ivshmem_host
"""


def body(tap):
    def make():
        n = Nested("hostkernel", timeout=1100)
        g = n.add_l2("g", timeout=600)
        g.add_doorbell(vectors=2, addr="0x08", ioeventfd=True)
        g.add_driver()
        g.add_file("/lib/ivshmem_nested_guest.ko", g.kmod("ivshmem_nested_guest.ko"))
        g.script = L2_SCRIPT.replace("@ROUNDS@", str(ROUNDS))
        n.l1.add_file("/lib/ivshmem_host.ko", n.l1.kmod("ivshmem_host.ko"))
        n.l1.add_file("/lib/ivshmem_host_nested.ko", n.l1.kmod("ivshmem_host_nested.ko"))
        n.l1.script = L1_SCRIPT.replace("@ROUNDS@", str(ROUNDS))
        return n

    with run_nested(tap, make) as n:
        g = n.l2["g"]
        n.report(tap)
        host = counts(n.result.lines, "HOSTKERNEL")
        guest = counts(g.result.lines, "GUESTKERNEL")
        tap.diag(f"host kernel: {host}")
        tap.diag(f"guest kernel: {guest}")
        tap.ok(host.get("echoes") == guest.get("rounds") == ROUNDS,
               f"guest -> host: the guest kernel completed {guest.get('rounds')} round trips, "
               f"the host kernel's callback saw exactly {host.get('echoes')} doorbells "
               f"(expected {ROUNDS} each)")
        tap.ok(guest.get("echoes") == host.get("rounds") == ROUNDS,
               f"host -> guest: the host kernel completed {host.get('rounds')} round trips, "
               f"the guest kernel's callback saw exactly {guest.get('echoes')} doorbells "
               f"(expected {ROUNDS} each)")
        tap.ok(guest.get("irq0") == guest.get("rounds")
               and guest.get("irq1") == guest.get("echoes"),
               f"the guest's MSI-X interrupts match: vector 0 {guest.get('irq0')}, "
               f"vector 1 {guest.get('irq1')}")
        tap.ok(host.get("echo_errors") == 0 and guest.get("echo_errors") == 0,
               "no echo failed to ring on either side")
        tap.ok(n.accel == "kvm" or n.l1_virt == "none",
               f"L2 ran under KVM in L1 (accelerator {n.accel}; L1's CPU: {n.l1_virt})")


run_test(body)
