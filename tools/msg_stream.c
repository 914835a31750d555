// SPDX-License-Identifier: MIT
/*
 * Byte-stream framing for `ivshmem send`/`recv` (msg_stream.h,
 * docs/channel.md "Byte streams"), with a CRC32C: in hardware where the CPU
 * has it (SSE 4.2), else eight table look-ups per 8 bytes.
 */
#include "msg_stream.h"

#include <endian.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define CRC32C_POLY	0x82f63b78u	/* reflected */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ CRC32C_POLY : c >> 1;
		crc_table[0][i] = c;
	}
	for (int t = 1; t < 8; t++)
		for (int i = 0; i < 256; i++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
					  crc_table[0][crc_table[t - 1][i] & 0xff];
}

static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t n)
{
	for (; n && ((uintptr_t)p & 7); n--)
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	for (; n >= 8; n -= 8, p += 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		v = le64toh(v) ^ crc;
		crc = crc_table[7][v & 0xff] ^ crc_table[6][(v >> 8) & 0xff] ^
		      crc_table[5][(v >> 16) & 0xff] ^ crc_table[4][(v >> 24) & 0xff] ^
		      crc_table[3][(v >> 32) & 0xff] ^ crc_table[2][(v >> 40) & 0xff] ^
		      crc_table[1][(v >> 48) & 0xff] ^ crc_table[0][v >> 56];
	}
	for (; n; n--)
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t n)
{
	uint64_t c = crc;

	for (; n && ((uintptr_t)p & 7); n--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	for (; n >= 8; n -= 8, p += 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	for (; n; n--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return (uint32_t)c;
}

static bool have_hw(void)
{
	return __builtin_cpu_supports("sse4.2");
}
#else
static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t n)
{
	return crc_sw(crc, p, n);
}

static bool have_hw(void)
{
	return false;
}
#endif

uint32_t stream_crc32c(uint32_t crc, const void *buf, size_t len)
{
	crc = ~crc;
	if (have_hw()) {
		crc = crc_hw(crc, buf, len);
	} else {
		pthread_once(&crc_once, crc_init);
		crc = crc_sw(crc, buf, len);
	}
	return ~crc;
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

void stream_header(uint8_t out[STREAM_HEADER_LEN])
{
	memcpy(out, "IVSTREAM", 8);
	put32(out + 8, 1);
	put32(out + 12, 0);
}

bool stream_is_header(const void *buf, size_t len)
{
	return len == STREAM_HEADER_LEN && memcmp(buf, "IVSTREAM", 8) == 0 &&
	       get32((const uint8_t *)buf + 8) == 1;
}

void stream_add(struct stream_sum *s, const void *buf, size_t len)
{
	s->len += len;
	s->crc = stream_crc32c(s->crc, buf, len);
}

void stream_end(const struct stream_sum *s, uint8_t out[STREAM_END_LEN])
{
	memcpy(out, "IVSTREND", 8);
	put64(out + 8, s->len);
	put32(out + 16, s->crc);
	put32(out + 20, 0);
}

int stream_check_end(const struct stream_sum *got, const void *buf, size_t len, char *why,
		     size_t whylen)
{
	const uint8_t *p = buf;

	if (len != STREAM_END_LEN || memcmp(p, "IVSTREND", 8) != 0) {
		snprintf(why, whylen, "the end record is malformed (%zu bytes)", len);
		return -1;
	}
	if (get64(p + 8) != got->len || get32(p + 16) != got->crc) {
		snprintf(why, whylen, "received %" PRIu64 " bytes with CRC32C %08" PRIx32 ", the "
			 "sender sent %" PRIu64 " bytes with CRC32C %08" PRIx32, got->len, got->crc,
			 get64(p + 8), get32(p + 16));
		return -1;
	}
	return 0;
}
