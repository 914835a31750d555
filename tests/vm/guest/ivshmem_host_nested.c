// SPDX-License-Identifier: GPL-2.0
/*
 * Host half of tests/vm/test_host_kernel_nested.py, loaded in the L1 guest
 * (the "host") on the region `ivshmem-server --kernel-peer NAME` attached to
 * ivshmem_host.ko. The guest half is ivshmem_nested_guest.c, in an L2 guest;
 * the layout and the round-trip loop are in ivshmem_nested.h.
 *
 * At load it writes the host marker. Own vector 0: the guest rang; the
 * callback (in the eventfd wake-up) echoes the sequence and rings the guest's
 * vector 0 (ivshmem_host.ko defers that ring to a work item). Own vector 1:
 * the guest's echo. Writing N to "run" makes N host-initiated round trips
 * with peer @peer and fails at the first lost or wrong echo.
 */
#include <linux/err.h>
#include <linux/ivshmem_host.h>
#include <linux/module.h>
#include <linux/string.h>

#include "ivshmem_nested.h"

static char *region = "nested";
module_param(region, charp, 0444);
MODULE_PARM_DESC(region, "name of the attached region (ivshmem-server --kernel-peer NAME)");

static uint peer;
module_param(peer, uint, 0644);
MODULE_PARM_DESC(peer, "the guest's peer ID: whom vector 0 echoes and run rings");

static int echoes;
module_param(echoes, int, 0444);
MODULE_PARM_DESC(echoes, "guest-initiated doorbells seen on vector 0 (each echoed)");

static int echo_errors;
module_param(echo_errors, int, 0444);
MODULE_PARM_DESC(echo_errors, "echoes that could not be rung");

static int rounds;
module_param(rounds, int, 0444);
MODULE_PARM_DESC(rounds, "host-initiated round trips completed by the last run");

static int guest_marker;
module_param(guest_marker, int, 0444);
MODULE_PARM_DESC(guest_marker, "1 when the last run found the guest kernel's marker");

static ulong rtt_ns;
module_param(rtt_ns, ulong, 0444);
MODULE_PARM_DESC(rtt_ns, "mean host-initiated round trip of the last run, in ns");

static int removed;
module_param(removed, int, 0444);
MODULE_PARM_DESC(removed, "1 once the region's remove callback ran");

static int left = -1;
module_param(left, int, 0444);
MODULE_PARM_DESC(left, "the last peer the server reported gone (-1: none yet)");

static struct ivshmem_host_region *nested_region;

static int nested_ring_guest(void)
{
	return ivshmem_host_ring(nested_region, peer, 1);
}

static struct nested_trips nested_trips = {
	.seq_off = NESTED_OFF_HOST_SEQ,
	.echo_off = NESTED_OFF_GUEST_ECHO,
	.ring = nested_ring_guest,
};

static void nested_guest_rang(void *data, unsigned int vector)
{
	nested_echo(nested_trips.base, NESTED_OFF_GUEST_SEQ, NESTED_OFF_HOST_ECHO, &echoes);
	if (ivshmem_host_ring(nested_region, peer, 0))
		WRITE_ONCE(echo_errors, READ_ONCE(echo_errors) + 1);
}

static void nested_guest_echoed(void *data, unsigned int vector)
{
	nested_echoed(&nested_trips);
}

/* Process context: a guest leaving reaches the host kernel as a leave. */
static void nested_peer(void *data, u16 id, bool joined)
{
	if (!joined)
		WRITE_ONCE(left, id);
}

static void nested_remove(void *data)
{
	ivshmem_host_set_peer_callback(nested_region, NULL, NULL);
	ivshmem_host_set_callback(nested_region, 0, NULL, NULL);
	ivshmem_host_set_callback(nested_region, 1, NULL, NULL);
	WRITE_ONCE(removed, 1);
}

static int nested_run(const char *val, const struct kernel_param *kp)
{
	char seen[sizeof(NESTED_GUEST_MARKER)];
	unsigned int n;
	int ret;

	ret = kstrtouint(val, 0, &n);
	if (ret)
		return ret;
	if (READ_ONCE(removed))
		return -ENODEV;
	memcpy(seen, nested_trips.base + NESTED_OFF_GUEST_MARKER, sizeof(seen));
	guest_marker = !memcmp(seen, NESTED_GUEST_MARKER, sizeof(seen));
	return nested_round_trips(&nested_trips, n, &rounds, &rtt_ns);
}

static const struct kernel_param_ops nested_run_ops = {
	.set = nested_run,
	.get = param_get_int,
};
module_param_cb(run, &nested_run_ops, &rounds, 0200);
MODULE_PARM_DESC(run, "write N: N host-initiated round trips with the guest (peer)");

static int __init nested_init(void)
{
	u64 size;
	int ret;

	init_completion(&nested_trips.echoed);
	nested_region = ivshmem_host_get(region);
	if (IS_ERR(nested_region))
		return PTR_ERR(nested_region);
	ret = ivshmem_host_set_remove_callback(nested_region, nested_remove, NULL);
	if (ret)
		goto out_put;
	ret = ivshmem_host_region(nested_region, &nested_trips.base, &size);
	if (ret)
		goto out_clear;
	if (size < NESTED_REGION_MIN) {
		ret = -ENOSPC;
		goto out_clear;
	}
	memset(nested_trips.base, 0, NESTED_REGION_MIN);
	memcpy(nested_trips.base + NESTED_OFF_HOST_MARKER, NESTED_HOST_MARKER,
	       sizeof(NESTED_HOST_MARKER));
	ret = ivshmem_host_set_callback(nested_region, 0, nested_guest_rang, NULL);
	if (ret)
		goto out_clear;
	ret = ivshmem_host_set_callback(nested_region, 1, nested_guest_echoed, NULL);
	if (ret)
		goto out_cb;
	ret = ivshmem_host_set_peer_callback(nested_region, nested_peer, NULL);
	if (ret)
		goto out_cb1;
	pr_info("ivshmem_host_nested: region %s, %llu bytes, own id %d\n", region, size,
		ivshmem_host_own_id(nested_region));
	return 0;

out_cb1:
	ivshmem_host_set_callback(nested_region, 1, NULL, NULL);
out_cb:
	ivshmem_host_set_callback(nested_region, 0, NULL, NULL);
out_clear:
	ivshmem_host_set_remove_callback(nested_region, NULL, NULL);
out_put:
	ivshmem_host_put(nested_region);
	return ret;
}

static void __exit nested_exit(void)
{
	ivshmem_host_set_peer_callback(nested_region, NULL, NULL);
	ivshmem_host_set_callback(nested_region, 0, NULL, NULL);
	ivshmem_host_set_callback(nested_region, 1, NULL, NULL);
	ivshmem_host_set_remove_callback(nested_region, NULL, NULL);
	ivshmem_host_put(nested_region);
}

module_init(nested_init);
module_exit(nested_exit);
MODULE_DESCRIPTION("Nested VM test: host-kernel half of host kernel <-> guest kernel doorbells");
MODULE_LICENSE("GPL");
