// SPDX-License-Identifier: MIT
/*
 * lib/msg: uses the public region API, core, layout, ring.
 *
 * Named two-way channels (docs/channel.md): two endpoint slots and two rings
 * in one layout section, a connection state machine, heartbeats, doorbells
 * where the backend has them and polling where it does not.
 *
 * Section (offsets from its start, little-endian):
 *      0  u64 magic "IVSHCHAN", u32 version 2, u32 flags
 *     16  u64 ring_cap (bytes per direction), 24 u64 epoch (bumped on reset)
 *    128  slot 0 (128 bytes), 256 slot 1 (128 bytes)
 *    512  ring 0 control (slot 0 -> slot 1), 1024 ring 1 control (slot 1 -> slot 0)
 *   4096  ring 0 data, 4096 + cap ring 1 data
 * Slot: 0 u32 state (0 free, 1 open, 2 closed, 3 aborted), 4 u32 peer_id, 8 u32 vector, 12 u32 flags,
 *       16 u64 heartbeat, 24 u64 token, 32 u32 heartbeat_ms, 36 u32 pid,
 *       40 u64 host (kernel + pid namespace of the owner; 0 unknown)
 */
#define _GNU_SOURCE	/* ppoll */
#include "ivshmem/channel.h"

#include "ivshmem/layout.h"
#include "core/error.h"
#include "core/evfd.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define CH_MAGIC		"IVSHCHAN"
#define CH_VERSION		2u	/* 2: ring format v2 (docs/ring.md) */
#define CH_CTRL_SIZE		4096u
#define CH_SLOT(i)		(128u + 128u * (i))
#define CH_RING_CTRL(i)		(512u + 512u * (i))
#define CH_MIN_CAP		4096u
#define CH_MAX_CAP		IVSHMEM_RING_MAX_CAP

enum { S_STATE = 0, S_PEER = 4, S_VECTOR = 8, S_FLAGS = 12, S_HEARTBEAT = 16, S_TOKEN = 24,
       S_HB_MS = 32, S_PID = 36, S_HOST = 40 };
enum { SLOT_FREE = 0, SLOT_OPEN = 1, SLOT_CLOSED = 2, SLOT_ABORTED = 3 };
#define SLOT_WAKEABLE	(1u << 0)	/* sleeps on doorbells: kick it */
#define SLOT_CAN_NOTIFY	(1u << 1)	/* can ring doorbells */
#define SLOT_SEND_ONLY	(1u << 2)	/* role: never receives */
#define SLOT_RECV_ONLY	(1u << 3)	/* role: never sends */
#define SLOT_ROLES	(SLOT_SEND_ONLY | SLOT_RECV_ONLY)
#define NO_PEER		0xffffffffu

#define DEFAULT_RING	(64u * 1024)
#define DEFAULT_SPIN_US	50
#define DEFAULT_HB_MS	100
#define DEFAULT_DEAD_MS	3000
#define POLL_MIN_NS	20000LL		/* polling sleeps back off from 20 us ... */
#define POLL_MAX_NS	1000000LL	/* ... to 1 ms */
#define WAIT_MAX_NS	50000000LL	/* ... or to 50 ms while no peer has opened (it rings us) */

struct ivshmem_channel {
	struct ivshmem_region *r;
	uint8_t *sec;
	uint64_t cap;
	int me;			/* own slot index */
	struct ivshmem_ring tx, rx;
	struct ivshmem_channel_opts o;
	char name[IVSHMEM_SECTION_NAME_LEN];
	uint64_t token;
	bool wakeable;		/* we can sleep on a doorbell */
	int evfd, ctlfd, timerfd, epfd;
	long timer_ns;		/* current timerfd period */
	/* What we know about the other end (validated snapshots). */
	bool remote_seen;
	uint32_t remote_peer, remote_vector, remote_flags, remote_hb_ms;
	uint64_t remote_token, remote_hb;
	int64_t remote_hb_change;
	uint32_t remote_pid;
	uint64_t remote_host;
	int64_t last_check;	/* when we last looked at the heartbeat */
	enum ivshmem_channel_state state;
	const char *why_dead;
	/* Statistics. */
	uint64_t sent, received, sleeps, doorbell_wakeups;
	/* Who we are: the fork generation and pid at open, the kernel we run on. */
	unsigned long fork_gen;
	pid_t owner_pid;
	uint64_t host;
	/* Heartbeat thread. */
	pthread_t hb_thread;
	bool hb_running;
	pthread_mutex_t hb_lock;
	pthread_cond_t hb_cond;
	bool hb_stop;
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint32_t *slot32(const struct ivshmem_channel *ch, int slot, unsigned int field)
{
	return (uint32_t *)(ch->sec + CH_SLOT(slot) + field);
}

static uint64_t *slot64(const struct ivshmem_channel *ch, int slot, unsigned int field)
{
	return (uint64_t *)(ch->sec + CH_SLOT(slot) + field);
}

static uint32_t ld32(const uint32_t *p)
{
	return le32toh(__atomic_load_n(p, __ATOMIC_ACQUIRE));
}

static uint64_t ld64(const uint64_t *p)
{
	return le64toh(__atomic_load_n(p, __ATOMIC_ACQUIRE));
}

static void st32(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, htole32(v), __ATOMIC_RELEASE);
}

static void st64(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, htole64(v), __ATOMIC_RELEASE);
}

static uint64_t random_token(void)
{
	uint64_t v = 0;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (read(fd, &v, sizeof(v)) != sizeof(v))
			v = 0;
		close(fd);
	}
	v ^= (uint64_t)now_ns() * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	return v ? v : 1;
}

/* ---- who owns a slot ------------------------------------------------------------------- */

/*
 * fork(): the child gets a copy of every channel but not the heartbeat thread.
 * A counter bumped in every child tells a channel that it was inherited.
 */
static unsigned long fork_generation;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_child(void)
{
	__atomic_add_fetch(&fork_generation, 1, __ATOMIC_RELAXED);
}

static void watch_forks(void)
{
	pthread_atfork(NULL, NULL, fork_child);
}

static bool inherited(const struct ivshmem_channel *ch)
{
	return __atomic_load_n(&fork_generation, __ATOMIC_RELAXED) != ch->fork_gen;
}

static int inherited_error(const struct ivshmem_channel *ch)
{
	return ivshmem_fail(EBADFD, "channel '%s' belongs to process %d, which opened it; a "
			    "child forked after open can only close it (and opens its own)",
			    ch->name, (int)ch->owner_pid);
}

/*
 * The kernel and pid namespace we run in: a hash of the boot id and the pid
 * namespace, 0 if unknown. Endpoints with the same non-zero value see the same
 * pids, so one can ask the kernel whether the other's process still exists.
 */
