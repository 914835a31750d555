# SPDX-License-Identifier: MIT
"""Python binding of libivshmem: regions, doorbells, layout and channels (docs/api.md).

    import ivshmem
    with ivshmem.open("/dev/shm/demo", create=True, size=1 << 20) as r:
        r.format("demo")
        with r.channel("ping", create=True) as ch:
            ch.send(b"hello")

The shared library is found through $IVSHMEM_LIB, then the source tree's build/ directory,
then the system (libivshmem0). Errors raise IvshmemError (an OSError) carrying the
library's sentence and the errno; common errnos are also the matching builtin exception
(TimeoutError, BlockingIOError, BrokenPipeError, ConnectionResetError, FileNotFoundError...).
"""
from .errors import IvshmemError
from .region import (Region, Section, PeerEvent, open, backend_parse, OPEN_CREATE, OPEN_READONLY,
                     SECTION_FREE, SECTION_CHANNEL, SECTION_RAW, PEER_JOIN, PEER_LEAVE)
from .channel import (Channel, CHANNEL_CREATE, CHANNEL_SEND_ONLY, CHANNEL_RECV_ONLY,
                      WAITING, CONNECTED, PEER_CLOSED, PEER_DEAD, BROKEN)
from ._lib import lib as _lib

__version__ = "0.1.0"

__all__ = ["IvshmemError", "Region", "Section", "PeerEvent", "open", "backend_parse", "Channel",
           "OPEN_CREATE", "OPEN_READONLY", "SECTION_FREE", "SECTION_CHANNEL", "SECTION_RAW",
           "PEER_JOIN", "PEER_LEAVE", "CHANNEL_CREATE", "CHANNEL_SEND_ONLY", "CHANNEL_RECV_ONLY",
           "WAITING", "CONNECTED", "PEER_CLOSED", "PEER_DEAD", "BROKEN"]
