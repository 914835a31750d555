// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the bridge's frame decoder (bridge/frame.c): what a
 * remote bridge sends over a link. The input is a byte stream read as frames,
 * the way bridge/proto.c reads its receive buffer: a header is validated, then
 * the payload of a fixed-size type is decoded and checked. Invariants: a
 * header that passes never claims more than the maximum payload, fixed-size
 * payloads have their exact length, decoded names are valid and NUL-terminated,
 * and encoding what was decoded gives the same bytes back.
 */
#include "../bridge/frame.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PAYLOAD 65536u

static void check_payload(const struct frame_hdr *h, const uint8_t *p)
{
	const char *err = NULL;
	uint8_t again[FRAME_HELLO_LEN];

	if (h->type == FRAME_HELLO) {
		struct frame_hello v;

		if (h->len != FRAME_HELLO_LEN)
			abort();
		if (frame_get_hello(p, &v, &err) == 0) {
			if (!frame_name_ok(v.name) || v.max_payload < FRAME_MIN_PAYLOAD)
				abort();
			frame_put_hello(again, &v);
			if (memcmp(again, p, FRAME_HELLO_LEN) != 0)
				abort();
		} else if (!err) {
			abort();
		}
	} else if (h->type == FRAME_OPEN) {
		struct frame_open v;

		if (h->len != FRAME_OPEN_LEN)
			abort();
		if (frame_get_open(p, &v, &err) == 0) {
			if (!frame_name_ok(v.name) || frame_data_cost(v.max_record) > v.window)
				abort();
			frame_put_open(again, &v);
			if (memcmp(again, p, FRAME_OPEN_LEN) != 0)
				abort();
		} else if (!err) {
			abort();
		}
	} else if (h->type == FRAME_CREDIT) {
		if (h->len != 4)
			abort();
		(void)frame_get_credit(p);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	while (size - off >= FRAME_HDR) {
		struct frame_hdr h;
		const char *err = NULL;
		uint8_t *copy;

		if (frame_get_hdr(data + off, MAX_PAYLOAD, &h, &err) < 0) {
			if (!err)
				abort();
			return 0;	/* the bridge drops the link here */
		}
		if (h.len > MAX_PAYLOAD || h.type < FRAME_HELLO || h.type > FRAME_PING)
			abort();
		if (size - off - FRAME_HDR < h.len)
			return 0;	/* an unfinished frame: wait for more */
		/* An exact-size copy, so ASan catches a decoder that reads past the payload. */
		copy = malloc(h.len ? h.len : 1);
		memcpy(copy, data + off + FRAME_HDR, h.len);
		check_payload(&h, copy);
		free(copy);
		off += FRAME_HDR + h.len;
	}
	return 0;
}
