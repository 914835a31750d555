// SPDX-License-Identifier: MIT
#include "ids.h"

#include <string.h>

void ids_init(struct id_alloc *a, uint32_t first)
{
	memset(a, 0, sizeof(*a));
	a->next = first % IDS_COUNT;
}

bool ids_live(const struct id_alloc *a, uint16_t id)
{
	return a->live[id / 64] & (1ull << (id % 64));
}

int ids_get(struct id_alloc *a)
{
	if (a->used >= IDS_COUNT)
		return -1;
	/* At most 65536 probes; a word of 64 live IDs is skipped at once. */
	for (;;) {
		uint32_t id = a->next;

		if (a->live[id / 64] == UINT64_MAX && id % 64 == 0) {
			a->next = (id + 64) % IDS_COUNT;
			continue;
		}
		a->next = (id + 1) % IDS_COUNT;
		if (!ids_live(a, (uint16_t)id)) {
			a->live[id / 64] |= 1ull << (id % 64);
			a->used++;
			return (int)id;
		}
	}
}

void ids_put(struct id_alloc *a, uint16_t id)
{
	if (!ids_live(a, id))
		return;
	a->live[id / 64] &= ~(1ull << (id % 64));
	a->used--;
}
