// SPDX-License-Identifier: MIT
/*
 * A channel endpoint for the bridge tests (tests/host/test_bridge.py; also for the
 * benchmark and VM tests that reuse them). Sends and receives numbered,
 * checksummed records of varying sizes at the same time on one channel:
 *
 *   bridge_peer TARGET CHANNEL [--send N] [--recv N] [--seed S] [--min B] [--max B]
 *               [--close] [--linger MS] [--until-end] [--send-timeout MS] [--hold-ms MS]
 *               [--ring SIZE] [--delay-ms MS]
 *
 * A record is: u64 sequence, u32 length, u32 checksum of the payload, then a payload
 * that is a function of (seed, sequence); its length is a function of the same, from
 * --min to --max bytes (>= 16). The receiver expects sequence 0, 1, ... of the
 * other side's seed (--peer-seed, default seed ^ 1) and checks every byte.
 * --until-end: read on after --recv N records (any number more, still checked in
 * order) until EPIPE or ECONNRESET and report which, with the CLOCK_MONOTONIC time it was
 * seen. --delay-ms: open at once, start the loop after MS (a stalled reader). --send-timeout: stop sending (and report
 * how many went) when one send waited that long (back-pressure).
 *
 * Prints one line: "sent=N received=N bytes=N secs=F end=NONE|EPIPE|ECONNRESET|...
 * end_at=F blocked_after=N sent_bytes=N"; exit 0 when every record checked out, 1 on any mismatch or
 * unexpected error (stderr says which), 2 for bad arguments.
 */
#define _GNU_SOURCE
#include "ivshmem/channel.h"
#include "ivshmem/region.h"
#include "ivshmem/util.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HDR 16

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

static size_t rec_len(uint64_t seed, uint64_t seq, size_t min, size_t max)
{
	return min + (size_t)(mix(seed * 1000003u + seq) % (max - min + 1));
}

/* The payload of record @seq, and its checksum. */
static uint32_t fill(uint8_t *p, size_t n, uint64_t seed, uint64_t seq)
{
	uint64_t x = mix(seed ^ (seq << 20) ^ 0x9e3779b97f4a7c15ull) | 1;
	uint32_t sum = 2166136261u;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
		sum = (sum ^ p[i]) * 16777619u;
	}
	return sum;
}

static void build(uint8_t *rec, uint64_t seed, uint64_t seq, size_t len)
{
	uint32_t l32 = (uint32_t)len, sum = fill(rec + HDR, len - HDR, seed, seq);

	memcpy(rec, &seq, 8);
	memcpy(rec + 8, &l32, 4);
	memcpy(rec + 12, &sum, 4);
}

static const char *err_name(int e)
{
	switch (e) {
	case EPIPE: return "EPIPE";
	case ECONNRESET: return "ECONNRESET";
	case EBADMSG: return "EBADMSG";
	case ETIMEDOUT: return "ETIMEDOUT";
	default: return strerror(e);
	}
}

struct opts {
	uint64_t send, recv, seed, peer_seed, ring;
	size_t min, max;
	bool close, until_end, peer_seed_set;
	int linger, send_timeout, hold_ms, delay_ms;
};

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "send", 1, NULL, 's' }, { "recv", 1, NULL, 'r' }, { "seed", 1, NULL, 'S' },
		{ "peer-seed", 1, NULL, 'P' }, { "min", 1, NULL, 'm' }, { "max", 1, NULL, 'M' },
		{ "close", 0, NULL, 'c' }, { "linger", 1, NULL, 'l' }, { "until-end", 0, NULL, 'u' },
		{ "send-timeout", 1, NULL, 't' }, { "hold-ms", 1, NULL, 'h' }, { "ring", 1, NULL, 'R' },
		{ "delay-ms", 1, NULL, 'd' },
		{ NULL, 0, NULL, 0 } };
	int c;

	*o = (struct opts){ .min = 16, .max = 256, .linger = 10000, .seed = 1 };
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 's': o->send = strtoull(optarg, NULL, 0); break;
		case 'r': o->recv = strtoull(optarg, NULL, 0); break;
		case 'S': o->seed = strtoull(optarg, NULL, 0); break;
		case 'P': o->peer_seed = strtoull(optarg, NULL, 0); o->peer_seed_set = true; break;
		case 'm': o->min = strtoull(optarg, NULL, 0); break;
		case 'M': o->max = strtoull(optarg, NULL, 0); break;
		case 'c': o->close = true; break;
		case 'l': o->linger = atoi(optarg); break;
		case 'u': o->until_end = true; break;
		case 't': o->send_timeout = atoi(optarg); break;
		case 'h': o->hold_ms = atoi(optarg); break;
		case 'd': o->delay_ms = atoi(optarg); break;
		case 'R': if (ivshmem_parse_size(optarg, &o->ring) < 0) return -1; break;
		default: return -1;
		}
	}
	if (!o->peer_seed_set)
		o->peer_seed = o->seed ^ 1;
	if (optind + 2 != argc || o->min < HDR || o->max < o->min)
		return -1;
	return 0;
}

struct state {
	uint64_t sent, got, bytes, sent_bytes, blocked_after;
	bool sending;
	double wait_since;
	int end;
	double end_at;
};

