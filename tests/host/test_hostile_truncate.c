// SPDX-License-Identifier: MIT
/*
 * Hostile peers on a /dev/shm channel (issue 10, item 9): two processes
 * stream over a channel while (1) a third shrinks the file to 4 KiB, and
 * (2) a third scribbles random bytes over the whole channel section. Neither
 * end may die of a signal (SIGBUS, exit 135 before the fix) or hang: a
 * truncated region is an error (-ENODEV), garbage is an error or survived.
 * Every child runs under a hard bound. Meant to run under ASan+UBSan too.
 */
#define _GNU_SOURCE
#include "tap.h"

#include "ivshmem/channel.h"
#include "ivshmem/layout.h"
#include "ivshmem/region.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BOUND_MS 20000	/* a child still running after this is a hang */
#define RUN_MS 1500	/* how long the scribbled ends keep going */

static char path[96];

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Exit status, 128 + signal, or -1 when it hung (then it is killed). */
static int bounded_wait(pid_t pid)
{
	int64_t t0 = now_ms();
	struct timespec step = { 0, 5000000 };
	int st;

	while (now_ms() - t0 < BOUND_MS) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
		nanosleep(&step, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

static int make_channel(void)
{
	struct ivshmem_open_opts o = { .flags = IVSHMEM_OPEN_CREATE, .size = 1 << 20 };
	struct ivshmem_channel_opts co = { .flags = IVSHMEM_CHANNEL_CREATE, .ring_size = 64 << 10 };
	struct ivshmem_channel *ch;
	struct ivshmem_region *r;

	unlink(path);
	if (ivshmem_open(&r, path, &o) < 0 || ivshmem_layout_format(r, "hostile") < 0 ||
	    ivshmem_channel_open(&ch, r, "c", &co) < 0) {
		tap_diag("setup: %s", ivshmem_errmsg());
		return -1;
	}
	ivshmem_channel_close(ch, 0);
	ivshmem_close(r);
	return 0;
}

/*
 * One end in a child: send or receive 64-byte messages until an error or
 * @run_ms (-1: until an error). After 100 messages, one byte to @sync. Exits 0
 * when it ran out of time, 1 on -ENODEV or -EBADMSG, 2 on another error.
 */
static pid_t start_end(bool sender, int sync, int run_ms)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	struct ivshmem_channel_opts co = { .open_timeout_ms = 2000 };
	struct ivshmem_channel *ch;
	struct ivshmem_region *r;
	char buf[64] = "hostile";
	int64_t end = run_ms < 0 ? -1 : now_ms() + run_ms;
	long n = 0, ret;

	if (ivshmem_open(&r, path, NULL) < 0 || ivshmem_channel_open(&ch, r, "c", &co) < 0) {
		printf("# %s: open: %s\n", sender ? "sender" : "receiver", ivshmem_errmsg());
		fflush(stdout);
		_exit(3);
	}
	for (;;) {
		ret = sender ? ivshmem_channel_send(ch, buf, sizeof(buf), 200)
			     : ivshmem_channel_recv(ch, buf, sizeof(buf), 200);
		if (ret == -ETIMEDOUT)
			ret = 0;
		if (ret < 0)
			break;
		if (++n == 100 && sync >= 0 && write(sync, "x", 1) != 1)
			_exit(4);
		if (end >= 0 && now_ms() >= end)
			_exit(0);
	}
	printf("# %s after %ld messages: %s\n", sender ? "sender" : "receiver", n,
	       ivshmem_errmsg());
	fflush(stdout);
	_exit(ret == -ENODEV || ret == -EBADMSG ? 1 : 2);
}

static bool wait_readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char b;

	return poll(&p, 1, ms) == 1 && read(fd, &b, 1) == 1;
}

static void test_truncate(void)
{
	int sync[2];
	pid_t tx, rx;
	int st_tx, st_rx;

	if (make_channel() < 0 || pipe(sync) < 0) {
		tap_ok(0, "setup");
		return;
	}
	rx = start_end(false, sync[1], -1);
	tx = start_end(true, -1, -1);
	tap_ok(wait_readable(sync[0], 10000), "the two ends are streaming");
	tap_ok(truncate(path, 4096) == 0, "a third process shrinks %s to 4 KiB mid-stream", path);
	st_rx = bounded_wait(rx);
	st_tx = bounded_wait(tx);
	tap_is(st_rx, 1, "the receiver fails with an error (ENODEV/EBADMSG), no SIGBUS, no hang");
	tap_is(st_tx, 1, "the sender fails with an error (ENODEV/EBADMSG), no SIGBUS, no hang");
	close(sync[0]);
	close(sync[1]);
}

/* A library user's own SIGBUS outside any region still reaches its handler. */
static volatile sig_atomic_t user_sigbus;

static void on_user_sigbus(int sig)
{
	(void)sig;
	user_sigbus = 1;
}

static void test_chained_handler(void)
{
	struct ivshmem_region *r;

	signal(SIGBUS, SIG_DFL);
	pid_t pid = fork();

	if (pid == 0) {
		signal(SIGBUS, on_user_sigbus);
		if (ivshmem_open(&r, path, NULL) < 0)	/* installs the library's handler */
			_exit(3);
		raise(SIGBUS);
		_exit(user_sigbus ? 0 : 2);
	}
	tap_is(bounded_wait(pid), 0, "a SIGBUS outside any region goes to the previous handler");
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Random bytes over the channel section, as fast as possible, until killed. */
static pid_t start_scribbler(void)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	struct ivshmem_region *r;
	struct ivshmem_section s;
	uint64_t seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();

	if (ivshmem_open(&r, path, NULL) < 0 || ivshmem_layout_find(r, "c", &s) < 0)
		_exit(3);
	uint8_t *sec = (uint8_t *)ivshmem_base(r) + s.offset;

	for (;;) {
		uint64_t v = xorshift(&seed), off = xorshift(&seed) % (s.size - 8);

		memcpy(sec + (off & ~7ull), &v, 8);
	}
}

static void test_scribbler(void)
{
	int sync[2];
	pid_t tx, rx, scribbler;
	int st_tx, st_rx;

	if (make_channel() < 0 || pipe(sync) < 0) {
		tap_ok(0, "setup");
		return;
	}
	rx = start_end(false, sync[1], RUN_MS);
	tx = start_end(true, -1, RUN_MS);
	wait_readable(sync[0], 5000);
	scribbler = start_scribbler();
	st_rx = bounded_wait(rx);
	st_tx = bounded_wait(tx);
	kill(scribbler, SIGKILL);
	waitpid(scribbler, NULL, 0);
	tap_ok(st_rx >= 0 && st_rx <= 2, "receiver under a scribbling peer: survived or failed "
	       "cleanly, no signal, no hang (status %d)", st_rx);
	tap_ok(st_tx >= 0 && st_tx <= 2, "sender under a scribbling peer: survived or failed "
	       "cleanly, no signal, no hang (status %d)", st_tx);
	close(sync[0]);
	close(sync[1]);
}

int main(void)
{
	snprintf(path, sizeof(path), "/dev/shm/ivshmem-hostile-%d", (int)getpid());
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_truncate();
	test_chained_handler();
	test_scribbler();
	unlink(path);
	return tap_done();
}
