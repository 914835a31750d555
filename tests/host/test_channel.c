// SPDX-License-Identifier: MIT
/*
 * Channels between processes over a host file (no interrupts: polling):
 * connection states, both directions, the pollable fd, buffered sends before
 * the peer arrives, close draining, reuse after close, and peer death
 * (a SIGKILLed peer) surfacing as -ECONNRESET within the heartbeat timeout.
 */
#define _GNU_SOURCE
#include "ivshmem/channel.h"
#include "ivshmem/layout.h"
#include "ivshmem/region.h"
#include "tap.h"

#include <errno.h>
#include <stdlib.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char path[64];

static struct ivshmem_region *open_region(void)
{
	struct ivshmem_open_opts o = { .backend = IVSHMEM_BACKEND_FILE };
	struct ivshmem_region *r = NULL;

	if (ivshmem_open(&r, path, &o) < 0) {
		printf("Bail out! %s\n", ivshmem_errmsg());
		exit(1);
	}
	return r;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const struct ivshmem_channel_opts fast = {
	.flags = IVSHMEM_CHANNEL_CREATE,
	.ring_size = 8192,
	.heartbeat_ms = 20,
	.dead_ms = 600,
};

static void test_basic(struct ivshmem_region *ra, struct ivshmem_region *rb)
{
	struct ivshmem_channel *a, *b, *c;
	char buf[8192];
	ssize_t n;
	int ret;

	ret = ivshmem_channel_open(&a, ra, "basic", NULL);
	tap_ok(ret == -ENOENT && strstr(ivshmem_errmsg(), "basic"),
	       "open a missing channel without CREATE: ENOENT (%s)", ivshmem_errmsg());
	tap_is(ivshmem_channel_open(&a, ra, "basic", &fast), 0, "A creates and opens 'basic'");
	tap_is(ivshmem_channel_state(a), IVSHMEM_CHANNEL_WAITING, "A waits for a peer");
	tap_is(ivshmem_channel_max_msg(a), 4096 - 8, "max message is ring/2 - 8");
	tap_is(ivshmem_channel_send(a, "early", 5, 0), 0, "A can send before B arrives (buffered)");
	tap_is(ivshmem_channel_recv(a, buf, sizeof(buf), 0), -EAGAIN, "A has nothing to receive");
	tap_is(ivshmem_channel_open(&b, rb, "basic", NULL), 0, "B opens it without CREATE");
	tap_is(ivshmem_channel_state(b), IVSHMEM_CHANNEL_CONNECTED, "B is connected");
	tap_is(ivshmem_channel_state(a), IVSHMEM_CHANNEL_CONNECTED, "A is connected");
	ret = ivshmem_channel_open(&c, rb, "basic", NULL);
	tap_ok(ret == -EBUSY, "a third endpoint: EBUSY (%s)", ivshmem_errmsg());

	n = ivshmem_channel_recv(b, buf, sizeof(buf), 1000);
	tap_ok(n == 5 && memcmp(buf, "early", 5) == 0, "B receives the early message");
	tap_is(ivshmem_channel_send(b, "pong", 4, 1000), 0, "B answers");
	n = ivshmem_channel_recv(a, buf, sizeof(buf), 1000);
	tap_ok(n == 4 && memcmp(buf, "pong", 4) == 0, "A receives the answer");
	tap_is(ivshmem_channel_send(a, buf, 4089, 0), -EMSGSIZE, "over max: EMSGSIZE");
	tap_is(ivshmem_channel_send(a, buf, 0, 0), 0, "an empty message");
	tap_is(ivshmem_channel_recv(b, buf, sizeof(buf), 1000), 0, "arrives as length 0");

	/* Fill A->B until it blocks; a send with a timeout times out. */
	int sent = 0;
	while (ivshmem_channel_send(a, buf, 1000, 0) == 0)
		sent++;
	tap_ok(sent >= 5 && sent <= 8, "the 8 KiB ring holds %d records of 1000 bytes", sent);
	double t0 = now_s();
	ret = ivshmem_channel_send(a, buf, 1000, 100);
	tap_ok(ret == -ETIMEDOUT && now_s() - t0 >= 0.09 && now_s() - t0 < 2,
	       "a send to a full ring times out after ~100 ms (%s)", ivshmem_errmsg());
	tap_is(ivshmem_channel_recv(b, buf, 10, 0), -EMSGSIZE, "too small a buffer: EMSGSIZE");
	for (int i = 0; i < sent; i++)
		if (ivshmem_channel_recv(b, buf, sizeof(buf), 0) != 1000)
			sent = -1;
	tap_ok(sent > 0, "B drains them");
	t0 = now_s();
	tap_is(ivshmem_channel_recv(b, buf, sizeof(buf), 50), -ETIMEDOUT, "recv times out");

	/* The pollable fd. */
	struct pollfd pfd = { .fd = ivshmem_channel_fd(b), .events = POLLIN };
	ivshmem_channel_send(a, "x", 1, 0);
	tap_ok(pfd.fd >= 0 && poll(&pfd, 1, 1000) == 1, "B's fd becomes readable");
	tap_is(ivshmem_channel_recv(b, buf, sizeof(buf), 0), 1, "and recv(0) gets the message");

	/* Close drains: A sends, closes; B gets everything, then EPIPE. */
	ivshmem_channel_send(a, "one", 3, 0);
	ivshmem_channel_send(a, "two", 3, 0);
	ret = ivshmem_channel_close(a, 0);
	tap_is(ret, -ETIMEDOUT, "closing with unread records and no linger: ETIMEDOUT");
	tap_is(ivshmem_channel_state(b), IVSHMEM_CHANNEL_PEER_CLOSED, "B sees peer-closed");
	n = ivshmem_channel_recv(b, buf, sizeof(buf), 0);
	tap_ok(n == 3 && memcmp(buf, "one", 3) == 0, "B still gets 'one'");
	n = ivshmem_channel_recv(b, buf, sizeof(buf), 0);
	tap_ok(n == 3 && memcmp(buf, "two", 3) == 0, "and 'two'");
	tap_is(ivshmem_channel_recv(b, buf, sizeof(buf), 1000), -EPIPE, "then EPIPE (end of stream)");
	tap_is(ivshmem_channel_send(b, "x", 1, 0), -EPIPE, "sending to a closed peer: EPIPE");
	tap_is(ivshmem_channel_close(b, 0), 0, "B closes");

	/* Both closed: the next pair starts afresh. */
	tap_is(ivshmem_channel_open(&a, ra, "basic", NULL), 0, "reopen after both closed");
	tap_is(ivshmem_channel_open(&b, rb, "basic", NULL), 0, "second endpoint reopens");
	tap_is(ivshmem_channel_recv(b, buf, sizeof(buf), 0), -EAGAIN, "nothing stale in the ring");
	ivshmem_channel_send(b, "fresh", 5, 0);
	n = ivshmem_channel_recv(a, buf, sizeof(buf), 1000);
	tap_ok(n == 5 && memcmp(buf, "fresh", 5) == 0, "the new pair talks");
	tap_is(ivshmem_channel_close(a, 1000), 0, "close with nothing unread: 0");
	tap_is(ivshmem_channel_close(b, 1000), 0, "both closed");
}

/* A child process talks to us with blocking calls, then closes with linger: nothing is lost. */
static void test_processes(struct ivshmem_region *ra)
{
	struct ivshmem_channel *a;
	char buf[256];
	int bad = 0, status;
	pid_t pid;

	/* Fork before this process starts a heartbeat thread (fork after open: test_channel_fork.c). */
	pid = fork();
	if (pid == 0) {
		struct ivshmem_region *rc = open_region();
		struct ivshmem_channel *c;

		if (ivshmem_channel_open(&c, rc, "procs", &fast) < 0)
			_exit(10);
		/* Echo 2000 messages back, incremented, then send 500 more and close. */
		for (int i = 0; i < 2000; i++) {
			unsigned int v;

			if (ivshmem_channel_recv(c, &v, sizeof(v), 5000) != sizeof(v))
				_exit(11);
			v++;
			if (ivshmem_channel_send(c, &v, sizeof(v), 5000) < 0)
				_exit(12);
		}
		for (unsigned int i = 0; i < 500; i++)
			if (ivshmem_channel_send(c, &i, sizeof(i), 5000) < 0)
				_exit(13);
		_exit(ivshmem_channel_close(c, 5000) == 0 ? 0 : 14);
	}
	tap_is(ivshmem_channel_open(&a, ra, "procs", &fast), 0, "open 'procs'");
	for (unsigned int i = 0; i < 2000; i++) {
		unsigned int v = i * 3;

		if (ivshmem_channel_send(a, &v, sizeof(v), 5000) < 0 ||
		    ivshmem_channel_recv(a, &v, sizeof(v), 5000) != sizeof(v) || v != i * 3 + 1)
			bad++;
	}
	tap_is(bad, 0, "2000 blocking round trips with a child process");
	for (unsigned int i = 0; i < 500; i++) {
		unsigned int v;

		if (ivshmem_channel_recv(a, &v, sizeof(v), 5000) != sizeof(v) || v != i)
			bad++;
	}
	tap_is(bad, 0, "500 messages sent just before the child closed all arrive");
	tap_is(ivshmem_channel_recv(a, buf, sizeof(buf), 5000), -EPIPE, "then EPIPE");
	waitpid(pid, &status, 0);
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "the child's close (linger) returned 0: all delivered (status %d)", status);
	ivshmem_channel_close(a, 0);
}

