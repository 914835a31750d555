// SPDX-License-Identifier: MIT
/*
 * The ivshmem-server event loop: one epoll set, one send queue per client.
 *
 * Nothing here ever blocks on a client. Every message goes through the
 * client's queue and is written when the socket takes it, so EAGAIN never
 * loses a message. A client that stops reading is dropped like any other
 * leaving peer: when its queue passes --max-queue, when its socket has taken
 * nothing for STALL_MS, or when it leaves messages (and the fds they carry)
 * unread for STALL_MS. Drops are deferred to the end of the loop (dead list),
 * and the memory of a dropped client to the end of the epoll batch
 * (graveyard), so no event or broadcast ever sees a freed client.
 *
 * Join order (QEMU's): the newcomer's version, ID and shm fd; then every
 * existing peer is told about it; then the newcomer gets the others' eventfds
 * and its own. The newcomer's eventfds are held back until every existing
 * peer's socket took the join notice (or that peer was dropped), so once a
 * client holds its own vectors, every other peer has been sent the notice.
 *
 * fds: the server keeps only live peers' eventfds. When a peer leaves, its
 * notices still queued for others are cancelled (and so is its leave notice
 * to a client that never heard of it), so a client that does not read cannot
 * make departed peers' eventfds pile up in the server.
 *
 * The kernel peer (--kernel-peer) is a client without a socket: what the
 * others are sent as messages it is given at once through /dev/ivshmem-host
 * (include/ivshmem/kpeer.h): a newcomer's eventfds and its join before the
 * newcomer gets its own vectors, a leave when a peer goes. Its own eventfds
 * are handed out like anyone's. If the kernel removes its region (the memory
 * lost pages), it leaves like any peer.
 */
#define _GNU_SOURCE
#include "server.h"

#include "ids.h"

#include "ivshmem/kpeer.h"
#include "ivshmem/protocol.h"
#include "ivshmem/region.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#ifndef SIOCOUTQ
#define SIOCOUTQ 0x5411		/* TIOCOUTQ: bytes we sent that the other end has not read */
#endif

#define STALL_MS		2000	/* a client that takes or reads nothing this long is dropped */
#define CHECK_MS		250	/* how often stalled and unread clients are looked at */
#define PRESSURE_IDLE_MS	500	/* out of in-flight fds: drop clients idle this long */
#define INFLIGHT_RETRY_MS	100	/* retry after ETOOMANYREFS */

/* enqueue_msg() flags */
#define Q_BATCH		1	/* the caller flushes after a run of messages */
#define Q_NOTICE	2	/* part of a join notice: the joiner waits until it is sent */

/* A peer's eventfds, shared by its client and every queued message that hands them out. */
struct evset {
	unsigned int refs;
	unsigned int n;
	unsigned int unsent;	/* messages of the owner's join notice still queued for others */
	struct client *owner;	/* the peer these belong to; NULL once it is gone */
	int fds[];
};

struct qent {
	int64_t value;
	int fd;			/* fd to pass, or -1 */
	struct evset *ref;	/* keeps @fd open until sent; NULL for the shm fd */
	bool notice;		/* counted in ref->unsent */
};

struct client {
	struct client *prev, *next;	/* peer list */
	struct client *next_dead;
	int sock;			/* -1 for the kernel peer */
	int kernel_dev;			/* the kernel peer's /dev/ivshmem-host fd, else -1 */
	uint16_t id;
	bool in_list, dead, want_out;
	bool stalled;			/* too many fds in flight: retry on a timer */
	struct client *dirty_prev, *dirty_next;	/* on the to-flush list when dirty */
	bool dirty;
	bool held;			/* own vectors wait until every peer took our join notice */
	size_t hold;			/* while held: queued messages that may go out before */
	int64_t blocked_since;		/* ms: socket full or in-flight limit since; 0: not */
	int64_t idle_since;		/* ms: holds unread messages and has read none since; 0: none */
	uint64_t sent_msgs, read_msgs;	/* messages the socket took / the client has read */
	unsigned int empty_reads;	/* readable events with nothing to read */
	struct evset *ev;
	struct qent *q;			/* ring buffer */
	size_t qhead, qlen, qcap, qlimit;
};

static struct {
	const struct server_config *cfg;
	int epfd, listen_fd, shm_fd, signal_fd;
	int reserve_fd;			/* spare fd to accept-and-close when out of fds */
	struct client head;		/* circular list sentinel */
	struct id_alloc ids;
	unsigned int npeers;
	struct client *dead;
	struct client *graveyard;	/* dropped clients, freed after the epoll batch */
	bool shutting_down;
	bool listen_paused;
	bool inflight_pressure;		/* ETOOMANYREFS seen: look for idle holders now */
	struct timespec resume_listen;
	time_t last_fd_warning, last_inflight_warning, last_full_warning;
	unsigned int nstalled, nblocked, nidle, refused;
	int64_t next_check, next_retry;
	unsigned int msg_truesize;	/* socket buffer bytes per unread message (SIOCOUTQ) */
	uint64_t nofile;		/* RLIMIT_NOFILE: also the kernel's in-flight fd limit */
	struct client *dirty_head, *dirty_tail;
} S;

