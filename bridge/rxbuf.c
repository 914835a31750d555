// SPDX-License-Identifier: MIT
/* A link's receive buffer (rxbuf.h). */
#include "rxbuf.h"

#include <stdlib.h>
#include <string.h>

int rxbuf_init(struct rxbuf *q, size_t cap)
{
	*q = (struct rxbuf){ .data = malloc(cap), .cap = cap };
	return q->data ? 0 : -1;
}

void rxbuf_free(struct rxbuf *q)
{
	free(q->data);
	*q = (struct rxbuf){ .data = NULL };
}

void rxbuf_take(struct rxbuf *q, size_t n)
{
	q->head += n;
}

size_t rxbuf_make_room(struct rxbuf *q, size_t need)
{
	size_t unread = rxbuf_unread(q);

	if (unread == 0) {
		q->head = q->used = 0;
	} else if (q->head > 0 && (unread <= q->head || q->head + need > q->cap)) {
		memmove(q->data, q->data + q->head, unread);
		q->moved += unread;
		q->head = 0;
		q->used = unread;
	}
	return q->cap - q->used;
}
