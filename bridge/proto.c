// SPDX-License-Identifier: MIT
/*
 * One link to a remote bridge (docs/multihost.md "Wire format"): the
 * HELLO/AUTH setup, reading and validating frames, batching frames for UCX,
 * keepalive and the dead-link timer. Channel frames go to session.c.
 */
#include "bridge.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static void send_hello(struct bridge *b, struct conn *c)
{
	struct frame_hello h = { .max_payload = b->max_payload,
				 .keepalive_ms = b->cfg.keepalive_ms };

	if (getrandom(h.nonce, sizeof(h.nonce), 0) != (ssize_t)sizeof(h.nonce)) {
		/* Without a fresh nonce an AUTH could be replayed: never send a predictable one. */
		conn_drop(b, c, "getrandom failed: cannot make a nonce");
		return;
	}
	snprintf(h.name, sizeof(h.name), "%s", b->cfg.name);
	frame_put_hello(c->own_hello, &h);
	conn_frame(c, FRAME_HELLO, 0, c->own_hello, FRAME_HELLO_LEN);
}

struct conn *conn_new(struct bridge *b, struct link *l, char role, int peer)
{
	struct conn *c;

	if (b->nconns == MAX_CONNS || !(c = calloc(1, sizeof(*c)))) {
		log_msg(b, false, "link from %s refused: %d links already", l->addr, MAX_CONNS);
		link_close(l);
		return NULL;
	}
	c->link = l;
	c->role = role;
	c->peer = peer;
	c->state = CONN_HELLO;
	c->next_id = 1;
	c->born = c->last_rx = c->last_tx = now_ns();
	b->conns[b->nconns++] = c;
	send_hello(b, c);
	link_pump(l, FRAME_HDR);
	return c;
}

static const char *peer_name(struct bridge *b, struct conn *c)
{
	return c->peer >= 0 ? b->cfg.peers[c->peer].name : "?";
}

void conn_drop(struct bridge *b, struct conn *c, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	if (c->dead)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_msg(b, false, "link %s %s (%s): %s; dropping this link", c->role == 'D' ? "to" : "from",
		peer_name(b, c), c->link->addr, why);
	c->dead = true;
	if (c->peer >= 0 && b->peer_conn[c->peer] == c) {
		b->peer_conn[c->peer] = NULL;
		for (int i = 0; i < b->nchans; i++)
			if (b->chans[i].cfg->peer == c->peer)
				chan_link_lost(b, &b->chans[i], why);
		b->redial_at[c->peer] = now_ns() + (int64_t)REDIAL_MS * 1000000;
	}
	free(c->tx);
	c->tx = NULL;
	c->tx_len = c->tx_cap = 0;
	link_close(c->link);
	b->busy = true;
}

/* ---- outgoing frames ----------------------------------------------------------------- */

static int tx_room(struct conn *c, size_t need)
{
	if (c->dead)
		return -1;
	if (c->tx && c->tx_cap - c->tx_len >= need)
		return 0;
	if (c->tx_len) {
		if (link_send(c->link, c->tx, c->tx_len) < 0) {
			c->tx = NULL;
			c->tx_len = c->tx_cap = 0;
			return -1;	/* the link failed: conn_service() drops it */
		}
		c->last_tx = now_ns();
		c->tx = NULL;
	}
	free(c->tx);
	c->tx_cap = need > TX_BATCH ? need : TX_BATCH;
	c->tx_len = 0;
	c->tx = malloc(c->tx_cap);
	if (!c->tx) {
		c->tx_cap = 0;
		c->link->failed = true;
		snprintf(c->link->why, sizeof(c->link->why), "out of memory for a send buffer");
		return -1;
	}
	return 0;
}

void conn_frame(struct conn *c, enum frame_type type, uint32_t channel, const void *payload,
		uint32_t len)
{
	if (tx_room(c, FRAME_HDR + len) < 0)
		return;
	frame_put_hdr(c->tx + c->tx_len, type, channel, len);
	if (len)
		memcpy(c->tx + c->tx_len + FRAME_HDR, payload, len);
	c->tx_len += FRAME_HDR + len;
}

uint8_t *conn_data_begin(struct conn *c, uint32_t max)
{
	if (tx_room(c, FRAME_HDR + (size_t)max) < 0)
		return NULL;
	return c->tx + c->tx_len + FRAME_HDR;
}

