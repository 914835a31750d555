// SPDX-License-Identifier: MIT
/*
 * ivshmem-bench report: the goals as same-round ratios, their median and
 * spread over the rounds (all, far, near), the median of every measurement,
 * and the JSON and SVG files.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct round_info *rounds;
int nrounds;
double bench_near_ns = 250;

static double tput(int r, const char *name, size_t size, bool bytes)
{
	const struct result *x = find_result(r, name, BENCH_TPUT, size);

	return x ? (bytes ? x->gb_s : x->msgs_s) : NAN;
}

static double p50(int r, const char *name, size_t size)
{
	const struct result *x = find_result(r, name, BENCH_LAT, size);

	return x ? x->p50 : NAN;
}

static double g_tput8(int r) { return tput(r, "ring", 8, false) / tput(r, "ck_ring", 8, false); }
static double g_tput64(int r) { return tput(r, "ring", 64, false) / tput(r, "ck_ring", 64, false); }
static double g_tput256(int r) { return tput(r, "ring", 256, false) / tput(r, "ck_ring", 256, false); }
static double g_batch64(int r)
{
	return tput(r, "ring-batch16", 64, false) / tput(r, "ck_ring", 64, false);
}
static double g_back8(int r)
{
	return tput(r, "ring-backoff", 8, false) / tput(r, "ck_ring", 8, false);
}
static double g_back64(int r)
{
	return tput(r, "ring-backoff", 64, false) / tput(r, "ck_ring", 64, false);
}
static double g_back256(int r)
{
	return tput(r, "ring-backoff", 256, false) / tput(r, "ck_ring", 256, false);
}
static double g_stream(int r) { return tput(r, "ring", 65536, true) / tput(r, "stream", 65536, true); }
/* The cache-line round trip measured right before the block of @size. */
static double block_line(int r, size_t size)
{
	for (int i = 0; i < rounds[r].nblocks; i++)
		if (rounds[r].block_size[i] == size)
			return rounds[r].block_ns[i];
	return NAN;
}

static double g_poll(int r) { return p50(r, "ring", 64) / block_line(r, 64); }
static double g_block(int r) { return p50(r, "ring-blocking", 64) / p50(r, "eventfd", 8); }

/* The worst throughput ratio ring / @peer over the sizes measured in 64 B..64 KiB. */
static double worst_tput(int r, const char *peer)
{
	double worst = NAN;

	for (size_t s = 64; s <= 65536; s *= 2) {
		double v = tput(r, "ring", s, false) / tput(r, peer, s, false);

		if (!isnan(v))
			worst = isnan(worst) ? v : fmin(worst, v);
	}
	return worst;
}

static double g_iox_lat(int r) { return p50(r, "ring", 64) / p50(r, "iceoryx", 64); }
static double g_iox_tput(int r) { return worst_tput(r, "iceoryx"); }
static double g_ucx_lat(int r) { return p50(r, "ring", 64) / p50(r, "ucx", 64); }
static double g_ucx_tput(int r) { return worst_tput(r, "ucx"); }

static const struct goal {
	const char *what;
	const char *target;
	double limit;
	bool at_most;		/* met when ratio <= limit (else >=) */
	double (*ratio)(int round);
	size_t lo, hi;		/* the sizes (blocks) it reads; eventfd is in the first block */
} goals[] = {
	{ "8 B msgs/s, unbatched, strict wake-up / ck_ring", ">= 1.0", 1.0, false, g_tput8, 8, 8 },
	{ "64 B msgs/s, unbatched / ck_ring", ">= 1.2", 1.2, false, g_tput64, 64, 64 },
	{ "256 B msgs/s, unbatched / ck_ring", ">= 1.2", 1.2, false, g_tput256, 256, 256 },
	{ "64 KiB GB/s / two-thread streaming copy", ">= 0.9", 0.9, false, g_stream, 65536, 65536 },
	{ "polling round trip 64 B / cache-line round trip", "<= 0.9", 0.9, true, g_poll, 64, 64 },
	{ "blocking round trip 64 B / eventfd ping-pong", "<= 1.1", 1.1, true, g_block, 8, 64 },
	{ "round trip 64 B / iceoryx", "< 1.0", 1.0, true, g_iox_lat, 64, 64 },
	{ "msgs/s 64 B-64 KiB, worst size / iceoryx", "> 1.0", 1.0, false, g_iox_tput, 64, 65536 },
	{ "round trip 64 B / UCX shm", "< 1.0", 1.0, true, g_ucx_lat, 64, 64 },
	{ "msgs/s 64 B-64 KiB, worst size / UCX shm", "> 1.0", 1.0, false, g_ucx_tput, 64, 65536 },
	{ "(info) 64 B msgs/s, batch16 / ck_ring", "-", NAN, false, g_batch64, 64, 64 },
	{ "(info) 8 B msgs/s, unbatched, receiver backoff / ck_ring", "-", NAN, false, g_back8, 8, 8 },
	{ "(info) 64 B msgs/s, unbatched, receiver backoff / ck_ring", "-", NAN, false, g_back64, 64,
	  64 },
	{ "(info) 256 B msgs/s, unbatched, receiver backoff / ck_ring", "-", NAN, false, g_back256,
	  256, 256 },
};
#define NGOALS (int)(sizeof(goals) / sizeof(goals[0]))

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct spread {
	int n;
	double median, q1, q3, min, max;
};

