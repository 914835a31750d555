// SPDX-License-Identifier: MIT
/*
 * The device subcommands of `ivshmem`: list, info, dump, read, write,
 * notify, wait, watch, peers. DEV is any region target (a file, server:SOCK, a
 * PCI selector): info, dump, read, write and watch work on the host and in a
 * guest; list and the PCI selectors only in a guest; notify and wait need
 * doorbells (server:SOCK on the host). Each subcommand has its own file; this
 * is their table and help text.
 *
 * Every access to the mapping goes through ivshmem_read()/ivshmem_write()
 * (aligned-only on device memory) inside a SIGBUS guard: a hot-removed
 * device (or a truncated backing file) revokes the mapping, and we report
 * that instead of dying or printing stale bytes.
 */
#include "dev.h"

#define DEV_HELP                                                                              \
	"DEV is a region target:\n"                                                           \
	"  PATH, file:PATH           a host file (/dev/shm/NAME, hugetlbfs)\n"               \
	"  server:SOCKET             a peer of ivshmem-server\n"                             \
	"  pci:DDDD:BB:DD.F, BB:DD.F a guest PCI device by address\n"                        \
	"  index:N                   the Nth device of 'ivshmem list'\n"                     \
	"  name:NAME                 the device whose region header is named NAME\n"       \
	"  /dev/ivshmemN             a device node of the ivshmem driver\n"

#define BACKEND_HELP                                                                          \
	"  -b, --backend NAME  force a backend: file server driver sysfs vfio devmem\n"      \
	"                      (default: automatic; guests try driver, sysfs, vfio, devmem)\n"

#define SIZE_HELP "N accepts K/M/G suffixes and 0x hex.\n"

#define RANGE_HELP(deflen)                                                                    \
	"  -s, --section NAME  offsets are relative to section NAME of the layout\n"         \
	"                      ('ivshmem info' lists them); the length defaults to the\n"   \
	"                      rest of the section\n"                                       \
	"  -o, --offset N      start here (default 0)\n"                                    \
	"  -l, --length N      " deflen "\n"

#define PROGRESS_HELP                                                                         \
	"      --progress      show bytes and rate on stderr while copying (only when\n"   \
	"                      stderr is a terminal)\n"

const struct ivshmem_cmd ivshmem_dev_cmds[] = {
	{ "list", "[--json]", "list the ivshmem PCI devices of this machine (in a guest)",
	  "Columns: index, PCI address, BAR2 size, plain/doorbell, revision, bound driver,\n"
	  "IVPosition (root) and the region header's name (root or the driver).\n"
	  "Devices are re-read from sysfs each time: hot-added devices appear at once.\n"
	  "On the host there are no ivshmem PCI devices: use a file or server:SOCKET.\n\n"
	  "      --json          one JSON array of objects (index, bdf, size, type, revision,\n"
	  "                      driver, ivposition, name, header, bar2_phys); null where\n"
	  "                      unknown\n",
	  cmd_list },
	{ "info", "[--backend NAME] [--json] DEV",
	  "describe a region: backend, size, memory type, peer id, vectors, layout, channels",
	  BACKEND_HELP
	  "      --json          one JSON object: target, pci, backend, size, memory_type,\n"
	  "                      memory_type_source, device_memory, own_id, vectors and\n"
	  "                      layout (null, or status, name and sections; a channel\n"
	  "                      section has its state, slots and each ring's fill)\n\n"
	  "The memory type of a guest device comes from the kernel's PAT records\n"
	  "(" "/sys/kernel/debug/x86/pat_memtype_list: root and debugfs), else 'unknown'.\n"
	  "Exits 1 when the layout header is corrupt (after printing the rest).\n\n" DEV_HELP,
	  cmd_info },
	{ "dump", "[--backend NAME] [--section NAME] [--offset N] [--length N] [--progress] DEV",
	  "hexdump part of a region (default: 256 bytes at offset 0)",
	  BACKEND_HELP RANGE_HELP("this many bytes (default 256)") PROGRESS_HELP SIZE_HELP
	  "\n" DEV_HELP,
	  cmd_dump },
	{ "read", "[--backend NAME] [--section NAME] [--offset N] [--length N] [--progress] DEV",
	  "copy raw bytes from a region to stdout",
	  BACKEND_HELP RANGE_HELP("this many bytes (default: to the end)") PROGRESS_HELP
	  SIZE_HELP "\n" DEV_HELP,
	  cmd_read },
	{ "write", "[--backend NAME] [--section NAME] [--offset N] [--length N] [--progress] DEV",
	  "copy raw bytes from stdin into a region",
	  BACKEND_HELP RANGE_HELP("stop after N bytes (default: at end of input)") PROGRESS_HELP
	  SIZE_HELP "Input that would run past the region's (or section's) end is an error\n"
	  "(exit 1) after what fits was written.\n\n" DEV_HELP,
	  cmd_write },
	{ "notify", "[--backend NAME] DEV PEER VECTOR", "ring a peer's doorbell vector",
	  BACKEND_HELP "\nWrites (PEER << 16) | VECTOR to the Doorbell register (guest) or the peer's\n"
		       "eventfd (server). QEMU ignores unknown peers and vectors silently.\n"
		       "A file has no doorbells: on the host, use server:SOCKET.\n\n" DEV_HELP,
	  cmd_notify },
	{ "wait", "[--backend NAME] [--timeout MS] DEV [VECTOR]",
	  "wait for an interrupt on own VECTOR (default: any)",
	  BACKEND_HELP "  -t, --timeout MS    give up after MS milliseconds (exit 4; default and -1:\n"
		       "                      forever)\n\n"
		       "Needs a backend with interrupts: on the host, server:SOCKET; in a guest, the\n"
		       "driver or vfio. Others fail and say so.\n\n" DEV_HELP,
	  cmd_wait },
	{ "watch",
	  "[--backend NAME] [--section NAME] [--offset N] [--length N] [--interval MS] "
	  "[--timeout MS] DEV",
	  "poll part of a region and hexdump it whenever it changes",
	  BACKEND_HELP RANGE_HELP("this many bytes (default 64, at most 64K)")
		       "      --interval MS   poll period (default 100)\n"
		       "  -t, --timeout MS    stop after MS milliseconds (exit 0; default and -1:\n"
		       "                      forever)\n\n"
		       "Exits 3 if the device is removed while watched.\n\n" DEV_HELP,
	  cmd_watch },
	{ "peers", "[--json] server:SOCKET", "list the peers connected to an ivshmem-server",
	  "Joins the server as a peer for a moment and prints the other peers' IDs and\n"
	  "vector counts, the region size and the vectors per peer.\n\n"
	  "      --json          one JSON object: own_id, size, vectors, peers (id, vectors)\n",
	  cmd_peers },
	{ 0 },
};
