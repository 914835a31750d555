/* SPDX-License-Identifier: MIT */
/*
 * lib/guest: sysfs helpers shared by pci.c, the guest backends (sysfs, vfio,
 * devmem, driver) and lib/open's selector resolution. Private.
 */
#ifndef IVSHMEM_PCI_INTERNAL_H
#define IVSHMEM_PCI_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* "<sysfs root>/bus/pci/devices/BDF[/ATTR]"; 0 or ivshmem_fail(ENAMETOOLONG). */
int ivshmem_pci_path(char *buf, size_t len, const char *bdf, const char *attr);
/* Read a small sysfs attribute, trailing whitespace stripped; 0 or -errno (no message). */
int ivshmem_pci_read_attr(const char *bdf, const char *attr, char *buf, size_t len);
/* Physical address and size of BAR @bar from the "resource" file; size 0 when unused. */
int ivshmem_pci_bar(const char *bdf, int bar, uint64_t *phys, uint64_t *size);

/* Last path element of the symlink ATTR ("driver", "iommu_group"); "" and -errno if none. */
int ivshmem_pci_link_name(const char *bdf, const char *attr, char *out, size_t len);

/*
 * First member of the sysfs, devmem and vfio backends' private state, so that
 * removal checks can find out which device a region maps without knowing the
 * backend's details.
 */
struct ivshmem_guest_head {
	char bdf[16];		/* "DDDD:BB:DD.F" */
	uint64_t mem_phys;	/* BAR2 physical address when opened */
};

/* Fill @h for @bdf (the address and its current BAR2). */
void ivshmem_guest_head_init(struct ivshmem_guest_head *h, const char *bdf);

/* Turn on the device's memory decoding if nobody did (sysfs "enable"); best effort. */
void ivshmem_pci_enable_memory(const char *bdf);

/* The device at @idx in list order (index:N); 0, or -ENODEV with a message. */
int ivshmem_pci_resolve_index(unsigned int idx, char *bdf, size_t len);
/* The one device whose region header is named @name (name:NAME); -ENODEV, -EEXIST, ... */
int ivshmem_pci_resolve_name(const char *name, char *bdf, size_t len);

#endif