static uint64_t host_id(void)
{
	char boot[64];
	uint64_t h = 0xcbf29ce484222325ull;	/* FNV-1a 64 */
	struct stat st;
	ssize_t n = -1;
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		n = read(fd, boot, sizeof(boot));
		close(fd);
	}
	if (n < 32 || stat("/proc/self/ns/pid", &st) < 0)
		return 0;
	for (ssize_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)boot[i]) * 0x100000001b3ull;
	h = (h ^ (uint64_t)st.st_ino) * 0x100000001b3ull;
	h = (h ^ (uint64_t)st.st_dev) * 0x100000001b3ull;
	return h ? h : 1;
}

enum owner { OWNER_UNKNOWN, OWNER_ALIVE, OWNER_GONE };

/*
 * What can be known at once about the owner of an OPEN slot, without watching
 * its heartbeat: on our kernel, whether its pid exists; as a doorbell peer of
 * our server, whether the server still lists it. Otherwise (another VM) only
 * the heartbeat tells.
 */
static enum owner owner_status(struct ivshmem_channel *ch, uint32_t pid, uint64_t host,
			       uint32_t peer, uint32_t flags)
{
	if (host && host == ch->host && pid > 0 && pid <= INT32_MAX) {
		if (kill((pid_t)pid, 0) == 0 || errno == EPERM)
			return OWNER_ALIVE;
		if (errno == ESRCH)
			return OWNER_GONE;
	}
	if ((flags & SLOT_CAN_NOTIFY) && peer <= 0xffff && (int)peer != ivshmem_own_id(ch->r)) {
		int ret = ivshmem_peer_vectors(ch->r, (uint16_t)peer);

		if (ret == -ENOENT)
			return OWNER_GONE;
		if (ret >= 0)
			return OWNER_ALIVE;
	}
	return OWNER_UNKNOWN;
}

/* ---- section format and validation ---------------------------------------------------- */

static void format_rings(uint8_t *sec, uint64_t cap)
{
	ivshmem_ring_format(sec + CH_RING_CTRL(0), sec + CH_CTRL_SIZE);
	ivshmem_ring_format(sec + CH_RING_CTRL(1), sec + CH_CTRL_SIZE + cap);
}

static int init_section(struct ivshmem_region *r, const struct ivshmem_section *s, void *arg)
{
	uint8_t *sec = (uint8_t *)ivshmem_base(r) + s->offset;
	uint64_t cap = *(uint64_t *)arg;
	uint32_t v32;
	uint64_t v64;

	memset(sec, 0, CH_CTRL_SIZE);
	memcpy(sec, CH_MAGIC, 8);
	v32 = htole32(CH_VERSION);
	memcpy(sec + 8, &v32, 4);
	v64 = htole64(cap);
	memcpy(sec + 16, &v64, 8);
	for (int i = 0; i < 2; i++) {
		v32 = htole32(NO_PEER);
		memcpy(sec + CH_SLOT(i) + S_PEER, &v32, 4);
	}
	format_rings(sec, cap);
	return 0;
}

/* Validate the section once; cap is taken from here and never re-read. */
static int check_section(struct ivshmem_channel *ch, const struct ivshmem_section *s)
{
	uint8_t head[24];
	uint32_t version;
	uint64_t cap;

	if (s->type != IVSHMEM_SECTION_CHANNEL)
		return ivshmem_fail(EINVAL, "section '%s' is not a channel", s->name);
	memcpy(head, ch->sec, sizeof(head));
	memcpy(&version, head + 8, 4);
	memcpy(&cap, head + 16, 8);
	version = le32toh(version);
	cap = le64toh(cap);
	if (memcmp(head, CH_MAGIC, 8) != 0)
		return ivshmem_fail(EBADMSG, "channel '%s': bad magic (not initialised or corrupt)",
				    s->name);
	if (version == 1)
		return ivshmem_fail(EPROTO, "channel '%s': made by an older version (channel and ring "
				    "format 1, this library speaks 2): re-create the region with "
				    "'ivshmem format'", s->name);
	if (version != CH_VERSION)
		return ivshmem_fail(EPROTO, "channel '%s': unsupported version %" PRIu32, s->name,
				    version);
	if (cap < CH_MIN_CAP || cap > CH_MAX_CAP || (cap & (cap - 1)) ||
	    s->size < CH_CTRL_SIZE + 2 * cap)
		return ivshmem_fail(EBADMSG, "channel '%s': ring size %" PRIu64 " does not fit its "
				    "%" PRIu64 "-byte section", s->name, cap, s->size);
	ch->cap = cap;
	return 0;
}

/* ---- the other end ---------------------------------------------------------------------- */

static void set_timer(struct ivshmem_channel *ch, long ns)
{
	struct itimerspec its = { 0 };

	if (ns == ch->timer_ns)
		return;
	ch->timer_ns = ns;
	its.it_interval.tv_sec = ns / 1000000000L;
	its.it_interval.tv_nsec = ns % 1000000000L;
	its.it_value = its.it_interval;
	timerfd_settime(ch->timerfd, 0, &its, NULL);
}

/* True when we may sleep on our doorbell: the other end rings it. */
static bool doorbell_mode(const struct ivshmem_channel *ch)
{
	return ch->wakeable && ch->remote_seen && (ch->remote_flags & SLOT_CAN_NOTIFY) &&
	       ch->state == IVSHMEM_CHANNEL_CONNECTED;
}

static void update_timer(struct ivshmem_channel *ch)
{
	long check = ch->o.dead_ms > 0 ? (long)ch->o.dead_ms * 1000000L / 4 : 250000000L;

	if (check > 250000000L)
		check = 250000000L;
	if (doorbell_mode(ch))
		set_timer(ch, check);
	else	/* Polling: 1 ms ticks, 50 ms while no peer has opened (it rings us if it can). */
		set_timer(ch, ch->state == IVSHMEM_CHANNEL_WAITING ? WAIT_MAX_NS : POLL_MAX_NS);
}

static void peer_dead(struct ivshmem_channel *ch, const char *why)
{
	if (ch->state == IVSHMEM_CHANNEL_CONNECTED || ch->state == IVSHMEM_CHANNEL_WAITING) {
		ch->state = IVSHMEM_CHANNEL_PEER_DEAD;
		ch->why_dead = why;
	}
}

/*
 * Drain server notices. A leave of our peer means it died, unless it closed
 * its end first: a closer stores CLOSED before it leaves the server, so the
 * slot, read after the notice, tells a close from a death.
 */
