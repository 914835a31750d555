/* SPDX-License-Identifier: MIT */
/*
 * Copies to and from memory that may be uncached or device memory (sysfs
 * resource2, VFIO, /dev/mem). Such mappings fault on unaligned accesses on
 * arm64, so every load and store here is naturally aligned; any offset and
 * length are fine. Register accesses are single aligned 32-bit accesses.
 */
#ifndef IVSHMEM_IOMEM_H
#define IVSHMEM_IOMEM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

void ivshmem_iomem_read(void *dst, const volatile void *src, size_t len);
void ivshmem_iomem_write(volatile void *dst, const void *src, size_t len);

static inline uint32_t ivshmem_reg_read32(const volatile void *regs, size_t offset)
{
	return *(const volatile uint32_t *)((const volatile char *)regs + offset);
}

static inline void ivshmem_reg_write32(volatile void *regs, size_t offset, uint32_t val)
{
	*(volatile uint32_t *)((volatile char *)regs + offset) = val;
}

#ifdef __cplusplus
}
#endif

#endif
