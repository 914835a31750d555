// SPDX-License-Identifier: MIT
/*
 * ivshmem-client: a host peer of ivshmem-server, compatible with QEMU's
 * contrib/ivshmem-client (interactive: help, dump, int PEER VECTOR,
 * int PEER all, int all) plus non-interactive modes for scripts.
 */
#define _GNU_SOURCE
#include "ivshmem/region.h"
#include "ivshmem/util.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/tmp/ivshmem_socket"	/* QEMU's client and server default */

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_NODEV = 3, EXIT_TIMEOUT = 4 };

enum { OPT_LIST = 256, OPT_NOTIFY, OPT_WAIT, OPT_VECTOR, OPT_TIMEOUT, OPT_WAIT_PEERS,
       OPT_VERSION };

static const struct option long_opts[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "socket", required_argument, NULL, 'S' },
	{ "list", no_argument, NULL, OPT_LIST },
	{ "notify", required_argument, NULL, OPT_NOTIFY },
	{ "wait", required_argument, NULL, OPT_WAIT },
	{ "vector", required_argument, NULL, OPT_VECTOR },
	{ "wait-peers", required_argument, NULL, OPT_WAIT_PEERS },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ 0 },
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: ivshmem-client [-S SOCKET] [-v]                interactive, like QEMU's client\n"
"       ivshmem-client [-S SOCKET] [--wait-peers N] [--list] [--notify SPEC]...\n"
"                      [--wait N [--vector V]] [--timeout MS]\n"
"A host peer of ivshmem-server: rings other peers' doorbells and receives its own.\n"
"\n"
"  -S, --socket PATH    server socket (default " DEFAULT_SOCKET ")\n"
"  -v, --verbose        print joins, leaves and interrupts as they come\n"
"  -h, --help           show this help\n"
"      --version        print the version\n"
"Script mode (any of these: no prompt; run in this order, then exit):\n"
"      --wait-peers N   first wait until at least N other peers are present\n"
"      --list           print 'id ID', 'vectors N', 'size BYTES', then 'peer ID VECTORS'\n"
"                       for every other peer\n"
"      --notify SPEC    ring PEER:VECTOR, PEER:all or all (every vector of every other\n"
"                       peer); may be repeated\n"
"      --wait N         wait until N interrupts arrived on own vectors (any vector, or\n"
"                       only --vector V); prints 'vector V count C' per wake-up\n"
"      --timeout MS     bound for --wait and --wait-peers (default 10000; -1: forever)\n"
"Interactive commands: help, dump, int PEER VECTOR, int PEER all, int all, quit.\n"
"Exit status: 0 ok, 1 failure, 2 bad usage, 3 cannot connect, 4 timeout.\n");
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Apply pending join/leave events; print them when asked. */
static int drain_peer_events(struct ivshmem_region *r, bool print)
{
	struct ivshmem_peer_event ev;
	int ret;

	while ((ret = ivshmem_next_peer_event(r, &ev)) > 0) {
		if (!print)
			continue;
		if (ev.type == IVSHMEM_PEER_JOIN)
			printf("peer %u joined (%u vector%s)\n", ev.peer, ev.vectors,
			       ev.vectors == 1 ? "" : "s");
		else
			printf("peer %u left\n", ev.peer);
		fflush(stdout);
	}
	return ret;
}

static int ring(struct ivshmem_region *r, uint16_t peer, int vector)
{
	int n = ivshmem_peer_vectors(r, peer);

	if (n < 0)
		return n;
	for (int v = vector < 0 ? 0 : vector; v < (vector < 0 ? n : vector + 1); v++) {
		int ret = ivshmem_notify(r, peer, (uint16_t)v);

		if (ret < 0)
			return ret;
	}
	return 0;
}

static int ring_all(struct ivshmem_region *r)
{
	uint16_t ids[65536];
	int n = ivshmem_peer_list(r, ids, 65536);

	for (int i = 0; i < n; i++) {
		int ret = ring(r, ids[i], -1);

		if (ret < 0)
			return ret;
	}
	return n < 0 ? n : 0;
}

struct notify_spec {
	int peer;	/* -1: every other peer */
	int vector;	/* -1: every vector */
};

