// SPDX-License-Identifier: MIT
/*
 * The ring (docs/ring.md) between two pinned threads, in four modes
 * (struct contender.mode):
 *   RING_POLL      copying send/recv, one publish per record (fence and
 *                  wake-up check on every record: strict wake-up), polling
 *   RING_BATCH16   the same with IVSHMEM_RING_MORE, one publish per 16
 *   RING_BLOCKING  arm and sleep on an eventfd at once; the peer kicks
 *   RING_HYBRID    the channel default: spin 50 us, then arm and sleep
 *   RING_BACKOFF   RING_POLL, but the receiver waits with
 *                  ivshmem_ring_poll_wait(IVSHMEM_RING_POLL_BACKOFF): the
 *                  opt-in for throughput-oriented receivers
 */
#define _GNU_SOURCE
#include "../bench.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "ivshmem/ring.h"

struct pair {
	size_t size;
	uint64_t count;
	uint64_t cap;
	uint8_t *ctrl[2], *data[2];	/* ring 0: a -> b, ring 1: b -> a */
	int efd[2];			/* efd[0] wakes b, efd[1] wakes a */
	int mode;
	int spin_us;
	uint64_t *rtt;
	uint64_t ns;
	uint64_t kicks[2];
	struct windows win;
	volatile int ready;
	uint8_t *src, *dst_a, *dst_b;
};

static int kick_fd(void *arg)
{
	uint64_t one = 1;

	return write(*(int *)arg, &one, sizeof(one)) == sizeof(one) ? 0 : -errno;
}

static void pair_init(struct pair *p, size_t size, uint64_t count, int mode)
{
	memset(p, 0, sizeof(*p));
	p->size = size;
	p->count = count;
	p->cap = ring_cap_for(size);
	p->mode = mode;
	p->spin_us = mode == RING_HYBRID ? 50 : 0;
	for (int i = 0; i < 2; i++) {
		p->ctrl[i] = xalloc(IVSHMEM_RING_CTRL_SIZE);
		p->data[i] = xalloc(p->cap);
		ivshmem_ring_format(p->ctrl[i], p->data[i]);
		p->efd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (p->efd[i] < 0) {
			perror("ivshmem-bench: eventfd");
			exit(1);
		}
	}
	p->src = xalloc(size + 1);
	p->dst_a = xalloc(size + 1);
	p->dst_b = xalloc(size + 1);
}

static void pair_free(struct pair *p)
{
	for (int i = 0; i < 2; i++) {
		free(p->ctrl[i]);
		free(p->data[i]);
		close(p->efd[i]);
	}
	free(p->src);
	free(p->dst_a);
	free(p->dst_b);
}

/* Wait until @r can proceed: spin (polling modes, or spin_us), then arm and sleep on @fd. */
static void wait_ring(const struct pair *p, struct ivshmem_ring *r, int fd, size_t need)
{
	if (p->mode == RING_BACKOFF && r->role == IVSHMEM_RING_CONSUMER) {
		ivshmem_ring_poll_wait(r, 64, IVSHMEM_RING_POLL_BACKOFF);
		return;
	}
	if (p->mode == RING_POLL || p->mode == RING_BATCH16 || p->mode == RING_BACKOFF) {
		ivshmem_cpu_relax();
		return;
	}
	if (p->spin_us > 0) {
		uint64_t end = now_ns() + (uint64_t)p->spin_us * 1000;

		do {
			for (int i = 0; i < 32; i++) {
				if (r->role == IVSHMEM_RING_CONSUMER ? ivshmem_ring_readable(r)
								     : ivshmem_ring_writable(r, need))
					return;
				ivshmem_cpu_relax();
			}
		} while (now_ns() < end);
	}
	if (ivshmem_ring_arm(r, need) == 0) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		uint64_t v;

		/* The same sleep the channel does: poll, then consume the count. */
		if (poll(&pfd, 1, 1000) == 1 && read(fd, &v, sizeof(v)) != sizeof(v))
			v = 0;
		ivshmem_ring_disarm(r);
	}
}

static void attach(struct pair *p, struct ivshmem_ring *r, int ring, enum ivshmem_ring_role role,
		   int *kick_target)
{
	if (ivshmem_ring_attach(r, p->ctrl[ring], p->data[ring], p->cap, role) < 0) {
		fprintf(stderr, "ivshmem-bench: ring attach failed\n");
		exit(1);
	}
	r->kick = kick_fd;
	r->kick_arg = kick_target;
}