static void drain_peer_events(struct ivshmem_channel *ch)
{
	struct ivshmem_peer_event ev;
	int ret;

	if (ch->ctlfd < 0)
		return;
	while ((ret = ivshmem_next_peer_event(ch->r, &ev)) == 1) {
		if (ev.type != IVSHMEM_PEER_LEAVE || !ch->remote_seen || ch->remote_peer != ev.peer)
			continue;
		if (ld32(slot32(ch, 1 - ch->me, S_STATE)) == SLOT_CLOSED &&
		    ld64(slot64(ch, 1 - ch->me, S_TOKEN)) == ch->remote_token) {
			if (ch->state == IVSHMEM_CHANNEL_CONNECTED)
				ch->state = IVSHMEM_CHANNEL_PEER_CLOSED;
		} else {
			peer_dead(ch, "the server reported that its peer left");
		}
	}
	if (ret < 0) {
		/* The server went away or cannot report: heartbeats still work. */
		epoll_ctl(ch->epfd, EPOLL_CTL_DEL, ch->ctlfd, NULL);
		ch->ctlfd = -1;
	}
}

/* Re-read the other slot (each field once, validated) and update ch->state. */
static enum ivshmem_channel_state update_peer(struct ivshmem_channel *ch)
{
	int other = 1 - ch->me;
	uint32_t st;

	if (ch->state == IVSHMEM_CHANNEL_BROKEN || ch->state == IVSHMEM_CHANNEL_PEER_DEAD)
		return ch->state;
	/* Also when the region's memory went away (SIGBUS caught by lib/core: zeros now). */
	if (ch->tx.broken || ch->rx.broken || ivshmem_check_mapping(ch->r) < 0) {
		ch->state = IVSHMEM_CHANNEL_BROKEN;
		return ch->state;
	}
	drain_peer_events(ch);
	if (ch->state == IVSHMEM_CHANNEL_PEER_DEAD)
		return ch->state;
	st = ld32(slot32(ch, other, S_STATE));
	if (st == SLOT_OPEN || ((st == SLOT_CLOSED || st == SLOT_ABORTED) && !ch->remote_seen)) {
		uint64_t token = ld64(slot64(ch, other, S_TOKEN));

		if (!ch->remote_seen) {
			ch->remote_peer = ld32(slot32(ch, other, S_PEER));
			ch->remote_vector = ld32(slot32(ch, other, S_VECTOR));
			ch->remote_flags = ld32(slot32(ch, other, S_FLAGS));
			ch->remote_hb_ms = ld32(slot32(ch, other, S_HB_MS));
			ch->remote_token = token;
			ch->remote_pid = ld32(slot32(ch, other, S_PID));
			ch->remote_host = ld64(slot64(ch, other, S_HOST));
			ch->remote_hb = ld64(slot64(ch, other, S_HEARTBEAT));
			ch->remote_hb_change = now_ns();
			/* Nonsense doorbell targets are not rung (ivshmem IDs are 16-bit). */
			if (ch->remote_peer > 0xffff || ch->remote_vector > 0xffff)
				ch->remote_flags &= ~SLOT_WAKEABLE;
			ch->remote_seen = true;
			if (ch->state == IVSHMEM_CHANNEL_WAITING)
				ch->state = IVSHMEM_CHANNEL_CONNECTED;
		} else if (token != ch->remote_token) {
			/* Someone else took the other slot while we were connected: not our peer. */
			peer_dead(ch, "another endpoint took over its slot");
		}
	}
	if (st == SLOT_CLOSED) {
		if (ch->state == IVSHMEM_CHANNEL_CONNECTED || ch->state == IVSHMEM_CHANNEL_WAITING)
			ch->state = IVSHMEM_CHANNEL_PEER_CLOSED;
	} else if (st == SLOT_ABORTED) {
		peer_dead(ch, "it reset the connection");
	} else if (st == SLOT_OPEN && ch->state == IVSHMEM_CHANNEL_CONNECTED) {
		uint64_t hb = ld64(slot64(ch, other, S_HEARTBEAT));
		int64_t now = now_ns();

		/*
		 * Time we did not spend watching does not count: if we were not running
		 * (stopped, descheduled, a paused VM, an idle application) for half of
		 * dead_ms, the peer may simply not have been observed. Only dead_ms of
		 * silence seen through regular checks makes it dead.
		 */
		if (ch->last_check && ch->o.dead_ms > 0 &&
		    now - ch->last_check > (int64_t)ch->o.dead_ms * 500000LL)
			ch->remote_hb_change = now;
		ch->last_check = now;
		if (hb != ch->remote_hb) {
			ch->remote_hb = hb;
			ch->remote_hb_change = now;
		} else if (ch->remote_hb_ms > 0 && ch->o.dead_ms > 0 &&
			   now - ch->remote_hb_change > (int64_t)ch->o.dead_ms * 1000000LL) {
			peer_dead(ch, "its heartbeat stopped");
		} else if (ch->remote_hb_ms > 0 &&
			   now - ch->remote_hb_change > 2 * (int64_t)ch->remote_hb_ms * 1000000LL &&
			   ch->remote_host && ch->remote_host == ch->host &&
			   owner_status(ch, ch->remote_pid, ch->remote_host, NO_PEER, 0) == OWNER_GONE) {
			/* A late heartbeat on our own kernel: ask whether its process exists. */
			peer_dead(ch, "its process exited");
		}
	} else if (st == SLOT_FREE) {
		if (ch->remote_seen)
			peer_dead(ch, "the channel was reset under us");
	} else if (st != SLOT_OPEN) {
		ch->state = IVSHMEM_CHANNEL_BROKEN;
	}
	update_timer(ch);
	return ch->state;
}

enum ivshmem_channel_state ivshmem_channel_state(struct ivshmem_channel *ch)
{
	return update_peer(ch);
}

const char *ivshmem_channel_state_name(enum ivshmem_channel_state s)
{
	switch (s) {
	case IVSHMEM_CHANNEL_WAITING:
		return "waiting";
	case IVSHMEM_CHANNEL_CONNECTED:
		return "connected";
	case IVSHMEM_CHANNEL_PEER_CLOSED:
		return "peer-closed";
	case IVSHMEM_CHANNEL_PEER_DEAD:
		return "peer-dead";
	case IVSHMEM_CHANNEL_BROKEN:
		return "broken";
	}
	return "unknown";
}

/* Ring callback: wake the other end if it sleeps on a doorbell. */
static int kick_peer(void *arg)
{
	struct ivshmem_channel *ch = arg;

	if (!ch->remote_seen || !(ch->remote_flags & SLOT_WAKEABLE))
		return 0;
	return ivshmem_notify(ch->r, (uint16_t)ch->remote_peer, (uint16_t)ch->remote_vector);
}

/* ---- heartbeat ------------------------------------------------------------------------- */

static void *heartbeat_main(void *arg)
{
	struct ivshmem_channel *ch = arg;
	uint64_t *hb = slot64(ch, ch->me, S_HEARTBEAT);

	pthread_mutex_lock(&ch->hb_lock);
	while (!ch->hb_stop) {
		struct timespec ts;

		__atomic_store_n(hb, htole64(le64toh(__atomic_load_n(hb, __ATOMIC_RELAXED)) + 1),
				 __ATOMIC_RELEASE);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += (long)ch->o.heartbeat_ms * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&ch->hb_cond, &ch->hb_lock, &ts);
	}
	pthread_mutex_unlock(&ch->hb_lock);
	return NULL;
}

