// SPDX-License-Identifier: MIT
/*
 * One carried channel (docs/multihost.md "Channels (sessions)", "Guarantees"):
 * our local end, its session on the peer's link, credits both ways, the
 * bounded queue of received records, and how a close, a death or a lost link
 * is passed on. A bridge reads its local end only while paired and holding
 * credit, so a session always ends towards a known remote id, after every
 * record read before it.
 */
#include "bridge.h"

#include "ivshmem/ring.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void chan_init(struct bridge *b, struct chan *s, const struct cfg_channel *cfg)
{
	(void)b;
	memset(s, 0, sizeof(*s));
	s->cfg = cfg;
}

static struct conn *up_conn(struct bridge *b, const struct chan *s)
{
	struct conn *c = b->peer_conn[s->cfg->peer];

	return c && c->state == CONN_UP && !c->dead ? c : NULL;
}

/* The session on the link is over (both sides retire their ids). */
static void forget_session(struct chan *s)
{
	s->local_id = s->remote_id = 0;
	s->credit = s->credit_max = s->rx_avail = s->credit_owed = 0;
	s->remote_max = s->our_max = 0;
	s->end_received = END_NONE;
	pending_clear(&s->pend);
}

/* Leave our local end: a close (the application reads what is there, then EPIPE) or an abort. */
static void local_leave(struct bridge *b, struct chan *s, bool abortive)
{
	uint64_t records = 0, bytes = 0;

	if (abortive) {
		ivshmem_channel_outq(s->ch, &records, &bytes);
		ivshmem_channel_abort(s->ch);
	} else {
		ivshmem_channel_outq(s->ch, &records, &bytes);
		ivshmem_channel_close(s->ch, 0);
	}
	log_msg(b, true, "channel %s: local end %s (%llu records left for the reader)", s->cfg->name,
		abortive ? "aborted" : "closed", (unsigned long long)records);
	s->left_records = records > 0;
	s->ch = NULL;
	s->reopen_at = now_ns();
	b->busy = true;
}

static void try_open(struct bridge *b, struct chan *s)
{
	struct ivshmem_channel_opts o = {
		.flags = IVSHMEM_CHANNEL_CREATE | (s->left_records ? IVSHMEM_CHANNEL_NO_LEFTOVERS : 0),
		.ring_size = s->cfg->ring,
		.spin_us = -1,		/* the bridge never spins: it sleeps in poll() */
	};
	int ret = ivshmem_channel_open(&s->ch, b->region, s->cfg->name, &o);

	if (ret == 0) {
		s->left_records = false;
		s->open_failed_logged = false;
		log_msg(b, true, "channel %s: local end open", s->cfg->name);
		b->busy = true;
		return;
	}
	s->ch = NULL;
	if (ret == -EBUSY) {
		/* The application still holds the other end of the last session: it closes first. */
		s->reopen_at = now_ns() + (int64_t)REOPEN_MS * 1000000;
		return;
	}
	if (!s->open_failed_logged)
		log_msg(b, false, "channel %s: cannot open: %s (retrying every second)", s->cfg->name,
			ivshmem_errmsg());
	s->open_failed_logged = true;
	s->reopen_at = now_ns() + 1000000000LL;
}

static void pair(struct chan *s, uint32_t id, uint32_t window, uint32_t max_record)
{
	s->remote_id = id;
	s->credit = s->credit_max = window;
	s->remote_max = max_record;
}

static void announce(struct bridge *b, struct chan *s, struct conn *c)
{
	struct frame_open o = { .window = (uint32_t)s->cfg->window };
	uint8_t payload[FRAME_OPEN_LEN];
	uint64_t max = b->cfg.max_record;

	if (ivshmem_channel_max_msg(s->ch) < max)
		max = ivshmem_channel_max_msg(s->ch);
	if ((s->cfg->window - 8) & ~7ull) {
		uint64_t fit = (s->cfg->window - 8) & ~7ull;

		max = fit < max ? fit : max;
	}
	if (max > b->max_payload)
		max = b->max_payload;
	if (!s->pend.buf && pending_init(&s->pend, s->cfg->window) < 0) {
		log_msg(b, false, "channel %s: out of memory for its %llu-byte window", s->cfg->name,
			(unsigned long long)s->cfg->window);
		return;
	}
	s->our_max = (uint32_t)max;
	o.max_record = s->our_max;
	snprintf(o.name, sizeof(o.name), "%s", s->cfg->name);
	s->local_id = c->next_id++;
	s->rx_avail = s->cfg->window;
	frame_put_open(payload, &o);
	conn_frame(c, FRAME_OPEN, s->local_id, payload, sizeof(payload));
	if (s->stash_id) {
		pair(s, s->stash_id, s->stash_window, s->stash_max);
		s->stash_id = 0;
	}
	log_msg(b, true, "channel %s: announced as id %u", s->cfg->name, s->local_id);
}

