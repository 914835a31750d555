#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The guest driver's doorbells under real KVM: an L1 guest (TCG, -cpu max: AMD SVM with
nested paging) loads kvm_amd and runs our ivshmem-server and two L2 guests with ivshmem.ko on
ivshmem-doorbell,vectors=4,ioeventfd=on (tests/vm/nested.py). That is the production path TCG
never takes: a doorbell write is a KVM ioeventfd, the server's eventfd is the receiver's KVM
irqfd, so guest -> guest never leaves L1's kernel.
  - every vector L2 a -> L2 b and b -> a (drvtest listen / ring-all: counted by vector fds
    and by bound eventfds);
  - L1 as a host peer (`ivshmem notify/wait server:SOCKET`): L1 -> a on every vector (irqfd),
    a -> L1 on every vector (ioeventfd);
  - a storm of 10,000 doorbells a -> b, reconciled (interrupts <= doorbells, the last
    sequence number seen); KVM's mmio_exits counter (debugfs) proves the doorbells took the
    ioeventfd: fewer than one MMIO exit to QEMU per 10 doorbells;
  - libivshmem's driver backend rings its own vectors (ioeventfd -> irqfd of one VM);
  - L2 really ran under KVM (its kernel detected the KVM hypervisor; L1's kvm_amd is loaded),
    unless L1's CPU has no svm/vmx, where L2 falls back to TCG and the test says so.
With IVSHMEM_NESTED_IOEVENTFD=off the devices use ioeventfd=off: the mmio_exits check must then
fail (the check is not vacuous)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nested import Nested  # noqa: E402
from rig import build_file, run_test  # noqa: E402

VECTORS = 4
STORM = 10_000
STORM_OFF = 1 << 20
IOEVENTFD = os.environ.get("IVSHMEM_NESTED_IOEVENTFD", "on") != "off"

L2_SCRIPT = r"""
dev=/dev/ivshmem0
c=/sys/class/ivshmem/ivshmem0
ok "ivshmem.ko bound the doorbell device" wait_for 10 test -e $dev
v "# ID $(cat $c/ivposition)"
ok "all 4 MSI-X vectors" test "$(cat $c/vectors)" = 4
while ctl_read cmd; do
	set -- $cmd
	step=$1
	shift
	case $1 in
	listen) drvtest listen $dev 60000 "$2" >&3 ;;
	ring-all) drvtest ring-all $dev $2 4 >&3 ;;
	ring) drvtest ring $dev $2 $3 >&3 ;;
	storm-recv) drvtest storm-recv $dev 1 $2 $3 120000 >&3 ;;
	storm-send) drvtest storm-send $dev $2 1 $3 $4 >&3 ;;
	lib) drvtest lib $dev >&3 ;;
	done) v "# STEP $step"; break ;;
	esac
	v "# STEP $step"
done
"""

L1_SCRIPT = r"""
server_start -n 4 -l 4M
mount -t debugfs debugfs /sys/kernel/debug
l2_start a
l2_start b
ida=$(l2_wait_line a '^# ID [0-9]+$' 150 | cut -d' ' -f3)
idb=$(l2_wait_line b '^# ID [0-9]+$' 150 | cut -d' ' -f3)
diag "L2 peer ids: a=$ida b=$idb"
n=0
# step L2 CMD [S]: a numbered command for L2's loop; wait up to S s for its STEP mark.
step() {
	n=$((n + 1))
	l2_send "$1" "$n $2"
	l2_wait_line "$1" "^# STEP $n\$" "${3:-60}" >/dev/null
}
# listen L2 TAG: L2 starts listening on all vectors (returns once it is); $k is its step.
listen() {
	n=$((n + 1))
	k=$n
	l2_send "$1" "$k listen $2"
	l2_wait_line "$1" "^# LISTENING $2\$" 60 >/dev/null
}
if [ -n "$ida" ] && [ -n "$idb" ]; then
	# L2 -> L2, every vector, both ways: ioeventfd in one VM, irqfd into the other.
	listen b a-to-b
	step a "ring-all $idb"
	l2_wait_line b "^# STEP $k\$" 60 >/dev/null
	listen a b-to-a
	step b "ring-all $ida"
	l2_wait_line a "^# STEP $k\$" 60 >/dev/null

	# L1 (a host peer of the server) -> L2 a, every vector: an eventfd write, KVM's irqfd.
	listen a l1-to-a
	for vec in 0 1 2 3; do
		ok "L1 host peer rings L2 a's vector $vec (ivshmem notify)" \
			ivshmem notify server:$SERVER_SOCK $ida $vec
	done
	l2_wait_line a "^# STEP $k\$" 60 >/dev/null

	# L2 a -> L1 host peer, every vector: KVM's ioeventfd, an eventfd L1 user space polls.
	for vec in 0 1 2 3; do
		joined=$(grep -c ' joined' /tmp/server.log)
		ivshmem wait --timeout 30000 server:$SERVER_SOCK $vec >/tmp/wait.$vec 2>&1 &
		w=$!
		wait_for 10 test "$(grep -c ' joined' /tmp/server.log)" -gt "$joined"
		id=$(sed -n 's/.*peer \([0-9]*\) joined.*/\1/p' /tmp/server.log | tail -n 1)
		# The waiter counts only what comes once its fds are open: ring until it returns.
		while kill -0 $w 2>/dev/null; do
			step a "ring $id $vec"
			sleep 0.3
		done
		wait $w
		ok "L2 a's doorbell reaches the L1 host peer $id on vector $vec (ivshmem wait)" test $? = 0
	done

	# The storm, a -> b on vector 1, with KVM's count of MMIO exits to user space (QEMU).
	exits=/sys/kernel/debug/kvm/mmio_exits
	e0=$(cat $exits)
	n=$((n + 1))
	k=$n
	l2_send b "$k storm-recv @STORM@ @OFF@"
	step a "storm-send $idb @STORM@ @OFF@" 300
	l2_wait_line b "^# STEP $k\$" 300 >/dev/null
	e1=$(cat $exits)
	diag "KVM mmio_exits during @STORM@ doorbells: $((e1 - e0)) (L2 accelerator $L2_ACCEL)"
	if [ "$L2_ACCEL" = kvm ]; then
		ok "the doorbells stayed in L1's kernel (ioeventfd): $((e1 - e0)) MMIO exits to QEMU for @STORM@ doorbells (< @STORM@/10)" \
			test $((e1 - e0)) -lt $((@STORM@ / 10))
	fi
	step a lib 120
fi
step a done
step b done
l2_wait a
l2_wait b
"""


def body(tap):
    with Nested("nestedkvm", timeout=1100) as n:
        for name in ("a", "b"):
            g = n.add_l2(name, timeout=600)
            g.add_doorbell(vectors=VECTORS, addr="0x08", ioeventfd=IOEVENTFD)
            g.add_driver()
            g.add_file("/bin/drvtest", build_file("tests/vm/drvtest.static"))
            g.script = L2_SCRIPT
        n.l1.add_tool()
        n.l1.script = (L1_SCRIPT.replace("@STORM@", str(STORM))
                       .replace("@OFF@", str(STORM_OFF)))
        n.run()
        n.report(tap)
        virt = n.l1_virt
        tap.ok(n.accel == "kvm" or virt == "none",
               f"L2 ran under KVM in L1 (accelerator {n.accel}; L1's CPU: {virt})")


run_test(body)
