# SPDX-License-Identifier: MIT
"""Regions: open any target, read/write, a memoryview of the mapping, doorbells, layout."""
import collections
import ctypes
import sys
import weakref

from ._lib import lib, OpenOpts, SectionC, PeerEventC, P
from .errors import check

OPEN_CREATE, OPEN_READONLY, OPEN_OWNER, OPEN_GROUP = 1, 2, 4, 8
SECTION_FREE, SECTION_CHANNEL, SECTION_RAW = 0, 1, 2
PEER_JOIN, PEER_LEAVE = 1, 2
_LAYOUT_DIR_MAX = 60

Section = collections.namedtuple("Section", "name type flags offset size slot")
PeerEvent = collections.namedtuple("PeerEvent", "type peer vectors")


def _ms(timeout):
    """Seconds (None: forever) to the library's milliseconds (-1: forever)."""
    if timeout is None:
        return -1
    if timeout < 0:
        raise ValueError("timeout must be >= 0 or None")
    return int(timeout * 1000 + 0.999)


def backend_parse(name):
    """The backend number of a name such as "file" or "server"."""
    out = ctypes.c_int()
    check(lib.ivshmem_backend_parse(name.encode(), ctypes.byref(out)), f"backend {name!r}")
    return out.value


class Region:
    """An open ivshmem region (ivshmem_open). Use as a context manager or call close().

    target: "file:PATH", a path, "server:SOCKET", "pci:BDF", "index:N", "name:NAME",
    "/dev/ivshmemN" (region.h). backend: a name ("file", "server", ...) or None for automatic.
    create/size/mode: create a host file of @size bytes with permission bits @mode (0600).
    """

    def __init__(self, target, *, backend=None, create=False, size=0, readonly=False, mode=0,
                 owner=None, group=None):
        opts = OpenOpts()
        opts.backend = backend_parse(backend) if isinstance(backend, str) else (backend or 0)
        opts.flags = (OPEN_CREATE if create else 0) | (OPEN_READONLY if readonly else 0)
        opts.size, opts.mode = size, mode
        if owner is not None:
            opts.flags |= OPEN_OWNER
            opts.owner = owner
        if group is not None:
            opts.flags |= OPEN_GROUP
            opts.group = group
        handle = P()
        check(lib.ivshmem_open(ctypes.byref(handle), str(target).encode(), ctypes.byref(opts)),
              None)
        self._h = handle
        self.target = str(target)
        self._array = None
        self._channels = weakref.WeakSet()

    # -- lifetime --
    def _handle(self):
        if self._h is None:
            raise ValueError("ivshmem: region is closed")
        return self._h

    def close(self):
        """Close open channels (linger 0), then unmap. BufferError while memoryviews exist."""
        if self._h is None:
            return
        # Ours: self._array and getrefcount's argument; anything else is an exported view.
        if self._array is not None and sys.getrefcount(self._array) > 2:
            raise BufferError("ivshmem: cannot close a region while memoryviews of it exist")
        for ch in list(self._channels):
            ch.close(linger=0)
        self._array = None
        lib.ivshmem_close(self._h)
        self._h = None

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
                self.close()
            except BufferError:
                pass  # views keep the mapping alive; leaked rather than dangling

    def __repr__(self):
        state = "closed" if self.closed else f"{self.backend}, {self.size} bytes"
        return f"<ivshmem.Region {self.target!r} {state}>"

    # -- description --
    @property
    def size(self):
        return lib.ivshmem_size(self._handle())

    @property
    def backend(self):
        """The backend's name: "file", "server", "driver", "sysfs", "vfio", "devmem"."""
        return lib.ivshmem_backend_name(lib.ivshmem_backend_of(self._handle())).decode()

    @property
    def own_id(self):
        """Own peer ID (IVPosition or the server's), or None when the backend has none."""
        i = lib.ivshmem_own_id(self._handle())
        return None if i < 0 else i

    @property
    def vectors(self):
        """Own interrupt vectors; 0: no interrupts (poll the memory)."""
        return lib.ivshmem_vectors(self._handle())

    @property
    def is_device_memory(self):
        """True for uncached/device mappings: use read()/write(), not the memoryview."""
        return bool(lib.ivshmem_is_device_memory(self._handle()))

    # -- memory --
    def view(self):
        """A writable memoryview ('B') of the whole mapping, without a copy.

        Release it (view.release() or a with block) before closing the region. On
        device memory (is_device_memory) only aligned accesses are safe: prefer read/write.
        """
        h = self._handle()
        if self._array is None:
            self._array = (ctypes.c_char * self.size).from_address(lib.ivshmem_base(h))
        return memoryview(self._array).cast("B")

    def read(self, offset, length):
        """@length bytes at @offset, copied (bounds-checked, safe on device memory)."""
        buf = ctypes.create_string_buffer(length)
        check(lib.ivshmem_read(self._handle(), offset, buf, length), "read")
        return buf.raw

    def write(self, offset, data):
        """Copy the bytes-like @data to @offset (bounds-checked, safe on device memory)."""
        data = bytes(data)
        check(lib.ivshmem_write(self._handle(), offset, data, len(data)), "write")

    def check_mapping(self):
        """Raise (ENODEV) if part of the mapping vanished (a truncated file, a removed device)."""
        check(lib.ivshmem_check_mapping(self._handle()), "mapping")

    # -- doorbells --
    def notify(self, peer, vector=0):
        """Ring vector @vector of peer @peer."""
        check(lib.ivshmem_notify(self._handle(), peer, vector), f"notify peer {peer} vector {vector}")

    def wait(self, vector=None, timeout=None):
        """Wait for own @vector (None: any) up to @timeout seconds (None: forever).

        Returns the event count (>= 1), or 0 on timeout.
        """
        count = ctypes.c_uint64()
        rc = check(lib.ivshmem_wait(self._handle(), -1 if vector is None else vector, _ms(timeout),
                                    ctypes.byref(count)), "wait")
        return count.value if rc == 1 else 0

    def event_fd(self, vector=0):
        """A pollable fd, readable when own @vector fires; owned by the region (do not close).

        Consume with wait(vector, 0) or os.read(fd, 8).
        """
        return check(lib.ivshmem_event_fd(self._handle(), vector), f"event fd of vector {vector}")

    # -- peers (server backend) --
    def peers(self):
        """IDs of the other peers the server announced."""
        ids = (ctypes.c_uint16 * 65536)()
        n = check(lib.ivshmem_peer_list(self._handle(), ids, len(ids)), "peers")
        return list(ids[:min(n, len(ids))])

    def peer_vectors(self, peer):
        return check(lib.ivshmem_peer_vectors(self._handle(), peer), f"peer {peer}")

    def control_fd(self):
        """Readable when the server sent something: then call peer_events()."""
        return check(lib.ivshmem_control_fd(self._handle()), "control fd")

    def peer_events(self):
        """The pending PeerEvent(type, peer, vectors) list (PEER_JOIN, PEER_LEAVE)."""
        out, ev = [], PeerEventC()
        while check(lib.ivshmem_next_peer_event(self._handle(), ctypes.byref(ev)), "peer event"):
            out.append(PeerEvent(ev.type, ev.peer, ev.vectors))
        return out

    # -- layout (docs/layout.md) --
    def format(self, name=""):
        """Write a fresh layout header: destroys the previous layout (only while unused)."""
        check(lib.ivshmem_layout_format(self._handle(), name.encode()), "format")

    def layout_name(self):
        """The layout header's name, or None when the region has no header."""
        buf = ctypes.create_string_buffer(64)
        rc = check(lib.ivshmem_layout_name(self._handle(), buf, len(buf)), "layout")
        return buf.value.decode(errors="replace") if rc == 1 else None

    def sections(self):
        """The layout's sections as Section(name, type, flags, offset, size, slot)."""
        arr = (SectionC * _LAYOUT_DIR_MAX)()
        n = check(lib.ivshmem_layout_list(self._handle(), arr, len(arr)), "layout")
        return [_section(s) for s in arr[:min(n, len(arr))]]

    def find_section(self, name):
        s = SectionC()
        check(lib.ivshmem_layout_find(self._handle(), name.encode(), ctypes.byref(s)),
              f"section {name!r}")
        return _section(s)

    def add_section(self, name, size, type=SECTION_RAW):
        """Add a section of @size bytes (rounded up to 4096); FileExistsError if present."""
        s = SectionC()
        check(lib.ivshmem_layout_add(self._handle(), name.encode(), type, size, ctypes.byref(s)),
              f"section {name!r}")
        return _section(s)

    def channel(self, name, **kw):
        """Open channel @name of this region: see ivshmem.Channel."""
        from .channel import Channel
        return Channel(self, name, **kw)


def _section(s):
    return Section(s.name.decode(errors="replace"), s.type, s.flags, s.offset, s.size, s.slot)


def open(target, **kw):  # noqa: A001 (the module's verb, like io.open)
    """Open a region: ivshmem.open("file:/dev/shm/x", create=True, size=1 << 20)."""
    return Region(target, **kw)


__all__ = ["Region", "Section", "PeerEvent", "open", "backend_parse", "OPEN_CREATE", "OPEN_READONLY",
           "SECTION_FREE", "SECTION_CHANNEL", "SECTION_RAW", "PEER_JOIN", "PEER_LEAVE"]
