# SPDX-License-Identifier: MIT
"""Channels on the file backend: records, timeouts, close/linger, state, the pollable fd."""
import errno
import selectors

import pytest

import ivshmem


@pytest.fixture
def pair(shm_path):
    with ivshmem.open(shm_path, create=True, size=1 << 20) as r:
        r.format("t")
        a = r.channel("c", create=True, ring_size=16 << 10)
        b = r.channel("c")
        yield a, b
        b.close(linger=0)
        a.close(linger=0)


def test_records_keep_boundaries_and_empty_records(pair):
    a, b = pair
    assert a.state == b.state == "connected"
    for msg in (b"one", b"", b"x" * a.max_msg):
        a.send(msg, timeout=1)
    assert [b.recv(timeout=1) for _ in range(3)] == [b"one", b"", b"x" * a.max_msg]
    buf = bytearray(16)
    b.send(memoryview(b"back"))
    assert a.recv_into(buf, timeout=1) == 4 and buf[:4] == b"back"
    st = a.stats()
    assert st["sent"] == 3 and st["received"] == 1


def test_timeouts_and_sizes(pair):
    a, b = pair
    with pytest.raises(BlockingIOError):
        b.recv(timeout=0)
    with pytest.raises(TimeoutError) as e:
        b.recv(timeout=0.05)
    assert e.value.errno == errno.ETIMEDOUT and "channel 'c'" in e.value.strerror
    with pytest.raises(ivshmem.IvshmemError) as e:
        a.send(b"x" * (a.max_msg + 1))
    assert e.value.errno == errno.EMSGSIZE
    while True:  # fill the ring, then a non-blocking send says so
        try:
            a.send(b"y" * 1000, timeout=0)
        except BlockingIOError:
            break
    assert a.outq()[0] > 0
    with pytest.raises(TimeoutError):
        a.flush(timeout=0.05)


def test_close_with_linger_then_peer_sees_eof(shm_path):
    with ivshmem.open(shm_path, create=True, size=1 << 20) as r:
        r.format()
        a, b = r.channel("c", create=True), r.channel("c")
        a.send(b"last")
        assert a.close(linger=0.05) is False    # unread: close says so, the record stays
        assert a.closed
        assert b.recv(timeout=1) == b"last"
        assert b.state == "peer-closed"
        with pytest.raises(BrokenPipeError):
            b.recv(timeout=1)
        b.close()


def test_open_options_and_errors(shm_path):
    with ivshmem.open(shm_path, create=True, size=1 << 20) as r:
        r.format()
        with pytest.raises(FileNotFoundError):
            r.channel("missing")
        with pytest.raises(ValueError):
            r.channel("c", create=True, role="both")
        s = r.channel("c", create=True, role="send", heartbeat_ms=50, dead_ms=1000)
        assert s.state == "waiting"
        with pytest.raises(ivshmem.IvshmemError) as e:
            r.channel("c", role="send")      # the end a sender would take is ours
        assert e.value.errno == errno.EBUSY
        rx = r.channel("c", role="recv")
        s.send(b"hi")
        assert rx.recv(timeout=1) == b"hi"
        rx.close(linger=0)
        s.close(linger=0)


def test_fileno_works_with_selectors(pair):
    a, b = pair
    with pytest.raises(BlockingIOError):
        b.recv(timeout=0)                    # drains and arms: the fd goes quiet
    a.send(b"wake")
    with selectors.DefaultSelector() as sel:
        sel.register(b, selectors.EVENT_READ)
        got = None
        for _ in range(1000):
            if sel.select(timeout=2):
                try:
                    got = b.recv(timeout=0)
                    break
                except BlockingIOError:
                    continue
        assert got == b"wake"


def test_region_close_closes_its_channels(shm_path):
    r = ivshmem.open(shm_path, create=True, size=1 << 20)
    r.format()
    ch = r.channel("c", create=True)
    r.close()
    assert ch.closed and r.closed