/* Our application finished (closed, died, or sent what cannot be carried): tell the remote. */
static void end_local(struct bridge *b, struct chan *s, struct conn *c, enum end_kind kind,
		      bool abortive)
{
	conn_frame(c, (enum frame_type)kind, s->remote_id, NULL, 0);
	log_msg(b, true, "channel %s: local session ended (%s)", s->cfg->name,
		frame_type_name(kind));
	local_leave(b, s, abortive);
	forget_session(s);
}

/* Put queued records into the local ring. Records for an application that left are dropped. */
static void deliver(struct bridge *b, struct chan *s)
{
	const void *data;
	uint32_t len;

	while (pending_front(&s->pend, &data, &len) == 0) {
		int ret = ivshmem_channel_send(s->ch, data, len, 0);

		if (ret == -EAGAIN)
			return;
		if (ret == 0)
			s->dlv_records++;
		s->credit_owed += pending_pop(&s->pend);
		b->busy = true;
	}
}

/* The remote ended the session: close (after every record) or abort (after what fits). */
static void finish_remote_end(struct bridge *b, struct chan *s)
{
	if (s->end_received == END_CLOSE && s->pend.records)
		return;	/* the reader has not made room yet: the records come first */
	if (s->pend.records)
		log_msg(b, false, "channel %s: reset by the remote; %llu received records did not fit "
			"in the ring and are dropped", s->cfg->name,
			(unsigned long long)s->pend.records);
	local_leave(b, s, s->end_received == END_RESET);
	forget_session(s);
}

/* Forward one record; false when nothing more can go now. */
static bool forward_one(struct bridge *b, struct chan *s, struct conn *c)
{
	const void *data;
	size_t len;
	ssize_t n;
	uint8_t *buf;
	int ret = ivshmem_ring_peek(ivshmem_channel_rx(s->ch), &data, &len);

	if (ret == 0 && len > s->remote_max) {
		log_msg(b, false, "channel %s: a record of %zu bytes is larger than the remote accepts "
			"(%u): resetting the channel", s->cfg->name, len, s->remote_max);
		end_local(b, s, c, END_RESET, true);
		return false;
	}
	if (ret == 0 && frame_data_cost((uint32_t)len) > s->credit)
		return false;	/* the remote reader is behind: the local ring fills */
	if (ret == 0) {
		buf = conn_data_begin(c, (uint32_t)len);
		if (!buf)
			return false;
		n = ivshmem_channel_recv(s->ch, buf, len, 0);
	} else {
		/* Empty (or corrupt): let the channel check its peer, arm, or report. */
		uint8_t none;

		buf = &none;
		n = ivshmem_channel_recv(s->ch, buf, 0, 0);
		if (n == 0)
			buf = conn_data_begin(c, 0);	/* an empty record arrived meanwhile */
		if (!buf)
			return false;
	}
	if (n >= 0) {
		conn_data_end(c, s->remote_id, (uint32_t)n);
		s->credit -= frame_data_cost((uint32_t)n);
		s->fwd_records++;
		b->busy = true;
		return true;
	}
	if (n == -EAGAIN)
		return false;
	if (n == -EMSGSIZE)
		return true;	/* a record arrived between the peek and the receive: again */
	if (n == -EPIPE)
		end_local(b, s, c, END_CLOSE, false);
	else
		end_local(b, s, c, END_RESET, false);
	return false;
}

void chan_service(struct bridge *b, struct chan *s)
{
	struct conn *c;
	uint64_t start;

	if (!s->ch && now_ns() >= s->reopen_at)
		try_open(b, s);
	if (!s->ch)
		return;
	c = up_conn(b, s);
	if (c && !s->local_id)
		announce(b, s, c);
	deliver(b, s);
	if (s->end_received) {
		finish_remote_end(b, s);
		return;
	}
	/* At most TX_BATCH of credit per pass: the other channels and links get their turn. */
	start = s->credit;
	while (c && s->remote_id && s->credit >= 8 && start - s->credit < TX_BATCH &&
	       forward_one(b, s, c))
		;
	if (c && s->remote_id && s->credit_owed) {
		uint8_t payload[4];

		frame_put_credit(payload, (uint32_t)s->credit_owed);
		conn_frame(c, FRAME_CREDIT, s->remote_id, payload, sizeof(payload));
		s->rx_avail += s->credit_owed;
		s->credit_owed = 0;
	}
}

