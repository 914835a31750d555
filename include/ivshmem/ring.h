/* SPDX-License-Identifier: MIT */
/*
 * A single-producer single-consumer ring of variable-size records in shared
 * memory (docs/ring.md). Pure memory logic: it works on any cacheable buffer
 * (a region, a memfd, a malloc'd block) and makes no system calls; waking a
 * sleeping peer is left to a callback (channel.c rings a doorbell).
 *
 * The peer on the other side is untrusted: every index and length read from
 * the shared control block or a record header is read once and validated, and
 * a violation returns -EBADMSG and leaves the ring broken (every later call
 * fails the same way) rather than touching memory outside the ring.
 *
 * struct ivshmem_ring is private state of ONE side; each side has its own.
 */
#ifndef IVSHMEM_RING_H
#define IVSHMEM_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IVSHMEM_RING_CTRL_SIZE	512u	/* shared control block: 4 blocks of 128 bytes */
#define IVSHMEM_RING_MIN_CAP	64u	/* smallest data area */
#define IVSHMEM_RING_MAX_CAP	(1ull << 31)	/* largest: lap tags stay unique */
#define IVSHMEM_RING_HDR_SIZE	8u	/* record header: u32 length|pad, u32 lap tag */
#define IVSHMEM_RING_ALIGN	8u	/* records start on 8-byte boundaries */

/*
 * Flags for commit/release/send/recv: batching. A committed record is visible
 * at once, but the fence and the wake-up check (and, for the consumer, the
 * publication of the read index) wait for the next call without it, or
 * ivshmem_ring_publish().
 */
#define IVSHMEM_RING_MORE	(1u << 0)
/* ivshmem_ring_poll_wait(): double the pause between checks (throughput over latency). */
#define IVSHMEM_RING_POLL_BACKOFF	(1u << 1)

enum ivshmem_ring_role { IVSHMEM_RING_PRODUCER = 1, IVSHMEM_RING_CONSUMER = 2 };

struct ivshmem_ring {
	/* Shared (untrusted): the control block and the data area. */
	void *ctrl;
	uint8_t *data;
	/* Private, validated once at attach. */
	uint64_t cap;		/* data bytes, a power of two */
	uint64_t mask;
	enum ivshmem_ring_role role;
	uint64_t local;		/* own index: the next byte we write (producer) or read (consumer) */
	uint64_t published;	/* own index as last stored to shared memory */
	uint64_t remote;	/* producer: cached consumer index (validated); consumer: unused */
	uint64_t prefetched;	/* producer: lines before this were prefetched for writing */
	uint64_t pending_len;	/* reserve: bytes reserved; peek: bytes of the peeked record incl. pad */
	int broken;		/* sticky -EBADMSG */
	/* Called when publishing finds the peer asleep (armed); may be NULL (polling peer). */
	int (*kick)(void *arg);
	void *kick_arg;
	/* Statistics. */
	uint64_t kicks;		/* times kick() was called */
	uint64_t records;	/* records committed or released */
};

/*
 * An empty ring: zero the control block and put an invalid marker at the start
 * of @data, so nothing left from a previous use reads as a record. Only while
 * nobody is attached.
 */
void ivshmem_ring_format(void *ctrl, void *data);

/*
 * Attach one side. @cap must be a power of two from IVSHMEM_RING_MIN_CAP to
 * IVSHMEM_RING_MAX_CAP, @data 8-byte aligned. A producer writes the invalid
 * marker at its position. Reads the current indices (validated) so a side can attach
 * to a ring that already holds records. -EINVAL for bad arguments, -EBADMSG
 * for inconsistent shared indices.
 */
int ivshmem_ring_attach(struct ivshmem_ring *r, void *ctrl, void *data, uint64_t cap,
			enum ivshmem_ring_role role);

/* The largest payload one record can carry: cap / 2 - 8 (larger: -EMSGSIZE). */
size_t ivshmem_ring_max_record(const struct ivshmem_ring *r);

/* Producer. reserve: *@buf gets @len contiguous bytes, or -EAGAIN (full) / -EMSGSIZE. */
int ivshmem_ring_reserve(struct ivshmem_ring *r, size_t len, void **buf);
/* Commit the reserved record with its final length (<= reserved). Flags: IVSHMEM_RING_MORE. */
int ivshmem_ring_commit(struct ivshmem_ring *r, size_t len, unsigned int flags);
/* Copying send: reserve + memcpy + commit. */
int ivshmem_ring_send(struct ivshmem_ring *r, const void *buf, size_t len, unsigned int flags);

/* Consumer. peek: the next record in place, or -EAGAIN (empty) / -EBADMSG. */
int ivshmem_ring_peek(struct ivshmem_ring *r, const void **buf, size_t *len);
/* Drop the peeked record. Flags: IVSHMEM_RING_MORE. */
int ivshmem_ring_release(struct ivshmem_ring *r, unsigned int flags);
/*
 * Copying receive: the record's length, -EAGAIN, -EBADMSG, or -EMSGSIZE when
 * @cap is too small (the record stays in the ring).
 */
ssize_t ivshmem_ring_recv(struct ivshmem_ring *r, void *buf, size_t cap, unsigned int flags);

/* Store the own index if it moved (end of a MORE batch) and kick an armed peer. */
int ivshmem_ring_publish(struct ivshmem_ring *r);

/*
 * Notification suppression (docs/ring.md). Before sleeping, a side arms:
 * the consumer "wake me when a record arrives", the producer "wake me when
 * @need bytes are free". arm() returns 1 if the condition already holds (do
 * not sleep; it disarmed itself), 0 if armed (sleep; the peer will kick), or
 * -EBADMSG. disarm() after waking is optional (the kicker disarms).
 */
int ivshmem_ring_arm(struct ivshmem_ring *r, size_t need);
void ivshmem_ring_disarm(struct ivshmem_ring *r);

/* Snapshot queries (for poll loops): bytes used as seen now; -EBADMSG if inconsistent. */
int64_t ivshmem_ring_used(struct ivshmem_ring *r);
/* Consumer: true if a record may be waiting (one load of the header; no validation). */
bool ivshmem_ring_readable(const struct ivshmem_ring *r);
/*
 * Consumer: spin on the header at our position for at most @checks checks,
 * with a pause between them (doubling up to 64 pauses with
 * IVSHMEM_RING_POLL_BACKOFF). True when a record may be waiting.
 */
bool ivshmem_ring_poll_wait(const struct ivshmem_ring *r, unsigned long checks,
			    unsigned int flags);
/* Producer: true when a record of @len bytes fits now. */
bool ivshmem_ring_writable(struct ivshmem_ring *r, size_t len);

/* One step of a polling loop: tells the CPU we spin (pause/yield), so the sibling thread runs. */
static inline void ivshmem_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

#ifdef __cplusplus
}
#endif

#endif