void classify_round(struct round_info *ri)
{
	bool all_near = true, all_far = true;

	for (int i = 0; i < ri->nblocks; i++) {
		double next = i + 1 < ri->nblocks ? ri->block_ns[i + 1] : ri->line_end;
		bool a = ri->block_ns[i] < bench_near_ns, b = next < bench_near_ns;

		ri->blocks[i] = a != b ? 'm' : a ? 'n' : 'f';
		all_near &= ri->blocks[i] == 'n';
		all_far &= ri->blocks[i] == 'f';
	}
	ri->blocks[ri->nblocks] = 0;
	snprintf(ri->placement, sizeof(ri->placement), "%s",
		 all_near ? "near" : all_far ? "far" : "mixed");
}

/* The placement of @g's numbers in round @r: the one of its blocks if they all agree, else "mixed". */
static const char *placement_of(const struct goal *g, int r)
{
	char p = 0;

	for (int i = 0; i < rounds[r].nblocks; i++) {
		size_t s = rounds[r].block_size[i];

		if (s < g->lo || s > g->hi)
			continue;
		if (p && p != rounds[r].blocks[i])
			return "mixed";
		p = rounds[r].blocks[i];
	}
	return p == 'n' ? "near" : p == 'f' ? "far" : "mixed";
}

/* Over the rounds where @g's placement is @placement (NULL: all), NaNs left out. */
static struct spread spread_of(const struct goal *g, const char *placement)
{
	struct spread s = { .median = NAN, .q1 = NAN, .q3 = NAN, .min = NAN, .max = NAN };
	double *v = calloc((size_t)nrounds + 1, sizeof(double));

	for (int r = 0; r < nrounds; r++) {
		double x = g->ratio(r);

		if (!isnan(x) && (!placement || strcmp(placement_of(g, r), placement) == 0))
			v[s.n++] = x;
	}
	if (s.n) {
		qsort(v, (size_t)s.n, sizeof(double), cmp_double);
		s.median = s.n % 2 ? v[s.n / 2] : (v[s.n / 2 - 1] + v[s.n / 2]) / 2;
		s.q1 = v[(s.n - 1) / 4];
		s.q3 = v[(3 * (s.n - 1) + 3) / 4];
		s.min = v[0];
		s.max = v[s.n - 1];
	}
	free(v);
	return s;
}

static const char *verdict(const struct goal *g, double v)
{
	if (isnan(g->limit))
		return "-";
	if (isnan(v))
		return "n/a";
	return (g->at_most ? v <= g->limit : v >= g->limit) ? "yes" : "**no**";
}

void report_round(int r)
{
	const struct round_info *ri = &rounds[r];

	fprintf(stderr, "round %d: cache-line round trip %.0f ns first, %.0f ns last; blocks %s: %s\n",
		r + 1, ri->line_start, ri->line_end, ri->blocks, ri->placement);
	for (int i = 0; i < NGOALS; i++) {
		double v = goals[i].ratio(r);

		if (!isnan(v))
			fprintf(stderr, "  %-50s %8.3f %-6s %s\n", goals[i].what, v,
				verdict(&goals[i], v), placement_of(&goals[i], r));
	}
}

static void print_spread(FILE *out, struct spread s)
{
	if (s.n == 0)
		fprintf(out, " - |");
	else
		fprintf(out, " %.2f (%.2f-%.2f, n=%d) |", s.median, s.min, s.max, s.n);
}

