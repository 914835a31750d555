// SPDX-License-Identifier: MIT
/*
 * ivshmem-bench: the ring (docs/ring.md) against the physical limits, kernel
 * IPC and the shared-memory transports a user would pick instead, measured
 * in interleaved rounds (docs/benchmarks.md).
 *
 * The two vCPUs of a VM may sit close together or far apart, and that
 * changes within seconds to minutes without anyone choosing it. So the run
 * is a series of rounds; each round measures the cache-line round trip first
 * (which tells the placement), then size by size every contender, with the
 * cache-line round trip again before each size's block and at the end. Goals
 * are ratios taken within one round; the report gives their median and
 * spread over the rounds, split by the placement of the blocks they read.
 *
 * Contenders live in bench/contenders/, one file per mechanism; the table
 * below drives the run and the usage text. Optional contenders (ck_ring,
 * iceoryx, UCX) are built only when their Debian -dev package is present.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_CK
#define CK_MISSING NULL
#else
#define CK_MISSING "built without Debian libck-dev"
#define ck_tput NULL
#endif
#ifdef HAVE_ICEORYX
#define IOX_MISSING NULL
#else
#define IOX_MISSING "built without Debian libiceoryx-binding-c-dev"
#define iceoryx_setup NULL
#define iceoryx_tput NULL
#define iceoryx_lat NULL
#endif
#ifdef HAVE_UCX
#define UCX_MISSING NULL
#else
#define UCX_MISSING "built without Debian libucx-dev"
#define ucx_setup NULL
#define ucx_teardown NULL
#define ucx_tput NULL
#define ucx_lat NULL
#endif

struct contender contenders[] = {
	{ .name = "cacheline", .kinds = BENCH_LAT, .fixed_size = 8, .lat = cacheline_lat,
	  .what = "one value bounced through two cache lines: the cross-core round trip, "
		  "first and last in every round (its placement)" },
	{ .name = "eventfd", .kinds = BENCH_LAT, .fixed_size = 8, .mode = IPC_EVENTFD,
	  .lat = kernel_lat, .what = "eventfd ping-pong, blocking reads: the wake-up limit" },
	{ .name = "stream", .kinds = BENCH_TPUT, .tput = stream_tput,
	  .what = "two-thread streaming copy, one flag per chunk: the cross-core copy limit" },
	{ .name = "ck_ring", .kinds = BENCH_TPUT, .tput = ck_tput, .missing = CK_MISSING,
	  .what = "Concurrency Kit SPSC ring of pointers, payload copied in and out" },
	{ .name = "ring", .kinds = BENCH_TPUT | BENCH_LAT, .mode = RING_POLL, .tput = ring_tput,
	  .lat = ring_lat, .what = "our ring, send/recv, a publish (fence, wake-up check) per record, polling" },
	{ .name = "ring-backoff", .kinds = BENCH_TPUT, .mode = RING_BACKOFF, .tput = ring_tput,
	  .what = "the same; the receiver waits with IVSHMEM_RING_POLL_BACKOFF (throughput opt-in)" },
	{ .name = "ring-batch16", .kinds = BENCH_TPUT, .mode = RING_BATCH16, .tput = ring_tput,
	  .what = "the same, IVSHMEM_RING_MORE: one publish per 16 records" },
	{ .name = "ring-blocking", .kinds = BENCH_TPUT | BENCH_LAT, .mode = RING_BLOCKING,
	  .tput = ring_tput, .lat = ring_lat,
	  .what = "arm and sleep on an eventfd at once, the peer kicks (doorbell path)" },
	{ .name = "ring-hybrid", .kinds = BENCH_TPUT | BENCH_LAT, .mode = RING_HYBRID,
	  .tput = ring_tput, .lat = ring_lat, .what = "spin 50 us, then arm and sleep (channel default)" },
	{ .name = "iceoryx", .kinds = BENCH_TPUT | BENCH_LAT, .tput = iceoryx_tput, .lat = iceoryx_lat,
	  .setup = iceoryx_setup, .missing = IOX_MISSING,
	  .what = "iceoryx 2 zero-copy pub/sub (C binding, own iox-roudi), polling" },
	{ .name = "ucx", .kinds = BENCH_TPUT | BENCH_LAT, .tput = ucx_tput, .lat = ucx_lat,
	  .setup = ucx_setup, .teardown = ucx_teardown, .missing = UCX_MISSING,
	  .what = "UCX UCP tag send/recv over posix,sysv,cma shared memory, polling" },
	{ .name = "pipe", .kinds = BENCH_TPUT | BENCH_LAT, .mode = IPC_PIPE, .tput = kernel_tput,
	  .lat = kernel_lat, .what = "a pipe each way" },
	{ .name = "unix", .kinds = BENCH_TPUT | BENCH_LAT, .mode = IPC_UNIX, .tput = kernel_tput,
	  .lat = kernel_lat, .what = "AF_UNIX stream socketpair" },
	{ .name = "mq", .kinds = BENCH_TPUT | BENCH_LAT, .mode = IPC_MQ, .max_size = 8192,
	  .tput = kernel_tput, .lat = kernel_lat, .what = "POSIX message queue (<= 8 KiB)" },
};
const int ncontenders = (int)(sizeof(contenders) / sizeof(contenders[0]));

static struct {
	int nrounds;
	size_t sizes[MAX_SIZES];
	int nsizes;
	const char *only, *json, *svg;
} opt = { .nrounds = 0 };

static int set_rounds(const char *v)
{
	opt.nrounds = atoi(v);
	return opt.nrounds >= 1 && opt.nrounds <= 1000 ? 0 : -1;
}

static int set_quick(const char *v)
{
	(void)v;
	bench_quick = true;
	return 0;
}

static int set_sizes(const char *list)
{
	char *copy = strdup(list), *save = NULL;

	opt.nsizes = 0;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *end;
		unsigned long long v = strtoull(tok, &end, 0);

		if (*end || v < 8 || v > (1u << 20) || opt.nsizes == MAX_SIZES) {
			free(copy);
			return -1;
		}
		opt.sizes[opt.nsizes++] = (size_t)v;
	}
	free(copy);
	return opt.nsizes ? 0 : -1;
}

static int set_only(const char *v)
{
	char *copy = strdup(v), *save = NULL;
	int ret = 0;

	for (char *tok = strtok_r(copy, ",", &save); tok && !ret; tok = strtok_r(NULL, ",", &save)) {
		ret = -1;
		for (int i = 0; i < ncontenders; i++)
			if (strcmp(tok, contenders[i].name) == 0)
				ret = 0;
	}
	free(copy);
	opt.only = v;
	return ret;
}

static int set_cpus(const char *v)
{
	return sscanf(v, "%d,%d", &bench_cpu_a, &bench_cpu_b) == 2 && bench_cpu_a != bench_cpu_b ? 0 : -1;
}

static int set_near(const char *v)
{
	bench_near_ns = atof(v);
	return bench_near_ns > 0 ? 0 : -1;
}

static int set_ring_cap(const char *v)
{
	bench_ring_cap_min = strtoull(v, NULL, 0);
	return bench_ring_cap_min >= 64 && !(bench_ring_cap_min & (bench_ring_cap_min - 1)) ? 0 : -1;
}

static int set_json(const char *v)
{
	opt.json = v;
	return 0;
}

static int set_svg(const char *v)
{
	opt.svg = v;
	return 0;
}

static int show_help(const char *v);

/* The options: parsing and the usage text both come from this table. */
static const struct option_def {
	const char *name, *arg, *help;
	int (*set)(const char *value);	/* value NULL when arg is NULL; < 0: bad value */
} options[] = {
	{ "--rounds", "N", "interleaved rounds (default 10; 2 with --quick)", set_rounds },
	{ "--quick", NULL, "sizes 8 B, 64 B, 256 B, 64 KiB and 1/8 of the time (CI smoke)", set_quick },
	{ "--sizes", "LIST", "message sizes, e.g. 64,4096,65536 (default 8 B, 64 B, x4 to 1 MiB)",
	  set_sizes },
	{ "--only", "LIST", "only these contenders (comma-separated; cacheline always runs)", set_only },
	{ "--cpus", "A,B", "the two CPUs (default 0,1)", set_cpus },
	{ "--near-ns", "NS", "cache-line round trip below this is the 'near' placement (default 250)",
	  set_near },
	{ "--ring-cap", "BYTES", "smallest ring (default 65536; rings hold 64 records up to 16 MiB)",
	  set_ring_cap },
	{ "--json", "FILE", "every number of every round, and the goals", set_json },
	{ "--svg", "FILE", "throughput and round-trip plots (medians over rounds)", set_svg },
	{ "--help", NULL, "this text", show_help },
};
#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static void usage(FILE *out)
{
	fprintf(out, "usage: ivshmem-bench [options]\n\n"
		     "The ring against the cross-core limits, kernel IPC, iceoryx and UCX, in\n"
		     "interleaved rounds; goals as same-round ratios (docs/benchmarks.md).\n"
		     "Markdown report on stdout, progress on stderr.\n\noptions:\n");
	for (size_t i = 0; i < NOPTIONS; i++)
		fprintf(out, "  %-9s %-6s %s\n", options[i].name, options[i].arg ? options[i].arg : "",
			options[i].help);
	fprintf(out, "\ncontenders:\n");
	for (int i = 0; i < ncontenders; i++)
		fprintf(out, "  %-14s %s%s%s%s\n", contenders[i].name, contenders[i].what,
			contenders[i].missing ? " [" : "",
			contenders[i].missing ? contenders[i].missing : "",
			contenders[i].missing ? "]" : "");
}

