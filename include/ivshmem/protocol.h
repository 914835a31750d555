/* SPDX-License-Identifier: MIT */
/*
 * The ivshmem-server wire protocol, version 0 (QEMU's docs/specs/ivshmem-spec.rst).
 *
 * AF_UNIX SOCK_STREAM; only the server talks. Every message is one int64 in
 * little-endian byte order, optionally carrying exactly one fd (SCM_RIGHTS).
 * On connect the server sends: version (0), the client's ID, -1 with the
 * shared memory fd, then (ID, eventfd) pairs for every peer including the
 * client itself, N per peer in vector order. Later: (ID, eventfd) when a peer
 * joins, ID without an fd when it leaves.
 *
 * This module is the only place that knows the byte layout: the server and
 * the host peer backend both encode/decode through it.
 */
#ifndef IVSHMEM_PROTOCOL_H
#define IVSHMEM_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IVSHMEM_PROTOCOL_VERSION	0
#define IVSHMEM_MSG_SIZE		8	/* bytes of one message on the wire */
#define IVSHMEM_MSG_SHM			(-1)	/* value sent with the shared memory fd */
#define IVSHMEM_MAX_PEER_ID		65535	/* IDs are the upper 16 bits of the doorbell */
/*
 * QEMU's doorbell register masks the vector to 8 bits (val & 0xff), so a
 * guest can ring at most 256 vectors of a peer. (QEMU's example server stops at 64.)
 */
#define IVSHMEM_MAX_VECTORS		256

/* Byte order on the wire: explicit little-endian, independent of the host. */
void ivshmem_msg_encode(uint8_t out[IVSHMEM_MSG_SIZE], int64_t value);
int64_t ivshmem_msg_decode(const uint8_t in[IVSHMEM_MSG_SIZE]);

/*
 * Send bytes [@offset, 8) of message @value, with @fd (or -1) attached when
 * @offset is 0. Never blocks and never raises SIGPIPE. Returns the number of
 * bytes sent (> 0), -EAGAIN when the socket is full, or another negative errno.
 */
int ivshmem_msg_send(int sock, int64_t value, int fd, unsigned int offset);

/*
 * Send @n whole messages (values[i], with fds[i] or -1) in one system call
 * (sendmmsg; each message stays its own sendmsg, so every fd keeps its own
 * message). Never blocks, never raises SIGPIPE. Returns how many were sent
 * (> 0), -EAGAIN if none could be, -EIO if the kernel took part of a message
 * (cannot happen for 8 bytes on AF_UNIX, but would corrupt the stream), or
 * another negative errno (-ETOOMANYREFS: too many fds in flight, retry later).
 */
int ivshmem_msg_send_many(int sock, const int64_t *values, const int *fds, unsigned int n);

/*
 * Incremental receiver for the client side. Stream sockets may split or merge
 * messages, so bytes are collected until 8 are there; an fd must arrive with
 * the first byte of its message and at most one per message.
 */
struct ivshmem_msg_reader {
	uint8_t buf[IVSHMEM_MSG_SIZE];
	unsigned int have;	/* bytes of the current message collected */
	int fd;			/* fd attached to the current message, or -1 */
};

void ivshmem_msg_reader_init(struct ivshmem_msg_reader *rd);
/* Close a half-received fd. */
void ivshmem_msg_reader_reset(struct ivshmem_msg_reader *rd);

/*
 * Read one complete message from @sock (blocking or not, as the socket is).
 * Returns 1 with *value and *fd (-1: none; the caller owns it, CLOEXEC set),
 * 0 when no complete message is available yet (non-blocking socket),
 * -ECONNRESET on end of stream, -EPROTO on a framing violation (more than one
 * fd, an fd in the middle of a message, truncated control data), -EMFILE when
 * we are out of fds (the kernel dropped the fds sent), or -errno.
 * On error ivshmem_errmsg() explains.
 */
int ivshmem_msg_recv(int sock, struct ivshmem_msg_reader *rd, int64_t *value, int *fd);

/*
 * The client-side protocol state machine, separate from any socket so it can
 * be tested and fuzzed with plain (value, fd) pairs. It takes ownership of
 * every fd passed to ivshmem_client_proto_feed() and validates each message
 * against the protocol and the state so far.
 */
enum ivshmem_client_state {
	IVSHMEM_CLIENT_WANT_VERSION,
	IVSHMEM_CLIENT_WANT_ID,
	IVSHMEM_CLIENT_WANT_SHM,
	IVSHMEM_CLIENT_RUNNING,
};

struct ivshmem_proto_peer {
	uint16_t id;
	unsigned int nfds;	/* eventfds received, in vector order */
	unsigned int cap;
	int *fds;
};

/* What one message meant, for the caller to act on. */
enum ivshmem_client_event {
	IVSHMEM_CEV_NONE,	/* bookkeeping only (version, ID) */
	IVSHMEM_CEV_SHM,	/* the shm fd arrived: proto->shm_fd */
	IVSHMEM_CEV_OWN_VECTOR,	/* one more own eventfd (proto->own.nfds grew) */
	IVSHMEM_CEV_PEER_VECTOR,	/* a peer got one more eventfd (*peer_out) */
	IVSHMEM_CEV_PEER_LEAVE,	/* a peer left (*peer_out: its ID; already forgotten) */
};

struct ivshmem_client_proto {
	enum ivshmem_client_state state;
	int shm_fd;
	struct ivshmem_proto_peer own;
	struct ivshmem_proto_peer **peers;	/* sorted by ID */
	size_t npeers, cap;
};

void ivshmem_client_proto_init(struct ivshmem_client_proto *p);
/* Close every fd held and free the peer table. */
void ivshmem_client_proto_free(struct ivshmem_client_proto *p);
/*
 * Apply one message. Returns the event (>= 0) with *@peer_out set for peer
 * events, or -EPROTO (ivshmem_errmsg() says what was wrong; @fd is closed).
 */
int ivshmem_client_proto_feed(struct ivshmem_client_proto *p, int64_t value, int fd,
			      uint16_t *peer_out);
struct ivshmem_proto_peer *ivshmem_client_proto_peer(struct ivshmem_client_proto *p, uint16_t id);

#ifdef __cplusplus
}
#endif

#endif
