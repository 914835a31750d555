#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Our ivshmem-server with Debian's QEMU: two ivshmem-doorbell guests (vectors=4) and host
peers that use libivshmem (through the ivshmem-client tool).
  - the guests get distinct IVPositions (BAR0 offset 8, read with busybox devmem);
  - the host peer sees both guests with 4 vectors each;
  - guest -> host peer: each guest writes (host << 16) | v to BAR0+12 v+1 times, and the host
    peer counts exactly 2(v+1) interrupts on vector v, on no other;
  - host peer -> guest and guest -> guest, received through our ivshmem.ko (MSI-X): only
    the rung vector's interrupt count moves in /proc/interrupts.
The server runs from this test on a socket in a temp dir."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from guestlib import doorbell_guest_script  # noqa: E402
from rig import BUILD_DIR, Guest, Server, build_file, run_test  # noqa: E402

VECTORS = 4

GUEST_SCRIPT = doorbell_guest_script(r"""	notify)
		ivshmem notify /dev/ivshmem0 $2 $3 ;;
	irqs)
		diag "IRQS $2 $(grep 'ivshmem0-' /proc/interrupts | awk '{print $NF "=" $2}' | tr '\n' ' ')" ;;
""")


def client(sock, *args, timeout=30):
    return subprocess.run([build_file("tools/ivshmem-client"), "-S", sock, *args],
                          capture_output=True, text=True, timeout=timeout)


def irq_counts(g, tag):
    """Per-vector MSI-X counts of ivshmem0 from the guest's /proc/interrupts."""
    g.send(f"irqs {tag}")
    line = g.wait_line(rf"^# IRQS {tag} ")
    return {int(m.group(1)): int(m.group(2)) for m in re.finditer(r"ivshmem0-(\d+)=(\d+)", line)}


def body(tap):
    tmp = tempfile.mkdtemp(prefix="ivshmem-interop-")
    srv = Server(tmp, vectors=VECTORS)
    have_driver = os.path.exists(os.path.join(BUILD_DIR, "kernel", "ivshmem.ko"))
    # The host peer joins first (ID 0) and counts what the guests ring.
    waiter = subprocess.Popen([build_file("tools/ivshmem-client"), "-S", srv.sock,
                               "--wait", str(2 * sum(range(1, VECTORS + 1))), "--timeout", "240000"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    srv.wait_log("peer 0 joined")
    try:
        with Guest("interop-a", timeout=240) as a, Guest("interop-b", timeout=240) as b:
            for g in (a, b):
                g.add_doorbell(srv.sock, vectors=VECTORS, addr="0x08")
                g.add_tool()
                if have_driver:
                    g.add_driver(load=False)
                g.script = GUEST_SCRIPT
                g.start()
            ids = []
            for g in (a, b):
                ids.append(int(g.wait_line(r"^# IVPOSITION \d+", timeout=120).split()[-1]))
            tap.ok(len(set(ids)) == 2 and 0 not in ids,
                   f"the guests have distinct IVPositions {ids} (the host peer is 0)")
            r = client(srv.sock, "--list")
            listed = {int(p.split()[1]): int(p.split()[2]) for p in r.stdout.splitlines()
                      if p.startswith("peer ")}
            tap.ok(r.returncode == 0 and all(listed.get(i) == VECTORS for i in ids),
                   f"a host peer lists both guests with {VECTORS} vectors ({listed})")

            # guest -> host peer, over the doorbell register
            for g in (a, b):
                for v in range(VECTORS):
                    g.send(f"ring 0 {v} {v + 1}")
                    g.wait_line(rf"^# RANG 0 {v} {v + 1}$")
            try:
                out, err = waiter.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                waiter.kill()
                out, err = waiter.communicate()
            sums = {}
            for m in re.finditer(r"vector (\d+) count (\d+)", out):
                sums[int(m.group(1))] = sums.get(int(m.group(1)), 0) + int(m.group(2))
            want = {v: 2 * (v + 1) for v in range(VECTORS)}
            tap.ok(waiter.returncode == 0 and sums == want,
                   f"guest doorbells reach the host peer on the rung vectors: {sums} "
                   f"(want {want}) {err.strip()}")

            if not have_driver:
                tap.diag(f"no {BUILD_DIR}/kernel/ivshmem.ko (scripts/build-kmod.sh): guest-side "
                         "receipt not checked")
                for g in (a, b):
                    g.send("done")
            else:
                for g in (a, b):
                    g.send("load")
                    g.wait_line(r"^# LOADED")
                before = [irq_counts(a, 'before'), irq_counts(b, 'before')]
                # host peer -> guest: vector 2 of A, vector 1 of B
                for g, gid, v in ((a, ids[0], 2), (b, ids[1], 1)):
                    g.send(f"wait {v}")
                    g.ring_until(lambda gid=gid, v=v: client(srv.sock, "--notify", f"{gid}:{v}"),
                                 rf"^# WAITED {v}$", f"host peer -> guest {gid} vector {v}")
                after = [irq_counts(a, 'after'), irq_counts(b, 'after')]
                for name, bef, aft, v in (("A", before[0], after[0], 2),
                                          ("B", before[1], after[1], 1)):
                    moved = {k for k in aft if aft[k] != bef.get(k)}
                    tap.ok(moved == {v}, f"guest {name}: only vector {v}'s MSI-X count moved "
                           f"({bef} -> {aft})")
                # guest -> guest: A rings B's vector 3 through the driver
                b.send("wait 3")
                b.ring_until(lambda: a.send(f"notify {ids[1]} 3"), r"^# WAITED 3$",
                             "guest A -> guest B")
                final = irq_counts(b, 'final')
                moved = {k for k in final if final[k] != after[1].get(k)}
                tap.ok(moved == {3}, f"guest B: guest A's doorbell moved only vector 3 ({moved})")
                for g in (a, b):
                    g.send("done")
            for g in (a, b):
                tap.guest(g.wait())
    finally:
        if waiter.poll() is None:
            waiter.kill()
        tap.ok(srv.stop() == 0, "server exits 0 on SIGTERM")
        log = srv.text()
        tap.ok(log.count(" joined") >= 3 and "left" in log, "server logged the joins and leaves")
        shutil.rmtree(tmp, ignore_errors=True)


run_test(body)