/* epoll tags for the two non-client fds */
static char tag_listen, tag_signal;

#define for_each_peer(c) for (struct client *c = S.head.next; c != &S.head; c = c->next)

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void evset_put(struct evset *ev)
{
	if (!ev || --ev->refs)
		return;
	for (unsigned int i = 0; i < ev->n; i++)
		close(ev->fds[i]);
	free(ev);
}

static struct evset *evset_new(unsigned int n)
{
	struct evset *ev = calloc(1, sizeof(*ev) + n * sizeof(int));

	if (!ev)
		return NULL;
	ev->refs = 1;
	for (ev->n = 0; ev->n < n; ev->n++) {
		ev->fds[ev->n] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (ev->fds[ev->n] < 0) {
			int err = errno;

			evset_put(ev);
			errno = err;
			return NULL;
		}
	}
	return ev;
}

static void mark_dead(struct client *c, int prio, const char *why)
{
	if (c->dead)
		return;
	c->dead = true;
	c->next_dead = S.dead;
	S.dead = c;
	log_msg(prio, "peer %u: %s", c->id, why);
}

static void set_want_out(struct client *c, bool on)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLPRI | EPOLLRDHUP | (on ? EPOLLOUT : 0),
				  .data.ptr = c };

	if (c->want_out == on)
		return;
	if (epoll_ctl(S.epfd, EPOLL_CTL_MOD, c->sock, &ev) < 0) {
		mark_dead(c, LOG_ERR, "epoll_ctl failed; dropping");
		return;
	}
	c->want_out = on;
}

/* The socket takes nothing (full, or the kernel's in-flight fd limit) since now. */
static void set_blocked(struct client *c)
{
	if (c->blocked_since)
		return;
	c->blocked_since = now_ms();
	S.nblocked++;
}

static void clear_blocked(struct client *c)
{
	if (!c->blocked_since)
		return;
	c->blocked_since = 0;
	S.nblocked--;
}

static void set_idle(struct client *c, int64_t since)
{
	if (!c->idle_since)
		S.nidle++;
	c->idle_since = since;
}

static void clear_idle(struct client *c)
{
	if (!c->idle_since)
		return;
	c->idle_since = 0;
	S.nidle--;
}

static void mark_dirty(struct client *c);

/* Every existing peer has taken @ev's owner's join notice: its own vectors may go. */
static void release(struct client *c)
{
	c->held = false;
	c->hold = 0;
	mark_dirty(c);
}

/* A queued message leaves the queue, sent or cancelled. */
static void qent_done(struct qent *e)
{
	if (e->notice && --e->ref->unsent == 0 && e->ref->owner && e->ref->owner->held)
		release(e->ref->owner);
	evset_put(e->ref);
}

static void too_many_refs(struct client *c)
{
	time_t now = time(NULL);

	if (now != S.last_inflight_warning) {
		struct rlimit rl = { 0, 0 };

		getrlimit(RLIMIT_NOFILE, &rl);
		log_msg(LOG_WARNING, "too many fds in flight (the kernel allows RLIMIT_NOFILE = %llu "
			"unread per user); dropping clients that do not read theirs",
			(unsigned long long)rl.rlim_cur);
	}
	S.last_inflight_warning = now;
	if (!c->stalled) {
		c->stalled = true;
		S.nstalled++;
	}
	set_blocked(c);
	S.inflight_pressure = true;
}

/* Write queued messages until the queue is empty, held back, or the socket is full. */
static void flush(struct client *c)
{
	while (c->qlen && !c->dead) {
		size_t avail = c->held ? c->hold : c->qlen;
		int64_t values[64];
		int fds[64];
		unsigned int n = 0;
		int sent;

		if (!avail)
			break;
		while (n < 64 && n < avail) {
			struct qent *e = &c->q[(c->qhead + n) % c->qcap];

			values[n] = e->value;
			fds[n] = e->fd;
			n++;
		}
		sent = ivshmem_msg_send_many(c->sock, values, fds, n);
		if (sent == -EAGAIN) {
			if (!c->want_out)
				log_msg(LOG_DEBUG, "peer %u: socket full, %zu messages queued", c->id,
					c->qlen);
			set_want_out(c, true);
			set_blocked(c);
			return;
		}
		if (sent == -ETOOMANYREFS) {
			too_many_refs(c);
			return;
		}
		if (sent < 0) {
			mark_dead(c, LOG_INFO, sent == -EPIPE || sent == -ECONNRESET ?
				  "disconnected" : "send failed; dropping");
			return;
		}
		for (int i = 0; i < sent; i++) {
			struct qent e = c->q[c->qhead];

			c->qhead = (c->qhead + 1) % c->qcap;
			c->qlen--;
			qent_done(&e);
		}
		if (c->held)
			c->hold -= (size_t)sent;
		c->sent_msgs += (uint64_t)sent;
		clear_blocked(c);
		if (!c->idle_since)
			set_idle(c, now_ms());
	}
	if (!c->dead)
		set_want_out(c, false);
}

