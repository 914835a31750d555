// SPDX-License-Identifier: GPL-2.0
/*
 * The send-only channel endpoint of ivshmem_hoststat.ko: docs/channel.md's
 * opening (under the layout lock), slot choice, reset, heartbeat, liveness
 * and close, and docs/ring.md's producer (format 2), in kernel C.
 *
 * Memory ordering, mapped from lib/msg (C11 atomics) to the kernel's:
 *  - a record: payload (memcpy), invalid marker at the next position
 *    (WRITE_ONCE), header word (smp_store_release): the release orders the
 *    payload and the marker before the header the reader acquires;
 *  - publishing: prod (smp_store_release), then smp_mb(), the full StoreLoad
 *    fence of the wake-up protocol (the reader stores cons_armed, fences and
 *    re-checks the header: one of the two sides sees the other's store),
 *    then cons_armed: READ_ONCE first, xchg() to 0 only when set;
 *  - a slot: every field, then state (smp_store_release) and smp_mb(), the
 *    library's seq_cst store.
 * Everything in the section is written by an untrusted peer: each field is
 * loaded once per decision and validated before use.
 */
#include <linux/bits.h>
#include <linux/ivshmem_host.h>
#include <linux/log2.h>
#include <linux/random.h>
#include <linux/string.h>
#include <linux/ktime.h>

#include "hoststat_channel.h"
#include "hoststat_proto.h"

#define CH_MAGIC	"IVSHCHAN"
#define CH_VERSION	2
#define CH_CTRL_SIZE	4096
#define CH_MIN_CAP	4096ULL
#define CH_MAX_CAP	BIT_ULL(31)
#define CH_SLOT(i)	(128 + 128 * (i))
#define CH_RING(i)	(512 + 512 * (i))
#define CH_EPOCH	24

enum {
	S_STATE = 0, S_PEER = 4, S_VECTOR = 8, S_FLAGS = 12, S_HEARTBEAT = 16, S_TOKEN = 24,
	S_HB_MS = 32, S_PID = 36, S_HOST = 40,
};

enum { SLOT_FREE = 0, SLOT_OPEN = 1, SLOT_CLOSED = 2 };
#define SLOT_WAKEABLE	BIT(0)
#define SLOT_CAN_NOTIFY	BIT(1)
#define SLOT_SEND_ONLY	BIT(2)
#define SLOT_RECV_ONLY	BIT(3)
#define NO_PEER		0xffffffffu

enum { R_PROD = 0, R_CONS = 128, R_CONS_ARMED = 256 };
#define HDR_SIZE	8ULL
#define INFO_PAD	BIT(31)
#define INFO_LEN	(INFO_PAD - 1)

#define LOCK_STALE_NS	(2000ULL * NSEC_PER_MSEC)

static u8 *slot(const struct hs_channel *ch, int i, unsigned int field)
{
	return ch->sec + CH_SLOT(i) + field;
}

/* ---- ring format 2, producer ---------------------------------------------------- */

static u32 tag_of(u64 pos)
{
	return ~(u32)(pos >> 3);
}

static u64 hdr_word(u32 info, u32 tag)
{
	return (u64)info | (u64)tag << 32;
}

static u8 *hdr_at(const struct hs_channel *ch, u64 pos)
{
	return ch->data + (pos & (ch->cap - 1));
}

static void put_marker(struct hs_channel *ch, u64 pos)
{
	hs_st64(hdr_at(ch, pos), hdr_word(0, ~tag_of(pos)));
}

static u64 rec_total(u64 len)
{
	return ALIGN(HDR_SIZE + len, 8);
}

size_t hs_channel_max_record(const struct hs_channel *ch)
{
	return ch->cap / 2 - HDR_SIZE;
}

/* Attach as the producer of our slot's ring: indices validated, a marker at prod. */
static int ring_attach(struct hs_channel *ch)
{
	u64 prod, cons;

	ch->ctrl = ch->sec + CH_RING(ch->me);
	ch->data = ch->sec + CH_CTRL_SIZE + ch->me * ch->cap;
	prod = hs_acq64(ch->ctrl + R_PROD);
	cons = hs_acq64(ch->ctrl + R_CONS);
	if (prod - cons > ch->cap - HDR_SIZE || (prod | cons) % 8)
		return -EBADMSG;
	ch->local = prod;
	ch->remote = cons;
	put_marker(ch, prod);
	smp_wmb();	/* the marker before any header we release later */
	return 0;
}

