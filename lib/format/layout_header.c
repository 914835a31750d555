// SPDX-License-Identifier: MIT
/* lib/format: decode and validate a layout header snapshot (docs/layout.md). */
#include "format/layout_header.h"

#include "core/error.h"

#include <errno.h>
#include <inttypes.h>

int ivshmem_layout_header_decode(const uint8_t *raw, uint64_t mapped,
				 struct ivshmem_layout_header *h)
{
	uint32_t version, hsize, dir_off, dir_esize, dir_cap;
	uint64_t region_size, data_off;

	if (mapped < IVSHMEM_LAYOUT_HEADER_SIZE)
		return 0;	/* too small to hold one: treat as unformatted */
	if (memcmp(raw + IVSHMEM_H_MAGIC, IVSHMEM_LAYOUT_MAGIC, 8) != 0)
		return 0;
	version = ivshmem_get_le32(raw + IVSHMEM_H_VERSION);
	hsize = ivshmem_get_le32(raw + IVSHMEM_H_HEADER_SIZE);
	region_size = ivshmem_get_le64(raw + IVSHMEM_H_REGION_SIZE);
	dir_off = ivshmem_get_le32(raw + IVSHMEM_H_DIR_OFFSET);
	dir_esize = ivshmem_get_le32(raw + IVSHMEM_H_DIR_ENTRY_SIZE);
	dir_cap = ivshmem_get_le32(raw + IVSHMEM_H_DIR_CAPACITY);
	data_off = ivshmem_get_le64(raw + IVSHMEM_H_DATA_OFFSET);
	if (version != IVSHMEM_LAYOUT_VERSION)
		return ivshmem_fail(EPROTO, "corrupt layout header: unsupported version %" PRIu32
				    " (this library knows %u)", version, IVSHMEM_LAYOUT_VERSION);
	if (hsize != IVSHMEM_LAYOUT_HEADER_SIZE || dir_off != IVSHMEM_LAYOUT_DIR_OFFSET ||
	    dir_esize != IVSHMEM_LAYOUT_DIR_ENTRY_SIZE || data_off != IVSHMEM_LAYOUT_HEADER_SIZE)
		return ivshmem_fail(EBADMSG, "corrupt layout header: header size %" PRIu32
				    ", directory at %" PRIu32 " with %" PRIu32 "-byte entries, data at %"
				    PRIu64 " (want 4096, 256, 64, 4096)", hsize, dir_off, dir_esize,
				    data_off);
	if (dir_cap > IVSHMEM_LAYOUT_DIR_MAX)
		return ivshmem_fail(EBADMSG, "corrupt layout header: %" PRIu32
				    " directory slots (at most %u)", dir_cap, IVSHMEM_LAYOUT_DIR_MAX);
	if (region_size < 2 * IVSHMEM_LAYOUT_HEADER_SIZE || region_size > mapped)
		return ivshmem_fail(EBADMSG, "corrupt layout header: region size %" PRIu64
				    " (mapped: %" PRIu64 ", minimum 8192)", region_size, mapped);
	if (!memchr(raw + IVSHMEM_LAYOUT_NAME_OFFSET, 0, IVSHMEM_LAYOUT_NAME_LEN))
		return ivshmem_fail(EBADMSG, "corrupt layout header: the name is not NUL-terminated");
	h->region_size = region_size;
	h->dir_capacity = dir_cap;
	h->flags = ivshmem_get_le32(raw + IVSHMEM_H_FLAGS);
	h->format_id = ivshmem_get_le64(raw + IVSHMEM_H_FORMAT_ID);
	memcpy(h->name, raw + IVSHMEM_LAYOUT_NAME_OFFSET, IVSHMEM_LAYOUT_NAME_LEN);
	return 1;
}
