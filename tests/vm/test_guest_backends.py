#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Each userspace guest backend against real QEMU devices:
  guest "pc":   sysfs and /dev/mem read/write a plain device; automatic choice picks
                sysfs; sysfs rings a host peer's doorbell (through our ivshmem-server)
                and says it cannot deliver interrupts; vfio says why it cannot be used.
  guest "vfio": q35 + emulated intel-iommu, devices bound to vfio-pci: vfio reads and
                writes BAR2, reads IVPosition, and receives a doorbell from a host peer
                on MSI-X vector 1 through an eventfd (VFIO_DEVICE_SET_IRQS).
(The driver backend is tested with the driver, in the driver's own tests.)"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from guestlib import expect_bytes, read_at, write_at  # noqa: E402
from rig import BUILD_DIR, Guest, Server, build_file, guest_kernel, run_test  # noqa: E402

DATA = b"backend!"


def tool():
    return os.path.join(BUILD_DIR, "tools", "ivshmem")


def guest_pc(tap):
    with Guest("pc", timeout=90) as g:
        srv = Server(g.dir, vectors=1, size="1M")
        try:
            # Host peer 0 waits on its vector 0 before the guest's device (peer 1) connects.
            waiter = subprocess.Popen([tool(), "wait", f"server:{srv.sock}", "0",
                                       "--timeout", "60000"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            time.sleep(0.3)
            g.add_tool()
            shm = g.add_plain(size="4M", addr="0x10", data=DATA)
            g.add_doorbell(srv.sock, vectors=1, addr="0x11")
            g.script = f"""
{expect_bytes("/tmp/want", DATA)}
ivshmem info 00:10.0 > /tmp/info; cat /tmp/info
ok "automatic choice picks sysfs for an unbound device" grep -q "backend: *sysfs" /tmp/info
ok "sysfs region is device memory" grep -q "device memory: yes" /tmp/info
ivshmem read --backend sysfs 00:10.0 --length 8 > /tmp/got
ok "sysfs reads the host's bytes" cmp /tmp/got /tmp/want
printf 'viasysfs' | ivshmem write --backend sysfs 00:10.0 --offset 4096
ok "sysfs write exits 0" test $? = 0
ivshmem read --backend devmem 00:10.0 --length 8 > /tmp/got
ok "devmem reads the host's bytes" cmp /tmp/got /tmp/want
printf 'viadevm!' | ivshmem write --backend devmem 00:10.0 --offset 8193
ok "devmem unaligned write exits 0" test $? = 0
ivshmem info --backend devmem 00:10.0 | grep -q "backend: *devmem"
ok "info through devmem" test $? = 0
ivshmem wait --backend sysfs 00:11.0 --timeout 100 2>/tmp/err; rc=$?
diag "$(cat /tmp/err)"
ok "sysfs wait fails (exit 1) and says it cannot deliver interrupts" test $rc = 1 -a -n "$(grep interrupts /tmp/err)"
ivshmem read --backend vfio 00:10.0 2>/tmp/err >/dev/null; rc=$?
diag "$(cat /tmp/err)"
ok "vfio refuses a device not bound to vfio-pci (exit 3)" test $rc = 3 -a -n "$(grep 'not bound to vfio-pci' /tmp/err)"
ivshmem list
ivshmem list --json > /tmp/list.json
ok "list marks 00:11.0 as doorbell" grep -q '"bdf": "0000:00:11.0", "size": 1048576, "type": "doorbell"' /tmp/list.json
ok "list shows IVPosition 1 for the doorbell device" grep -q '"ivposition": 1' /tmp/list.json
ivshmem notify --backend sysfs 00:11.0 0 0
ok "sysfs rings host peer 0, vector 0" test $? = 0
"""
            res = g.run()
            tap.guest(res)
            try:
                out, err = waiter.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                waiter.kill()
                out, err = waiter.communicate()
            tap.ok(waiter.returncode == 0,
                   f"host peer got the guest's sysfs doorbell (exit {waiter.returncode}, "
                   f"{out.decode().strip()!r} {err.decode().strip()!r})")
            tap.ok(read_at(shm, 4096, 8) == b"viasysfs", "host sees the sysfs write")
            tap.ok(read_at(shm, 8193, 8) == b"viadevm!", "host sees the devmem unaligned write")
        finally:
            srv.stop()


def vfio_modules():
    """vfio-pci and what it needs, in load order. Listed by hand rather than through
    Guest.modules: vfio_iommu_type1 is no link-time dependency (vfio loads it on demand,
    which a module-less initramfs cannot do), and the unpacked kernel may lack modules.dep."""
    _, modules_dir, _ = guest_kernel()
    names = ["virt/lib/irqbypass.ko", "drivers/vfio/vfio.ko", "drivers/vfio/vfio_iommu_type1.ko",
             "drivers/vfio/vfio_virqfd.ko", "drivers/vfio/pci/vfio-pci-core.ko",
             "drivers/vfio/pci/vfio-pci.ko"]
    return [os.path.join(modules_dir, "kernel", n) for n in names]


def guest_vfio(tap):
    with Guest("vfio", timeout=120, machine="q35", iommu=True) as g:
        srv = Server(g.dir, vectors=2, size="1M")
        try:
            g.extra_ko = vfio_modules()
            g.add_tool()
            shm = g.add_plain(size="4M", addr="0x10", data=DATA)
            g.add_doorbell(srv.sock, vectors=2, addr="0x11")
            g.script = f"""
{expect_bytes("/tmp/want", DATA)}
for d in 0000:00:10.0 0000:00:11.0; do
	echo vfio-pci > /sys/bus/pci/devices/$d/driver_override
	echo $d > /sys/bus/pci/drivers_probe
done
ok "both devices bound to vfio-pci" test "$(basename $(readlink /sys/bus/pci/devices/0000:00:11.0/driver))" = vfio-pci
ls -l /dev/vfio
ivshmem read --backend vfio 00:10.0 --length 8 > /tmp/got
ok "vfio reads the host's bytes" cmp /tmp/got /tmp/want
printf 'via-vfio' | ivshmem write --backend vfio 00:10.0 --offset 12291
ok "vfio unaligned write exits 0" test $? = 0
ivshmem read --backend sysfs 00:10.0 2>/tmp/err >/dev/null; rc=$?
diag "$(cat /tmp/err)"
ok "sysfs leaves a vfio-pci device to vfio, and says so" test $rc = 1 -a -n "$(grep 'use the vfio backend' /tmp/err)"
ivshmem info 00:11.0 > /tmp/info 2>&1; cat /tmp/info
ok "automatic choice reaches vfio for a vfio-pci device" grep -q "backend: *vfio" /tmp/info
ok "vfio has 2 interrupt vectors" grep -q "vectors: *2" /tmp/info
id=$(sed -n 's/^own peer id: *//p' /tmp/info)
ivshmem wait --backend vfio 00:11.0 1 --timeout 30000 > /tmp/wait.out 2>/tmp/wait.err &
wpid=$!
sleep 1
diag "waiting $id"
wait $wpid; rc=$?
diag "wait: $(cat /tmp/wait.out /tmp/wait.err)"
ok "vfio receives the host's doorbell on MSI-X vector 1" test $rc = 0
ivshmem wait --backend vfio 00:11.0 0 --timeout 300 2>/dev/null; rc=$?
ok "no spurious interrupt on vector 0 (timeout, exit 4)" test $rc = 4
"""
            g.start()
            line = g.wait_line(r"^# waiting", timeout=90)
            peer = line.split()[-1]
            tap.ok(peer.isdigit(), f"guest reported its peer id ({peer!r})")
            if peer.isdigit():
                time.sleep(0.5)
                r = subprocess.run([tool(), "notify", f"server:{srv.sock}", peer, "1"],
                                   capture_output=True, timeout=20)
                tap.ok(r.returncode == 0, f"host rings guest peer {peer} vector 1 "
                       f"({r.stderr.decode().strip()!r})")
            res = g.wait()
            tap.guest(res)
            tap.ok(read_at(shm, 12291, 8) == b"via-vfio", "host sees the vfio unaligned write")
        finally:
            srv.stop()


def body(tap):
    guest_pc(tap)
    guest_vfio(tap)


run_test(body)
