#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Channels with doorbell wake-ups: two guests (ivshmem-doorbell, ivshmem.ko) and a host
peer of our ivshmem-server.
  - guest A -> guest B: 2000 lines while B sleeps in recv, so B is woken by A's doorbells
    (B's --stats line must show doorbell wake-ups) and every line arrives in order;
  - host -> guest A and guest A -> host over another channel; the host CLI sleeps on its
    eventfd and must be woken by the guest's doorbell.
Every endpoint records its peer ID and vector in the channel, which is how the other side
knows whom to ring (docs/channel.md)."""
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rig import Guest, Server, build_file, run_test  # noqa: E402

N = 2000


def stats_of(lines, tag):
    """doorbell-wakeups from the '# ... stats:' diag line that contains @tag."""
    for line in lines:
        if tag in line and "stats:" in line:
            m = re.search(r"doorbell-wakeups (\d+)", line)
            if m:
                return int(m.group(1)), line
    return None, None


def body(tap):
    tmp = tempfile.mkdtemp(prefix="ivshmem-chandb-")
    srv = Server(tmp, vectors=2, size="16M")
    sock = srv.sock
    cli = build_file("tools/ivshmem")
    try:
        target = "server:" + sock
        r = subprocess.run([cli, "format", "--force", "--name", "chan-db", "--channel", "g2g",
                            "--channel", "h2g", target], capture_output=True, timeout=30)
        tap.ok(r.returncode == 0, f"host: format the server's memory ({r.stderr.decode().strip()})")

        with Guest("chanA", timeout=240) as a, Guest("chanB", timeout=240) as b:
            for g in (a, b):
                g.add_doorbell(sock, vectors=2, addr="0x08")
                g.add_driver(load=True)
                g.add_tool()
            # The control tty is held open for the whole script (see test_driver_doorbell.py).
            a.script = r"""
exec 4</dev/ttyS2
ok "driver bound, 2 vectors" test "$(cat /sys/class/ivshmem/ivshmem0/vectors)" = 2
diag "A-ready"
IFS= read -r go <&4
seq 1 %d | ivshmem send --lines --stats -t 90000 /dev/ivshmem0 g2g 2>/tmp/err
ok "A: sent %d lines to B (exit $?)" test $? = 0
diag "A g2g $(cat /tmp/err)"
ivshmem recv --lines --stats -n 3 -t 90000 /dev/ivshmem0 h2g >/tmp/h 2>/tmp/err
ok "A: received 3 lines from the host" test "$(cat /tmp/h | tr '\n' ,)" = "host1,host2,host3,"
diag "A h2g $(cat /tmp/err)"
IFS= read -r go2 <&4
ok "A: answered the host" ivshmem send -t 90000 /dev/ivshmem0 h2g "from guest A"
""" % (N, N)
            b.script = r"""
ok "driver bound, 2 vectors" test "$(cat /sys/class/ivshmem/ivshmem0/vectors)" = 2
diag "B-ready"
ivshmem recv --lines --stats -t 90000 /dev/ivshmem0 g2g >/tmp/got 2>/tmp/err
ok "B: recv ended at the end of the stream (exit $?)" test $? = 0
diag "B g2g $(cat /tmp/err)"
ok "B: %d lines" test "$(wc -l < /tmp/got)" = %d
ok "B: in order, none lost" sh -c 'seq 1 %d | cmp -s - /tmp/got'
""" % (N, N, N)
            host = {}

            def host_side():
                # --linger: wait until guest A read the lines (it may not have opened yet),
                # else our own recv below would take them as a departed sender's leftovers.
                host["send"] = subprocess.run(
                    [cli, "send", "--lines", "--stats", "-t", "120000", "--linger", "120000",
                     target, "h2g"],
                    input=b"host1\nhost2\nhost3\n", capture_output=True, timeout=180)
                # Let the host peer join the server (QEMU drops doorbells for peers it has
                # not heard of yet) and fall asleep in recv before guest A answers.
                recv = subprocess.Popen(
                    [cli, "recv", "--stats", "-n", "1", "-t", "120000", target, "h2g"],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                time.sleep(2)
                a.send("go2")
                out, err = recv.communicate(timeout=180)
                host["recv"] = subprocess.CompletedProcess(recv.args, recv.returncode, out, err)

            a.start()
            b.start()
            b.wait_line(r"B-ready", timeout=200)
            time.sleep(2)           # B is asleep in recv now
            a.wait_line(r"A-ready", timeout=200)
            a.send("go")
            t = threading.Thread(target=host_side, daemon=True)
            t.start()
            ra = a.wait()
            rb = b.wait()
            t.join(timeout=180)
            tap.guest(ra)
            tap.guest(rb)
            wb, line = stats_of(rb.lines, "B g2g")
            tap.diag(f"B: {line}")
            tap.ok(wb is not None and wb > 0, f"guest B was woken by guest A's doorbells ({wb})")
            s, rv = host.get("send"), host.get("recv")
            tap.ok(s is not None and s.returncode == 0,
                   f"host: sent to guest A ({s and s.stderr.decode().strip()})")
            tap.ok(rv is not None and rv.returncode == 0 and rv.stdout == b"from guest A",
                   f"host: received guest A's answer ({rv and rv.stdout!r})")
            m = re.search(r"doorbell-wakeups (\d+)", rv.stderr.decode()) if rv else None
            tap.diag(f"host recv: {rv and rv.stderr.decode().strip()}")
            tap.ok(m is not None and int(m.group(1)) > 0,
                   "the host peer was woken by the guest's doorbell")
    finally:
        srv.stop()
        subprocess.run(["rm", "-rf", tmp])


run_test(body)
