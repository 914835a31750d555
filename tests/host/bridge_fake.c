// SPDX-License-Identifier: MIT
/*
 * A hostile (or broken) remote bridge for tests/host/test_bridge_hostile.py. It dials a
 * real ivshmem-bridge over UCX (bridge/link.c, the same transport), speaks the wire
 * format (bridge/frame.c) as far as the scenario wants, then misbehaves:
 *
 *   bridge_fake ADDR:PORT NAME SECRET_FILE SCENARIO [CHANNEL]
 *
 *   garbage      random bytes instead of a HELLO
 *   badauth      a HELLO, then an AUTH made with a wrong secret
 *   oversized    authenticate, then a DATA header longer than the bridge's max_payload
 *   bigrecord    authenticate, OPEN, then a DATA above the channel's announced max_record
 *   overcredit   authenticate, OPEN, then more DATA than the bridge's credit (8 MiB, no reader)
 *   midrecord    authenticate, OPEN, half a DATA frame, then vanish (exit without closing)
 *   unknownid    authenticate, then DATA for a channel id the bridge never announced
 *   good         authenticate, OPEN, one valid record "hello", stay 1 s (a control)
 *
 * Prints "dropped" and exits 0 when the bridge closed the connection within 8 s;
 * "kept" and exits 3 otherwise; midrecord prints "vanished"; 1 on setup failures.
 */
#define _GNU_SOURCE
#include "auth.h"
#include "frame.h"
#include "link.h"
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static struct ucx u;
static struct link *l;

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "bridge_fake: %s%s%s\n", what, l && l->failed ? ": " : "",
		l && l->failed ? l->why : "");
	exit(1);
}

static void send_bytes(const void *p, size_t n)
{
	void *copy = malloc(n);

	memcpy(copy, p, n);
	if (link_send(l, copy, n) < 0)
		die("send");
	ucx_progress(&u);
}

static void send_frame(enum frame_type t, uint32_t ch, const void *payload, uint32_t len)
{
	uint8_t *buf = malloc(FRAME_HDR + len);

	frame_put_hdr(buf, t, ch, len);
	if (len)
		memcpy(buf + FRAME_HDR, payload, len);
	if (link_send(l, buf, FRAME_HDR + len) < 0)
		die("send");
	ucx_progress(&u);
}

/* Wait for the next frame of @type (others are skipped); its payload is copied into @out. */
static struct frame_hdr wait_frame(unsigned int type, uint8_t *out, size_t outlen)
{
	double end = mono() + 8;
	struct frame_hdr h;
	const char *err;

	while (mono() < end) {
		ucx_progress(&u);
		link_pump(l, l->rx.cap);	/* always compact: simple, and this side is not timed */
		while (rxbuf_unread(&l->rx) >= FRAME_HDR) {
			const uint8_t *p = rxbuf_front(&l->rx);

			if (frame_get_hdr(p, 1u << 30, &h, &err) < 0)
				die(err);
			if (rxbuf_unread(&l->rx) < FRAME_HDR + h.len)
				break;
			if (h.type == type && h.len <= outlen)
				memcpy(out, p + FRAME_HDR, h.len);
			rxbuf_take(&l->rx, FRAME_HDR + h.len);
			if (h.type == type)
				return h;
		}
		if (l->failed)
			die("connection failed while waiting for a frame");
		usleep(1000);
	}
	die("timed out waiting for a frame");
	return h;
}

static void hello_and_auth(const char *name, const uint8_t *secret, int slen, bool honest)
{
	struct frame_hello h = { .max_payload = 1u << 20, .keepalive_ms = 200 };
	uint8_t own[FRAME_HELLO_LEN], peer[FRAME_HELLO_LEN], mac[SHA256_LEN];

	getrandom(h.nonce, sizeof(h.nonce), 0);
	snprintf(h.name, sizeof(h.name), "%s", name);
	frame_put_hello(own, &h);
	send_frame(FRAME_HELLO, 0, own, FRAME_HELLO_LEN);
	wait_frame(FRAME_HELLO, peer, sizeof(peer));
	if (honest)
		auth_mac(secret, (size_t)slen, 'D', own, peer, mac);
	else
		auth_mac((const uint8_t *)"not the secret at all", 21, 'D', own, peer, mac);
	send_frame(FRAME_AUTH, 0, mac, sizeof(mac));
	if (honest)
		wait_frame(FRAME_AUTH, mac, sizeof(mac));
}

/* Authenticated: wait for the bridge's OPEN of @channel, answer with ours (id 1). */
static struct frame_open open_channel(const char *channel, uint32_t *id)
{
	struct frame_open o, mine = { .window = 1u << 20, .max_record = 4096 };
	uint8_t payload[FRAME_OPEN_LEN];
	const char *err;
	struct frame_hdr h;

