/* SPDX-License-Identifier: MIT */
/*
 * Authentication of a remote bridge (docs/multihost.md "Link setup"):
 * SHA-256 (FIPS 180-4), HMAC-SHA256 (RFC 2104; checked against RFC 4231 in
 * tests/unit/test_bridge_auth.c), the AUTH value of a link, a constant-time
 * compare, and loading the shared secret from a file that only its owner may
 * read.
 */
#ifndef BRIDGE_AUTH_H
#define BRIDGE_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"

#define SHA256_LEN	32
#define SECRET_MIN	16
#define SECRET_MAX	4096

struct sha256 {
	uint32_t h[8];
	uint64_t bytes;
	uint8_t buf[64];
	size_t used;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, uint8_t out[SHA256_LEN]);

/* HMAC-SHA256 over the concatenation of @n parts (@parts[i], @lens[i]). */
void hmac_sha256(const uint8_t *key, size_t keylen, const void *const *parts, const size_t *lens,
		 int n, uint8_t out[SHA256_LEN]);

/*
 * The AUTH a side with @role ('D' dialer, 'A' acceptor) sends:
 * HMAC(secret, "ivshmem-bridge auth v1" || role || own HELLO || received HELLO).
 */
void auth_mac(const uint8_t *secret, size_t secretlen, char role,
	      const uint8_t own_hello[FRAME_HELLO_LEN], const uint8_t peer_hello[FRAME_HELLO_LEN],
	      uint8_t out[SHA256_LEN]);

/* 1 if equal; the time does not depend on where they differ. */
int auth_equal(const uint8_t *a, const uint8_t *b, size_t len);

/*
 * Read the secret from @path: a regular file, not readable or writable by
 * group or others, SECRET_MIN..SECRET_MAX bytes once one trailing newline is
 * dropped. Returns the length, or -1 with a sentence in @err.
 */
int secret_load(const char *path, uint8_t *out, size_t max, char *err, size_t errlen);

#endif
