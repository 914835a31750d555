// SPDX-License-Identifier: MIT
/*
 * The device subcommands of `ivshmem`: list, info, dump, read, write,
 * notify, wait, watch. DEV is any region target (a file, server:SOCK, a PCI
 * selector), so the same commands work on the host and in a guest. Each
 * subcommand has its own file; this is their table and help text.
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

const struct ivshmem_cmd ivshmem_dev_cmds[] = {
	{ "list", "[--json]", "list the ivshmem PCI devices of this machine",
	  "Columns: index, PCI address, BAR2 size, plain/doorbell, revision, bound driver,\n"
	  "IVPosition (root) and the region header's name (root or the driver).\n"
	  "Devices are re-read from sysfs each time: hot-added devices appear at once.\n\n"
	  "  --json   one JSON array of objects (index, bdf, size, type, revision, driver,\n"
	  "           ivposition, name, header, bar2_phys); null where unknown\n",
	  cmd_list },
	{ "info", "[--backend NAME] DEV", "describe a region: backend, size, peer id, vectors, layout",
	  BACKEND_HELP "\n" DEV_HELP, cmd_info },
	{ "dump", "[--backend NAME] [--offset N] [--length N] DEV",
	  "hexdump part of a region (default: 256 bytes at offset 0)",
	  BACKEND_HELP "  -o, --offset N      start here (default 0)\n"
		       "  -l, --length N      this many bytes (default 256)\n" SIZE_HELP "\n" DEV_HELP,
	  cmd_dump },
	{ "read", "[--backend NAME] [--offset N] [--length N] DEV",
	  "copy raw bytes from a region to stdout",
	  BACKEND_HELP "  -o, --offset N      start here (default 0)\n"
		       "  -l, --length N      this many bytes (default: to the end)\n" SIZE_HELP
		       "\n" DEV_HELP,
	  cmd_read },
	{ "write", "[--backend NAME] [--offset N] [--length N] DEV",
	  "copy raw bytes from stdin into a region",
	  BACKEND_HELP "  -o, --offset N      start here (default 0)\n"
		       "  -l, --length N      stop after N bytes (default: at end of input)\n"
		       SIZE_HELP "Input that would run past the region's end is an error (exit 1).\n\n"
		       DEV_HELP,
	  cmd_write },
	{ "notify", "[--backend NAME] DEV PEER VECTOR", "ring a peer's doorbell vector",
	  BACKEND_HELP "\nWrites (PEER << 16) | VECTOR to the Doorbell register (guest) or the peer's\n"
		       "eventfd (server). QEMU ignores unknown peers and vectors silently.\n\n" DEV_HELP,
	  cmd_notify },
	{ "wait", "[--backend NAME] [--timeout MS] DEV [VECTOR]",
	  "wait for an interrupt on own VECTOR (default: any)",
	  BACKEND_HELP "  -t, --timeout MS    give up after MS milliseconds (exit 4)\n\n"
		       "Needs a backend with interrupts: driver or vfio in a guest, server on the\n"
		       "host. Others fail and say so.\n\n" DEV_HELP,
	  cmd_wait },
	{ "watch", "[--backend NAME] [--offset N] [--length N] [--interval MS] [--timeout MS] DEV",
	  "poll part of a region and hexdump it whenever it changes",
	  BACKEND_HELP "  -o, --offset N      start here (default 0)\n"
		       "  -l, --length N      this many bytes (default 64, at most 64K)\n"
		       "      --interval MS   poll period (default 100)\n"
		       "  -t, --timeout MS    stop after MS milliseconds (exit 0)\n\n"
		       "Exits 3 if the device is removed while watched.\n\n" DEV_HELP,
	  cmd_watch },
	{ 0 },
};
