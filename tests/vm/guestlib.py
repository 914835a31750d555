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


# A doorbell guest driven line by line over the control port (ttyS2), for the interop tests
# against our server and QEMU's: the device is pinned at 00:08.0; before the driver binds,
# /dev/mem reaches BAR0 (IO_STRICT_DEVMEM blocks it afterwards), so IVPosition and the devmem
# doorbell come first. Commands: ring PEER VECTOR N, load, wait VECTOR, done, and @extra_cases
# (more "case" arms of the shell script).
def doorbell_guest_script(extra_cases=""):
    return r"""
exec 4</dev/ttyS2
dev=/sys/bus/pci/devices/0000:00:08.0
ok "ivshmem-doorbell at 00:08.0" test "$(cat $dev/device)" = 0x1110
bar0=$(sed -n 1p $dev/resource | cut -d' ' -f1)
id=$(( $(devmem $((bar0 + 8)) 32) ))
diag "IVPOSITION $id"
while true; do
	IFS= read -r cmd <&4
	set -- $cmd
	case $1 in
	ring)
		i=0
		while [ $i -lt $4 ]; do
			devmem $((bar0 + 12)) 32 $(( ($2 << 16) | $3 ))
			i=$((i + 1))
		done
		diag "RANG $2 $3 $4" ;;
	load)
		insmod /lib/ivshmem.ko
		ok "our driver binds the doorbell device" wait_for 10 test -e /dev/ivshmem0
		diag "LOADED" ;;
	wait)
		ok "interrupt on vector $2 arrives (via ivshmem.ko)" \
			ivshmem wait --timeout 60000 /dev/ivshmem0 $2
		diag "WAITED $2" ;;
""" + extra_cases + r"""	done)
		break ;;
	esac
done
"""
