// SPDX-License-Identifier: MIT
/*
 * ivshmem-client: a host peer of ivshmem-server. Interactive, it is QEMU's
 * contrib/ivshmem-client: the same command lines (help, dump, int PEER VECTOR,
 * int PEER all, int all, separated by newlines or ';'), and it reconnects every
 * second while the server is away. Script mode (--list, --notify, --wait,
 * --wait-peers) connects once and exits with a status that says what happened.
 */
#define _GNU_SOURCE
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
#include <time.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/tmp/ivshmem_socket"	/* QEMU's client and server default */

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_NODEV = 3, EXIT_TIMEOUT = 4 };

enum { OPT_LIST = 256, OPT_NOTIFY, OPT_WAIT, OPT_VECTOR, OPT_TIMEOUT, OPT_WAIT_PEERS,
       OPT_VERSION, OPT_NO_RECONNECT, OPT_JSON };

static const struct option long_opts[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "socket", required_argument, NULL, 'S' },
	{ "list", no_argument, NULL, OPT_LIST },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "notify", required_argument, NULL, OPT_NOTIFY },
	{ "wait", required_argument, NULL, OPT_WAIT },
	{ "vector", required_argument, NULL, OPT_VECTOR },
	{ "wait-peers", required_argument, NULL, OPT_WAIT_PEERS },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "no-reconnect", no_argument, NULL, OPT_NO_RECONNECT },
	{ 0 },
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: ivshmem-client [-S SOCKET] [-v] [--no-reconnect]   interactive, like QEMU's client\n"
"       ivshmem-client [-S SOCKET] [--wait-peers N] [--list [--json]] [--notify SPEC]...\n"
"                      [--wait N [--vector V]] [--timeout MS]\n"
"A host peer of ivshmem-server: rings other peers' doorbells and receives its own.\n"
"\n"
"  -S, --socket PATH    server socket (default " DEFAULT_SOCKET ")\n"
"  -v, --verbose        print joins, leaves and interrupts as they come\n"
"  -h, --help           show this help\n"
"      --version        print the version\n"
"      --no-reconnect   interactive: exit when the server is missing (3) or goes\n"
"                       away (1) instead of retrying every second like QEMU's client\n"
"Script mode (any of these: no prompt; run in this order, then exit; one connection,\n"
"never a reconnection, which would be a new peer ID with new eventfds):\n"
"      --wait-peers N   first wait until at least N other peers are present\n"
"      --list           print 'id ID', 'vectors N', 'size BYTES', then 'peer ID VECTORS'\n"
"                       for every other peer\n"
"      --json           with --list: one JSON object instead: {\"id\", \"vectors\", \"size\",\n"
"                       \"peers\": [{\"id\", \"vectors\"}]}\n"
"      --notify SPEC    ring PEER:VECTOR, PEER:all or all (every vector of every other\n"
"                       peer); may be repeated\n"
"      --wait N         wait until N interrupts arrived on own vectors (any vector, or\n"
"                       only --vector V); prints 'vector V count C' per wake-up\n"
"      --timeout MS     bound for --wait and --wait-peers (default 10000; -1: forever)\n"
"Interactive commands (QEMU's, separated by newlines or ';'): help, dump,\n"
"  int PEER VECTOR, int PEER all, int all; and quit. End of input also quits.\n"
"Exit status: 0 ok, 1 failure, 2 bad usage, 3 cannot connect, 4 timeout.\n");
}

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("ivshmem-client: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'ivshmem-client --help'.\n", stderr);
	return EXIT_USAGE;
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
 * Wait until @want interrupts arrived on own vector @vector (-1: any), printing
 * each wake-up. An eventfd read returns a 64-bit count (up to 2^64 - 2), so the
 * sum is kept in 64 bits and saturates. The deadline is checked on every pass,
 * whatever poll() says. 0, -ETIMEDOUT, or a negative errno.
 */