/* A peer killed with SIGKILL: a blocked recv and a send return ECONNRESET, never hang. */
static void test_death(struct ivshmem_region *ra)
{
	struct ivshmem_channel *a, *b;
	char buf[64];
	int pfd[2], status, ret;
	double t0;
	ssize_t n;
	pid_t pid;

	if (pipe(pfd) < 0)
		return;
	pid = fork();
	if (pid == 0) {
		struct ivshmem_region *rc = open_region();
		struct ivshmem_channel *c;

		if (ivshmem_channel_open(&c, rc, "death", &fast) < 0)
			_exit(10);
		ivshmem_channel_send(c, "last words", 10, 1000);
		if (write(pfd[1], "r", 1) != 1)
			_exit(11);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	if (read(pfd[0], buf, 1) != 1)
		tap_diag("child did not start");
	close(pfd[0]);
	tap_is(ivshmem_channel_open(&a, ra, "death", &fast), 0, "open 'death'");
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	t0 = now_s();
	n = ivshmem_channel_recv(a, buf, sizeof(buf), 10000);
	tap_ok(n == 10 && memcmp(buf, "last words", 10) == 0, "what the dead peer sent is delivered");
	n = ivshmem_channel_recv(a, buf, sizeof(buf), 10000);
	tap_ok(n == -ECONNRESET, "then a blocked recv fails with ECONNRESET (%s)", ivshmem_errmsg());
	tap_ok(now_s() - t0 < 3.0, "within about the 600 ms heartbeat timeout (%.2f s)", now_s() - t0);
	tap_is(ivshmem_channel_state(a), IVSHMEM_CHANNEL_PEER_DEAD, "state: peer-dead");
	tap_is(ivshmem_channel_send(a, "x", 1, 1000), -ECONNRESET, "send: ECONNRESET");
	ivshmem_channel_close(a, 0);

	/*
	 * A dead endpoint that never closed does not block the channel: on the same kernel
	 * its pid is gone, so its slot is reclaimed at once (issue 12.2), no dead_ms wait.
	 */
	struct ivshmem_channel_opts wait = fast;
	wait.open_timeout_ms = 3000;
	t0 = now_s();
	ret = ivshmem_channel_open(&a, ra, "death", &fast);
	tap_ok(ret == 0, "reopen at once: the dead process's slot is reclaimed (%s)",
	       ret ? ivshmem_errmsg() : "ok");
	tap_ok(now_s() - t0 < 0.5, "without waiting for its heartbeat (%.2f s)", now_s() - t0);
	tap_is(ivshmem_channel_open(&b, ra, "death", &wait), 0, "the second end reopens too");
	ivshmem_channel_send(a, "hi", 2, 0);
	tap_is(ivshmem_channel_recv(b, buf, sizeof(buf), 1000), 2, "and they talk");
	ivshmem_channel_close(a, 0);
	ivshmem_channel_close(b, 0);
}

int main(void)
{
	struct ivshmem_open_opts create = { .backend = IVSHMEM_BACKEND_FILE,
					    .flags = IVSHMEM_OPEN_CREATE, .size = 1 << 20 };
	struct ivshmem_region *r, *ra, *rb;

	snprintf(path, sizeof(path), "/dev/shm/ivshmem-test-channel-%d", (int)getpid());
	unlink(path);
	if (ivshmem_open(&r, path, &create) < 0 || ivshmem_layout_format(r, "chantest") < 0) {
		printf("Bail out! %s\n", ivshmem_errmsg());
		return 1;
	}
	ra = open_region();
	rb = open_region();
	test_basic(ra, rb);
	test_processes(ra);
	test_death(ra);
	ivshmem_close(ra);
	ivshmem_close(rb);
	ivshmem_close(r);
	unlink(path);
	return tap_done();
}
