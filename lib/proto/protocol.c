// SPDX-License-Identifier: MIT
/*
 * lib/proto: uses core.
 *
 * The ivshmem-server wire format (protocol version 0): encoding, sending,
 * incremental receiving and the client-side state machine. See
 * include/ivshmem/protocol.h for the message sequence.
 */
#define _GNU_SOURCE
#include "ivshmem/protocol.h"
#include "core/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

void ivshmem_msg_encode(uint8_t out[IVSHMEM_MSG_SIZE], int64_t value)
{
	uint64_t v = (uint64_t)value;

	for (int i = 0; i < IVSHMEM_MSG_SIZE; i++)
		out[i] = (uint8_t)(v >> (8 * i));
}

int64_t ivshmem_msg_decode(const uint8_t in[IVSHMEM_MSG_SIZE])
{
	uint64_t v = 0;

	for (int i = 0; i < IVSHMEM_MSG_SIZE; i++)
		v |= (uint64_t)in[i] << (8 * i);
	return (int64_t)v;
}

int ivshmem_msg_send(int sock, int64_t value, int fd, unsigned int offset)
{
	uint8_t buf[IVSHMEM_MSG_SIZE];
	union {
		char space[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (offset >= IVSHMEM_MSG_SIZE)
		return -EINVAL;
	ivshmem_msg_encode(buf, value);
	iov.iov_base = buf + offset;
	iov.iov_len = IVSHMEM_MSG_SIZE - offset;
	/* The fd travels with the first byte; a message without one has no control data. */
	if (fd >= 0 && offset == 0) {
		struct cmsghdr *cmsg;

		memset(&control, 0, sizeof(control));
		msg.msg_control = control.space;
		msg.msg_controllen = sizeof(control.space);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	}
	do {
		n = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (n == 0)
		return -EAGAIN;
	return (int)n;
}

int ivshmem_msg_send_many(int sock, const int64_t *values, const int *fds, unsigned int n)
{
	enum { BATCH = 64 };
	uint8_t bufs[BATCH][IVSHMEM_MSG_SIZE];
	union {
		char space[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control[BATCH];
	struct iovec iov[BATCH];
	struct mmsghdr mm[BATCH];
	int sent;

	if (n > BATCH)
		n = BATCH;
	if (n == 0)
		return -EINVAL;
	memset(mm, 0, n * sizeof(mm[0]));
	for (unsigned int i = 0; i < n; i++) {
		struct msghdr *msg = &mm[i].msg_hdr;

		ivshmem_msg_encode(bufs[i], values[i]);
		iov[i] = (struct iovec){ bufs[i], IVSHMEM_MSG_SIZE };
		msg->msg_iov = &iov[i];
		msg->msg_iovlen = 1;
		if (fds[i] >= 0) {
			struct cmsghdr *cmsg;

			memset(&control[i], 0, sizeof(control[i]));
			msg->msg_control = control[i].space;
			msg->msg_controllen = sizeof(control[i].space);
			cmsg = CMSG_FIRSTHDR(msg);
			cmsg->cmsg_level = SOL_SOCKET;
			cmsg->cmsg_type = SCM_RIGHTS;
			cmsg->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cmsg), &fds[i], sizeof(int));
		}
	}
	do {
		sent = sendmmsg(sock, mm, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (sent < 0 && errno == EINTR);
	if (sent < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (sent == 0)
		return -EAGAIN;
	for (int i = 0; i < sent; i++)
		if (mm[i].msg_len != IVSHMEM_MSG_SIZE)
			return -EIO;
	return sent;
}

void ivshmem_msg_reader_init(struct ivshmem_msg_reader *rd)
{
	rd->have = 0;
	rd->fd = -1;
}

void ivshmem_msg_reader_reset(struct ivshmem_msg_reader *rd)
{
	if (rd->fd >= 0)
		close(rd->fd);
	ivshmem_msg_reader_init(rd);
}

/* Close every fd in a control message we are rejecting, so none leaks. */
static void close_received_fds(struct msghdr *msg)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			close(fd);
		}
	}
}

/*
 * The kernel drops passed fds it cannot install (EMFILE/ENFILE) and flags the
 * message MSG_CTRUNC: say so rather than blame the server.
 */
static int fds_exhausted(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		return ivshmem_fail(EMFILE, "out of file descriptors: the kernel dropped an fd the "
				    "server sent (this process may open %llu; raise 'ulimit -n')",
				    (unsigned long long)rl.rlim_cur);
	return ivshmem_fail(EMFILE, "out of file descriptors: the kernel dropped an fd the "
			    "server sent (raise 'ulimit -n')");
}

int ivshmem_msg_recv(int sock, struct ivshmem_msg_reader *rd, int64_t *value, int *fd)
{
	/* Room for more than one fd so that a violation is seen, not silently truncated. */
	union {
		char space[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} control;

	while (rd->have < IVSHMEM_MSG_SIZE) {
		struct iovec iov = { rd->buf + rd->have, IVSHMEM_MSG_SIZE - rd->have };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
				      .msg_control = control.space,
				      .msg_controllen = sizeof(control.space) };
		int got_fd = -1, nfds = 0;
		ssize_t n;

		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0)
			return ivshmem_fail(errno, "reading from the server: %s", strerror(errno));
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
				nfds += (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
				memcpy(&got_fd, CMSG_DATA(c), sizeof(int));
			} else {
				close_received_fds(&msg);
				return ivshmem_fail(EPROTO, "protocol violation: unexpected control "
						    "message (level %d type %d)", c->cmsg_level,
						    c->cmsg_type);
			}
		}
		if (msg.msg_flags & MSG_CTRUNC) {
			close_received_fds(&msg);
			/* Room left for more fds: the kernel could not give us the ones sent. */
			if ((size_t)nfds < (sizeof(control) - CMSG_LEN(0)) / sizeof(int))
				return fds_exhausted();
			return ivshmem_fail(EPROTO, "protocol violation: truncated control data "
					    "(more fds than one message may carry)");
		}
		if (nfds > 1) {
			close_received_fds(&msg);
			return ivshmem_fail(EPROTO, "protocol violation: %d fds on one message",
					    nfds);
		}
		if (nfds == 1) {
			/* An fd belongs to the first byte of a message and there is only one. */
			if (rd->have != 0 || rd->fd >= 0) {
				close(got_fd);
				return ivshmem_fail(EPROTO, "protocol violation: fd in the middle of "
						    "a message");
			}
			rd->fd = got_fd;
		}
		if (n == 0) {
			if (rd->have)
				return ivshmem_fail(ECONNRESET, "server closed the connection in the "
						    "middle of a message");
			return ivshmem_fail(ECONNRESET, "server closed the connection");
		}
		rd->have += (unsigned int)n;
	}
	*value = ivshmem_msg_decode(rd->buf);
	*fd = rd->fd;
	ivshmem_msg_reader_init(rd);
	return 1;
}

/* ---- client-side state machine ---- */

static void peer_free(struct ivshmem_proto_peer *pp)
{
	for (unsigned int i = 0; i < pp->nfds; i++)
		close(pp->fds[i]);
	free(pp->fds);
	pp->fds = NULL;
	pp->nfds = pp->cap = 0;
}

static int peer_add_fd(struct ivshmem_proto_peer *pp, int fd)
{
	if (pp->nfds >= IVSHMEM_MAX_VECTORS)
		return ivshmem_fail(EPROTO, "protocol violation: more than %d eventfds for peer %u",
				    IVSHMEM_MAX_VECTORS, pp->id);
	if (pp->nfds == pp->cap) {
		unsigned int cap = pp->cap ? pp->cap * 2 : 4;
		int *fds = realloc(pp->fds, cap * sizeof(int));

		if (!fds)
			return ivshmem_fail(ENOMEM, "out of memory");
		pp->fds = fds;
		pp->cap = cap;
	}
	pp->fds[pp->nfds++] = fd;
	return 0;
}

void ivshmem_client_proto_init(struct ivshmem_client_proto *p)
{
	memset(p, 0, sizeof(*p));
	p->state = IVSHMEM_CLIENT_WANT_VERSION;
	p->shm_fd = -1;
}

void ivshmem_client_proto_free(struct ivshmem_client_proto *p)
{
	if (p->shm_fd >= 0)
		close(p->shm_fd);
	peer_free(&p->own);
	for (size_t i = 0; i < p->npeers; i++) {
		peer_free(p->peers[i]);
		free(p->peers[i]);
	}
	free(p->peers);
	ivshmem_client_proto_init(p);
}

/* Binary search; returns the index where @id is or would be inserted. */
static size_t peer_index(const struct ivshmem_client_proto *p, uint16_t id)
{
	size_t lo = 0, hi = p->npeers;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->peers[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct ivshmem_proto_peer *ivshmem_client_proto_peer(struct ivshmem_client_proto *p, uint16_t id)
{
	size_t i = peer_index(p, id);

	return i < p->npeers && p->peers[i]->id == id ? p->peers[i] : NULL;
}

static int peer_vector(struct ivshmem_client_proto *p, uint16_t id, int fd)
{
	size_t i = peer_index(p, id);
	struct ivshmem_proto_peer *pp;

	if (i < p->npeers && p->peers[i]->id == id)
		return peer_add_fd(p->peers[i], fd);
	if (p->npeers == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		struct ivshmem_proto_peer **n = realloc(p->peers, cap * sizeof(*n));

		if (!n)
			return ivshmem_fail(ENOMEM, "out of memory");
		p->peers = n;
		p->cap = cap;
	}
	pp = calloc(1, sizeof(*pp));
	if (!pp)
		return ivshmem_fail(ENOMEM, "out of memory");
	pp->id = id;
	if (peer_add_fd(pp, fd) < 0) {
		free(pp);
		return -ENOMEM;
	}
	memmove(&p->peers[i + 1], &p->peers[i], (p->npeers - i) * sizeof(*p->peers));
	p->peers[i] = pp;
	p->npeers++;
	return 0;
}

static void peer_leave(struct ivshmem_client_proto *p, uint16_t id)
{
	size_t i = peer_index(p, id);

	if (i >= p->npeers || p->peers[i]->id != id)
		return;	/* a peer with no vectors was never announced: nothing to forget */
	peer_free(p->peers[i]);
	free(p->peers[i]);
	memmove(&p->peers[i], &p->peers[i + 1], (p->npeers - i - 1) * sizeof(*p->peers));
	p->npeers--;
}

#define VIOLATION(...) do { ret = ivshmem_fail(EPROTO, "protocol violation: " __VA_ARGS__); \
			    goto reject; } while (0)

int ivshmem_client_proto_feed(struct ivshmem_client_proto *p, int64_t value, int fd,
			      uint16_t *peer_out)
{
	int ret;

	switch (p->state) {
	case IVSHMEM_CLIENT_WANT_VERSION:
		if (fd >= 0)
			VIOLATION("the version message carries an fd");
		if (value != IVSHMEM_PROTOCOL_VERSION)
			VIOLATION("server speaks protocol version %lld, we speak %d",
				  (long long)value, IVSHMEM_PROTOCOL_VERSION);
		p->state = IVSHMEM_CLIENT_WANT_ID;
		return IVSHMEM_CEV_NONE;
	case IVSHMEM_CLIENT_WANT_ID:
		if (fd >= 0)
			VIOLATION("the ID message carries an fd");
		if (value < 0 || value > IVSHMEM_MAX_PEER_ID)
			VIOLATION("own ID %lld is outside 0..%d", (long long)value,
				  IVSHMEM_MAX_PEER_ID);
		p->own.id = (uint16_t)value;
		p->state = IVSHMEM_CLIENT_WANT_SHM;
		return IVSHMEM_CEV_NONE;
	case IVSHMEM_CLIENT_WANT_SHM:
		if (value != IVSHMEM_MSG_SHM || fd < 0)
			VIOLATION("expected -1 with the shared memory fd, got %lld %s",
				  (long long)value, fd >= 0 ? "with an fd" : "without an fd");
		p->shm_fd = fd;
		p->state = IVSHMEM_CLIENT_RUNNING;
		return IVSHMEM_CEV_SHM;
	case IVSHMEM_CLIENT_RUNNING:
		if (value < 0 || value > IVSHMEM_MAX_PEER_ID)
			VIOLATION("peer ID %lld is outside 0..%d%s", (long long)value,
				  IVSHMEM_MAX_PEER_ID, value == -1 ? " (a second shm fd?)" : "");
		*peer_out = (uint16_t)value;
		if (value == p->own.id) {
			if (fd < 0)
				VIOLATION("the server says we (ID %lld) left", (long long)value);
			ret = peer_add_fd(&p->own, fd);
			if (ret < 0)
				goto reject;
			return IVSHMEM_CEV_OWN_VECTOR;
		}
		if (fd < 0) {
			peer_leave(p, (uint16_t)value);
			return IVSHMEM_CEV_PEER_LEAVE;
		}
		ret = peer_vector(p, (uint16_t)value, fd);
		if (ret < 0)
			goto reject;
		return IVSHMEM_CEV_PEER_VECTOR;
	}
	ret = ivshmem_fail(EINVAL, "client protocol state corrupt");
reject:
	if (fd >= 0)
		close(fd);
	return ret;
}