static void flush_now(struct client *c);

/*
 * Leave notices to every peer only queue, and put the peer on the to-flush
 * list; the loop flushes a bounded number per round between epoll waits.
 */
static void mark_dirty(struct client *c)
{
	if (c->dirty || c->dead)
		return;
	c->dirty = true;
	c->dirty_next = NULL;
	c->dirty_prev = S.dirty_tail;
	if (S.dirty_tail)
		S.dirty_tail->dirty_next = c;
	else
		S.dirty_head = c;
	S.dirty_tail = c;
}

static void unmark_dirty(struct client *c)
{
	if (!c->dirty)
		return;
	if (c->dirty_prev)
		c->dirty_prev->dirty_next = c->dirty_next;
	else
		S.dirty_head = c->dirty_next;
	if (c->dirty_next)
		c->dirty_next->dirty_prev = c->dirty_prev;
	else
		S.dirty_tail = c->dirty_prev;
	c->dirty = false;
}

static void flush_dirty(unsigned int budget)
{
	while (S.dirty_head && budget--) {
		struct client *c = S.dirty_head;

		unmark_dirty(c);
		flush_now(c);
	}
}

static void flush_now(struct client *c)
{
	if (!c->dead && !c->want_out && !c->stalled)
		flush(c);
}

/* Queue one message (Q_* @flags); send it now unless Q_BATCH. */
static void enqueue_msg(struct client *c, int64_t value, int fd, struct evset *ref, int flags)
{
	/* The kernel peer hears of joins and leaves through kernel_join()/kernel_leave(). */
	if (c->dead || c->kernel_dev >= 0)
		return;
	if (c->qlen >= c->qlimit && !S.shutting_down) {
		char why[96];

		snprintf(why, sizeof(why), "not reading (%zu messages queued); dropping it",
			 c->qlen);
		mark_dead(c, LOG_WARNING, why);
		return;
	}
	if (c->qlen == c->qcap) {
		size_t cap = c->qcap ? c->qcap * 2 : 16;
		struct qent *q = malloc(cap * sizeof(*q));

		if (!q) {
			mark_dead(c, LOG_ERR, "out of memory for its send queue; dropping it");
			return;
		}
		for (size_t i = 0; i < c->qlen; i++)
			q[i] = c->q[(c->qhead + i) % c->qcap];
		free(c->q);
		c->q = q;
		c->qcap = cap;
		c->qhead = 0;
	}
	if (ref)
		ref->refs++;
	if (flags & Q_NOTICE)
		ref->unsent++;
	c->q[(c->qhead + c->qlen) % c->qcap] = (struct qent){ value, fd, ref, flags & Q_NOTICE };
	c->qlen++;
	/* While EPOLLOUT is armed (or the retry timer) the loop flushes, in order. */
	if (!(flags & Q_BATCH))
		flush_now(c);
}

/*
 * Remove from @c's queue every message that hands out @ev's fds (a peer that
 * left). Returns how many there were.
 */
static unsigned int cancel_refs(struct client *c, struct evset *ev)
{
	size_t keep = 0, hold = c->hold;
	unsigned int removed = 0;

	for (size_t i = 0; i < c->qlen; i++) {
		struct qent *e = &c->q[(c->qhead + i) % c->qcap];

		if (e->ref != ev) {
			c->q[(c->qhead + keep++) % c->qcap] = *e;
			continue;
		}
		if (i < c->hold)
			hold--;
		removed++;
		qent_done(e);
	}
	c->qlen = keep;
	c->hold = hold;
	return removed;
}

/* Close everything a client holds; the struct itself stays until free_graveyard(). */
static void client_close(struct client *c)
{
	unmark_dirty(c);
	if (c->stalled)
		S.nstalled--;
	c->stalled = false;
	clear_blocked(c);
	clear_idle(c);
	if (c->kernel_dev >= 0) {
		close(c->kernel_dev);	/* the kernel removes the region */
		c->kernel_dev = -1;
	} else {
		close(c->sock);	/* also leaves the epoll set */
	}
	c->sock = -1;
	while (c->qlen) {
		struct qent e = c->q[c->qhead];

		c->qhead = (c->qhead + 1) % c->qcap;
		c->qlen--;
		qent_done(&e);
	}
	free(c->q);
	c->q = NULL;
	if (c->ev)
		c->ev->owner = NULL;
	evset_put(c->ev);
	c->ev = NULL;
}