static int start_heartbeat(struct ivshmem_channel *ch)
{
	pthread_condattr_t ca;
	sigset_t all, old;
	int ret;

	if (ch->o.heartbeat_ms <= 0)
		return 0;
	pthread_mutex_init(&ch->hb_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ch->hb_cond, &ca);
	pthread_condattr_destroy(&ca);
	/*
	 * The thread inherits a full mask, so the application's handlers never run
	 * on it, except for the faults it may raise itself: a SIGBUS that arrives
	 * blocked kills the process without running the handler that turns a
	 * truncated region into ENODEV (lib/core/mapguard.c).
	 */
	sigfillset(&all);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGFPE);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&ch->hb_thread, NULL, heartbeat_main, ch);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret)
		return ivshmem_fail(ret, "cannot start the heartbeat thread: %s", strerror(ret));
	ch->hb_running = true;
	return 0;
}

static void stop_heartbeat(struct ivshmem_channel *ch)
{
	if (!ch->hb_running)
		return;
	if (inherited(ch)) {
		/* A forked child: the thread runs in the parent only, and its lock may be held. */
		ch->hb_running = false;
		return;
	}
	pthread_mutex_lock(&ch->hb_lock);
	ch->hb_stop = true;
	pthread_cond_signal(&ch->hb_cond);
	pthread_mutex_unlock(&ch->hb_lock);
	pthread_join(ch->hb_thread, NULL);
	pthread_cond_destroy(&ch->hb_cond);
	pthread_mutex_destroy(&ch->hb_lock);
	ch->hb_running = false;
}

/* ---- open ------------------------------------------------------------------------------ */

/*
 * Count the records in the ring sent from @slot that its consumer has not
 * read, and their payload bytes, through a private consumer view of the ring
 * that peeks and releases locally and never publishes (the real consumer's
 * index is not touched). The ring code validates what it reads.
 */
static int count_records(struct ivshmem_channel *ch, int slot, uint64_t *records, uint64_t *bytes)
{
	struct ivshmem_ring probe;
	uint64_t end;

	*records = *bytes = 0;
	if (ivshmem_ring_attach(&probe, ch->sec + CH_RING_CTRL(slot),
				ch->sec + CH_CTRL_SIZE + (uint64_t)slot * ch->cap, ch->cap,
				IVSHMEM_RING_CONSUMER) < 0)
		return -EBADMSG;
	end = probe.remote;	/* the producer's index when we attached */
	while ((int64_t)(end - probe.local) > 0) {
		const void *data;
		size_t len;

		probe.published = probe.local;	/* so an empty peek has nothing to publish */
		if (ivshmem_ring_peek(&probe, &data, &len) < 0)
			return -EBADMSG;
		(*records)++;
		*bytes += len;
		ivshmem_ring_release(&probe, IVSHMEM_RING_MORE);
	}
	return 0;
}

/* What a departed endpoint of @slot left in its ring for whoever takes the other slot. */
static void leftovers(struct ivshmem_channel *ch, int slot, uint64_t *records, uint64_t *bytes)
{
	if (count_records(ch, slot, records, bytes) < 0 && !*records)
		*records = 1;	/* inconsistent: let a receiver find out what is there */
}

static uint32_t own_role(const struct ivshmem_channel *ch)
{
	return (ch->o.flags & IVSHMEM_CHANNEL_SEND_ONLY ? SLOT_SEND_ONLY : 0) |
	       (ch->o.flags & IVSHMEM_CHANNEL_RECV_ONLY ? SLOT_RECV_ONLY : 0);
}

struct slot_view {
	uint32_t state, flags;
	bool alive;		/* OPEN and not known to be gone */
	bool confirmed;		/* alive, and its process or server peer was seen to exist */
	bool gone;		/* CLOSED (or garbage), or OPEN with an owner known to be gone */
};

/*
 * Read slot @i for choose_slot(). @seen/@since carry heartbeat observations
 * across retries, so a silent slot is judged dead only after dead_ms of our
 * own clock; an owner known to be gone (owner_status()) is gone at once.
 */
static void view_slot(struct ivshmem_channel *ch, int i, uint64_t seen[2], int64_t since[2],
		      int64_t now, struct slot_view *v)
{
	enum owner owner = OWNER_UNKNOWN;
	uint64_t hb = ld64(slot64(ch, i, S_HEARTBEAT));
	bool silent;

	v->state = ld32(slot32(ch, i, S_STATE));
	v->flags = ld32(slot32(ch, i, S_FLAGS));
	if (hb != seen[i] || since[i] == 0) {
		seen[i] = hb;
		since[i] = now;
	}
	silent = ld32(slot32(ch, i, S_HB_MS)) > 0 && ch->o.dead_ms > 0 &&
		 now - since[i] > (int64_t)ch->o.dead_ms * 1000000LL;
	if (v->state == SLOT_OPEN && !silent)
		owner = owner_status(ch, ld32(slot32(ch, i, S_PID)), ld64(slot64(ch, i, S_HOST)),
				     ld32(slot32(ch, i, S_PEER)), v->flags);
	v->alive = v->state == SLOT_OPEN && !silent && owner != OWNER_GONE;
	v->confirmed = v->alive && owner == OWNER_ALIVE;
	v->gone = v->state != SLOT_FREE && !v->alive;
}

/* choose_slot() results besides a slot number (not errno values). */
enum { CHOOSE_RETRY = -10000, CHOOSE_REFUSE = -10001 };

/*
 * Pick a slot under the layout lock (docs/channel.md "Opening"). Returns the
 * slot; CHOOSE_RETRY while the channel is in use and may become free;
 * CHOOSE_REFUSE when our end is taken for good (a live endpoint of our role,
 * or a departed sender's records and we only send). @why says which.
 */
static int choose_slot(struct ivshmem_channel *ch, uint64_t seen[2], int64_t since[2],
		       bool *reset, char *why, size_t whylen)
{
	uint32_t role = own_role(ch);
	struct slot_view v[2];
	int64_t now = now_ns();

	*reset = false;
	for (int i = 0; i < 2; i++)
		view_slot(ch, i, seen, since, now, &v[i]);
	if (v[0].state == SLOT_FREE && v[1].state == SLOT_FREE)
		return 0;
	for (int i = 0; i < 2; i++) {
		const struct slot_view *other = &v[1 - i];
		uint64_t records, bytes;

		if (v[i].state != SLOT_FREE)
			continue;
		if (other->alive) {
			if (!(role & other->flags & SLOT_ROLES))
				return i;	/* we are the second endpoint */
			snprintf(why, whylen, "another %s endpoint is open%s",
				 role & SLOT_SEND_ONLY ? "send-only" : "receive-only",
				 other->confirmed ? "" : " (waiting in case it is gone)");
			return other->confirmed ? CHOOSE_REFUSE : CHOOSE_RETRY;
		}
		/* The other end left: take its leftovers if any (to receive them), else start afresh. */
		leftovers(ch, 1 - i, &records, &bytes);
		if (records && ((role & SLOT_SEND_ONLY) ||
				(ch->o.flags & IVSHMEM_CHANNEL_NO_LEFTOVERS))) {
			snprintf(why, whylen, "a sender that left has %" PRIu64 " message%s (%" PRIu64
				 " bytes) waiting for a receiver", records, records == 1 ? "" : "s",
				 bytes);
			return CHOOSE_REFUSE;
		}
		if (records)
			return i;
		*reset = true;
		return 0;
	}
	if (v[0].gone && v[1].gone) {
		*reset = true;
		return 0;
	}
	snprintf(why, whylen, "in use by two endpoints (or one still holds it after its peer left)");
	return CHOOSE_RETRY;
}

