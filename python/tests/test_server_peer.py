# SPDX-License-Identifier: MIT
"""Host peers of a real ivshmem-server (server:SOCK): IDs, peer events, doorbells, a channel."""
import os
import selectors
import subprocess
import sys
import textwrap
import time

import pytest

import ivshmem


def wait_for(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def test_two_peers_see_each_other_and_ring_doorbells(server):
    with ivshmem.open("server:" + server) as a, ivshmem.open("server:" + server) as b:
        assert a.backend == b.backend == "server"
        assert a.size == 1 << 20 and a.vectors == 2
        assert a.own_id is not None and a.own_id != b.own_id
        assert wait_for(lambda: b.own_id in a.peers() and a.own_id in b.peers())
        assert a.peer_vectors(b.own_id) == 2
        assert a.wait(1, timeout=0) == 0                     # nothing yet: timeout
        b.notify(a.own_id, 1)
        assert a.wait(1, timeout=2) >= 1
        # The event fd for selectors: readable when vector 0 fires.
        b.notify(a.own_id, 0)
        with selectors.DefaultSelector() as sel:
            sel.register(a.event_fd(0), selectors.EVENT_READ)
            assert sel.select(timeout=2)
        assert a.wait(0, timeout=0) >= 1
        # Shared memory: one mapping's write is the other's read.
        a.view()[0:4] = b"ping"
        assert b.read(0, 4) == b"ping"


def test_peer_events_on_the_control_fd(server):
    with ivshmem.open("server:" + server) as a:
        a.peer_events()
        with ivshmem.open("server:" + server) as b:
            bid = b.own_id
            assert wait_for(lambda: any(e.type == ivshmem.PEER_JOIN and e.peer == bid
                                        for e in a.peer_events()))
        with selectors.DefaultSelector() as sel:
            sel.register(a.control_fd(), selectors.EVENT_READ)
            sel.select(timeout=2)
        assert wait_for(lambda: any(e.type == ivshmem.PEER_LEAVE and e.peer == bid
                                    for e in a.peer_events()))


PEER = textwrap.dedent("""
    import sys
    import ivshmem
    with ivshmem.open("server:" + sys.argv[1]) as r, r.channel("rpc", open_timeout=5) as ch:
        ch.send(b"pong:" + ch.recv(timeout=10), timeout=10)
""")


def test_record_exchange_with_a_peer_process(server):
    with ivshmem.open("server:" + server) as r:
        r.format("py")
        with r.channel("rpc", create=True) as ch:
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
            proc = subprocess.Popen([sys.executable, "-c", PEER, server], env=env)
            try:
                ch.send(b"ping", timeout=5)
                assert ch.recv(timeout=10) == b"pong:ping"
                assert proc.wait(10) == 0
                with pytest.raises(BrokenPipeError):
                    ch.recv(timeout=5)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
