/* SPDX-License-Identifier: MIT */
/*
 * The region layout (docs/layout.md): a 4096-byte header at offset 0 with a
 * magic, a version, the region's name and a directory of named sections.
 *
 * Everything read from the region is untrusted: each field is copied out
 * once, validated, and only then used. Readers work on any mapping
 * (uncached ones included: all accesses go through ivshmem_read()).
 */
#ifndef IVSHMEM_LAYOUT_H
#define IVSHMEM_LAYOUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ivshmem/region.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Fixed offsets and sizes; see docs/layout.md. */
#define IVSHMEM_LAYOUT_MAGIC		"IVSHMLAY"	/* 8 bytes at offset 0, no NUL */
#define IVSHMEM_LAYOUT_VERSION		1u		/* u32 at offset 8 */
#define IVSHMEM_LAYOUT_HEADER_SIZE	4096u
#define IVSHMEM_LAYOUT_NAME_OFFSET	64u
#define IVSHMEM_LAYOUT_NAME_LEN		64u		/* including the NUL */
#define IVSHMEM_LAYOUT_LOCK_OFFSET	128u
#define IVSHMEM_LAYOUT_DIR_OFFSET	256u
#define IVSHMEM_LAYOUT_DIR_ENTRY_SIZE	64u
#define IVSHMEM_LAYOUT_DIR_MAX		60u
#define IVSHMEM_SECTION_NAME_LEN	32u		/* including the NUL */
#define IVSHMEM_SECTION_ALIGN		4096u

enum ivshmem_section_type {
	IVSHMEM_SECTION_FREE = 0,
	IVSHMEM_SECTION_CHANNEL = 1,
	IVSHMEM_SECTION_RAW = 2,
};

/* A validated copy of a directory entry. */
struct ivshmem_section {
	char name[IVSHMEM_SECTION_NAME_LEN];
	uint32_t type;
	uint32_t flags;
	uint64_t offset;	/* from the start of the region */
	uint64_t size;
	unsigned int slot;	/* directory index */
};

/*
 * 1: a valid header; its name (NUL-terminated) copied to @name.
 * 0: no header (the magic is absent). <0: corrupt header (ivshmem_errmsg() says why).
 * @name may be NULL to only check; a name longer than @len - 1 is cut.
 */
int ivshmem_layout_name(const struct ivshmem_region *r, char *name, size_t len);

/* Print the header and directory in human-readable form; 0 if there is no header, 1 if printed. */
int ivshmem_layout_print(const struct ivshmem_region *r, FILE *out);

/*
 * Write a fresh header named @name (may be NULL or "") with an empty directory.
 * Destroys any previous layout: only while no peer uses the region.
 */
int ivshmem_layout_format(struct ivshmem_region *r, const char *name);

/* Valid sections into @out (at most @max); returns how many there are, or <0 (corrupt/no header). */
int ivshmem_layout_list(const struct ivshmem_region *r, struct ivshmem_section *out, size_t max);

/* Find section @name: 0 and *@out filled, -ENOENT, -ENODATA (no header) or another error. */
int ivshmem_layout_find(const struct ivshmem_region *r, const char *name,
			struct ivshmem_section *out);

/*
 * Add a section of @size bytes (rounded up to 4096) named @name: 0 and *@out
 * filled, -EEXIST (then *@out is the existing one), -ENOSPC, -ENOTSUP on
 * uncached mappings. Takes the layout lock; the caller must not hold it.
 */
int ivshmem_layout_add(struct ivshmem_region *r, const char *name, uint32_t type, uint64_t size,
		       struct ivshmem_section *out);

/*
 * The layout lock (docs/layout.md), for library code that must initialise a
 * section and publish it atomically (channel.c). Lock returns 0 or <0.
 * ivshmem_layout_add_locked() is ivshmem_layout_add() for a lock holder, with
 * an optional @init callback that initialises the section before it is published.
 */
int ivshmem_layout_lock(struct ivshmem_region *r, uint32_t *token);
void ivshmem_layout_unlock(struct ivshmem_region *r, uint32_t token);
int ivshmem_layout_add_locked(struct ivshmem_region *r, const char *name, uint32_t type,
			      uint64_t size, int (*init)(struct ivshmem_region *r,
							 const struct ivshmem_section *s, void *arg),
			      void *arg, struct ivshmem_section *out);

#ifdef __cplusplus
}
#endif

#endif