static void reset_channel(struct ivshmem_channel *ch)
{
	uint64_t epoch = ld64((uint64_t *)(ch->sec + 24));

	for (int i = 0; i < 2; i++) {
		memset(ch->sec + CH_SLOT(i), 0, 128);
		st32(slot32(ch, i, S_PEER), NO_PEER);
	}
	format_rings(ch->sec, ch->cap);
	st64((uint64_t *)(ch->sec + 24), epoch + 1);
}

static void claim_slot(struct ivshmem_channel *ch)
{
	int own = ivshmem_own_id(ch->r);
	uint32_t flags = own_role(ch);

	if (ch->wakeable)
		flags |= SLOT_WAKEABLE;
	if (own >= 0 && ivshmem_vectors(ch->r) > 0)
		flags |= SLOT_CAN_NOTIFY;
	st32(slot32(ch, ch->me, S_PEER), own >= 0 ? (uint32_t)own : NO_PEER);
	st32(slot32(ch, ch->me, S_VECTOR), ch->o.vector);
	st32(slot32(ch, ch->me, S_FLAGS), flags);
	st64(slot64(ch, ch->me, S_HEARTBEAT), 1);
	st64(slot64(ch, ch->me, S_TOKEN), ch->token);
	st32(slot32(ch, ch->me, S_HB_MS), ch->o.heartbeat_ms > 0 ? (uint32_t)ch->o.heartbeat_ms : 0);
	st32(slot32(ch, ch->me, S_PID), (uint32_t)ch->owner_pid);
	st64(slot64(ch, ch->me, S_HOST), ch->host);
	/* The state last: whoever sees OPEN sees the fields above. */
	__atomic_store_n(slot32(ch, ch->me, S_STATE), htole32(SLOT_OPEN), __ATOMIC_SEQ_CST);
}

static int setup_fds(struct ivshmem_channel *ch)
{
	struct epoll_event ev = { .events = EPOLLIN };

	ch->epfd = epoll_create1(EPOLL_CLOEXEC);
	ch->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (ch->epfd < 0 || ch->timerfd < 0)
		return ivshmem_fail(errno, "epoll/timerfd: %s", strerror(errno));
	if (epoll_ctl(ch->epfd, EPOLL_CTL_ADD, ch->timerfd, &ev) < 0)
		return ivshmem_fail(errno, "epoll_ctl: %s", strerror(errno));
	if (ch->wakeable) {
		ch->evfd = ivshmem_event_fd(ch->r, ch->o.vector);
		if (ch->evfd < 0)
			return ch->evfd;
		if (epoll_ctl(ch->epfd, EPOLL_CTL_ADD, ch->evfd, &ev) < 0)
			return ivshmem_fail(errno, "epoll_ctl: %s", strerror(errno));
	}
	ch->ctlfd = ivshmem_control_fd(ch->r);
	if (ch->ctlfd >= 0 && epoll_ctl(ch->epfd, EPOLL_CTL_ADD, ch->ctlfd, &ev) < 0)
		ch->ctlfd = -1;
	if (ch->ctlfd < 0)
		ch->ctlfd = -1;
	ch->timer_ns = -1;
	update_timer(ch);
	return 0;
}

static void free_channel(struct ivshmem_channel *ch)
{
	stop_heartbeat(ch);
	if (ch->epfd >= 0)
		close(ch->epfd);
	if (ch->timerfd >= 0)
		close(ch->timerfd);
	free(ch);
}

static void apply_defaults(struct ivshmem_channel_opts *o)
{
	if (!o->ring_size)
		o->ring_size = DEFAULT_RING;
	if (!o->spin_us)
		o->spin_us = DEFAULT_SPIN_US;
	if (o->spin_us < 0)
		o->spin_us = 0;
	if (!o->heartbeat_ms)
		o->heartbeat_ms = DEFAULT_HB_MS;
	if (!o->dead_ms)
		o->dead_ms = DEFAULT_DEAD_MS;
}

/* A new channel object with its options checked and defaulted; nothing shared is touched. */
static int open_prepare(struct ivshmem_channel **out, struct ivshmem_region *r, const char *name,
			const struct ivshmem_channel_opts *opts)
{
	struct ivshmem_channel *ch;

	if (ivshmem_is_device_memory(r))
		return ivshmem_fail(ENOTSUP, "channels need cacheable memory for atomic operations; "
				    "this %s mapping is uncached device memory: load ivshmem.ko "
				    "and use /dev/ivshmemN (the driver backend)",
				    ivshmem_backend_name(ivshmem_backend_of(r)));
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return ivshmem_fail(ENOMEM, "out of memory");
	ch->epfd = ch->timerfd = ch->evfd = ch->ctlfd = -1;
	if (opts)
		ch->o = *opts;
	apply_defaults(&ch->o);
	ch->r = r;
	ch->state = IVSHMEM_CHANNEL_WAITING;
	ch->token = random_token();
	pthread_once(&fork_once, watch_forks);
	ch->fork_gen = __atomic_load_n(&fork_generation, __ATOMIC_RELAXED);
	ch->owner_pid = getpid();
	ch->host = host_id();
	snprintf(ch->name, sizeof(ch->name), "%s", name);
	*out = ch;
	if ((ch->o.flags & IVSHMEM_CHANNEL_CREATE) &&
	    (ch->o.ring_size < CH_MIN_CAP || ch->o.ring_size > CH_MAX_CAP ||
	     (ch->o.ring_size & (ch->o.ring_size - 1))))
		return ivshmem_fail(EINVAL, "ring size %" PRIu64 ": a power of two from 4 KiB "
				    "to 2 GiB", ch->o.ring_size);
	if ((ch->o.flags & IVSHMEM_CHANNEL_SEND_ONLY) && (ch->o.flags & IVSHMEM_CHANNEL_RECV_ONLY))
		return ivshmem_fail(EINVAL, "an endpoint cannot be both send-only and receive-only");
	ch->wakeable = ivshmem_own_id(r) >= 0 && ch->o.vector < ivshmem_vectors(r);
	return 0;
}