static int show_help(const char *v)
{
	(void)v;
	usage(stdout);
	exit(0);
}

static bool listed(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == 0))
			return true;
	return false;
}

static void default_sizes(void)
{
	static const size_t full[] = { 8, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576 };
	static const size_t small[] = { 8, 64, 256, 65536 };

	opt.nsizes = bench_quick ? 4 : 9;
	memcpy(opt.sizes, bench_quick ? small : full, (size_t)opt.nsizes * sizeof(size_t));
}

static int parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const struct option_def *o = NULL;

		for (size_t k = 0; k < NOPTIONS; k++)
			if (strcmp(argv[i], options[k].name) == 0)
				o = &options[k];
		if (strcmp(argv[i], "-h") == 0)
			show_help(NULL);
		if (!o || (o->arg && i + 1 >= argc) || o->set(o->arg ? argv[i + 1] : NULL) < 0) {
			fprintf(stderr, "ivshmem-bench: bad option or value: %s\n\n", argv[i]);
			usage(stderr);
			return -1;
		}
		i += o->arg != NULL;
	}
	if (!opt.nrounds)
		opt.nrounds = bench_quick ? 2 : 10;
	if (!opt.nsizes)
		default_sizes();
	return 0;
}

static double loadavg(void)
{
	FILE *f = fopen("/proc/loadavg", "r");
	double l = NAN;

	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = NAN;
		fclose(f);
	}
	return l;
}

