// SPDX-License-Identifier: GPL-2.0
/*
 * Test module for ivshmem.ko's in-kernel API (<linux/ivshmem.h>), loaded in a
 * VM test guest. At load it takes /dev/ivshmem@index, checks the region
 * against the device info, writes a marker the host can read at the last
 * page of the region, registers a callback on every vector, rings itself on
 * each and waits for the callbacks. Loading fails with the first error, so
 * "insmod succeeded" is the verdict. It keeps the device until unloaded; if
 * the device is unplugged meanwhile, the remove callback sets "removed".
 */
#include <linux/atomic.h>
#include <linux/completion.h>
#include <linux/err.h>
#include <linux/ivshmem.h>
#include <linux/module.h>
#include <linux/string.h>

#define KAPI_MARKER	"ivshmem-kapi-ok"
#define KAPI_MAX_VECTORS	64

static unsigned int index;
module_param(index, uint, 0444);
MODULE_PARM_DESC(index, "N of /dev/ivshmemN to test");

static int removed;
module_param(removed, int, 0444);
MODULE_PARM_DESC(removed, "1 once the device's remove callback ran");

static struct ivshmem_dev *kapi_dev;
static unsigned int kapi_vectors;
static struct completion kapi_fired[KAPI_MAX_VECTORS];
static atomic_t kapi_count[KAPI_MAX_VECTORS];

static void kapi_irq(void *data, unsigned int vector)
{
	struct completion *done = data;

	atomic_inc(&kapi_count[vector]);
	complete(done);
}

static void kapi_remove(void *data)
{
	WRITE_ONCE(removed, 1);
	pr_info("ivshmem_kapi_test: device %u removed\n", index);
}

static void kapi_clear_callbacks(void)
{
	unsigned int v;

	for (v = 0; v < kapi_vectors; v++)
		ivshmem_dev_set_callback(kapi_dev, v, NULL, NULL);
}

static int kapi_run(void)
{
	struct ivshmem_info info;
	unsigned int v;
	void *addr;
	u64 size;
	int ret;

	ret = ivshmem_dev_info(kapi_dev, &info);
	if (ret)
		return ret;
	ret = ivshmem_dev_region(kapi_dev, &addr, &size);
	if (ret)
		return ret;
	if (size != info.size || size < PAGE_SIZE) {
		pr_err("ivshmem_kapi_test: region size %llu, info says %llu\n", size,
		       (u64)info.size);
		return -EINVAL;
	}
	memcpy(addr + size - PAGE_SIZE, KAPI_MARKER, sizeof(KAPI_MARKER));
	ret = ivshmem_dev_set_remove_callback(kapi_dev, kapi_remove, NULL);
	if (ret)
		return ret;
	if (!(info.flags & IVSHMEM_INFO_DOORBELL)) {
		ret = ivshmem_dev_ring(kapi_dev, 0, 0);
		pr_info("ivshmem_kapi_test: plain device, ring says %d\n", ret);
		return ret == -EOPNOTSUPP ? 0 : -EINVAL;
	}
	kapi_vectors = min_t(unsigned int, info.vectors, KAPI_MAX_VECTORS);
	for (v = 0; v < kapi_vectors; v++) {
		init_completion(&kapi_fired[v]);
		ret = ivshmem_dev_set_callback(kapi_dev, v, kapi_irq, &kapi_fired[v]);
		if (ret)
			return ret;
	}
	if (ivshmem_dev_set_callback(kapi_dev, 0, kapi_irq, NULL) != -EBUSY) {
		pr_err("ivshmem_kapi_test: a second callback on vector 0 was not refused\n");
		return -EINVAL;
	}
	for (v = 0; v < kapi_vectors; v++) {
		/* A VM may ring its own ID. */
		ret = ivshmem_dev_ring(kapi_dev, info.ivposition, v);
		if (ret)
			return ret;
		if (!wait_for_completion_timeout(&kapi_fired[v], 10 * HZ)) {
			pr_err("ivshmem_kapi_test: vector %u never fired\n", v);
			return -ETIMEDOUT;
		}
	}
	pr_info("ivshmem_kapi_test: device %u: %llu bytes, callbacks on all %u vectors\n", index,
		size, kapi_vectors);
	return 0;
}

static int __init kapi_init(void)
{
	int ret;

	kapi_dev = ivshmem_dev_get(index);
	if (IS_ERR(kapi_dev))
		return PTR_ERR(kapi_dev);
	ret = kapi_run();
	if (ret) {
		kapi_clear_callbacks();
		ivshmem_dev_set_remove_callback(kapi_dev, NULL, NULL);
		ivshmem_dev_put(kapi_dev);
		pr_err("ivshmem_kapi_test: failed: %d\n", ret);
	}
	return ret;
}

static void __exit kapi_exit(void)
{
	kapi_clear_callbacks();
	ivshmem_dev_set_remove_callback(kapi_dev, NULL, NULL);
	ivshmem_dev_put(kapi_dev);
}

module_init(kapi_init);
module_exit(kapi_exit);
MODULE_DESCRIPTION("Test of ivshmem.ko's in-kernel API");
MODULE_LICENSE("GPL");
