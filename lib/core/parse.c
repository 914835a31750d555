// SPDX-License-Identifier: MIT
/* lib/core (uses errors): size and number parsing for the library, the server and the tools. */
#include "ivshmem/util.h"

#include "core/error.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int ivshmem_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || !*s || !isdigit((unsigned char)*s))
		return ivshmem_fail(EINVAL, "'%s' is not a number", s ? s : "");
	errno = 0;
	v = strtoull(s, &end, 0);
	if (*end)
		return ivshmem_fail(EINVAL, "'%s' is not a number", s);
	if (errno == ERANGE || v > max)
		return ivshmem_fail(ERANGE, "%s is too large (at most %llu)", s,
				    (unsigned long long)max);
	*out = v;
	return 0;
}

int ivshmem_parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned int shift = 0;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return ivshmem_fail(EINVAL, "'%s' is not a size (e.g. 4096, 64K, 16M, 1G)",
				    s ? s : "");
	errno = 0;
	/* Decimal, or hex with 0x (offsets are often written so); never octal. */
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && isxdigit((unsigned char)s[2]))
		v = strtoull(s + 2, &end, 16);
	else
		v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return ivshmem_fail(ERANGE, "size '%s' is too large", s);
	switch (toupper((unsigned char)*end)) {
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	case 'T': shift = 40; end++; break;
	case 'P': shift = 50; end++; break;
	case 'E': shift = 60; end++; break;
	default: break;
	}
	if (shift && (strcasecmp(end, "iB") == 0 || strcasecmp(end, "B") == 0))
		end += strlen(end);
	else if (!shift && strcasecmp(end, "B") == 0)
		end++;
	if (*end)
		return ivshmem_fail(EINVAL, "'%s' is not a size (e.g. 4096, 0x1000, 64K, 16M, 1G)", s);
	if (shift && v > (UINT64_MAX >> shift))
		return ivshmem_fail(ERANGE, "size '%s' is too large", s);
	*out = (uint64_t)v << shift;
	return 0;
}

uint64_t ivshmem_pow2_roundup(uint64_t v)
{
	if (v <= 1)
		return v;
	if (v > (UINT64_C(1) << 63))
		return 0;
	return UINT64_C(1) << (64 - __builtin_clzll(v - 1));
}
