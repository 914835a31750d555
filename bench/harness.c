// SPDX-License-Identifier: MIT
/* ivshmem-bench harness: timing, pinning, the result store (bench.h). */
#define _GNU_SOURCE
#include "bench.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ivshmem/ring.h"

bool bench_quick;
int bench_cpu_a, bench_cpu_b = 1;
uint64_t bench_ring_cap_min = 65536;
int bench_round;
struct result *results;
int nresults;
static int results_cap;

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0) {
		fprintf(stderr, "ivshmem-bench: cannot pin to CPU %d\n", cpu);
		exit(1);
	}
}

void *xalloc(size_t size)
{
	void *p = aligned_alloc(4096, (size + 4095) & ~(size_t)4095);

	if (!p) {
		fprintf(stderr, "ivshmem-bench: out of memory\n");
		exit(1);
	}
	memset(p, 0x11, size);
	return p;
}

void run_pair(void *(*a)(void *), void *(*b)(void *), void *arg)
{
	pthread_t t;

	pin(bench_cpu_a);
	if (pthread_create(&t, NULL, b, arg) != 0) {
		fprintf(stderr, "ivshmem-bench: pthread_create failed\n");
		exit(1);
	}
	a(arg);
	pthread_join(t, NULL);
}

/*
 * Counts: each measurement aims at a fixed time (TARGET_TPUT_NS, TARGET_LAT_NS;
 * 1/8 of it with --quick) at the slowest rate the same measurement has had.
 * The first time, a short probe (not recorded) gives that rate.
 */
#define TARGET_TPUT_NS	100000000.0
#define TARGET_LAT_NS	50000000.0
#define PROBE_COUNT	500

static struct rate {
	char name[24];
	enum bench_kind kind;
	size_t size;
	double ns_per_msg;
} *rates;
static int nrates;
static struct rate current;
static bool probing;

static struct rate *rate_of(const char *name, enum bench_kind kind, size_t size)
{
	for (int i = 0; i < nrates; i++)
		if (rates[i].kind == kind && rates[i].size == size && strcmp(rates[i].name, name) == 0)
			return &rates[i];
	return NULL;
}

uint64_t count_for(size_t size, uint64_t max)
{
	const struct rate *r = rate_of(current.name, current.kind, size);
	double target = current.kind == BENCH_TPUT ? TARGET_TPUT_NS : TARGET_LAT_NS;
	uint64_t n;

	if (probing || !r)
		return max < PROBE_COUNT ? max : PROBE_COUNT;
	n = (uint64_t)(target / (bench_quick ? 8 : 1) / r->ns_per_msg);
	if (n > max)
		n = max;
	return n < 200 ? 200 : n;
}

/* Learn the rate of the measurement just recorded (the last result). */
static void learn(void)
{
	const struct result *x = &results[nresults - 1];
	struct rate *r = rate_of(x->name, x->kind, x->size);
	double ns;

	if (!r) {
		rates = realloc(rates, (size_t)(nrates + 1) * sizeof(*rates));
		if (!rates)
			exit(1);
		r = &rates[nrates++];
		*r = (struct rate){ .kind = x->kind, .size = x->size, .ns_per_msg = 1 };
		snprintf(r->name, sizeof(r->name), "%s", x->name);
	}
	/*
	 * The slowest rate seen so far (latency: the mean lies above the median, a
	 * lot for blocking contenders): a measurement learnt in the near placement
	 * must not run 4x too long in the far one, or on a busier machine.
	 */
	ns = x->kind == BENCH_TPUT ? 1e9 / x->msgs_s : (x->p50 + x->p99) / 2;
	if (ns > r->ns_per_msg)
		r->ns_per_msg = ns;
}

void measure(const struct contender *c, enum bench_kind kind, size_t size)
{
	void (*fn)(const struct contender *, size_t) = kind == BENCH_TPUT ? c->tput : c->lat;
	int mark = nresults;

	snprintf(current.name, sizeof(current.name), "%s", c->name);
	current.kind = kind;
	if (!rate_of(c->name, kind, size)) {
		probing = true;
		fn(c, size);
		probing = false;
		if (nresults > mark)
			learn();
		nresults = mark;
	}
	fn(c, size);
	if (nresults > mark)
		learn();
}

uint64_t ring_cap_for(size_t size)
{
	uint64_t cap = bench_ring_cap_min;

	/*
	 * 64 records of room, at most 16 MiB (and always 4): a ring much larger than
	 * the L2 cache streams big records faster, because the producer then writes
	 * lines that no longer sit in the consumer's cache (docs/benchmarks.md).
	 */
	while (cap < 4 * (size + 16) || (cap < 64 * (size + 16) && cap < (16u << 20)))
		cap <<= 1;
	return cap;
}

void wait_flag(volatile int *flag)
{
	while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE))
		ivshmem_cpu_relax();
}

void win_start(struct windows *w, uint64_t count)
{
	w->every = count / WINDOWS ? count / WINDOWS : 1;
	w->n = 0;
	w->t[0] = now_ns();
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t win_ns(const struct windows *w, uint64_t count)
{
	uint64_t d[WINDOWS];

	if (w->n == 0)
		return 1;
	for (int i = 0; i < w->n; i++)
		d[i] = w->t[i + 1] - w->t[i];
	qsort(d, (size_t)w->n, sizeof(d[0]), cmp_u64);
	return (uint64_t)((double)d[w->n / 2] * (double)count / (double)w->every);
}

static struct result *add(const char *name, enum bench_kind kind, size_t size)
{
	struct result *r;

	if (nresults == results_cap) {
		results_cap = results_cap ? 2 * results_cap : 256;
		results = realloc(results, (size_t)results_cap * sizeof(*results));
		if (!results) {
			fprintf(stderr, "ivshmem-bench: out of memory\n");
			exit(1);
		}
	}
	r = &results[nresults++];
	memset(r, 0, sizeof(*r));
	r->round = bench_round;
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->kind = kind;
	r->size = size;
	r->doorbells_per_msg = -1;
	return r;
}

void bench_throughput(const char *name, size_t size, uint64_t msgs, uint64_t ns, double bells)
{
	struct result *r = add(name, BENCH_TPUT, size);

	r->msgs_s = (double)msgs / ((double)(ns ? ns : 1) / 1e9);
	r->gb_s = r->msgs_s * (double)size / 1e9;
	r->doorbells_per_msg = bells;
}

void bench_latency(const char *name, size_t size, uint64_t *rtt, uint64_t n)
{
	struct result *r = add(name, BENCH_LAT, size);

	qsort(rtt, n, sizeof(*rtt), cmp_u64);
	r->p50 = (double)rtt[n / 2];
	r->p99 = (double)rtt[n * 99 / 100];
	r->p999 = (double)rtt[n * 999 / 1000];
}

const struct result *find_result(int round, const char *name, enum bench_kind kind, size_t size)
{
	for (int i = 0; i < nresults; i++)
		if (results[i].round == round && results[i].kind == kind && results[i].size == size &&
		    strcmp(results[i].name, name) == 0)
			return &results[i];
	return NULL;
}