static int wait_interrupts(struct ivshmem_region *r, int vector, uint64_t want, int timeout_ms)
{
	unsigned int nv = ivshmem_vectors(r);
	unsigned int first = vector < 0 ? 0 : (unsigned int)vector;
	unsigned int n = vector < 0 ? nv : 1;
	int64_t deadline = now_ms() + timeout_ms;
	struct pollfd pfd[256];
	uint64_t got = 0;

	if (n > 256)
		n = 256;
	for (unsigned int i = 0; i < n; i++)
		pfd[i] = (struct pollfd){ .fd = ivshmem_event_fd(r, first + i), .events = POLLIN };
	while (got < want) {
		int left = -1, ret;

		if (timeout_ms >= 0 && (left = (int)(deadline - now_ms())) <= 0) {
			fprintf(stderr, "ivshmem-client: timed out after %llu of %llu interrupts\n",
				(unsigned long long)got, (unsigned long long)want);
			return -ETIMEDOUT;
		}
		ret = poll(pfd, n, left);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return -errno;
		for (unsigned int i = 0; i < n && ret > 0; i++) {
			uint64_t count;

			/* Not read(): the eventfd's O_NONBLOCK is shared with every peer. */
			if (!pfd[i].revents || ivshmem_wait(r, (int)(first + i), 0, &count) != 1)
				continue;
			printf("vector %u count %llu\n", first + i, (unsigned long long)count);
			got = count > UINT64_MAX - got ? UINT64_MAX : got + count;
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

static void print_list(struct ivshmem_region *r, bool json)
{
	static uint16_t ids[65536];
	int n = ivshmem_peer_list(r, ids, 65536);

	if (json) {
		printf("{\"id\": %d, \"vectors\": %u, \"size\": %llu, \"peers\": [",
		       ivshmem_own_id(r), ivshmem_vectors(r), (unsigned long long)ivshmem_size(r));
		for (int i = 0; i < n; i++)
			printf("%s{\"id\": %u, \"vectors\": %d}", i ? ", " : "", ids[i],
			       ivshmem_peer_vectors(r, ids[i]));
		printf("]}\n");
		fflush(stdout);
		return;
	}
	printf("id %d\nvectors %u\nsize %llu\n", ivshmem_own_id(r), ivshmem_vectors(r),
	       (unsigned long long)ivshmem_size(r));
	for (int i = 0; i < n; i++)
		printf("peer %u %d\n", ids[i], ivshmem_peer_vectors(r, ids[i]));
	fflush(stdout);
}

/*
 * Interactive mode, command for command what QEMU's contrib/ivshmem-client accepts:
 * commands separated by newlines, carriage returns or ';' ("int 1 0;int 1 1"), read
 * exactly as QEMU reads them:
 *   help, ?              the command list
 *   dump                 own ID, vectors and every peer
 *   int all              every vector of every other peer
 *   int PEER VECTOR      one vector ("int" then two decimal integers, blanks optional)
 *   int PEER [all]       every vector of PEER: like QEMU, anything after PEER that is
 *                        not a second number means all
 * plus "quit". Text after a complete command is ignored, as in QEMU.
 */
#define CMD_MAX 256			/* longest command kept; longer ones are refused */

struct console {
	char buf[CMD_MAX];
	size_t len;
	bool overlong;			/* dropping the rest of a too-long command */
};

enum session_end { SESSION_LOST, SESSION_QUIT };

/* Skip blanks, then a decimal integer with an optional sign, as scanf's %d reads it. */
static const char *scan_int(const char *s, long *out)
{
	char *end;

	while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
		s++;
	if (!(*s >= '0' && *s <= '9') && !((*s == '-' || *s == '+') && s[1] >= '0' && s[1] <= '9'))
		return NULL;
	errno = 0;
	*out = strtol(s, &end, 10);
	if (errno == ERANGE)
		*out = -1;		/* no such peer or vector, like any other out-of-range one */
	return end;
}

static void print_help(void)
{
	printf("dump: dump peers (including us)\n"
	       "int PEER VECTOR: notify one vector of a peer\n"
	       "int PEER all: notify all vectors of a peer\n"
	       "int all: notify all vectors of all peers (excepting us)\n"
	       "quit: leave\n"
	       "Commands may be separated by ';'.\n");
}

/* "int PEER VECTOR" or, with @all, "int PEER all"; says so when PEER is unknown. */
static void int_command(struct ivshmem_region *r, long peer, bool all, long vector)
{
	int ret;

	if (peer < 0 || peer > 65535 || ivshmem_peer_vectors(r, (uint16_t)peer) < 0) {
		printf("cannot find peer_id = %ld\n", peer);
		return;
	}
	if (!all && (vector < 0 || vector > 65535)) {
		printf("invalid vector %ld\n", vector);
		return;
	}
	ret = ring(r, (uint16_t)peer, all ? -1 : (int)vector);
	if (ret < 0)
		printf("failed: %s\n", ivshmem_errmsg());
}

/* One command; false for "quit". @r is NULL while disconnected. */
static bool console_command(struct ivshmem_region *r, const char *cmd)
{
	bool is_dump = strcmp(cmd, "dump") == 0, int_all = strcmp(cmd, "int all") == 0;
	const char *rest = NULL;
	long peer = 0, vector = 0;

	if (strcmp(cmd, "quit") == 0)
		return false;
	if (!*cmd)
		return true;
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "?") == 0) {
		print_help();
		return true;
	}
	if (!int_all && strncmp(cmd, "int", 3) == 0)
		rest = scan_int(cmd + 3, &peer);
	if (!is_dump && !int_all && !rest) {
		printf("invalid command, type help\n");
		return true;
	}
	if (!r) {
		printf("not connected to the server (retrying every second)\n");
		return true;
	}
	if (is_dump) {
		dump(r);
	} else if (int_all) {
		if (ring_all(r) < 0)
			printf("failed: %s\n", ivshmem_errmsg());
	} else {
		bool all = !scan_int(rest, &vector);	/* QEMU: no second number means all */

		int_command(r, peer, all, vector);
	}
	return true;
}

/*
 * Read what stdin has and run every complete command. Returns 1 to go on, 0 at
 * "quit" or end of input (a last command without a newline still runs).
 */
static int console_input(struct console *c, struct ivshmem_region *r)
{
	char chunk[512];
	ssize_t n = read(0, chunk, sizeof(chunk));
	bool go_on = true;

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : 0;
	for (ssize_t i = 0; i < n && go_on; i++) {
		char ch = chunk[i];

		if (ch != '\n' && ch != '\r' && ch != ';') {
			if (c->len < sizeof(c->buf) - 1)
				c->buf[c->len++] = ch;
			else
				c->overlong = true;
			continue;
		}
		c->buf[c->len] = '\0';
		if (c->overlong)
			printf("invalid command (longer than %d bytes), type help\n", CMD_MAX - 1);
		else
			go_on = console_command(r, c->buf);
		c->len = 0;
		c->overlong = false;
		if (ch == '\n' && go_on)
			printf("cmd> ");
	}
	if (n == 0 && go_on && c->len) {
		c->buf[c->len] = '\0';
		console_command(r, c->buf);
	}
	fflush(stdout);
	return n > 0 && go_on;
}

/* Events on own vectors, printed as they come. */
static void print_interrupts(const struct pollfd *pfd, unsigned int nv)
{
	for (unsigned int v = 0; v < nv; v++) {
		uint64_t count;

		if (pfd[v].revents && read(pfd[v].fd, &count, 8) == 8)
			printf("received event on vector %u (count %llu)\n", v,
			       (unsigned long long)count);
	}
}

/* Serve one connection until the server goes away, "quit" or end of input. */
static enum session_end session(struct ivshmem_region *r, struct console *c, bool verbose)
{
	unsigned int nv = ivshmem_vectors(r);
	struct pollfd *pfd = calloc(nv + 2, sizeof(*pfd));
	enum session_end end = SESSION_QUIT;

	if (!pfd) {
		fprintf(stderr, "ivshmem-client: out of memory\n");
		return SESSION_QUIT;
	}
	for (;;) {
		pfd[0] = (struct pollfd){ .fd = 0, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = ivshmem_control_fd(r), .events = POLLIN };
		for (unsigned int v = 0; v < nv; v++)
			pfd[2 + v] = (struct pollfd){ .fd = ivshmem_event_fd(r, v), .events = POLLIN };
		if (poll(pfd, nv + 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "ivshmem-client: poll: %s\n", strerror(errno));
			break;
		}
		if (pfd[1].revents && drain_peer_events(r, verbose) < 0) {
			fprintf(stderr, "ivshmem-client: %s\n", ivshmem_errmsg());
			end = SESSION_LOST;
			break;
		}
		print_interrupts(pfd + 2, nv);
		if (pfd[0].revents && !console_input(c, r))
			break;
		fflush(stdout);
	}
	free(pfd);
	return end;
}

/*
 * Wait up to a second for the next connection attempt, still answering commands
 * (help works, the others say we are not connected). False at "quit" or end of input.
 */
static bool idle_second(struct console *c)
{
	int64_t until = now_ms() + 1000;
	int left;

	while ((left = (int)(until - now_ms())) > 0) {
		struct pollfd pfd = { .fd = 0, .events = POLLIN };
		int ret = poll(&pfd, 1, left);

		if (ret < 0 && errno != EINTR)
			return false;
		if (ret > 0 && !console_input(c, NULL))
			return false;
	}
	return true;
}

/*
 * Like QEMU's client: connect, serve, and when the server is missing or goes away,
 * try again every second (unless @reconnect is false). Each connection is a new peer
 * with a new ID.
 */
static int interactive(const char *sock, bool verbose, bool reconnect)
{
	struct ivshmem_open_opts opts = { .backend = IVSHMEM_BACKEND_SERVER };
	struct console c = { .len = 0 };
	bool complained = false;

	print_help();
	printf("cmd> ");
	fflush(stdout);
	for (;;) {
		struct ivshmem_region *r;
		int ret = ivshmem_open(&r, sock, &opts);

		if (ret < 0) {
			if (!reconnect) {
				fprintf(stderr, "ivshmem-client: %s\n", ivshmem_errmsg());
				return ret == -ECONNREFUSED || ret == -ENOENT ? EXIT_NODEV : EXIT_FAIL;
			}
			if (!complained)
				fprintf(stderr, "ivshmem-client: %s; retrying every second\n",
					ivshmem_errmsg());
			complained = true;
			if (!idle_second(&c))
				return EXIT_OK;
			continue;
		}
		complained = false;
		printf("connected to %s as peer %d (%u vector%s)\n", sock, ivshmem_own_id(r),
		       ivshmem_vectors(r), ivshmem_vectors(r) == 1 ? "" : "s");
		fflush(stdout);
		enum session_end end = session(r, &c, verbose);

		ivshmem_close(r);
		if (end == SESSION_QUIT)
			return EXIT_OK;
		printf("disconnected from server\n");
		fflush(stdout);
		if (!reconnect)
			return EXIT_FAIL;
		if (!idle_second(&c))
			return EXIT_OK;
	}
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

struct client_args {
	const char *sock;
	bool verbose, list, json, script, reconnect;
	struct notify_spec notify[64];
	int nnotify;
	uint64_t wait_n;
	int vector, timeout, want_peers;
};

/* Parse the command line into @a; EXIT_OK to run, or the exit status to leave with. */
static int parse_args(int argc, char **argv, struct client_args *a)
{
	uint64_t v;
	int c;

	*a = (struct client_args){ .sock = DEFAULT_SOCKET, .reconnect = true, .vector = -1,
				   .timeout = 10000, .want_peers = -1 };
	while ((c = getopt_long(argc, argv, "hvS:", long_opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return -1;
		case 'v':
			a->verbose = true;
			break;
		case 'S':
			a->sock = optarg;
			break;
		case OPT_NO_RECONNECT:
			a->reconnect = false;
			break;
		case OPT_LIST:
			a->list = a->script = true;
			break;
		case OPT_JSON:
			a->json = true;
			break;
		case OPT_NOTIFY:
			if (a->nnotify == 64)
				return usage_error("at most 64 --notify");
			if (!parse_notify_spec(optarg, &a->notify[a->nnotify++]))
				return usage_error("--notify: '%s' is not PEER:VECTOR, PEER:all or all",
						   optarg);
			a->script = true;
			break;
		case OPT_WAIT:
			if (ivshmem_parse_uint(optarg, UINT64_MAX, &a->wait_n) < 0 || a->wait_n == 0)
				return usage_error("--wait: '%s' is not a count >= 1", optarg);
			a->script = true;
			break;
		case OPT_VECTOR:
			if (ivshmem_parse_uint(optarg, 65535, &v) < 0)
				return usage_error("--vector: '%s' is not a vector", optarg);
			a->vector = (int)v;
			break;
		case OPT_WAIT_PEERS:
			if (ivshmem_parse_uint(optarg, 65535, &v) < 0)
				return usage_error("--wait-peers: '%s' is not a count", optarg);
			a->want_peers = (int)v;
			a->script = true;
			break;
		case OPT_TIMEOUT:
			if (strcmp(optarg, "-1") == 0)
				a->timeout = -1;
			else if (ivshmem_parse_uint(optarg, 1u << 30, &v) < 0)
				return usage_error("--timeout: '%s' is not milliseconds", optarg);
			else
				a->timeout = (int)v;
			break;
		case OPT_VERSION:
			printf("ivshmem-client %s\n", IVSHMEM_VERSION);
			return -1;
		default:
			fprintf(stderr, "Try 'ivshmem-client --help'.\n");
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (a->json && !a->list)
		return usage_error("--json goes with --list");
	return EXIT_OK;
}

/* Script mode: one connection, the steps in a fixed order, no reconnection. */
static int run_script(const struct client_args *a)
{
	struct ivshmem_open_opts opts = { .backend = IVSHMEM_BACKEND_SERVER };
	struct ivshmem_region *r;
	int ret = ivshmem_open(&r, a->sock, &opts);

	if (ret < 0) {
		fprintf(stderr, "ivshmem-client: %s\n", ivshmem_errmsg());
		return ret == -ECONNREFUSED || ret == -ENOENT ? EXIT_NODEV : EXIT_FAIL;
	}
	if (a->vector >= 0 && (unsigned int)a->vector >= ivshmem_vectors(r)) {
		fprintf(stderr, "ivshmem-client: --vector %d: we have %u vectors\n", a->vector,
			ivshmem_vectors(r));
		ivshmem_close(r);
		return EXIT_USAGE;
	}
	ret = EXIT_OK;
	if (a->want_peers >= 0) {
		int err = wait_peers(r, a->want_peers, a->timeout);

		if (err < 0) {
			fprintf(stderr, "ivshmem-client: %s\n", err == -ETIMEDOUT ?
				"timed out waiting for peers" : ivshmem_errmsg());
			ret = err == -ETIMEDOUT ? EXIT_TIMEOUT : EXIT_FAIL;
		}
	}
	if (a->list && ret == EXIT_OK)
		print_list(r, a->json);
	for (int i = 0; i < a->nnotify && ret == EXIT_OK; i++) {
		if (do_notify(r, &a->notify[i]) < 0) {
			fprintf(stderr, "ivshmem-client: notify: %s\n", ivshmem_errmsg());
			ret = EXIT_FAIL;
		}
	}
	if (a->wait_n && ret == EXIT_OK) {
		int err = wait_interrupts(r, a->vector, a->wait_n, a->timeout);

		if (err == -ETIMEDOUT)
			ret = EXIT_TIMEOUT;
		else if (err < 0)
			ret = EXIT_FAIL;
	}
	ivshmem_close(r);
	return ret;
}

int main(int argc, char **argv)
{
	struct client_args a;
	int ret = parse_args(argc, argv, &a);

	if (ret < 0)
		return EXIT_OK;		/* --help, --version */
	if (ret != EXIT_OK)
		return ret;
	/* A peer's eventfd is whatever the server sent: never die writing to it. */
	signal(SIGPIPE, SIG_IGN);
	if (a.script)
		return run_script(&a);
	if (a.vector >= 0) {
		fprintf(stderr, "ivshmem-client: --vector only goes with --wait\n");
		return EXIT_USAGE;
	}
	return interactive(a.sock, a.verbose, a.reconnect);
}
