// SPDX-License-Identifier: MIT
/*
 * lib/backend: uses core, proto, guest.
 *
 * Host peer backend: a client of ivshmem-server (ours or QEMU's). The server
 * hands us the shared memory fd, our ID and everybody's eventfds; ringing
 * peer P's vector V is writing 1 to P's V-th eventfd, and our own eventfds
 * become readable when someone rings us. Everything the server sends goes
 * through the protocol module's validating state machine.
 */
#define _GNU_SOURCE
#include "backend/backends.h"
#include "core/error.h"
#include "core/evfd.h"

#include "ivshmem/protocol.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* How long open waits for the join burst (override: IVSHMEM_SERVER_TIMEOUT_MS). */
#define OPEN_TIMEOUT_MS 5000
/*
 * The protocol never says how many vectors we have. With other peers present
 * we know (everyone has the same N, and their eventfds come before ours); alone,
 * we take the burst as complete once the socket stays quiet this long. Late
 * arrivals are still accepted and raise the vector count.
 */
#define QUIET_MS 50

struct server_state {
	int sock;
	struct ivshmem_msg_reader rd;
	struct ivshmem_client_proto proto;
	struct ivshmem_peer_event *events;	/* ring of pending join/leave events */
	size_t ev_head, ev_len, ev_cap;
	int sticky_err;				/* once the stream is broken it stays broken */
	char sticky_msg[256];
	bool opening;				/* no events for the peers present at open */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int push_event(struct server_state *st, enum ivshmem_peer_event_type type, uint16_t peer,
		      unsigned int vectors)
{
	if (st->ev_len == st->ev_cap) {
		size_t cap = st->ev_cap ? st->ev_cap * 2 : 16;
		struct ivshmem_peer_event *n = malloc(cap * sizeof(*n));

		if (!n)
			return ivshmem_fail(ENOMEM, "out of memory");
		for (size_t i = 0; i < st->ev_len; i++)
			n[i] = st->events[(st->ev_head + i) % st->ev_cap];
		free(st->events);
		st->events = n;
		st->ev_cap = cap;
		st->ev_head = 0;
	}
	st->events[(st->ev_head + st->ev_len) % st->ev_cap] =
		(struct ivshmem_peer_event){ .type = type, .peer = peer, .vectors = vectors };
	st->ev_len++;
	return 0;
}

static int set_sticky(struct server_state *st, int ret)
{
	st->sticky_err = ret;
	snprintf(st->sticky_msg, sizeof(st->sticky_msg), "%s", ivshmem_errmsg());
	return ret;
}

/* Apply one message to the state and queue what it means for the user. */
static int apply(struct ivshmem_region *r, struct server_state *st, int64_t value, int fd)
{
	struct ivshmem_proto_peer *pp;
	bool known = false;
	uint16_t peer = 0;
	int ev;

	if (value >= 0 && value <= IVSHMEM_MAX_PEER_ID && fd < 0)
		known = ivshmem_client_proto_peer(&st->proto, (uint16_t)value) != NULL;
	/* Doorbells are written and read without a second thought: they must be eventfds. */
	if (st->proto.state == IVSHMEM_CLIENT_RUNNING && fd >= 0 && value >= 0 &&
	    value <= IVSHMEM_MAX_PEER_ID) {
		char what[64];

		snprintf(what, sizeof(what), "the server's fd for peer %lld", (long long)value);
		if (ivshmem_evfd_check(fd, what) < 0) {
			close(fd);
			return -EPROTO;
		}
	}
	ev = ivshmem_client_proto_feed(&st->proto, value, fd, &peer);
	if (ev < 0)
		return ev;
	switch (ev) {
	case IVSHMEM_CEV_OWN_VECTOR:
		if (!st->opening)
			r->vectors = st->proto.own.nfds;
		break;
	case IVSHMEM_CEV_PEER_VECTOR:
		pp = ivshmem_client_proto_peer(&st->proto, peer);
		/* A join is complete when the peer has as many vectors as we do. */
		if (!st->opening && pp && pp->nfds == r->vectors)
			return push_event(st, IVSHMEM_PEER_JOIN, peer, pp->nfds);
		break;
	case IVSHMEM_CEV_PEER_LEAVE:
		if (!st->opening && known)
			return push_event(st, IVSHMEM_PEER_LEAVE, peer, 0);
		break;
	}
	return 0;
}

/* Read and apply every complete message available now (never blocks). */
static int pump(struct ivshmem_region *r, struct server_state *st)
{
	if (st->sticky_err) {
		ivshmem_fail(-st->sticky_err, "%s", st->sticky_msg);
		return st->sticky_err;
	}
	for (;;) {
		int64_t value;
		int fd, ret;

		ret = ivshmem_msg_recv(st->sock, &st->rd, &value, &fd);
		if (ret == 0)
			return 0;
		if (ret < 0)
			return set_sticky(st, ret);
		ret = apply(r, st, value, fd);
		if (ret < 0)
			return set_sticky(st, ret);
	}
}

static struct server_state *state(struct ivshmem_region *r)
{
	return r->priv;
}

/* Own ID or a known peer; a peer not known yet may have joined a moment ago: catch up once. */
static struct ivshmem_proto_peer *find_peer(struct ivshmem_region *r, uint16_t peer)
{
	struct server_state *st = state(r);
	struct ivshmem_proto_peer *pp;

