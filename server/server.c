// SPDX-License-Identifier: MIT
/*
 * The ivshmem-server event loop: one epoll set, one send queue per client.
 *
 * Nothing here ever blocks on a client. Every message goes through the
 * client's queue and is written when the socket takes it, so EAGAIN never
 * loses a message and a client that stops reading only delays itself; when
 * its queue passes a bound it is dropped like any other leaving peer.
 * Drops are deferred to the top of the loop (dead list), so a failure while
 * broadcasting never modifies the peer list under the broadcaster's feet.
 */
#define _GNU_SOURCE
#include "server.h"

#include "ids.h"

#include "ivshmem/protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/* A peer's eventfds, shared by its client and every queued message that hands them out. */
struct evset {
	unsigned int refs;
	unsigned int n;
	int fds[];
};

struct qent {
	int64_t value;
	int fd;			/* fd to pass, or -1 */
	struct evset *ref;	/* keeps @fd open until sent; NULL for the shm fd */
};

struct client {
	struct client *prev, *next;	/* peer list */
	struct client *next_dead;
	int sock;
	uint16_t id;
	bool in_list, dead, want_out;
	bool stalled;			/* too many fds in flight: retry on a timer */
	struct client *dirty_prev, *dirty_next;	/* on the to-flush list when dirty */
	bool dirty;
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
	bool shutting_down;
	bool listen_paused;
	struct timespec resume_listen;
	time_t last_fd_warning, last_inflight_warning;
	unsigned int nstalled;
	struct client *dirty_head, *dirty_tail;
} S;

/* epoll tags for the two non-client fds */
static char tag_listen, tag_signal;

#define for_each_peer(c) for (struct client *c = S.head.next; c != &S.head; c = c->next)

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
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0),
				  .data.ptr = c };

	if (c->want_out == on)
		return;
	if (epoll_ctl(S.epfd, EPOLL_CTL_MOD, c->sock, &ev) < 0) {
		mark_dead(c, LOG_ERR, "epoll_ctl failed; dropping");
		return;
	}
	c->want_out = on;
}

/* Write queued messages until the queue is empty or the socket is full. */
static void flush(struct client *c)
{
	while (c->qlen && !c->dead) {
		int64_t values[64];
		int fds[64];
		unsigned int n = 0;
		int sent;

		/* Contiguous run of the ring, at most one sendmmsg batch. */
		while (n < 64 && n < c->qlen) {
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
			return;
		}
		if (sent == -ETOOMANYREFS) {
			/*
			 * The kernel limits fds in flight per user to RLIMIT_NOFILE: clients
			 * are slow to read. Not this client's fault alone: retry soon.
			 */
			time_t now = time(NULL);

			if (now != S.last_inflight_warning)
				log_msg(LOG_WARNING, "too many fds in flight to slow readers; "
					"retrying (raise RLIMIT_NOFILE)");
			S.last_inflight_warning = now;
			if (!c->stalled) {
				c->stalled = true;
				S.nstalled++;
			}
			return;
		}
		if (sent < 0) {
			mark_dead(c, LOG_INFO, sent == -EPIPE || sent == -ECONNRESET ?
				  "disconnected" : "send failed; dropping");
			return;
		}
		for (int i = 0; i < sent; i++) {
			evset_put(c->q[c->qhead].ref);
			c->qhead = (c->qhead + 1) % c->qcap;
			c->qlen--;
		}
	}
	if (!c->dead)
		set_want_out(c, false);
}

static void flush_now(struct client *c);

/*
 * Broadcasts (a join or leave told to every peer) only queue, and put the
 * peer on the to-flush list; the loop flushes a bounded number per round
 * between epoll waits. So telling 1,000 peers about a newcomer never stalls
 * the newcomer's own greeting, which goes out first.
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

/* Queue one message; send it now unless @batch (the caller flushes after a run of them). */
static void enqueue_msg(struct client *c, int64_t value, int fd, struct evset *ref, bool batch)
{
	if (c->dead)
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
	c->q[(c->qhead + c->qlen) % c->qcap] = (struct qent){ value, fd, ref };
	c->qlen++;
	/* While EPOLLOUT is armed (or the retry timer) the loop flushes, in order. */
	if (!batch)
		flush_now(c);
}

static void enqueue(struct client *c, int64_t value, int fd, struct evset *ref)
{
	enqueue_msg(c, value, fd, ref, false);
}

static void client_free(struct client *c)
{
	unmark_dirty(c);
	if (c->stalled)
		S.nstalled--;
	close(c->sock);	/* also leaves the epoll set */
	for (; c->qlen; c->qlen--, c->qhead = (c->qhead + 1) % c->qcap)
		evset_put(c->q[c->qhead].ref);
	free(c->q);
	evset_put(c->ev);
	free(c);
}

