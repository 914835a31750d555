/* SPDX-License-Identifier: MIT */
/*
 * Guest-side discovery of ivshmem PCI devices (vendor 0x1af4, device 0x1110)
 * from sysfs, and the selectors that name one of them.
 *
 * Discovery reads sysfs afresh on every call, so a device hot-added while a
 * program runs shows up at the next call; nothing is cached.
 *
 * Selectors (what ivshmem_open() accepts for a guest device):
 *   pci:DDDD:BB:DD.F, DDDD:BB:DD.F, BB:DD.F   by PCI address (hex, domain 0 if omitted)
 *   index:N                                   the Nth device in list order (sorted by address)
 *   name:NAME                                 the device whose region header is named NAME
 *
 * Test hook: the environment variable IVSHMEM_SYSFS_ROOT (default "/sys")
 * replaces the sysfs mount point, so the discovery and selector logic can be
 * tested on the host over a fake tree (bus/pci/devices/BDF/{vendor,device,...}).
 */
#ifndef IVSHMEM_PCI_H
#define IVSHMEM_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IVSHMEM_PCI_VENDOR 0x1af4
#define IVSHMEM_PCI_DEVICE 0x1110

/* ivshmem_pci_list() flags: what to probe beyond plain sysfs attributes. */
#define IVSHMEM_PCI_PROBE_REGS	(1u << 0)	/* read IVPosition from BAR0 (root, sysfs) */
#define IVSHMEM_PCI_PROBE_NAME	(1u << 1)	/* map BAR2 read-only, read the header name
						 * (not for devices bound to vfio-pci) */

struct ivshmem_pci_dev {
	char bdf[16];		/* "DDDD:BB:DD.F" */
	unsigned int revision;	/* 1 for QEMU >= 2.6 */
	bool doorbell;		/* ivshmem-doorbell: MSI-X capability / BAR1 present */
	uint64_t mem_phys;	/* BAR2 physical address (0: unassigned) */
	uint64_t mem_size;	/* BAR2 size in bytes */
	uint64_t regs_phys;	/* BAR0 physical address */
	uint64_t regs_size;	/* BAR0 size (256) */
	char driver[64];	/* bound driver ("ivshmem", "vfio-pci"), "" when none */
	char iommu_group[16];	/* "" when the device has no IOMMU group */
	int ivposition;		/* IVPosition register; -1 when not probed or unreadable */
	int name_status;	/* 1: name[] is valid, 0: no header, -1: not probed/unreadable,
				 * -2: a header that is corrupt */
	char name[64];		/* region header name when name_status == 1 */
};

/* The sysfs mount point in use ("/sys" unless IVSHMEM_SYSFS_ROOT is set). */
const char *ivshmem_pci_sysfs_root(void);

/*
 * Fill up to @max entries of @devs with every ivshmem device, sorted by
 * address. Returns the total number found (which may exceed @max), or a
 * negative errno (ivshmem_errmsg() says why).
 */
int ivshmem_pci_list(struct ivshmem_pci_dev *devs, size_t max, unsigned int flags);

/* Describe one device by address ("DDDD:BB:DD.F"). -ENODEV if it is not an ivshmem device. */
int ivshmem_pci_probe(const char *bdf, struct ivshmem_pci_dev *dev, unsigned int flags);

/* Resolving a selector string to a device: ivshmem_pci_find() in ivshmem/target.h. */


/* True while the device at @bdf is still present (it may be hot-removed at any time). */
bool ivshmem_pci_present(const char *bdf);

struct ivshmem_region;

/*
 * Removal-safe variants of ivshmem_read()/ivshmem_write() for long-running
 * programs on the sysfs, devmem and vfio backends (and host files, which can
 * be truncated under us). A hot-removed device revokes a sysfs mapping (the
 * next access raises SIGBUS) or leaves a /dev/mem mapping reading all-ones;
 * these copies catch the SIGBUS (a process-wide handler, installed on first
 * use, that passes other SIGBUSes on to the previous handler) and check after
 * the copy that the device is still there, so stale bytes are never returned
 * as good. -ENODEV and a clear message when the device is gone; otherwise
 * what ivshmem_read()/ivshmem_write() return. Costs a few sysfs reads per call.
 */
int ivshmem_read_checked(const struct ivshmem_region *r, uint64_t offset, void *dst, size_t len);
int ivshmem_write_checked(struct ivshmem_region *r, uint64_t offset, const void *src, size_t len);

/*
 * Run @fn(@r, @arg) under the same guard as the checked copies, for code that
 * reads the mapping itself (ivshmem_layout_print, say). Returns what @fn
 * returned, or -ENODEV if the mapping faulted or the device is gone after it.
 */
int ivshmem_guarded(struct ivshmem_region *r, int (*fn)(struct ivshmem_region *r, void *arg),
		    void *arg);

/* 0 while the PCI device behind @r is still present (always 0 for non-PCI backends), else -ENODEV. */
int ivshmem_region_present(const struct ivshmem_region *r);

/*
 * Normalize a PCI address written "DDDD:BB:DD.F" or "BB:DD.F" (hex, any case)
 * into "dddd:bb:dd.f". Returns 0 or -EINVAL (ivshmem_errmsg() says what is wrong).
 */
int ivshmem_pci_parse_bdf(const char *s, char *out, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* IVSHMEM_PCI_H */
