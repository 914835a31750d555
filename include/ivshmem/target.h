/* SPDX-License-Identifier: MIT */
/*
 * What a target string names. ivshmem_open() and the tools decide it with
 * this one parser, so every rule lives in one place (lib/open/target.c):
 *
 *   file:PATH                              a host file (file backend)
 *   server:SOCKET                          a peer of ivshmem-server (server backend)
 *   pci:ADDR, index:N, name:NAME           a guest PCI device, always
 *   /abs, ./rel or ../rel                  a path: by what it is on disk (below)
 *   an existing relative path              a path, even if it looks like "00:10.0"
 *   DDDD:BB:DD.F, BB:DD.F (or any "a:b")   a guest PCI device by address
 *
 * A path is a server when it is a socket (and no other backend was asked
 * for), a driver node when it is a character device, else a file (it may
 * not exist yet: the file backend can create it). An explicit backend
 * (file, server) makes any unprefixed string a path for that backend; a
 * guest backend (driver, sysfs, vfio, devmem) needs a PCI device.
 */
#ifndef IVSHMEM_TARGET_H
#define IVSHMEM_TARGET_H

#include "ivshmem/pci.h"
#include "ivshmem/region.h"

#ifdef __cplusplus
extern "C" {
#endif

enum ivshmem_target_kind {
	IVSHMEM_TARGET_FILE = 1,	/* .path: a file for the file backend */
	IVSHMEM_TARGET_SERVER,		/* .path: the server's socket */
	IVSHMEM_TARGET_DRIVER_NODE,	/* .path: a device node of ivshmem.ko */
	IVSHMEM_TARGET_PCI_ADDRESS,	/* .bdf: normalized "dddd:bb:dd.f" */
	IVSHMEM_TARGET_PCI_INDEX,	/* .index: Nth device in ivshmem list order */
	IVSHMEM_TARGET_PCI_NAME,	/* .path: the region header name */
};

struct ivshmem_target {
	enum ivshmem_target_kind kind;
	const char *path;	/* points into the parsed string, prefix removed */
	char bdf[16];
	unsigned int index;
};

/*
 * Decide what @s names when the caller asked for backend @want (AUTO: any).
 * Looks at the file system (stat) only for unprefixed strings. Returns 0 and
 * fills *@t, or -EINVAL with ivshmem_errmsg() saying why (an empty string, a
 * prefix that contradicts @want, a malformed PCI address or index, a path
 * given to a guest backend, or a string that is no kind of target).
 */
int ivshmem_target_parse(const char *s, enum ivshmem_backend want, struct ivshmem_target *t);

/* True for the three PCI kinds. */
static inline int ivshmem_target_is_pci(const struct ivshmem_target *t)
{
	return t->kind == IVSHMEM_TARGET_PCI_ADDRESS || t->kind == IVSHMEM_TARGET_PCI_INDEX ||
	       t->kind == IVSHMEM_TARGET_PCI_NAME;
}

/*
 * Resolve a PCI target to the device it names and describe it
 * (ivshmem_pci_probe() flags). -EINVAL for a non-PCI target, -ENODEV (no such
 * device), -EEXIST (a name several devices carry), or another negative errno.
 */
int ivshmem_target_find_pci(const struct ivshmem_target *t, struct ivshmem_pci_dev *dev,
			    unsigned int flags);

/*
 * Parse @selector, which must name a PCI device, and describe the device
 * (ivshmem_target_parse() + ivshmem_target_find_pci()). Returns 0, -EINVAL
 * (not a PCI selector), -ENODEV, -EEXIST or another negative errno.
 */
int ivshmem_pci_find(const char *selector, struct ivshmem_pci_dev *dev, unsigned int flags);

#ifdef __cplusplus
}
#endif

#endif
