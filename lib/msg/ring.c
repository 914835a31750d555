// SPDX-License-Identifier: MIT
/*
 * lib/msg: uses nothing but its own header.
 *
 * SPSC ring of variable-size records, format version 2 (docs/ring.md).
 *
 * Shared control block (IVSHMEM_RING_CTRL_SIZE bytes, little-endian):
 *     0  u64 prod         after the last published record (attach/monitoring only)
 *   128  u64 cons         next byte the consumer reads, published in batches
 *   256  u32 cons_armed   consumer sleeps: kick it after publishing a record
 *   384  u32 prod_armed   producer sleeps: kick it after publishing cons
 * Each field has its own 128-byte block so the two sides never share a line
 * (and the adjacent-line prefetcher does not pair them).
 *
 * Record header, one aligned 64-bit word: u32 info (length, bit 31 = pad),
 * u32 tag = ~(u32)(pos >> 3). A wrong tag means "empty", so the consumer
 * polls the record's own line, never prod. The producer keeps an invalid
 * marker at its own position (written before it releases the header before
 * it), so stale bytes of an older lap never pass for a record.
 *
 * No lost wake-up: publisher "store; full fence; load peer_armed", sleeper
 * "store own_armed; full fence; re-check". Both fences are StoreLoad
 * barriers, so at least one side sees the other's store (Dekker). The
 * argument for both directions, and why batched cons still always wakes a
 * blocked producer, is in docs/ring.md.
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

#define INFO_PAD	(1u << 31)	/* header info: filler up to the end of the data area */
#define INFO_LEN	(INFO_PAD - 1)
#define PREFETCH_AHEAD	1024u		/* prefetchw this far ahead of the producer */
#define LINE		64u

#if defined(__SANITIZE_THREAD__)
#define RING_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RING_TSAN 1
#endif
#endif

/*
 * The full (StoreLoad) barrier of the wake-up protocol, on a private line.
 * IVSHMEM_RING_TEST_BROKEN builds a deliberately broken variant for
 * tests/host/test_ring_torture.c, which must catch it losing a wake-up: no
 * fence, and the consumer's re-check of the header after arming is dropped
 * (as if its load had moved before its store, which the fence forbids).
 */
