// SPDX-License-Identifier: MIT
/*
 * bridge-bench-peer: one application end of a channel for bench/bridge.py, which
 * drives it through stdin, one command a line, and reads one answer line each:
 *
 *   send SIZE COUNT   send COUNT records of SIZE bytes       -> "ok start=T"
 *   recv SIZE COUNT   receive them, check length and number  -> "ok end=T"
 *   ping SIZE COUNT   COUNT round trips: send, wait for echo  -> "ok p50_us=F mean_us=F min_us=F"
 *   echo SIZE COUNT   receive a record and send it back, COUNT times -> "ok"
 *   quit              close the channel (waiting until the peer read everything), exit 0
 *
 * A record carries its sequence number (u64, little-endian) in its first 8 bytes
 * when SIZE >= 8; the receiver checks every record's length and number, so a lost,
 * duplicated, merged or reordered record is an error. Payload bytes are not checked
 * (the bridge tests do that): checking them would measure this program's loop.
 * T is CLOCK_MONOTONIC in seconds, one clock for every process of the machine,
 * network namespaces included: the driver times the sender's first send to the
 * receiver's last record, so the records buffered in the rings and the bridges
 * on the way are counted (timing the receiver alone would start the clock when
 * they are already there).
 * Any failure answers "err WHAT" and exits 1; bad arguments exit 2. Every channel
 * call has a timeout (--timeout MS, default 30000), so nothing waits forever.
 */
#define _GNU_SOURCE
#include "bench.h"
#include "ivshmem/channel.h"
#include "ivshmem/region.h"
#include "ivshmem/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct peer {
	struct ivshmem_channel *ch;
	uint8_t *buf;
	size_t max;			/* the channel's largest record */
	int timeout_ms;
};

static void fail(const char *what, int err)
{
	printf("err %s: %s\n", what, err ? ivshmem_errmsg() : "");
	fflush(stdout);
	exit(1);
}

static void put_seq(uint8_t *p, size_t size, uint64_t seq)
{
	for (size_t i = 0; i < 8 && i < size; i++)
		p[i] = (uint8_t)(seq >> (8 * i));
}

