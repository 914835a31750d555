// SPDX-License-Identifier: MIT
/*
 * ivshmem-bench: throughput and latency of the ring (docs/ring.md) against
 * the physical limits and the usual IPC, all measured in the same run.
 *
 * Two threads pinned to two different CPUs share memory exactly as two
 * processes on one host would (the ring only sees a shared mapping). For each
 * message size from 8 B to 1 MiB it measures:
 *   ring            copying send/recv, one publish per message, polling
 *   ring-batch16    the same with IVSHMEM_RING_MORE, publishing every 16
 *   ring-blocking   sleeps on an eventfd with the arm/kick protocol, no spin
 *   ring-hybrid     the channel default: spin 50 us, then sleep
 * and the baselines: cache-line ping-pong, single-core memcpy, eventfd
 * ping-pong, pipe, AF_UNIX stream socket, POSIX mq and ck_ring (SPSC ring of
 * pointers into a payload pool, payload copied in and out like ours).
 *
 * Output: a table on stdout, --json FILE, --svg FILE (throughput and RTT
 * plots). --quick uses fewer sizes and iterations. Not a test: numbers depend
 * on the machine and on what else runs on it.
 */
#define _GNU_SOURCE
#include "ivshmem/ring.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <mqueue.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_CK
#include <ck_ring.h>
#endif

#define MAX_RESULTS 1024

struct result {
	char name[32];
	char kind[12];		/* "throughput" or "latency" */
	size_t size;
	double msgs_s, gb_s;	/* throughput */
	double p50, p99, p999;	/* latency: round-trip ns */
	double doorbells_per_msg;	/* -1: not applicable */
};

static struct result results[MAX_RESULTS];
static int nresults;
static bool quick;
static int cpu_a, cpu_b = 1;
static uint64_t ring_cap_min = 65536;	/* --ring-cap */
static const char *only;		/* --only NAME: just this test and the baselines it needs */

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *xalloc(size_t size)
{
	void *p = aligned_alloc(4096, (size + 4095) & ~(size_t)4095);

	if (!p) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	memset(p, 0x11, size);
	return p;
}

static struct result *add(const char *name, const char *kind, size_t size)
{
	struct result *r = &results[nresults++];

	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->kind, sizeof(r->kind), "%s", kind);
	r->size = size;
	r->doorbells_per_msg = -1;
	return r;
}

/*
 * Throughput is measured in WINDOWS slices and the median slice is reported:
 * on a shared machine a spinning thread that gets preempted ruins a whole
 * average, while the median shows what the mechanism itself can do.
 */
#define WINDOWS 16

struct windows {
	uint64_t every;
	uint64_t t[WINDOWS + 1];
	int n;
};

static void win_start(struct windows *w, uint64_t count)
{
	w->every = count / WINDOWS ? count / WINDOWS : 1;
	w->n = 0;
	w->t[0] = now_ns();
}

/* Call after message @i (0-based) was handled. */
static inline void win_tick(struct windows *w, uint64_t i)
{
	if ((i + 1) % w->every == 0 && w->n < WINDOWS)
		w->t[++w->n] = now_ns();
}

/* ns per window-of-`every`-messages, median; scaled to @count messages. */
static uint64_t win_ns(struct windows *w, uint64_t count)
{
	uint64_t d[WINDOWS];

	if (w->n == 0)
		return 1;
	for (int i = 0; i < w->n; i++)
		d[i] = w->t[i + 1] - w->t[i];
	for (int i = 1; i < w->n; i++)
		for (int j = i; j > 0 && d[j] < d[j - 1]; j--) {
			uint64_t x = d[j];

			d[j] = d[j - 1];
			d[j - 1] = x;
		}
	return (uint64_t)((double)d[w->n / 2] * count / w->every);
}

