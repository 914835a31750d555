// SPDX-License-Identifier: MIT
/*
 * The channel API the bridge added (docs/channel.md "Abortive close"):
 * ivshmem_channel_abort() is read by the peer as a death (ECONNRESET) after
 * every record sent before it, unlike close (EPIPE); an ABORTED slot is gone
 * for the next opener; IVSHMEM_CHANNEL_NO_LEFTOVERS refuses the end whose
 * records a departed endpoint left, where a plain open takes them.
 */
#include "tap.h"

#include "ivshmem/channel.h"
#include "ivshmem/layout.h"
#include "ivshmem/region.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const struct ivshmem_channel_opts opts = { .flags = IVSHMEM_CHANNEL_CREATE, .ring_size = 8192 };

int main(void)
{
	struct ivshmem_open_opts create = { .backend = IVSHMEM_BACKEND_FILE,
					    .flags = IVSHMEM_OPEN_CREATE, .size = 1 << 20 };
	struct ivshmem_channel_opts noleft = opts;
	struct ivshmem_channel *a, *b, *c;
	struct ivshmem_region *r;
	char path[64], buf[64];
	int ret;

	snprintf(path, sizeof(path), "/dev/shm/ivshmem-test-abort-%d", (int)getpid());
	unlink(path);
	if (ivshmem_open(&r, path, &create) < 0 || ivshmem_layout_format(r, "aborttest") < 0) {
		printf("Bail out! %s\n", ivshmem_errmsg());
		return 1;
	}
	/* abort: the records first, then ECONNRESET (both directions). */
	tap_is(ivshmem_channel_open(&a, r, "x", &opts), 0, "open end a");
	tap_is(ivshmem_channel_open(&b, r, "x", &opts), 0, "open end b");
	tap_is(ivshmem_channel_send(a, "one", 3, 0), 0, "a sends one");
	tap_is(ivshmem_channel_send(a, "two", 3, 0), 0, "a sends two");
	tap_is(ivshmem_channel_recv(b, buf, sizeof(buf), 1000), 3, "b receives one");
	tap_is(ivshmem_channel_abort(a), 0, "a aborts");
	tap_is(ivshmem_channel_recv(b, buf, sizeof(buf), 1000), 3, "b still receives two");
	tap_ok(memcmp(buf, "two", 3) == 0, "in order");
	tap_is(ivshmem_channel_recv(b, buf, sizeof(buf), 1000), -ECONNRESET,
	       "then ECONNRESET (a close would be EPIPE)");
	tap_ok(strstr(ivshmem_errmsg(), "reset the connection") != NULL, "the message says it was reset");
	tap_is(ivshmem_channel_state(b), IVSHMEM_CHANNEL_PEER_DEAD, "b's state is peer-dead");
	tap_is(ivshmem_channel_send(b, "x", 1, 0), -ECONNRESET, "b's send: ECONNRESET");
	ivshmem_channel_close(b, 0);

	/* An aborted end is gone: the channel is reused at once. */
	tap_is(ivshmem_channel_open(&a, r, "x", &opts), 0, "reopen after abort + close");
	tap_is(ivshmem_channel_open(&b, r, "x", &opts), 0, "second end");
	tap_is(ivshmem_channel_send(b, "hi", 2, 0), 0, "send");
	tap_is(ivshmem_channel_recv(a, buf, sizeof(buf), 1000), 2, "receive on the new pair");
	ivshmem_channel_close(b, 0);
	ivshmem_channel_close(a, 0);

	/* Records left by an aborting endpoint, nobody at the other end. */
	tap_is(ivshmem_channel_open(&a, r, "y", &opts), 0, "open y alone");
	tap_is(ivshmem_channel_send(a, "left", 4, 0), 0, "send a record nobody reads yet");
	ivshmem_channel_abort(a);
	noleft.flags |= IVSHMEM_CHANNEL_NO_LEFTOVERS;
	ret = ivshmem_channel_open(&c, r, "y", &noleft);
	tap_is(ret, -EBUSY, "NO_LEFTOVERS: the end holding a departed endpoint's records is refused");
	tap_is(ivshmem_channel_open(&c, r, "y", &opts), 0, "a plain open takes that end");
	tap_is(ivshmem_channel_recv(c, buf, sizeof(buf), 1000), 4, "and receives the record");
	tap_is(ivshmem_channel_recv(c, buf, sizeof(buf), 1000), -ECONNRESET, "then ECONNRESET");
	ivshmem_channel_close(c, 0);
	tap_is(ivshmem_channel_open(&c, r, "y", &noleft), 0,
	       "NO_LEFTOVERS opens once nothing is left (both ends gone: reset)");
	ivshmem_channel_close(c, 0);
	ivshmem_close(r);
	unlink(path);
	return tap_done();
}
