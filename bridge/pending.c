// SPDX-License-Identifier: MIT
/* The bounded queue of received records (pending.h). */
#include "pending.h"

#include "frame.h"

#include <stdlib.h>
#include <string.h>

int pending_init(struct pending *q, size_t cap)
{
	memset(q, 0, sizeof(*q));
	q->buf = malloc(cap);
	if (!q->buf)
		return -1;
	q->cap = cap;
	return 0;
}

void pending_free(struct pending *q)
{
	free(q->buf);
	memset(q, 0, sizeof(*q));
}

int pending_push(struct pending *q, const void *data, uint32_t len)
{
	uint64_t cost = frame_data_cost(len);
	uint64_t word = len;

	if (q->tail - q->head + cost > q->cap)
		return -1;
	if (q->tail + cost > q->cap) {
		/* Not enough room at the end: move what is queued to the front (it fits, see above). */
		memmove(q->buf, q->buf + q->head, q->tail - q->head);
		q->tail -= q->head;
		q->head = 0;
	}
	memcpy(q->buf + q->tail, &word, 8);
	memcpy(q->buf + q->tail + 8, data, len);
	q->tail += cost;
	q->records++;
	return 0;
}

int pending_front(const struct pending *q, const void **data, uint32_t *len)
{
	uint64_t word;

	if (q->head == q->tail)
		return -1;
	memcpy(&word, q->buf + q->head, 8);
	*len = (uint32_t)word;
	*data = q->buf + q->head + 8;
	return 0;
}

uint64_t pending_pop(struct pending *q)
{
	const void *data;
	uint32_t len;
	uint64_t cost;

	if (pending_front(q, &data, &len) < 0)
		return 0;
	cost = frame_data_cost(len);
	q->head += cost;
	q->records--;
	if (q->head == q->tail)
		q->head = q->tail = 0;
	return cost;
}

void pending_clear(struct pending *q)
{
	q->head = q->tail = 0;
	q->records = 0;
}
