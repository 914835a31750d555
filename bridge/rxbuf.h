/* SPDX-License-Identifier: MIT */
/*
 * A link's receive buffer: bytes arrive at the end (data + used), the reader
 * takes them from the front (data + head). Taking never moves bytes; the
 * unread rest is moved to the front only before a write, and only when that
 * is cheap (no more bytes than were taken since the last move) or needed (the
 * frame being read does not fit behind head). So the bytes moved stay below
 * twice the bytes received, however the stream is cut into frames: moving
 * the rest after every frame cost a busy link quadratic time (a second and
 * more for one full buffer) during which the bridge sent nothing, not even
 * its keepalive.
 */
#ifndef BRIDGE_RXBUF_H
#define BRIDGE_RXBUF_H

#include <stddef.h>
#include <stdint.h>

struct rxbuf {
	uint8_t *data;
	size_t cap, head, used;		/* unread bytes: data[head .. used) */
	uint64_t moved;			/* bytes moved to the front, ever (a cost, for tests) */
};

/* 0, or -1 when out of memory. */
int rxbuf_init(struct rxbuf *q, size_t cap);
void rxbuf_free(struct rxbuf *q);
static inline size_t rxbuf_unread(const struct rxbuf *q)
{
	return q->used - q->head;
}
static inline const uint8_t *rxbuf_front(const struct rxbuf *q)
{
	return q->data + q->head;
}
/* Take @n unread bytes from the front. */
void rxbuf_take(struct rxbuf *q, size_t n);
/*
 * Before writing at data + used (never while a write is outstanding: it would
 * land where the bytes were). @need: the unread bytes the reader waits for to
 * go on (the whole frame it has begun, at most cap), 0 when it has unread
 * frames left. Returns the room at the end.
 */
size_t rxbuf_make_room(struct rxbuf *q, size_t need);

#endif