static void free_graveyard(void)
{
	while (S.graveyard) {
		struct client *c = S.graveyard;

		S.graveyard = c->next_dead;
		free(c);
	}
}

/* The kernel peer @k failed a call: gone for good if its region was removed. */
static void kernel_failed(struct client *k, int err)
{
	if (err == -ENODEV)
		mark_dead(k, LOG_ERR, "kernel peer: ivshmem_host.ko removed its region (the memory "
			  "lost pages: a hole punched or the file shrunk); it leaves");
	else
		log_msg(LOG_WARNING, "%s", ivshmem_errmsg());
}

static void kernel_join(struct client *k, const struct client *c)
{
	int err = ivshmem_kpeer_join(k->kernel_dev, c->id, c->ev->fds, c->ev->n);

	if (err < 0)
		kernel_failed(k, err);
}

static void kernel_leave(struct client *k, uint16_t id)
{
	int err = ivshmem_kpeer_leave(k->kernel_dev, id);

	if (err < 0)
		kernel_failed(k, err);
}

/* Remove dropped clients and tell every remaining peer; may drop more on the way. */
static void reap_dead(void)
{
	const unsigned int n = S.cfg->vectors;

	while (S.dead) {
		struct client *c = S.dead;

		S.dead = c->next_dead;
		if (c->in_list) {
			bool queued = c->ev->refs > 1;

			c->prev->next = c->next;
			c->next->prev = c->prev;
			c->in_list = false;
			ids_put(&S.ids, c->id);
			S.npeers--;
			for_each_peer(p) {
				if (p->kernel_dev >= 0) {
					kernel_leave(p, c->id);
					continue;
				}
				/* Not yet told about @c: cancel that, and there is nothing to undo. */
				if (queued && p->qlen && cancel_refs(p, c->ev) == n && n)
					continue;
				enqueue_msg(p, c->id, -1, NULL, Q_BATCH);
				mark_dirty(p);
			}
			log_msg(LOG_INFO, "peer %u left, %u peer%s now", c->id, S.npeers,
				S.npeers == 1 ? "" : "s");
		}
		client_close(c);
		c->next_dead = S.graveyard;
		S.graveyard = c;
	}
}

/* Handle the clients' pending events now (no accept, no signal), then reap. */
static void client_event(struct client *c, uint32_t events);

static void reap_pending(void)
{
	struct epoll_event evs[256];
	int n = epoll_wait(S.epfd, evs, 256, 0);

	for (int i = 0; i < n; i++) {
		void *tag = evs[i].data.ptr;

		if (tag != &tag_listen && tag != &tag_signal && !((struct client *)tag)->dead)
			client_event(tag, evs[i].events);
	}
	reap_dead();
}

static void refuse(int sock, const char *why)
{
	time_t now = time(NULL);

	/* One line per second at most: a connect storm must not flood the log. */
	S.refused++;
	if (now != S.last_full_warning) {
		log_msg(LOG_WARNING, "refusing a client: %s (%u refused)", why, S.refused);
		S.last_full_warning = now;
	}
	close(sock);
}

static struct client *new_client(int sock, int id)
{
	struct epoll_event eev = { .events = EPOLLIN | EPOLLPRI | EPOLLRDHUP };
	struct client *c = calloc(1, sizeof(*c));
	int one = 1;

	if (c)
		c->ev = evset_new(S.cfg->vectors);
	if (!c || !c->ev) {
		log_msg(LOG_WARNING, "refusing a client: cannot create its %u eventfds: %s",
			S.cfg->vectors, strerror(errno));
		free(c);
		return NULL;
	}
	c->sock = sock;
	c->kernel_dev = -1;
	c->id = (uint16_t)id;
	c->ev->owner = c;
	/* Out-of-band data (AF_UNIX has it since Linux 5.15) then reads like any other byte. */
	setsockopt(sock, SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one));
	eev.data.ptr = c;
	if (epoll_ctl(S.epfd, EPOLL_CTL_ADD, sock, &eev) < 0) {
		log_msg(LOG_WARNING, "refusing a client: epoll_ctl: %s", strerror(errno));
		client_close(c);
		free(c);
		return NULL;
	}
	return c;
}

/* @c joins the peer list, last. */
static void link_peer(struct client *c)
{
	c->next = &S.head;
	c->prev = S.head.prev;
	S.head.prev->next = c;
	S.head.prev = c;
	c->in_list = true;
	S.npeers++;
}

