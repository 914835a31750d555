/* SPDX-License-Identifier: MIT */
/*
 * lib/format: the region layout header (docs/layout.md) as bytes. Pure
 * functions on a snapshot the caller copied out of shared memory once; no
 * region, no syscalls. Used by lib/msg/layout.c (which owns the format) and by
 * lib/guest/pci.c (which reads a device's name for name: selectors), so that
 * discovery below the region never calls up into the messaging layers.
 * Uses only core (errors).
 */
#ifndef IVSHMEM_FORMAT_LAYOUT_HEADER_H
#define IVSHMEM_FORMAT_LAYOUT_HEADER_H

#include "ivshmem/layout.h"

#include <endian.h>
#include <stdint.h>
#include <string.h>

/* Header field offsets (docs/layout.md). */
enum {
	IVSHMEM_H_MAGIC = 0,
	IVSHMEM_H_VERSION = 8,
	IVSHMEM_H_HEADER_SIZE = 12,
	IVSHMEM_H_REGION_SIZE = 16,
	IVSHMEM_H_DIR_OFFSET = 24,
	IVSHMEM_H_DIR_ENTRY_SIZE = 28,
	IVSHMEM_H_DIR_CAPACITY = 32,
	IVSHMEM_H_FLAGS = 36,
	IVSHMEM_H_DATA_OFFSET = 40,
	IVSHMEM_H_FORMAT_ID = 48,
	/* Directory entry fields, relative to the entry. */
	IVSHMEM_E_NAME = 0,
	IVSHMEM_E_TYPE = 32,
	IVSHMEM_E_FLAGS = 36,
	IVSHMEM_E_OFFSET = 40,
	IVSHMEM_E_SIZE = 48,
};

/* A validated snapshot of the header fields. */
struct ivshmem_layout_header {
	uint64_t region_size;
	uint32_t dir_capacity;
	uint32_t flags;
	uint64_t format_id;
	char name[IVSHMEM_LAYOUT_NAME_LEN];	/* NUL-terminated */
};

/*
 * Decode the IVSHMEM_LAYOUT_HEADER_SIZE bytes at @raw, the start of a mapping
 * of @mapped bytes. Returns 1 (valid, *@h filled), 0 (no header: no magic, or
 * too small to hold one) or a negative errno for a corrupt header
 * (ivshmem_errmsg() says which field).
 */
int ivshmem_layout_header_decode(const uint8_t *raw, uint64_t mapped,
				 struct ivshmem_layout_header *h);

static inline uint32_t ivshmem_get_le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static inline uint64_t ivshmem_get_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

static inline void ivshmem_put_le32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static inline void ivshmem_put_le64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

#endif
