// SPDX-License-Identifier: MIT
/*
 * bridge/rxbuf.c: a link's receive buffer. Frames cut anyhow by the transport
 * come out whole and in order, and the bytes moved to the front stay below
 * twice the bytes received (moving the rest after every frame, as the first
 * version did, is quadratic: a bridge then spent seconds in memmove and went
 * silent on its links).
 */
#include "tap.h"

#include "rxbuf.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define CAP	(64u << 10)
#define HDR	8u	/* u32 length of the whole frame, u32 sequence */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)rng;
}

/* Frame @seq: its length (mostly small, now and then up to the whole buffer) and bytes. */
static uint32_t frame_len(uint32_t seq)
{
	uint32_t x = seq * 2654435761u;

	return seq % 97 == 0 ? HDR + x % (CAP - HDR + 1) : HDR + x % 300;
}

static uint8_t frame_byte(uint32_t seq, uint32_t i)
{
	return (uint8_t)(seq * 31 + i * 7);
}

/* The sender's stream, produced on demand: frame @seq, @off bytes into it. */
struct stream {
	uint32_t seq, off;
	uint64_t sent;
};

static uint8_t stream_byte(struct stream *s)
{
	uint32_t len = frame_len(s->seq), i = s->off;
	uint8_t b;

	if (i < 4)
		b = (uint8_t)(len >> (8 * i));
	else if (i < 8)
		b = (uint8_t)(s->seq >> (8 * (i - 4)));
	else
		b = frame_byte(s->seq, i);
	if (++s->off == len) {
		s->seq++;
		s->off = 0;
	}
	s->sent++;
	return b;
}

/* Read whole frames from the front, at most @budget bytes; *@need as the bridge computes it. */
static bool read_frames(struct rxbuf *q, uint32_t *want, size_t budget, size_t *need)
{
	size_t done = 0;

	*need = 0;
	while (done < budget) {
		const uint8_t *p = rxbuf_front(q);
		uint32_t len, seq;

		*need = HDR;
		if (rxbuf_unread(q) < HDR)
			return true;
		memcpy(&len, p, 4);
		memcpy(&seq, p + 4, 4);
		*need = len;
		if (rxbuf_unread(q) < len)
			return true;
		*need = 0;
		if (seq != *want || len != frame_len(seq))
			return false;
		for (uint32_t i = HDR; i < len; i++)
			if (p[i] != frame_byte(seq, i))
				return false;
		rxbuf_take(q, len);
		done += len;
		(*want)++;
	}
	return true;
}

static void stream_test(size_t budget, const char *what)
{
	struct stream s = { 0 };
	struct rxbuf q;
	uint32_t want = 0;
	size_t need = HDR;
	bool intact = true;

	rxbuf_init(&q, CAP);
	while (intact && want < 20000) {
		/* One receive: some of the room, as TCP delivers. */
		size_t room = rxbuf_make_room(&q, need), n = room ? 1 + next_rand() % room : 0;

		for (size_t i = 0; i < n; i++)
			q.data[q.used++] = stream_byte(&s);
		intact = read_frames(&q, &want, budget, &need);
	}
	tap_ok(intact && want >= 20000, "%s: 20000 frames of 8 B .. 64 KiB whole and in order", what);
	tap_ok(q.moved <= 2 * s.sent, "%s: moved %llu bytes for %llu received (at most twice)", what,
	       (unsigned long long)q.moved, (unsigned long long)s.sent);
	rxbuf_free(&q);
}

int main(void)
{
	struct rxbuf q;

	rxbuf_init(&q, CAP);
	tap_ok(rxbuf_make_room(&q, HDR) == CAP && q.used == 0, "empty: the whole buffer is room");

	/* A full buffer of 64-byte frames taken one by one: nothing moves while taking. */
	q.used = CAP;
	for (unsigned int i = 0; i < CAP / 64 - 1; i++)
		rxbuf_take(&q, 64);
	tap_ok(q.moved == 0 && rxbuf_unread(&q) == 64, "taking frames moves nothing");
	tap_ok(rxbuf_make_room(&q, 100) == CAP - 64 && q.moved == 64 && q.head == 0,
	       "before the next write the 64-byte rest moves to the front");

	/* More unread than taken, and the frame begun fits: no move, the write goes behind. */
	q.used = CAP / 2;
	rxbuf_take(&q, 1000);
	tap_ok(rxbuf_make_room(&q, CAP / 2) == CAP / 2 && q.head == 1000 && q.moved == 64,
	       "a large rest that a frame fits behind stays where it is");
	/* ... unless the frame begun does not fit behind head. */
	tap_ok(rxbuf_make_room(&q, CAP - 10) == CAP / 2 + 1000 && q.head == 0 &&
	       q.moved == 64 + CAP / 2 - 1000, "a frame that does not fit behind head forces the move");

	/* Full, with whole frames left for the reader (need 0): no room, no move. */
	q.used = CAP;
	rxbuf_take(&q, 10);
	tap_ok(rxbuf_make_room(&q, 0) == 0 && q.head == 10, "full with frames left: no room, no move");
	rxbuf_free(&q);

	stream_test(SIZE_MAX, "whole buffer per pass");
	stream_test(4096, "4 KiB per pass (a budget, as the bridge's RX_BATCH)");
	return tap_done();
}
