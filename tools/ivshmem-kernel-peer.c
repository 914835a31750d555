// SPDX-License-Identifier: MIT
/*
 * ivshmem-kernel-peer: makes the host kernel (ivshmem_host.ko) a peer of a
 * region served by any ivshmem-server, QEMU's contrib server included. It
 * joins as an ordinary client, hands the memory, its own eventfds and every
 * peer's eventfds to /dev/ivshmem-host under NAME, reports joins and leaves,
 * and stays until SIGTERM/SIGINT or until the server goes away; its exit
 * removes the region from the kernel. The module calls are
 * include/ivshmem/kpeer.h, shared with ivshmem-server --kernel-peer.
 *
 * The protocol does not say how many vectors a peer has: -n gives it (the
 * server's -n, default 1 as there), and a greeting that disagrees is an error.
 */
#define _GNU_SOURCE
#include "ivshmem/kpeer.h"
#include "ivshmem/protocol.h"
#include "ivshmem/region.h"
#include "ivshmem/util.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SOCKET	"/tmp/ivshmem_socket"	/* QEMU's server and client default */
#define GREETING_MS	5000	/* the whole greeting must arrive within this */
#define SHORT_MS	200	/* quiet this long with fewer own vectors than -n: a mismatch */

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_NOSERVER = 3 };
enum { OPT_VERSION = 256, OPT_REQUIRE_SEALS };

static const struct option long_opts[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "socket", required_argument, NULL, 'S' },
	{ "vectors", required_argument, NULL, 'n' },
	{ "require-seals", no_argument, NULL, OPT_REQUIRE_SEALS },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ 0 },
};

struct kpeer_tool {
	const char *socket, *name;
	unsigned int vectors;
	bool verbose, require_seals;
	int sock, dev, sigfd;
	struct ivshmem_msg_reader rd;
	struct ivshmem_client_proto proto;
	uint64_t joined[65536 / 64];	/* peers reported to the module */
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: ivshmem-kernel-peer [-S SOCKET] [-n N] [--require-seals] [-v] NAME\n"
"Make the host kernel a peer of an ivshmem-server's region (ours or QEMU's\n"
"contrib/ivshmem-server): join as a client, attach the memory to ivshmem_host.ko\n"
"(" IVSHMEM_KPEER_DEVICE ") under NAME with every peer's doorbells, report joins and\n"
"leaves, and stay until SIGTERM/SIGINT or until the server goes away. Host\n"
"modules then find the region by NAME (<linux/ivshmem_host.h>).\n"
"\n"
"  -S, --socket PATH     server socket (default " DEFAULT_SOCKET ")\n"
"  -n, --vectors N       vectors per peer: the server's -n, 1..%d (default 1)\n"
"      --require-seals   refuse memory that is not a memfd sealed against resizing\n"
"  -v, --verbose         print joins and leaves\n"
"  -h, --help            show this help\n"
"      --version         print the version\n"
"Exit status: 0 after SIGTERM/SIGINT, 1 failure (module missing, name taken,\n"
"the server went away, ...), 2 bad usage, 3 cannot connect to the server.\n",
		IVSHMEM_KPEER_MAX_VECTORS);
}

static int __attribute__((format(printf, 1, 2))) fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ivshmem-kernel-peer: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_FAIL;
}

static int usage_error(const char *what)
{
	fprintf(stderr, "ivshmem-kernel-peer: %s\nTry 'ivshmem-kernel-peer --help'.\n", what);
	return EXIT_USAGE;
}