static uint64_t get_seq(const uint8_t *p, size_t size)
{
	uint64_t v = 0;

	for (size_t i = 0; i < 8 && i < size; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void send_one(struct peer *pe, size_t size, uint64_t seq)
{
	put_seq(pe->buf, size, seq);
	int rc = ivshmem_channel_send(pe->ch, pe->buf, size, pe->timeout_ms);

	if (rc < 0)
		fail("send", rc);
}

/* Receive one record and check that it is record @seq of @size bytes. */
static void recv_one(struct peer *pe, size_t size, uint64_t seq)
{
	ssize_t n = ivshmem_channel_recv(pe->ch, pe->buf, pe->max, pe->timeout_ms);

	if (n < 0)
		fail("recv", (int)n);
	if ((size_t)n != size) {
		printf("err record %" PRIu64 " has %zd bytes, expected %zu\n", seq, n, size);
		exit(1);
	}
	if (size >= 8 && get_seq(pe->buf, size) != seq) {
		printf("err record %" PRIu64 " arrived where %" PRIu64 " was expected\n",
		       get_seq(pe->buf, size), seq);
		exit(1);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void do_ping(struct peer *pe, size_t size, uint64_t count)
{
	uint64_t *rtt = xalloc(count * sizeof(*rtt)), sum = 0;

	for (uint64_t i = 0; i < count; i++) {
		uint64_t t0 = now_ns();

		send_one(pe, size, i);
		recv_one(pe, size, i);
		rtt[i] = now_ns() - t0;
		sum += rtt[i];
	}
	qsort(rtt, count, sizeof(*rtt), cmp_u64);
	printf("ok p50_us=%.3f mean_us=%.3f min_us=%.3f\n", (double)rtt[count / 2] / 1e3,
	       (double)sum / (double)count / 1e3, (double)rtt[0] / 1e3);
	free(rtt);
}

static void run(struct peer *pe, const char *cmd, size_t size, uint64_t count)
{
	uint64_t t0 = 0;

	if (!strcmp(cmd, "send")) {
		t0 = now_ns();
		for (uint64_t i = 0; i < count; i++)
			send_one(pe, size, i);
		printf("ok start=%.9f\n", (double)t0 / 1e9);
	} else if (!strcmp(cmd, "recv")) {
		for (uint64_t i = 0; i < count; i++)
			recv_one(pe, size, i);
		printf("ok end=%.9f\n", (double)now_ns() / 1e9);
	} else if (!strcmp(cmd, "ping")) {
		do_ping(pe, size, count);
	} else if (!strcmp(cmd, "echo")) {
		for (uint64_t i = 0; i < count; i++) {
			recv_one(pe, size, i);
			send_one(pe, size, i);
		}
		printf("ok\n");
	} else {
		printf("err unknown command '%s'\n", cmd);
		exit(2);
	}
}

static void usage(FILE *f)
{
	fputs("usage: bridge-bench-peer TARGET CHANNEL [--ring SIZE] [--timeout MS]\n"
	      "One end of CHANNEL (created with RING bytes per direction if missing) for\n"
	      "bench/bridge.py: commands on stdin (send|recv|ping|echo SIZE COUNT, quit),\n"
	      "one answer line each on stdout (see the top of bench/bridge_bench_peer.c).\n", f);
}

static void parse_args(int argc, char **argv, struct ivshmem_channel_opts *o, int *timeout_ms)
{
	for (int i = 3; i < argc; i += 2) {
		uint64_t v;

		if (i + 1 >= argc) {
			usage(stderr);
			exit(2);
		}
		if (!strcmp(argv[i], "--ring") && ivshmem_parse_size(argv[i + 1], &v) == 0) {
			o->ring_size = v;
		} else if (!strcmp(argv[i], "--timeout") &&
			   ivshmem_parse_uint(argv[i + 1], 3600000, &v) == 0 && v > 0) {
			*timeout_ms = (int)v;
		} else {
			fprintf(stderr, "bridge-bench-peer: bad option '%s %s'\n", argv[i], argv[i + 1]);
			exit(2);
		}
	}
}

int main(int argc, char **argv)
{
	struct ivshmem_channel_opts o = { .flags = IVSHMEM_CHANNEL_CREATE };
	struct peer pe = { .timeout_ms = 30000 };
	struct ivshmem_region *r;
	char line[128], cmd[16];
	int rc;

	if (argc >= 2 && !strcmp(argv[1], "--help")) {
		usage(stdout);
		return 0;
	}
	if (argc < 3) {
		usage(stderr);
		return 2;
	}
	parse_args(argc, argv, &o, &pe.timeout_ms);
	rc = ivshmem_open(&r, argv[1], NULL);
	if (rc < 0)
		fail("open region", rc);
	rc = ivshmem_channel_open(&pe.ch, r, argv[2], &o);
	if (rc < 0)
		fail("open channel", rc);
	pe.max = ivshmem_channel_max_msg(pe.ch);
	pe.buf = xalloc(pe.max);
	memset(pe.buf, 0xa5, pe.max);
	printf("ready max=%zu\n", pe.max);
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		uint64_t size, count;

		if (sscanf(line, "%15s", cmd) == 1 && !strcmp(cmd, "quit"))
			break;
		if (sscanf(line, "%15s %" SCNu64 " %" SCNu64, cmd, &size, &count) != 3 ||
		    size > pe.max || count == 0) {
			printf("err bad command (or size above %zu): %s", pe.max, line);
			return 2;
		}
		run(&pe, cmd, (size_t)size, count);
		fflush(stdout);
	}
	rc = ivshmem_channel_close(pe.ch, pe.timeout_ms);
	ivshmem_close(r);
	free(pe.buf);
	return rc < 0 ? 1 : 0;
}
