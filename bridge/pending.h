/* SPDX-License-Identifier: MIT */
/*
 * Records received from a remote bridge that did not fit in the local ring
 * yet: a FIFO of at most @cap bytes, each record costing frame_data_cost()
 * (an 8-byte length word and the bytes padded to 8), exactly the credit the
 * remote spent on it. Credit guarantees a push fits; a push that does not is a
 * bug in the caller and is refused.
 */
#ifndef BRIDGE_PENDING_H
#define BRIDGE_PENDING_H

#include <stddef.h>
#include <stdint.h>

struct pending {
	uint8_t *buf;
	size_t cap, head, tail;		/* bytes buf[head .. tail) are queued */
	uint64_t records;
};

int pending_init(struct pending *q, size_t cap);
void pending_free(struct pending *q);
/* Queue a copy of @len bytes: 0, or -1 if it does not fit in cap. */
int pending_push(struct pending *q, const void *data, uint32_t len);
/* The oldest record, or -1 if empty. */
int pending_front(const struct pending *q, const void **data, uint32_t *len);
/* Drop the oldest record; returns its cost. */
uint64_t pending_pop(struct pending *q);
void pending_clear(struct pending *q);

#endif
