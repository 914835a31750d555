#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ivshmem.ko with ivshmem-doorbell,vectors=4: two guests and a host peer on our ivshmem-server.
  - every vector guest->guest (both ways), host peer->guest and guest->host peer delivered,
    counted both by vector fds and by bound eventfds;
  - a storm of 100,000 doorbells guest A -> guest B, reconciled: QEMU reads the receiving
    eventfd's counter once per batch and raises one MSI-X, so interrupts <= doorbells, and
    the interrupt after the last doorbell must see the last sequence number;
  - bad ioctl arguments, libivshmem's driver backend (self-ring on every vector), and the
    `ivshmem` CLI (list/read/notify/wait) over the driver.
The host peer is a small Python client of the server protocol (docs: ivshmem-facts.md),
so this test depends on the server but not on the library's host backend."""
import array
import os
import re
import select
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rig import Guest, RigError, Server, build_file, run_test  # noqa: E402

VECTORS = 4
STORM = 100_000
STORM_OFF = 1 << 20          # sequence + ready flag, away from everything else
HELLO = b"driver-doorbell!"
HELLO_OFF = 2 << 20         # clear of drvtest concurrent's slots and the storm


class HostPeer:
    """A peer of the server: keeps every peer's eventfds as they are announced."""

    def __init__(self, sock_path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(10)
        self.s.connect(sock_path)
        self.peers = {}      # id -> [eventfd per vector]
        self.lock = threading.Lock()
        assert self._msg() == (0, None), "protocol version 0"
        self.id, _ = self._msg()
        val, self.shm_fd = self._msg()
        assert val == -1 and self.shm_fd is not None, "shm fd"
        self.stop = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _msg(self):
        fds = array.array("i")
        data, anc, _, _ = self.s.recvmsg(8, socket.CMSG_SPACE(4))
        if len(data) == 0:
            raise EOFError
        while len(data) < 8:
            more = self.s.recv(8 - len(data))
            if not more:
                raise EOFError
            data += more
        for level, typ, cdata in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds.frombytes(cdata[:len(cdata) - len(cdata) % 4])
        return struct.unpack("<q", data)[0], (fds[0] if fds else None)

    def _loop(self):
        self.s.settimeout(0.5)
        while not self.stop:
            try:
                val, fd = self._msg()
            except socket.timeout:
                continue
            except (EOFError, OSError):
                return
            with self.lock:
                if fd is None:
                    for old in self.peers.pop(val, []):
                        os.close(old)
                else:
                    self.peers.setdefault(val, []).append(fd)

    def fds(self, peer):
        with self.lock:
            return list(self.peers.get(peer, []))

    def ring(self, peer, vector):
        os.write(self.fds(peer)[vector], struct.pack("=Q", 1))

    def drain(self, vector, timeout):
        """Wait for own vector; returns the eventfd count (0 on timeout)."""
        fd = self.fds(self.id)[vector]
        r, _, _ = select.select([fd], [], [], timeout)
        if not r:
            return 0
        return struct.unpack("=Q", os.read(fd, 8))[0]

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.s.close()


# The control tty stays open for the whole script: the 8250 driver clears its receive FIFO
# when the port is opened, so a line the host sends while nobody holds /dev/ttyS2 open
# (ctl_read opens it per call) can lose its first bytes.
GUEST_SCRIPT = r"""
exec 4</dev/ttyS2
dev=/dev/ivshmem0
c=/sys/class/ivshmem/ivshmem0
v "# ID $(cat $c/ivposition)"
ok "doorbell device: has_doorbell 1" test "$(cat $c/has_doorbell)" = 1
ok "all 4 MSI-X vectors: sysfs vectors 4" test "$(cat $c/vectors)" = 4
ok "4 ivshmem interrupts in /proc/interrupts" test "$(grep -c 'ivshmem0-' /proc/interrupts)" = 4
while true; do
	IFS= read -r cmd <&4
	set -- $cmd
	step=$1
	shift
	case $1 in
	listen) drvtest listen $dev 30000 "$2" >&3 ;;
	ring-all) drvtest ring-all $dev $2 4 >&3 ;;
	storm-recv) drvtest storm-recv $dev 1 $2 $3 90000 >&3 ;;
	storm-send) drvtest storm-send $dev $2 1 $3 $4 >&3 ;;
	checks) . /root/checks.sh ;;
	hold)
		# Mapped, a vector fd open and an eventfd bound while the host unplugs the device.
		ok "in-kernel API user holds the device" insmod /lib/ivshmem_kapi_test.ko index=0
		drvtest listen $dev 60000 unplugged >/dev/null &
		listener=$!
		drvtest hold $dev /sys/bus/pci/devices/0000:00:08.0 60000 >&3
		ok "the holder passed" test $? = 0
		wait $listener
		ok "a listener polling vector fds + bound eventfds saw the unplug" test $? = 3
		ok "the in-kernel user's remove callback ran" \
			test "$(cat /sys/module/ivshmem_kapi_test/parameters/removed)" = 1
		ok "the in-kernel user unloads after the unplug" rmmod ivshmem_kapi_test
		ok "rmmod after the unplug (no reference leaked)" rmmod ivshmem
		ok "no ivshmem interrupts left" sh -c '! grep -q ivshmem /proc/interrupts'
		ok "no kernel warnings" sh -c '! dmesg | grep -E "WARNING|BUG|Oops|leak"'
		;;
	done) v "# STEP $step"; break ;;
	esac
	v "# STEP $step"
done
"""

# Run once, in guest A only: everything that needs no other party.
CHECKS = r"""
dev=/dev/ivshmem0
drvtest bad $dev >&3
drvtest lib $dev >&3
drvtest concurrent $dev 3 100 >&3
ok "in-kernel API: the test module loads (callbacks on every vector, self-rung)" \
	insmod /lib/ivshmem_kapi_test.ko index=0
ok "in-kernel API: the test module unloads" rmmod ivshmem_kapi_test
ivshmem list >/tmp/list 2>&1
diag "ivshmem list: $(tr '\n' '|' </tmp/list)"
ok "ivshmem list shows the device bound to ivshmem" grep -q 'ivshmem' /tmp/list
ok "ivshmem read (driver backend) sees what the host wrote" \
	test "$(ivshmem read --offset 2M --length 16 --backend driver 0000:00:08.0)" = "driver-doorbell!"
ivshmem wait --timeout 20000 /dev/ivshmem0 2 >/tmp/wait 2>&1 &
w=$!
me=$(cat /sys/class/ivshmem/ivshmem0/ivposition)
# Ring until the waiter has its fd open and returns (it only counts what comes after).
while kill -0 $w 2>/dev/null; do ivshmem notify /dev/ivshmem0 $me 2 || break; sleep 0.3; done
wait $w
ok "ivshmem notify + ivshmem wait on vector 2 through the driver" test $? = 0
diag "ivshmem wait: $(cat /tmp/wait)"
"""


def body(tap):
    tmp = None
    srv = host = None
    with Guest("drvA", timeout=300) as a, Guest("drvB", timeout=300) as b:
        tmp = a.dir
        srv = Server(tmp, vectors=VECTORS)
        try:
            host = HostPeer(srv.sock)
            tap.diag(f"host peer id {host.id}")
            os.pwrite(host.shm_fd, HELLO, HELLO_OFF)
            for g in (a, b):
                g.add_doorbell(srv.sock, vectors=VECTORS, addr="0x08", id="db")
                g.add_driver()
                g.add_tool()
                g.add_file("/bin/drvtest", build_file("tests/vm/drvtest.static"))
                g.add_file("/lib/ivshmem_kapi_test.ko", g.kmod("ivshmem_kapi_test.ko"))
                g.script = GUEST_SCRIPT
            checks = os.path.join(tmp, "checks.sh")
            with open(checks, "w") as f:
                f.write(CHECKS)
            a.add_file("/root/checks.sh", checks)
            a.start()
            b.start()
            ids = {}
            for g in (a, b):
                ids[g] = int(g.wait_line(r"^# ID \d+", timeout=150).split()[2])
            tap.diag(f"guest ids: A={ids[a]} B={ids[b]}")
            step = [0]
            T0 = time.monotonic()

            def run(g, cmd, timeout=120, then=None):
                """Send a numbered command; optionally act when it is listening; wait for it."""
                step[0] += 1
                n = step[0]
                tap.diag(f"{time.monotonic() - T0:.1f}s: {g.name} <- {n} {cmd}")
                g.send(f"{n} {cmd}")
                if then:
                    g.wait_line(rf"^# LISTENING {re.escape(cmd.split()[1])}$", timeout=60)
                    then()
                g.wait_line(rf"^# STEP {n}$", timeout=timeout)

            # Every vector, guest -> guest, both ways.
            run(b, "listen A-to-B", then=lambda: run(a, f"ring-all {ids[b]}"))
            run(a, "listen B-to-A", then=lambda: run(b, f"ring-all {ids[a]}"))

            # Host peer -> each guest, every vector.
            def host_rings(g):
                deadline = time.monotonic() + 10
                while len(host.fds(ids[g])) < VECTORS and time.monotonic() < deadline:
                    time.sleep(0.05)
                for v in range(VECTORS):
                    host.ring(ids[g], v)
            run(a, "listen host-to-A", then=lambda: host_rings(a))
            run(b, "listen host-to-B", then=lambda: host_rings(b))

            # Guest -> host peer, every vector.
            run(a, f"ring-all {host.id}")
            got = [host.drain(v, 10) for v in range(VECTORS)]
            tap.ok(all(c >= 1 for c in got), f"host peer got guest A's doorbell on every vector {got}")

            # The storm: B receives on vector 1, A sends.
            step[0] += 1
            recv_step = step[0]
            b.send(f"{recv_step} storm-recv {STORM} {STORM_OFF}")
            t0 = time.monotonic()
            run(a, f"storm-send {ids[b]} {STORM} {STORM_OFF}", timeout=150)
            b.wait_line(rf"^# STEP {recv_step}$", timeout=120)
            tap.diag(f"storm took {time.monotonic() - t0:.1f} s host-side")

            run(a, "checks", timeout=120)
            size = os.fstat(host.shm_fd).st_size
            marker = os.pread(host.shm_fd, 15, size - 4096)
            tap.ok(marker == b"ivshmem-kapi-ok",
                   f"host reads the in-kernel API user's marker in the last page ({marker!r})")

            # Hot-unplug B's device while a process has it mapped and listens on it.
            step[0] += 1
            hold_step = step[0]
            b.send(f"{hold_step} hold")
            b.wait_line(r"^# HOLDING", timeout=60)
            out = b.hmp("device_del db")
            tap.ok("rror" not in out, f"device_del db accepted ({out or 'no output'})")
            b.wait_line(rf"^# STEP {hold_step}$", timeout=90)
            for g in (a, b):
                run(g, "done")
            for g in (a, b):
                tap.guest(g.wait())
        finally:
            if host:
                host.close()
            srv.stop()


run_test(body)