/* Re-read cons: it only moves forward, up to what we published, in 8-byte steps. */
static int ring_refresh(struct hs_channel *ch)
{
	u64 c = hs_acq64(ch->ctrl + R_CONS);

	if (c - ch->remote > ch->local - ch->remote || c % 8)
		return -EBADMSG;
	ch->remote = c;
	return 0;
}

static u64 space_needed(const struct hs_channel *ch, size_t len)
{
	u64 contig = ch->cap - (ch->local & (ch->cap - 1));
	u64 total = rec_total(len);

	return (total <= contig ? total : contig + total) + HDR_SIZE;
}

static bool has_space(const struct hs_channel *ch, size_t len)
{
	return ch->cap - (ch->local - ch->remote) >= space_needed(ch, len);
}

/* Wake the reader if it armed and sleeps on a doorbell. */
static void kick_reader(struct hs_channel *ch)
{
	int ret;

	if (!ch->remote_seen || !(ch->remote_flags & SLOT_WAKEABLE))
		return;
	ret = ivshmem_host_ring(ch->region, (u16)ch->remote_peer, (u16)ch->remote_vector);
	if (ret)
		ch->kick_errors++;
	else
		ch->kicks++;
}

static void ring_publish(struct hs_channel *ch)
{
	__le32 *armed = (__le32 *)(ch->ctrl + R_CONS_ARMED);

	hs_rel64(ch->ctrl + R_PROD, ch->local);
	smp_mb();	/* StoreLoad: prod and the header before cons_armed (docs/ring.md) */
	/* Load first: a reader that is awake must not have its line written. */
	if (!READ_ONCE(*armed) || !xchg(armed, 0))
		return;
	kick_reader(ch);
}

static int ring_send(struct hs_channel *ch, const void *buf, size_t len)
{
	u64 off, contig, pos;

	if (len > hs_channel_max_record(ch))
		return -EMSGSIZE;
	if (!has_space(ch, len)) {
		if (ring_refresh(ch))
			return -EBADMSG;
		if (!has_space(ch, len))
			return -EAGAIN;
	}
	off = ch->local & (ch->cap - 1);
	contig = ch->cap - off;
	if (rec_total(len) > contig) {
		/* The next lap's marker first, then the pad leading to it. */
		put_marker(ch, ch->local + contig);
		hs_rel64(hdr_at(ch, ch->local),
			 hdr_word((u32)(contig - HDR_SIZE) | INFO_PAD, tag_of(ch->local)));
		ch->local += contig;
		off = 0;
	}
	memcpy(ch->data + off + HDR_SIZE, buf, len);
	pos = ch->local;
	ch->local += rec_total(len);
	put_marker(ch, ch->local);
	hs_rel64(hdr_at(ch, pos), hdr_word((u32)len, tag_of(pos)));
	ring_publish(ch);
	return 0;
}

/* ---- the section ----------------------------------------------------------------- */

int hs_channel_init(struct hs_channel *ch, struct ivshmem_host_region *region, void *base,
		    u64 offset, u64 size, u32 own_id, unsigned int hb_ms)
{
	u8 head[24];
	u64 cap;

	memset(ch, 0, sizeof(*ch));
	ch->region = region;
	ch->base = base;
	ch->sec = (u8 *)base + offset;
	ch->own_id = own_id;
	ch->hb_ms = hb_ms;
	ch->dead_ms = 3000;
	ch->state = HS_CHAN_CLOSED;
	memcpy(head, ch->sec, sizeof(head));	/* one snapshot; cap is never re-read */
	cap = hs_get64(head + 16);
	if (memcmp(head, CH_MAGIC, 8)) {
		ch->why = "bad channel magic (not initialised or corrupt)";
		return -EBADMSG;
	}
	if (hs_get32(head + 8) != CH_VERSION) {
		ch->why = "channel version is not 2 (re-create it with 'ivshmem format')";
		return -EPROTO;
	}
	if (cap < CH_MIN_CAP || cap > CH_MAX_CAP || !is_power_of_2(cap) ||
	    size < CH_CTRL_SIZE || (size - CH_CTRL_SIZE) / 2 < cap) {
		ch->why = "ring size does not fit the channel section";
		return -EBADMSG;
	}
	ch->cap = cap;
	return 0;
}