/*
 * One try under the layout lock: find (or create) the section, pick a slot
 * and claim it. Returns the slot, CHOOSE_RETRY/CHOOSE_REFUSE (@why says why),
 * or a negative errno.
 */
static int open_attempt(struct ivshmem_channel *ch, uint64_t seen[2], int64_t since[2], char *why,
			size_t whylen)
{
	struct ivshmem_section s;
	uint32_t token;
	bool reset;
	int ret, slot;

	ret = ivshmem_layout_lock(ch->r, &token);
	if (ret < 0)
		return ret;
	ret = ivshmem_layout_find(ch->r, ch->name, &s);
	if (ret == -ENOENT && (ch->o.flags & IVSHMEM_CHANNEL_CREATE)) {
		uint64_t cap = ch->o.ring_size;

		ret = ivshmem_layout_add_locked(ch->r, ch->name, IVSHMEM_SECTION_CHANNEL,
						CH_CTRL_SIZE + 2 * cap, init_section, &cap, &s);
	} else if (ret == -ENOENT) {
		ret = ivshmem_fail(ENOENT, "no channel '%s' in the region (create it with "
				   "'ivshmem format --channel %s' or the CREATE flag)",
				   ch->name, ch->name);
	}
	if (ret == 0) {
		ch->sec = (uint8_t *)ivshmem_base(ch->r) + s.offset;
		ret = check_section(ch, &s);
	}
	slot = ret < 0 ? ret : choose_slot(ch, seen, since, &reset, why, whylen);
	if (slot >= 0) {
		if (reset)
			reset_channel(ch);
		ch->me = slot;
		claim_slot(ch);
	}
	ivshmem_layout_unlock(ch->r, token);
	return slot;
}

/* Pause @ms between tries; -EINTR as soon as the cancel fd is readable. */
static int open_pause(struct ivshmem_channel *ch, int ms)
{
	struct pollfd pfd = { .fd = ch->o.cancel_fd, .events = POLLIN };

	if (ch->o.cancel_fd <= 0) {
		usleep((useconds_t)ms * 1000);
		return 0;
	}
	if (poll(&pfd, 1, ms) > 0)
		return ivshmem_fail(EINTR, "channel '%s': interrupted while waiting to open",
				    ch->name);
	return 0;
}

/* After the claim: rings, wake-up sources, heartbeat; then wake a peer that waits for us. */
static int open_finish(struct ivshmem_channel *ch)
{
	int ret;

	ivshmem_ring_attach(&ch->tx, ch->sec + CH_RING_CTRL(ch->me),
			    ch->sec + CH_CTRL_SIZE + (uint64_t)ch->me * ch->cap, ch->cap,
			    IVSHMEM_RING_PRODUCER);
	ret = ivshmem_ring_attach(&ch->rx, ch->sec + CH_RING_CTRL(1 - ch->me),
				  ch->sec + CH_CTRL_SIZE + (uint64_t)(1 - ch->me) * ch->cap, ch->cap,
				  IVSHMEM_RING_CONSUMER);
	if (ret < 0 || ch->tx.broken)
		return ivshmem_fail(EBADMSG, "channel '%s': corrupt ring indices", ch->name);
	ch->tx.kick = ch->rx.kick = kick_peer;
	ch->tx.kick_arg = ch->rx.kick_arg = ch;
	ret = setup_fds(ch);
	if (ret < 0)
		return ret;
	ret = start_heartbeat(ch);
	if (ret < 0)
		return ret;
	/* A peer waiting for us polls slowly (nobody was there): ring it if it sleeps on doorbells. */
	if (update_peer(ch) == IVSHMEM_CHANNEL_CONNECTED)
		kick_peer(ch);
	return 0;
}

int ivshmem_channel_open(struct ivshmem_channel **out, struct ivshmem_region *r, const char *name,
			 const struct ivshmem_channel_opts *opts)
{
	struct ivshmem_channel *ch = NULL;
	uint64_t seen[2] = { 0, 0 };
	int64_t since[2] = { 0, 0 }, deadline;
	char why[160] = "";
	int ret;

	*out = NULL;
	ret = open_prepare(&ch, r, name, opts);
	if (ret < 0)
		goto fail;
	deadline = now_ns() + (int64_t)(ch->o.open_timeout_ms > 0 ? ch->o.open_timeout_ms : 0) *
			      1000000LL;
	for (;;) {
		ret = open_attempt(ch, seen, since, why, sizeof(why));
		if (ret >= 0)
			break;
		if (ret == CHOOSE_REFUSE || (ret == CHOOSE_RETRY && now_ns() >= deadline)) {
			ret = ivshmem_fail(EBUSY, "channel '%s' is taken: %s; channels are "
					   "point-to-point (nothing buffered was touched)", name, why);
			goto fail;
		}
		if (ret != CHOOSE_RETRY)
			goto fail;
		ret = open_pause(ch, 10);
		if (ret < 0)
			goto fail;
	}
	ret = open_finish(ch);
	if (ret < 0) {
		st32(slot32(ch, ch->me, S_STATE), SLOT_CLOSED);
		goto fail;
	}
	*out = ch;
	return 0;

fail:
	if (ch)
		free_channel(ch);
	return ret;
}

/* ---- waiting ---------------------------------------------------------------------------- */

/*
 * One non-blocking take empties a counter. Never read until read() fails: the
 * eventfd's O_NONBLOCK is shared with every peer, which may clear it.
 */
static void drain_fd(int fd)
{
	uint64_t v;

	if (fd >= 0)
		ivshmem_evfd_take(fd, &v);
}

/* Consume pending wake events so the pollable fd goes quiet. */
static void drain_events(struct ivshmem_channel *ch)
{
	drain_fd(ch->evfd);
	drain_fd(ch->timerfd);
}

/*
 * Sleep after arming, until a doorbell, a peer event, the cancel fd, the next
 * liveness check (doorbell mode) or back-off step (polling), or @deadline (-1:
 * none). Polling backs off to 1 ms, or to 50 ms while no peer has opened; our
 * doorbell, if we have one, is watched either way, so an arriving peer's ring
 * ends the sleep at once. Returns 0, or -EINTR when the cancel fd is readable.
 */
