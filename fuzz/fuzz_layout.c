// SPDX-License-Identifier: MIT
/*
 * libFuzzer: the layout and channel code over arbitrary region contents.
 *
 * The input is copied to the start of a 256 KiB region (a memfd opened with
 * the file backend); the rest is zero. Then everything a peer can be made to
 * read is exercised: the name, print, list, find, adding a section, and
 * opening, using and closing a channel named "ctl". The layout lock word is
 * cleared first: a held lock is waited for (2 s) by design, which a fuzzer
 * must not spend time on.
 */
#define _GNU_SOURCE
#include "ivshmem/channel.h"
#include "ivshmem/layout.h"
#include "ivshmem/region.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define REGION_SIZE (256u * 1024)

static struct ivshmem_region *region;
static FILE *devnull;

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
	struct ivshmem_channel_opts co = { .heartbeat_ms = -1, .spin_us = -1 };
	struct ivshmem_section secs[IVSHMEM_LAYOUT_DIR_MAX], s;
	struct ivshmem_channel *ch;
	char name[IVSHMEM_LAYOUT_NAME_LEN], buf[256];
	uint8_t *base;

	if (!region) {
		struct ivshmem_open_opts o = { .backend = IVSHMEM_BACKEND_FILE };
		char path[64];
		int fd = memfd_create("fuzz-layout", 0);

		if (fd < 0 || ftruncate(fd, REGION_SIZE) < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if (ivshmem_open(&region, path, &o) < 0)
			abort();
		devnull = fopen("/dev/null", "w");
	}
	base = ivshmem_base(region);
	memset(base, 0, REGION_SIZE);
	memcpy(base, in, size < REGION_SIZE ? size : REGION_SIZE);
	memset(base + IVSHMEM_LAYOUT_LOCK_OFFSET, 0, 4);

	ivshmem_layout_name(region, name, sizeof(name));
	ivshmem_layout_print(region, devnull);
	ivshmem_layout_list(region, secs, IVSHMEM_LAYOUT_DIR_MAX);
	ivshmem_layout_find(region, "ctl", &s);
	if (ivshmem_channel_open(&ch, region, "ctl", &co) == 0) {
		ivshmem_channel_recv(ch, buf, sizeof(buf), 0);
		ivshmem_channel_send(ch, "fuzz", 4, 0);
		ivshmem_channel_state(ch);
		ivshmem_channel_close(ch, 0);
	}
	ivshmem_layout_add(region, "new", IVSHMEM_SECTION_RAW, 4096, &s);
	return 0;
}
