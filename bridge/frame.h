/* SPDX-License-Identifier: MIT */
/*
 * The bridge wire format, version 1 (docs/multihost.md "Wire format"): a
 * 16-byte little-endian header and a payload per frame. Pure code: encoders
 * write into a caller's buffer, the decoder validates a header once and every
 * fixed-size payload, so nothing a remote bridge sends is trusted after this.
 */
#ifndef BRIDGE_FRAME_H
#define BRIDGE_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FRAME_MAGIC		"IVBR"
#define FRAME_VERSION		1u
#define FRAME_HDR		16u
#define FRAME_NAME_LEN		64u	/* NUL-padded; 1-63 characters */
#define FRAME_NONCE_LEN		32u
#define FRAME_MAC_LEN		32u
#define FRAME_HELLO_LEN		(FRAME_NONCE_LEN + 8u + FRAME_NAME_LEN)	/* 104 */
#define FRAME_OPEN_LEN		(8u + FRAME_NAME_LEN)			/* 72 */
#define FRAME_MIN_PAYLOAD	4096u	/* the smallest max_payload a HELLO may announce */

enum frame_type {
	FRAME_HELLO = 1, FRAME_AUTH, FRAME_OPEN, FRAME_DATA, FRAME_CREDIT, FRAME_CLOSE,
	FRAME_RESET, FRAME_PING,
};

struct frame_hdr {
	uint8_t type;
	uint32_t channel;
	uint32_t len;
};

struct frame_hello {
	uint8_t nonce[FRAME_NONCE_LEN];
	uint32_t max_payload, keepalive_ms;
	char name[FRAME_NAME_LEN];
};

struct frame_open {
	uint32_t window, max_record;
	char name[FRAME_NAME_LEN];
};

/* Encode a header into @out (FRAME_HDR bytes). */
void frame_put_hdr(uint8_t *out, enum frame_type type, uint32_t channel, uint32_t len);
/* Encode payloads into @out (FRAME_HELLO_LEN, FRAME_OPEN_LEN, 4 bytes). */
void frame_put_hello(uint8_t *out, const struct frame_hello *h);
void frame_put_open(uint8_t *out, const struct frame_open *o);
void frame_put_credit(uint8_t *out, uint32_t bytes);

/*
 * Decode and validate the header at @in (FRAME_HDR bytes): magic, version,
 * flags 0, a known type, the channel field (0 for link frames, not 0 for
 * channel frames), the length (exact for fixed-size payloads, at most
 * @max_payload). Returns 0, or -1 with *@err a constant sentence.
 */
int frame_get_hdr(const uint8_t *in, uint32_t max_payload, struct frame_hdr *h, const char **err);
/* Decode payloads (of the exact length the header allowed); -1 and *@err when invalid. */
int frame_get_hello(const uint8_t *in, struct frame_hello *h, const char **err);
int frame_get_open(const uint8_t *in, struct frame_open *o, const char **err);
uint32_t frame_get_credit(const uint8_t *in);

/* A valid bridge or channel name: 1-63 of A-Z a-z 0-9 . _ - */
bool frame_name_ok(const char *name);
/* The credit a DATA frame of @len bytes costs: 8 + len rounded up to 8. */
uint64_t frame_data_cost(uint32_t len);
const char *frame_type_name(unsigned int type);

#endif