/* ---- opening ------------------------------------------------------------------- */

/* Take the layout lock without waiting; one holder for 2 s is presumed dead. */
static bool layout_trylock(struct hs_channel *ch, u32 *token)
{
	u32 *lock = (u32 *)(ch->base + HS_LAYOUT_LOCK);
	u64 now = ktime_get_ns();
	u32 mine, cur;

	do
		mine = get_random_u32();
	while (!mine);
	cur = cmpxchg(lock, 0, mine);
	if (cur && cur == ch->lock_seen && now - ch->lock_since_ns > LOCK_STALE_NS)
		cur = cmpxchg(lock, cur, mine) == cur ? 0 : cur;
	if (cur) {
		if (cur != ch->lock_seen) {
			ch->lock_seen = cur;
			ch->lock_since_ns = now;
		}
		return false;
	}
	*token = mine;
	return true;
}

static void layout_unlock(struct hs_channel *ch, u32 token)
{
	/* Only our own hold: a taken-over lock is someone else's now. */
	cmpxchg((u32 *)(ch->base + HS_LAYOUT_LOCK), token, 0);
}

struct slot_view {
	u32 state, flags;
	bool alive, gone;
};

/* Slot @i for the choice; heartbeats are compared across tries on our clock. */
static void view_slot(struct hs_channel *ch, int i, u64 now, struct slot_view *v)
{
	u64 hb = hs_ld64(slot(ch, i, S_HEARTBEAT));
	bool silent;

	v->state = hs_acq32(slot(ch, i, S_STATE));
	v->flags = hs_ld32(slot(ch, i, S_FLAGS));
	if (hb != ch->seen_hb[i] || !ch->seen_since_ns[i]) {
		ch->seen_hb[i] = hb;
		ch->seen_since_ns[i] = now;
	}
	silent = hs_ld32(slot(ch, i, S_HB_MS)) && now - ch->seen_since_ns[i] >
		 (u64)ch->dead_ms * NSEC_PER_MSEC;
	/* A user-space owner's pid is not in a namespace we can judge: heartbeat only. */
	v->alive = v->state == SLOT_OPEN && !silent;
	v->gone = v->state != SLOT_FREE && !v->alive;
}

/* Would a consumer of slot @i's ring find a record now (a pad, then a record)? */
static bool records_left(struct hs_channel *ch, int i)
{
	const u8 *ctrl = ch->sec + CH_RING(i);
	const u8 *data = ch->sec + CH_CTRL_SIZE + i * ch->cap;
	u64 pos = hs_acq64(ctrl + R_CONS), hdr;
	int pass;

	if (pos % 8)
		return true;	/* inconsistent: leave it to a receiver */
	for (pass = 0; pass < 2; pass++) {
		hdr = hs_acq64(data + (pos & (ch->cap - 1)));
		if ((u32)(hdr >> 32) != tag_of(pos))
			return false;
		if (!(hdr & INFO_PAD))
			return true;
		pos += ch->cap - (pos & (ch->cap - 1));
	}
	return true;
}

enum { CHOOSE_RETRY = -1 };

/* docs/channel.md "Opening", for a SEND_ONLY opener: a slot or CHOOSE_RETRY. */
static int choose_slot(struct hs_channel *ch, bool *reset)
{
	struct slot_view v[2];
	u64 now = ktime_get_ns();
	int i;

	*reset = false;
	for (i = 0; i < 2; i++)
		view_slot(ch, i, now, &v[i]);
	if (v[0].state == SLOT_FREE && v[1].state == SLOT_FREE)
		return 0;
	for (i = 0; i < 2; i++) {
		const struct slot_view *other = &v[1 - i];

		if (v[i].state != SLOT_FREE)
			continue;
		if (other->alive) {
			if (!(other->flags & SLOT_SEND_ONLY))
				return i;	/* we are the second endpoint */
			ch->why = "another send-only endpoint is open";
			return CHOOSE_RETRY;
		}
		if (records_left(ch, 1 - i)) {
			ch->why = "a sender that left has records waiting for a receiver";
			return CHOOSE_RETRY;
		}
		*reset = true;
		return 0;
	}
	if (v[0].gone && v[1].gone) {
		*reset = true;
		return 0;
	}
	ch->why = "in use by two endpoints (or one still holds it after its peer left)";
	return CHOOSE_RETRY;
}