static int check(const uint8_t *buf, ssize_t n, const struct opts *o, uint64_t seq, uint8_t *want)
{
	size_t len = rec_len(o->peer_seed, seq, o->min, o->max);

	if ((size_t)n != len) {
		fprintf(stderr, "bridge_peer: record %" PRIu64 ": %zd bytes, expected %zu\n", seq, n,
			len);
		return -1;
	}
	build(want, o->peer_seed, seq, len);
	if (memcmp(buf, want, len) != 0) {
		uint64_t s;

		memcpy(&s, buf, 8);
		fprintf(stderr, "bridge_peer: record %" PRIu64 " differs (it carries sequence %" PRIu64
			")\n", seq, s);
		return -1;
	}
	return 0;
}

/* One pass of both directions; 1 if something moved, 0 if not, -1 on failure. */
static int step(struct ivshmem_channel *ch, const struct opts *o, struct state *st, uint8_t *out,
		uint8_t *in, uint8_t *want)
{
	int moved = 0, ret;

	if (st->sending && st->sent < o->send) {
		size_t len = rec_len(o->seed, st->sent, o->min, o->max);

		build(out, o->seed, st->sent, len);
		ret = ivshmem_channel_send(ch, out, len, 0);
		if (ret == 0) {
			st->sent++;
			st->sent_bytes += len;
			st->wait_since = 0;
			moved = 1;
		} else if (ret == -EAGAIN) {
			if (!st->wait_since)
				st->wait_since = mono();
			if (o->send_timeout && mono() - st->wait_since > o->send_timeout / 1000.0) {
				st->blocked_after = st->sent;
				st->sending = false;
			}
		} else {
			fprintf(stderr, "bridge_peer: send %" PRIu64 ": %s\n", st->sent, ivshmem_errmsg());
			st->end = -ret;
			st->end_at = mono();
			return -1;
		}
	}
	if (st->got < o->recv || o->until_end) {
		ssize_t n = ivshmem_channel_recv(ch, in, o->max, 0);

		if (n >= 0) {
			if (st->got >= o->recv && !o->until_end) {
				fprintf(stderr, "bridge_peer: an extra record (%zd bytes) after %" PRIu64
					"\n", n, o->recv);
				return -1;
			}
			if (check(in, n, o, st->got, want) < 0)
				return -1;
			st->got++;
			st->bytes += (uint64_t)n;
			moved = 1;
		} else if (n != -EAGAIN) {
			st->end = (int)-n;
			st->end_at = mono();
			if (st->got < o->recv || !o->until_end) {
				fprintf(stderr, "bridge_peer: recv after %" PRIu64 " records: %s\n", st->got,
					ivshmem_errmsg());
				return -1;
			}
			return 2;
		}
	}
	return moved;
}

int main(int argc, char **argv)
{
	struct ivshmem_region *r;
	struct ivshmem_channel *ch;
	struct ivshmem_channel_opts co = { .flags = IVSHMEM_CHANNEL_CREATE, .spin_us = -1 };
	struct state st = { .sending = true };
	struct opts o;
	uint8_t *out, *in, *want;
	double t0;
	int ret = 0;

	if (parse(argc, argv, &o) < 0) {
		fprintf(stderr, "usage: bridge_peer TARGET CHANNEL [--send N] [--recv N] ... "
			"(see the top of tests/host/bridge_peer.c)\n");
		return 2;
	}
	co.ring_size = o.ring;
	if (ivshmem_open(&r, argv[optind], NULL) < 0 ||
	    ivshmem_channel_open(&ch, r, argv[optind + 1], &co) < 0) {
		fprintf(stderr, "bridge_peer: %s\n", ivshmem_errmsg());
		return 1;
	}
	out = malloc(o.max);
	in = malloc(o.max);
	want = malloc(o.max);
	printf("open\n");
	fflush(stdout);
	if (o.delay_ms > 0)
		usleep((useconds_t)o.delay_ms * 1000);
	t0 = mono();
	for (;;) {
		int moved;

		if (st.got >= o.recv && !o.until_end && (st.sent >= o.send || !st.sending))
			break;
		moved = step(ch, &o, &st, out, in, want);
		if (moved < 0) {
			ret = 1;
			break;
		}
		if (moved == 2)
			break;
		if (moved == 0) {
			struct pollfd p = { .fd = ivshmem_channel_fd(ch), .events = POLLIN };

			poll(&p, 1, st.sending && st.sent < o.send && o.send_timeout ? 10 : 100);
		}
	}
	if (o.hold_ms > 0)
		usleep((useconds_t)o.hold_ms * 1000);
	printf("sent=%" PRIu64 " received=%" PRIu64 " bytes=%" PRIu64 " secs=%.3f end=%s end_at=%.6f "
	       "blocked_after=%" PRIu64 " sent_bytes=%" PRIu64 "\n", st.sent, st.got, st.bytes, mono() - t0,
	       st.end ? err_name(st.end) : "NONE", st.end_at, st.blocked_after, st.sent_bytes);
	fflush(stdout);
	if (o.close) {
		int c = ivshmem_channel_close(ch, o.linger);

		if (c < 0 && c != -ETIMEDOUT)
			fprintf(stderr, "bridge_peer: close: %s\n", ivshmem_errmsg());
	} else {
		ivshmem_channel_close(ch, 0);
	}
	ivshmem_close(r);
	free(out);
	free(in);
	free(want);
	return ret;
}
