/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the two halves of tests/vm/test_host_kernel_nested.py share: the
 * host kernel's ivshmem_host_nested.c (in the L1 guest) and the guest
 * kernel's ivshmem_nested_guest.c (in an L2 guest). Test-only.
 *
 * Region layout:
 *   0x000  host marker, written by the host half at load
 *   0x040  guest marker, written by the guest half at load
 *   0x100  u64 guest-initiated sequence     0x108  u64 the host's echo of it
 *   0x110  u64 host-initiated sequence      0x118  u64 the guest's echo of it
 * Vector 0 carries guest-initiated round trips, vector 1 host-initiated ones:
 * the initiator writes a sequence and rings the other's vector; the other's
 * callback echoes it and rings the initiator's same vector.
 */
#ifndef IVSHMEM_NESTED_H
#define IVSHMEM_NESTED_H

#include <linux/completion.h>
#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/printk.h>

#define NESTED_HOST_MARKER	"ivshmem-nested host kernel -> guest kernel"
#define NESTED_GUEST_MARKER	"ivshmem-nested guest kernel -> host kernel"
#define NESTED_OFF_HOST_MARKER	0x000
#define NESTED_OFF_GUEST_MARKER	0x040
#define NESTED_OFF_GUEST_SEQ	0x100
#define NESTED_OFF_HOST_ECHO	0x108
#define NESTED_OFF_HOST_SEQ	0x110
#define NESTED_OFF_GUEST_ECHO	0x118
#define NESTED_REGION_MIN	0x120
#define NESTED_TIMEOUT		(5 * HZ)

struct nested_trips {
	void *base;
	unsigned int seq_off;	/* our sequence */
	unsigned int echo_off;	/* the other side's echo of it */
	int (*ring)(void);	/* ring the other side's vector */
	struct completion echoed;
	u64 echo;
};

static inline u64 *nested_u64(void *base, unsigned int off)
{
	return base + off;
}

/* From the doorbell callback: echo the other side's sequence (read once). */
static inline void nested_echo(void *base, unsigned int seq_off, unsigned int echo_off,
			       int *count)
{
	u64 seq = READ_ONCE(*nested_u64(base, seq_off));

	WRITE_ONCE(*nested_u64(base, echo_off), seq);
	WRITE_ONCE(*count, READ_ONCE(*count) + 1);
	wmb();	/* the echo is visible before the doorbell that follows */
}

/* From the doorbell callback: the other side echoed our sequence. */
static inline void nested_echoed(struct nested_trips *t)
{
	WRITE_ONCE(t->echo, READ_ONCE(*nested_u64(t->base, t->echo_off)));
	complete(&t->echoed);
}

/*
 * @n round trips, one at a time, from process context: sequence i, ring, wait
 * for the echo, check it. Returns 0, the ring's error, -ETIMEDOUT or -EPROTO;
 * *@rounds counts the completed ones, *@rtt_ns their mean.
 */
static inline int nested_round_trips(struct nested_trips *t, unsigned int n, int *rounds,
				     ulong *rtt_ns)
{
	u64 t0 = ktime_get_ns(), echo;
	unsigned int i;
	int ret;

	*rounds = 0;
	for (i = 1; i <= n; i++) {
		reinit_completion(&t->echoed);
		WRITE_ONCE(*nested_u64(t->base, t->seq_off), i);
		wmb();	/* the sequence is visible before the doorbell */
		ret = t->ring();
		if (ret)
			return ret;
		if (!wait_for_completion_timeout(&t->echoed, NESTED_TIMEOUT)) {
			pr_err("ivshmem nested test: round trip %u: no echo\n", i);
			return -ETIMEDOUT;
		}
		echo = READ_ONCE(t->echo);
		if (echo != i) {
			pr_err("ivshmem nested test: round trip %u: echo %llu\n", i, echo);
			return -EPROTO;
		}
		*rounds = i;
	}
	*rtt_ns = n ? (ulong)div_u64(ktime_get_ns() - t0, n) : 0;
	return 0;
}

#endif /* IVSHMEM_NESTED_H */
