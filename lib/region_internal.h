/* SPDX-License-Identifier: MIT */
/*
 * What a backend fills in. Private to libivshmem: one file per backend
 * (backend_*.c) implements an open function and an ops table.
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
};

/*
 * Record why the current call fails and return -err, so a backend can write
 *   return ivshmem_fail(EACCES, "%s: not root", path);
 */
int ivshmem_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Backends. Each fills @r on success (r is zeroed, own_id = -1) or returns ivshmem_fail(). */
int ivshmem_file_open(struct ivshmem_region *r, const char *path, const struct ivshmem_open_opts *o);
int ivshmem_server_open(struct ivshmem_region *r, const char *socket_path,
			const struct ivshmem_open_opts *o);
/* Guest backends take a resolved PCI address "DDDD:BB:DD.F" (or a /dev node for the driver). */
int ivshmem_driver_open(struct ivshmem_region *r, const char *bdf_or_node,
			const struct ivshmem_open_opts *o);
int ivshmem_sysfs_open(struct ivshmem_region *r, const char *bdf, const struct ivshmem_open_opts *o);
int ivshmem_vfio_open(struct ivshmem_region *r, const char *bdf, const struct ivshmem_open_opts *o);
int ivshmem_devmem_open(struct ivshmem_region *r, const char *bdf, const struct ivshmem_open_opts *o);

/* Guest: resolve pci:/index:/name: selectors to a PCI address (pci.c). */
int ivshmem_pci_resolve(const char *selector, char *bdf, size_t bdf_len);

#endif
