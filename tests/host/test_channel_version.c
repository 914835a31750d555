// SPDX-License-Identifier: MIT
/*
 * Ring format 2 (docs/ring.md) is not compatible with format 1: a channel
 * section that says version 1 is refused with a message that tells what to do,
 * and a channel re-created by this library opens.
 */
#include "ivshmem/channel.h"
#include "ivshmem/layout.h"
#include "tap.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	struct ivshmem_open_opts oo = { .flags = IVSHMEM_OPEN_CREATE, .size = 1 << 20 };
	struct ivshmem_channel_opts co = { .flags = IVSHMEM_CHANNEL_CREATE, .heartbeat_ms = -1 };
	struct ivshmem_region *r;
	struct ivshmem_channel *ch;
	struct ivshmem_section s;
	char path[64];
	uint32_t v1 = 1;
	int ret;

	snprintf(path, sizeof(path), "/dev/shm/ivshmem-test-version-%d", getpid());
	unlink(path);
	if (ivshmem_open(&r, path, &oo) < 0 || ivshmem_layout_format(r, "v") < 0) {
		printf("Bail out! %s\n", ivshmem_errmsg());
		return 1;
	}
	tap_is(ivshmem_channel_open(&ch, r, "c", &co), 0, "a new channel opens");
	ivshmem_channel_close(ch, 0);
	tap_is(ivshmem_layout_find(r, "c", &s), 0, "its section is in the directory");
	tap_ok(memcmp((char *)ivshmem_base(r) + s.offset + 8, "\2\0\0\0", 4) == 0,
	       "the section says version 2");

	/* What a region formatted by the previous release looks like to this one. */
	memcpy((char *)ivshmem_base(r) + s.offset + 8, &v1, 4);
	ret = ivshmem_channel_open(&ch, r, "c", &(struct ivshmem_channel_opts){ .heartbeat_ms = -1 });
	tap_is(ret, -EPROTO, "a version 1 channel is refused");
	tap_ok(strstr(ivshmem_errmsg(), "older version") && strstr(ivshmem_errmsg(), "ivshmem format"),
	       "... saying why and what to do: %s", ivshmem_errmsg());
	if (ret == 0)
		ivshmem_channel_close(ch, 0);
	ivshmem_close(r);
	unlink(path);
	return tap_done();
}
