// SPDX-License-Identifier: GPL-2.0
/*
 * ivshmem_hoststat_guest.ko: the guest-kernel side of the example
 * (docs/host-kernel.md, "Example module"), on the guest driver's in-kernel
 * API <linux/ivshmem.h>. At load it finds the request area @section in the
 * layout of /dev/ivshmem@index, reads where the host module listens, and
 * makes @rounds requests over doorbells, alternating PUBLISH (a record now)
 * and GET (mem_total_kb), each answered on own vector @vector. Loading fails
 * with the first error, so "insmod succeeded" is the verdict; the counters
 * stay readable until unload.
 */
#include <linux/completion.h>
#include <linux/err.h>
#include <linux/ivshmem.h>
#include <linux/module.h>

#include "hoststat_proto.h"

static unsigned int index;
module_param(index, uint, 0444);
MODULE_PARM_DESC(index, "N of /dev/ivshmemN");

static uint vector = 1;
module_param(vector, uint, 0444);
MODULE_PARM_DESC(vector, "own vector the answers ring");

static uint rounds = 100;
module_param(rounds, uint, 0444);
MODULE_PARM_DESC(rounds, "requests made at load");

static char *section = "hoststat-req";
module_param(section, charp, 0444);
MODULE_PARM_DESC(section, "raw section holding the request/answer area");

static ulong requests, answers, published, not_connected;
module_param(requests, ulong, 0444);
module_param(answers, ulong, 0444);
module_param(published, ulong, 0444);
module_param(not_connected, ulong, 0444);

static struct ivshmem_dev *hg_dev;
static DECLARE_COMPLETION(hg_answered);
static bool hg_removed;		/* the device is going: stop touching its memory */

/* Hard IRQ: the host rang our vector. */
static void hg_irq(void *data, unsigned int vec)
{
	complete(&hg_answered);
}

/* Process context, before the device's memory is unmapped. */
static void hg_remove(void *data)
{
	WRITE_ONCE(hg_removed, true);
	complete(&hg_answered);
}

/* Where the host module listens: its block, read once, checked. */
static int hg_host(const u8 *req, u16 *peer, u16 *vec)
{
	u32 p, v;

	if (hs_acq32(req + HS_H_STATE) != 1 || hs_ld32(req + HS_H_VERSION) != HS_REQ_VERSION) {
		pr_err("ivshmem_hoststat_guest: the host module does not serve %s\n", section);
		return -ENOTCONN;
	}
	p = hs_ld32(req + HS_H_PEER);
	v = hs_ld32(req + HS_H_VECTOR);
	if (p > 0xffff || v > 0xffff)
		return -EBADMSG;
	*peer = p;
	*vec = v;
	return 0;
}

/* One request and its answer; the answer's value check is the caller's. */
static int hg_request(u8 *req, u32 own_id, u16 peer, u16 vec, u32 command, u64 *value)
{
	u8 *g = req + HS_REQ_GUEST;
	u64 seq = hs_acq64(req + HS_H_ANSWERED) + 1;
	int ret;

	reinit_completion(&hg_answered);
	hs_st32(g + HS_G_COMMAND, command);
	hs_st32(g + HS_G_FIGURE, HS_FIG_MEM_TOTAL_KB);
	hs_st32(g + HS_G_REPLY_PEER, own_id);
	hs_st32(g + HS_G_REPLY_VECTOR, vector);
	hs_rel64(g + HS_G_SEQ, seq);
	requests++;
	ret = ivshmem_dev_ring(hg_dev, peer, vec);
	if (ret)
		return ret;
	if (!wait_for_completion_timeout(&hg_answered, 5 * HZ)) {
		pr_err("ivshmem_hoststat_guest: no answer to request %llu in 5 s\n", seq);
		return -ETIMEDOUT;
	}
	if (READ_ONCE(hg_removed))
		return -ENODEV;
	if (hs_acq64(req + HS_H_ANSWERED) != seq)
		return -EBADMSG;
	answers++;
	ret = hs_ld32(req + HS_H_STATUS);
	*value = hs_ld64(req + (command == HS_CMD_GET ? HS_H_VALUE : HS_H_RECORD_SEQ));
	return ret;
}

static int hg_run(void)
{
	struct ivshmem_info info;
	struct hs_section s;
	u64 value, last_record = 0;
	const char *why;
	u16 peer, vec;
	unsigned int i;
	void *addr;
	u64 size;
	u8 *req;
	int ret;

	ret = ivshmem_dev_info(hg_dev, &info);
	if (!ret)
		ret = ivshmem_dev_region(hg_dev, &addr, &size);
	if (!ret)
		ret = ivshmem_dev_set_remove_callback(hg_dev, hg_remove, NULL);
	if (ret)
		return ret;
	if (!(info.flags & IVSHMEM_INFO_DOORBELL) || vector >= info.vectors)
		return -EOPNOTSUPP;
	ret = hs_layout_find(addr, size, section, HS_SEC_RAW, &s, &why);
	if (!ret && s.size < HS_REQ_SIZE)
		ret = -ENOSPC;
	if (ret) {
		pr_err("ivshmem_hoststat_guest: section %s: %s (%d)\n", section, why, ret);
		return ret;
	}
	req = (u8 *)addr + s.offset;
	ret = hg_host(req, &peer, &vec);
	if (ret)
		return ret;
	ret = ivshmem_dev_set_callback(hg_dev, vector, hg_irq, NULL);
	if (ret)
		return ret;
	for (i = 0; i < rounds && !READ_ONCE(hg_removed); i++) {
		u32 command = i % 2 ? HS_CMD_GET : HS_CMD_PUBLISH;

		ret = hg_request(req, info.ivposition, peer, vec, command, &value);
		if (ret == ENOTCONN && command == HS_CMD_PUBLISH) {
			not_connected++;
			continue;
		}
		if (ret)
			break;
		/* Plausible answers: RAM is not 0, record numbers only grow. */
		if (command == HS_CMD_GET && !value)
			ret = -EBADMSG;
		if (command == HS_CMD_PUBLISH && value <= last_record)
			ret = -EBADMSG;
		if (ret)
			break;
		if (command == HS_CMD_PUBLISH) {
			published++;
			last_record = value;
		}
	}
	ivshmem_dev_set_callback(hg_dev, vector, NULL, NULL);
	if (ret > 0) {
		pr_err("ivshmem_hoststat_guest: the host answered status %d\n", ret);
		ret = -EPROTO;
	}
	if (!ret)
		pr_info("ivshmem_hoststat_guest: %lu requests, %lu answers, %lu records published, %lu with no reader\n",
			requests, answers, published, not_connected);
	return ret;
}

static int __init hg_init(void)
{
	int ret;

	hg_dev = ivshmem_dev_get(index);
	if (IS_ERR(hg_dev))
		return PTR_ERR(hg_dev);
	ret = hg_run();
	if (ret) {
		pr_err("ivshmem_hoststat_guest: failed: %d\n", ret);
		ivshmem_dev_set_remove_callback(hg_dev, NULL, NULL);
		ivshmem_dev_put(hg_dev);
	}
	return ret;
}

static void __exit hg_exit(void)
{
	ivshmem_dev_set_remove_callback(hg_dev, NULL, NULL);
	ivshmem_dev_put(hg_dev);
}

module_init(hg_init);
module_exit(hg_exit);
MODULE_DESCRIPTION("ivshmem guest-kernel example: requests to the host-kernel module over doorbells");
MODULE_LICENSE("GPL");
