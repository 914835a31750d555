/* SPDX-License-Identifier: MIT */
/*
 * Named two-way message channels between two endpoints over any region
 * (docs/channel.md). Like a SOCK_SEQPACKET socket: records keep their
 * boundaries, close delivers what was sent, a dead peer is an error, never a
 * hang. Doorbells are used where the backend has them, polling otherwise.
 *
 * All calls return a negative errno on failure; ivshmem_errmsg() explains.
 * A channel is used by one thread at a time (a background thread only beats
 * its heartbeat; it runs with every signal blocked).
 *
 * Channels are point-to-point: one endpoint at each end. An endpoint that
 * declares a role (SEND_ONLY, RECV_ONLY) is never paired with one of the same
 * role, and a send-only opener never takes the end whose records a departed
 * sender left for a receiver: it gets -EBUSY and the buffered records stay.
 *
 * fork(): a channel belongs to the process that opened it. In a child forked
 * after ivshmem_channel_open(), ivshmem_channel_close() only frees the child's
 * copy (it neither closes the parent's end nor touches its heartbeat thread),
 * and send/recv/flush fail with -EBADFD; the child opens its own channel.
 */
#ifndef IVSHMEM_CHANNEL_H
#define IVSHMEM_CHANNEL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ivshmem/region.h"
#include "ivshmem/ring.h"