	do {
		h = wait_frame(FRAME_OPEN, payload, sizeof(payload));
		if (frame_get_open(payload, &o, &err) < 0)
			die(err);
	} while (strcmp(o.name, channel) != 0);
	*id = h.channel;
	snprintf(mine.name, sizeof(mine.name), "%s", channel);
	frame_put_open(payload, &mine);
	send_frame(FRAME_OPEN, 1, payload, sizeof(payload));
	return o;
}

/* Read and forget what the bridge sends (its credits, its keepalives). */
static void discard_input(void)
{
	link_pump(l, 0);
	rxbuf_take(&l->rx, rxbuf_unread(&l->rx));
}

static int wait_dropped(double secs)
{
	double end = mono() + secs;

	while (mono() < end) {
		ucx_progress(&u);
		discard_input();
		if (l->failed) {
			printf("dropped\n");
			return 0;
		}
		usleep(2000);
	}
	printf("kept\n");
	return 3;
}

int main(int argc, char **argv)
{
	uint8_t secret[SECRET_MAX], junk[4096];
	char err[256];
	struct sockaddr_storage ss;
	socklen_t len;
	const char *scn, *channel;
	struct frame_open o;
	uint32_t id;
	int slen;

	if (argc < 5) {
		fprintf(stderr, "usage: bridge_fake ADDR:PORT NAME SECRET_FILE SCENARIO [CHANNEL]\n");
		return 2;
	}
	scn = argv[4];
	channel = argc > 5 ? argv[5] : "x";
	slen = secret_load(argv[3], secret, sizeof(secret), err, sizeof(err));
	if (slen < 0 || config_addr(argv[1], &ss, &len, err, sizeof(err)) < 0 ||
	    ucx_open(&u, err, sizeof(err)) < 0 ||
	    !(l = link_dial(&u, (struct sockaddr *)&ss, len, 4u << 20, err, sizeof(err)))) {
		fprintf(stderr, "bridge_fake: %s\n", err);
		return 1;
	}
	if (strcmp(scn, "garbage") == 0) {
		getrandom(junk, sizeof(junk), 0);
		send_bytes(junk, sizeof(junk));
		return wait_dropped(8);
	}
	if (strcmp(scn, "badauth") == 0) {
		hello_and_auth(argv[2], secret, slen, false);
		return wait_dropped(8);
	}
	hello_and_auth(argv[2], secret, slen, true);
	if (strcmp(scn, "oversized") == 0) {
		uint8_t hdr[FRAME_HDR];

		frame_put_hdr(hdr, FRAME_DATA, 1, 64u << 20);
		send_bytes(hdr, sizeof(hdr));
		return wait_dropped(8);
	}
	if (strcmp(scn, "unknownid") == 0) {
		send_frame(FRAME_DATA, 999, "x", 1);
		return wait_dropped(8);
	}
	o = open_channel(channel, &id);
	if (strcmp(scn, "bigrecord") == 0) {
		uint32_t n = o.max_record + 1;
		uint8_t *big = calloc(1, n);

		send_frame(FRAME_DATA, id, big, n);
		return wait_dropped(8);
	}
	if (strcmp(scn, "overcredit") == 0) {
		/*
		 * The bridge returns credit as records enter its ring; with nobody reading, the
		 * ring fills and credit stops coming back. 8 MiB is beyond the window plus any
		 * ring of the test: ignore the credit and keep sending until dropped.
		 */
		memset(junk, 'c', sizeof(junk));
		for (uint64_t spent = 0; spent < (8u << 20) && !l->failed; spent += 1032) {
			uint8_t *buf = malloc(FRAME_HDR + 1024);

			frame_put_hdr(buf, FRAME_DATA, id, 1024);
			memcpy(buf + FRAME_HDR, junk, 1024);
			if (link_send(l, buf, FRAME_HDR + 1024) < 0)
				break;
			ucx_progress(&u);
			discard_input();
		}
		return wait_dropped(8);
	}
	if (strcmp(scn, "midrecord") == 0) {
		uint8_t part[FRAME_HDR + 10];

		frame_put_hdr(part, FRAME_DATA, id, 1000);
		memset(part + FRAME_HDR, 'm', 10);
		send_bytes(part, sizeof(part));
		for (int i = 0; i < 50; i++) {
			ucx_progress(&u);
			usleep(2000);
		}
		printf("vanished\n");
		fflush(stdout);
		_exit(0);	/* no close: the TCP connection just ends with the process */
	}
	if (strcmp(scn, "good") == 0) {
		send_frame(FRAME_DATA, id, "hello", 5);
		return wait_dropped(1) == 0 ? 4 : 0;
	}
	fprintf(stderr, "bridge_fake: unknown scenario %s\n", scn);
	return 2;
}
