// SPDX-License-Identifier: MIT
/*
 * lib/guest: uses core.
 *
 * Removal-safe copies for guest regions (ivshmem_read_checked/_write_checked).
 *
 * When a PCI device is hot-removed the kernel revokes sysfs resource
 * mappings, and the next access raises SIGBUS; a /dev/mem mapping is not
 * revoked and simply reads all-ones. A checked copy therefore (1) relies on
 * lib/core/mapguard.c, whose process-wide SIGBUS handler turns a fault in any
 * registered region into zero pages and a lost flag, and (2) afterwards checks
 * that flag and that the same device (same address, same BAR2) is still
 * there, so bytes read during a removal are never returned as good. A
 * truncated host file is caught by the same handler and reported likewise.
 */
#include "core/region_internal.h"
#include "core/error.h"

#include "ivshmem/pci.h"
#include "guest/pci_internal.h"

#include <errno.h>
#include <string.h>

static const struct ivshmem_guest_head *guest_head(const struct ivshmem_region *r)
{
	switch (r->kind) {
	case IVSHMEM_BACKEND_SYSFS:
	case IVSHMEM_BACKEND_DEVMEM:
	case IVSHMEM_BACKEND_VFIO:
		return r->priv;
	default:
		return NULL;
	}
}

static int lost_error(const struct ivshmem_region *r)
{
	const struct ivshmem_guest_head *h = guest_head(r);

	if (h)
		return ivshmem_fail(ENODEV, "%s: SIGBUS: the device was removed while mapped", h->bdf);
	return ivshmem_check_mapping(r);
}

int ivshmem_region_present(const struct ivshmem_region *r)
{
	const struct ivshmem_guest_head *h = guest_head(r);
	uint64_t phys, size;

	if (ivshmem_mapguard_lost(r))
		return lost_error(r);
	if (!h)
		return 0;	/* host files, server peers and the driver report removal themselves */
	if (!ivshmem_pci_present(h->bdf) || ivshmem_pci_bar(h->bdf, 2, &phys, &size) < 0 ||
	    phys != h->mem_phys)
		return ivshmem_fail(ENODEV, "%s: the device was removed while mapped", h->bdf);
	return 0;
}

int ivshmem_guarded(struct ivshmem_region *r, int (*fn)(struct ivshmem_region *r, void *arg),
		    void *arg)
{
	int ret = fn(r, arg);

	/* A fault in @fn was caught by lib/core's handler: what @fn saw was zeros. */
	if (ivshmem_mapguard_lost(r))
		return lost_error(r);
	if (ret < 0)
		return ret;
	/* Bytes read during a removal are not good even without a fault (/dev/mem). */
	return ivshmem_region_present(r) ?: ret;
}

struct copy_args {
	uint64_t off;
	void *buf;
	size_t len;
	bool write;
};

static int do_copy(struct ivshmem_region *r, void *arg)
{
	struct copy_args *c = arg;

	return c->write ? ivshmem_write(r, c->off, c->buf, c->len)
			: ivshmem_read(r, c->off, c->buf, c->len);
}

static int checked_copy(struct ivshmem_region *r, uint64_t off, void *buf, size_t len, bool write)
{
	struct copy_args c = { .off = off, .buf = buf, .len = len, .write = write };

	return ivshmem_guarded(r, do_copy, &c);
}

int ivshmem_read_checked(const struct ivshmem_region *r, uint64_t offset, void *dst, size_t len)
{
	return checked_copy((struct ivshmem_region *)r, offset, dst, len, false);
}

int ivshmem_write_checked(struct ivshmem_region *r, uint64_t offset, const void *src, size_t len)
{
	return checked_copy(r, offset, (void *)src, len, true);
}
