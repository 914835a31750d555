// SPDX-License-Identifier: GPL-2.0
/*
 * Guest half of tests/vm/test_host_kernel_nested.py, loaded in an L2 guest on
 * /dev/ivshmem@index through ivshmem.ko's in-kernel API. The host half is
 * ivshmem_host_nested.c, a host-kernel peer (ID @host_peer) in the L1 guest;
 * the layout and the round-trip loop are in ivshmem_nested.h.
 *
 * At load it reads the host kernel's marker (host_marker = 1 if it is there)
 * and writes its own. Own vector 0: the host's echo; writing N to "run" makes
 * N guest-initiated round trips. Own vector 1: the host rang; the hard-IRQ
 * callback echoes the sequence and rings the host's vector 1.
 */
#include <linux/err.h>
#include <linux/ivshmem.h>
#include <linux/module.h>
#include <linux/string.h>

#include "ivshmem_nested.h"

static unsigned int index;
module_param(index, uint, 0444);
MODULE_PARM_DESC(index, "N of /dev/ivshmemN");

static uint host_peer;
module_param(host_peer, uint, 0444);
MODULE_PARM_DESC(host_peer, "the host kernel's peer ID (ivshmem-server --kernel-peer: 0)");

static int host_marker;
module_param(host_marker, int, 0444);
MODULE_PARM_DESC(host_marker, "1 when the host kernel's marker was there at load");

static int rounds;
module_param(rounds, int, 0444);
MODULE_PARM_DESC(rounds, "guest-initiated round trips completed by the last run");

static int echoes;
module_param(echoes, int, 0444);
MODULE_PARM_DESC(echoes, "host-initiated doorbells seen on vector 1 (each echoed)");

static int echo_errors;
module_param(echo_errors, int, 0444);
MODULE_PARM_DESC(echo_errors, "echoes that could not be rung");

static ulong rtt_ns;
module_param(rtt_ns, ulong, 0444);
MODULE_PARM_DESC(rtt_ns, "mean guest-initiated round trip of the last run, in ns");

static struct ivshmem_dev *nested_dev;

static int nested_ring_host(void)
{
	return ivshmem_dev_ring(nested_dev, host_peer, 0);
}

static struct nested_trips nested_trips = {
	.seq_off = NESTED_OFF_GUEST_SEQ,
	.echo_off = NESTED_OFF_HOST_ECHO,
	.ring = nested_ring_host,
};

static void nested_host_echoed(void *data, unsigned int vector)
{
	nested_echoed(&nested_trips);
}

static void nested_host_rang(void *data, unsigned int vector)
{
	nested_echo(nested_trips.base, NESTED_OFF_HOST_SEQ, NESTED_OFF_GUEST_ECHO, &echoes);
	if (ivshmem_dev_ring(nested_dev, host_peer, 1))
		WRITE_ONCE(echo_errors, READ_ONCE(echo_errors) + 1);
}

static int nested_run(const char *val, const struct kernel_param *kp)
{
	unsigned int n;
	int ret;

	ret = kstrtouint(val, 0, &n);
	if (ret)
		return ret;
	return nested_round_trips(&nested_trips, n, &rounds, &rtt_ns);
}

static const struct kernel_param_ops nested_run_ops = {
	.set = nested_run,
	.get = param_get_int,
};
module_param_cb(run, &nested_run_ops, &rounds, 0200);
MODULE_PARM_DESC(run, "write N: N guest-initiated round trips with the host kernel");

static int __init nested_init(void)
{
	char seen[sizeof(NESTED_HOST_MARKER)];
	struct ivshmem_info info;
	u64 size;
	int ret;

	init_completion(&nested_trips.echoed);
	nested_dev = ivshmem_dev_get(index);
	if (IS_ERR(nested_dev))
		return PTR_ERR(nested_dev);
	ret = ivshmem_dev_info(nested_dev, &info);
	if (ret)
		goto out_put;
	ret = ivshmem_dev_region(nested_dev, &nested_trips.base, &size);
	if (ret)
		goto out_put;
	if (size < NESTED_REGION_MIN || info.vectors < 2) {
		ret = -ENOSPC;
		goto out_put;
	}
	memcpy(seen, nested_trips.base + NESTED_OFF_HOST_MARKER, sizeof(seen));
	host_marker = !memcmp(seen, NESTED_HOST_MARKER, sizeof(seen));
	memcpy(nested_trips.base + NESTED_OFF_GUEST_MARKER, NESTED_GUEST_MARKER,
	       sizeof(NESTED_GUEST_MARKER));
	ret = ivshmem_dev_set_callback(nested_dev, 0, nested_host_echoed, NULL);
	if (ret)
		goto out_put;
	ret = ivshmem_dev_set_callback(nested_dev, 1, nested_host_rang, NULL);
	if (ret)
		goto out_cb;
	pr_info("ivshmem_nested_guest: device %u, %llu bytes, own id %u, host peer %u\n", index,
		size, info.ivposition, host_peer);
	return 0;

out_cb:
	ivshmem_dev_set_callback(nested_dev, 0, NULL, NULL);
out_put:
	ivshmem_dev_put(nested_dev);
	return ret;
}

static void __exit nested_exit(void)
{
	ivshmem_dev_set_callback(nested_dev, 0, NULL, NULL);
	ivshmem_dev_set_callback(nested_dev, 1, NULL, NULL);
	ivshmem_dev_put(nested_dev);
}

module_init(nested_init);
module_exit(nested_exit);
MODULE_DESCRIPTION("Nested VM test: guest-kernel half of host kernel <-> guest kernel doorbells");
MODULE_LICENSE("GPL");
