/* SPDX-License-Identifier: GPL-2.0 */
/*
 * In-kernel API of ivshmem.ko, for modules that share memory with other VMs or
 * with the host through a QEMU ivshmem device.
 *
 *	struct ivshmem_dev *idev = ivshmem_dev_get(0);
 *
 *	if (IS_ERR(idev))
 *		return PTR_ERR(idev);
 *	ivshmem_dev_region(idev, &addr, &size);
 *	ivshmem_dev_set_callback(idev, 0, my_irq, my_data);
 *	ivshmem_dev_ring(idev, peer, 0);
 *	...
 *	ivshmem_dev_set_callback(idev, 0, NULL, NULL);
 *	ivshmem_dev_put(idev);
 *
 * The region address is a write-back cacheable kernel mapping. It is valid
 * until the device is removed: a user that can race with hot-unplug registers
 * a remove callback with ivshmem_dev_set_remove_callback() and stops touching
 * the region when it runs. After removal every call returns -ENODEV.
 */
#ifndef _LINUX_IVSHMEM_H
#define _LINUX_IVSHMEM_H

#include <linux/types.h>
#include <uapi/linux/ivshmem.h>

struct ivshmem_dev;

/*
 * Runs in hard interrupt context when own vector @vector fires: keep it short
 * (schedule work for anything else) and never sleep.
 */
typedef void (*ivshmem_vector_cb)(void *data, unsigned int vector);

/* Runs in process context when the device is being removed, before unmapping. */
typedef void (*ivshmem_remove_cb)(void *data);

/* A reference to /dev/ivshmem@index; ERR_PTR(-ENODEV) if there is none. */
struct ivshmem_dev *ivshmem_dev_get(unsigned int index);
void ivshmem_dev_put(struct ivshmem_dev *idev);

int ivshmem_dev_region(struct ivshmem_dev *idev, void **addr, u64 *size);
int ivshmem_dev_info(struct ivshmem_dev *idev, struct ivshmem_info *info);
int ivshmem_dev_ring(struct ivshmem_dev *idev, u16 peer, u16 vector);

/* One callback per vector and device; @cb NULL clears it. -EBUSY if taken. */
int ivshmem_dev_set_callback(struct ivshmem_dev *idev, unsigned int vector,
			     ivshmem_vector_cb cb, void *data);
/* One remove callback per device; @cb NULL clears it. -EBUSY if taken. */
int ivshmem_dev_set_remove_callback(struct ivshmem_dev *idev, ivshmem_remove_cb cb,
				    void *data);

#endif /* _LINUX_IVSHMEM_H */
