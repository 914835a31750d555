/* SPDX-License-Identifier: MIT */
/*
 * lib/core: what a backend fills in. Private to libivshmem: one file per
 * backend (lib/backend/) implements an open function and an ops table;
 * lib/core/region.c dispatches to the ops. Includes only the public region API.
 */
#ifndef IVSHMEM_REGION_INTERNAL_H
#define IVSHMEM_REGION_INTERNAL_H

#include "ivshmem/region.h"

struct ivshmem_backend_ops {
	/* NULL members mean "this backend cannot": the caller gets -ENOTSUP. */
	int (*notify)(struct ivshmem_region *r, uint16_t peer, uint16_t vector);
	int (*event_fd)(struct ivshmem_region *r, unsigned int vector);
	int (*peer_list)(struct ivshmem_region *r, uint16_t *ids, size_t max);
	int (*peer_vectors)(struct ivshmem_region *r, uint16_t peer);
	int (*control_fd)(struct ivshmem_region *r);
	int (*next_peer_event)(struct ivshmem_region *r, struct ivshmem_peer_event *ev);
	/* Unmap and release everything; the region struct itself is freed by the caller. */
	void (*close)(struct ivshmem_region *r);
};

struct ivshmem_region {
	const struct ivshmem_backend_ops *ops;
	enum ivshmem_backend kind;
	void *base;
	uint64_t size;
	int own_id;		/* -1: none */
	unsigned int vectors;	/* own vectors with an event fd; 0: no interrupts */
	bool device_memory;	/* uncached/device mapping: aligned accesses only */
	void *priv;		/* backend state */
	struct ivshmem_mapguard *guard;	/* SIGBUS registration (mapguard.c); NULL: none */
};

/*
 * lib/core/mapguard.c: register @r's mapping (base, size) with the process-wide
 * SIGBUS handler, which turns a fault in a vanished part into zero pages and a
 * lost flag (see there). lib/open registers every region it opens; close
 * deregisters. 0 or -errno.
 */
int ivshmem_mapguard_add(struct ivshmem_region *r);
void ivshmem_mapguard_remove(struct ivshmem_region *r);
/* True once a fault in @r's mapping was caught: its memory reads as zeros now. */
bool ivshmem_mapguard_lost(const struct ivshmem_region *r);

#endif
