// SPDX-License-Identifier: GPL-2.0
/*
 * Test module for ivshmem_host.ko's in-kernel API (<linux/ivshmem_host.h>),
 * loaded in a VM test guest after user space attached a region. At load it
 * takes the region called @region, writes a marker at its start through the
 * kernel mapping, and registers a callback on own vector 0 that echoes every
 * signal to vector 0 of peer @echo_peer (from the eventfd wake-up, so the ring
 * is deferred to a work item), or to the peer that joined last with
 * @echo_last. Both may be changed at run time. A peer
 * callback counts joins and leaves (replayed for peers already joined at
 * load) and remembers the last peer that joined. Loading fails with the first
 * error. When the region is removed, the remove callback sets "removed".
 */
#include <linux/atomic.h>
#include <linux/err.h>
#include <linux/ivshmem_host.h>
#include <linux/module.h>
#include <linux/string.h>

#define KAPI_MARKER	"ivshmem-host-kapi-ok"

static char *region = "kapi";
module_param(region, charp, 0444);
MODULE_PARM_DESC(region, "name of the attached region to use");

static uint echo_peer = 1;
module_param(echo_peer, uint, 0644);
MODULE_PARM_DESC(echo_peer, "peer whose vector 0 each own-vector-0 signal rings");

static bool echo_last;
module_param(echo_last, bool, 0644);
MODULE_PARM_DESC(echo_last, "echo to the peer that joined last instead of echo_peer");

static int removed;
module_param(removed, int, 0444);
MODULE_PARM_DESC(removed, "1 once the region's remove callback ran");

static int echoes;
module_param(echoes, int, 0444);
MODULE_PARM_DESC(echoes, "own-vector-0 signals seen");

static int joins;
module_param(joins, int, 0444);
MODULE_PARM_DESC(joins, "peer joins seen (including those replayed at load)");

static int leaves;
module_param(leaves, int, 0444);
MODULE_PARM_DESC(leaves, "peer leaves seen");

static int last_joined = -1;
module_param(last_joined, int, 0444);
MODULE_PARM_DESC(last_joined, "the last peer that joined, -1 before any");

static struct ivshmem_host_region *kapi_region;

static void kapi_doorbell(void *data, unsigned int vector)
{
	WRITE_ONCE(echoes, READ_ONCE(echoes) + 1);
	ivshmem_host_ring(kapi_region, echo_last ? READ_ONCE(last_joined) : echo_peer, 0);
}

static void kapi_peer(void *data, u16 peer, bool joined)
{
	if (joined) {
		WRITE_ONCE(joins, READ_ONCE(joins) + 1);
		WRITE_ONCE(last_joined, peer);
	} else {
		WRITE_ONCE(leaves, READ_ONCE(leaves) + 1);
	}
}

static void kapi_remove(void *data)
{
	ivshmem_host_set_callback(kapi_region, 0, NULL, NULL);
	ivshmem_host_set_peer_callback(kapi_region, NULL, NULL);
	WRITE_ONCE(removed, 1);
}

static int __init kapi_init(void)
{
	void *addr;
	u64 size;
	int ret;

	kapi_region = ivshmem_host_get(region);
	if (IS_ERR(kapi_region))
		return PTR_ERR(kapi_region);
	ret = ivshmem_host_set_remove_callback(kapi_region, kapi_remove, NULL);
	if (ret)
		goto out_put;
	ret = ivshmem_host_region(kapi_region, &addr, &size);
	if (ret)
		goto out_put;
	if (size < sizeof(KAPI_MARKER)) {
		ret = -ENOSPC;
		goto out_put;
	}
	memcpy(addr, KAPI_MARKER, sizeof(KAPI_MARKER));
	ret = ivshmem_host_set_callback(kapi_region, 0, kapi_doorbell, NULL);
	if (ret)
		goto out_put;
	ret = ivshmem_host_set_peer_callback(kapi_region, kapi_peer, NULL);
	if (ret)
		goto out_put;
	pr_info("ivshmem_host_kapi_test: region %s, %llu bytes, own id %d\n", region,
		size, ivshmem_host_own_id(kapi_region));
	return 0;

out_put:
	ivshmem_host_set_callback(kapi_region, 0, NULL, NULL);
	ivshmem_host_set_remove_callback(kapi_region, NULL, NULL);
	ivshmem_host_put(kapi_region);
	return ret;
}

static void __exit kapi_exit(void)
{
	ivshmem_host_set_peer_callback(kapi_region, NULL, NULL);
	ivshmem_host_set_callback(kapi_region, 0, NULL, NULL);
	ivshmem_host_set_remove_callback(kapi_region, NULL, NULL);
	ivshmem_host_put(kapi_region);
}

module_init(kapi_init);
module_exit(kapi_exit);
MODULE_DESCRIPTION("VM test of ivshmem_host.ko's in-kernel API");
MODULE_LICENSE("GPL");