/* Remove dropped clients and tell every remaining peer; may drop more on the way. */
static void reap_dead(void)
{
	while (S.dead) {
		struct client *c = S.dead;

		S.dead = c->next_dead;
		if (c->in_list) {
			c->prev->next = c->next;
			c->next->prev = c->prev;
			ids_put(&S.ids, c->id);
			S.npeers--;
			for_each_peer(p) {
				enqueue_msg(p, c->id, -1, NULL, true);
				mark_dirty(p);
			}
			log_msg(LOG_INFO, "peer %u left, %u peer%s now", c->id, S.npeers,
				S.npeers == 1 ? "" : "s");
		}
		client_free(c);
	}
}

static void add_client(int sock)
{
	const unsigned int n = S.cfg->vectors;
	struct epoll_event eev;
	struct client *c;
	int id;

	if (S.npeers >= S.cfg->max_peers) {
		log_msg(LOG_WARNING, "refusing a client: already %u peers (--max-peers)", S.npeers);
		close(sock);
		return;
	}
	id = ids_get(&S.ids);
	if (id < 0) {
		log_msg(LOG_WARNING, "refusing a client: all 65536 peer IDs in use");
		close(sock);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c)
		c->ev = evset_new(n);
	if (!c || !c->ev) {
		log_msg(LOG_WARNING, "refusing a client: cannot create its %u eventfds: %s", n,
			strerror(errno));
		free(c);
		ids_put(&S.ids, (uint16_t)id);
		close(sock);
		return;
	}
	c->sock = sock;
	c->id = (uint16_t)id;
	/* The join burst must fit; beyond it a client may fall max_queue messages behind. */
	c->qlimit = 3 + (size_t)(S.npeers + 1) * n + S.cfg->max_queue;
	eev.events = EPOLLIN | EPOLLRDHUP;
	eev.data.ptr = c;
	if (epoll_ctl(S.epfd, EPOLL_CTL_ADD, sock, &eev) < 0) {
		log_msg(LOG_WARNING, "refusing a client: epoll_ctl: %s", strerror(errno));
		ids_put(&S.ids, (uint16_t)id);
		client_free(c);
		return;
	}
	/*
	 * Version, ID and the shm fd first, as QEMU's server does (its device
	 * misbehaves if eventfds come before the shm fd). Then the newcomer's
	 * whole burst, existing peers' eventfds and its own, in as few sendmmsg
	 * calls as fit. Only then are the others told: QEMU's device accepts
	 * these steps in any order, and the newcomer is ready sooner.
	 */
	enqueue_msg(c, IVSHMEM_PROTOCOL_VERSION, -1, NULL, true);
	enqueue_msg(c, id, -1, NULL, true);
	enqueue_msg(c, IVSHMEM_MSG_SHM, S.shm_fd, NULL, true);
	for_each_peer(p)
		for (unsigned int i = 0; i < n; i++)
			enqueue_msg(c, p->id, p->ev->fds[i], p->ev, true);
	for (unsigned int i = 0; i < n; i++)
		enqueue_msg(c, id, c->ev->fds[i], c->ev, true);
	flush_now(c);
	for_each_peer(p) {
		for (unsigned int i = 0; i < n; i++)
			enqueue_msg(p, id, c->ev->fds[i], c->ev, true);
		mark_dirty(p);
	}
	c->next = &S.head;
	c->prev = S.head.prev;
	S.head.prev->next = c;
	S.head.prev = c;
	c->in_list = true;
	S.npeers++;
	log_msg(LOG_INFO, "peer %d joined, %u peer%s now", id, S.npeers, S.npeers == 1 ? "" : "s");
	log_msg(LOG_DEBUG, "peer %d: fd %d, greeting of %zu messages, %zu sent at once", id, sock,
		3 + (size_t)S.npeers * n, 3 + (size_t)S.npeers * n - c->qlen);
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
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		char byte;
		ssize_t n = recv(c->sock, &byte, 1, MSG_PEEK | MSG_DONTWAIT);

		/* Clients only listen: anything they send is a reason to drop them. */
		if (n > 0)
			mark_dead(c, LOG_NOTICE, "sent data (clients must only listen); dropping it");
		else if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			mark_dead(c, LOG_INFO, "disconnected");
		else if (events & (EPOLLHUP | EPOLLERR))
			mark_dead(c, LOG_INFO, "socket error; dropping it");
		if (c->dead)
			return;
	}
	if (events & EPOLLOUT)
		flush(c);
}

