// SPDX-License-Identifier: GPL-2.0
/*
 * ivshmem_hoststat.ko: an example host-kernel user of <linux/ivshmem_host.h>
 * (docs/host-kernel.md, "Example module"). It finds the attached region
 * @region, publishes host figures (vCPU steal time, memory, load) into the
 * send-only end of channel @channel, and answers requests that a guest makes
 * through the raw section @request_area and a doorbell on own vector @vector.
 *
 * One mutex (hs_lock) serialises the tick work, the request work and the
 * remove callback: whoever holds it and sees hs_base set may touch the
 * region. The remove callback clears hs_base under it, so no one touches
 * the region once that callback returns.
 */
#include <linux/err.h>
#include <linux/ivshmem_host.h>
#include <linux/jiffies.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pid.h>
#include <linux/random.h>
#include <linux/workqueue.h>

#include "hoststat_channel.h"
#include "hoststat_figures.h"
#include "hoststat_proto.h"

static char *region = "hoststat";
module_param(region, charp, 0444);
MODULE_PARM_DESC(region, "name of the attached region (IVSHMEM_HOST_IOCTL_ATTACH)");

static char *channel = "hoststat";
module_param(channel, charp, 0444);
MODULE_PARM_DESC(channel, "channel section to publish into (send-only end)");

static char *request_area = "hoststat-req";
module_param(request_area, charp, 0444);
MODULE_PARM_DESC(request_area, "raw section holding the request/answer area");

static uint vector;
module_param(vector, uint, 0444);
MODULE_PARM_DESC(vector, "own vector that guests ring with a request");

static int vcpu_tids[HS_MAX_VCPUS];
static int nr_vcpu_tids;
module_param_array(vcpu_tids, int, &nr_vcpu_tids, 0444);
MODULE_PARM_DESC(vcpu_tids, "thread IDs of the QEMU vCPU threads (up to 64)");

static uint period_ms = 1000;
module_param(period_ms, uint, 0644);
MODULE_PARM_DESC(period_ms, "publish period (ms) while a reader is connected; 0: on request only");

static uint tick_ms = 100;
module_param(tick_ms, uint, 0444);
MODULE_PARM_DESC(tick_ms, "heartbeat and liveness period (10..1000 ms)");

/* Counters, for reconciling with the reader and the requester. */
static ulong published, published_on_request, dropped, requests, answers, bad_requests;
static ulong spurious, ring_errors, opens, removals, reader_kicks, kick_errors;
static int connected;
module_param(published, ulong, 0444);
module_param(published_on_request, ulong, 0444);
module_param(dropped, ulong, 0444);
module_param(requests, ulong, 0444);
module_param(answers, ulong, 0444);
module_param(bad_requests, ulong, 0444);
module_param(spurious, ulong, 0444);
module_param(ring_errors, ulong, 0444);
module_param(opens, ulong, 0444);
module_param(removals, ulong, 0444);
module_param(connected, int, 0444);
module_param(reader_kicks, ulong, 0444);
MODULE_PARM_DESC(reader_kicks, "doorbells rung at an armed reader, since the region was attached");
module_param(kick_errors, ulong, 0444);

static DEFINE_MUTEX(hs_lock);
static struct ivshmem_host_region *hs_region;	/* our reference, or NULL */
static u8 *hs_base;		/* the region's mapping while usable, else NULL */
static u8 *hs_req;		/* the request area in it, or NULL */
static struct hs_channel hs_ch;
static bool hs_ch_ready;	/* hs_ch validated for this attachment */
static struct hs_vcpus hs_vcpus;
static u64 hs_seq, hs_instance, hs_answered, hs_last_publish_ns;
static int hs_last_err;		/* the last setup error logged, to log each once */
static u8 hs_rec[HS_REC_MAX_SIZE] __aligned(8);

