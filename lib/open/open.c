// SPDX-License-Identifier: MIT
/*
 * lib/open: ivshmem_open(), the one dispatch from a parsed target to a
 * backend. Uses core (the region object), guest (PCI look-ups through the
 * target) and backend (the open functions). Nothing below calls it.
 */
#include "ivshmem/target.h"

#include "backend/backends.h"
#include "core/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*backend_open_fn)(struct ivshmem_region *r, const char *arg,
			       const struct ivshmem_open_opts *o);

/* The guest order: cacheable with interrupts first, raw physical access last. */
static int open_guest(struct ivshmem_region *r, const char *bdf, const struct ivshmem_open_opts *o)
{
	static const backend_open_fn order[] = {
		ivshmem_driver_open,
		ivshmem_sysfs_open,
		ivshmem_vfio_open,
		ivshmem_devmem_open,
	};
	char why[IVSHMEM_ERRMSG_MAX] = "";
	int ret = -ENODEV;

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		ret = order[i](r, bdf, o);
		if (ret == 0)
			return 0;
		size_t used = strlen(why);

		/* Keep every backend's reason; a cut-off tail is acceptable. */
		if (snprintf(why + used, sizeof(why) - used, "%s%s", used ? "; " : "",
			     ivshmem_errmsg()) < 0)
			break;
	}
	return ivshmem_fail(-ret, "%s: no backend could open it: %s", bdf, why);
}

static int open_pci(struct ivshmem_region *r, const struct ivshmem_target *t,
		    const struct ivshmem_open_opts *o)
{
	static const backend_open_fn by_backend[] = {
		[IVSHMEM_BACKEND_DRIVER] = ivshmem_driver_open,
		[IVSHMEM_BACKEND_SYSFS] = ivshmem_sysfs_open,
		[IVSHMEM_BACKEND_VFIO] = ivshmem_vfio_open,
		[IVSHMEM_BACKEND_DEVMEM] = ivshmem_devmem_open,
	};
	struct ivshmem_pci_dev dev;
	int ret = ivshmem_target_find_pci(t, &dev, 0);

	if (ret < 0)
		return ret;
	if (o->backend == IVSHMEM_BACKEND_AUTO)
		return open_guest(r, dev.bdf, o);
	if ((size_t)o->backend < sizeof(by_backend) / sizeof(by_backend[0]) &&
	    by_backend[o->backend])
		return by_backend[o->backend](r, dev.bdf, o);
	return ivshmem_fail(EINVAL, "backend %s cannot open %s", ivshmem_backend_name(o->backend),
			    t->path);
}

static int open_target(struct ivshmem_region *r, const char *target,
		       const struct ivshmem_open_opts *o)
{
	struct ivshmem_target t;
	int ret = ivshmem_target_parse(target, o->backend, &t);

	if (ret < 0)
		return ret;
	switch (t.kind) {
	case IVSHMEM_TARGET_FILE:
		return ivshmem_file_open(r, t.path, o);
	case IVSHMEM_TARGET_SERVER:
		return ivshmem_server_open(r, t.path, o);
	case IVSHMEM_TARGET_DRIVER_NODE:
		return ivshmem_driver_open(r, t.path, o);
	default:
		return open_pci(r, &t, o);
	}
}

int ivshmem_open(struct ivshmem_region **out, const char *target,
		 const struct ivshmem_open_opts *opts)
{
	static const struct ivshmem_open_opts defaults;
	struct ivshmem_region *r;
	int ret;

	*out = NULL;
	if (!target || !*target)
		return ivshmem_fail(EINVAL, "no target given");
	r = calloc(1, sizeof(*r));
	if (!r)
		return ivshmem_fail(ENOMEM, "out of memory");
	r->own_id = -1;
	ret = open_target(r, target, opts ? opts : &defaults);
	if (ret < 0) {
		free(r);
		return ret;
	}
	/* A mapping that vanishes under us (truncation, removal) becomes an error, not a SIGBUS. */
	ret = ivshmem_mapguard_add(r);
	if (ret < 0) {
		ivshmem_close(r);
		return ret;
	}
	*out = r;
	return 0;
}
