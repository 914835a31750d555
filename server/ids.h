/* SPDX-License-Identifier: MIT */
/*
 * Peer ID allocation: sequential from 0, skipping IDs in use, wrapping after
 * 65535, so an ID is not reused until the counter comes round again (QEMU's
 * server does the same). Pure logic, unit-tested in tests/unit/test_server_ids.c.
 */
#ifndef IVSHMEM_SERVER_IDS_H
#define IVSHMEM_SERVER_IDS_H

#include <stdbool.h>
#include <stdint.h>

#define IDS_COUNT 65536

struct id_alloc {
	uint32_t next;			/* next candidate, 0..65535 */
	uint32_t used;			/* IDs currently live */
	uint64_t live[IDS_COUNT / 64];	/* bitmap */
};

void ids_init(struct id_alloc *a, uint32_t first);
/* The next free ID, marked live; -1 when all 65536 are live. */
int ids_get(struct id_alloc *a);
void ids_put(struct id_alloc *a, uint16_t id);
bool ids_live(const struct id_alloc *a, uint16_t id);

#endif
