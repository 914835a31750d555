/* SPDX-License-Identifier: MIT */
/*
 * The byte-stream framing `ivshmem send` puts around stdin and `ivshmem recv`
 * checks (docs/channel.md, "Byte streams"): a header record, the data in
 * non-empty records, an empty record, and an end record with the total length
 * and the CRC32C of the data. Every field is fixed-width little-endian.
 */
#ifndef IVSHMEM_TOOLS_MSG_STREAM_H
#define IVSHMEM_TOOLS_MSG_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STREAM_HEADER_LEN	16u	/* "IVSTREAM", u32 version 1, u32 flags 0 */
#define STREAM_END_LEN		24u	/* "IVSTREND", u64 length, u32 crc32c, u32 0 */

struct stream_sum {
	uint64_t len;		/* data bytes so far */
	uint32_t crc;		/* CRC32C of them (0 for none) */
};

/* CRC32C (Castagnoli, reflected 0x82F63B78, inverted in and out); chain from 0. */
uint32_t stream_crc32c(uint32_t crc, const void *buf, size_t len);

void stream_header(uint8_t out[STREAM_HEADER_LEN]);
/* True when a record of @len bytes is a stream header of a version we read. */
bool stream_is_header(const void *buf, size_t len);
void stream_add(struct stream_sum *s, const void *buf, size_t len);
void stream_end(const struct stream_sum *s, uint8_t out[STREAM_END_LEN]);
/*
 * Check the end record @buf of @len bytes against what arrived (@got).
 * 0 if they agree; else -1 with a sentence in @why.
 */
int stream_check_end(const struct stream_sum *got, const void *buf, size_t len, char *why,
		     size_t whylen);

#endif
