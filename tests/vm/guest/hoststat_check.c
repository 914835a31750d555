// SPDX-License-Identifier: MIT
/*
 * Checks the records of ivshmem_hoststat.ko (docs/host-kernel.md, "The
 * record") as `ivshmem recv` wrote them: concatenated, each sized by its
 * nr_vcpus. Prints TAP lines; exit 1 on a failed check.
 *   hoststat_check FILE RECORDS ON_REQUEST TIDS [MEMTOTAL_KB [schedstat]]
 * RECORDS and ON_REQUEST are the module's counts (published,
 * published_on_request), TIDS its vcpu_tids ("12,13"). With MEMTOTAL_KB
 * (the publisher's kernel's) mem_total_kb must equal it; with "schedstat"
 * (run on the publisher's kernel) each thread's /proc/TID/schedstat, read
 * now, must be at least the last record's figures.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define HDR		96
#define VCPU		32
#define MAX_VCPUS	64

struct vcpu {
	uint32_t tid, flags;
	uint64_t run_delay, pcount, exec;
};

struct rec {
	uint64_t seq, time_ns, request_seq, dropped, instance, total, free, avail;
	uint32_t reason, n, load[3];
	struct vcpu v[MAX_VCPUS];
};

static uint32_t le32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* One record at @p (@left bytes): its size, or 0 if malformed. */
static size_t decode(const uint8_t *p, size_t left, struct rec *r)
{
	size_t size;

	if (left < HDR || memcmp(p, "HSTA", 4) || (p[4] | p[5] << 8) != 1 || (p[6] | p[7] << 8) != VCPU)
		return 0;
	r->n = le32(p + 28);
	size = HDR + (size_t)r->n * VCPU;
	if (r->n > MAX_VCPUS || size > left)
		return 0;
	r->seq = le64(p + 8);
	r->time_ns = le64(p + 16);
	r->reason = le32(p + 24);
	r->request_seq = le64(p + 32);
	r->dropped = le64(p + 40);
	r->total = le64(p + 48);
	r->free = le64(p + 56);
	r->avail = le64(p + 64);
	for (int i = 0; i < 3; i++)
		r->load[i] = le32(p + 72 + 4 * i);
	r->instance = le64(p + 88);
	for (uint32_t i = 0; i < r->n; i++) {
		const uint8_t *e = p + HDR + i * VCPU;

		r->v[i] = (struct vcpu){ le32(e), le32(e + 4), le64(e + 8), le64(e + 16), le64(e + 24) };
	}
	return size;
}

/* Why @r cannot follow @prev (NULL: the first), or NULL if it can. */
static const char *bad_record(const struct rec *r, const struct rec *prev, const uint32_t *tids,
			      uint32_t ntids, uint64_t memtotal)
{
	if (r->n != ntids)
		return "nr_vcpus differs from vcpu_tids";
	if (r->reason != 1 && r->reason != 2)
		return "unknown reason";
	if ((r->reason == 1) != (r->request_seq == 0))
		return "request_seq set on a periodic record or missing on an answer";
	if (!r->total || !r->free || r->free > r->total || r->avail > r->total)
		return "memory figures out of range";
	if (memtotal && r->total != memtotal)
		return "mem_total_kb is not MemTotal";
	for (int i = 0; i < 3; i++)
		if (r->load[i] > 1000u * 2048)
			return "load average over 1000";
	for (uint32_t i = 0; i < r->n; i++)
		if (r->v[i].tid != tids[i] || r->v[i].flags != 1)
			return "a vCPU entry names another thread or a gone one";
	if (!prev)
		return r->seq >= 1 ? NULL : "seq starts at 0";
	if (r->instance != prev->instance)
		return "instance changed";
	if (r->seq != prev->seq + 1 + (r->dropped - prev->dropped) || r->dropped < prev->dropped)
		return "seq gap not explained by dropped";
	if (r->time_ns <= prev->time_ns)
		return "time_ns does not grow";
	if (r->reason == 2 && prev->request_seq && r->request_seq <= prev->request_seq)
		return "request_seq does not grow";
	for (uint32_t i = 0; i < r->n; i++)
		if (r->v[i].run_delay < prev->v[i].run_delay || r->v[i].pcount < prev->v[i].pcount ||
		    r->v[i].exec < prev->v[i].exec)
			return "a vCPU counter went backwards";
	return NULL;
}

