/* SPDX-License-Identifier: GPL-2.0 */
/* Shared between the files of ivshmem.ko; not an API. */
#ifndef _IVSHMEM_PRIV_H
#define _IVSHMEM_PRIV_H

#include <linux/atomic.h>
#include <linux/eventfd.h>
#include <linux/ivshmem.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/rwsem.h>
#include <linux/spinlock.h>
#include <linux/wait.h>

/* BAR0 registers, 32-bit little-endian (QEMU's docs/specs/ivshmem-spec.rst) */
#define IVSHMEM_REG_INTRMASK	0x00
#define IVSHMEM_REG_INTRSTATUS	0x04
#define IVSHMEM_REG_IVPOSITION	0x08
#define IVSHMEM_REG_DOORBELL	0x0c

#define IVSHMEM_BAR_REGS	0
#define IVSHMEM_BAR_MEM		2

/* One own MSI-X vector: an interrupt count, its waiters and its consumers. */
struct ivshmem_vector {
	struct ivshmem_dev *idev;
	unsigned int index;
	int irq;			/* Linux IRQ number; 0 when not requested */
	atomic64_t count;		/* interrupts since probe; vector fds diff it */
	wait_queue_head_t wait;		/* vector fd readers and pollers */
	spinlock_t lock;		/* protects the consumers below (IRQ-safe) */
	struct eventfd_ctx *trigger;	/* bound eventfd, or NULL */
	struct file *trigger_owner;	/* the device file that bound it */
	ivshmem_vector_cb cb;		/* in-kernel callback, or NULL */
	void *cb_data;
	char irq_name[32];
};

struct ivshmem_dev {
	struct kref ref;		/* probe, open files, vector fds, kernel users */
	struct pci_dev *pdev;
	unsigned int index;		/* N of /dev/ivshmemN */
	struct device *chardev;

	/*
	 * @lock is held for reading by every file operation that touches the
	 * hardware and for writing by remove, which sets @gone. @reg_lock
	 * serialises doorbell writes against remove from any context.
	 */
	struct rw_semaphore lock;
	spinlock_t reg_lock;		/* doorbell writes vs @gone */
	bool gone;

	void __iomem *regs;
	void *mem;			/* memremap(MEMREMAP_WB) of BAR2 */
	phys_addr_t mem_phys;
	u64 size;
	u32 ivposition;
	bool doorbell;
	unsigned int nvectors;
	struct ivshmem_vector *vectors;

	struct mutex files_lock;	/* protects @files, @removing and the remove callback */
	struct list_head files;		/* open device files, to revoke their mappings */
	bool removing;			/* remove() took the callback: no new one */
	ivshmem_remove_cb remove_cb;
	void *remove_data;
};

/* One open /dev/ivshmemN. */
struct ivshmem_file {
	struct ivshmem_dev *idev;
	struct file *filp;
	struct list_head node;
};

void ivshmem_dev_release(struct kref *ref);

/* ivshmem_irq.c */
int ivshmem_irq_setup(struct ivshmem_dev *idev);
void ivshmem_irq_teardown(struct ivshmem_dev *idev);
void ivshmem_irq_release_file(struct ivshmem_dev *idev, struct file *filp);
long ivshmem_ioctl_vector_fd(struct ivshmem_dev *idev, void __user *arg);
long ivshmem_ioctl_bind_eventfd(struct ivshmem_dev *idev, struct file *filp,
				void __user *arg);

#endif /* _IVSHMEM_PRIV_H */