static int parse_args(int argc, char **argv, struct kpeer_tool *t)
{
	uint64_t v;
	int c;

	while ((c = getopt_long(argc, argv, "hvS:n:", long_opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			exit(EXIT_OK);
		case 'v':
			t->verbose = true;
			break;
		case 'S':
			t->socket = optarg;
			break;
		case 'n':
			if (ivshmem_parse_uint(optarg, IVSHMEM_KPEER_MAX_VECTORS, &v) < 0 || !v)
				return usage_error("-n: a number from 1 to 64 (the module's limit)");
			t->vectors = (unsigned int)v;
			break;
		case OPT_REQUIRE_SEALS:
			t->require_seals = true;
			break;
		case OPT_VERSION:
			printf("ivshmem-kernel-peer %s\n", IVSHMEM_VERSION);
			exit(EXIT_OK);
		default:
			fprintf(stderr, "Try 'ivshmem-kernel-peer --help'.\n");
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1)
		return usage_error("one NAME expected: the name host modules find the region by");
	t->name = argv[optind];
	if (!*t->name || strlen(t->name) > 31)
		return usage_error("NAME must be 1 to 31 bytes");
	return EXIT_OK;
}

static int connect_server(struct kpeer_tool *t)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	if (strlen(t->socket) >= sizeof(addr.sun_path))
		return usage_error("-S: socket path too long");
	memcpy(addr.sun_path, t->socket, strlen(t->socket));
	t->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (t->sock < 0 || connect(t->sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		fprintf(stderr, "ivshmem-kernel-peer: cannot connect to ivshmem-server at %s: %s\n",
			t->socket, strerror(errno));
		return EXIT_NOSERVER;
	}
	return EXIT_OK;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool is_joined(const struct kpeer_tool *t, uint16_t id)
{
	return t->joined[id / 64] & (1ull << (id % 64));
}

static void set_joined(struct kpeer_tool *t, uint16_t id, bool on)
{
	if (on)
		t->joined[id / 64] |= 1ull << (id % 64);
	else
		t->joined[id / 64] &= ~(1ull << (id % 64));
}

/* A kernel-side failure; ENODEV: the kernel removed the region. */
static int kernel_failed(const struct kpeer_tool *t, int err)
{
	if (err == -ENODEV)
		return fail("kernel peer '%s': ivshmem_host.ko removed the region (the memory lost "
			    "pages: a hole punched or the file shrunk)", t->name);
	return fail("%s", ivshmem_errmsg());
}

/* @id has all its vectors: bind them and report the join (once). */
static int peer_complete(struct kpeer_tool *t, uint16_t id)
{
	struct ivshmem_proto_peer *p = ivshmem_client_proto_peer(&t->proto, id);
	int err;

	if (!p || p->nfds < t->vectors || is_joined(t, id))
		return EXIT_OK;
	if (p->nfds > t->vectors)
		return fail("peer %u has more than %u vectors: run with -n %u (the server's -n)",
			    id, t->vectors, p->nfds);
	err = ivshmem_kpeer_join(t->dev, id, p->fds, t->vectors);
	if (err < 0)
		return kernel_failed(t, err);
	set_joined(t, id, true);
	if (t->verbose)
		fprintf(stderr, "ivshmem-kernel-peer: peer %u joined\n", id);
	return EXIT_OK;
}

static int peer_left(struct kpeer_tool *t, uint16_t id)
{
	int err;

	if (!is_joined(t, id))
		return EXIT_OK;
	set_joined(t, id, false);
	err = ivshmem_kpeer_leave(t->dev, id);
	if (err < 0)
		return kernel_failed(t, err);
	if (t->verbose)
		fprintf(stderr, "ivshmem-kernel-peer: peer %u left\n", id);
	return EXIT_OK;
}

/*
 * Read and apply what the server sent. Before the attach (@t->dev < 0) only
 * the protocol state grows; after it every completed peer and every leave
 * goes to the module. Returns EXIT_OK, or an exit status.
 */
static int receive(struct kpeer_tool *t)
{
	for (;;) {
		int64_t value;
		uint16_t peer;
		int fd, ev, ret;

		ret = ivshmem_msg_recv(t->sock, &t->rd, &value, &fd);
		if (ret == 0)
			return EXIT_OK;
		if (ret == -ECONNRESET)
			return fail("the server at %s went away; the kernel peer '%s' leaves",
				    t->socket, t->name);
		if (ret < 0)
			return fail("%s", ivshmem_errmsg());
		ev = ivshmem_client_proto_feed(&t->proto, value, fd, &peer);
		if (ev < 0)
			return fail("%s", ivshmem_errmsg());
		if (ev == IVSHMEM_CEV_OWN_VECTOR && t->proto.own.nfds > t->vectors)
			return fail("the server gives more than %u vectors per peer: run with -n "
				    "(the server's -n)", t->vectors);
		if (t->dev < 0)
			continue;
		ret = EXIT_OK;
		if (ev == IVSHMEM_CEV_PEER_VECTOR)
			ret = peer_complete(t, peer);
		else if (ev == IVSHMEM_CEV_PEER_LEAVE)
			ret = peer_left(t, peer);
		if (ret != EXIT_OK)
			return ret;
	}
}

/* Until our own vectors are all there: the end of the greeting. */
static int receive_greeting(struct kpeer_tool *t)
{
	int64_t deadline = now_ms() + GREETING_MS, last = now_ms();
	unsigned int had = 0;

	while (t->proto.state != IVSHMEM_CLIENT_RUNNING || t->proto.own.nfds < t->vectors) {
		struct pollfd p = { .fd = t->sock, .events = POLLIN };
		int64_t now = now_ms();
		int ret;

		if (t->proto.own.nfds && now - last >= SHORT_MS)
			return fail("the server gave %u vectors per peer, not %u: run with -n %u "
				    "(the server's -n)", t->proto.own.nfds, t->vectors,
				    t->proto.own.nfds);
		if (now >= deadline)
			return fail("no complete greeting from %s within %d ms", t->socket,
				    GREETING_MS);
		if (poll(&p, 1, 50) < 0 && errno != EINTR)
			return fail("poll: %s", strerror(errno));
		ret = receive(t);
		if (ret != EXIT_OK)
			return ret;
		if (t->proto.own.nfds != had) {
			had = t->proto.own.nfds;
			last = now_ms();
		}
	}
	return EXIT_OK;
}

static int attach(struct kpeer_tool *t)
{
	int err;

	t->dev = ivshmem_kpeer_attach(t->name, t->proto.shm_fd, t->proto.own.id, t->vectors,
				      t->require_seals);
	if (t->dev < 0)
		return fail("%s", ivshmem_errmsg());
	err = ivshmem_kpeer_bind_own(t->dev, t->proto.own.fds, t->vectors);
	if (err < 0)
		return kernel_failed(t, err);
	for (size_t i = 0; i < t->proto.npeers; i++) {
		int ret = peer_complete(t, t->proto.peers[i]->id);

		if (ret != EXIT_OK)
			return ret;
	}
	fprintf(stderr, "ivshmem-kernel-peer: kernel peer '%s' is peer %u of %s (%u vector%s, "
		"%zu other peer%s)\n", t->name, t->proto.own.id, t->socket, t->vectors,
		t->vectors == 1 ? "" : "s", t->proto.npeers, t->proto.npeers == 1 ? "" : "s");
	return EXIT_OK;
}

static int serve(struct kpeer_tool *t)
{
	for (;;) {
		struct pollfd p[2] = { { .fd = t->sock, .events = POLLIN },
				       { .fd = t->sigfd, .events = POLLIN } };
		int ret;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return fail("poll: %s", strerror(errno));
		}
		if (p[1].revents)
			return EXIT_OK;
		ret = receive(t);
		if (ret != EXIT_OK)
			return ret;
	}
}

int main(int argc, char **argv)
{
	static struct kpeer_tool t = { .socket = DEFAULT_SOCKET, .vectors = 1, .sock = -1,
				       .dev = -1, .sigfd = -1 };
	sigset_t sigs;
	int ret;

	ret = parse_args(argc, argv, &t);
	if (ret != EXIT_OK)
		return ret;
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	t.sigfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (t.sigfd < 0)
		return fail("signalfd: %s", strerror(errno));
	ivshmem_msg_reader_init(&t.rd);
	ivshmem_client_proto_init(&t.proto);
	ret = connect_server(&t);
	if (ret == EXIT_OK)
		ret = receive_greeting(&t);
	if (ret == EXIT_OK)
		ret = attach(&t);
	if (ret == EXIT_OK)
		ret = serve(&t);
	/* Closing the device removes the region from the kernel. */
	if (t.dev >= 0)
		close(t.dev);
	if (t.sock >= 0)
		close(t.sock);
	ivshmem_msg_reader_reset(&t.rd);
	ivshmem_client_proto_free(&t.proto);
	close(t.sigfd);
	return ret;
}