/* "PEER:VECTOR", "PEER:all" or "all"; false if it is none of these. */
static bool parse_notify_spec(const char *spec, struct notify_spec *out)
{
	char buf[64];
	char *colon;
	uint64_t peer, vec;

	if (strcmp(spec, "all") == 0) {
		*out = (struct notify_spec){ -1, -1 };
		return true;
	}
	if (strlen(spec) >= sizeof(buf))
		return false;
	strcpy(buf, spec);
	colon = strchr(buf, ':');
	if (!colon)
		return false;
	*colon = '\0';
	if (ivshmem_parse_uint(buf, 65535, &peer) < 0)
		return false;
	out->peer = (int)peer;
	if (strcmp(colon + 1, "all") == 0) {
		out->vector = -1;
		return true;
	}
	if (ivshmem_parse_uint(colon + 1, 65535, &vec) < 0)
		return false;
	out->vector = (int)vec;
	return true;
}

static int do_notify(struct ivshmem_region *r, const struct notify_spec *n)
{
	if (n->peer < 0)
		return ring_all(r);
	return ring(r, (uint16_t)n->peer, n->vector);
}

/*
 * Wait until @want interrupts arrived on own vector @vector (-1: any),
 * printing each wake-up. 0, -ETIMEDOUT, or a negative errno.
 */
static int wait_interrupts(struct ivshmem_region *r, int vector, int want, int timeout_ms)
{
	unsigned int nv = ivshmem_vectors(r);
	unsigned int first = vector < 0 ? 0 : (unsigned int)vector;
	unsigned int n = vector < 0 ? nv : 1;
	int64_t deadline = now_ms() + timeout_ms;
	struct pollfd pfd[256];
	int got = 0;

	if (n > 256)
		n = 256;
	for (unsigned int i = 0; i < n; i++)
		pfd[i] = (struct pollfd){ .fd = ivshmem_event_fd(r, first + i), .events = POLLIN };
	while (got < want) {
		int left = timeout_ms < 0 ? -1 : (int)(deadline - now_ms());

		if (timeout_ms >= 0 && left < 0)
			left = 0;
		int ret = poll(pfd, n, left);

		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return -errno;
		if (ret == 0) {
			fprintf(stderr, "ivshmem-client: timed out after %d of %d interrupts\n",
				got, want);
			return -ETIMEDOUT;
		}
		for (unsigned int i = 0; i < n; i++) {
			uint64_t count;

			if (!pfd[i].revents || read(pfd[i].fd, &count, 8) != 8)
				continue;
			printf("vector %u count %llu\n", first + i, (unsigned long long)count);
			got += (int)count;
		}
		fflush(stdout);
	}
	return 0;
}

static void dump(struct ivshmem_region *r)
{
	static uint16_t ids[65536];
	int n = ivshmem_peer_list(r, ids, 65536);

	printf("our_id = %d\n", ivshmem_own_id(r));
	printf("  shm size = %llu\n", (unsigned long long)ivshmem_size(r));
	for (unsigned int v = 0; v < ivshmem_vectors(r); v++)
		printf("  vector %u is enabled (fd=%d)\n", v, ivshmem_event_fd(r, v));
	for (int i = 0; i < n; i++) {
		int nv = ivshmem_peer_vectors(r, ids[i]);

		printf("peer_id = %u\n", ids[i]);
		for (int v = 0; v < nv; v++)
			printf("  vector %d can be rung\n", v);
	}
	fflush(stdout);
}

static void print_list(struct ivshmem_region *r)
{
	static uint16_t ids[65536];
	int n = ivshmem_peer_list(r, ids, 65536);

	printf("id %d\nvectors %u\nsize %llu\n", ivshmem_own_id(r), ivshmem_vectors(r),
	       (unsigned long long)ivshmem_size(r));
	for (int i = 0; i < n; i++)
		printf("peer %u %d\n", ids[i], ivshmem_peer_vectors(r, ids[i]));
	fflush(stdout);
}

