#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The Python binding as a host peer of our server, talking to a guest (issue 16):
  - the host formats the server's memory and creates two channels with python/ivshmem;
  - it sends a record to the guest on h2g, the guest's `ivshmem recv` (through ivshmem.ko)
    gets it and answers on g2h; the host's Channel.recv() gets the answer;
  - a doorbell reaches the Python peer's region event fd through a selector."""
import os
import selectors
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rig import SOURCE_DIR, Guest, Server, build_file, run_test  # noqa: E402

os.environ.setdefault("IVSHMEM_LIB", build_file("lib/libivshmem.so"))
sys.path.insert(0, os.path.join(SOURCE_DIR, "python"))
import ivshmem  # noqa: E402


def body(tap):
    tmp = tempfile.mkdtemp(prefix="ivshmem-pyguest-")
    srv = Server(tmp, vectors=2, size="16M")
    try:
        with ivshmem.open("server:" + srv.sock) as r:
            r.format("py-guest")
            h2g = r.channel("h2g", create=True, role="send")
            r.channel("g2h", create=True).close(linger=0)
            tap.ok(r.layout_name() == "py-guest" and {s.name for s in r.sections()} >=
                   {"h2g", "g2h"}, "host (Python): formatted, two channels")
            h2g.send(b"ping from python", timeout=5)
            tap.ok(h2g.outq() == (1, 16), f"host (Python): one record waits for the guest on h2g "
                   f"({h2g.outq()})")
            with Guest("pyguest", timeout=240) as g:
                g.add_doorbell(srv.sock, vectors=2, addr="0x08")
                g.add_driver(load=True)
                g.add_tool()
                g.script = r"""
ok "driver bound, 2 vectors" test "$(cat /sys/class/ivshmem/ivshmem0/vectors)" = 2
ivshmem recv -n 1 -t 90000 /dev/ivshmem0 h2g >/tmp/got 2>/tmp/err
ok "guest: received the Python peer's record (exit $?)" test "$(cat /tmp/got)" = "ping from python"
diag "guest recv: $(cat /tmp/err)"
ok "guest: answered on g2h" ivshmem send -t 90000 /dev/ivshmem0 g2h "pong from the guest"
"""
                g.start()
                with r.channel("g2h", role="recv") as g2h:
                    answer = g2h.recv(timeout=200)
                    stats = g2h.stats()
                res = g.wait()
                tap.guest(res)
            tap.ok(answer == b"pong from the guest", f"host (Python): got the answer ({answer!r})")
            tap.diag(f"host g2h stats: {stats}")
            tap.ok(h2g.close(linger=5), "host (Python): the guest read everything on h2g")
            # The event fd path of a Python peer, rung by another peer through the server.
            sel = selectors.DefaultSelector()
            sel.register(r.event_fd(0), selectors.EVENT_READ)
            with ivshmem.open("server:" + srv.sock) as other:
                other.notify(r.own_id, 0)
                tap.ok(bool(sel.select(timeout=5)) and r.wait(0, timeout=0) >= 1,
                       "host (Python): a doorbell arrives on the region's event fd")
            sel.close()
    finally:
        srv.stop()
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


run_test(body)
