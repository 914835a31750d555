// SPDX-License-Identifier: MIT
/*
 * A host peer that answers a guest: it joins ivshmem-server as a peer and
 * answers every message on channel "echo" with "echo: MESSAGE". The other end
 * is a guest with the ivshmem.ko driver (or any peer), running the same
 * program with "ask":
 *
 *     host$  ivshmem-server -F --memfd -l 16M -n 2 -S /tmp/ivshmem.sock
 *     host$  ivshmem format server:/tmp/ivshmem.sock --channel echo
 *     host$  echo_peer serve server:/tmp/ivshmem.sock
 *     guest# echo_peer ask /dev/ivshmem0 hello        # prints "echo: hello"
 *
 * Over the server and the driver both sides sleep on doorbells: the guest
 * rings the host peer's eventfd, the host rings the guest's MSI-X vector.
 * Build: cc echo_peer.c $(pkg-config --cflags --libs libivshmem)
 */
#include <ivshmem.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIMEOUT_MS 30000

static int fail(const char *what)
{
	fprintf(stderr, "echo_peer: %s: %s\n", what, ivshmem_errmsg());
	return 1;
}

/* Answer messages until the asker closes; @count > 0 stops after that many askers. */
static int serve(struct ivshmem_region *r, int count)
{
	for (int served = 0; count <= 0 || served < count; served++) {
		struct ivshmem_channel_opts o = { .flags = IVSHMEM_CHANNEL_CREATE };
		struct ivshmem_channel *ch;
		char buf[512], reply[520];
		ssize_t n;

		/* One open per asker: a channel is point-to-point, and ends with its peer. */
		if (ivshmem_channel_open(&ch, r, "echo", &o) < 0)
			return fail("channel echo");
		while ((n = ivshmem_channel_recv(ch, buf, sizeof(buf), -1)) >= 0) {
			int len = snprintf(reply, sizeof(reply), "echo: %.*s", (int)n, buf);

			if (ivshmem_channel_send(ch, reply, (size_t)len, TIMEOUT_MS) < 0)
				break;
		}
		if (n != -EPIPE)
			fprintf(stderr, "echo_peer: the asker left: %s\n", ivshmem_errmsg());
		ivshmem_channel_close(ch, TIMEOUT_MS);
	}
	return 0;
}

/* Send @msg, print the answer. */
static int ask(struct ivshmem_region *r, const char *msg)
{
	struct ivshmem_channel_opts o = { .flags = IVSHMEM_CHANNEL_CREATE,
					  .open_timeout_ms = TIMEOUT_MS };
	struct ivshmem_channel *ch;
	char buf[520];
	ssize_t n;
	int ret = 0;

	if (ivshmem_channel_open(&ch, r, "echo", &o) < 0)
		return fail("channel echo");
	if (ivshmem_channel_send(ch, msg, strlen(msg), TIMEOUT_MS) < 0)
		ret = fail("send");
	else if ((n = ivshmem_channel_recv(ch, buf, sizeof(buf), TIMEOUT_MS)) < 0)
		ret = fail("recv");
	else
		printf("%.*s\n", (int)n, buf);
	ivshmem_channel_close(ch, TIMEOUT_MS);
	return ret;
}

int main(int argc, char **argv)
{
	struct ivshmem_region *r;
	int ret;

	if (argc < 3 || (strcmp(argv[1], "serve") != 0 && strcmp(argv[1], "ask") != 0) ||
	    (strcmp(argv[1], "ask") == 0 && argc != 4)) {
		fprintf(stderr, "usage: echo_peer serve TARGET [COUNT]\n"
				"       echo_peer ask TARGET MESSAGE\n"
				"TARGET: server:SOCKET on the host, /dev/ivshmemN or name:NAME in a guest\n");
		return 2;
	}
	if (ivshmem_open(&r, argv[2], NULL) < 0)
		return fail(argv[2]);
	if (strcmp(argv[1], "serve") == 0)
		ret = serve(r, argc > 3 ? atoi(argv[3]) : 0);
	else
		ret = ask(r, argv[3]);
	ivshmem_close(r);
	return ret;
}