static void interactive_command(struct ivshmem_region *r, char *line)
{
	char *argv[4];
	int argc = 0;
	int ret = 0;

	for (char *tok = strtok(line, " \t\r\n"); tok && argc < 4; tok = strtok(NULL, " \t\r\n"))
		argv[argc++] = tok;
	if (argc == 0)
		return;
	if (strcmp(argv[0], "help") == 0) {
		printf("dump: dump peers (including us)\n"
		       "int PEER VECTOR: notify one vector of a peer\n"
		       "int PEER all: notify all vectors of a peer\n"
		       "int all: notify all vectors of all peers (excepting us)\n"
		       "quit: leave\n");
	} else if (strcmp(argv[0], "dump") == 0) {
		dump(r);
	} else if (strcmp(argv[0], "int") == 0 && argc == 2 && strcmp(argv[1], "all") == 0) {
		ret = ring_all(r);
	} else if (strcmp(argv[0], "int") == 0 && argc == 3) {
		uint64_t peer, vec;

		if (ivshmem_parse_uint(argv[1], 65535, &peer) < 0) {
			printf("invalid peer %s\n", argv[1]);
		} else if (strcmp(argv[2], "all") == 0) {
			ret = ring(r, (uint16_t)peer, -1);
		} else if (ivshmem_parse_uint(argv[2], 65535, &vec) < 0) {
			printf("invalid vector %s\n", argv[2]);
		} else {
			ret = ring(r, (uint16_t)peer, (int)vec);
		}
	} else {
		printf("invalid command, type help\n");
	}
	if (ret < 0)
		printf("failed: %s\n", ivshmem_errmsg());
	fflush(stdout);
}

