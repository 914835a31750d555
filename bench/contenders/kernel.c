// SPDX-License-Identifier: MIT
/*
 * Kernel IPC carrying the same payload (struct contender.mode): pipe, AF_UNIX
 * stream socketpair, POSIX mq (<= 8 KiB), and eventfd ping-pong (blocking
 * reads of an 8-byte counter: the wake-up limit).
 */
#define _GNU_SOURCE
#include "../bench.h"

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MQ_MSG 8192

struct ipc {
	int kind;
	int fd_ab[2], fd_ba[2];	/* [0] read end, [1] write end */
	mqd_t mq_ab, mq_ba;
	size_t size;
	uint64_t count, ns;
	uint64_t *rtt;		/* NULL: throughput */
	uint8_t *buf_a, *buf_b;
	struct windows win;
};

static int xfer_write(const struct ipc *c, int fd, mqd_t mq, const uint8_t *p, size_t len)
{
	if (c->kind == IPC_EVENTFD) {
		uint64_t one = 1;

		return write(fd, &one, 8) == 8 ? 0 : -1;
	}
	if (c->kind == IPC_MQ)
		return mq_send(mq, (const char *)p, len, 0);
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int xfer_read(const struct ipc *c, int fd, mqd_t mq, uint8_t *p, size_t len)
{
	if (c->kind == IPC_EVENTFD) {
		uint64_t v;

		return read(fd, &v, 8) == 8 ? 0 : -1;
	}
	if (c->kind == IPC_MQ)
		return mq_receive(mq, (char *)p, MQ_MSG, NULL) >= 0 ? 0 : -1;
	while (len) {
		ssize_t n = read(fd, p, len);

		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void *ipc_a(void *arg)
{
	struct ipc *c = arg;

	for (uint64_t i = 0; i < c->count; i++) {
		uint64_t t0 = now_ns();

		if (xfer_write(c, c->fd_ab[1], c->mq_ab, c->buf_a, c->size) < 0)
			break;
		if (c->rtt) {
			if (xfer_read(c, c->fd_ba[0], c->mq_ba, c->buf_a, c->size) < 0)
				break;
			c->rtt[i] = now_ns() - t0;
		}
	}
	return NULL;
}

static void *ipc_b(void *arg)
{
	struct ipc *c = arg;

	pin(bench_cpu_b);
	win_start(&c->win, c->count);
	for (uint64_t i = 0; i < c->count; i++) {
		if (xfer_read(c, c->fd_ab[0], c->mq_ab, c->buf_b, c->size) < 0)
			break;
		if (c->rtt && xfer_write(c, c->fd_ba[1], c->mq_ba, c->buf_b, c->size) < 0)
			break;
		win_tick(&c->win, i);
	}
	c->ns = win_ns(&c->win, c->count);
	return NULL;
}

static int ipc_open(struct ipc *c)
{
	struct mq_attr attr = { .mq_maxmsg = 10, .mq_msgsize = MQ_MSG };
	char name[64];
	int sv[2];

	switch (c->kind) {
	case IPC_PIPE:
		if (pipe(c->fd_ab) < 0)
			return -1;
		if (pipe(c->fd_ba) < 0) {
			close(c->fd_ab[0]);
			close(c->fd_ab[1]);
			return -1;
		}
		return 0;
	case IPC_UNIX:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			return -1;
		c->fd_ab[0] = c->fd_ba[1] = sv[1];
		c->fd_ab[1] = c->fd_ba[0] = sv[0];
		return 0;
	case IPC_EVENTFD:
		c->fd_ab[0] = c->fd_ab[1] = eventfd(0, EFD_CLOEXEC);
		c->fd_ba[0] = c->fd_ba[1] = eventfd(0, EFD_CLOEXEC);
		return c->fd_ab[0] < 0 || c->fd_ba[0] < 0 ? -1 : 0;
	default:
		snprintf(name, sizeof(name), "/ivshmem-bench-%d-ab", (int)getpid());
		c->mq_ab = mq_open(name, O_CREAT | O_RDWR | O_CLOEXEC, 0600, &attr);
		mq_unlink(name);
		snprintf(name, sizeof(name), "/ivshmem-bench-%d-ba", (int)getpid());
		c->mq_ba = mq_open(name, O_CREAT | O_RDWR | O_CLOEXEC, 0600, &attr);
		mq_unlink(name);
		return c->mq_ab == (mqd_t)-1 || c->mq_ba == (mqd_t)-1 ? -1 : 0;
	}
}

static void ipc_close(const struct ipc *c)
{
	if (c->kind == IPC_MQ) {
		mq_close(c->mq_ab);
		mq_close(c->mq_ba);
		return;
	}
	close(c->fd_ab[0]);
	close(c->fd_ba[0]);
	if (c->kind == IPC_PIPE) {
		close(c->fd_ab[1]);
		close(c->fd_ba[1]);
	}
}

static void run_ipc(const struct contender *k, size_t size, bool lat)
{
	struct ipc c;

	memset(&c, 0, sizeof(c));
	c.kind = k->mode;
	c.size = size;
	if (ipc_open(&c) < 0) {
		fprintf(stderr, "ivshmem-bench: %s: cannot set up: %s\n", k->name, strerror(errno));
		return;
	}
	c.buf_a = xalloc(size + 1);
	c.buf_b = xalloc(size + 1);
	c.count = lat ? count_for(size, 5000) : count_for(size, 1000000);
	if (lat)
		c.rtt = calloc(c.count, sizeof(uint64_t));
	run_pair(ipc_a, ipc_b, &c);
	if (lat)
		bench_latency(k->name, size, c.rtt, c.count);
	else
		bench_throughput(k->name, size, c.count, c.ns, -1);
	free(c.rtt);
	free(c.buf_a);
	free(c.buf_b);
	ipc_close(&c);
}

void kernel_tput(const struct contender *c, size_t size)
{
	run_ipc(c, size, false);
}

void kernel_lat(const struct contender *c, size_t size)
{
	run_ipc(c, size, true);
}
