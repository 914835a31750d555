/* SPDX-License-Identifier: MIT */
/*
 * lib/backend: one file per backend, each an open function that fills a
 * struct ivshmem_region (lib/core/region_internal.h) and its ops table.
 * Backends use core (errors, iomem, the region struct), proto (the server
 * wire format) and guest (sysfs look-ups); they never call lib/open or the
 * messaging layers. lib/open chooses among them.
 *
 * Each open fills @r on success (r is zeroed, own_id = -1) or returns ivshmem_fail().
 */
#ifndef IVSHMEM_BACKEND_BACKENDS_H
#define IVSHMEM_BACKEND_BACKENDS_H

#include "core/region_internal.h"

int ivshmem_file_open(struct ivshmem_region *r, const char *path, const struct ivshmem_open_opts *o);
int ivshmem_server_open(struct ivshmem_region *r, const char *socket_path,
			const struct ivshmem_open_opts *o);
/* Guest backends take a resolved PCI address "DDDD:BB:DD.F" (the driver also a /dev node). */
int ivshmem_driver_open(struct ivshmem_region *r, const char *bdf_or_node,
			const struct ivshmem_open_opts *o);
int ivshmem_sysfs_open(struct ivshmem_region *r, const char *bdf, const struct ivshmem_open_opts *o);
int ivshmem_vfio_open(struct ivshmem_region *r, const char *bdf, const struct ivshmem_open_opts *o);
int ivshmem_devmem_open(struct ivshmem_region *r, const char *bdf, const struct ivshmem_open_opts *o);

#endif
