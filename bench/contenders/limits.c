// SPDX-License-Identifier: MIT
/*
 * The physical limits every round is measured against:
 *   cacheline  two threads bouncing a counter through two cache lines: the
 *              cross-core round trip (and the placement of the round)
 *   stream     two-thread streaming copy: one thread copies each message into
 *              a shared buffer of ring_cap_for(size) bytes and sets the
 *              chunk's flag, the other waits for the flag, copies the message
 *              out and clears it. What any cross-core transfer can reach.
 */
#define _GNU_SOURCE
#include "../bench.h"

#include <stdlib.h>
#include <string.h>

#include "ivshmem/ring.h"

struct lines {
	_Alignas(128) volatile uint64_t a;
	_Alignas(128) volatile uint64_t b;
	_Alignas(128) uint64_t count;
	uint64_t *rtt;
	volatile int ready;
};

static void *line_ping(void *arg)
{
	struct lines *l = arg;

	wait_flag(&l->ready);
	for (uint64_t i = 1; i <= l->count; i++) {
		uint64_t t0 = now_ns();

		__atomic_store_n(&l->a, i, __ATOMIC_RELEASE);
		while (__atomic_load_n(&l->b, __ATOMIC_ACQUIRE) != i)
			ivshmem_cpu_relax();
		l->rtt[i - 1] = now_ns() - t0;
	}
	return NULL;
}

static void *line_pong(void *arg)
{
	struct lines *l = arg;

	pin(bench_cpu_b);
	__atomic_store_n(&l->ready, 1, __ATOMIC_RELEASE);
	for (uint64_t i = 1; i <= l->count; i++) {
		while (__atomic_load_n(&l->a, __ATOMIC_ACQUIRE) != i)
			ivshmem_cpu_relax();
		__atomic_store_n(&l->b, i, __ATOMIC_RELEASE);
	}
	return NULL;
}

void cacheline_lat(const struct contender *c, size_t size)
{
	struct lines *l = xalloc(sizeof(*l));

	memset(l, 0, sizeof(*l));
	l->count = bench_quick ? 5000 : 50000;
	l->rtt = calloc(l->count, sizeof(uint64_t));
	run_pair(line_ping, line_pong, l);
	bench_latency(c->name, size, l->rtt, l->count);
	free(l->rtt);
	free(l);
}

struct stream {
	size_t size, slots;
	uint64_t count, ns;
	uint8_t *buf, *src, *dst;
	struct { _Alignas(64) int full; } *flag;	/* one line per chunk */
	struct windows win;
	volatile int ready;
};

static void *stream_in(void *arg)
{
	struct stream *s = arg;

	wait_flag(&s->ready);
	for (uint64_t i = 0; i < s->count; i++) {
		size_t k = i % s->slots;

		while (__atomic_load_n(&s->flag[k].full, __ATOMIC_ACQUIRE))
			ivshmem_cpu_relax();
		memcpy(s->buf + k * s->size, s->src, s->size);
		__atomic_store_n(&s->flag[k].full, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void *stream_out(void *arg)
{
	struct stream *s = arg;

	pin(bench_cpu_b);
	__atomic_store_n(&s->ready, 1, __ATOMIC_RELEASE);
	win_start(&s->win, s->count);
	for (uint64_t i = 0; i < s->count; i++) {
		size_t k = i % s->slots;

		while (!__atomic_load_n(&s->flag[k].full, __ATOMIC_ACQUIRE))
			ivshmem_cpu_relax();
		memcpy(s->dst, s->buf + k * s->size, s->size);
		__atomic_store_n(&s->flag[k].full, 0, __ATOMIC_RELEASE);
		win_tick(&s->win, i);
	}
	s->ns = win_ns(&s->win, s->count);
	return NULL;
}

void stream_tput(const struct contender *c, size_t size)
{
	struct stream s;

	memset(&s, 0, sizeof(s));
	s.size = size;
	s.slots = ring_cap_for(size) / size;
	s.count = count_for(size, 5000000);
	s.buf = xalloc(s.slots * size);
	s.src = xalloc(size);
	s.dst = xalloc(size);
	s.flag = xalloc(s.slots * sizeof(*s.flag));
	memset(s.flag, 0, s.slots * sizeof(*s.flag));
	run_pair(stream_in, stream_out, &s);
	bench_throughput(c->name, size, s.count, s.ns, -1);
	free(s.buf);
	free(s.src);
	free(s.dst);
	free(s.flag);
}
