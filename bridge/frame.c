// SPDX-License-Identifier: MIT
/* The bridge wire format (frame.h, docs/multihost.md): encode, and decode with validation. */
#include "frame.h"

#include "format/layout_header.h"	/* the project's little-endian field helpers */

#include <string.h>


void frame_put_hdr(uint8_t *out, enum frame_type type, uint32_t channel, uint32_t len)
{
	memcpy(out, FRAME_MAGIC, 4);
	out[4] = FRAME_VERSION;
	out[5] = (uint8_t)type;
	out[6] = out[7] = 0;
	ivshmem_put_le32(out + 8, channel);
	ivshmem_put_le32(out + 12, len);
}

static void put_name(uint8_t *out, const char *name)
{
	size_t n = strnlen(name, FRAME_NAME_LEN - 1);

	memset(out, 0, FRAME_NAME_LEN);
	memcpy(out, name, n);
}

void frame_put_hello(uint8_t *out, const struct frame_hello *h)
{
	memcpy(out, h->nonce, FRAME_NONCE_LEN);
	ivshmem_put_le32(out + 32, h->max_payload);
	ivshmem_put_le32(out + 36, h->keepalive_ms);
	put_name(out + 40, h->name);
}

void frame_put_open(uint8_t *out, const struct frame_open *o)
{
	ivshmem_put_le32(out, o->window);
	ivshmem_put_le32(out + 4, o->max_record);
	put_name(out + 8, o->name);
}

void frame_put_credit(uint8_t *out, uint32_t bytes)
{
	ivshmem_put_le32(out, bytes);
}

/* Expected payload length of a type: exact (>= 0), or -1 for DATA (variable). */
static long fixed_len(unsigned int type)
{
	switch (type) {
	case FRAME_HELLO:
		return FRAME_HELLO_LEN;
	case FRAME_AUTH:
		return FRAME_MAC_LEN;
	case FRAME_OPEN:
		return FRAME_OPEN_LEN;
	case FRAME_CREDIT:
		return 4;
	case FRAME_DATA:
		return -1;
	default:
		return 0;
	}
}

static bool link_frame(unsigned int type)
{
	return type == FRAME_HELLO || type == FRAME_AUTH || type == FRAME_PING;
}

int frame_get_hdr(const uint8_t *in, uint32_t max_payload, struct frame_hdr *h, const char **err)
{
	uint8_t type = in[5];
	long want;

	*err = NULL;
	if (memcmp(in, FRAME_MAGIC, 4) != 0)
		*err = "bad magic (not a bridge frame)";
	else if (in[4] != FRAME_VERSION)
		*err = "unsupported frame version";
	else if (in[6] || in[7])
		*err = "reserved flags are not zero";
	else if (type < FRAME_HELLO || type > FRAME_PING)
		*err = "unknown frame type";
	if (*err)
		return -1;
	h->type = type;
	h->channel = ivshmem_get_le32(in + 8);
	h->len = ivshmem_get_le32(in + 12);
	want = fixed_len(type);
	if (link_frame(type) && h->channel != 0)
		*err = "a link frame names a channel";
	else if (!link_frame(type) && h->channel == 0)
		*err = "a channel frame has channel id 0";
	else if (want >= 0 && h->len != (uint32_t)want)
		*err = "wrong payload length for its type";
	else if (h->len > max_payload)
		*err = "payload longer than the announced maximum";
	return *err ? -1 : 0;
}

bool frame_name_ok(const char *name)
{
	size_t n = 0;

	for (; name[n]; n++) {
		char c = name[n];

		if (n >= FRAME_NAME_LEN - 1)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return n > 0;
}

/* A NUL-padded name field: characters, then only NULs. */
static int get_name(const uint8_t *in, char *name, const char **err)
{
	memcpy(name, in, FRAME_NAME_LEN);
	for (size_t i = strnlen(name, FRAME_NAME_LEN); i < FRAME_NAME_LEN; i++) {
		if (name[i]) {
			*err = "name field is not NUL-padded";
			return -1;
		}
	}
	if (!frame_name_ok(name)) {
		*err = "invalid name";
		return -1;
	}
	return 0;
}

int frame_get_hello(const uint8_t *in, struct frame_hello *h, const char **err)
{
	memcpy(h->nonce, in, FRAME_NONCE_LEN);
	h->max_payload = ivshmem_get_le32(in + 32);
	h->keepalive_ms = ivshmem_get_le32(in + 36);
	if (h->max_payload < FRAME_MIN_PAYLOAD) {
		*err = "HELLO announces a maximum payload below 4096";
		return -1;
	}
	if (h->keepalive_ms == 0) {
		*err = "HELLO announces keepalive 0";
		return -1;
	}
	return get_name(in + 40, h->name, err);
}

int frame_get_open(const uint8_t *in, struct frame_open *o, const char **err)
{
	o->window = ivshmem_get_le32(in);
	o->max_record = ivshmem_get_le32(in + 4);
	if (frame_data_cost(o->max_record) > o->window) {
		*err = "OPEN grants a window smaller than one record of its own maximum";
		return -1;
	}
	return get_name(in + 8, o->name, err);
}

uint32_t frame_get_credit(const uint8_t *in)
{
	return ivshmem_get_le32(in);
}

uint64_t frame_data_cost(uint32_t len)
{
	return 8u + (((uint64_t)len + 7u) & ~7ull);
}

const char *frame_type_name(unsigned int type)
{
	static const char *const names[] = { "?", "HELLO", "AUTH", "OPEN", "DATA", "CREDIT",
					     "CLOSE", "RESET", "PING" };

	return type < sizeof(names) / sizeof(names[0]) ? names[type] : "?";
}