static int sleep_armed(struct ivshmem_channel *ch, int64_t deadline, int64_t *backoff)
{
	bool doorbells = doorbell_mode(ch);
	int64_t now = now_ns(), ns;
	struct pollfd pfd[3];
	struct timespec ts;
	int n = 0, ev = -1, cancel = -1;

	ch->sleeps++;
	if (doorbells) {
		/* Wake up now and then to check heartbeats even without a doorbell. */
		ns = ch->timer_ns > 0 ? ch->timer_ns : 100000000LL;
	} else {
		int64_t max = ch->state == IVSHMEM_CHANNEL_WAITING ? WAIT_MAX_NS : POLL_MAX_NS;

		ns = *backoff;
		*backoff = *backoff * 2 > max ? max : *backoff * 2;
	}
	if (deadline >= 0 && deadline - now < ns)
		ns = deadline - now > 0 ? deadline - now : 0;
	if (ch->evfd >= 0) {
		ev = n;
		pfd[n++] = (struct pollfd){ .fd = ch->evfd, .events = POLLIN };
	}
	if (ch->ctlfd >= 0)
		pfd[n++] = (struct pollfd){ .fd = ch->ctlfd, .events = POLLIN };
	if (ch->o.cancel_fd > 0) {
		cancel = n;
		pfd[n++] = (struct pollfd){ .fd = ch->o.cancel_fd, .events = POLLIN };
	}
	ts.tv_sec = ns / 1000000000LL;
	ts.tv_nsec = ns % 1000000000LL;
	if (ppoll(pfd, (nfds_t)n, &ts, NULL) <= 0)
		return 0;
	if (cancel >= 0 && pfd[cancel].revents)
		return ivshmem_fail(EINTR, "channel '%s': interrupted", ch->name);
	if (ev >= 0 && (pfd[ev].revents & POLLIN)) {
		/* Also while waiting for a peer: its arrival rings us, and that is a doorbell. */
		ch->doorbell_wakeups++;
		drain_fd(ch->evfd);
	}
	return 0;
}

static int64_t deadline_of(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : now_ns() + (int64_t)timeout_ms * 1000000LL;
}

static int state_error(struct ivshmem_channel *ch, bool sending)
{
	/* A truncated file reads as zeros: a vanished slot is then no reset by the peer. */
	if ((ch->state == IVSHMEM_CHANNEL_PEER_DEAD || ch->state == IVSHMEM_CHANNEL_BROKEN) &&
	    ivshmem_check_mapping(ch->r) < 0)
		return ivshmem_fail(ENODEV, "channel '%s': the shared memory went away under us "
				    "(its file was truncated, or the device removed)", ch->name);
	switch (ch->state) {
	case IVSHMEM_CHANNEL_PEER_CLOSED:
		return ivshmem_fail(EPIPE, "channel '%s': the peer closed it%s", ch->name,
				    sending ? "" : " and everything it sent was received");
	case IVSHMEM_CHANNEL_PEER_DEAD:
		return ivshmem_fail(ECONNRESET, "channel '%s': the peer is gone: %s (heartbeat "
				    "timeout %d ms)", ch->name, ch->why_dead ? ch->why_dead : "?",
				    ch->o.dead_ms);
	case IVSHMEM_CHANNEL_BROKEN:
		return ivshmem_fail(EBADMSG, "channel '%s': the peer corrupted the shared rings",
				    ch->name);
	default:
		return 0;
	}
}

/* Spin for spin_us waiting for @ready; true if it became ready. */
static bool spin_until(struct ivshmem_channel *ch, bool (*ready)(struct ivshmem_channel *, size_t),
		       size_t arg)
{
	int64_t end;

	if (ch->o.spin_us <= 0)
		return false;
	end = now_ns() + (int64_t)ch->o.spin_us * 1000;
	do {
		for (int i = 0; i < 64; i++) {
			if (ready(ch, arg))
				return true;
			ivshmem_cpu_relax();
		}
	} while (now_ns() < end);
	return false;
}

static bool rx_ready(struct ivshmem_channel *ch, size_t unused)
{
	(void)unused;
	return ivshmem_ring_readable(&ch->rx);
}

static bool tx_ready(struct ivshmem_channel *ch, size_t len)
{
	return ivshmem_ring_writable(&ch->tx, len);
}

int ivshmem_channel_send(struct ivshmem_channel *ch, const void *buf, size_t len, int timeout_ms)
{
	int64_t deadline = -2, backoff = POLL_MIN_NS;
	bool spun = false;

	if (inherited(ch))
		return inherited_error(ch);
	if (len > ivshmem_ring_max_record(&ch->tx))
		return ivshmem_fail(EMSGSIZE, "message of %zu bytes exceeds channel '%s' limit of "
				    "%zu", len, ch->name, ivshmem_ring_max_record(&ch->tx));
	for (;;) {
		int ret;

		/* A closed or dead peer will never read: fail before writing. */
		if (ch->state != IVSHMEM_CHANNEL_CONNECTED && ch->state != IVSHMEM_CHANNEL_WAITING)
			return state_error(ch, true);
		ret = ivshmem_ring_send(&ch->tx, buf, len, 0);
		if (ret == 0 && ivshmem_check_mapping(ch->r) < 0) {
			update_peer(ch);	/* what we wrote went nowhere */
			return state_error(ch, true);
		}
		if (ret == 0) {
			ch->sent++;
			return 0;
		}
		if (ret != -EAGAIN) {
			update_peer(ch);
			return state_error(ch, true) ?: ivshmem_fail(-ret, "channel '%s': send: %s",
								      ch->name, strerror(-ret));
		}
		if (deadline == -2)
			deadline = deadline_of(timeout_ms);
		update_peer(ch);
		if (ch->state != IVSHMEM_CHANNEL_CONNECTED && ch->state != IVSHMEM_CHANNEL_WAITING)
			return state_error(ch, true);
		/* Spin once per call: spinning after every sleep would burn the CPU we sleep to save. */
		if (!spun) {
			spun = true;
			if (spin_until(ch, tx_ready, len))
				continue;
		}
		if (timeout_ms == 0 || (deadline >= 0 && now_ns() >= deadline)) {
			drain_events(ch);
			ret = ivshmem_ring_arm(&ch->tx, len);
			if (ret == 1)
				continue;
			if (ret < 0)
				continue;	/* broken: reported on the next pass */
			return timeout_ms == 0 ? -EAGAIN
					       : ivshmem_fail(ETIMEDOUT, "channel '%s': send timed out "
							      "(the peer does not read)", ch->name);
		}
		ret = ivshmem_ring_arm(&ch->tx, len);
		if (ret == 0) {
			ret = sleep_armed(ch, deadline, &backoff);
			ivshmem_ring_disarm(&ch->tx);
			if (ret < 0)
				return ret;
		}
	}
}

