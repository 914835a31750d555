/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Every kernel-version difference of ivshmem.ko, and only those. The driver is
 * written against the newest API; this header gives older kernels the same
 * names. Built and VM-tested on Debian 12's 6.1 and bookworm-backports' 6.12
 * (scripts/build-kmod.sh, tests/vm/test_driver_*.py). Include it after the
 * kernel headers it patches. When the oldest supported kernel passes a
 * version below, delete that block and nothing else changes. This is the one
 * file where LINUX_VERSION_CODE is allowed (scripts/checkpatch.sh).
 *
 * Not here because no #if is needed: .llseek is left NULL (no_llseek is gone
 * in 6.12). stream_open() clears FMODE_LSEEK, so lseek fails with -ESPIPE on
 * every version.
 */
#ifndef _IVSHMEM_COMPAT_H
#define _IVSHMEM_COMPAT_H

#include <linux/device.h>
#include <linux/eventfd.h>
#include <linux/mm.h>
#include <linux/version.h>

/* 6.12 moved <asm/unaligned.h> to <linux/unaligned.h>. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 12, 0)
#include <asm/unaligned.h>
#else
#include <linux/unaligned.h>
#endif

/* 6.3 made vma->vm_flags read-only; the setters came with it. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 3, 0)
static inline void vm_flags_set(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags |= flags;
}
#endif

/* 6.4 dropped class_create()'s owner argument. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 4, 0)
#undef class_create
#define class_create(name)						\
({									\
	static struct lock_class_key __key;				\
	__class_create(THIS_MODULE, name, &__key);			\
})
#endif

/* 6.8 dropped eventfd_signal()'s count: it always adds 1. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 8, 0)
#define eventfd_signal(ctx) eventfd_signal(ctx, 1)
#endif

#endif /* _IVSHMEM_COMPAT_H */
