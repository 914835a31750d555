// SPDX-License-Identifier: MIT
/* bridge/frame.c and pending.c: encode/decode round trips, every header check, the bounded queue. */
#include "tap.h"

#include "frame.h"
#include "pending.h"

#include <string.h>

static int hdr_err(const uint8_t *p, const char *want)
{
	struct frame_hdr h;
	const char *err = NULL;

	return frame_get_hdr(p, 1u << 20, &h, &err) < 0 && err && strstr(err, want);
}

int main(void)
{
	uint8_t p[FRAME_HDR], pay[FRAME_HELLO_LEN], good[FRAME_HDR];
	struct frame_hdr h;
	struct frame_hello he = { .max_payload = 65536, .keepalive_ms = 1000, .name = "host-A.1" }, he2;
	struct frame_open op = { .window = 65536, .max_record = 4096, .name = "ctl" }, op2;
	struct pending q;
	const char *err;
	const void *data;
	uint32_t len;

	frame_put_hdr(good, FRAME_DATA, 7, 300);
	tap_ok(frame_get_hdr(good, 1u << 20, &h, &err) == 0 && h.type == FRAME_DATA && h.channel == 7 &&
	       h.len == 300, "DATA header round trip");
	tap_ok(memcmp(good, "IVBR\x01\x04\x00\x00\x07\x00\x00\x00\x2c\x01\x00\x00", 16) == 0,
	       "header bytes are little-endian as docs/multihost.md says");
	memcpy(p, good, 16);
	p[0] = 'X';
	tap_ok(hdr_err(p, "bad magic"), "bad magic is refused");
	memcpy(p, good, 16);
	p[4] = 2;
	tap_ok(hdr_err(p, "version"), "another version is refused");
	memcpy(p, good, 16);
	p[6] = 1;
	tap_ok(hdr_err(p, "flags"), "non-zero flags are refused");
	memcpy(p, good, 16);
	p[5] = 9;
	tap_ok(hdr_err(p, "unknown frame type"), "type 9 is refused");
	p[5] = 0;
	tap_ok(hdr_err(p, "unknown frame type"), "type 0 is refused");
	frame_put_hdr(p, FRAME_DATA, 0, 10);
	tap_ok(hdr_err(p, "channel id 0"), "a channel frame for id 0 is refused");
	frame_put_hdr(p, FRAME_PING, 3, 0);
	tap_ok(hdr_err(p, "names a channel"), "a link frame with a channel is refused");
	frame_put_hdr(p, FRAME_CREDIT, 3, 8);
	tap_ok(hdr_err(p, "wrong payload length"), "CREDIT of 8 bytes is refused");
	frame_put_hdr(p, FRAME_HELLO, 0, 103);
	tap_ok(hdr_err(p, "wrong payload length"), "a short HELLO is refused");
	frame_put_hdr(p, FRAME_DATA, 1, (1u << 20) + 1);
	tap_ok(hdr_err(p, "longer than the announced maximum"), "DATA above max_payload is refused");
	frame_put_hdr(p, FRAME_DATA, 1, 1u << 20);
	tap_ok(frame_get_hdr(p, 1u << 20, &h, &err) == 0, "DATA of exactly max_payload is fine");

	frame_put_hello(pay, &he);
	tap_ok(frame_get_hello(pay, &he2, &err) == 0 && he2.max_payload == 65536 &&
	       he2.keepalive_ms == 1000 && strcmp(he2.name, "host-A.1") == 0, "HELLO round trip");
	pay[40 + 10] = 'x';	/* a byte after the name's NUL */
	tap_ok(frame_get_hello(pay, &he2, &err) < 0 && strstr(err, "NUL-padded"),
	       "HELLO with bytes after the name's NUL is refused");
	frame_put_hello(pay, &he);
	pay[40] = '/';
	tap_ok(frame_get_hello(pay, &he2, &err) < 0 && strstr(err, "invalid name"), "a bad name is refused");
	he.max_payload = 100;
	frame_put_hello(pay, &he);
	tap_ok(frame_get_hello(pay, &he2, &err) < 0, "HELLO with max_payload below 4096 is refused");
	frame_put_open(pay, &op);
	tap_ok(frame_get_open(pay, &op2, &err) == 0 && op2.window == 65536 && op2.max_record == 4096 &&
	       strcmp(op2.name, "ctl") == 0, "OPEN round trip");
	op.max_record = 65536;
	frame_put_open(pay, &op);
	tap_ok(frame_get_open(pay, &op2, &err) < 0, "OPEN whose window cannot hold one record is refused");
	frame_put_credit(pay, 123456);
	tap_ok(frame_get_credit(pay) == 123456, "CREDIT round trip");
	tap_ok(frame_data_cost(0) == 8 && frame_data_cost(1) == 16 && frame_data_cost(8) == 16 &&
	       frame_data_cost(9) == 24, "DATA cost: 8 + length rounded up to 8");
	tap_ok(frame_name_ok("a") && !frame_name_ok("") && !frame_name_ok("a b") &&
	       frame_name_ok("0123456789012345678901234567890123456789012345678901234567890ab") &&
	       !frame_name_ok("0123456789012345678901234567890123456789012345678901234567890abc"),
	       "names: 1 to 63 characters of the allowed set");

	/* The queue holds exactly its capacity of costs, in order, and refuses more. */
	tap_ok(pending_init(&q, 64) == 0, "pending: 64 bytes");
	tap_ok(pending_push(&q, "abcdefghij", 10) == 0 && pending_push(&q, "", 0) == 0 &&
	       pending_push(&q, "0123456789abcdefghijklmn", 24) == 0, "pending: 24 + 8 + 32 bytes fit");
	tap_ok(pending_push(&q, "x", 1) < 0, "pending: a 65th byte does not");
	tap_ok(pending_front(&q, &data, &len) == 0 && len == 10 && memcmp(data, "abcdefghij", 10) == 0,
	       "pending: first in, first out");
	tap_ok(pending_pop(&q) == 24 && pending_pop(&q) == 8, "pending: pop returns the cost");
	tap_ok(pending_push(&q, "0123456789abcdefghijklm", 23) == 0, "pending: wraps by moving to the front");
	tap_ok(pending_front(&q, &data, &len) == 0 && len == 24 && pending_pop(&q) == 32 &&
	       pending_front(&q, &data, &len) == 0 && len == 23 &&
	       memcmp(data, "0123456789abcdefghijklm", 23) == 0, "pending: order kept across the move");
	pending_free(&q);
	return tap_done();
}