void conn_data_end(struct conn *c, uint32_t channel, uint32_t len)
{
	frame_put_hdr(c->tx + c->tx_len, FRAME_DATA, channel, len);
	c->tx_len += FRAME_HDR + len;
}

size_t conn_data_room(const struct conn *c)
{
	return c->tx ? c->tx_cap - c->tx_len : 0;
}

void conn_flush(struct bridge *b, struct conn *c)
{
	int64_t now = now_ns();

	if (c->dead)
		return;
	if (c->state == CONN_UP && !c->tx_len &&
	    now - c->last_tx >= (int64_t)b->cfg.keepalive_ms * 1000000)
		conn_frame(c, FRAME_PING, 0, NULL, 0);
	if (!c->tx_len)
		return;
	if (link_send(c->link, c->tx, c->tx_len) == 0)
		c->last_tx = now;
	c->tx = NULL;
	c->tx_len = c->tx_cap = 0;
}

/* ---- setup ------------------------------------------------------------------------------ */

static int find_peer(struct bridge *b, const char *name)
{
	for (int i = 0; i < b->cfg.npeers; i++)
		if (strcmp(b->cfg.peers[i].name, name) == 0)
			return i;
	return -1;
}

static void on_hello(struct bridge *b, struct conn *c, const uint8_t *payload)
{
	struct frame_hello h;
	uint8_t mac[SHA256_LEN];
	const char *err = NULL;
	int peer;

	if (frame_get_hello(payload, &h, &err) < 0) {
		conn_drop(b, c, "bad HELLO: %s", err);
		return;
	}
	peer = find_peer(b, h.name);
	if (c->role == 'D' && peer != c->peer) {
		conn_drop(b, c, "the bridge there calls itself '%s', not '%s'", h.name, peer_name(b, c));
		return;
	}
	if (c->role == 'A' && (peer < 0 || b->cfg.peers[peer].dial)) {
		conn_drop(b, c, "'%s' is not a peer configured to connect to us (peer NAME accept)",
			  h.name);
		return;
	}
	if (memcmp(h.nonce, c->own_hello, FRAME_NONCE_LEN) == 0) {
		conn_drop(b, c, "HELLO carries our own nonce (a reflection)");
		return;
	}
	if ((uint64_t)h.keepalive_ms * 2 > b->cfg.dead_ms) {
		conn_drop(b, c, "its keepalive of %u ms is too slow for our dead-ms %u", h.keepalive_ms,
			  b->cfg.dead_ms);
		return;
	}
	c->peer = peer;
	c->peer_max_payload = h.max_payload;
	memcpy(c->peer_hello, payload, FRAME_HELLO_LEN);
	auth_mac(b->secret, (size_t)b->secret_len, c->role, c->own_hello, c->peer_hello, mac);
	conn_frame(c, FRAME_AUTH, 0, mac, sizeof(mac));
	c->state = CONN_AUTH;
}

static void on_auth(struct bridge *b, struct conn *c, const uint8_t *payload)
{
	uint8_t want[SHA256_LEN];
	struct conn *old;

	auth_mac(b->secret, (size_t)b->secret_len, c->role == 'D' ? 'A' : 'D', c->peer_hello,
		 c->own_hello, want);
	if (!auth_equal(want, payload, SHA256_LEN)) {
		conn_drop(b, c, "authentication failed (wrong shared secret?)");
		return;
	}
	c->state = CONN_UP;
	old = b->peer_conn[c->peer];
	if (old)
		conn_drop(b, old, "replaced by a new link from the same peer");
	b->peer_conn[c->peer] = c;
	log_msg(b, false, "link %s %s (%s) is up", c->role == 'D' ? "to" : "from", peer_name(b, c),
		c->link->addr);
}

