# SPDX-License-Identifier: MIT
"""Channels: record-oriented, two-ended, over a region's layout (docs/channel.md)."""
import asyncio
import ctypes
import errno

from ._lib import lib, ChannelOpts, ChannelStatsC, P
from .errors import check
from .region import _ms

CHANNEL_CREATE, CHANNEL_SEND_ONLY, CHANNEL_RECV_ONLY = 1, 2, 4
WAITING, CONNECTED, PEER_CLOSED, PEER_DEAD, BROKEN = 1, 2, 3, 4, 5
_ROLES = {None: 0, "send": CHANNEL_SEND_ONLY, "recv": CHANNEL_RECV_ONLY}


class Channel:
    """One endpoint of channel @name of @region (ivshmem_channel_open).

    create: add the channel to the layout if missing, with @ring_size bytes per direction.
    role: None, "send" or "recv". open_timeout: seconds to wait while both ends are taken.
    vector, spin_us, heartbeat_ms, dead_ms, cancel_fd: struct ivshmem_channel_opts (0: default).
    Timeouts are seconds (float); None waits forever, 0 never blocks (BlockingIOError).
    fileno() is pollable: with selectors or asyncio's loop.add_reader, then send/recv with
    timeout 0 until BlockingIOError; arecv()/asend() do that for asyncio.
    """

    def __init__(self, region, name, *, create=False, ring_size=0, role=None, vector=0, spin_us=0,
                 heartbeat_ms=0, dead_ms=0, open_timeout=0, cancel_fd=0):
        if role not in _ROLES:
            raise ValueError("role must be None, 'send' or 'recv'")
        opts = ChannelOpts(flags=(CHANNEL_CREATE if create else 0) | _ROLES[role],
                           ring_size=ring_size, vector=vector, spin_us=spin_us,
                           heartbeat_ms=heartbeat_ms, dead_ms=dead_ms,
                           open_timeout_ms=_ms(open_timeout), cancel_fd=cancel_fd)
        handle = P()
        check(lib.ivshmem_channel_open(ctypes.byref(handle), region._handle(), name.encode(),
                                       ctypes.byref(opts)))
        self._h, self.name, self.region = handle, name, region
        self.max_msg = lib.ivshmem_channel_max_msg(handle)
        self._buf = ctypes.create_string_buffer(max(self.max_msg, 1))
        region._channels.add(self)

    def _handle(self):
        if self._h is None:
            raise ValueError(f"ivshmem: channel {self.name!r} is closed")
        return self._h

    def close(self, linger=10.0):
        """Leave, after waiting up to @linger seconds (None: forever) for the peer to read
        everything. True if it did; False if records were still unread (they stay readable)."""
        if self._h is None:
            return True
        h, self._h = self._h, None
        self.region._channels.discard(self)
        rc = lib.ivshmem_channel_close(h, _ms(linger))
        if rc == -errno.ETIMEDOUT:
            return False
        check(rc, f"close channel {self.name!r}")
        return True

    @property
    def closed(self):
        return self._h is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_h", None) is not None:
            try:
                self.close(linger=0)
            except OSError:
                pass

    def __repr__(self):
        return f"<ivshmem.Channel {self.name!r} {'closed' if self.closed else self.state}>"

    # -- records --
    def send(self, data, timeout=None):
        """Send the bytes-like @data as one record (at most max_msg bytes)."""
        data = bytes(data)
        check(lib.ivshmem_channel_send(self._handle(), data, len(data), _ms(timeout)), "send")

    def recv_into(self, buffer, timeout=None):
        """Receive one record into the writable @buffer; returns its length.
        BrokenPipeError once the peer closed and everything was read."""
        c = (ctypes.c_char * len(memoryview(buffer).cast("B"))).from_buffer(buffer)
        return check(lib.ivshmem_channel_recv(self._handle(), c, len(c), _ms(timeout)), "recv")

    def recv(self, timeout=None):
        """Receive one record as bytes (b"" is a valid empty record).
        BrokenPipeError once the peer closed and everything was read."""
        n = check(lib.ivshmem_channel_recv(self._handle(), self._buf, len(self._buf), _ms(timeout)),
                  "recv")
        return self._buf.raw[:n]

    def flush(self, timeout=None):
        """Wait until the peer read everything (TimeoutError says how much is unread)."""
        check(lib.ivshmem_channel_flush(self._handle(), _ms(timeout)), "flush")

    def outq(self):
        """(records, bytes) we sent that the peer has not read yet."""
        rec, nbytes = ctypes.c_uint64(), ctypes.c_uint64()
        check(lib.ivshmem_channel_outq(self._handle(), ctypes.byref(rec), ctypes.byref(nbytes)), "outq")
        return rec.value, nbytes.value

    # -- state --
    def fileno(self):
        return lib.ivshmem_channel_fd(self._handle())

    @property
    def state_code(self):
        return lib.ivshmem_channel_state(self._handle())

    @property
    def state(self):
        """"waiting", "connected", "peer-closed", ... (ivshmem_channel_state_name)."""
        return lib.ivshmem_channel_state_name(self.state_code).decode()

    def stats(self):
        st = ChannelStatsC()
        lib.ivshmem_channel_stats(self._handle(), ctypes.byref(st))
        return {f: getattr(st, f) for f, _ in ChannelStatsC._fields_}

    # -- asyncio --
    async def _when_ready(self, attempt):
        """Run @attempt() (a call with timeout 0) until it stops raising BlockingIOError,
        sleeping on fileno() in the running loop between tries."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                return attempt()
            except BlockingIOError:
                pass
            fut = loop.create_future()
            fd = self.fileno()
            loop.add_reader(fd, lambda: fut.done() or fut.set_result(None))
            try:
                await fut
            finally:
                loop.remove_reader(fd)

    async def arecv(self):
        """recv() for asyncio: waits in the event loop, never blocks it."""
        return await self._when_ready(lambda: self.recv(timeout=0))

    async def asend(self, data):
        """send() for asyncio: waits in the event loop while the ring is full."""
        data = bytes(data)
        return await self._when_ready(lambda: self.send(data, timeout=0))


__all__ = ["Channel", "CHANNEL_CREATE", "CHANNEL_SEND_ONLY", "CHANNEL_RECV_ONLY",
           "WAITING", "CONNECTED", "PEER_CLOSED", "PEER_DEAD", "BROKEN"]