static void add_client(int sock)
{
	const unsigned int n = S.cfg->vectors;
	struct client *c;
	int id;

	if (S.npeers >= S.cfg->max_peers)
		reap_pending();	/* peers that hung up do not count */
	if (S.npeers >= S.cfg->max_peers) {
		refuse(sock, "--max-peers reached");
		return;
	}
	id = ids_get(&S.ids);
	if (id < 0) {
		refuse(sock, "all 65536 peer IDs in use");
		return;
	}
	c = new_client(sock, id);
	if (!c) {
		ids_put(&S.ids, (uint16_t)id);
		close(sock);
		return;
	}
	/* The join burst must fit; beyond it a client may fall max_queue messages behind. */
	c->qlimit = 3 + (size_t)(S.npeers + 1) * n + S.cfg->max_queue;
	/* 1. Version, ID and the shm fd (QEMU's device misbehaves if eventfds come first). */
	enqueue_msg(c, IVSHMEM_PROTOCOL_VERSION, -1, NULL, Q_BATCH);
	enqueue_msg(c, id, -1, NULL, Q_BATCH);
	enqueue_msg(c, IVSHMEM_MSG_SHM, S.shm_fd, NULL, 0);
	/*
	 * 2. Every existing peer hears of the newcomer. Queued and flushed by the
	 * loop (flush_dirty), so joins in quick succession share sendmmsg calls.
	 */
	for_each_peer(p) {
		if (p->kernel_dev >= 0) {
			kernel_join(p, c);
			continue;
		}
		for (unsigned int i = 0; i < n; i++)
			enqueue_msg(p, id, c->ev->fds[i], c->ev, Q_NOTICE | Q_BATCH);
		mark_dirty(p);
	}
	/* 3. The others' eventfds, then its own: held until step 2 is all sent. */
	c->hold = c->qlen;
	c->held = c->ev->unsent > 0;
	for_each_peer(p)
		for (unsigned int i = 0; i < n; i++)
			enqueue_msg(c, p->id, p->ev->fds[i], p->ev, Q_BATCH);
	for (unsigned int i = 0; i < n; i++)
		enqueue_msg(c, id, c->ev->fds[i], c->ev, Q_BATCH);
	if (!c->held)
		c->hold = 0;
	flush_now(c);
	link_peer(c);
	log_msg(LOG_INFO, "peer %d joined, %u peer%s now", id, S.npeers, S.npeers == 1 ? "" : "s");
	log_msg(LOG_DEBUG, "peer %d: fd %d, greeting of %zu messages, %zu sent at once%s", id, sock,
		3 + (size_t)S.npeers * n, 3 + (size_t)S.npeers * n - c->qlen,
		c->held ? ", own vectors held until the others are told" : "");
}
static void pause_listen(void)
{
	epoll_ctl(S.epfd, EPOLL_CTL_DEL, S.listen_fd, NULL);
	S.listen_paused = true;
	clock_gettime(CLOCK_MONOTONIC, &S.resume_listen);
	S.resume_listen.tv_sec += 1;
}