static void format_ring(struct hs_channel *ch, int i)
{
	memset(ch->sec + CH_RING(i), 0, 512);
	hs_st64(ch->sec + CH_CTRL_SIZE + i * ch->cap, hdr_word(0, ~tag_of(0)));
}

/* Only when no live endpoint uses the channel (choose_slot() said so). */
static void reset_channel(struct hs_channel *ch)
{
	u64 epoch = hs_acq64(ch->sec + CH_EPOCH);
	int i;

	for (i = 0; i < 2; i++) {
		memset(ch->sec + CH_SLOT(i), 0, 128);
		hs_st32(slot(ch, i, S_PEER), NO_PEER);
		format_ring(ch, i);
	}
	smp_mb();	/* the cleared slots and rings before the new epoch */
	hs_rel64(ch->sec + CH_EPOCH, epoch + 1);
}

/* Our identity in docs/channel.md's terms: no process (pid 0, host 0), send-only, rings. */
static void claim_slot(struct hs_channel *ch)
{
	int me = ch->me;

	ch->token = get_random_u64() | 1;
	ch->heartbeat = 1;
	hs_st32(slot(ch, me, S_PEER), ch->own_id);
	hs_st32(slot(ch, me, S_VECTOR), 0);
	hs_st32(slot(ch, me, S_FLAGS), SLOT_SEND_ONLY | SLOT_CAN_NOTIFY);
	hs_st64(slot(ch, me, S_HEARTBEAT), ch->heartbeat);
	hs_st64(slot(ch, me, S_TOKEN), ch->token);
	hs_st32(slot(ch, me, S_HB_MS), ch->hb_ms);
	hs_st32(slot(ch, me, S_PID), 0);
	hs_st64(slot(ch, me, S_HOST), 0);
	hs_rel32(slot(ch, me, S_STATE), SLOT_OPEN);
	smp_mb();	/* seq_cst, as the library's claim */
}

int hs_channel_try_open(struct hs_channel *ch)
{
	bool reset;
	u32 token;
	int i, ret;

	if (ch->state != HS_CHAN_CLOSED)
		return 0;
	if (!layout_trylock(ch, &token)) {
		ch->why = "the layout lock is busy";
		return -EAGAIN;
	}
	i = choose_slot(ch, &reset);
	if (i == CHOOSE_RETRY) {
		layout_unlock(ch, token);
		return -EAGAIN;
	}
	if (reset)
		reset_channel(ch);
	ch->me = i;
	ret = ring_attach(ch);
	if (ret) {
		layout_unlock(ch, token);
		ch->why = "corrupt ring indices in our slot's ring";
		return ret;
	}
	claim_slot(ch);
	layout_unlock(ch, token);
	ch->remote_seen = false;
	ch->last_check_ns = 0;
	ch->state = HS_CHAN_WAITING;
	memset(ch->seen_since_ns, 0, sizeof(ch->seen_since_ns));
	hs_channel_tick(ch);
	/* A reader already waiting polls slowly: ring it if it sleeps on doorbells. */
	if (ch->state == HS_CHAN_CONNECTED)
		kick_reader(ch);
	return 0;
}

/* ---- liveness ------------------------------------------------------------------ */

static void peer_dead(struct hs_channel *ch, const char *why)
{
	if (ch->state == HS_CHAN_CONNECTED || ch->state == HS_CHAN_WAITING) {
		ch->state = HS_CHAN_PEER_DEAD;
		ch->why = why;
	}
}

