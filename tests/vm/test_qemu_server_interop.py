#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""QEMU's own contrib/ivshmem-server (built by scripts/qemu-contrib.sh) with a real
ivshmem-doorbell guest and host peers of both kinds: our ivshmem-client (libivshmem) and
QEMU's contrib/ivshmem-client. The same checks as vm_server_interop on our server, so the
two servers are proven interchangeable under a real QEMU device:
  - the guest's IVPosition is the next ID after the two host peers;
  - guest -> our client: the guest rings (0 << 16) | v v+1 times per vector, the client
    counts exactly v+1 interrupts on each vector v;
  - guest -> QEMU's client: each vector rung once arrives as that vector;
  - QEMU's client and ours -> guest, through our ivshmem.ko (MSI-X) when it is built;
  - QEMU's server exits 0 on SIGTERM and removes its socket and /dev/shm object.
QEMU's binaries: $IVSHMEM_QEMU_CONTRIB, else the default cache for the installed QEMU.
Suite 'conformance' (./test.sh conformance), not 'vm': it needs QEMU's contrib binaries."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from guestlib import doorbell_guest_script  # noqa: E402
from rig import BUILD_DIR, Guest, RigError, build_file, run_test  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "host"))
from unixsock import listening  # noqa: E402

VECTORS = 4
CACHE = "/var/cache/ivshmem-ci/qemu-contrib"

GUEST_SCRIPT = doorbell_guest_script()


def qemu_contrib():
    d = os.environ.get("IVSHMEM_QEMU_CONTRIB")
    if not d:
        ver = subprocess.run(["dpkg-query", "-W", "-f=${source:Version}", "qemu-system-x86"],
                             capture_output=True, text=True).stdout.strip()
        d = os.path.join(CACHE, ver)
    paths = [os.path.join(d, f"ivshmem-{k}") for k in ("server", "client")]
    if not all(os.access(p, os.X_OK) for p in paths):
        raise RigError(f"QEMU's ivshmem-server/ivshmem-client not in '{d}'\n  fix: run "
                       "scripts/qemu-contrib.sh and set IVSHMEM_QEMU_CONTRIB to the directory it prints")
    return paths


def wait_listening(path, proc, timeout=10):
    end = time.monotonic() + timeout
    while not (os.path.exists(path) and listening(path)):
        if proc.poll() is not None or time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


def wait_text(path, pattern, start=0, timeout=10):
    end = time.monotonic() + timeout
    rx = re.compile(pattern, re.M)
    while time.monotonic() < end:
        with open(path) as f:
            m = rx.search(f.read(), start)
        if m:
            return m
        time.sleep(0.05)
    return None


def text_len(path):
    with open(path) as f:
        return len(f.read())


