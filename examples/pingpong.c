// SPDX-License-Identifier: MIT
/*
 * Channel ping-pong between two processes over one file (a /dev/shm file on
 * the host, as QEMU's memory-backend-file uses it).
 *
 *     pingpong /dev/shm/pingpong-demo [ROUNDS]
 *
 * The parent creates the file and its layout, then forks. Each process opens
 * the region and the channel "ping" on its own (channels start a heartbeat
 * thread: open them after fork, never before). The parent sends ROUNDS
 * messages and waits for each echo; the child echoes until the parent closes
 * (-EPIPE: end of stream). A file has no doorbells, so both sides poll.
 * Build: cc pingpong.c $(pkg-config --cflags --libs libivshmem)
 */
#include <ivshmem.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_MS 10000

static int fail(const char *who, const char *what)
{
	fprintf(stderr, "pingpong %s: %s: %s\n", who, what, ivshmem_errmsg());
	return 1;
}

/* The child: echo every message back until the parent closes the channel. */
static int echo(const char *path)
{
	struct ivshmem_channel_opts o = { .flags = IVSHMEM_CHANNEL_CREATE };
	struct ivshmem_region *r;
	struct ivshmem_channel *ch;
	char buf[256];
	ssize_t n;
	int ret = 0;

	if (ivshmem_open(&r, path, NULL) < 0)
		return fail("child", "open");
	if (ivshmem_channel_open(&ch, r, "ping", &o) < 0) {
		ivshmem_close(r);
		return fail("child", "channel");
	}
	while ((n = ivshmem_channel_recv(ch, buf, sizeof(buf), TIMEOUT_MS)) >= 0)
		if (ivshmem_channel_send(ch, buf, (size_t)n, TIMEOUT_MS) < 0) {
			ret = fail("child", "send");
			break;
		}
	if (n < 0 && n != -EPIPE)	/* -EPIPE: the parent closed, all read */
		ret = fail("child", "recv");
	ivshmem_channel_close(ch, TIMEOUT_MS);
	ivshmem_close(r);
	return ret;
}

/* The parent: ROUNDS pings, each answered before the next; prints the mean round trip. */
static int ping(const char *path, int rounds)
{
	struct ivshmem_channel_opts o = { .flags = IVSHMEM_CHANNEL_CREATE };
	struct ivshmem_region *r;
	struct ivshmem_channel *ch;
	struct timespec t0, t1;
	char msg[64], back[64];
	int ret = 0;

	if (ivshmem_open(&r, path, NULL) < 0)
		return fail("parent", "open");
	if (ivshmem_channel_open(&ch, r, "ping", &o) < 0) {
		ivshmem_close(r);
		return fail("parent", "channel");
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < rounds && !ret; i++) {
		int len = snprintf(msg, sizeof(msg), "ping %d", i);
		ssize_t n;

		if (ivshmem_channel_send(ch, msg, (size_t)len, TIMEOUT_MS) < 0) {
			ret = fail("parent", "send");
			break;
		}
		n = ivshmem_channel_recv(ch, back, sizeof(back), TIMEOUT_MS);
		if (n < 0)
			ret = fail("parent", "recv");
		else if (n != len || memcmp(back, msg, (size_t)len) != 0)
			ret = fprintf(stderr, "pingpong: echo %d differs\n", i) > 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!ret)
		printf("%d round trips, %.1f us each\n", rounds,
		       ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) /
			       1e3 / rounds);
	/* Close delivers: the child reads everything, then gets -EPIPE. */
	ivshmem_channel_close(ch, TIMEOUT_MS);
	ivshmem_close(r);
	return ret;
}

int main(int argc, char **argv)
{
	struct ivshmem_open_opts create = { .flags = IVSHMEM_OPEN_CREATE, .size = 1 << 20 };
	struct ivshmem_region *r;
	int rounds = argc > 2 ? atoi(argv[2]) : 1000, status, ret;
	pid_t child;

	if (argc < 2 || rounds < 1) {
		fprintf(stderr, "usage: pingpong FILE [ROUNDS]  (e.g. /dev/shm/pingpong-demo)\n");
		return 2;
	}
	/* The layout (a header with a directory) must exist before channels can be added. */
	if (ivshmem_open(&r, argv[1], &create) < 0)
		return fail("setup", argv[1]);
	ret = ivshmem_layout_name(r, NULL, 0);
	if (ret == 0)
		ret = ivshmem_layout_format(r, "pingpong");
	ivshmem_close(r);
	if (ret < 0)
		return fail("setup", "layout");
	fflush(stdout);
	child = fork();
	if (child < 0) {
		perror("fork");
		return 1;
	}
	if (child == 0)
		_exit(echo(argv[1]));
	ret = ping(argv[1], rounds);
	if (waitpid(child, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		ret = 1;
	return ret;
}
