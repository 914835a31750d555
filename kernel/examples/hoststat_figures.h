/* SPDX-License-Identifier: GPL-2.0 */
/* What ivshmem_hoststat.ko samples from the host kernel, and its record encoding. */
#ifndef _HOSTSTAT_FIGURES_H
#define _HOSTSTAT_FIGURES_H

#include <linux/types.h>

#include "hoststat_proto.h"

struct pid;

/* The vCPU threads to watch: pid references taken at load, and their thread IDs. */
struct hs_vcpus {
	struct pid *pid[HS_MAX_VCPUS];
	u32 tid[HS_MAX_VCPUS];
	unsigned int n;
};

/* The header fields that are not samples. */
struct hs_record_meta {
	u64 seq;
	u32 reason;
	u64 request_seq;
	u64 dropped;
	u64 instance;
};

/* Sample now and encode a record (docs/host-kernel.md) into @rec; its size. */
size_t hs_fill_record(u8 *rec, const struct hs_record_meta *m, const struct hs_vcpus *v);
/* One figure (enum hs_figure) for a GET request: 0 or -EINVAL. */
int hs_figure(u32 figure, const struct hs_vcpus *v, u64 *value);

#endif /* _HOSTSTAT_FIGURES_H */
