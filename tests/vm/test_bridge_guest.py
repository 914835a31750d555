#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A VM guest on host A talks to a process on host B through ivshmem-bridge (issue 17).

Two "hosts" are two network namespaces joined by a veth pair (tests/host/bridgelib.py: an
ivshmem-server and an ivshmem-bridge in each, linked over UCX/TCP on the veth addresses).
A TCG guest (ivshmem-doorbell on host A's server, ivshmem.ko, our static CLI) and a Python
process in namespace B (python/ivshmem, on host B's server) exchange records over two
channels, at the same time, in both directions:
  - up:   the guest sends N records of 0..3000 bytes (`ivshmem send --lines`); the process
          on B checks each one: its number, its own CRC32 and every byte, so a lost,
          duplicated, reordered, merged or split record fails; then end of stream (EPIPE):
          the guest's close drained everything in flight first.
  - down: for each record the process answers one record at once; it then closes, and the
          guest's `ivshmem recv` must get every answer, in order, byte for byte, then end of
          stream (exit 0): B's close drained too.
QEMU runs outside the namespaces (it reaches host A's server through a unix socket); the
bridges, the servers and the process on B run inside them. Bounded: the guest has 300 s,
every channel call a timeout.

With --host-b TARGET N SEED the file is the process on host B (the test runs it so, inside
namespace B); it prints one JSON line.
"""
import json
import os
import random
import subprocess
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "host"))
from rig import SOURCE_DIR, Guest, build_file, run_test  # noqa: E402

N = 400
SEED = 17
RING = "256K"
TIMEOUT = 180          # seconds, for every channel call on host B


def records(n, seed):
    """The guest's records, one line each (--lines keeps the newline in the record)."""
    rnd = random.Random(seed)
    out = []
    for seq in range(n):
        payload = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789")
                          for _ in range(rnd.choice((0, 1, 7, 64, 500, 1500, 3000))))
        out.append(f"{seq} {zlib.crc32(payload.encode()):08x} {payload}\n".encode())
    return out


def answer(rec):
    """B's answer to one record: its number, length and CRC32, and the payload reversed."""
    seq, _, payload = rec[:-1].split(b" ", 2)
    return b"re %s %d %08x %s\n" % (seq, len(rec), zlib.crc32(rec), payload[::-1])


def check(rec, seq):
    """Why record @rec is not record @seq of the stream, or None."""
    if not rec.endswith(b"\n") or rec.count(b"\n") != 1:
        return f"record {seq}: not one line ({len(rec)} bytes): boundaries lost"
    parts = rec[:-1].split(b" ", 2)
    if len(parts) != 3 or parts[0] != b"%d" % seq:
        return f"record {seq}: arrived as {rec[:40]!r}"
    if b"%08x" % zlib.crc32(parts[2]) != parts[1]:
        return f"record {seq}: checksum mismatch"
    return None


def host_b(target, n, seed):
    """The process on host B: check every record on 'up', answer each on 'down', then close."""
    import ivshmem
    want = records(n, seed)
    res = {"received": 0, "answered": 0, "error": None, "end": None, "delivered": None}
    with ivshmem.open(target) as r:
        up = r.channel("up", create=True, ring_size=256 << 10, role="recv")
        down = r.channel("down", create=True, ring_size=256 << 10, role="send")
        for seq in range(n):
            rec = up.recv(timeout=TIMEOUT)
            res["error"] = check(rec, seq) or (None if rec == want[seq] else
                                                f"record {seq}: bytes differ")
            if res["error"]:
                break
            res["received"] += 1
            down.send(answer(rec), timeout=TIMEOUT)
            res["answered"] += 1
        try:
            extra = up.recv(timeout=TIMEOUT)
            res["end"] = f"an extra record of {len(extra)} bytes"
        except BrokenPipeError:
            res["end"] = "EPIPE"
        except OSError as e:
            res["end"] = f"{type(e).__name__}: {e}"
        res["delivered"] = down.close(linger=TIMEOUT)
        up.close(linger=0)
    print(json.dumps(res), flush=True)
    return 0


GUEST_SCRIPT = r"""
ok "driver bound, 2 vectors" test "$(cat /sys/class/ivshmem/ivshmem0/vectors)" = 2
diag "guest-ready"
ctl_read go
ivshmem send --lines --stats -t 120000 /dev/ivshmem0 up </root/up.txt 2>/tmp/send.err &
sender=$!
ivshmem recv --lines --stats -t 120000 /dev/ivshmem0 down >/tmp/down.txt 2>/tmp/recv.err
rc=$?
wait $sender
src=$?
ok "guest: sent %(n)d records on 'up' to host B (exit $src)" test $src = 0
ok "guest: 'down' reached its end of stream after the answers (exit $rc)" test $rc = 0
ok "guest: %(n)d answers from host B, in order, byte for byte" cmp -s /tmp/down.txt /root/down.txt
diag "guest send: $(cat /tmp/send.err)"
diag "guest recv: $(cat /tmp/recv.err)"
diag "guest got $(wc -l </tmp/down.txt) lines, $(wc -c </tmp/down.txt) bytes"
"""


def body(tap):
    from bridgelib import Pair
    from netns import NetnsError

    tools = {"bridge": build_file("bridge/ivshmem-bridge"),
             "server": build_file("server/ivshmem-server"), "cli": build_file("tools/ivshmem"),
             "peer": None, "fake": None, "src": SOURCE_DIR}
    lib = build_file("lib/libivshmem.so")
    up = records(N, SEED)
    try:
        pair = Pair(tools, channels=["up", "down"], ring=RING).__enter__()
    except (NetnsError, RuntimeError) as e:
        tap.ok(False, f"two hosts with a bridge each: {e}")
        return
    try:
        tap.ok(pair.wait_link(15), "bridges A and B linked over the veth pair")
        with Guest("bridgeA", timeout=300) as g:
            for name, data in (("up.txt", b"".join(up)), ("down.txt", b"".join(map(answer, up)))):
                path = os.path.join(pair.tmp, name)
                with open(path, "wb") as f:
                    f.write(data)
                g.add_file(f"/root/{name}", path)
            g.add_doorbell(pair.a.sock, vectors=2, addr="0x08")
            g.add_driver(load=True)
            g.add_tool()
            g.script = GUEST_SCRIPT % {"n": N}
            g.start()
            g.wait_line(r"guest-ready", timeout=240)
            env = dict(os.environ, IVSHMEM_LIB=lib,
                       PYTHONPATH=os.path.join(SOURCE_DIR, "python"))
            proc = pair.b.host.popen([sys.executable, os.path.abspath(__file__), "--host-b",
                                      pair.b.server_target, str(N), str(SEED)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            g.send("go")
            res = g.wait()
            try:
                out, err = proc.communicate(timeout=2 * TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
            tap.guest(res)
        tap.diag(f"bridge A: {pair.a.log().strip()}")
        tap.diag(f"bridge B: {pair.b.log().strip()}")
        try:
            b = json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            tap.ok(False, f"host B: the process reported nothing (exit {proc.returncode}): "
                   f"{err.decode()[-600:]}")
            return
        tap.ok(b["error"] is None and b["received"] == N,
               f"host B: {b['received']}/{N} records from the guest, each checked "
               f"(number, CRC32, bytes){': ' + b['error'] if b['error'] else ''}")
        tap.ok(b["end"] == "EPIPE", f"host B: then end of stream, EPIPE (got {b['end']})")
        tap.ok(b["answered"] == N and b["delivered"] is True,
               f"host B: answered {b['answered']}, its close waited until the bridge read them "
               f"({b['delivered']})")
        tap.ok(proc.returncode == 0, f"host B: the process exited {proc.returncode}")
    finally:
        pair.__exit__(None, None, None)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--host-b":
        sys.exit(host_b(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
    run_test(body)