static inline void full_fence(void)
{
#if defined(IVSHMEM_RING_TEST_BROKEN)
	__asm__ __volatile__("" ::: "memory");
#elif defined(RING_TSAN)
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
#elif defined(__x86_64__)
	__asm__ __volatile__("lock orq $0, (%%rsp)" ::: "memory", "cc");
#elif defined(__aarch64__)
	__asm__ __volatile__("dmb ish" ::: "memory");
#else
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

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

static inline uint32_t tag_of(uint64_t pos)
{
	return ~(uint32_t)(pos >> 3);
}

/* The header word for @info at @pos, in memory order (little-endian). */
static inline uint64_t hdr_word(uint32_t info, uint32_t tag)
{
	return htole64((uint64_t)info | (uint64_t)tag << 32);
}

static inline uint64_t *hdr_at(const struct ivshmem_ring *r, uint64_t pos)
{
	return (uint64_t *)(r->data + (pos & r->mask));
}

/* An invalid header for @pos: "empty" to a consumer standing there. */
static inline void put_marker(const struct ivshmem_ring *r, uint64_t pos)
{
	__atomic_store_n(hdr_at(r, pos), hdr_word(0, ~tag_of(pos)), __ATOMIC_RELAXED);
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

void ivshmem_ring_format(void *ctrl, void *data)
{
	memset(ctrl, 0, IVSHMEM_RING_CTRL_SIZE);
	/* Position 0: a marker, so nothing left from a previous use reads as a record. */
	__atomic_store_n((uint64_t *)data, hdr_word(0, ~tag_of(0)), __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

int ivshmem_ring_attach(struct ivshmem_ring *r, void *ctrl, void *data, uint64_t cap,
			enum ivshmem_ring_role role)
{
	uint64_t prod, cons;

	memset(r, 0, sizeof(*r));
	if (!ctrl || !data || cap < IVSHMEM_RING_MIN_CAP || cap > IVSHMEM_RING_MAX_CAP ||
	    (cap & (cap - 1)) || ((uintptr_t)data % IVSHMEM_RING_ALIGN) || ((uintptr_t)ctrl % 8) ||
	    (role != IVSHMEM_RING_PRODUCER && role != IVSHMEM_RING_CONSUMER))
		return -EINVAL;
	r->ctrl = ctrl;
	r->data = data;
	r->cap = cap;
	r->mask = cap - 1;
	r->role = role;
	prod = load_idx(r, C_PROD, __ATOMIC_ACQUIRE);
	cons = load_idx(r, C_CONS, __ATOMIC_ACQUIRE);
	if (prod - cons > cap - IVSHMEM_RING_HDR_SIZE || (prod | cons) % IVSHMEM_RING_ALIGN)
		return broken(r);
	if (role == IVSHMEM_RING_PRODUCER) {
		r->local = r->published = r->prefetched = prod;
		r->remote = cons;
		/* Our position must hold a marker; a previous producer left one, or none. */
		put_marker(r, prod);
		__atomic_thread_fence(__ATOMIC_RELEASE);
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

/* Producer: re-read the consumer index; it may only move forward up to what we committed. */
static int producer_refresh(struct ivshmem_ring *r, int order)
{
	uint64_t c = load_idx(r, C_CONS, order);

	if (c - r->remote > r->local - r->remote || c % IVSHMEM_RING_ALIGN)
		return broken(r);
	r->remote = c;
	return 0;
}

/* Bytes a record of @len needs at the current position: a pad to the end if any, the marker after it. */
static uint64_t space_needed(const struct ivshmem_ring *r, size_t len)
{
	uint64_t total = rec_total(len);
	uint64_t contig = r->cap - (r->local & r->mask);

	return (total <= contig ? total : contig + total) + IVSHMEM_RING_HDR_SIZE;
}

static bool has_space(const struct ivshmem_ring *r, size_t len)
{
	return r->cap - (r->local - r->remote) >= space_needed(r, len);
}

/* After a fence: wake the peer if it armed. */
static void kick(struct ivshmem_ring *r, unsigned int armed_off)
{
	uint32_t *armed = ctl32(r, armed_off);

	/* Load first: the common case (peer awake) must not write the peer's line. */
	if (__atomic_load_n(armed, __ATOMIC_RELAXED) == 0)
		return;
	if (__atomic_exchange_n(armed, 0, __ATOMIC_ACQ_REL) == 0)
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
	store_idx(r, prod ? C_PROD : C_CONS, r->local, __ATOMIC_RELEASE);
	r->published = r->local;
	full_fence();
	kick(r, prod ? C_CONS_ARMED : C_PROD_ARMED);
	return 0;
}

/* Producer: bring the lines ~1 KiB ahead in for writing, once per line. */
static inline void prefetch_ahead(struct ivshmem_ring *r)
{
	uint64_t until = r->local + PREFETCH_AHEAD;

	if (r->prefetched < r->local)
		r->prefetched = r->local & ~(uint64_t)(LINE - 1);
	for (; r->prefetched < until; r->prefetched += LINE)
		__builtin_prefetch(r->data + (r->prefetched & r->mask), 1);
}

int ivshmem_ring_reserve(struct ivshmem_ring *r, size_t len, void **buf)
{
	uint64_t off, contig;

	if (r->broken)
		return r->broken;
	if (r->role != IVSHMEM_RING_PRODUCER)
		return -EINVAL;
	if (len > ivshmem_ring_max_record(r))
		return -EMSGSIZE;
	if (!has_space(r, len)) {
		int ret = producer_refresh(r, __ATOMIC_ACQUIRE);

		if (ret < 0)
			return ret;
		if (!has_space(r, len))
			return -EAGAIN;
	}
	off = r->local & r->mask;
	contig = r->cap - off;
	if (rec_total(len) > contig) {
		/* Marker at the next lap's start first, then the pad that leads there. */
		put_marker(r, r->local + contig);
		__atomic_store_n(hdr_at(r, r->local),
				 hdr_word((uint32_t)(contig - IVSHMEM_RING_HDR_SIZE) | INFO_PAD,
					  tag_of(r->local)), __ATOMIC_RELEASE);
		r->local += contig;
		off = 0;
	}
	prefetch_ahead(r);
	r->pending_len = len;
	*buf = r->data + off + IVSHMEM_RING_HDR_SIZE;
	return 0;
}

int ivshmem_ring_commit(struct ivshmem_ring *r, size_t len, unsigned int flags)
{
	uint64_t pos = r->local;

	if (r->broken)
		return r->broken;
	if (r->role != IVSHMEM_RING_PRODUCER || len > r->pending_len)
		return -EINVAL;
	r->local += rec_total(len);
	r->pending_len = 0;
	r->records++;
	/* Payload and marker before the header: the release store orders them. */
	put_marker(r, r->local);
	__atomic_store_n(hdr_at(r, pos), hdr_word((uint32_t)len, tag_of(pos)), __ATOMIC_RELEASE);
	if (flags & IVSHMEM_RING_MORE)
		return 0;
	return ivshmem_ring_publish(r);
}

int ivshmem_ring_send(struct ivshmem_ring *r, const void *buf, size_t len, unsigned int flags)
{
	void *dst = NULL;	/* set by a successful reserve; -O3 cannot see it */
	int ret = ivshmem_ring_reserve(r, len, &dst);

	if (ret < 0)
		return ret;
	memcpy(dst, buf, len);
	return ivshmem_ring_commit(r, len, flags);
}

/* Consumer: a record (or pad) of this lap waits at our position. Cheap, not validated. */
static bool header_ready(const struct ivshmem_ring *r)
{
	uint64_t hdr = le64toh(__atomic_load_n(hdr_at(r, r->local), __ATOMIC_RELAXED));

	return (uint32_t)(hdr >> 32) == tag_of(r->local);
}

/* Consumer: the ring looks empty here; publish what we consumed so a blocked producer wakes. */
static int consumer_idle(struct ivshmem_ring *r)
{
	if (r->local != r->published)
		return ivshmem_ring_publish(r);
	return 0;
}

int ivshmem_ring_peek(struct ivshmem_ring *r, const void **buf, size_t *len)
{
	if (r->broken)
		return r->broken;
	if (r->role != IVSHMEM_RING_CONSUMER)
		return -EINVAL;
	/* At most one pad and one record: this never loops on hostile contents. */
	for (int pass = 0; pass < 2; pass++) {
		uint64_t off = r->local & r->mask;
		uint64_t contig = r->cap - off;
		/* One aligned 8-byte load: the header is fetched exactly once. */
		uint64_t hdr = le64toh(__atomic_load_n(hdr_at(r, r->local), __ATOMIC_ACQUIRE));
		uint32_t info = (uint32_t)hdr, rlen = info & INFO_LEN;

		if ((uint32_t)(hdr >> 32) != tag_of(r->local)) {
			int ret = consumer_idle(r);

			return ret < 0 ? ret : -EAGAIN;
		}
		if (info & INFO_PAD) {
			/* A pad fills exactly the rest of the area, and never starts at 0. */
			if (pass || off == 0 || rlen != contig - IVSHMEM_RING_HDR_SIZE)
				return broken(r);
			r->local += contig;
			continue;
		}
		if (rlen > ivshmem_ring_max_record(r) || rec_total(rlen) > contig)
			return broken(r);
		r->pending_len = rec_total(rlen);
		*buf = r->data + off + IVSHMEM_RING_HDR_SIZE;
		*len = rlen;
		return 0;
	}
	return broken(r);
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
	/*
	 * cons goes out in batches: after a quarter ring, or once the ring is empty
	 * (the next header is not there: the line we read next anyway), so a
	 * producer waiting for delivery (a channel's flush) sees it without our
	 * calling peek() again.
	 */
	if ((flags & IVSHMEM_RING_MORE) ||
	    (r->local - r->published < r->cap / 4 && header_ready(r)))
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
		if (header_ready(r))
			return 1;
		ret = consumer_idle(r);
		if (ret < 0)
			return ret;
		__atomic_store_n(ctl32(r, C_CONS_ARMED), 1, __ATOMIC_RELAXED);
		full_fence();
#ifdef IVSHMEM_RING_TEST_BROKEN
		return 0;
#endif
		if (header_ready(r)) {
			ivshmem_ring_disarm(r);
			return 1;
		}
		return 0;
	}
	if (need > ivshmem_ring_max_record(r))
		return -EMSGSIZE;
	if (has_space(r, need))
		return 1;
	__atomic_store_n(ctl32(r, C_PROD_ARMED), 1, __ATOMIC_RELAXED);
	full_fence();
	ret = producer_refresh(r, __ATOMIC_ACQUIRE);
	if (ret < 0)
		return ret;
	if (has_space(r, need)) {
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
	uint64_t p;
	int ret;

	if (r->broken)
		return r->broken;
	if (r->role == IVSHMEM_RING_PRODUCER) {
		ret = producer_refresh(r, __ATOMIC_ACQUIRE);
		return ret < 0 ? ret : (int64_t)(r->local - r->remote);
	}
	/* prod lags the records of an unfinished batch: a consumer ahead of it sees 0. */
	p = load_idx(r, C_PROD, __ATOMIC_ACQUIRE);
	if (p % IVSHMEM_RING_ALIGN)
		return broken(r);
	if ((int64_t)(p - r->local) <= 0)
		return 0;
	if (p - r->local > r->cap - IVSHMEM_RING_HDR_SIZE)
		return broken(r);
	return (int64_t)(p - r->local);
}

bool ivshmem_ring_readable(const struct ivshmem_ring *r)
{
	if (r->broken)
		return true;	/* so the caller calls peek and gets the error */
	return header_ready(r);
}

bool ivshmem_ring_poll_wait(const struct ivshmem_ring *r, unsigned long checks, unsigned int flags)
{
	unsigned int pauses = 1;

	for (unsigned long i = 0; i < checks; i++) {
		if (r->broken || header_ready(r))
			return true;
		for (unsigned int k = 0; k < pauses; k++)
			ivshmem_cpu_relax();
		if ((flags & IVSHMEM_RING_POLL_BACKOFF) && pauses < 64)
			pauses *= 2;
	}
	return r->broken || header_ready(r);
}

bool ivshmem_ring_writable(struct ivshmem_ring *r, size_t len)
{
	if (r->broken)
		return true;
	if (len > ivshmem_ring_max_record(r))
		return false;
	if (has_space(r, len))
		return true;
	if (producer_refresh(r, __ATOMIC_ACQUIRE) < 0)
		return true;
	return has_space(r, len);
}