static void out_of_fds(int err)
{
	time_t now = time(NULL);
	int s;

	/* One line per second at most: a connect storm must not flood the log. */
	if (now != S.last_fd_warning) {
		log_msg(LOG_WARNING, "refusing a client: out of file descriptors (%s)",
			strerror(err));
		S.last_fd_warning = now;
	}
	if (S.reserve_fd < 0) {
		/* Cannot drain the backlog; stop listening for a second instead of spinning. */
		pause_listen();
		return;
	}
	/* Give the spare fd back to accept the client only to close it at once. */
	close(S.reserve_fd);
	s = accept4(S.listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (s >= 0)
		close(s);
	S.reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}


static void accept_clients(void)
{
	/* Bounded so that a connect storm cannot starve the peers' traffic. */
	for (int i = 0; i < 64; i++) {
		int s = accept4(S.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (s >= 0) {
			add_client(s);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			out_of_fds(errno);
			continue;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			log_msg(LOG_ERR, "accept: %s", strerror(errno));
		return;
	}
}

static void client_event(struct client *c, uint32_t events)
{
	if (events & (EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		char byte;
		ssize_t n = recv(c->sock, &byte, 1, MSG_PEEK | MSG_DONTWAIT);

		/*
		 * Clients only listen: anything they send is a reason to drop them.
		 * SO_OOBINLINE puts out-of-band bytes in line; MSG_OOB catches one
		 * that arrived before that, so a readable socket never spins the loop.
		 */
		if (n < 0 && errno == EAGAIN && (events & (EPOLLIN | EPOLLPRI)))
			n = recv(c->sock, &byte, 1, MSG_OOB | MSG_DONTWAIT);
		if (n > 0)
			mark_dead(c, LOG_NOTICE, "sent data (clients must only listen); dropping it");
		else if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR && errno != EINVAL))
			mark_dead(c, LOG_INFO, "disconnected");
		else if (events & (EPOLLHUP | EPOLLERR))
			mark_dead(c, LOG_INFO, "socket error; dropping it");
		else if ((events & (EPOLLIN | EPOLLPRI)) && ++c->empty_reads >= 3)
			mark_dead(c, LOG_NOTICE, "socket readable with nothing to read; dropping it");
		if (c->dead)
			return;
	}
	if (events & EPOLLOUT)
		flush(c);
}

/*
 * Has @c read anything since we last looked? The kernel counts the socket
 * buffer bytes of unread messages (SIOCOUTQ); every message costs the same.
 */
static void sample_reads(struct client *c, int64_t now)
{
	int outq = 0;

	if (ioctl(c->sock, SIOCOUTQ, &outq) < 0)
		return;
	if (outq == 0) {
		c->read_msgs = c->sent_msgs;
		clear_idle(c);
		return;
	}
	{
		uint64_t unread = (uint64_t)outq / S.msg_truesize;
		uint64_t read = c->sent_msgs > unread ? c->sent_msgs - unread : 0;

		if (read > c->read_msgs) {
			c->read_msgs = read;
			set_idle(c, now);
		}
	}
}

/*
 * The bounds on clients that stop reading, checked every CHECK_MS:
 * - a socket that took nothing for STALL_MS (full, or no fd may be passed);
 * - unread messages with nothing read for @idle_ms, beyond @allowance: the
 *   fds they carry stay charged to our user in the kernel, which refuses to
 *   pass more (ETOOMANYREFS) beyond RLIMIT_NOFILE of them. Normally each
 *   client may sit on a fair share of that; under pressure on none.
 */
static void check_clients(int64_t now, int64_t idle_ms, uint64_t allowance)
{
	for_each_peer(c) {
		uint64_t unread;
		char why[128];

		if (c->dead)
			continue;
		if (c->idle_since)
			sample_reads(c, now);
		unread = c->sent_msgs - c->read_msgs;
		if (c->blocked_since && now - c->blocked_since >= STALL_MS) {
			snprintf(why, sizeof(why), "not reading: its socket took nothing for %d ms "
				 "(%zu messages queued); dropping it", STALL_MS, c->qlen);
			mark_dead(c, LOG_WARNING, why);
		} else if (c->idle_since && now - c->idle_since >= idle_ms && unread > allowance) {
			snprintf(why, sizeof(why), "not reading: %llu messages (and their fds) unread "
				 "for %lld ms; dropping it", (unsigned long long)unread,
				 (long long)(now - c->idle_since));
			mark_dead(c, LOG_WARNING, why);
		}
	}
	S.next_check = now + CHECK_MS;
}

/* Unread messages one client may hold for long: half the in-flight limit, shared. */
static uint64_t fair_share(void)
{
	uint64_t share = S.nofile / (2 * ((uint64_t)S.npeers + 1));

	return share < 16 ? 16 : share;
}

static void retry_stalled(void)
{
	for_each_peer(c) {
		if (c->stalled) {
			c->stalled = false;
			S.nstalled--;
			flush(c);
		}
	}
	S.next_retry = now_ms() + INFLIGHT_RETRY_MS;
}

/* Tell every peer that all others are gone, give the queues a moment, close. */
static void shutdown_all(void)
{
	int64_t start = now_ms();

	S.shutting_down = true;
	flush_dirty(UINT32_MAX);
	log_msg(LOG_NOTICE, "shutting down: telling %u peer%s", S.npeers,
		S.npeers == 1 ? "" : "s");
	for_each_peer(c) {
		if (c->kernel_dev >= 0)
			continue;	/* closing its device removes the region */
		c->held = false;	/* whatever was held goes out now, in order */
		for_each_peer(p)
			if (p != c)
				enqueue_msg(c, p->id, -1, NULL, Q_BATCH);
		flush_now(c);
	}
	for (;;) {
		struct epoll_event evs[64];
		bool pending = false;
		int n;

		for_each_peer(c)
			pending |= c->qlen && !c->dead;
		if (!pending || now_ms() - start >= 2000)
			break;
		n = epoll_wait(S.epfd, evs, 64, 100);
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == &tag_listen || evs[i].data.ptr == &tag_signal)
				continue;
			if (evs[i].events & EPOLLOUT)
				flush(evs[i].data.ptr);
		}
		retry_stalled();
	}
	while (S.head.next != &S.head) {
		struct client *c = S.head.next;

		c->prev->next = c->next;
		c->next->prev = c->prev;
		client_close(c);
		free(c);
	}
	/* Clients marked dead are still in the list above (only reap_dead unlinks). */
	S.dead = NULL;
	S.npeers = 0;
	free_graveyard();
}
/* The kernel peer joins first, as peer KERNEL_PEER_ID, with its own eventfds bound. */
static int add_kernel_peer(int dev)
{
	const unsigned int n = S.cfg->vectors;
	struct client *c = calloc(1, sizeof(*c));
	int id = ids_get(&S.ids);

	if (c)
		c->ev = evset_new(n);
	if (!c || !c->ev || id != KERNEL_PEER_ID) {
		log_msg(LOG_ERR, "kernel peer: cannot create its %u eventfds: %s", n,
			strerror(errno));
		free(c);
		return -1;
	}
	c->sock = -1;
	c->kernel_dev = dev;
	c->id = (uint16_t)id;
	c->ev->owner = c;
	if (ivshmem_kpeer_bind_own(dev, c->ev->fds, n) < 0) {
		log_msg(LOG_ERR, "%s", ivshmem_errmsg());
		c->kernel_dev = -1;	/* the caller closes @dev */
		client_close(c);
		free(c);
		return -1;
	}
	link_peer(c);
	log_msg(LOG_INFO, "kernel peer '%s' joined as peer %d (%u vector%s)", S.cfg->kernel_peer,
		id, n, n == 1 ? "" : "s");
	return 0;
}

