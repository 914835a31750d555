# SPDX-License-Identifier: MIT
"""Is anyone listening on a UNIX socket path, without connecting (a connect is a peer join)?"""


def listening(path):
    """QEMU's ivshmem-server creates the socket file at bind(), before listen(): a client
    that connects as soon as the file exists can be refused. /proc/net/unix flags a listening
    socket (__SO_ACCEPTCON, 0x10000) with the name it was bound to; ours binds PATH.PID~ and
    links it into place once it listens, hence the prefix."""
    with open("/proc/net/unix") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            if (len(cols) >= 8 and int(cols[3], 16) & 0x10000
                    and (cols[7] == path or cols[7].startswith(path + "."))):
                return True
    return False