static void hs_tick_fn(struct work_struct *work);
static void hs_request_fn(struct work_struct *work);
static DECLARE_DELAYED_WORK(hs_tick, hs_tick_fn);
static DECLARE_WORK(hs_request, hs_request_fn);

static void hs_log_once(int err, const char *what, const char *why)
{
	if (err == hs_last_err)
		return;
	hs_last_err = err;
	pr_warn("ivshmem_hoststat: region %s: %s: %s (%d); retrying\n", region, what, why, err);
}

/* ---- publishing ---------------------------------------------------------------- */

/* One record; the caller holds hs_lock and the channel is connected. */
static int hs_publish(u32 reason, u64 request_seq)
{
	struct hs_record_meta m = {
		.seq = hs_seq + 1, .reason = reason, .request_seq = request_seq,
		.dropped = dropped, .instance = hs_instance,
	};
	size_t len = hs_fill_record(hs_rec, &m, &hs_vcpus);
	int ret = hs_channel_send(&hs_ch, hs_rec, len);

	hs_seq++;	/* also when dropped: the reader sees the gap and the count */
	if (ret == -EAGAIN)
		dropped++;
	if (ret)
		return ret;
	published++;
	if (reason == HS_REASON_REQUEST)
		published_on_request++;
	hs_last_publish_ns = ktime_get_ns();
	return 0;
}

/* ---- requests ------------------------------------------------------------------ */

/* Own-vector doorbell: eventfd wake-up, atomic context. Only queue the work. */
static void hs_doorbell(void *data, unsigned int vec)
{
	queue_work(system_wq, &hs_request);
}

/* The request's answer: 0 or a negative errno (stored positive, docs/host-kernel.md). */
static int hs_answer(u32 command, u32 figure, u64 seq, u64 *value, u64 *record_seq)
{
	int ret;

	switch (command) {
	case HS_CMD_PUBLISH:
		if (hs_ch.state != HS_CHAN_CONNECTED)
			return -ENOTCONN;
		ret = hs_publish(HS_REASON_REQUEST, seq);
		if (ret == -EAGAIN)
			return -ENOBUFS;
		if (ret)
			return -ENOTCONN;
		*record_seq = hs_seq;
		return 0;
	case HS_CMD_GET:
		return hs_figure(figure, &hs_vcpus, value);
	default:
		return -EINVAL;
	}
}

static void hs_request_fn(struct work_struct *work)
{
	u64 seq, value = 0, record_seq = 0;
	u32 command, figure, rpeer, rvec;
	int status;
	u8 *g;

	mutex_lock(&hs_lock);
	if (!hs_req) {
		spurious++;
		goto out;
	}
	g = hs_req + HS_REQ_GUEST;
	seq = hs_acq64(g + HS_G_SEQ);	/* then every other field, once each */
	if (seq == hs_answered) {
		spurious++;
		goto out;
	}
	command = hs_ld32(g + HS_G_COMMAND);
	figure = hs_ld32(g + HS_G_FIGURE);
	rpeer = hs_ld32(g + HS_G_REPLY_PEER);
	rvec = hs_ld32(g + HS_G_REPLY_VECTOR);
	requests++;
	status = hs_answer(command, figure, seq, &value, &record_seq);
	if (status == -EINVAL)
		bad_requests++;
	hs_st32(hs_req + HS_H_STATUS, -status);
	hs_st64(hs_req + HS_H_VALUE, value);
	hs_st64(hs_req + HS_H_RECORD_SEQ, record_seq);
	hs_rel64(hs_req + HS_H_ANSWERED, seq);
	hs_answered = seq;
	answers++;
	/* A requester that asked for no doorbell polls "answered". */
	if (rpeer != HS_NO_REPLY &&
	    (rpeer > 0xffff || rvec > 0xffff ||
	     ivshmem_host_ring(hs_region, (u16)rpeer, (u16)rvec)))
		ring_errors++;
out:
	mutex_unlock(&hs_lock);
}