/*
 * What is at @path now: 0 nothing, 1 a stale socket nobody listens on, -1 a
 * live server or something we must not replace (logged).
 */
static int probe_socket_path(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct stat st;
	int probe, ret;

	if (lstat(path, &st) < 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		log_msg(LOG_ERR, "%s exists and is not a socket; not replacing it", path);
		return -1;
	}
	strcpy(addr.sun_path, path);
	/* Someone answering means a live server: never steal its path. */
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ret = probe < 0 ? -1 : connect(probe, (struct sockaddr *)&addr, sizeof(addr));
	if (ret == 0 || errno == EAGAIN || errno == EINPROGRESS) {
		log_msg(LOG_ERR, "%s: another server is listening there; not replacing it", path);
		close(probe);
		return -1;
	}
	if (probe >= 0)
		close(probe);
	if (errno != ECONNREFUSED) {
		log_msg(LOG_ERR, "%s: in use and cannot be probed: %s", path, strerror(errno));
		return -1;
	}
	log_msg(LOG_NOTICE, "%s: replacing a stale socket (nobody listens there)", path);
	return 1;
}

/*
 * Bind @fd to @path with the configured mode and group, and listen. Errors
 * name @shown, the path the user gave (@path may be its temporary name).
 */
static int bind_and_listen(int fd, const char *path, const char *shown,
			   const struct server_config *cfg)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	mode_t old_umask;
	int ret;

	strcpy(addr.sun_path, path);
	/* Never a moment with the umask's permissions on the socket. */
	old_umask = umask(~cfg->socket_mode & 0777);
	ret = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
	umask(old_umask);
	if (ret < 0) {
		log_msg(LOG_ERR, "%s: bind: %s", shown, strerror(errno));
		return -1;
	}
	if (chmod(path, cfg->socket_mode) < 0 ||
	    (cfg->socket_group != (gid_t)-1 && chown(path, (uid_t)-1, cfg->socket_group) < 0)) {
		log_msg(LOG_ERR, "%s: cannot set mode/group: %s", shown, strerror(errno));
		unlink(path);
		return -1;
	}
	if (listen(fd, SOMAXCONN) < 0) {
		log_msg(LOG_ERR, "%s: listen: %s", shown, strerror(errno));
		unlink(path);
		return -1;
	}
	return 0;
}

/*
 * The socket appears at its path only once it listens, so a client (QEMU,
 * or a script waiting for the file) that connects as soon as it sees the
 * file is never refused: bind and listen under a temporary name next to it,
 * then link it into place (rename over a stale socket). Only a path too long
 * for the temporary name is bound in place, with the short bind-to-listen
 * window that QEMU's server always has.
 */