/* Tell every peer that all others are gone, give the queues a moment, close. */
static void shutdown_all(void)
{
	struct timespec start, now;

	S.shutting_down = true;
	flush_dirty(UINT32_MAX);
	log_msg(LOG_NOTICE, "shutting down: telling %u peer%s", S.npeers,
		S.npeers == 1 ? "" : "s");
	for_each_peer(c)
		for_each_peer(p)
			if (p != c)
				enqueue(c, p->id, -1, NULL);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct epoll_event evs[64];
		bool pending = false;
		int n;

		for_each_peer(c)
			pending |= c->qlen && !c->dead;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (!pending || now.tv_sec - start.tv_sec >= 2)
			break;
		n = epoll_wait(S.epfd, evs, 64, 100);
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == &tag_listen || evs[i].data.ptr == &tag_signal)
				continue;
			if (evs[i].events & EPOLLOUT)
				flush(evs[i].data.ptr);
		}
		for_each_peer(c) {
			if (c->stalled) {
				c->stalled = false;
				S.nstalled--;
				flush(c);
			}
		}
	}
	while (S.head.next != &S.head) {
		struct client *c = S.head.next;

		c->prev->next = c->next;
		c->next->prev = c->prev;
		client_free(c);
	}
	/* Clients marked dead are still in the list above (only reap_dead unlinks). */
	S.dead = NULL;
	S.npeers = 0;
}

int server_listen(const struct server_config *cfg)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	const char *path = cfg->socket_path;
	mode_t old_umask;
	int fd, ret;

	if (!path || !*path) {
		log_msg(LOG_ERR, "empty socket path");
		return -1;
	}
	if (strlen(path) >= sizeof(addr.sun_path)) {
		log_msg(LOG_ERR, "%s: socket path too long (at most %zu bytes)", path,
			sizeof(addr.sun_path) - 1);
		return -1;
	}
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_msg(LOG_ERR, "socket: %s", strerror(errno));
		return -1;
	}
	/* Never a moment with the umask's permissions on the socket. */
	old_umask = umask(~cfg->socket_mode & 0777);
	ret = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
	if (ret < 0 && errno == EADDRINUSE) {
		struct stat st;
		int probe;

		if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
			log_msg(LOG_ERR, "%s exists and is not a socket; not replacing it", path);
			goto fail;
		}
		/* Someone answering means a live server: never steal its path. */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		ret = probe < 0 ? -1 : connect(probe, (struct sockaddr *)&addr, sizeof(addr));
		if (ret == 0 || errno == EAGAIN || errno == EINPROGRESS) {
			log_msg(LOG_ERR, "%s: another server is listening there; not replacing it",
				path);
			close(probe);
			goto fail;
		}
		if (probe >= 0)
			close(probe);
		if (errno != ECONNREFUSED) {
			log_msg(LOG_ERR, "%s: in use and cannot be probed: %s", path,
				strerror(errno));
			goto fail;
		}
		log_msg(LOG_NOTICE, "%s: replacing a stale socket (nobody listens there)", path);
		unlink(path);
		ret = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
	}
	if (ret < 0) {
		log_msg(LOG_ERR, "%s: bind: %s", path, strerror(errno));
		goto fail;
	}
	umask(old_umask);
	if (chmod(path, cfg->socket_mode) < 0 ||
	    (cfg->socket_group != (gid_t)-1 && chown(path, (uid_t)-1, cfg->socket_group) < 0)) {
		log_msg(LOG_ERR, "%s: cannot set mode/group: %s", path, strerror(errno));
		unlink(path);
		close(fd);
		return -1;
	}
	if (listen(fd, SOMAXCONN) < 0) {
		log_msg(LOG_ERR, "%s: listen: %s", path, strerror(errno));
		unlink(path);
		close(fd);
		return -1;
	}
	return fd;
fail:
	umask(old_umask);
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

int server_run(const struct server_config *cfg, int listen_fd, int shm_fd, int signal_fd)
{
	struct epoll_event ev;

	S.cfg = cfg;
	S.listen_fd = listen_fd;
	S.shm_fd = shm_fd;
	S.signal_fd = signal_fd;
	S.head.next = S.head.prev = &S.head;
	ids_init(&S.ids, 0);
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

	for (;;) {
		struct epoll_event evs[256];
		int n = epoll_wait(S.epfd, evs, 256, S.dirty_head ? 0 : S.nstalled ? 10 :
				   S.listen_paused ? 100 : -1);

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
		/*
		 * Reap only after the whole batch: a later event in it may point at a
		 * client dropped earlier in the same batch, which must stay allocated.
		 */
		flush_dirty(64);
		if (S.nstalled) {
			for_each_peer(c) {
				if (c->stalled) {
					c->stalled = false;
					S.nstalled--;
					flush(c);
				}
			}
		}
		reap_dead();
		if (S.listen_paused)
			resume_listen_if_due();
	}
fail:
	log_msg(LOG_ERR, "event loop: %s", strerror(errno));
	return 1;
}