static int interactive(struct ivshmem_region *r, bool verbose)
{
	unsigned int nv = ivshmem_vectors(r);
	struct pollfd *pfd = calloc(nv + 2, sizeof(*pfd));
	char line[256];
	size_t have = 0;

	if (!pfd)
		return EXIT_FAIL;
	printf("cmd> ");
	fflush(stdout);
	for (;;) {
		pfd[0] = (struct pollfd){ .fd = 0, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = ivshmem_control_fd(r), .events = POLLIN };
		for (unsigned int v = 0; v < nv; v++)
			pfd[2 + v] = (struct pollfd){ .fd = ivshmem_event_fd(r, v), .events = POLLIN };
		if (poll(pfd, nv + 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents) {
			int ret = drain_peer_events(r, verbose);

			if (ret < 0) {
				fprintf(stderr, "ivshmem-client: %s\n", ivshmem_errmsg());
				free(pfd);
				return EXIT_FAIL;
			}
		}
		for (unsigned int v = 0; v < nv; v++) {
			uint64_t count;

			if (pfd[2 + v].revents && read(pfd[2 + v].fd, &count, 8) == 8)
				printf("received event on vector %u (count %llu)\n", v,
				       (unsigned long long)count);
		}
		if (pfd[0].revents) {
			ssize_t n = read(0, line + have, sizeof(line) - 1 - have);
			char *nl;

			if (n <= 0)
				break;
			have += (size_t)n;
			line[have] = '\0';
			while ((nl = strchr(line, '\n'))) {
				*nl = '\0';
				if (strcmp(line, "quit") == 0) {
					free(pfd);
					return EXIT_OK;
				}
				interactive_command(r, line);
				have -= (size_t)(nl + 1 - line);
				memmove(line, nl + 1, have + 1);
				printf("cmd> ");
			}
			if (have == sizeof(line) - 1)
				have = 0;	/* an over-long line is dropped */
		}
		fflush(stdout);
	}
	free(pfd);
	return EXIT_OK;
}

static int wait_peers(struct ivshmem_region *r, int want, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	for (;;) {
		struct pollfd pfd = { .fd = ivshmem_control_fd(r), .events = POLLIN };
		int ret = drain_peer_events(r, false);
		int n = ivshmem_peer_list(r, NULL, 0);

		if (ret < 0)
			return ret;
		if (n >= want)
			return 0;
		int left = timeout_ms < 0 ? -1 : (int)(deadline - now_ms());

		if (timeout_ms >= 0 && left <= 0)
			return -ETIMEDOUT;
		poll(&pfd, 1, left);
	}
}

int main(int argc, char **argv)
{
	const char *sock = DEFAULT_SOCKET;
	struct notify_spec notify[64];
	int nnotify = 0, c, ret;
	bool verbose = false, list = false, script = false;
	int wait_n = 0, vector = -1, timeout = 10000, want_peers = -1;
	struct ivshmem_open_opts opts = { .backend = IVSHMEM_BACKEND_SERVER };
	struct ivshmem_region *r;
	uint64_t v;

	while ((c = getopt_long(argc, argv, "hvS:", long_opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'v':
			verbose = true;
			break;
		case 'S':
			sock = optarg;
			break;
		case OPT_LIST:
			list = script = true;
			break;
		case OPT_NOTIFY:
			if (nnotify == 64) {
				fprintf(stderr, "ivshmem-client: at most 64 --notify\n");
				return EXIT_USAGE;
			}
			if (!parse_notify_spec(optarg, &notify[nnotify++])) {
				fprintf(stderr, "ivshmem-client: --notify: '%s' is not PEER:VECTOR, "
					"PEER:all or all\n", optarg);
				return EXIT_USAGE;
			}
			script = true;
			break;
		case OPT_WAIT:
			if (ivshmem_parse_uint(optarg, 1u << 30, &v) < 0 || v == 0) {
				fprintf(stderr, "ivshmem-client: --wait: '%s' is not a count >= 1\n",
					optarg);
				return EXIT_USAGE;
			}
			wait_n = (int)v;
			script = true;
			break;
		case OPT_VECTOR:
			if (ivshmem_parse_uint(optarg, 65535, &v) < 0) {
				fprintf(stderr, "ivshmem-client: --vector: '%s' is not a vector\n",
					optarg);
				return EXIT_USAGE;
			}
			vector = (int)v;
			break;
		case OPT_WAIT_PEERS:
			if (ivshmem_parse_uint(optarg, 65535, &v) < 0) {
				fprintf(stderr, "ivshmem-client: --wait-peers: '%s' is not a count\n",
					optarg);
				return EXIT_USAGE;
			}
			want_peers = (int)v;
			script = true;
			break;
		case OPT_TIMEOUT:
			if (strcmp(optarg, "-1") == 0) {
				timeout = -1;
			} else if (ivshmem_parse_uint(optarg, 1u << 30, &v) < 0) {
				fprintf(stderr, "ivshmem-client: --timeout: '%s' is not milliseconds\n",
					optarg);
				return EXIT_USAGE;
			} else {
				timeout = (int)v;
			}
			break;
		case OPT_VERSION:
			printf("ivshmem-client %s\n", IVSHMEM_VERSION);
			return EXIT_OK;
		default:
			fprintf(stderr, "Try 'ivshmem-client --help'.\n");
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ivshmem-client: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	ret = ivshmem_open(&r, sock, &opts);
	if (ret < 0) {
		fprintf(stderr, "ivshmem-client: %s\n", ivshmem_errmsg());
		return ret == -ECONNREFUSED || ret == -ENOENT ? EXIT_NODEV : EXIT_FAIL;
	}
	if (vector >= 0 && (unsigned int)vector >= ivshmem_vectors(r)) {
		fprintf(stderr, "ivshmem-client: --vector %d: we have %u vectors\n", vector,
			ivshmem_vectors(r));
		ivshmem_close(r);
		return EXIT_USAGE;
	}
	if (!script) {
		ret = interactive(r, verbose);
		ivshmem_close(r);
		return ret;
	}
	ret = EXIT_OK;
	if (want_peers >= 0) {
		int err = wait_peers(r, want_peers, timeout);

		if (err < 0) {
			fprintf(stderr, "ivshmem-client: %s\n", err == -ETIMEDOUT ?
				"timed out waiting for peers" : ivshmem_errmsg());
			ivshmem_close(r);
			return err == -ETIMEDOUT ? EXIT_TIMEOUT : EXIT_FAIL;
		}
	}
	if (list)
		print_list(r);
	for (int i = 0; i < nnotify && ret == EXIT_OK; i++) {
		if (do_notify(r, &notify[i]) < 0) {
			fprintf(stderr, "ivshmem-client: notify: %s\n", ivshmem_errmsg());
			ret = EXIT_FAIL;
		}
	}
	if (wait_n && ret == EXIT_OK) {
		int err = wait_interrupts(r, vector, wait_n, timeout);

		if (err == -ETIMEDOUT)
			ret = EXIT_TIMEOUT;
		else if (err < 0)
			ret = EXIT_FAIL;
	}
	ivshmem_close(r);
	return ret;
}
