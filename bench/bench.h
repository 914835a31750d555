/* SPDX-License-Identifier: MIT */
/*
 * ivshmem-bench internals: the harness (timing, pinning, result store) that
 * every contender in bench/contenders/ uses, and the contender table.
 *
 * A contender measures one mechanism at one message size and records its
 * numbers with bench_throughput() / bench_latency(); the harness stamps them
 * with the current round. Every contender runs the same way: two threads,
 * pinned to cpu_a (the caller's) and cpu_b, as two processes on one host.
 */
#ifndef IVSHMEM_BENCH_H
#define IVSHMEM_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum bench_kind { BENCH_TPUT = 1, BENCH_LAT = 2 };

struct result {
	int round;
	char name[24];
	enum bench_kind kind;
	size_t size;
	double msgs_s, gb_s;		/* throughput: median time slice */
	double p50, p99, p999;		/* latency: round trip, ns */
	double doorbells_per_msg;	/* -1: not applicable */
};

struct contender {
	const char *name;
	const char *what;		/* one line for --help and the report */
	int kinds;			/* BENCH_TPUT | BENCH_LAT */
	size_t max_size;		/* 0: every size */
	size_t fixed_size;		/* non-zero: once per round, at this size only */
	int mode;			/* passed to the functions (ring variants) */
	void (*tput)(const struct contender *c, size_t size);
	void (*lat)(const struct contender *c, size_t size);
	/* Optional, once per run: 0 or a negative errno (the contender is then skipped). */
	int (*setup)(void);
	void (*teardown)(void);
	const char *missing;		/* non-NULL: not built, this says why */
	bool skip;			/* set at run time: not selected, or setup failed */
};

/* Options shared with contenders. */
extern bool bench_quick;
extern int bench_cpu_a, bench_cpu_b;
extern uint64_t bench_ring_cap_min;
extern int bench_round;

uint64_t now_ns(void);
void pin(int cpu);
void *xalloc(size_t size);
/* Run @b on cpu_b in a new thread and @a here on cpu_a; @b must call pin(bench_cpu_b). */
void run_pair(void *(*a)(void *), void *(*b)(void *), void *arg);
/*
 * Messages (or round trips) for the measurement measure() runs now: enough for
 * about 100 ms (throughput) or 50 ms (latency) at its last rate, 1/8 of that
 * with --quick; at most @max, at least 200.
 */
uint64_t count_for(size_t size, uint64_t max);
/* Run @c's @kind measurement at @size (with an unrecorded probe the first time). */
void measure(const struct contender *c, enum bench_kind kind, size_t size);
/* Bytes of a ring (or a streaming buffer) for @size records: 64 records, 64 KiB..16 MiB. */
uint64_t ring_cap_for(size_t size);
/* Spin until *@flag is non-zero (a start line for the two threads). */
void wait_flag(volatile int *flag);

/*
 * Throughput in WINDOWS slices, the median slice reported: on a shared
 * machine a spinning thread that gets preempted ruins an average, while the
 * median shows what the mechanism itself can do.
 */
#define WINDOWS 16
struct windows {
	uint64_t every;
	uint64_t t[WINDOWS + 1];
	int n;
};

void win_start(struct windows *w, uint64_t count);
/* ns for @count messages at the median slice's rate. */
uint64_t win_ns(const struct windows *w, uint64_t count);
/* Call after message @i (0-based) was handled. */
static inline void win_tick(struct windows *w, uint64_t i)
{
	if ((i + 1) % w->every == 0 && w->n < WINDOWS)
		w->t[++w->n] = now_ns();
}

void bench_throughput(const char *name, size_t size, uint64_t msgs, uint64_t ns, double bells);
/* Sorts @rtt (@n round trips in ns). */
void bench_latency(const char *name, size_t size, uint64_t *rtt, uint64_t n);

/* The result store (all rounds). */
extern struct result *results;
extern int nresults;
const struct result *find_result(int round, const char *name, enum bench_kind kind, size_t size);

/* The contenders (bench/contenders/). */
extern struct contender contenders[];
extern const int ncontenders;

void ring_tput(const struct contender *c, size_t size);
void ring_lat(const struct contender *c, size_t size);
void cacheline_lat(const struct contender *c, size_t size);
void stream_tput(const struct contender *c, size_t size);
void kernel_tput(const struct contender *c, size_t size);
void kernel_lat(const struct contender *c, size_t size);
void ck_tput(const struct contender *c, size_t size);
int iceoryx_setup(void);
void iceoryx_tput(const struct contender *c, size_t size);
void iceoryx_lat(const struct contender *c, size_t size);
int ucx_setup(void);
void ucx_teardown(void);
void ucx_tput(const struct contender *c, size_t size);
void ucx_lat(const struct contender *c, size_t size);

/* Kernel IPC modes (struct contender.mode of kernel_*). */
enum { IPC_PIPE, IPC_UNIX, IPC_EVENTFD, IPC_MQ };
/* Ring modes. */
enum { RING_POLL, RING_BLOCKING, RING_HYBRID, RING_BATCH16, RING_BACKOFF };

/* bench/report.c */
#define MAX_SIZES 16
/*
 * The cache-line round trip is measured before every size's block of
 * measurements and at the end of the round: a block whose two sides agree
 * has that placement ('n' near, 'f' far), otherwise it is mixed ('m').
 */
struct round_info {
	double line_start, line_end;	/* cache-line round trip p50, ns, first and last */
	int nblocks;
	size_t block_size[MAX_SIZES];
	double block_ns[MAX_SIZES];	/* before block i (block_ns[0] == line_start) */
	char blocks[MAX_SIZES + 1];	/* placement per block: 'n', 'f' or 'm' */
	char placement[8];		/* the round: "near" or "far" if all blocks agree, or "mixed" */
	double load;			/* 1-minute load average when the round started */
};
/* Fill in blocks[] and placement from the measured round trips. */
void classify_round(struct round_info *ri);
extern struct round_info *rounds;
extern int nrounds;
extern double bench_near_ns;		/* a round trip below this is the "near" placement */
void report_round(int round);
/* Markdown on @out: goals (far, near, all rounds), the rounds, medians of every measurement. */
void report_summary(FILE *out);
int write_json(const char *path, const char *load);
int write_svg(const char *path);

#endif