/* /proc/TID/schedstat: exec_ns run_delay_ns pcount, now. */
static int schedstat(uint32_t tid, struct vcpu *v)
{
	char path[64];
	unsigned long long exec, delay, count;
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/proc/%" PRIu32 "/schedstat", tid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fscanf(f, "%llu %llu %llu", &exec, &delay, &count);
	fclose(f);
	v->exec = exec;
	v->run_delay = delay;
	v->pcount = count;
	return n == 3 ? 0 : -1;
}

int main(int argc, char **argv)
{
	static uint8_t buf[1 << 22];
	static struct rec prev, cur;
	uint32_t tids[MAX_VCPUS], ntids = 0;
	uint64_t want, want_req, memtotal = 0, records = 0, on_request = 0;
	const char *why = NULL;
	size_t len, off = 0;
	char *tok, *save;
	FILE *f;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 5 || argc > 7 || (argc == 7 && strcmp(argv[6], "schedstat"))) {
		fprintf(stderr, "usage: hoststat_check FILE RECORDS ON_REQUEST TIDS "
			"[MEMTOTAL_KB [schedstat]]\n");
		return 2;
	}
	want = strtoull(argv[2], NULL, 0);
	want_req = strtoull(argv[3], NULL, 0);
	for (tok = strtok_r(argv[4], ",", &save); tok && ntids < MAX_VCPUS;
	     tok = strtok_r(NULL, ",", &save))
		tids[ntids++] = (uint32_t)strtoul(tok, NULL, 0);
	if (argc >= 6)
		memtotal = strtoull(argv[5], NULL, 0);
	f = fopen(argv[1], "rb");
	if (!f) {
		perror(argv[1]);
		return 2;
	}
	len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	while (off < len && !why) {
		size_t n = decode(buf + off, len - off, &cur);

		if (!n) {
			why = "a malformed record (magic, version, size)";
			break;
		}
		why = bad_record(&cur, records ? &prev : NULL, tids, ntids, memtotal);
		if (why)
			break;
		records++;
		on_request += cur.reason == 2;
		off += n;
		prev = cur;
	}
	check(!why, "every record valid and consistent with the one before (%s at record %" PRIu64
	      ")", why ? why : "none", records + 1);
	check(records == want && on_request == want_req, "%" PRIu64 " records, %" PRIu64
	      " on request: the module published %" PRIu64 " and %" PRIu64, records, on_request,
	      want, want_req);
	check(records && prev.dropped == 0, "no record dropped (%" PRIu64 ")", prev.dropped);
	for (uint32_t i = 0; records && i < ntids; i++) {
		struct vcpu now = { 0 };

		check(prev.v[i].run_delay > 0 && prev.v[i].pcount > 0,
		      "thread %" PRIu32 ": run_delay %" PRIu64 " ns over %" PRIu64 " runs", tids[i],
		      prev.v[i].run_delay, prev.v[i].pcount);
		if (argc == 7) {
			int ret = schedstat(tids[i], &now);

			check(!ret && now.run_delay >= prev.v[i].run_delay &&
			      now.exec >= prev.v[i].exec && now.pcount >= prev.v[i].pcount,
			      "thread %" PRIu32 ": /proc schedstat now (%" PRIu64 " ns) >= the last "
			      "record's", tids[i], now.run_delay);
		}
	}
	printf("# CHECK records=%" PRIu64 " on_request=%" PRIu64 "\n", records, on_request);
	return check_failures ? 1 : 0;
}