/* Publish our identity in the host block; state last, so a reader sees the rest. */
static void hs_serve(int own_id)
{
	hs_answered = hs_acq64(hs_req + HS_H_ANSWERED);
	hs_st32(hs_req + HS_H_VERSION, HS_REQ_VERSION);
	hs_st32(hs_req + HS_H_PEER, own_id);
	hs_st32(hs_req + HS_H_VECTOR, vector);
	hs_st64(hs_req + HS_H_INSTANCE, hs_instance);
	hs_rel32(hs_req + HS_H_STATE, 1);
}

/* ---- the region ------------------------------------------------------------------ */

/* Stop using the region: close our end, stop serving, drop callbacks and reference. */
static void hs_detach(bool memory_usable)
{
	if (!hs_region)
		return;
	ivshmem_host_set_callback(hs_region, vector, NULL, NULL);
	if (memory_usable && hs_base) {
		hs_channel_close(&hs_ch);
		if (hs_req)
			hs_rel32(hs_req + HS_H_STATE, 0);
	}
	hs_base = NULL;
	hs_req = NULL;
	hs_ch_ready = false;
	connected = 0;
	ivshmem_host_set_remove_callback(hs_region, NULL, NULL);
	ivshmem_host_put(hs_region);
	hs_region = NULL;
}

/* Process context, before the region is unmapped. */
static void hs_removed(void *data)
{
	mutex_lock(&hs_lock);
	removals++;
	hs_detach(true);	/* still mapped: close the end so the reader gets EPIPE */
	mutex_unlock(&hs_lock);
	pr_info("ivshmem_hoststat: region %s removed; waiting for it to come back\n", region);
}

/* Find the sections in the region's layout (an untrusted snapshot) and set up. */
static int hs_setup(void *addr, u64 size, int own_id)
{
	struct hs_section ch, req;
	const char *why;
	int ret;

	ret = hs_layout_find(addr, size, channel, HS_SEC_CHANNEL, &ch, &why);
	if (ret) {
		hs_log_once(ret, channel, why);
		return ret;
	}
	ret = hs_layout_find(addr, size, request_area, HS_SEC_RAW, &req, &why);
	if (!ret && req.size < HS_REQ_SIZE) {
		ret = -ENOSPC;
		why = "request area smaller than 256 bytes";
	}
	if (ret) {
		hs_log_once(ret, request_area, why);
		return ret;
	}
	ret = hs_channel_init(&hs_ch, hs_region, addr, ch.offset, ch.size, own_id, tick_ms);
	if (!ret && hs_channel_max_record(&hs_ch) < HS_REC_HDR_SIZE + hs_vcpus.n * HS_VCPU_SIZE) {
		ret = -EMSGSIZE;
		hs_ch.why = "its ring is too small for one record";
	}
	if (ret) {
		hs_log_once(ret, channel, hs_ch.why);
		return ret;
	}
	hs_base = addr;
	hs_req = (u8 *)addr + req.offset;
	hs_ch_ready = true;
	hs_serve(own_id);
	return 0;
}

/* The region may be attached after we load, or again after a removal. */
static void hs_attach(void)
{
	struct ivshmem_host_region *r = ivshmem_host_get(region);
	void *addr;
	u64 size;
	int own_id, ret;

	if (IS_ERR(r))
		return;
	hs_region = r;
	own_id = ivshmem_host_own_id(r);
	ret = ivshmem_host_set_remove_callback(r, hs_removed, NULL);
	if (!ret)
		ret = ivshmem_host_region(r, &addr, &size);
	if (!ret && own_id < 0)
		ret = own_id;
	if (!ret)
		ret = hs_setup(addr, size, own_id);
	if (!ret)
		ret = ivshmem_host_set_callback(r, vector, hs_doorbell, NULL);
	if (ret) {
		if (ret == -EBUSY || ret == -EINVAL)
			hs_log_once(ret, "vector", "taken or out of range");
		hs_detach(false);
		return;
	}
	hs_last_err = 0;
	pr_info("ivshmem_hoststat: region %s: serving as peer %d, vector %u, %u vCPUs\n",
		region, own_id, vector, hs_vcpus.n);
}