static void goals_table(FILE *out)
{
	fprintf(out, "| goal | target | far: median (min-max, n) | far IQR | near: median (min-max, n) "
		     "| all rounds | met (far) |\n|---|---|---|---|---|---|---|\n");
	for (int i = 0; i < NGOALS; i++) {
		const struct goal *g = &goals[i];
		struct spread far = spread_of(g, "far"), near = spread_of(g, "near"),
			      all = spread_of(g, NULL);

		fprintf(out, "| %s | %s |", g->what, g->target);
		print_spread(out, far);
		if (far.n)
			fprintf(out, " %.2f-%.2f |", far.q1, far.q3);
		else
			fprintf(out, " - |");
		print_spread(out, near);
		print_spread(out, all);
		fprintf(out, " %s%s |\n", verdict(g, far.n ? far.median : all.median),
			far.n || all.n == 0 ? "" : " (no far round: all rounds)");
	}
}

/* One row per round: baselines, block placements, load, each goal's ratio and its placement. */
static void rounds_table(FILE *out)
{
	fprintf(out, "| round | cache-line RTT first / last (ns) | blocks | load (1 min) |");
	for (int i = 0; i < NGOALS; i++)
		fprintf(out, " g%d |", i + 1);
	fprintf(out, "\n|---|---|---|---|");
	for (int i = 0; i < NGOALS; i++)
		fprintf(out, "---|");
	fprintf(out, "\n");
	for (int r = 0; r < nrounds; r++) {
		fprintf(out, "| %d | %.0f / %.0f | `%s` | %.2f |", r + 1, rounds[r].line_start,
			rounds[r].line_end, rounds[r].blocks, rounds[r].load);
		for (int i = 0; i < NGOALS; i++) {
			double v = goals[i].ratio(r);

			if (isnan(v))
				fprintf(out, " - |");
			else
				fprintf(out, " %.2f %c |", v, placement_of(&goals[i], r)[0]);
		}
		fprintf(out, "\n");
	}
}

/*
 * Median over all rounds of one measurement's number (@field 0 msgs/s, 1 GB/s,
 * 2 p50, 3 doorbells per message); NaN when never measured.
 */