/* Batch16: every 16th record (and the last) goes without IVSHMEM_RING_MORE. */
static unsigned int batch_flags(const struct pair *p, uint64_t i)
{
	return p->mode == RING_BATCH16 && (i & 15) != 15 && i + 1 < p->count ? IVSHMEM_RING_MORE
									       : 0;
}

static void *tx(void *arg)
{
	struct pair *p = arg;
	struct ivshmem_ring r;

	attach(p, &r, 0, IVSHMEM_RING_PRODUCER, &p->efd[0]);
	wait_flag(&p->ready);
	for (uint64_t i = 0; i < p->count;) {
		if (ivshmem_ring_send(&r, p->src, p->size, batch_flags(p, i)) == 0) {
			i++;
			continue;
		}
		ivshmem_ring_publish(&r);
		wait_ring(p, &r, p->efd[1], p->size);
	}
	ivshmem_ring_publish(&r);
	p->kicks[0] = r.kicks;
	return NULL;
}

static void *rx(void *arg)
{
	struct pair *p = arg;
	struct ivshmem_ring r;

	pin(bench_cpu_b);
	attach(p, &r, 0, IVSHMEM_RING_CONSUMER, &p->efd[1]);
	__atomic_store_n(&p->ready, 1, __ATOMIC_RELEASE);
	win_start(&p->win, p->count);
	for (uint64_t i = 0; i < p->count;) {
		if (ivshmem_ring_recv(&r, p->dst_b, p->size, batch_flags(p, i)) >= 0) {
			win_tick(&p->win, i);
			i++;
			continue;
		}
		ivshmem_ring_publish(&r);
		wait_ring(p, &r, p->efd[0], 0);
	}
	ivshmem_ring_publish(&r);
	p->ns = win_ns(&p->win, p->count);
	p->kicks[1] = r.kicks;
	return NULL;
}

void ring_tput(const struct contender *c, size_t size)
{
	struct pair p;

	pair_init(&p, size, count_for(size, 5000000), c->mode);
	run_pair(tx, rx, &p);
	bench_throughput(c->name, size, p.count, p.ns,
			 (double)(p.kicks[0] + p.kicks[1]) / (double)p.count);
	pair_free(&p);
}

static void *ping(void *arg)
{
	struct pair *p = arg;
	struct ivshmem_ring t, r;

	attach(p, &t, 0, IVSHMEM_RING_PRODUCER, &p->efd[0]);
	attach(p, &r, 1, IVSHMEM_RING_CONSUMER, &p->efd[0]);
	wait_flag(&p->ready);
	for (uint64_t i = 0; i < p->count; i++) {
		uint64_t t0 = now_ns();

		while (ivshmem_ring_send(&t, p->src, p->size, 0) < 0)
			wait_ring(p, &t, p->efd[1], p->size);
		while (ivshmem_ring_recv(&r, p->dst_a, p->size, 0) < 0)
			wait_ring(p, &r, p->efd[1], 0);
		p->rtt[i] = now_ns() - t0;
	}
	return NULL;
}

static void *pong(void *arg)
{
	struct pair *p = arg;
	struct ivshmem_ring t, r;

	pin(bench_cpu_b);
	attach(p, &r, 0, IVSHMEM_RING_CONSUMER, &p->efd[1]);
	attach(p, &t, 1, IVSHMEM_RING_PRODUCER, &p->efd[1]);
	__atomic_store_n(&p->ready, 1, __ATOMIC_RELEASE);
	for (uint64_t i = 0; i < p->count; i++) {
		while (ivshmem_ring_recv(&r, p->dst_b, p->size, 0) < 0)
			wait_ring(p, &r, p->efd[0], 0);
		while (ivshmem_ring_send(&t, p->dst_b, p->size, 0) < 0)
			wait_ring(p, &t, p->efd[0], p->size);
	}
	return NULL;
}

void ring_lat(const struct contender *c, size_t size)
{
	bool sleeps = c->mode == RING_BLOCKING || c->mode == RING_HYBRID;
	struct pair p;

	pair_init(&p, size, count_for(size, sleeps ? 5000 : 200000), c->mode);
	p.rtt = calloc(p.count, sizeof(uint64_t));
	run_pair(ping, pong, &p);
	bench_latency(c->name, size, p.rtt, p.count);
	free(p.rtt);
	pair_free(&p);
}