/* Set up the selected contenders; a missing or failing one is skipped (and reported). */
static void setup_all(void)
{
	for (int i = 0; i < ncontenders; i++) {
		struct contender *c = &contenders[i];

		c->skip = opt.only && !listed(opt.only, c->name) && strcmp(c->name, "cacheline") != 0;
		if (c->skip)
			continue;
		if (c->missing) {
			fprintf(stderr, "ivshmem-bench: %s: not measured, %s\n", c->name, c->missing);
			c->skip = true;
			continue;
		}
		if (c->setup && c->setup() < 0) {
			fprintf(stderr, "ivshmem-bench: %s: setup failed, not measured\n", c->name);
			c->missing = "its setup failed on this machine (see stderr)";
			c->skip = true;
		}
	}
}

static void teardown_all(void)
{
	for (int i = 0; i < ncontenders; i++)
		if (!contenders[i].skip && contenders[i].teardown)
			contenders[i].teardown();
}

static double cacheline_now(void)
{
	const struct result *r;

	cacheline_lat(&contenders[0], 8);
	r = &results[nresults - 1];
	return r->p50;
}

static void run_block(size_t size, bool first)
{
	for (int i = 1; i < ncontenders; i++) {
		const struct contender *c = &contenders[i];

		if (c->skip || (c->fixed_size && !first) || (c->max_size && size > c->max_size))
			continue;
		if (c->kinds & BENCH_TPUT)
			measure(c, BENCH_TPUT, c->fixed_size ? c->fixed_size : size);
		if (c->kinds & BENCH_LAT)
			measure(c, BENCH_LAT, c->fixed_size ? c->fixed_size : size);
	}
}

/* The cache-line baseline before every size's block and at the end; contenders in between. */
static void run_round(int round)
{
	struct round_info *ri = &rounds[round];

	bench_round = round;
	ri->load = loadavg();
	for (int s = 0; s < opt.nsizes; s++) {
		int mark = nresults;

		ri->block_size[s] = opt.sizes[s];
		ri->block_ns[s] = cacheline_now();
		/* Only the round's first baseline stays in the results (the value tables). */
		if (s > 0)
			nresults = mark;
		run_block(opt.sizes[s], s == 0);
	}
	ri->nblocks = opt.nsizes;
	ri->line_start = ri->block_ns[0];
	ri->line_end = cacheline_now();
	snprintf(results[nresults - 1].name, sizeof(results[0].name), "cacheline-end");
	classify_round(ri);
}

int main(int argc, char **argv)
{
	char load[128];
	uint64_t t0 = now_ns();
	int missing = 0;

	if (parse_args(argc, argv) < 0)
		return 2;
	rounds = calloc((size_t)opt.nrounds, sizeof(*rounds));
	if (!rounds)
		return 1;
	setup_all();
	for (int r = 0; r < opt.nrounds; r++) {
		uint64_t t = now_ns();

		fprintf(stderr, "round %d/%d...\n", r + 1, opt.nrounds);
		run_round(r);
		nrounds = r + 1;
		report_round(r);
		fprintf(stderr, "  (%.1f s)\n", (double)(now_ns() - t) / 1e9);
	}
	teardown_all();
	snprintf(load, sizeof(load), "1-min load average %.2f at the start of round 1, %.2f at the end; "
		 "%.0f s", rounds[0].load, loadavg(), (double)(now_ns() - t0) / 1e9);
	report_summary(stdout);
	printf("\nNot measured:");
	for (int i = 0; i < ncontenders; i++) {
		if (contenders[i].missing)
			printf(" %s (%s);", contenders[i].name, contenders[i].missing);
		missing += contenders[i].missing != NULL;
	}
	if (!missing)
		printf(" none, every contender was built and set up.");
	printf("\nLoad: %s\n", load);
	if (opt.json && write_json(opt.json, load) < 0)
		return 1;
	if (opt.svg && write_svg(opt.svg) < 0)
		return 1;
	return 0;
}