def body(tap):
    qserver, qclient = qemu_contrib()
    tmp = tempfile.mkdtemp(prefix="ivshmem-qemu-interop-")
    sock = os.path.join(tmp, "qemu.sock")
    shm = f"ivshmem-qemu-interop-{os.getpid()}"
    slog = open(os.path.join(tmp, "server.log"), "w")
    server = subprocess.Popen([qserver, "-F", "-S", sock, "-M", shm, "-l", "4M",
                               "-n", str(VECTORS)], stdin=subprocess.DEVNULL, stdout=slog,
                              stderr=subprocess.STDOUT)
    have_driver = os.path.exists(os.path.join(BUILD_DIR, "kernel", "ivshmem.ko"))
    waiter = qc = None
    qlog = os.path.join(tmp, "qemu-client.log")
    try:
        if not tap.ok(wait_listening(sock, server), "QEMU's ivshmem-server is up"):
            return
        # Host peer 0: QEMU's interactive client (unbuffered: it printf()s into a file).
        stdbuf = shutil.which("stdbuf")
        with open(qlog, "w") as out:
            qc = subprocess.Popen(([stdbuf, "-o0"] if stdbuf else []) + [qclient, "-S", sock],
                                  stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT)
        tap.ok(wait_text(qlog, r"listen on server socket"), "QEMU's client connects (peer 0)")
        # Host peer 1: our client, counting what the guest rings on each vector.
        waiter = subprocess.Popen([build_file("tools/ivshmem-client"), "-S", sock, "--wait",
                                   str(sum(range(1, VECTORS + 1))), "--timeout", "240000"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            mark = text_len(qlog)
            qc.stdin.write(b"dump\n")
            qc.stdin.flush()
            if wait_text(qlog, r"^peer_id = 1$", mark, 0.3):
                break
        tap.ok(time.monotonic() < deadline, "QEMU's client sees our client join (peer 1)")
        with Guest("qemu-interop", timeout=240) as g:
            g.add_doorbell(sock, vectors=VECTORS, addr="0x08")
            g.add_tool()
            if have_driver:
                g.add_driver(load=False)
            g.script = GUEST_SCRIPT
            g.start()
            gid = int(g.wait_line(r"^# IVPOSITION \d+", timeout=120).split()[-1])
            tap.ok(gid == 2, f"the guest is peer 2 after the two host peers (IVPosition {gid})")

            # guest -> our client (peer 1) and -> QEMU's client (peer 0)
            for v in range(VECTORS):
                g.send(f"ring 1 {v} {v + 1}")
                g.wait_line(rf"^# RANG 1 {v} {v + 1}$")
            try:
                out, err = waiter.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                waiter.kill()
                out, err = waiter.communicate()
            sums = {}
            for m in re.finditer(r"vector (\d+) count (\d+)", out):
                sums[int(m.group(1))] = sums.get(int(m.group(1)), 0) + int(m.group(2))
            want = {v: v + 1 for v in range(VECTORS)}
            tap.ok(waiter.returncode == 0 and sums == want,
                   f"guest doorbells reach our client on the rung vectors: {sums} (want {want}) "
                   f"{err.strip()}")
            mark = text_len(qlog)
            for v in range(VECTORS):
                g.send(f"ring 0 {v} 1")
                g.wait_line(rf"^# RANG 0 {v} 1$")
            got = {v for v in range(VECTORS)
                   if wait_text(qlog, rf"receive notification from peer_id=0 vector={v}$", mark)}
            tap.ok(got == set(range(VECTORS)),
                   f"guest doorbells reach QEMU's client on every vector ({sorted(got)})")

            if not have_driver:
                tap.diag(f"no {BUILD_DIR}/kernel/ivshmem.ko (scripts/build-kmod.sh): host -> "
                         "guest not checked")
            else:
                g.send("load")
                g.wait_line(r"^# LOADED")
                g.send("wait 3")

                def qemu_rings():
                    qc.stdin.write(f"int {gid} 3\n".encode())
                    qc.stdin.flush()
                g.ring_until(qemu_rings, r"^# WAITED 3$", "QEMU's client -> guest vector 3")
                g.send("wait 1")
                g.ring_until(lambda: subprocess.run(
                    [build_file("tools/ivshmem-client"), "-S", sock, "--notify", f"{gid}:1"],
                    capture_output=True, timeout=30), r"^# WAITED 1$", "our client -> guest vector 1")
            g.send("done")
            tap.guest(g.wait())
    finally:
        for p in (waiter, qc):
            if p and p.poll() is None:
                p.kill()
                p.wait()
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        try:
            rc = server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            rc = server.wait()
        tap.ok(rc == 0, f"QEMU's server exits 0 on SIGTERM ({rc})")
        tap.ok(not os.path.exists(sock) and not os.path.exists(f"/dev/shm/{shm}"),
               "it removed its socket and /dev/shm object")
        if os.path.exists(f"/dev/shm/{shm}"):
            os.unlink(f"/dev/shm/{shm}")
        slog.close()
        shutil.rmtree(tmp, ignore_errors=True)


run_test(body)
