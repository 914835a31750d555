// SPDX-License-Identifier: MIT
/*
 * lib/msg: uses nothing but its own header.
 *
 * SPSC ring of variable-size records (docs/ring.md).
 *
 * Shared control block (IVSHMEM_RING_CTRL_SIZE bytes, little-endian):
 *     0  u64 prod         next byte the producer writes (free-running)
 *   128  u64 cons         next byte the consumer reads (free-running)
 *   256  u32 cons_armed   consumer sleeps: kick it after publishing prod
 *   384  u32 prod_armed   producer sleeps: kick it after publishing cons
 * Each field has its own 128-byte block so the two sides never share a line
 * (and the adjacent-line prefetcher does not pair them).
 *
 * Why the ordering is right (no lost wake-up): a publisher does
 *     store(own index, seq_cst); if (load(peer armed, seq_cst)) kick;
 * and a side going to sleep does
 *     store(own armed = 1, seq_cst); if (load(peer index, seq_cst) moved) don't sleep;
 * Both pairs are seq_cst, so at least one side sees the other's store
 * (Dekker): either the sleeper sees the new index, or the publisher sees the
 * armed flag and kicks.
 */
#include "ivshmem/ring.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

enum {
	C_PROD = 0,
	C_CONS = 128,
	C_CONS_ARMED = 256,
	C_PROD_ARMED = 384,
};

#define REC_PAD		1u	/* record flag: filler up to the end of the data area */

static inline uint64_t *ctl64(const struct ivshmem_ring *r, unsigned int off)
{
	return (uint64_t *)((char *)r->ctrl + off);
}

static inline uint32_t *ctl32(const struct ivshmem_ring *r, unsigned int off)
{
	return (uint32_t *)((char *)r->ctrl + off);
}

static inline uint64_t load_idx(const struct ivshmem_ring *r, unsigned int off, int order)
{
	return le64toh(__atomic_load_n(ctl64(r, off), order));
}

static inline void store_idx(const struct ivshmem_ring *r, unsigned int off, uint64_t v, int order)
{
	__atomic_store_n(ctl64(r, off), htole64(v), order);
}

static inline uint64_t rec_total(uint64_t len)
{
	return (IVSHMEM_RING_HDR_SIZE + len + IVSHMEM_RING_ALIGN - 1) &
	       ~(uint64_t)(IVSHMEM_RING_ALIGN - 1);
}

static int broken(struct ivshmem_ring *r)
{
	r->broken = -EBADMSG;
	return -EBADMSG;
}

