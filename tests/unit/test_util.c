// SPDX-License-Identifier: MIT
#include "ivshmem/util.h"
#include "tap.h"

#include <errno.h>

int main(void)
{
	static const struct {
		const char *in;
		int ret;
		uint64_t want;
	} sizes[] = {
		{ "0", 0, 0 },
		{ "4096", 0, 4096 },
		{ "4K", 0, 4096 },
		{ "4k", 0, 4096 },
		{ "16M", 0, 16u << 20 },
		{ "1G", 0, 1u << 30 },
		{ "64G", 0, 64ull << 30 },
		{ "2MiB", 0, 2u << 20 },
		{ "3KB", 0, 3072 },
		{ "100B", 0, 100 },
		{ "16E", -ERANGE, 0 },
		{ "99999999999999999999", -ERANGE, 0 },
		{ "", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
		{ " 4K", -EINVAL, 0 },
		{ "4X", -EINVAL, 0 },
		{ "4KK", -EINVAL, 0 },
		{ "M", -EINVAL, 0 },
		{ "0x10", 0, 16 },
		{ "0x200000", 0, 0x200000 },
		{ "0X1fK", 0, 31 << 10 },
		{ "0x", -EINVAL, 0 },
		{ "0xg", -EINVAL, 0 },
		{ "010", 0, 10 },
	};
	uint64_t v;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		v = 12345;
		int ret = ivshmem_parse_size(sizes[i].in, &v);

		tap_ok(ret == sizes[i].ret && (ret < 0 || v == sizes[i].want), "parse_size('%s')",
		       sizes[i].in);
	}
	tap_ok(ivshmem_parse_size(NULL, &v) == -EINVAL, "parse_size(NULL) is EINVAL");

	tap_is(ivshmem_pow2_roundup(0), 0, "roundup 0");
	tap_is(ivshmem_pow2_roundup(1), 1, "roundup 1");
	tap_is(ivshmem_pow2_roundup(3), 4, "roundup 3");
	tap_is(ivshmem_pow2_roundup(4096), 4096, "roundup exact");
	tap_is(ivshmem_pow2_roundup(5000000), 8388608, "roundup 5M");
	tap_ok(ivshmem_pow2_roundup((1ull << 63) + 1) == 0, "roundup overflow gives 0");

	tap_ok(ivshmem_parse_uint("64", 64, &v) == 0 && v == 64, "parse_uint at max");
	tap_ok(ivshmem_parse_uint("65", 64, &v) == -ERANGE, "parse_uint above max");
	tap_ok(ivshmem_parse_uint("0x10", 64, &v) == 0 && v == 16, "parse_uint hex");
	tap_ok(ivshmem_parse_uint("1a", 64, &v) == -EINVAL, "parse_uint junk");
	tap_ok(ivshmem_parse_uint("-1", 64, &v) == -EINVAL, "parse_uint negative");
	return tap_done();
}