ssize_t ivshmem_channel_recv(struct ivshmem_channel *ch, void *buf, size_t len, int timeout_ms)
{
	int64_t deadline = -2, backoff = POLL_MIN_NS;
	bool spun = false;

	if (inherited(ch))
		return inherited_error(ch);
	for (;;) {
		ssize_t n = ivshmem_ring_recv(&ch->rx, buf, len, 0);
		int ret;

		if (n >= 0 && ivshmem_check_mapping(ch->r) < 0) {
			update_peer(ch);	/* the record was read from zero pages */
			return state_error(ch, false);
		}
		if (n >= 0) {
			ch->received++;
			return n;
		}
		if (n == -EMSGSIZE)
			return ivshmem_fail(EMSGSIZE, "channel '%s': the next message is larger than "
					    "the %zu-byte buffer", ch->name, len);
		if (n != -EAGAIN) {
			update_peer(ch);
			return state_error(ch, false) ?: ivshmem_fail(-(int)n, "channel '%s': %s",
								      ch->name, strerror(-(int)n));
		}
		if (deadline == -2)
			deadline = deadline_of(timeout_ms);
		/* Empty. Anything from a peer that left was published before its slot changed. */
		if (update_peer(ch) != IVSHMEM_CHANNEL_CONNECTED &&
		    ch->state != IVSHMEM_CHANNEL_WAITING) {
			if (ivshmem_ring_readable(&ch->rx))
				continue;
			return state_error(ch, false);
		}
		if (!spun) {
			spun = true;
			if (spin_until(ch, rx_ready, 0))
				continue;
		}
		if (timeout_ms == 0 || (deadline >= 0 && now_ns() >= deadline)) {
			/* Going back to the caller's poll loop: arm so the producer rings us. */
			drain_events(ch);
			ret = ivshmem_ring_arm(&ch->rx, 0);
			if (ret != 0)
				continue;
			return timeout_ms == 0 ? -EAGAIN
					       : ivshmem_fail(ETIMEDOUT, "channel '%s': nothing "
							      "received in %d ms", ch->name,
							      timeout_ms);
		}
		ret = ivshmem_ring_arm(&ch->rx, 0);
		if (ret == 0) {
			ret = sleep_armed(ch, deadline, &backoff);
			ivshmem_ring_disarm(&ch->rx);
			if (ret < 0)
				return ret;
		}
	}
}

int ivshmem_channel_fd(struct ivshmem_channel *ch)
{
	return ch->epfd;
}

size_t ivshmem_channel_max_msg(const struct ivshmem_channel *ch)
{
	return ivshmem_ring_max_record(&ch->tx);
}

void ivshmem_channel_stats(const struct ivshmem_channel *ch, struct ivshmem_channel_stats *st)
{
	st->sent = ch->sent;
	st->received = ch->received;
	st->doorbells = ch->tx.kicks + ch->rx.kicks;
	st->sleeps = ch->sleeps;
	st->doorbell_wakeups = ch->doorbell_wakeups;
	st->doorbell_mode = doorbell_mode(ch);
}

struct ivshmem_ring *ivshmem_channel_tx(struct ivshmem_channel *ch)
{
	return &ch->tx;
}

struct ivshmem_ring *ivshmem_channel_rx(struct ivshmem_channel *ch)
{
	return &ch->rx;
}

int ivshmem_channel_outq(struct ivshmem_channel *ch, uint64_t *records, uint64_t *bytes)
{
	ivshmem_ring_publish(&ch->tx);
	if (count_records(ch, ch->me, records, bytes) < 0)
		return ivshmem_fail(EBADMSG, "channel '%s': our records were overwritten", ch->name);
	return 0;
}

/* The -ETIMEDOUT of flush, counting messages and their payload, not ring bytes. */
static int unread_error(struct ivshmem_channel *ch)
{
	uint64_t records, bytes;

	if (ivshmem_channel_outq(ch, &records, &bytes) < 0)
		return ivshmem_fail(ETIMEDOUT, "channel '%s': the peer has not read everything",
				    ch->name);
	return ivshmem_fail(ETIMEDOUT, "channel '%s': the peer has not read %" PRIu64 " message%s "
			    "(%" PRIu64 " bytes) yet", ch->name, records, records == 1 ? "" : "s",
			    bytes);
}

int ivshmem_channel_flush(struct ivshmem_channel *ch, int timeout_ms)
{
	int64_t deadline = deadline_of(timeout_ms), backoff = POLL_MIN_NS;
	int ret;

	if (inherited(ch))
		return inherited_error(ch);
	ivshmem_ring_publish(&ch->tx);
	ivshmem_ring_publish(&ch->rx);
	/* Until the peer read everything, it left, or time is up. */
	for (;;) {
		int64_t used = ivshmem_ring_used(&ch->tx);

		if (used == 0)
			return 0;
		if (used < 0 || (update_peer(ch) != IVSHMEM_CHANNEL_CONNECTED &&
				 ch->state != IVSHMEM_CHANNEL_WAITING))
			return state_error(ch, true) ?: ivshmem_fail(EBADMSG, "channel '%s': corrupt "
								     "ring", ch->name);
		if (deadline >= 0 && now_ns() >= deadline)
			return unread_error(ch);
		/* The consumer kicks an armed producer on release; arm for a maximal record. */
		if (ivshmem_ring_arm(&ch->tx, ivshmem_ring_max_record(&ch->tx)) == 0) {
			ret = sleep_armed(ch, deadline, &backoff);
			ivshmem_ring_disarm(&ch->tx);
		} else {
			/* Room for a maximal record already: nothing would kick us, poll. */
			int64_t step = now_ns() + 1000000;

			ret = sleep_armed(ch, deadline >= 0 && deadline < step ? deadline : step,
					  &backoff);
		}
		if (ret < 0)
			return ret;
	}
}

int ivshmem_channel_close(struct ivshmem_channel *ch, int linger_ms)
{
	int ret;

	if (!ch)
		return 0;
	if (inherited(ch)) {
		/* A forked child's copy: the end, its slot and its heartbeat are the parent's. */
		free_channel(ch);
		return 0;
	}
	ret = ivshmem_channel_flush(ch, linger_ms);
	/* A peer that left is not an error of close: what it read, it read. */
	if (ret == -EPIPE || ret == -ECONNRESET)
		ret = 0;
	stop_heartbeat(ch);
	/* After every record we published: a peer that sees CLOSED has seen them all. */
	__atomic_store_n(slot32(ch, ch->me, S_STATE), htole32(SLOT_CLOSED), __ATOMIC_SEQ_CST);
	/* If the other end sleeps waiting for data, wake it so it notices. */
	if (ch->remote_seen) {
		ivshmem_ring_disarm(&ch->tx);
		kick_peer(ch);
	}
	free_channel(ch);
	return ret;
}

int ivshmem_channel_abort(struct ivshmem_channel *ch)
{
	if (!ch)
		return 0;
	if (inherited(ch)) {
		free_channel(ch);
		return 0;
	}
	ivshmem_ring_publish(&ch->tx);
	ivshmem_ring_publish(&ch->rx);
	stop_heartbeat(ch);
	/* After every record we published: the peer reads them, then ECONNRESET. */
	__atomic_store_n(slot32(ch, ch->me, S_STATE), htole32(SLOT_ABORTED), __ATOMIC_SEQ_CST);
	if (ch->remote_seen) {
		ivshmem_ring_disarm(&ch->tx);
		kick_peer(ch);
	}
	free_channel(ch);
	return 0;
}
