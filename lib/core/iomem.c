// SPDX-License-Identifier: MIT
/*
 * lib/core: uses nothing.
 *
 * Aligned-only copies for device memory. The unaligned head and tail are
 * done a byte at a time, the middle in aligned 8-byte words, each word
 * assembled in a register so the compiler never emits a wider or
 * misaligned access to the device side.
 */
#include "ivshmem/iomem.h"

#include <string.h>

#define WORD sizeof(uint64_t)

void ivshmem_iomem_read(void *dst, const volatile void *src, size_t len)
{
	const volatile uint8_t *s = src;
	uint8_t *d = dst;

	while (len && ((uintptr_t)s & (WORD - 1))) {
		*d++ = *s++;
		len--;
	}
	while (len >= WORD) {
		uint64_t v = *(const volatile uint64_t *)s;

		memcpy(d, &v, WORD);	/* dst is ordinary memory: unaligned is fine */
		s += WORD;
		d += WORD;
		len -= WORD;
	}
	while (len--)
		*d++ = *s++;
}

void ivshmem_iomem_write(volatile void *dst, const void *src, size_t len)
{
	volatile uint8_t *d = dst;
	const uint8_t *s = src;

	while (len && ((uintptr_t)d & (WORD - 1))) {
		*d++ = *s++;
		len--;
	}
	while (len >= WORD) {
		uint64_t v;

		memcpy(&v, s, WORD);
		*(volatile uint64_t *)d = v;
		s += WORD;
		d += WORD;
		len -= WORD;
	}
	while (len--)
		*d++ = *s++;
}