static void throughput(const char *name, size_t size, uint64_t msgs, uint64_t ns, double bells)
{
	struct result *r = add(name, "throughput", size);

	r->msgs_s = msgs / (ns / 1e9);
	r->gb_s = r->msgs_s * size / 1e9;
	r->doorbells_per_msg = bells;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void latency(const char *name, size_t size, uint64_t *rtt, uint64_t n)
{
	struct result *r = add(name, "latency", size);

	qsort(rtt, n, sizeof(*rtt), cmp_u64);
	r->p50 = rtt[n / 2];
	r->p99 = rtt[n * 99 / 100];
	r->p999 = rtt[n * 999 / 1000];
}

/* Run @b on cpu_b in a thread and @a here on cpu_a; both get @arg. */
static void run_pair(void *(*a)(void *), void *(*b)(void *), void *arg)
{
	pthread_t t;

	pin(cpu_a);
	pthread_create(&t, NULL, b, arg);
	a(arg);
	pthread_join(t, NULL);
}

static uint64_t count_for(size_t size, uint64_t budget_bytes, uint64_t max)
{
	uint64_t n = budget_bytes / (size ? size : 1);

	if (quick)
		n /= 8;
	if (n > max)
		n = max;
	return n < 200 ? 200 : n;
}

/* ---- shared state of one two-thread test -------------------------------------------------- */

struct pair {
	size_t size;
	uint64_t count;
	uint64_t cap;
	uint8_t *ctrl[2], *data[2];	/* ring 0: a -> b, ring 1: b -> a */
	int efd[2];			/* efd[0] wakes b (consumer of ring 0), efd[1] wakes a */
	int mode;			/* 0 polling, 1 blocking, 2 hybrid, 3 batch16 */
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
	uint64_t cap = ring_cap_min;

	memset(p, 0, sizeof(*p));
	/*
	 * 64 records of room, at most 16 MiB (and always 4): a ring much larger than
	 * the L2 cache streams big records faster, because the producer then writes
	 * lines that no longer sit in the consumer's cache (docs/benchmarks.md).
	 */
	while (cap < 4 * (size + 16) || (cap < 64 * (size + 16) && cap < (16u << 20)))
		cap <<= 1;
	p->size = size;
	p->count = count;
	p->cap = cap;
	p->mode = mode;
	p->spin_us = mode == 2 ? 50 : 0;
	for (int i = 0; i < 2; i++) {
		p->ctrl[i] = xalloc(IVSHMEM_RING_CTRL_SIZE);
		p->data[i] = xalloc(cap);
		ivshmem_ring_format(p->ctrl[i], p->data[i]);
		p->efd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
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

/* Wait until the ring can proceed: spin (polling, or spin_us), then arm and sleep on @fd. */
static void wait_ring(struct pair *p, struct ivshmem_ring *r, int fd, size_t need)
{
	uint64_t end;

	if (p->mode == 0 || p->mode == 3) {
		ivshmem_cpu_relax();
		return;
	}
	if (p->spin_us > 0) {
		end = now_ns() + (uint64_t)p->spin_us * 1000;
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
	ivshmem_ring_attach(r, p->ctrl[ring], p->data[ring], p->cap, role);
	r->kick = kick_fd;
	r->kick_arg = kick_target;
}

/* ---- ring throughput ---------------------------------------------------------------------- */

static void *ring_tx(void *arg)
{
	struct pair *p = arg;
	struct ivshmem_ring r;
	unsigned int flags = p->mode == 3 ? IVSHMEM_RING_MORE : 0;
	uint64_t t0;

	attach(p, &r, 0, IVSHMEM_RING_PRODUCER, &p->efd[0]);
	while (!__atomic_load_n(&p->ready, __ATOMIC_ACQUIRE))
		ivshmem_cpu_relax();
	t0 = now_ns();
	for (uint64_t i = 0; i < p->count;) {
		int ret = ivshmem_ring_send(&r, p->src, p->size,
					    (flags && (i & 15) != 15) ? flags : 0);

		if (ret == 0) {
			i++;
			continue;
		}
		ivshmem_ring_publish(&r);
		wait_ring(p, &r, p->efd[1], p->size);
	}
	ivshmem_ring_publish(&r);
	(void)t0;
	p->kicks[0] = r.kicks;
	return NULL;
}

static void *ring_rx(void *arg)
{
	struct pair *p = arg;
	struct ivshmem_ring r;
	unsigned int flags = p->mode == 3 ? IVSHMEM_RING_MORE : 0;
	uint64_t t0;

	pin(cpu_b);
	attach(p, &r, 0, IVSHMEM_RING_CONSUMER, &p->efd[1]);
	__atomic_store_n(&p->ready, 1, __ATOMIC_RELEASE);
	t0 = now_ns();
	win_start(&p->win, p->count);
	for (uint64_t i = 0; i < p->count;) {
		ssize_t n = ivshmem_ring_recv(&r, p->dst_b, p->size,
					      (flags && (i & 15) != 15) ? flags : 0);

		if (n >= 0) {
			win_tick(&p->win, i);
			i++;
			continue;
		}
		ivshmem_ring_publish(&r);
		wait_ring(p, &r, p->efd[0], 0);
	}
	ivshmem_ring_publish(&r);
	p->ns = now_ns() - t0;
	p->ns = win_ns(&p->win, p->count);
	p->kicks[1] = r.kicks;
	return NULL;
}

static void bench_ring_throughput(const char *name, size_t size, int mode)
{
	struct pair p;

	pair_init(&p, size, count_for(size, 2ull << 30, 5000000), mode);
	run_pair(ring_tx, ring_rx, &p);
	throughput(name, size, p.count, p.ns, (double)(p.kicks[0] + p.kicks[1]) / p.count);
	pair_free(&p);
}

/* ---- ring latency (ping-pong) --------------------------------------------------------------- */

static void *ring_ping(void *arg)
{
	struct pair *p = arg;
	struct ivshmem_ring tx, rx;

	attach(p, &tx, 0, IVSHMEM_RING_PRODUCER, &p->efd[0]);
	attach(p, &rx, 1, IVSHMEM_RING_CONSUMER, &p->efd[0]);
	while (!__atomic_load_n(&p->ready, __ATOMIC_ACQUIRE))
		ivshmem_cpu_relax();
	for (uint64_t i = 0; i < p->count; i++) {
		uint64_t t0 = now_ns();

		while (ivshmem_ring_send(&tx, p->src, p->size, 0) < 0)
			wait_ring(p, &tx, p->efd[1], p->size);
		while (ivshmem_ring_recv(&rx, p->dst_a, p->size, 0) < 0)
			wait_ring(p, &rx, p->efd[1], 0);
		p->rtt[i] = now_ns() - t0;
	}
	return NULL;
}

static void *ring_pong(void *arg)
{
	struct pair *p = arg;
	struct ivshmem_ring tx, rx;

	pin(cpu_b);
	attach(p, &rx, 0, IVSHMEM_RING_CONSUMER, &p->efd[1]);
	attach(p, &tx, 1, IVSHMEM_RING_PRODUCER, &p->efd[1]);
	__atomic_store_n(&p->ready, 1, __ATOMIC_RELEASE);
	for (uint64_t i = 0; i < p->count; i++) {
		while (ivshmem_ring_recv(&rx, p->dst_b, p->size, 0) < 0)
			wait_ring(p, &rx, p->efd[0], 0);
		while (ivshmem_ring_send(&tx, p->dst_b, p->size, 0) < 0)
			wait_ring(p, &tx, p->efd[0], p->size);
	}
	return NULL;
}

static void bench_ring_latency(const char *name, size_t size, int mode)
{
	struct pair p;

	pair_init(&p, size, count_for(size, 256ull << 20, 100000), mode);
	if (mode != 0 && p.count > 20000)
		p.count = quick ? 2000 : 20000;
	p.rtt = calloc(p.count, sizeof(uint64_t));
	run_pair(ring_ping, ring_pong, &p);
	latency(name, size, p.rtt, p.count);
	free(p.rtt);
	pair_free(&p);
}

/* ---- cache-line ping-pong ------------------------------------------------------------------- */

struct lines {
	_Alignas(128) volatile uint64_t a;
	_Alignas(128) volatile uint64_t b;
	uint64_t count;
	uint64_t *rtt;
	volatile int ready;
};

static void *line_ping(void *arg)
{
	struct lines *l = arg;

	while (!l->ready)
		ivshmem_cpu_relax();
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

	pin(cpu_b);
	l->ready = 1;
	for (uint64_t i = 1; i <= l->count; i++) {
		while (__atomic_load_n(&l->a, __ATOMIC_ACQUIRE) != i)
			ivshmem_cpu_relax();
		__atomic_store_n(&l->b, i, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void bench_cacheline(void)
{
	struct lines *l = xalloc(sizeof(*l));

	memset(l, 0, sizeof(*l));
	l->count = quick ? 20000 : 200000;
	l->rtt = calloc(l->count, sizeof(uint64_t));
	run_pair(line_ping, line_pong, l);
	latency("cacheline", 8, l->rtt, l->count);
	free(l->rtt);
	free(l);
}

/* ---- memcpy --------------------------------------------------------------------------------- */

static void bench_memcpy(size_t size)
{
	uint8_t *src = xalloc(size + 64), *dst = xalloc(size + 64);
	uint64_t n = count_for(size, 4ull << 30, 20000000), t0;

	struct windows w;

	pin(cpu_a);
	t0 = now_ns();
	win_start(&w, n);
	for (uint64_t i = 0; i < n; i++) {
		memcpy(dst, src, size);
		__asm__ __volatile__("" : : "r"(dst) : "memory");
		win_tick(&w, i);
	}
	(void)t0;
	throughput("memcpy", size, n, win_ns(&w, n), -1);
	free(src);
	free(dst);
}

/* ---- ck_ring -------------------------------------------------------------------------------- */

#ifdef HAVE_CK
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

	while (!c->ready)
		ivshmem_cpu_relax();
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
	uint64_t t0;

	pin(cpu_b);
	c->ready = 1;
	t0 = now_ns();
	win_start(&c->win, c->count);
	for (uint64_t i = 0; i < c->count; i++) {
		void *slot;

		while (!ck_ring_dequeue_spsc(&c->ring, c->buf, &slot))
			ivshmem_cpu_relax();
		memcpy(c->dst, slot, c->size);
		win_tick(&c->win, i);
	}
	c->ns = now_ns() - t0;
	c->ns = win_ns(&c->win, c->count);
	return NULL;
}

static void bench_ck(size_t size)
{
	struct ckpair c;
	size_t slots = 1024;

	memset(&c, 0, sizeof(c));
	while (slots > 4 && slots * size > (16u << 20))
		slots >>= 1;
	c.size = size;
	c.slots = slots;
	c.count = count_for(size, 2ull << 30, 5000000);
	c.buf = xalloc(sizeof(*c.buf) * slots);
	c.pool = xalloc(2 * slots * size);
	c.src = xalloc(size);
	c.dst = xalloc(size);
	ck_ring_init(&c.ring, (unsigned int)slots);
	run_pair(ck_tx, ck_rx, &c);
	throughput("ck_ring", size, c.count, c.ns, -1);
	free(c.buf);
	free(c.pool);
	free(c.src);
	free(c.dst);
}
#endif

/* ---- kernel IPC: pipe, AF_UNIX, eventfd, POSIX mq ------------------------------------------- */

struct ipc {
	int kind;		/* 0 pipe, 1 unix, 2 eventfd, 3 mq */
	int fd_ab[2], fd_ba[2];	/* [0] read end, [1] write end */
	mqd_t mq_ab, mq_ba;
	size_t size;
	uint64_t count, ns;
	uint64_t *rtt;		/* NULL: throughput */
	uint8_t *buf_a, *buf_b;
	struct windows win;
};

static int xfer_write(struct ipc *c, int fd, mqd_t mq, const uint8_t *p, size_t len)
{
	if (c->kind == 2) {
		uint64_t one = 1;

		return write(fd, &one, 8) == 8 ? 0 : -1;
	}
	if (c->kind == 3)
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

static int xfer_read(struct ipc *c, int fd, mqd_t mq, uint8_t *p, size_t len)
{
	if (c->kind == 2) {
		uint64_t v;

		return read(fd, &v, 8) == 8 ? 0 : -1;
	}
	if (c->kind == 3)
		return mq_receive(mq, (char *)p, 8192, NULL) >= 0 ? 0 : -1;
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

		xfer_write(c, c->fd_ab[1], c->mq_ab, c->buf_a, c->size);
		if (c->rtt) {
			xfer_read(c, c->fd_ba[0], c->mq_ba, c->buf_a, c->size);
			c->rtt[i] = now_ns() - t0;
		}
	}
	return NULL;
}

static void *ipc_b(void *arg)
{
	struct ipc *c = arg;
	uint64_t t0 = now_ns();

	pin(cpu_b);
	win_start(&c->win, c->count);
	for (uint64_t i = 0; i < c->count; i++) {
		xfer_read(c, c->fd_ab[0], c->mq_ab, c->buf_b, c->size);
		if (c->rtt)
			xfer_write(c, c->fd_ba[1], c->mq_ba, c->buf_b, c->size);
		win_tick(&c->win, i);
	}
	c->ns = now_ns() - t0;
	c->ns = win_ns(&c->win, c->count);
	return NULL;
}

static const char *const ipc_names[] = { "pipe", "unix", "eventfd", "mq" };

static int ipc_open(struct ipc *c)
{
	char name[64];
	struct mq_attr attr = { .mq_maxmsg = 10, .mq_msgsize = 8192 };

	switch (c->kind) {
	case 0:
		return pipe(c->fd_ab) | pipe(c->fd_ba);
	case 1: {
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
			return -1;
		c->fd_ab[0] = c->fd_ba[1] = sv[1];
		c->fd_ab[1] = c->fd_ba[0] = sv[0];
		return 0;
	}
	case 2:
		c->fd_ab[0] = c->fd_ab[1] = eventfd(0, 0);
		c->fd_ba[0] = c->fd_ba[1] = eventfd(0, 0);
		return 0;
	default:
		snprintf(name, sizeof(name), "/ivshmem-bench-%d-ab", (int)getpid());
		c->mq_ab = mq_open(name, O_CREAT | O_RDWR, 0600, &attr);
		mq_unlink(name);
		snprintf(name, sizeof(name), "/ivshmem-bench-%d-ba", (int)getpid());
		c->mq_ba = mq_open(name, O_CREAT | O_RDWR, 0600, &attr);
		mq_unlink(name);
		return c->mq_ab == (mqd_t)-1 || c->mq_ba == (mqd_t)-1 ? -1 : 0;
	}
}

static void ipc_close(struct ipc *c)
{
	if (c->kind == 3) {
		mq_close(c->mq_ab);
		mq_close(c->mq_ba);
		return;
	}
	close(c->fd_ab[0]);
	close(c->fd_ba[0]);
	if (c->kind == 0) {
		close(c->fd_ab[1]);
		close(c->fd_ba[1]);
	}
}

static void bench_ipc(int kind, size_t size, bool lat)
{
	struct ipc c;

	memset(&c, 0, sizeof(c));
	c.kind = kind;
	c.size = size;
	if (ipc_open(&c) < 0) {
		fprintf(stderr, "%s: cannot set up: %s\n", ipc_names[kind], strerror(errno));
		return;
	}
	c.buf_a = xalloc(size + 1);
	c.buf_b = xalloc(size + 1);
	c.count = lat ? count_for(size, 64ull << 20, quick ? 2000 : 20000)
		      : count_for(size, 1ull << 30, 2000000);
	if (lat)
		c.rtt = calloc(c.count, sizeof(uint64_t));
	run_pair(ipc_a, ipc_b, &c);
	if (lat)
		latency(ipc_names[kind], kind == 2 ? 8 : size, c.rtt, c.count);
	else
		throughput(ipc_names[kind], size, c.count, c.ns, -1);
	free(c.rtt);
	free(c.buf_a);
	free(c.buf_b);
	ipc_close(&c);
}

/* ---- output ------------------------------------------------------------------------------- */

static const struct result *find(const char *name, const char *kind, size_t size)
{
	for (int i = 0; i < nresults; i++)
		if (strcmp(results[i].name, name) == 0 && strcmp(results[i].kind, kind) == 0 &&
		    results[i].size == size)
			return &results[i];
	return NULL;
}

static void write_json(FILE *f, const char *goals)
{
	fprintf(f, "{\n  \"cpus\": [%d, %d],\n  \"results\": [\n", cpu_a, cpu_b);
	for (int i = 0; i < nresults; i++) {
		const struct result *r = &results[i];

		fprintf(f, "    {\"name\": \"%s\", \"kind\": \"%s\", \"size\": %zu", r->name, r->kind,
			r->size);
		if (strcmp(r->kind, "throughput") == 0) {
			fprintf(f, ", \"msgs_per_s\": %.0f, \"gb_per_s\": %.3f", r->msgs_s, r->gb_s);
			if (r->doorbells_per_msg >= 0)
				fprintf(f, ", \"doorbells_per_msg\": %.5f", r->doorbells_per_msg);
		} else {
			fprintf(f, ", \"p50_ns\": %.0f, \"p99_ns\": %.0f, \"p999_ns\": %.0f", r->p50,
				r->p99, r->p999);
		}
		fprintf(f, "}%s\n", i + 1 < nresults ? "," : "");
	}
	fprintf(f, "  ],\n  \"goals\": [\n%s  ]\n}\n", goals);
}

static const char *const colors[] = { "#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#1f77b4",
				      "#2ca02c", "#17becf", "#7f7f7f", "#bcbd22", "#e377c2" };

/* One log-log plot of @field (0: GB/s, 1: p50 RTT us) against message size. */
static void svg_plot(FILE *f, int x0, int y0, const char *kind, int field, const char *title)
{
	const int w = 520, h = 360;
	const char *names[16];
	int nn = 0;
	double lo = 1e30, hi = 0, smin = 8, smax = 1 << 20;

	for (int i = 0; i < nresults; i++) {
		const struct result *r = &results[i];
		double v = field == 0 ? r->gb_s : r->p50 / 1000;
		bool seen = false;

		if (strcmp(r->kind, kind) != 0 || v <= 0 || r->size < smin)
			continue;
		lo = fmin(lo, v);
		hi = fmax(hi, v);
		for (int k = 0; k < nn; k++)
			seen |= strcmp(names[k], r->name) == 0;
		if (!seen && nn < 16)
			names[nn++] = r->name;
	}
	if (hi <= 0)
		return;
	lo = pow(10, floor(log10(lo)));
	hi = pow(10, ceil(log10(hi)));
#define PX(s) (x0 + 60 + (log2((double)(s)) - log2(smin)) / (log2(smax) - log2(smin)) * (w - 80))
#define PY(v) (y0 + h - 40 - (log10(v) - log10(lo)) / (log10(hi) - log10(lo)) * (h - 70))
	fprintf(f, "<text x='%d' y='%d' font-size='14' font-weight='bold'>%s</text>\n", x0 + 60,
		y0 + 18, title);
	fprintf(f, "<rect x='%d' y='%d' width='%d' height='%d' fill='none' stroke='#444'/>\n",
		x0 + 60, y0 + 30, w - 80, h - 70);
	for (double v = lo; v <= hi * 1.001; v *= 10)
		fprintf(f, "<text x='%d' y='%.1f' font-size='10' text-anchor='end'>%g</text>"
			   "<line x1='%d' x2='%d' y1='%.1f' y2='%.1f' stroke='#ddd'/>\n",
			x0 + 56, PY(v) + 3, v, x0 + 60, x0 + w - 20, PY(v), PY(v));
	for (double s = smin; s <= smax; s *= 8) {
		char label[16];

		if (s >= 1 << 20)
			snprintf(label, sizeof(label), "%gM", s / (1 << 20));
		else if (s >= 1024)
			snprintf(label, sizeof(label), "%gK", s / 1024);
		else
			snprintf(label, sizeof(label), "%g", s);
		fprintf(f, "<text x='%.1f' y='%d' font-size='10' text-anchor='middle'>%s</text>\n",
			PX(s), y0 + h - 26, label);
	}
	fprintf(f, "<text x='%d' y='%d' font-size='11' text-anchor='middle'>message size (bytes)"
		   "</text>\n", x0 + w / 2 + 20, y0 + h - 8);
	for (int k = 0; k < nn; k++) {
		const char *c = colors[k % 10];
		bool first = true;

		fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='2' points='", c);
		for (int i = 0; i < nresults; i++) {
			const struct result *r = &results[i];
			double v = field == 0 ? r->gb_s : r->p50 / 1000;

			if (strcmp(r->kind, kind) != 0 || strcmp(r->name, names[k]) != 0 || v <= 0 ||
			    r->size < smin)
				continue;
			fprintf(f, "%s%.1f,%.1f", first ? "" : " ", PX(r->size), PY(v));
			first = false;
		}
		fprintf(f, "'/>\n<text x='%d' y='%d' font-size='11' fill='%s'>%s</text>\n",
			x0 + w - 10, y0 + 40 + 14 * k, c, names[k]);
	}
#undef PX
#undef PY
}

static void write_svg(FILE *f)
{
	fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='1280' height='380' "
		   "font-family='sans-serif'>\n<rect width='100%%' height='100%%' fill='white'/>\n");
	svg_plot(f, 0, 0, "throughput", 0, "Throughput (GB/s, log)");
	svg_plot(f, 640, 0, "latency", 1, "Round trip p50 (us, log)");
	fprintf(f, "</svg>\n");
}

static double get(const char *name, const char *kind, size_t size, int field)
{
	const struct result *r = find(name, kind, size);

	if (!r)
		return NAN;
	switch (field) {
	case 0:
		return r->msgs_s;
	case 1:
		return r->gb_s;
	case 2:
		return r->p50;
	default:
		return r->doorbells_per_msg;
	}
}

int main(int argc, char **argv)
{
	static const size_t all_sizes[] = { 8, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576 };
	static const size_t quick_sizes[] = { 8, 64, 4096, 65536, 1048576 };
	const char *json = NULL, *svg = NULL;
	const size_t *sizes = all_sizes;
	size_t nsizes = sizeof(all_sizes) / sizeof(all_sizes[0]);
	char goals[4096];
	size_t gl = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
			json = argv[++i];
		} else if (strcmp(argv[i], "--svg") == 0 && i + 1 < argc) {
			svg = argv[++i];
		} else if (strcmp(argv[i], "--quick") == 0) {
			quick = true;
		} else if (strcmp(argv[i], "--ring-cap") == 0 && i + 1 < argc) {
			ring_cap_min = strtoull(argv[++i], NULL, 0);
		} else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
			only = argv[++i];
		} else if (strcmp(argv[i], "--cpus") == 0 && i + 1 < argc &&
			   sscanf(argv[i + 1], "%d,%d", &cpu_a, &cpu_b) == 2) {
			i++;
		} else {
			printf("usage: ivshmem-bench [--quick] [--json FILE] [--svg FILE] [--cpus A,B]\n"
			       "                     [--ring-cap BYTES] [--only throughput|latency]\n\n"
			       "Ring throughput and latency for 8 B..1 MiB against cache-line ping-pong,\n"
			       "memcpy, eventfd, pipe, AF_UNIX, POSIX mq and ck_ring, on CPUs A and B\n"
			       "(default 0,1). See docs/benchmarks.md.\n");
			return strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ? 0 : 2;
		}
	}
	if (quick) {
		sizes = quick_sizes;
		nsizes = sizeof(quick_sizes) / sizeof(quick_sizes[0]);
	}

	fprintf(stderr, "baselines...\n");
	bench_cacheline();
	bench_ipc(2, 8, true);
	for (size_t i = 0; i < nsizes; i++) {
		size_t s = sizes[i];

		fprintf(stderr, "size %zu...\n", s);
		if (!only || strcmp(only, "latency") != 0) {
			bench_memcpy(s);
#ifdef HAVE_CK
			bench_ck(s);
#endif
			bench_ring_throughput("ring", s, 0);
			bench_ring_throughput("ring-batch16", s, 3);
			bench_ring_throughput("ring-blocking", s, 1);
			bench_ring_throughput("ring-hybrid", s, 2);
		}
		if (only && strcmp(only, "throughput") == 0)
			continue;
		bench_ring_latency("ring", s, 0);
		bench_ring_latency("ring-blocking", s, 1);
		bench_ring_latency("ring-hybrid", s, 2);
		bench_ipc(0, s, false);
		bench_ipc(1, s, false);
		bench_ipc(0, s, true);
		bench_ipc(1, s, true);
		if (s <= 8192) {
			bench_ipc(3, s, false);
			bench_ipc(3, s, true);
		}
	}

	printf("%-14s %-10s %8s %14s %10s %10s %10s %10s %10s\n", "name", "kind", "size",
	       "msgs/s", "GB/s", "p50 ns", "p99 ns", "p999 ns", "bells/msg");
	for (int i = 0; i < nresults; i++) {
		const struct result *r = &results[i];

		if (strcmp(r->kind, "throughput") == 0)
			printf("%-14s %-10s %8zu %14.0f %10.3f %10s %10s %10s %10s\n", r->name, r->kind,
			       r->size, r->msgs_s, r->gb_s, "", "", "", "");
		else
			printf("%-14s %-10s %8zu %14s %10s %10.0f %10.0f %10.0f\n", r->name, r->kind,
			       r->size, "", "", r->p50, r->p99, r->p999);
		if (r->doorbells_per_msg >= 0)
			printf("%-14s %-10s %8zu %58s %10.5f\n", "", "", r->size, "",
			       r->doorbells_per_msg);
	}

	/* The goals of issue 6, as ratios. */
	struct {
		const char *what, *goal;
		double value;
		bool met;
	} g[5];
	double ring64 = get("ring", "throughput", 64, 0), ck64 = get("ck_ring", "throughput", 64, 0);
	double ring64k = get("ring", "throughput", 65536, 1), mc64k = get("memcpy", "throughput", 65536, 1);
	double rtt = get("ring", "latency", 64, 2), line = get("cacheline", "latency", 8, 2);
	double brtt = get("ring-blocking", "latency", 64, 2), ertt = get("eventfd", "latency", 8, 2);
	double bells = get("ring-hybrid", "throughput", 64, 3);

	g[0].what = "64 B throughput / ck_ring";
	g[0].goal = ">= 1.0";
	g[0].value = ring64 / ck64;
	g[0].met = g[0].value >= 1.0;
	g[1].what = "64 KiB throughput / memcpy";
	g[1].goal = ">= 0.8";
	g[1].value = ring64k / mc64k;
	g[1].met = g[1].value >= 0.8;
	g[2].what = "polling RTT (64 B) / cache-line RTT";
	g[2].goal = "<= 1.5";
	g[2].value = rtt / line;
	g[2].met = g[2].value <= 1.5;
	g[3].what = "blocking RTT (64 B) / eventfd RTT";
	g[3].goal = "<= 1.2";
	g[3].value = brtt / ertt;
	g[3].met = g[3].value <= 1.2;
	g[4].what = "doorbells per message streaming (64 B)";
	g[4].goal = "<= 0.01";
	g[4].value = bells;
	g[4].met = bells <= 0.01;
	printf("\n%-42s %-8s %10s %s\n", "goal", "target", "measured", "met");
	for (int i = 0; i < 5; i++) {
		printf("%-42s %-8s %10.3f %s\n", g[i].what, g[i].goal, g[i].value,
		       isnan(g[i].value) ? "n/a" : g[i].met ? "yes" : "NO");
		gl += (size_t)snprintf(goals + gl, sizeof(goals) - gl,
				       "    {\"goal\": \"%s\", \"target\": \"%s\", \"value\": %.4f, "
				       "\"met\": %s}%s\n", g[i].what, g[i].goal,
				       isnan(g[i].value) ? -1.0 : g[i].value,
				       g[i].met ? "true" : "false", i < 4 ? "," : "");
	}
	if (json) {
		FILE *f = fopen(json, "w");

		if (!f) {
			perror(json);
			return 1;
		}
		write_json(f, goals);
		fclose(f);
	}
	if (svg) {
		FILE *f = fopen(svg, "w");

		if (!f) {
			perror(svg);
			return 1;
		}
		write_svg(f);
		fclose(f);
	}
	return 0;
}