/* The channel: open it, keep it alive, reopen it for the next reader. */
static void hs_run_channel(void)
{
	enum hs_chan_state st;
	u64 period = (u64)READ_ONCE(period_ms) * NSEC_PER_MSEC;

	if (hs_ch.state == HS_CHAN_CLOSED) {
		int ret = hs_channel_try_open(&hs_ch);

		if (ret == -EBADMSG)
			hs_log_once(ret, channel, hs_ch.why);
		if (ret)
			return;
		opens++;
	}
	st = hs_channel_tick(&hs_ch);
	connected = st == HS_CHAN_CONNECTED;
	reader_kicks = hs_ch.kicks;
	kick_errors = hs_ch.kick_errors;
	if (st == HS_CHAN_CONNECTED && period && ktime_get_ns() - hs_last_publish_ns >= period)
		hs_publish(HS_REASON_PERIODIC, 0);
	if (st == HS_CHAN_PEER_CLOSED || st == HS_CHAN_PEER_DEAD || st == HS_CHAN_BROKEN) {
		pr_info("ivshmem_hoststat: channel %s: %s; closing our end\n", channel, hs_ch.why);
		hs_channel_close(&hs_ch);
		connected = 0;
	}
}

static void hs_tick_fn(struct work_struct *work)
{
	mutex_lock(&hs_lock);
	if (!hs_region)
		hs_attach();
	if (hs_base && hs_ch_ready)
		hs_run_channel();
	mutex_unlock(&hs_lock);
	queue_delayed_work(system_wq, &hs_tick, msecs_to_jiffies(tick_ms));
}

/* ---- module -------------------------------------------------------------------- */

static void hs_put_pids(void)
{
	unsigned int i;

	for (i = 0; i < hs_vcpus.n; i++)
		put_pid(hs_vcpus.pid[i]);
	hs_vcpus.n = 0;
}

static int __init hs_init(void)
{
	int i;

	if (tick_ms < 10 || tick_ms > 1000) {
		pr_err("ivshmem_hoststat: tick_ms=%u is not 10..1000\n", tick_ms);
		return -EINVAL;
	}
	/* Thread IDs in the pid namespace of whoever loads us. */
	for (i = 0; i < nr_vcpu_tids; i++) {
		struct pid *pid = vcpu_tids[i] > 0 ? find_get_pid(vcpu_tids[i]) : NULL;

		if (!pid) {
			pr_err("ivshmem_hoststat: vcpu_tids: no thread %d\n", vcpu_tids[i]);
			hs_put_pids();
			return -ESRCH;
		}
		hs_vcpus.pid[i] = pid;
		hs_vcpus.tid[i] = vcpu_tids[i];
		hs_vcpus.n = i + 1;
	}
	hs_instance = get_random_u64();
	queue_delayed_work(system_wq, &hs_tick, 0);
	return 0;
}

static void __exit hs_exit(void)
{
	cancel_delayed_work_sync(&hs_tick);
	mutex_lock(&hs_lock);
	hs_detach(true);	/* the vector callback is cleared: no new request work */
	mutex_unlock(&hs_lock);
	cancel_work_sync(&hs_request);
	hs_put_pids();
	pr_info("ivshmem_hoststat: unloaded: published %lu (%lu on request), dropped %lu, requests %lu, answers %lu, bad %lu, spurious %lu\n",
		published, published_on_request, dropped, requests, answers, bad_requests,
		spurious);
}

module_init(hs_init);
module_exit(hs_exit);
MODULE_DESCRIPTION("ivshmem host-kernel example: host figures into a channel, answers over doorbells");
MODULE_LICENSE("GPL");
