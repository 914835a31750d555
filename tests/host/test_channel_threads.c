// SPDX-License-Identifier: MIT
/*
 * Two endpoints in two threads stream in both directions at once, each driven
 * by an event loop on ivshmem_channel_fd() with non-blocking send/recv (the
 * way an epoll application uses a channel), then close with linger. Also in
 * the 'tsan' suite: the rings, the heartbeat thread and close must be free of
 * data races.
 */
#define _GNU_SOURCE
#include "ivshmem/channel.h"
#include "ivshmem/layout.h"
#include "ivshmem/region.h"
#include "sanitizers.h"
#include "tap.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static char path[64];
static unsigned int total;

struct side {
	struct ivshmem_region *r;
	unsigned int seed;
	unsigned int sent, received, bad, polls;
	int close_ret, err;
};

static void *run(void *arg)
{
	struct side *s = arg;
	struct ivshmem_channel *ch;
	struct ivshmem_channel_opts o = { .flags = IVSHMEM_CHANNEL_CREATE, .ring_size = 4096,
					  .open_timeout_ms = 2000 };
	unsigned char buf[512];
	int ret = ivshmem_channel_open(&ch, s->r, "duplex", &o);

	if (ret < 0) {
		s->err = ret;
		return NULL;
	}
	while (s->sent < total || s->received < total) {
		int progress = 0;

		while (s->sent < total) {
			size_t len = 4 + (s->sent * 13) % 300;

			memset(buf, (int)(s->sent & 0xff), len);
			memcpy(buf, &s->sent, 4);
			ret = ivshmem_channel_send(ch, buf, len, 0);
			if (ret == -EAGAIN)
				break;
			if (ret < 0) {
				s->err = ret;
				goto out;
			}
			s->sent++;
			progress = 1;
		}
		for (;;) {
			ssize_t n = ivshmem_channel_recv(ch, buf, sizeof(buf), 0);
			unsigned int seq;

			if (n == -EAGAIN || (n == -EPIPE && s->received == total))
				break;
			if (n < 4) {
				s->err = (int)n;
				goto out;
			}
			memcpy(&seq, buf, 4);
			if (seq != s->received || (size_t)n != 4 + (seq * 13) % 300 ||
			    (n > 4 && buf[n - 1] != (unsigned char)(seq & 0xff)))
				s->bad++;
			s->received++;
			progress = 1;
		}
		if (!progress) {
			struct pollfd p = { .fd = ivshmem_channel_fd(ch), .events = POLLIN };

			s->polls++;
			if (poll(&p, 1, 5000) == 0) {
				s->err = -ETIMEDOUT;	/* no event for 5 s: a hang */
				goto out;
			}
		}
	}
out:
	s->close_ret = ivshmem_channel_close(ch, 5000);
	return NULL;
}

int main(void)
{
	struct ivshmem_open_opts create = { .backend = IVSHMEM_BACKEND_FILE,
					    .flags = IVSHMEM_OPEN_CREATE, .size = 1 << 20 };
	struct ivshmem_open_opts open_file = { .backend = IVSHMEM_BACKEND_FILE };
	struct ivshmem_region *r;
	struct side a = { .seed = 1 }, b = { .seed = 2 };
	pthread_t ta, tb;

#ifdef UNDER_TSAN
	total = 5000;
#else
	total = 50000;
#endif
	snprintf(path, sizeof(path), "/dev/shm/ivshmem-test-chthreads-%d", (int)getpid());
	unlink(path);
	if (ivshmem_open(&r, path, &create) < 0 || ivshmem_layout_format(r, "threads") < 0 ||
	    ivshmem_open(&a.r, path, &open_file) < 0 || ivshmem_open(&b.r, path, &open_file) < 0) {
		printf("Bail out! %s\n", ivshmem_errmsg());
		return 1;
	}
	pthread_create(&ta, NULL, run, &a);
	pthread_create(&tb, NULL, run, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	tap_diag("A: sent %u received %u polls %u; B: sent %u received %u polls %u", a.sent,
		 a.received, a.polls, b.sent, b.received, b.polls);
	tap_is(a.err, 0, "endpoint A: no error");
	tap_is(b.err, 0, "endpoint B: no error");
	tap_ok(a.received == total && b.received == total, "%u messages each way", total);
	tap_is(a.bad + b.bad, 0, "all in order and intact");
	tap_ok(a.close_ret == 0 && b.close_ret == 0, "both closes return 0 (all delivered)");
	ivshmem_close(a.r);
	ivshmem_close(b.r);
	ivshmem_close(r);
	unlink(path);
	return tap_done();
}