int server_listen(const struct server_config *cfg)
{
	const char *path = cfg->socket_path;
	char tmp[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd, stale, n, ret;

	if (!path || !*path) {
		log_msg(LOG_ERR, "empty socket path");
		return -1;
	}
	if (strlen(path) >= sizeof(tmp)) {
		log_msg(LOG_ERR, "%s: socket path too long (at most %zu bytes)", path,
			sizeof(tmp) - 1);
		return -1;
	}
	stale = probe_socket_path(path);
	if (stale < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_msg(LOG_ERR, "socket: %s", strerror(errno));
		return -1;
	}
	n = snprintf(tmp, sizeof(tmp), "%s.%ld~", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		if (stale)
			unlink(path);
		if (bind_and_listen(fd, path, path, cfg) < 0)
			goto fail;
		return fd;
	}
	unlink(tmp);	/* a leftover of a crashed server that had our pid */
	if (bind_and_listen(fd, tmp, path, cfg) < 0)
		goto fail;
	/* link() fails if a server took the free path meanwhile; rename() replaces a stale one. */
	ret = stale ? rename(tmp, path) : link(tmp, path);
	if (ret < 0 && !stale && errno != EEXIST)
		ret = rename(tmp, path);	/* a file system without hard links */
	else if (ret == 0 && !stale)
		unlink(tmp);
	if (ret < 0) {
		log_msg(LOG_ERR, "%s: %s", path,
			errno == EEXIST ? "another server took this path meanwhile; not replacing it"
					: strerror(errno));
		unlink(tmp);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

static void resume_listen_if_due(void)
{
	struct timespec now;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &tag_listen };

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec < S.resume_listen.tv_sec ||
	    (now.tv_sec == S.resume_listen.tv_sec && now.tv_nsec < S.resume_listen.tv_nsec))
		return;
	if (S.reserve_fd < 0)
		S.reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (epoll_ctl(S.epfd, EPOLL_CTL_ADD, S.listen_fd, &ev) == 0)
		S.listen_paused = false;
}


/* Socket buffer bytes one queued 8-byte message costs (0 if it cannot be measured). */
static unsigned int measure_msg_truesize(void)
{
	int64_t values[2] = { 0, 0 };
	int fds[2] = { -1, -1 }, sv[2], one = 0, two = 0;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	if (ivshmem_msg_send_many(sv[0], values, fds, 1) != 1 || ioctl(sv[0], SIOCOUTQ, &one) < 0 ||
	    ivshmem_msg_send_many(sv[0], values, fds, 1) != 1 || ioctl(sv[0], SIOCOUTQ, &two) < 0)
		one = 0;
	close(sv[0]);
	close(sv[1]);
	return one > 0 && two == 2 * one ? (unsigned int)one : 0;
}

static int loop_timeout(int64_t now)
{
	int64_t t = -1;

	if (S.dirty_head || S.dead || S.inflight_pressure)
		return 0;
	if (S.nblocked || S.nidle)
		t = S.next_check > now ? S.next_check - now : 0;
	if (S.nstalled) {
		int64_t r = S.next_retry > now ? S.next_retry - now : 0;

		t = t < 0 || r < t ? r : t;
	}
	if (S.listen_paused && (t < 0 || t > 100))
		t = 100;
	return (int)t;
}

int server_run(const struct server_config *cfg, int listen_fd, int shm_fd, int signal_fd,
	       int kernel_dev)
{
	struct epoll_event ev;

	S.cfg = cfg;
	S.listen_fd = listen_fd;
	S.shm_fd = shm_fd;
	S.signal_fd = signal_fd;
	S.head.next = S.head.prev = &S.head;
	ids_init(&S.ids, 0);
	S.msg_truesize = measure_msg_truesize();
	if (!S.msg_truesize)
		S.msg_truesize = 768;	/* what Linux 5.x and 6.x charge; only an estimate here */
	{
		struct rlimit rl;

		S.nofile = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ?
			   rl.rlim_cur : 1u << 20;
	}
	S.reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	S.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (S.epfd < 0) {
		log_msg(LOG_ERR, "epoll_create1: %s", strerror(errno));
		return 1;
	}
	ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &tag_listen };
	if (epoll_ctl(S.epfd, EPOLL_CTL_ADD, listen_fd, &ev) < 0)
		goto fail;
	ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &tag_signal };
	if (epoll_ctl(S.epfd, EPOLL_CTL_ADD, signal_fd, &ev) < 0)
		goto fail;
	if (kernel_dev >= 0 && add_kernel_peer(kernel_dev) < 0) {
		close(kernel_dev);
		return 1;
	}

	for (;;) {
		struct epoll_event evs[256];
		int n = epoll_wait(S.epfd, evs, 256, loop_timeout(now_ms()));
		int64_t now;

		if (n < 0 && errno != EINTR)
			goto fail;
		for (int i = 0; i < n; i++) {
			void *tag = evs[i].data.ptr;

			if (tag == &tag_signal) {
				struct signalfd_siginfo si;

				if (read(signal_fd, &si, sizeof(si)) == sizeof(si))
					log_msg(LOG_NOTICE, "got %s", strsignal((int)si.ssi_signo));
				reap_dead();
				shutdown_all();
				close(S.epfd);
				if (S.reserve_fd >= 0)
					close(S.reserve_fd);
				return 0;
			}
			if (tag == &tag_listen)
				accept_clients();
			else if (!((struct client *)tag)->dead)
				client_event(tag, evs[i].events);
		}
		flush_dirty(64);
		now = now_ms();
		if (S.inflight_pressure) {
			/* Out of in-flight fds: whoever sits on unread ones goes first. */
			S.inflight_pressure = false;
			check_clients(now, PRESSURE_IDLE_MS, 0);
		} else if ((S.nblocked || S.nidle) && now >= S.next_check) {
			check_clients(now, STALL_MS, fair_share());
		}
		if (S.nstalled && now >= S.next_retry) {
			reap_dead();
			retry_stalled();
		}
		reap_dead();
		/* No event of this batch refers to a client any more. */
		free_graveyard();
		if (S.listen_paused)
			resume_listen_if_due();
	}
fail:
	log_msg(LOG_ERR, "event loop: %s", strerror(errno));
	return 1;
}
