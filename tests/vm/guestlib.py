# SPDX-License-Identifier: MIT
"""Helpers shared by the test_guest_*.py VM tests (issue 4: guest-side access)."""
import os
import struct


def layout_header(name, region_size):
    """A version-1 region header (docs/layout.md) named @name, empty directory.

    Written from Python on purpose: the guest-side tests must not depend on the
    host-side `ivshmem format` being correct to check the guest's name lookup.
    """
    hdr = bytearray(4096)
    hdr[0:8] = b"IVSHMLAY"
    struct.pack_into("<IIQIIIIQQ", hdr, 8,
                     1,             # version
                     4096,          # header_size
                     region_size,   # region_size
                     256,           # dir_offset
                     64,            # dir_entry_size
                     60,            # dir_capacity
                     0,             # flags
                     4096,          # data_offset
                     int.from_bytes(os.urandom(8), "little"))  # format_id
    raw = name.encode()
    assert len(raw) < 64
    hdr[64:64 + len(raw)] = raw
    return bytes(hdr)


def write_at(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def read_at(path, offset, n):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(n)


def expect_bytes(var, data):
    """Shell: write @data (exact bytes) to file $var in the guest, via printf escapes."""
    esc = "".join(f"\\{b:03o}" for b in data)
    return f"printf '{esc}' > {var}"