/* The first sight of the other end: its fields once, kept. */
static void snapshot_remote(struct hs_channel *ch, int other, u64 token, u64 now)
{
	ch->remote_peer = hs_ld32(slot(ch, other, S_PEER));
	ch->remote_vector = hs_ld32(slot(ch, other, S_VECTOR));
	ch->remote_flags = hs_ld32(slot(ch, other, S_FLAGS));
	ch->remote_hb_ms = hs_ld32(slot(ch, other, S_HB_MS));
	ch->remote_hb = hs_ld64(slot(ch, other, S_HEARTBEAT));
	ch->remote_token = token;
	ch->remote_hb_change_ns = now;
	/* ivshmem IDs and vectors are 16-bit: never ring nonsense. */
	if (ch->remote_peer > 0xffff || ch->remote_vector > 0xffff)
		ch->remote_flags &= ~SLOT_WAKEABLE;
	ch->remote_seen = true;
	if (ch->state == HS_CHAN_WAITING)
		ch->state = HS_CHAN_CONNECTED;
}

/* The heartbeat rule; time we did not watch (a gap over dead_ms / 2) does not count. */
static void check_heartbeat(struct hs_channel *ch, int other, u64 now)
{
	u64 hb = hs_ld64(slot(ch, other, S_HEARTBEAT));
	u64 dead = (u64)ch->dead_ms * NSEC_PER_MSEC;

	if (ch->last_check_ns && now - ch->last_check_ns > dead / 2)
		ch->remote_hb_change_ns = now;
	ch->last_check_ns = now;
	if (hb != ch->remote_hb) {
		ch->remote_hb = hb;
		ch->remote_hb_change_ns = now;
	} else if (ch->remote_hb_ms && now - ch->remote_hb_change_ns > dead) {
		peer_dead(ch, "the reader's heartbeat stopped");
	}
}

enum hs_chan_state hs_channel_tick(struct hs_channel *ch)
{
	int other = 1 - ch->me;
	u64 now = ktime_get_ns();
	u32 st;

	if (ch->state == HS_CHAN_CLOSED || ch->state == HS_CHAN_BROKEN ||
	    ch->state == HS_CHAN_PEER_DEAD || ch->state == HS_CHAN_PEER_CLOSED)
		return ch->state;
	ch->heartbeat++;
	hs_rel64(slot(ch, ch->me, S_HEARTBEAT), ch->heartbeat);
	if (ring_refresh(ch)) {
		ch->state = HS_CHAN_BROKEN;
		ch->why = "the reader corrupted the ring indices";
		return ch->state;
	}
	st = hs_acq32(slot(ch, other, S_STATE));
	if (st == SLOT_OPEN || (st == SLOT_CLOSED && !ch->remote_seen)) {
		u64 token = hs_ld64(slot(ch, other, S_TOKEN));

		if (!ch->remote_seen)
			snapshot_remote(ch, other, token, now);
		else if (token != ch->remote_token)
			peer_dead(ch, "another endpoint took over the reader's slot");
	}
	if (st == SLOT_CLOSED) {
		if (ch->state == HS_CHAN_CONNECTED || ch->state == HS_CHAN_WAITING) {
			ch->state = HS_CHAN_PEER_CLOSED;
			ch->why = "the reader closed its end";
		}
	} else if (st == SLOT_OPEN && ch->state == HS_CHAN_CONNECTED) {
		check_heartbeat(ch, other, now);
	} else if (st == SLOT_FREE) {
		if (ch->remote_seen)
			peer_dead(ch, "the channel was reset under us");
	} else if (st != SLOT_OPEN) {
		ch->state = HS_CHAN_BROKEN;
		ch->why = "the reader's slot holds garbage";
	}
	return ch->state;
}

int hs_channel_send(struct hs_channel *ch, const void *buf, size_t len)
{
	int ret;

	if (ch->state != HS_CHAN_CONNECTED)
		return -ENOTCONN;
	ret = ring_send(ch, buf, len);
	if (ret == -EBADMSG) {
		ch->state = HS_CHAN_BROKEN;
		ch->why = "the reader corrupted the ring indices";
	}
	return ret;
}

void hs_channel_close(struct hs_channel *ch)
{
	if (ch->state == HS_CHAN_CLOSED)
		return;
	/* After every record we published: a reader that sees CLOSED has them all. */
	smp_mb();
	hs_rel32(slot(ch, ch->me, S_STATE), SLOT_CLOSED);
	smp_mb();	/* seq_cst, as the library's close */
	/* A reader sleeping for data must notice. */
	if (ch->remote_seen)
		kick_reader(ch);
	ch->state = HS_CHAN_CLOSED;
}