void ivshmem_ring_format(void *ctrl)
{
	memset(ctrl, 0, IVSHMEM_RING_CTRL_SIZE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

int ivshmem_ring_attach(struct ivshmem_ring *r, void *ctrl, void *data, uint64_t cap,
			enum ivshmem_ring_role role)
{
	uint64_t prod, cons;

	memset(r, 0, sizeof(*r));
	if (!ctrl || !data || cap < IVSHMEM_RING_MIN_CAP || (cap & (cap - 1)) ||
	    ((uintptr_t)data % IVSHMEM_RING_ALIGN) || ((uintptr_t)ctrl % 8) ||
	    (role != IVSHMEM_RING_PRODUCER && role != IVSHMEM_RING_CONSUMER))
		return -EINVAL;
	r->ctrl = ctrl;
	r->data = data;
	r->cap = cap;
	r->mask = cap - 1;
	r->role = role;
	prod = load_idx(r, C_PROD, __ATOMIC_ACQUIRE);
	cons = load_idx(r, C_CONS, __ATOMIC_ACQUIRE);
	if (prod - cons > cap || (prod | cons) % IVSHMEM_RING_ALIGN)
		return broken(r);
	if (role == IVSHMEM_RING_PRODUCER) {
		r->local = r->published = prod;
		r->remote = cons;
	} else {
		r->local = r->published = cons;
		r->remote = prod;
	}
	return 0;
}

size_t ivshmem_ring_max_record(const struct ivshmem_ring *r)
{
	return (size_t)(r->cap / 2 - IVSHMEM_RING_HDR_SIZE);
}

/* Producer: re-read the consumer index; it may only move forward up to what we published. */
static int producer_refresh(struct ivshmem_ring *r, int order)
{
	uint64_t c = load_idx(r, C_CONS, order);

	if (c - r->remote > r->published - r->remote || c % IVSHMEM_RING_ALIGN)
		return broken(r);
	r->remote = c;
	return 0;
}

/* Consumer: re-read the producer index; forward only, never more than cap ahead of us. */
static int consumer_refresh(struct ivshmem_ring *r, int order)
{
	uint64_t p = load_idx(r, C_PROD, order);

	if (p - r->local > r->cap || p - r->local < r->remote - r->local ||
	    p % IVSHMEM_RING_ALIGN)
		return broken(r);
	r->remote = p;
	return 0;
}

/* Bytes a record of @len needs at the current position, including a pad to the end. */
static uint64_t space_needed(const struct ivshmem_ring *r, size_t len)
{
	uint64_t total = rec_total(len);
	uint64_t contig = r->cap - (r->local & r->mask);

	return total <= contig ? total : contig + total;
}

static void kick(struct ivshmem_ring *r, unsigned int armed_off)
{
	uint32_t *armed = ctl32(r, armed_off);

	/* Load first: the common case (peer awake) must not write the peer's line. */
	if (__atomic_load_n(armed, __ATOMIC_SEQ_CST) == 0)
		return;
	if (__atomic_exchange_n(armed, 0, __ATOMIC_SEQ_CST) == 0)
		return;
	r->kicks++;
	if (r->kick)
		r->kick(r->kick_arg);
}

int ivshmem_ring_publish(struct ivshmem_ring *r)
{
	bool prod = r->role == IVSHMEM_RING_PRODUCER;

	if (r->broken)
		return r->broken;
	if (r->local == r->published)
		return 0;
	store_idx(r, prod ? C_PROD : C_CONS, r->local, __ATOMIC_SEQ_CST);
	r->published = r->local;
	kick(r, prod ? C_CONS_ARMED : C_PROD_ARMED);
	return 0;
}

int ivshmem_ring_reserve(struct ivshmem_ring *r, size_t len, void **buf)
{
	uint64_t need, off, contig;

	if (r->broken)
		return r->broken;
	if (r->role != IVSHMEM_RING_PRODUCER)
		return -EINVAL;
	if (len > ivshmem_ring_max_record(r))
		return -EMSGSIZE;
	need = space_needed(r, len);
	if (r->cap - (r->local - r->remote) < need) {
		int ret = producer_refresh(r, __ATOMIC_ACQUIRE);

		if (ret < 0)
			return ret;
		if (r->cap - (r->local - r->remote) < need)
			return -EAGAIN;
	}
	off = r->local & r->mask;
	contig = r->cap - off;
	if (rec_total(len) > contig) {
		/* Fill the tail with a pad record; it is published with the next commit. */
		uint32_t pad[2] = { htole32((uint32_t)(contig - IVSHMEM_RING_HDR_SIZE)),
				    htole32(REC_PAD) };

		memcpy(r->data + off, pad, sizeof(pad));
		r->local += contig;
		off = 0;
	}
	r->pending_len = len;
	*buf = r->data + off + IVSHMEM_RING_HDR_SIZE;
	return 0;
}

int ivshmem_ring_commit(struct ivshmem_ring *r, size_t len, unsigned int flags)
{
	uint32_t hdr[2];

	if (r->broken)
		return r->broken;
	if (r->role != IVSHMEM_RING_PRODUCER || len > r->pending_len)
		return -EINVAL;
	hdr[0] = htole32((uint32_t)len);
	hdr[1] = 0;
	memcpy(r->data + (r->local & r->mask), hdr, sizeof(hdr));
	r->local += rec_total(len);
	r->pending_len = 0;
	r->records++;
	if (flags & IVSHMEM_RING_MORE)
		return 0;
	return ivshmem_ring_publish(r);
}

int ivshmem_ring_send(struct ivshmem_ring *r, const void *buf, size_t len, unsigned int flags)
{
	void *dst;
	int ret = ivshmem_ring_reserve(r, len, &dst);

	if (ret < 0)
		return ret;
	memcpy(dst, buf, len);
	return ivshmem_ring_commit(r, len, flags);
}

int ivshmem_ring_peek(struct ivshmem_ring *r, const void **buf, size_t *len)
{
	if (r->broken)
		return r->broken;
	if (r->role != IVSHMEM_RING_CONSUMER)
		return -EINVAL;
	/* At most one pad and one record: this never loops on hostile contents. */
	for (int pass = 0; pass < 2; pass++) {
		uint64_t avail = r->remote - r->local;
		uint64_t off, contig, total, hdr;
		uint32_t rlen, rflags;

		if (avail == 0) {
			int ret = consumer_refresh(r, __ATOMIC_ACQUIRE);

			if (ret < 0)
				return ret;
			avail = r->remote - r->local;
			if (avail == 0)
				return -EAGAIN;
		}
		off = r->local & r->mask;
		contig = r->cap - off;
		/* One aligned 8-byte load: the header is fetched exactly once. */
		hdr = *(const volatile uint64_t *)(r->data + off);
		hdr = le64toh(hdr);
		rlen = (uint32_t)hdr;
		rflags = (uint32_t)(hdr >> 32);
		if (rflags == REC_PAD) {
			/* A pad fills exactly the rest of the area, and never starts at 0. */
			if (off == 0 || rlen != contig - IVSHMEM_RING_HDR_SIZE || contig > avail)
				return broken(r);
			r->local += contig;
			continue;
		}
		if (rflags != 0 || rlen > ivshmem_ring_max_record(r))
			return broken(r);
		total = rec_total(rlen);
		if (total > contig || total > avail)
			return broken(r);
		r->pending_len = total;
		*buf = r->data + off + IVSHMEM_RING_HDR_SIZE;
		*len = rlen;
		return 0;
	}
	return broken(r);	/* two pads in a row */
}

int ivshmem_ring_release(struct ivshmem_ring *r, unsigned int flags)
{
	if (r->broken)
		return r->broken;
	if (r->role != IVSHMEM_RING_CONSUMER || r->pending_len == 0)
		return -EINVAL;
	r->local += r->pending_len;
	r->pending_len = 0;
	r->records++;
	if (flags & IVSHMEM_RING_MORE)
		return 0;
	return ivshmem_ring_publish(r);
}

ssize_t ivshmem_ring_recv(struct ivshmem_ring *r, void *buf, size_t cap, unsigned int flags)
{
	const void *src;
	size_t len;
	int ret = ivshmem_ring_peek(r, &src, &len);

	if (ret < 0)
		return ret;
	if (len > cap)
		return -EMSGSIZE;
	memcpy(buf, src, len);
	ret = ivshmem_ring_release(r, flags);
	return ret < 0 ? ret : (ssize_t)len;
}

int ivshmem_ring_arm(struct ivshmem_ring *r, size_t need)
{
	int ret;

	if (r->broken)
		return r->broken;
	if (r->role == IVSHMEM_RING_CONSUMER) {
		if (r->remote != r->local)
			return 1;
		__atomic_store_n(ctl32(r, C_CONS_ARMED), 1, __ATOMIC_SEQ_CST);
		ret = consumer_refresh(r, __ATOMIC_SEQ_CST);
		if (ret < 0)
			return ret;
		if (r->remote != r->local) {
			ivshmem_ring_disarm(r);
			return 1;
		}
		return 0;
	}
	if (need > ivshmem_ring_max_record(r))
		return -EMSGSIZE;
	if (r->cap - (r->local - r->remote) >= space_needed(r, need))
		return 1;
	__atomic_store_n(ctl32(r, C_PROD_ARMED), 1, __ATOMIC_SEQ_CST);
	ret = producer_refresh(r, __ATOMIC_SEQ_CST);
	if (ret < 0)
		return ret;
	if (r->cap - (r->local - r->remote) >= space_needed(r, need)) {
		ivshmem_ring_disarm(r);
		return 1;
	}
	return 0;
}

void ivshmem_ring_disarm(struct ivshmem_ring *r)
{
	unsigned int off = r->role == IVSHMEM_RING_CONSUMER ? C_CONS_ARMED : C_PROD_ARMED;

	if (__atomic_load_n(ctl32(r, off), __ATOMIC_RELAXED))
		__atomic_store_n(ctl32(r, off), 0, __ATOMIC_RELAXED);
}

int64_t ivshmem_ring_used(struct ivshmem_ring *r)
{
	int ret;

	if (r->broken)
		return r->broken;
	if (r->role == IVSHMEM_RING_CONSUMER) {
		ret = consumer_refresh(r, __ATOMIC_ACQUIRE);
		return ret < 0 ? ret : (int64_t)(r->remote - r->local);
	}
	ret = producer_refresh(r, __ATOMIC_ACQUIRE);
	return ret < 0 ? ret : (int64_t)(r->local - r->remote);
}

bool ivshmem_ring_readable(const struct ivshmem_ring *r)
{
	if (r->broken)
		return true;	/* so the caller calls peek and gets the error */
	return r->remote != r->local || load_idx(r, C_PROD, __ATOMIC_RELAXED) != r->local;
}

bool ivshmem_ring_writable(struct ivshmem_ring *r, size_t len)
{
	if (r->broken)
		return true;
	if (len > ivshmem_ring_max_record(r))
		return false;
	if (r->cap - (r->local - r->remote) >= space_needed(r, len))
		return true;
	if (producer_refresh(r, __ATOMIC_ACQUIRE) < 0)
		return true;
	return r->cap - (r->local - r->remote) >= space_needed(r, len);
}