static double median_of(const char *name, enum bench_kind kind, size_t size, int field,
			double *lo, double *hi)
{
	double v[256];
	int n = 0;

	for (int i = 0; i < nresults && n < 256; i++) {
		const struct result *x = &results[i];

		if (x->kind != kind || x->size != size || strcmp(x->name, name) != 0)
			continue;
		v[n++] = field == 0 ? x->msgs_s : field == 1 ? x->gb_s : field == 2 ? x->p50
			: x->doorbells_per_msg;
	}
	if (!n)
		return NAN;
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	*lo = v[0];
	*hi = v[n - 1];
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The distinct names and sizes measured for @kind, in first-seen order. */
static int distinct(enum bench_kind kind, const char **names, int max_names, size_t *sizes,
		    int *nsizes)
{
	int nn = 0;

	*nsizes = 0;
	for (int i = 0; i < nresults; i++) {
		const struct result *x = &results[i];
		bool seen = false;

		if (x->kind != kind)
			continue;
		for (int k = 0; k < nn; k++)
			seen |= strcmp(names[k], x->name) == 0;
		if (!seen && nn < max_names)
			names[nn++] = x->name;
		seen = false;
		for (int k = 0; k < *nsizes; k++)
			seen |= sizes[k] == x->size;
		if (!seen && *nsizes < 32)
			sizes[(*nsizes)++] = x->size;
	}
	for (int i = 1; i < *nsizes; i++)
		for (int j = i; j > 0 && sizes[j] < sizes[j - 1]; j--) {
			size_t t = sizes[j];

			sizes[j] = sizes[j - 1];
			sizes[j - 1] = t;
		}
	return nn;
}

static void size_label(char *buf, size_t len, size_t s)
{
	if (s >= (1u << 20) && s % (1u << 20) == 0)
		snprintf(buf, len, "%zu MiB", s >> 20);
	else if (s >= 1024 && s % 1024 == 0)
		snprintf(buf, len, "%zu KiB", s >> 10);
	else
		snprintf(buf, len, "%zu B", s);
}

/* A number in 3 significant digits, without exponent. */
static void num(char *buf, size_t len, double v)
{
	snprintf(buf, len, v >= 100 ? "%.0f" : v >= 10 ? "%.1f" : v >= 1 ? "%.2f" : "%.3f", v);
}

/*
 * One cell: median (min-max) over rounds. Throughput in M msgs/s below 4 KiB
 * and in GB/s from 4 KiB on; round trips in us.
 */
static void value_cell(FILE *out, const char *name, enum bench_kind kind, size_t size)
{
	bool bytes = kind == BENCH_TPUT && size >= 4096;
	double lo = 0, hi = 0, scale = kind == BENCH_LAT ? 1e3 : bytes ? 1 : 1e6;
	double m = median_of(name, kind, size, kind == BENCH_LAT ? 2 : bytes ? 1 : 0, &lo, &hi);
	char a[24], b[24], c[24];

	if (isnan(m)) {
		fprintf(out, " - |");
		return;
	}
	num(a, sizeof(a), m / scale);
	num(b, sizeof(b), lo / scale);
	num(c, sizeof(c), hi / scale);
	fprintf(out, " %s (%s-%s) |", a, b, c);
}

/* Doorbells per message while streaming, for the ring modes that sleep. */
static void bells_table(FILE *out)
{
	static const char *const sleepers[] = { "ring-blocking", "ring-hybrid" };
	const char *names[24];
	size_t sizes[32];
	int nsizes;

	distinct(BENCH_TPUT, names, 24, sizes, &nsizes);
	fprintf(out, "\n### Doorbells per message while streaming (median over rounds)\n\n"
		     "| size | ring-blocking (no spin) | ring-hybrid (spin 50 us) |\n|---|---:|---:|\n");
	for (int i = 0; i < nsizes; i++) {
		char label[32];

		size_label(label, sizeof(label), sizes[i]);
		fprintf(out, "| %s |", label);
		for (int k = 0; k < 2; k++) {
			double lo, hi, m = median_of(sleepers[k], BENCH_TPUT, sizes[i], 3, &lo, &hi);

			fprintf(out, isnan(m) ? " - |" : " %.4f |", m);
		}
		fprintf(out, "\n");
	}
}

static void value_tables(FILE *out)
{
	const char *names[24];
	size_t sizes[32];
	int nsizes;

	for (int kind = BENCH_TPUT; kind <= BENCH_LAT; kind++) {
		int nn = distinct(kind, names, 24, sizes, &nsizes);

		fprintf(out, kind == BENCH_TPUT
			? "\n### Throughput: M msgs/s below 4 KiB, GB/s from 4 KiB; median over rounds "
			  "(min-max)\n\n| size |"
			: "\n### Round trip: p50 in us, median over rounds (min-max)\n\n| size |");
		for (int k = 0; k < nn; k++)
			fprintf(out, " %s |", names[k]);
		fprintf(out, "\n|---|");
		for (int k = 0; k < nn; k++)
			fprintf(out, "---:|");
		fprintf(out, "\n");
		for (int i = 0; i < nsizes; i++) {
			char label[32];

			size_label(label, sizeof(label), sizes[i]);
			fprintf(out, "| %s |", label);
			for (int k = 0; k < nn; k++)
				value_cell(out, names[k], kind, sizes[i]);
			fprintf(out, "\n");
		}
	}
	bells_table(out);
}

void report_summary(FILE *out)
{
	int far = 0, near = 0;

	for (int r = 0; r < nrounds; r++) {
		far += strcmp(rounds[r].placement, "far") == 0;
		near += strcmp(rounds[r].placement, "near") == 0;
	}
	fprintf(out, "## ivshmem-bench: %d rounds (%d all far, %d all near, %d mixed), CPUs %d,%d\n\n"
		     "### Goals: same-round ratios\n\n"
		     "A goal's ratio in a round counts as far (near) when the cache-line round trips "
		     "before and after the blocks it reads were all far (near).\n\n", nrounds, far, near,
		nrounds - far - near, bench_cpu_a, bench_cpu_b);
	goals_table(out);
	fprintf(out, "\n### Rounds\n\ng1..g%d: the goals above, in order, each with the placement "
		     "of its blocks (f, n, m: mixed). Blocks: the placement of each size's block, "
		     "smallest size first.\n\n", NGOALS);
	rounds_table(out);
	value_tables(out);
}

static void json_number(FILE *f, const char *key, double v, const char *sep)
{
	if (isnan(v) || isinf(v))
		fprintf(f, "\"%s\": null%s", key, sep);
	else
		fprintf(f, "\"%s\": %.6g%s", key, v, sep);
}

int write_json(const char *path, const char *load)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		perror(path);
		return -1;
	}
	fprintf(f, "{\n  \"cpus\": [%d, %d],\n  \"near_below_ns\": %.0f,\n  \"load\": \"%s\",\n"
		   "  \"rounds\": [\n", bench_cpu_a, bench_cpu_b, bench_near_ns, load);
	for (int r = 0; r < nrounds; r++) {
		fprintf(f, "    {\"round\": %d, \"cacheline_first_ns\": %.0f, \"cacheline_last_ns\": %.0f, "
			   "\"placement\": \"%s\", \"blocks\": \"%s\", \"load1\": %.2f, \"block_sizes\": [",
			r + 1, rounds[r].line_start, rounds[r].line_end, rounds[r].placement,
			rounds[r].blocks, rounds[r].load);
		for (int i = 0; i < rounds[r].nblocks; i++)
			fprintf(f, "%zu%s", rounds[r].block_size[i], i + 1 < rounds[r].nblocks ? ", " : "");
		fprintf(f, "], \"cacheline_before_block_ns\": [");
		for (int i = 0; i < rounds[r].nblocks; i++)
			fprintf(f, "%.0f%s", rounds[r].block_ns[i], i + 1 < rounds[r].nblocks ? ", " : "");
		fprintf(f, "]}%s\n", r + 1 < nrounds ? "," : "");
	}
	fprintf(f, "  ],\n  \"goals\": [\n");
	for (int i = 0; i < NGOALS; i++) {
		const struct goal *g = &goals[i];
		struct spread far = spread_of(g, "far"), near = spread_of(g, "near");

		fprintf(f, "    {\"goal\": \"%s\", \"target\": \"%s\", ", g->what, g->target);
		json_number(f, "far_median", far.median, ", ");
		json_number(f, "far_min", far.min, ", ");
		json_number(f, "far_max", far.max, ", ");
		json_number(f, "near_median", near.median, ", ");
		fprintf(f, "\"per_round\": [");
		for (int r = 0; r < nrounds; r++) {
			double v = g->ratio(r);

			if (isnan(v))
				fprintf(f, "null%s", r + 1 < nrounds ? ", " : "");
			else
				fprintf(f, "%.4f%s", v, r + 1 < nrounds ? ", " : "");
		}
		fprintf(f, "]}%s\n", i + 1 < NGOALS ? "," : "");
	}
	fprintf(f, "  ],\n  \"results\": [\n");
	for (int i = 0; i < nresults; i++) {
		const struct result *x = &results[i];

		fprintf(f, "    {\"round\": %d, \"name\": \"%s\", \"kind\": \"%s\", \"size\": %zu, ",
			x->round + 1, x->name, x->kind == BENCH_TPUT ? "throughput" : "latency", x->size);
		if (x->kind == BENCH_TPUT) {
			fprintf(f, "\"msgs_per_s\": %.0f, \"gb_per_s\": %.3f", x->msgs_s, x->gb_s);
			if (x->doorbells_per_msg >= 0)
				fprintf(f, ", \"doorbells_per_msg\": %.5f", x->doorbells_per_msg);
		} else {
			fprintf(f, "\"p50_ns\": %.0f, \"p99_ns\": %.0f, \"p999_ns\": %.0f", x->p50, x->p99,
				x->p999);
		}
		fprintf(f, "}%s\n", i + 1 < nresults ? "," : "");
	}
	fprintf(f, "  ]\n}\n");
	return fclose(f) == 0 ? 0 : -1;
}

