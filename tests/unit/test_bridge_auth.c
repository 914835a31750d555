// SPDX-License-Identifier: MIT
/* bridge/auth.c: SHA-256 (FIPS 180-4 examples), HMAC-SHA256 (RFC 4231), the link AUTH value. */
#include "tap.h"

#include "auth.h"

#include <stdio.h>
#include <string.h>

static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

static void sha(const void *data, size_t len, size_t repeat, const char *want, const char *name)
{
	struct sha256 s;
	uint8_t d[SHA256_LEN];
	char h[65];

	sha256_init(&s);
	for (size_t i = 0; i < repeat; i++)
		sha256_update(&s, data, len);
	sha256_final(&s, d);
	hex(d, sizeof(d), h);
	if (!tap_ok(strcmp(h, want) == 0, "SHA-256 %s", name))
		tap_diag("got %s", h);
}

static void hmac(const uint8_t *key, size_t klen, const void *data, size_t dlen, const char *want,
		 const char *name)
{
	const void *parts[] = { data };
	size_t lens[] = { dlen };
	uint8_t d[SHA256_LEN];
	char h[65];

	hmac_sha256(key, klen, parts, lens, 1, d);
	hex(d, sizeof(d), h);
	if (!tap_ok(strcmp(h, want) == 0, "HMAC-SHA256 RFC 4231 %s", name))
		tap_diag("got %s", h);
}

int main(void)
{
	uint8_t k[131], dd[50], a[FRAME_HELLO_LEN], b[FRAME_HELLO_LEN], m1[32], m2[32], m3[32];
	static const char t6[] = "Test Using Larger Than Block-Size Key - Hash Key First";
	static const char t7[] = "This is a test using a larger than block-size key and a larger than "
				 "block-size data. The key needs to be hashed before being used by the "
				 "HMAC algorithm.";

	sha("", 0, 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "(empty)");
	sha("abc", 3, 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "abc");
	sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, 1,
	    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1", "448-bit message");
	sha("a", 1, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
	    "one million 'a'");

	memset(k, 0x0b, 20);
	hmac(k, 20, "Hi There", 8,
	     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", "test case 1");
	hmac((const uint8_t *)"Jefe", 4, "what do ya want for nothing?", 28,
	     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", "test case 2");
	memset(k, 0xaa, 20);
	memset(dd, 0xdd, 50);
	hmac(k, 20, dd, 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
	     "test case 3");
	for (int i = 0; i < 25; i++)
		k[i] = (uint8_t)(i + 1);
	memset(dd, 0xcd, 50);
	hmac(k, 25, dd, 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
	     "test case 4");
	memset(k, 0xaa, 131);
	hmac(k, 131, t6, strlen(t6),
	     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", "test case 6");
	hmac(k, 131, t7, strlen(t7),
	     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2", "test case 7");

	/* The link AUTH: both sides agree, and role and order matter (no reflection). */
	memset(a, 1, sizeof(a));
	memset(b, 2, sizeof(b));
	auth_mac((const uint8_t *)"secretsecretsecret", 18, 'D', a, b, m1);
	auth_mac((const uint8_t *)"secretsecretsecret", 18, 'D', a, b, m2);
	tap_ok(auth_equal(m1, m2, 32), "AUTH is a function of secret, role and HELLOs");
	auth_mac((const uint8_t *)"secretsecretsecret", 18, 'A', b, a, m2);
	tap_ok(!auth_equal(m1, m2, 32), "the acceptor's AUTH differs from the dialer's (role, order)");
	auth_mac((const uint8_t *)"secretsecretsecreT", 18, 'D', a, b, m3);
	tap_ok(!auth_equal(m1, m3, 32), "another secret gives another AUTH");
	m3[0] = m1[0];
	memcpy(m3, m1, 31);
	m3[31] = m1[31] ^ 1;
	tap_ok(!auth_equal(m1, m3, 32), "auth_equal sees a difference in the last byte");
	return tap_done();
}