bool chan_wants_poll(const struct chan *s)
{
	return s->ch && (s->pend.records || s->end_received || (s->remote_id && s->credit >= 8));
}

void chan_link_lost(struct bridge *b, struct chan *s, const char *why)
{
	s->stash_id = 0;
	if (!s->ch) {
		forget_session(s);
		return;
	}
	if (s->remote_id || s->end_received || s->pend.records) {
		deliver(b, s);
		log_msg(b, false, "channel %s: link lost (%s): resetting the local end%s", s->cfg->name,
			why, s->pend.records ? " (undelivered records dropped)" : "");
		local_leave(b, s, true);
	}
	forget_session(s);
}

void chan_shutdown(struct bridge *b, struct chan *s)
{
	struct conn *c = up_conn(b, s);
	bool paired = s->remote_id || s->end_received;

	if (!s->ch)
		return;
	if (c && s->remote_id)
		conn_frame(c, FRAME_RESET, s->remote_id, NULL, 0);
	local_leave(b, s, paired);
	forget_session(s);
}

/* ---- frames from the remote ------------------------------------------------------------ */

static struct chan *by_name(struct bridge *b, int peer, const char *name)
{
	for (int i = 0; i < b->nchans; i++)
		if (b->chans[i].cfg->peer == peer && strcmp(b->chans[i].cfg->name, name) == 0)
			return &b->chans[i];
	return NULL;
}

static struct chan *by_id(struct bridge *b, int peer, uint32_t id)
{
	for (int i = 0; i < b->nchans; i++)
		if (b->chans[i].cfg->peer == peer && b->chans[i].local_id == id)
			return &b->chans[i];
	return NULL;
}

int chan_on_open(struct bridge *b, struct conn *c, uint32_t id, const struct frame_open *o,
		 const char **err)
{
	struct chan *s = by_name(b, c->peer, o->name);

	if (!s) {
		log_msg(b, false, "link %s: the remote offers channel '%s', which is not configured "
			"for it here: ignored", b->cfg.peers[c->peer].name, o->name);
		return 0;
	}
	if (o->max_record > c->peer_max_payload) {
		*err = "max_record above the remote's own max_payload";
		return -1;
	}
	if (s->remote_id || s->stash_id) {
		*err = "a second OPEN for a channel that has a session";
		return -1;
	}
	if (s->ch && s->local_id && !s->end_received)
		pair(s, id, o->window, o->max_record);
	else {
		s->stash_id = id;	/* for our next session on this link */
		s->stash_window = o->window;
		s->stash_max = o->max_record;
	}
	return 0;
}

static int on_data(struct bridge *b, struct chan *s, const struct frame_hdr *h,
		   const uint8_t *payload, const char **err)
{
	uint64_t cost = frame_data_cost(h->len);
	int ret;

	if (h->len > s->our_max) {
		*err = "record above the maximum announced for the channel";
		return -1;
	}
	if (cost > s->rx_avail) {
		*err = "more data than the credit it was given";
		return -1;
	}
	s->rx_avail -= cost;
	if (!s->pend.records) {
		ret = ivshmem_channel_send(s->ch, payload, h->len, 0);
		if (ret != -EAGAIN) {
			/* Delivered, or the application left (then the record goes nowhere). */
			s->dlv_records += ret == 0;
			s->credit_owed += cost;
			return 0;
		}
	}
	if (pending_push(&s->pend, payload, h->len) < 0) {
		*err = "internal: the receive window overflowed";
		return -1;
	}
	(void)b;
	return 0;
}

int chan_on_frame(struct bridge *b, struct conn *c, const struct frame_hdr *h,
		  const uint8_t *payload, const char **err)
{
	struct chan *s = by_id(b, c->peer, h->channel);

	if (!s || !s->ch) {
		if (h->channel < c->next_id)
			return 0;	/* a retired session: it was in flight */
		*err = "never announced";
		return -1;
	}
	if (s->end_received) {
		*err = "frame after the session's CLOSE or RESET";
		return -1;
	}
	switch (h->type) {
	case FRAME_DATA:
		return on_data(b, s, h, payload, err);
	case FRAME_CREDIT:
		if (!s->remote_id)
			return 0;
		s->credit += frame_get_credit(payload);
		if (s->credit > s->credit_max) {
			*err = "returns more credit than was used";
			return -1;
		}
		return 0;
	case FRAME_CLOSE:
	case FRAME_RESET:
		s->end_received = (enum end_kind)h->type;
		s->remote_id = 0;
		s->credit = 0;
		return 0;
	default:
		*err = "unexpected frame type";
		return -1;
	}
}