static const char *const colors[] = { "#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#1f77b4",
				      "#2ca02c", "#17becf", "#7f7f7f", "#bcbd22", "#e377c2",
				      "#000000", "#aec7e8", "#98df8a", "#ff9896" };
#define NCOLORS (int)(sizeof(colors) / sizeof(colors[0]))

/* How many of @n values are plotted (positive numbers). */
static int nsizes_of(const double *v, int n)
{
	int k = 0;

	for (int i = 0; i < n; i++)
		k += !isnan(v[i]) && v[i] > 0;
	return k;
}

/* One log-log plot of the median over rounds (GB/s or p50 us) against message size. */
static void svg_plot(FILE *f, int x0, enum bench_kind kind, const char *title)
{
	const int w = 620, h = 420, y0 = 0;
	const char *names[24];
	size_t sizes[32];
	int nsizes, nn = distinct(kind, names, 24, sizes, &nsizes);
	double lo = 1e30, hi = 0, smin = 8, smax = 1 << 20, v[24][32];

	for (int k = 0; k < nn; k++)
		for (int i = 0; i < nsizes; i++) {
			double a, b, m = median_of(names[k], kind, sizes[i], kind == BENCH_TPUT ? 1 : 2,
						   &a, &b);

			v[k][i] = kind == BENCH_TPUT ? m : m / 1000;
			if (!isnan(v[k][i]) && v[k][i] > 0 && sizes[i] >= smin) {
				lo = fmin(lo, v[k][i]);
				hi = fmax(hi, v[k][i]);
			}
		}
	if (hi <= 0)
		return;
	lo = pow(10, floor(log10(lo)));
	hi = pow(10, ceil(log10(hi)));
#define PX(s) (x0 + 60 + (log2((double)(s)) - log2(smin)) / (log2(smax) - log2(smin)) * (w - 180))
#define PY(y) (y0 + h - 40 - (log10(y) - log10(lo)) / (log10(hi) - log10(lo)) * (h - 70))
	fprintf(f, "<text x='%d' y='%d' font-size='14' font-weight='bold'>%s</text>\n", x0 + 60,
		y0 + 18, title);
	fprintf(f, "<rect x='%d' y='%d' width='%d' height='%d' fill='none' stroke='#444'/>\n",
		x0 + 60, y0 + 30, w - 180, h - 70);
	for (double y = lo; y <= hi * 1.001; y *= 10)
		fprintf(f, "<text x='%d' y='%.1f' font-size='10' text-anchor='end'>%g</text>"
			   "<line x1='%d' x2='%d' y1='%.1f' y2='%.1f' stroke='#ddd'/>\n",
			x0 + 56, PY(y) + 3, y, x0 + 60, x0 + w - 120, PY(y), PY(y));
	for (double s = smin; s <= smax; s *= 8) {
		char label[32];

		size_label(label, sizeof(label), (size_t)s);
		fprintf(f, "<text x='%.1f' y='%d' font-size='10' text-anchor='middle'>%s</text>\n",
			PX(s), y0 + h - 26, label);
	}
	fprintf(f, "<text x='%d' y='%d' font-size='11' text-anchor='middle'>message size</text>\n",
		x0 + w / 2 - 40, y0 + h - 8);
	for (int k = 0; k < nn; k++) {
		const char *c = colors[k % NCOLORS];
		bool first = true;

		fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='2' points='", c);
		for (int i = 0; i < nsizes; i++) {
			if (isnan(v[k][i]) || v[k][i] <= 0 || sizes[i] < smin)
				continue;
			fprintf(f, "%s%.1f,%.1f", first ? "" : " ", PX(sizes[i]), PY(v[k][i]));
			first = false;
		}
		fprintf(f, "'/>\n");
		/* A baseline measured at one size only (cacheline, eventfd) is a dot. */
		for (int i = 0; i < nsizes; i++)
			if (!isnan(v[k][i]) && v[k][i] > 0 && sizes[i] >= smin && nsizes_of(v[k], nsizes) == 1)
				fprintf(f, "<circle cx='%.1f' cy='%.1f' r='4' fill='%s'/>\n", PX(sizes[i]),
					PY(v[k][i]), c);
		fprintf(f, "<text x='%d' y='%d' font-size='11' fill='%s'>%s</text>\n",
			x0 + w - 110, y0 + 40 + 14 * k, c, names[k]);
	}
#undef PX
#undef PY
}

int write_svg(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		perror(path);
		return -1;
	}
	fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='1260' height='430' "
		   "font-family='sans-serif'>\n<rect width='100%%' height='100%%' fill='white'/>\n");
	svg_plot(f, 0, BENCH_TPUT, "Throughput (GB/s, median of rounds, log)");
	svg_plot(f, 630, BENCH_LAT, "Round trip p50 (us, median of rounds, log)");
	fprintf(f, "</svg>\n");
	return fclose(f) == 0 ? 0 : -1;
}
