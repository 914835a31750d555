/* SPDX-License-Identifier: MIT */
/*
 * libivshmem umbrella header: the region API and everything built on it.
 *   region.h   open a region over any backend; doorbells, event fds, peers
 *   pci.h      guest discovery (ivshmem list)
 *   target.h   what a target string names (the rules ivshmem_open() follows)
 *   layout.h   the header at offset 0: name and directory of sections
 *   ring.h     lock-free SPSC rings of variable-size records
 *   channel.h  named two-way channels between two endpoints
 *   iomem.h    aligned-only copies for uncached/device mappings
 *   util.h     size and number parsing
 * protocol.h (the ivshmem-server wire format) is separate: only servers and
 * protocol tools need it.
 */
#ifndef IVSHMEM_H
#define IVSHMEM_H

#include "ivshmem/channel.h"
#include "ivshmem/iomem.h"
#include "ivshmem/layout.h"
#include "ivshmem/pci.h"
#include "ivshmem/region.h"
#include "ivshmem/ring.h"
#include "ivshmem/target.h"
#include "ivshmem/util.h"

#endif