	if (peer == st->proto.own.id)
		return &st->proto.own;
	pp = ivshmem_client_proto_peer(&st->proto, peer);
	if (!pp) {
		pump(r, st);
		pp = ivshmem_client_proto_peer(&st->proto, peer);
	}
	return pp;
}

static int server_notify(struct ivshmem_region *r, uint16_t peer, uint16_t vector)
{
	struct ivshmem_proto_peer *pp = find_peer(r, peer);
	int ret;

	if (!pp)
		return ivshmem_fail(ENOENT, "no peer %u on this server", peer);
	if (vector >= pp->nfds)
		return ivshmem_fail(EINVAL, "peer %u has %u vector%s; cannot ring vector %u", peer,
				    pp->nfds, pp->nfds == 1 ? "" : "s", vector);
	/* Never blocks, whatever a peer did to the shared O_NONBLOCK (core/evfd.h). */
	ret = ivshmem_evfd_signal(pp->fds[vector]);
	if (ret < 0) {
		char why[IVSHMEM_ERRMSG_MAX];

		snprintf(why, sizeof(why), "%s", ivshmem_errmsg());
		return ivshmem_fail(-ret, "ringing peer %u vector %u: %s", peer, vector, why);
	}
	return 0;
}

static int server_event_fd(struct ivshmem_region *r, unsigned int vector)
{
	struct server_state *st = state(r);

	if (vector >= st->proto.own.nfds)
		return ivshmem_fail(EINVAL, "vector %u out of range", vector);
	return st->proto.own.fds[vector];
}

static int server_peer_list(struct ivshmem_region *r, uint16_t *ids, size_t max)
{
	struct server_state *st = state(r);
	int ret = pump(r, st);

	if (ret < 0 && ret != -ECONNRESET)
		return ret;
	for (size_t i = 0; i < st->proto.npeers && i < max; i++)
		ids[i] = st->proto.peers[i]->id;
	return (int)st->proto.npeers;
}

static int server_peer_vectors(struct ivshmem_region *r, uint16_t peer)
{
	struct ivshmem_proto_peer *pp = find_peer(r, peer);

	if (!pp)
		return ivshmem_fail(ENOENT, "no peer %u on this server", peer);
	return (int)pp->nfds;
}

static int server_control_fd(struct ivshmem_region *r)
{
	return state(r)->sock;
}

static int server_next_peer_event(struct ivshmem_region *r, struct ivshmem_peer_event *ev)
{
	struct server_state *st = state(r);
	int ret = 0;

	if (!st->ev_len)
		ret = pump(r, st);
	/* Deliver what arrived before a failure first; the failure stays for the next call. */
	if (st->ev_len) {
		*ev = st->events[st->ev_head];
		st->ev_head = (st->ev_head + 1) % st->ev_cap;
		st->ev_len--;
		return 1;
	}
	return ret;
}

static void state_free(struct server_state *st)
{
	ivshmem_msg_reader_reset(&st->rd);
	ivshmem_client_proto_free(&st->proto);
	if (st->sock >= 0)
		close(st->sock);
	free(st->events);
	free(st);
}

static void server_close(struct ivshmem_region *r)
{
	munmap(r->base, r->size);
	state_free(state(r));
}

static const struct ivshmem_backend_ops server_ops = {
	.notify = server_notify,
	.event_fd = server_event_fd,
	.peer_list = server_peer_list,
	.peer_vectors = server_peer_vectors,
	.control_fd = server_control_fd,
	.next_peer_event = server_next_peer_event,
	.close = server_close,
};

static int connect_to(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	if (!*path)
		return ivshmem_fail(EINVAL, "empty server socket path");
	if (strlen(path) >= sizeof(addr.sun_path))
		return ivshmem_fail(ENAMETOOLONG, "%s: socket path too long (at most %zu bytes)",
				    path, sizeof(addr.sun_path) - 1);
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return ivshmem_fail(errno, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int err = errno;

		close(fd);
		if (err == EAGAIN)
			return ivshmem_fail(EAGAIN, "%s: the server's backlog is full; try again",
					    path);
		return ivshmem_fail(err, "cannot connect to ivshmem-server at %s: %s%s", path,
				    strerror(err),
				    err == ECONNREFUSED || err == ENOENT ? " (is it running?)" : "");
	}
	return fd;
}

static int open_timeout_ms(void)
{
	const char *s = getenv("IVSHMEM_SERVER_TIMEOUT_MS");
	long v;

	if (!s || !*s)
		return OPEN_TIMEOUT_MS;
	v = strtol(s, NULL, 10);
	return v > 0 && v < 3600000 ? (int)v : OPEN_TIMEOUT_MS;
}

/* True once our own eventfds are all there, as far as the protocol lets us know. */
static bool burst_complete(const struct server_state *st, int64_t quiet_since)
{
	unsigned int others = 0;

	if (st->proto.state != IVSHMEM_CLIENT_RUNNING || st->proto.own.nfds == 0)
		return false;
	for (size_t i = 0; i < st->proto.npeers; i++)
		if (st->proto.peers[i]->nfds > others)
			others = st->proto.peers[i]->nfds;
	if (others && st->proto.own.nfds >= others)
		return true;
	/* Alone, or a peer announced with more vectors than we got: the quiet decides. */
	return now_ms() - quiet_since >= QUIET_MS;
}

/* Receive until the join burst is complete or the deadline passes. */
static int receive_burst(struct ivshmem_region *r, struct server_state *st, const char *path)
{
	int timeout = open_timeout_ms();
	int64_t deadline = now_ms() + timeout, quiet_since = now_ms();

	for (;;) {
		struct pollfd pfd = { .fd = st->sock, .events = POLLIN };
		int64_t left = deadline - now_ms();
		int ret;

		if (burst_complete(st, quiet_since))
			return 0;
		if (left <= 0)
			break;
		if (st->proto.own.nfds && left > QUIET_MS)
			left = QUIET_MS;
		ret = poll(&pfd, 1, (int)left);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return ivshmem_fail(errno, "poll: %s", strerror(errno));
		if (ret == 0)
			continue;
		ret = pump(r, st);
		if (ret < 0) {
			if (ret == -ECONNRESET)
				return ivshmem_fail(ECONNRESET, "%s: the server closed the connection "
						    "during the greeting (too many peers, or not "
						    "an ivshmem-server?)", path);
			return ivshmem_fail(-ret, "%s: %s", path, st->sticky_msg);
		}
		quiet_since = now_ms();
	}
	if (st->proto.state != IVSHMEM_CLIENT_RUNNING)
		return ivshmem_fail(ETIMEDOUT, "%s: no complete greeting from the server within "
				    "%d ms (got %s)", path, timeout,
				    st->proto.state == IVSHMEM_CLIENT_WANT_VERSION ? "nothing" :
				    st->proto.state == IVSHMEM_CLIENT_WANT_ID ? "the version only" :
				    "no shared memory fd");
	return ivshmem_fail(ETIMEDOUT, "%s: the server sent none of our own eventfds within %d ms "
			    "(own ID %u)", path, timeout, st->proto.own.id);
}

int ivshmem_server_open(struct ivshmem_region *r, const char *socket_path,
			const struct ivshmem_open_opts *o)
{
	bool ro = o->flags & IVSHMEM_OPEN_READONLY;
	struct server_state *st;
	struct stat sb;
	void *base;
	int ret;

	if (o->flags & IVSHMEM_OPEN_CREATE)
		return ivshmem_fail(EINVAL, "%s: the server creates the memory; CREATE does not "
				    "apply", socket_path);
	st = calloc(1, sizeof(*st));
	if (!st)
		return ivshmem_fail(ENOMEM, "out of memory");
	ivshmem_msg_reader_init(&st->rd);
	ivshmem_client_proto_init(&st->proto);
	st->opening = true;
	st->sock = connect_to(socket_path);
	if (st->sock < 0) {
		ret = st->sock;
		st->sock = -1;
		goto fail;
	}
	ret = receive_burst(r, st, socket_path);
	if (ret < 0)
		goto fail;
	if (fstat(st->proto.shm_fd, &sb) < 0 || !(S_ISREG(sb.st_mode)) || sb.st_size <= 0) {
		ret = ivshmem_fail(EPROTO, "%s: the shared memory fd is not a non-empty file",
				   socket_path);
		goto fail;
	}
	if ((uint64_t)sb.st_size > SIZE_MAX) {
		ret = ivshmem_fail(EFBIG, "%s: %lld bytes of shared memory do not fit in the "
				   "address space", socket_path, (long long)sb.st_size);
		goto fail;
	}
	base = mmap(NULL, (size_t)sb.st_size, PROT_READ | (ro ? 0 : PROT_WRITE), MAP_SHARED,
		    st->proto.shm_fd, 0);
	if (base == MAP_FAILED) {
		ret = ivshmem_fail(errno, "%s: mmap of %lld bytes: %s", socket_path,
				   (long long)sb.st_size, strerror(errno));
		goto fail;
	}
	st->opening = false;
	r->ops = &server_ops;
	r->kind = IVSHMEM_BACKEND_SERVER;
	r->base = base;
	r->size = (uint64_t)sb.st_size;
	r->own_id = st->proto.own.id;
	r->vectors = st->proto.own.nfds;
	r->priv = st;
	return 0;
fail:
	state_free(st);
	return ret;
}
