// SPDX-License-Identifier: MIT
/*
 * libFuzzer: the ring over arbitrary shared-memory contents.
 *
 * Input: byte 0 picks the capacity (64 << (b % 8)), byte 1 the role and the
 * operation mix, then the 512-byte control block, then the data area (short
 * inputs are zero-padded). The control block and the data area live in their
 * own exactly-sized heap blocks, so ASan flags any access outside them. The
 * consumer must accept only records inside the data area and return within a
 * bounded number of steps; the producer must never write outside it.
 */
#include "ivshmem/ring.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void take(uint8_t *dst, size_t len, const uint8_t **src, size_t *left)
{
	size_t n = *left < len ? *left : len;

	memset(dst, 0, len);
	memcpy(dst, *src, n);
	*src += n;
	*left -= n;
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
	struct ivshmem_ring r;
	uint8_t *ctrl, *data, *out;
	uint64_t cap;
	uint8_t mode;
	size_t max;

	if (size < 2)
		return 0;
	cap = 64u << (in[0] % 8);
	mode = in[1];
	in += 2;
	size -= 2;
	ctrl = malloc(IVSHMEM_RING_CTRL_SIZE);
	data = malloc(cap);
	out = malloc(cap / 2 - 8);
	take(ctrl, IVSHMEM_RING_CTRL_SIZE, &in, &size);
	take(data, cap, &in, &size);

	if (ivshmem_ring_attach(&r, ctrl, data, cap,
				(mode & 1) ? IVSHMEM_RING_PRODUCER : IVSHMEM_RING_CONSUMER) == 0) {
		max = ivshmem_ring_max_record(&r);
		if (r.role == IVSHMEM_RING_CONSUMER) {
			for (int i = 0; i < 64; i++) {
				const void *buf;
				size_t len;
				int ret;

				if ((mode >> 1) & 1) {
					ret = ivshmem_ring_peek(&r, &buf, &len);
					if (ret < 0)
						break;
					if ((const uint8_t *)buf < data || len > max ||
					    (const uint8_t *)buf + len > data + cap)
						abort();
					memcpy(out, buf, len);
					ret = ivshmem_ring_release(&r, (mode >> 2) & 1 ? IVSHMEM_RING_MORE
										       : 0);
				} else {
					ret = (int)ivshmem_ring_recv(&r, out, max - (mode >> 3) % 8, 0);
				}
				if (ret < 0 && ret != -EMSGSIZE)
					break;
				ivshmem_ring_readable(&r);
			}
			ivshmem_ring_arm(&r, 0);
			ivshmem_ring_used(&r);
		} else {
			for (int i = 0; i < 64; i++) {
				size_t len = (size_t)(i * 37 + mode) % (max + 2);
				void *buf;
				int ret = ivshmem_ring_reserve(&r, len, &buf);

				if (ret == 0) {
					if ((uint8_t *)buf < data || (uint8_t *)buf + len > data + cap)
						abort();
					memset(buf, 0x5a, len);
					ret = ivshmem_ring_commit(&r, len, (i & 3) ? IVSHMEM_RING_MORE : 0);
				}
				if (ret < 0 && ret != -EMSGSIZE && ret != -EAGAIN)
					break;
			}
			ivshmem_ring_publish(&r);
			ivshmem_ring_writable(&r, 100);
			ivshmem_ring_arm(&r, 100);
		}
	}
	free(out);
	free(data);
	free(ctrl);
	return 0;
}