#ifdef __cplusplus
extern "C" {
#endif

#define IVSHMEM_CHANNEL_CREATE	(1u << 0)	/* add the channel to the layout if missing */
#define IVSHMEM_CHANNEL_SEND_ONLY (1u << 1)	/* role: this endpoint never receives */
#define IVSHMEM_CHANNEL_RECV_ONLY (1u << 2)	/* role: this endpoint never sends */
#define IVSHMEM_CHANNEL_NO_LEFTOVERS (1u << 3)	/* never take the end whose records a departed
						 * endpoint left for a receiver: -EBUSY (a
						 * relay that must not read back what it left) */

struct ivshmem_channel_opts {		/* zero = default for every field */
	unsigned int flags;		/* IVSHMEM_CHANNEL_CREATE, a role */
	uint64_t ring_size;		/* CREATE: bytes per direction, power of two (64 KiB) */
	unsigned int vector;		/* own vector to sleep on (0) */
	int spin_us;			/* spin before sleeping (50; -1: never spin) */
	int heartbeat_ms;		/* own heartbeat period (100; -1: none) */
	int dead_ms;			/* peer dead after this long without a heartbeat (3000; -1: never) */
	int open_timeout_ms;		/* wait this long while both ends are taken (0: fail at once) */
	int cancel_fd;			/* readable: blocking calls return -EINTR (a self-pipe a
					 * signal handler writes to); 0: none */
};

enum ivshmem_channel_state {
	IVSHMEM_CHANNEL_WAITING = 1,	/* the other end has not opened yet (sends are buffered) */
	IVSHMEM_CHANNEL_CONNECTED,
	IVSHMEM_CHANNEL_PEER_CLOSED,	/* receive what is left, then -EPIPE */
	IVSHMEM_CHANNEL_PEER_DEAD,	/* receive what is left, then -ECONNRESET */
	IVSHMEM_CHANNEL_BROKEN,		/* the peer corrupted shared memory: -EBADMSG */
};

struct ivshmem_channel;

/*
 * Open channel @name of @r as one endpoint (docs/channel.md "Opening"); @opts
 * may be NULL. Never waits for the other end: sends before it arrives are
 * buffered. A slot whose owner is known to be gone (a pid that no longer
 * exists on this kernel, a peer the server no longer lists, a heartbeat silent
 * for dead_ms) is reclaimed at once. Returns 0 and *@out, or:
 * -ENOENT no such channel (without CREATE); -EINVAL bad options or not a
 * channel; -EBADMSG/-EPROTO a corrupt or unknown section; -ENOTSUP uncached
 * memory; -EBUSY both ends are in use for open_timeout_ms, or at once when
 * the end we would take is held by an endpoint of our own role or holds a
 * departed sender's records and we are SEND_ONLY; -EINTR cancel_fd readable.
 */
int ivshmem_channel_open(struct ivshmem_channel **out, struct ivshmem_region *r, const char *name,
			 const struct ivshmem_channel_opts *opts);
/*
 * Wait up to @linger_ms (-1: forever) until the peer received everything we
 * sent, then leave (our slot becomes CLOSED after every record we published,
 * and a sleeping peer is woken). Returns 0, -ETIMEDOUT if records were still
 * unread (they stay readable by the peer), -EINTR if cancel_fd cut the wait
 * short. Always frees @ch. In a forked child: frees its copy only, returns 0.
 */
int ivshmem_channel_close(struct ivshmem_channel *ch, int linger_ms);
/*
 * Abortive close: leave at once without waiting, the end marked ABORTED after
 * every record we published. The peer receives those records, then
 * -ECONNRESET (as if we had died), and sends fail with -ECONNRESET. For relays
 * (ivshmem-bridge) that must pass a remote death on. Always frees @ch and
 * returns 0; in a forked child it frees the copy only.
 */
int ivshmem_channel_abort(struct ivshmem_channel *ch);
/*
 * Wait up to @timeout_ms until the peer read everything: 0, -ETIMEDOUT (the
 * message counts what is unread), -EPIPE, -ECONNRESET, -EINTR.
 */
int ivshmem_channel_flush(struct ivshmem_channel *ch, int timeout_ms);
/*
 * What we sent that the peer has not read yet: *@records and their payload
 * *@bytes (like SIOCOUTQ; record headers and padding are not counted).
 * 0, or -EBADMSG if the ring is inconsistent.
 */
int ivshmem_channel_outq(struct ivshmem_channel *ch, uint64_t *records, uint64_t *bytes);

/*
 * @timeout_ms: 0 never blocks (-EAGAIN), -1 waits forever, else -ETIMEDOUT.
 * send: 0; -EMSGSIZE (> max_msg), -EPIPE (peer closed), -ECONNRESET (peer dead).
 * recv: the record's length (0 is a valid empty record); -EPIPE once the peer
 * closed and everything was read; -ECONNRESET; -EMSGSIZE if @len is too small.
 * Both: -EBADMSG (corrupt rings), -EINTR (cancel_fd became readable while
 * waiting), -EBADFD (in a child forked after open).
 */
int ivshmem_channel_send(struct ivshmem_channel *ch, const void *buf, size_t len, int timeout_ms);
ssize_t ivshmem_channel_recv(struct ivshmem_channel *ch, void *buf, size_t len, int timeout_ms);

/*
 * One fd for poll/epoll/select: readable when something may have happened
 * (a doorbell, a peer event, or a polling tick on backends without
 * interrupts). Then call send/recv with timeout 0 until -EAGAIN.
 */
int ivshmem_channel_fd(struct ivshmem_channel *ch);

enum ivshmem_channel_state ivshmem_channel_state(struct ivshmem_channel *ch);
const char *ivshmem_channel_state_name(enum ivshmem_channel_state s);
size_t ivshmem_channel_max_msg(const struct ivshmem_channel *ch);

struct ivshmem_channel_stats {
	uint64_t sent, received;	/* records */
	uint64_t doorbells;		/* doorbells we rang */
	uint64_t sleeps;		/* times we armed and slept */
	uint64_t doorbell_wakeups;	/* sleeps ended by a doorbell */
	int doorbell_mode;		/* 1: we sleep on interrupts, 0: we poll */
};
void ivshmem_channel_stats(const struct ivshmem_channel *ch, struct ivshmem_channel_stats *st);

/* Zero-copy access to the two rings (docs/ring.md); kicks are wired up. */
struct ivshmem_ring *ivshmem_channel_tx(struct ivshmem_channel *ch);
struct ivshmem_ring *ivshmem_channel_rx(struct ivshmem_channel *ch);

#ifdef __cplusplus
}
#endif

#endif
