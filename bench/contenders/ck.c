// SPDX-License-Identifier: MIT
/*
 * ck_ring (Debian libck-dev): Concurrency Kit's SPSC ring of pointers into a
 * payload pool, the payload copied in and out like ours. It polls and cannot
 * sleep: the fastest plain SPSC queue a user would pick.
 */
#define _GNU_SOURCE
#include "../bench.h"

#include <ck_ring.h>
#include <stdlib.h>
#include <string.h>

#include "ivshmem/ring.h"

struct ckpair {
	struct ck_ring ring;
	struct ck_ring_buffer *buf;
	uint8_t *pool, *src, *dst;
	size_t size, slots;
	uint64_t count, ns;
	struct windows win;
	volatile int ready;
};

static void *ck_tx(void *arg)
{
	struct ckpair *c = arg;

	wait_flag(&c->ready);
	for (uint64_t i = 0; i < c->count; i++) {
		/* 2x the ring's slots: slot i is reused only after the consumer finished i. */
		uint8_t *slot = c->pool + (i % (2 * c->slots)) * c->size;

		memcpy(slot, c->src, c->size);
		while (!ck_ring_enqueue_spsc(&c->ring, c->buf, slot))
			ivshmem_cpu_relax();
	}
	return NULL;
}

static void *ck_rx(void *arg)
{
	struct ckpair *c = arg;

	pin(bench_cpu_b);
	__atomic_store_n(&c->ready, 1, __ATOMIC_RELEASE);
	win_start(&c->win, c->count);
	for (uint64_t i = 0; i < c->count; i++) {
		void *slot;

		while (!ck_ring_dequeue_spsc(&c->ring, c->buf, &slot))
			ivshmem_cpu_relax();
		memcpy(c->dst, slot, c->size);
		win_tick(&c->win, i);
	}
	c->ns = win_ns(&c->win, c->count);
	return NULL;
}

void ck_tput(const struct contender *k, size_t size)
{
	struct ckpair c;
	size_t slots = 1024;

	memset(&c, 0, sizeof(c));
	while (slots > 4 && slots * size > (16u << 20))
		slots >>= 1;
	c.size = size;
	c.slots = slots;
	c.count = count_for(size, 5000000);
	c.buf = xalloc(sizeof(*c.buf) * slots);
	c.pool = xalloc(2 * slots * size);
	c.src = xalloc(size);
	c.dst = xalloc(size);
	ck_ring_init(&c.ring, (unsigned int)slots);
	run_pair(ck_tx, ck_rx, &c);
	bench_throughput(k->name, size, c.count, c.ns, -1);
	free(c.buf);
	free(c.pool);
	free(c.src);
	free(c.dst);
}
