// SPDX-License-Identifier: GPL-2.0
/*
 * The figures only the host kernel has: each vCPU thread's scheduler
 * statistics (sched_info.run_delay: runnable but waiting for a host CPU, i.e.
 * the vCPU's steal time; pcount; sum_exec_runtime), memory (si_meminfo,
 * si_mem_available) and the load average (avenrun). PSI's psi_system is not
 * exported to modules (6.1, 6.12), so it is not among them.
 */
#include <linux/mm.h>
#include <linux/pid.h>
#include <linux/sched.h>
#include <linux/sched/loadavg.h>
#include <linux/sched/task.h>
#include <linux/string.h>
#include <linux/ktime.h>

#include "hoststat_figures.h"
#include "hoststat_proto.h"

struct hs_memory {
	u64 total_kb, free_kb, available_kb;
};

static void read_memory(struct hs_memory *m)
{
	struct sysinfo si;

	si_meminfo(&si);
	m->total_kb = (u64)si.totalram * si.mem_unit >> 10;
	m->free_kb = (u64)si.freeram * si.mem_unit >> 10;
	m->available_kb = (u64)max(si_mem_available(), 0L) << (PAGE_SHIFT - 10);
}

/* One vCPU entry (32 bytes); a thread that is gone reads as flags 0. */
static void put_vcpu(u8 *e, struct pid *pid, u32 tid)
{
	struct task_struct *t = get_pid_task(pid, PIDTYPE_PID);

	memset(e, 0, HS_VCPU_SIZE);
	*(__le32 *)e = cpu_to_le32(tid);
	if (!t)
		return;
	*(__le32 *)(e + 4) = cpu_to_le32(1);
	/* Updated by the scheduler without our lock: each field read once. */
	*(__le64 *)(e + 8) = cpu_to_le64(READ_ONCE(t->sched_info.run_delay));
	*(__le64 *)(e + 16) = cpu_to_le64(READ_ONCE(t->sched_info.pcount));
	*(__le64 *)(e + 24) = cpu_to_le64(READ_ONCE(t->se.sum_exec_runtime));
	put_task_struct(t);
}

size_t hs_fill_record(u8 *rec, const struct hs_record_meta *m, const struct hs_vcpus *v)
{
	struct hs_memory mem;
	unsigned int i;

	read_memory(&mem);
	memset(rec, 0, HS_REC_HDR_SIZE);
	memcpy(rec, HS_REC_MAGIC, 4);
	*(__le16 *)(rec + 4) = cpu_to_le16(HS_REC_VERSION);
	*(__le16 *)(rec + 6) = cpu_to_le16(HS_VCPU_SIZE);
	*(__le64 *)(rec + 8) = cpu_to_le64(m->seq);
	*(__le64 *)(rec + 16) = cpu_to_le64(ktime_get_ns());
	*(__le32 *)(rec + 24) = cpu_to_le32(m->reason);
	*(__le32 *)(rec + 28) = cpu_to_le32(v->n);
	*(__le64 *)(rec + 32) = cpu_to_le64(m->request_seq);
	*(__le64 *)(rec + 40) = cpu_to_le64(m->dropped);
	*(__le64 *)(rec + 48) = cpu_to_le64(mem.total_kb);
	*(__le64 *)(rec + 56) = cpu_to_le64(mem.free_kb);
	*(__le64 *)(rec + 64) = cpu_to_le64(mem.available_kb);
	for (i = 0; i < 3; i++)
		*(__le32 *)(rec + 72 + 4 * i) = cpu_to_le32((u32)READ_ONCE(avenrun[i]));
	*(__le64 *)(rec + 88) = cpu_to_le64(m->instance);
	for (i = 0; i < v->n; i++)
		put_vcpu(rec + HS_REC_HDR_SIZE + i * HS_VCPU_SIZE, v->pid[i], v->tid[i]);
	return HS_REC_HDR_SIZE + v->n * HS_VCPU_SIZE;
}

int hs_figure(u32 figure, const struct hs_vcpus *v, u64 *value)
{
	struct hs_memory mem;
	u8 e[HS_VCPU_SIZE];

	if (figure >= HS_FIG_RUN_DELAY) {
		if (figure - HS_FIG_RUN_DELAY >= v->n)
			return -EINVAL;
		put_vcpu(e, v->pid[figure - HS_FIG_RUN_DELAY], v->tid[figure - HS_FIG_RUN_DELAY]);
		*value = le64_to_cpup((__le64 *)(e + 8));
		return 0;
	}
	read_memory(&mem);
	switch (figure) {
	case HS_FIG_MEM_TOTAL_KB:
		*value = mem.total_kb;
		return 0;
	case HS_FIG_MEM_FREE_KB:
		*value = mem.free_kb;
		return 0;
	case HS_FIG_MEM_AVAILABLE_KB:
		*value = mem.available_kb;
		return 0;
	case HS_FIG_LOAD1:
		*value = READ_ONCE(avenrun[0]);
		return 0;
	default:
		return -EINVAL;
	}
}
