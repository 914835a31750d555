// SPDX-License-Identifier: MIT
/* ivshmem-server's peer ID allocation: sequential, wraps at 65535, never hands out a live ID. */
#include "../../server/ids.h"
#include "tap.h"

static struct id_alloc a;

int main(void)
{
	int id, ok;

	ids_init(&a, 0);
	tap_is(ids_get(&a), 0, "first ID is 0");
	tap_is(ids_get(&a), 1, "then 1");
	ids_put(&a, 0);
	tap_is(ids_get(&a), 2, "a freed ID is not reused right away");

	ids_init(&a, 65534);
	tap_is(ids_get(&a), 65534, "65534");
	tap_is(ids_get(&a), 65535, "65535");
	tap_is(ids_get(&a), 0, "wraps to 0 after 65535");

	/* Fill everything but one ID, then free and re-get around live ones. */
	ids_init(&a, 0);
	ok = 1;
	for (int i = 0; i < 65536; i++)
		ok &= ids_get(&a) == i;
	tap_ok(ok, "65536 sequential IDs");
	tap_is(ids_get(&a), -1, "all IDs live: -1");
	ids_put(&a, 40000);
	ids_put(&a, 7);
	tap_is(ids_get(&a), 7, "after the wrap the first free ID is taken (7), live ones skipped");
	tap_is(ids_get(&a), 40000, "then 40000, skipping 32,992 live IDs");
	tap_is(ids_get(&a), -1, "full again");
	ids_put(&a, 5);
	ids_put(&a, 5);
	tap_is(a.used, 65535, "freeing twice counts once");
	id = ids_get(&a);
	tap_is(id, 5, "and the ID comes back once");
	tap_ok(ids_live(&a, 5) && ids_live(&a, 65535), "live bits set");
	return tap_done();
}
