#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Selection by name survives address changes: two regions named app-a and app-b
(layout headers written by the host) are attached at 00:10.0/00:11.0 in the first
boot and swapped in the second. In both boots name:app-a finds A's data and
name:app-b finds B's, while index:0 / 00:10.0 follow the address."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from guestlib import expect_bytes, layout_header, write_at  # noqa: E402
from rig import Guest, run_test  # noqa: E402

A = b"AAAA-one"
B = b"BBBB-two"


def boot(tap, label, a_addr, b_addr):
    with Guest(f"swap-{label}", timeout=90) as g:
        g.add_tool()
        # Added in address order so that the QEMU command line itself does not give it away.
        order = sorted([(a_addr, "app-a", A), (b_addr, "app-b", B)])
        for addr, name, data in order:
            path = g.add_plain(size="1M", addr=addr)
            write_at(path, 0, layout_header(name, 1 << 20))
            write_at(path, 4096, data)
        first = order[0][2]     # whatever sits at 00:10.0 in this boot
        g.script = f"""
{expect_bytes("/tmp/a", A)}
{expect_bytes("/tmp/b", B)}
{expect_bytes("/tmp/first", first)}
ivshmem list
ivshmem read name:app-a --offset 4096 --length 8 > /tmp/got_a
ok "name:app-a finds A's data" cmp /tmp/got_a /tmp/a
ivshmem read name:app-b --offset 4096 --length 8 > /tmp/got_b
ok "name:app-b finds B's data" cmp /tmp/got_b /tmp/b
ivshmem read 00:10.0 --offset 4096 --length 8 > /tmp/got_10
ok "00:10.0 holds what this boot put there" cmp /tmp/got_10 /tmp/first
ivshmem read index:0 --offset 4096 --length 8 > /tmp/got_i0
ok "index:0 is 00:10.0" cmp /tmp/got_i0 /tmp/first
ok "name:app-a is at {a_addr[2:]}" test "$(ivshmem info name:app-a | sed -n 's/^pci address: *//p')" = 0000:00:{a_addr[2:]}.0
"""
        tap.guest(g.run())


def body(tap):
    boot(tap, "boot1", "0x10", "0x11")
    boot(tap, "boot2", "0x11", "0x10")


run_test(body)