/* One frame, header validated. */
static void dispatch(struct bridge *b, struct conn *c, const struct frame_hdr *h,
		     const uint8_t *payload)
{
	const char *err = NULL;
	struct frame_open o;

	if (c->state == CONN_HELLO || c->state == CONN_AUTH) {
		enum frame_type want = c->state == CONN_HELLO ? FRAME_HELLO : FRAME_AUTH;

		if (h->type != want)
			conn_drop(b, c, "%s frame before authentication (expected %s)",
				  frame_type_name(h->type), frame_type_name(want));
		else if (want == FRAME_HELLO)
			on_hello(b, c, payload);
		else
			on_auth(b, c, payload);
		return;
	}
	switch (h->type) {
	case FRAME_PING:
		return;
	case FRAME_HELLO:
	case FRAME_AUTH:
		conn_drop(b, c, "protocol error: %s after setup", frame_type_name(h->type));
		return;
	case FRAME_OPEN:
		if (frame_get_open(payload, &o, &err) < 0 || chan_on_open(b, c, h->channel, &o, &err) < 0)
			conn_drop(b, c, "protocol error: OPEN: %s", err);
		return;
	default:
		if (chan_on_frame(b, c, h, payload, &err) < 0)
			conn_drop(b, c, "protocol error: %s for channel id %u: %s",
				  frame_type_name(h->type), h->channel, err);
	}
}

/*
 * The next whole frame at the front of the link's buffer: 1 (header in @h),
 * 0 when more bytes are needed (*@need: how many, in all), -1 after a bad
 * header dropped the link.
 */
static int next_frame(struct bridge *b, struct conn *c, struct frame_hdr *h, size_t *need)
{
	const struct rxbuf *rx = &c->link->rx;
	const char *err;

	*need = FRAME_HDR;
	if (rxbuf_unread(rx) < FRAME_HDR)
		return 0;
	if (frame_get_hdr(rxbuf_front(rx), b->max_payload, h, &err) < 0) {
		conn_drop(b, c, "protocol error: %s", err);
		return -1;
	}
	*need = FRAME_HDR + (size_t)h->len;
	if (rxbuf_unread(rx) < *need)
		return 0;
	*need = 0;
	return 1;
}

/* Handle at most RX_BATCH bytes of frames: a busy link must not hold up the others. */
static void read_frames(struct bridge *b, struct conn *c, size_t *need)
{
	struct link *l = c->link;
	struct frame_hdr h;
	size_t done = 0;

	while (done < RX_BATCH && next_frame(b, c, &h, need) > 0) {
		dispatch(b, c, &h, rxbuf_front(&l->rx) + FRAME_HDR);
		rxbuf_take(&l->rx, FRAME_HDR + h.len);
		done += FRAME_HDR + h.len;
		b->busy = true;
		if (c->dead)
			return;
	}
}

void conn_service(struct bridge *b, struct conn *c)
{
	struct link *l = c->link;
	int64_t now = now_ns();
	size_t need = 0;

	if (c->dead)
		return;
	read_frames(b, c, &need);
	if (c->dead)
		return;
	/* Failed: once every whole frame it delivered was handled (need > 0). */
	if (l->failed && need) {
		size_t part = rxbuf_unread(&l->rx);

		if (part)
			conn_drop(b, c, "connection lost in the middle of a frame (%zu bytes of it "
				  "received): %s", part, l->why);
		else
			conn_drop(b, c, "connection lost: %s", l->why);
		return;
	}
	link_pump(l, need);
	if (l->rx_total != c->rx_seen) {
		c->rx_seen = l->rx_total;
		c->last_rx = now;
	}
	if (c->state != CONN_UP && now - c->born > (int64_t)HANDSHAKE_MS * 1000000)
		conn_drop(b, c, "no authenticated setup within %d ms", HANDSHAKE_MS);
	else if (now - c->last_rx > (int64_t)b->cfg.dead_ms * 1000000)
		conn_drop(b, c, "nothing received for %u ms (the link or the remote is down; "
			  "last sent %lld ms ago)", b->cfg.dead_ms,
			  (long long)((now - c->last_tx) / 1000000));
}

int64_t conn_deadline(struct bridge *b, struct conn *c)
{
	int64_t t = c->last_rx + (int64_t)b->cfg.dead_ms * 1000000 + 1000000;

	if (c->state == CONN_UP) {
		int64_t k = c->last_tx + (int64_t)b->cfg.keepalive_ms * 1000000;

		t = k < t ? k : t;
	} else {
		int64_t h = c->born + (int64_t)HANDSHAKE_MS * 1000000 + 1000000;

		t = h < t ? h : t;
	}
	return t;
}
