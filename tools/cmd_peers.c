// SPDX-License-Identifier: MIT
/*
 * ivshmem peers server:SOCKET: who is connected to an ivshmem-server. Joins as
 * a peer for a moment (the server sends every present peer before our own
 * vectors, so the list is complete when the open returns), prints, leaves.
 */
#include "dev.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_PEERS 65536

static void print_peers(struct ivshmem_region *r, const uint16_t *ids, int n, bool json)
{
	if (!json) {
		printf("own id:  %d (this command, while it runs)\n", ivshmem_own_id(r));
		printf("size:    %" PRIu64 " bytes\n", ivshmem_size(r));
		printf("vectors: %u per peer\n", ivshmem_vectors(r));
		printf("peers:   %d other\n", n);
		for (int i = 0; i < n; i++)
			printf("  peer %u: %d vector%s\n", ids[i], ivshmem_peer_vectors(r, ids[i]),
			       ivshmem_peer_vectors(r, ids[i]) == 1 ? "" : "s");
		return;
	}
	printf("{\"own_id\": %d, \"size\": %" PRIu64 ", \"vectors\": %u, \"peers\": [",
	       ivshmem_own_id(r), ivshmem_size(r), ivshmem_vectors(r));
	for (int i = 0; i < n; i++)
		printf("%s{\"id\": %u, \"vectors\": %d}", i ? ", " : "", ids[i],
		       ivshmem_peer_vectors(r, ids[i]));
	printf("]}\n");
}

int cmd_peers(int argc, char **argv)
{
	const struct ivshmem_cmd *cmd = cmd_find("peers");
	const char *target = NULL;
	uint16_t *ids;
	struct opts o;
	struct dev d;
	int ret, n;

	ret = dev_open_one(cmd, argc, argv, ALLOW(OPT_JSON), IVSHMEM_OPEN_READONLY, &o, &d, &target);
	if (ret)
		return ret;
	if (ivshmem_backend_of(d.r) != IVSHMEM_BACKEND_SERVER) {
		ivshmem_close(d.r);
		return cmd_error(cmd, EXIT_USAGE, "%s is not an ivshmem-server socket: only the "
				 "server knows its peers (give server:SOCKET; in a guest, "
				 "'ivshmem info' shows the own IVPosition)", target);
	}
	ids = calloc(MAX_PEERS, sizeof(*ids));
	n = ids ? ivshmem_peer_list(d.r, ids, MAX_PEERS) : -ENOMEM;
	if (n < 0) {
		ret = cmd_error(cmd, cmd_exit_code(n), "%s", ids ? ivshmem_errmsg() : "out of memory");
	} else {
		print_peers(d.r, ids, n < MAX_PEERS ? n : MAX_PEERS, o.json);
		ret = EXIT_OK;
	}
	free(ids);
	ivshmem_close(d.r);
	return ret;
}
