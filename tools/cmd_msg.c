// SPDX-License-Identifier: MIT
/*
 * Messaging subcommands of `ivshmem`: format, send, recv.
 *
 * send and recv are pipe-friendly: stdin goes into a channel, a channel goes
 * to stdout, with timeouts and the shared exit codes, so scripts (and the
 * demo) can talk between host processes and guests:
 *     ivshmem format --size 16M --name demo --channel ctl /dev/shm/demo
 *     echo hello | ivshmem send /dev/shm/demo ctl      # in one place
 *     ivshmem recv --count 1 /dev/shm/demo ctl        # in another
 */
#include "commands.h"

#include "ivshmem/channel.h"
#include "ivshmem/layout.h"
#include "ivshmem/region.h"
#include "ivshmem/util.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SECTIONS 60

struct msg_opts {
	const char *backend;
	const char *name;
	uint64_t size;
	uint64_t ring_size;
	long timeout_ms;	/* -1: forever */
	long linger_ms;		/* -2: same as timeout */
	long count;		/* recv: stop after this many messages; -1: until EOF */
	unsigned int vector;
	bool lines;
	bool force;
	bool stats;
	int nchannels, nraw;
	const char *channels[MAX_SECTIONS];
	const char *raws[MAX_SECTIONS];
};

enum { O_BACKEND = 0x100, O_NAME, O_SIZE, O_RING, O_TIMEOUT, O_LINGER, O_COUNT, O_VECTOR,
       O_LINES, O_FORCE, O_CHANNEL, O_RAW, O_STATS };

static int exit_code_for(int err)
{
	switch (err) {
	case -ENODEV:
	case -ENOENT:
	case -ENXIO:
		return EXIT_NODEV;
	case -ETIMEDOUT:
	case -EAGAIN:
		return EXIT_TIMEOUT;
	default:
		return EXIT_FAIL;
	}
}

static int parse(const struct ivshmem_cmd *cmd, int argc, char **argv, struct msg_opts *o)
{
	static const struct option longopts[] = {
		{ "backend", required_argument, NULL, O_BACKEND },
		{ "name", required_argument, NULL, O_NAME },
		{ "size", required_argument, NULL, O_SIZE },
		{ "ring-size", required_argument, NULL, O_RING },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "linger", required_argument, NULL, O_LINGER },
		{ "count", required_argument, NULL, O_COUNT },
		{ "vector", required_argument, NULL, O_VECTOR },
		{ "lines", no_argument, NULL, O_LINES },
		{ "force", no_argument, NULL, O_FORCE },
		{ "channel", required_argument, NULL, O_CHANNEL },
		{ "raw", required_argument, NULL, O_RAW },
		{ "stats", no_argument, NULL, O_STATS },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->timeout_ms = -1;
	o->linger_ms = -2;
	o->count = -1;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "b:t:n:c:", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			o->backend = optarg;
			break;
		case O_BACKEND:
			o->backend = optarg;
			break;
		case O_NAME:
			o->name = optarg;
			break;
		case O_SIZE:
			if (ivshmem_parse_size(optarg, &o->size) < 0)
				return cmd_error(cmd, EXIT_USAGE, "--size: %s", ivshmem_errmsg());
			break;
		case O_RING:
			if (ivshmem_parse_size(optarg, &o->ring_size) < 0)
				return cmd_error(cmd, EXIT_USAGE, "--ring-size: %s", ivshmem_errmsg());
			break;
		case 't':
		case O_TIMEOUT:
		case O_LINGER:
			if (strcmp(optarg, "-1") == 0) {
				v = (uint64_t)-1;
			} else if (ivshmem_parse_uint(optarg, INT32_MAX, &v) < 0) {
				return cmd_error(cmd, EXIT_USAGE, "%s: '%s' is not a number of ms (or -1)",
						 c == O_LINGER ? "--linger" : "--timeout", optarg);
			}
			if (c == O_LINGER)
				o->linger_ms = (long)(int64_t)v;
			else
				o->timeout_ms = (long)(int64_t)v;
			break;
		case 'n':
		case O_COUNT:
			if (ivshmem_parse_uint(optarg, INT32_MAX, &v) < 0)
				return cmd_error(cmd, EXIT_USAGE, "--count: '%s' is not a number", optarg);
			o->count = (long)v;
			break;
		case O_VECTOR:
			if (ivshmem_parse_uint(optarg, 65535, &v) < 0)
				return cmd_error(cmd, EXIT_USAGE, "--vector: '%s' is not 0..65535", optarg);
			o->vector = (unsigned int)v;
			break;
		case O_LINES:
			o->lines = true;
			break;
		case O_FORCE:
			o->force = true;
			break;
		case O_STATS:
			o->stats = true;
			break;
		case 'c':
		case O_CHANNEL:
			if (o->nchannels + o->nraw >= MAX_SECTIONS)
				return cmd_error(cmd, EXIT_USAGE, "at most %d sections", MAX_SECTIONS);
			o->channels[o->nchannels++] = optarg;
			break;
		case O_RAW:
			if (o->nchannels + o->nraw >= MAX_SECTIONS)
				return cmd_error(cmd, EXIT_USAGE, "at most %d sections", MAX_SECTIONS);
			o->raws[o->nraw++] = optarg;
			break;
		default:
			return cmd_error(cmd, EXIT_USAGE, "unknown or incomplete option '%s' (see --help)",
					 argv[optind - 1]);
		}
	}
	return EXIT_OK;
}

static int open_target(const struct ivshmem_cmd *cmd, const char *target, const struct msg_opts *o,
		       bool create, struct ivshmem_region **r)
{
	struct ivshmem_open_opts oo = { 0 };
	int ret;

	if (o->backend && ivshmem_backend_parse(o->backend, &oo.backend) < 0)
		return cmd_error(cmd, EXIT_USAGE, "%s", ivshmem_errmsg());
	if (create) {
		oo.flags |= IVSHMEM_OPEN_CREATE;
		oo.size = o->size;
	}
	ret = ivshmem_open(r, target, &oo);
	if (ret < 0)
		return cmd_error(cmd, exit_code_for(ret), "%s", ivshmem_errmsg());
	return EXIT_OK;
}

/* ---- format ----------------------------------------------------------------------------- */

static int split_size(const struct ivshmem_cmd *cmd, const char *spec, char *name, size_t len,
		      uint64_t *size, uint64_t dflt)
{
	const char *colon = strchr(spec, ':');
	size_t n = colon ? (size_t)(colon - spec) : strlen(spec);

	if (n == 0 || n >= len)
		return cmd_error(cmd, EXIT_USAGE, "'%s': the name must be 1 to %zu bytes", spec,
				 len - 1);
	memcpy(name, spec, n);
	name[n] = '\0';
	*size = dflt;
	if (colon && ivshmem_parse_size(colon + 1, size) < 0)
		return cmd_error(cmd, EXIT_USAGE, "'%s': %s", spec, ivshmem_errmsg());
	return EXIT_OK;
}

static const struct ivshmem_cmd *self(const char *name);

static int run_format(int argc, char **argv)
{
	const struct ivshmem_cmd *cmd = self("format");
	struct ivshmem_region *r;
	struct msg_opts o;
	char name[IVSHMEM_SECTION_NAME_LEN];
	int ret;

	if (parse(cmd, argc, argv, &o) != EXIT_OK)
		return EXIT_USAGE;
	if (optind != argc - 1)
		return cmd_error(cmd, EXIT_USAGE, "expected one DEV (see --help)");
	ret = open_target(cmd, argv[optind], &o, o.size > 0, &r);
	if (ret != EXIT_OK)
		return ret;
	ret = ivshmem_layout_name(r, NULL, 0);
	if (ret != 0 && !o.force) {
		ivshmem_close(r);
		return cmd_error(cmd, EXIT_FAIL, "%s already has a %s layout; --force replaces it "
				 "(only while no one uses the region)", argv[optind],
				 ret > 0 ? "valid" : "corrupt");
	}
	if (ivshmem_layout_format(r, o.name) < 0) {
		ret = cmd_error(cmd, EXIT_FAIL, "%s", ivshmem_errmsg());
		goto out;
	}
	for (int i = 0; i < o.nchannels; i++) {
		struct ivshmem_channel_opts co = { .flags = IVSHMEM_CHANNEL_CREATE };
		struct ivshmem_channel *ch;
		uint64_t ring;

		if (split_size(cmd, o.channels[i], name, sizeof(name), &ring,
			       o.ring_size ? o.ring_size : 65536) != EXIT_OK) {
			ret = EXIT_USAGE;
			goto out;
		}
		co.ring_size = ring;
		co.heartbeat_ms = -1;
		/* Create by opening and closing: the channel is left fresh (both slots reusable). */
		if (ivshmem_channel_open(&ch, r, name, &co) < 0) {
			ret = cmd_error(cmd, EXIT_FAIL, "channel %s: %s", name, ivshmem_errmsg());
			goto out;
		}
		ivshmem_channel_close(ch, 0);
	}
	for (int i = 0; i < o.nraw; i++) {
		struct ivshmem_section s;
		uint64_t size;

		if (split_size(cmd, o.raws[i], name, sizeof(name), &size, 4096) != EXIT_OK) {
			ret = EXIT_USAGE;
			goto out;
		}
		if (ivshmem_layout_add(r, name, IVSHMEM_SECTION_RAW, size, &s) < 0) {
			ret = cmd_error(cmd, EXIT_FAIL, "raw %s: %s", name, ivshmem_errmsg());
			goto out;
		}
	}
	ivshmem_layout_print(r, stdout);
	ret = EXIT_OK;
out:
	ivshmem_close(r);
	return ret;
}

/* ---- send / recv ------------------------------------------------------------------------ */

static int open_channel(const struct ivshmem_cmd *cmd, int argc, char **argv,
			struct msg_opts *o, struct ivshmem_region **r, struct ivshmem_channel **ch)
{
	struct ivshmem_channel_opts co = { .flags = IVSHMEM_CHANNEL_CREATE };
	int ret;

	if (argc - optind < 2)
		return cmd_error(cmd, EXIT_USAGE, "expected DEV CHANNEL (see --help)");
	ret = open_target(cmd, argv[optind], o, false, r);
	if (ret != EXIT_OK)
		return ret;
	co.ring_size = o->ring_size;
	co.vector = o->vector;
	co.open_timeout_ms = o->timeout_ms < 0 ? 30000 : (int)o->timeout_ms;
	ret = ivshmem_channel_open(ch, *r, argv[optind + 1], &co);
	if (ret < 0) {
		ret = cmd_error(cmd, exit_code_for(ret == -EBUSY ? -ETIMEDOUT : ret), "%s",
				ivshmem_errmsg());
		ivshmem_close(*r);
		return ret;
	}
	return EXIT_OK;
}

/* --stats: one line on stderr, for scripts and the VM tests. */
static void print_stats(const struct ivshmem_cmd *cmd, struct ivshmem_channel *ch)
{
	struct ivshmem_channel_stats st;

	ivshmem_channel_stats(ch, &st);
	fprintf(stderr, "ivshmem %s: stats: sent %" PRIu64 " received %" PRIu64 " doorbells %" PRIu64
		" sleeps %" PRIu64 " doorbell-wakeups %" PRIu64 " state %s\n", cmd->name, st.sent,
		st.received, st.doorbells, st.sleeps, st.doorbell_wakeups,
		ivshmem_channel_state_name(ivshmem_channel_state(ch)));
}

static int send_one(const struct ivshmem_cmd *cmd, struct ivshmem_channel *ch, const void *buf,
		    size_t len, long timeout_ms)
{
	int ret = ivshmem_channel_send(ch, buf, len, (int)timeout_ms);

	if (ret < 0)
		return cmd_error(cmd, exit_code_for(ret), "%s", ivshmem_errmsg());
	return EXIT_OK;
}

static int run_send(int argc, char **argv)
{
	const struct ivshmem_cmd *cmd = self("send");
	struct ivshmem_region *r;
	struct ivshmem_channel *ch;
	struct msg_opts o;
	size_t max;
	char *buf = NULL;
	int ret;

	if (parse(cmd, argc, argv, &o) != EXIT_OK)
		return EXIT_USAGE;
	ret = open_channel(cmd, argc, argv, &o, &r, &ch);
	if (ret != EXIT_OK)
		return ret;
	max = ivshmem_channel_max_msg(ch);
	if (argc - optind > 2) {
		/* Each argument is one message. */
		for (int i = optind + 2; i < argc && ret == EXIT_OK; i++) {
			size_t len = strlen(argv[i]);

			if (len > max)
				ret = cmd_error(cmd, EXIT_FAIL, "message %d is %zu bytes; the channel "
						"carries at most %zu", i - optind - 1, len, max);
			else
				ret = send_one(cmd, ch, argv[i], len, o.timeout_ms);
		}
	} else if (o.lines) {
		/* One message per line, newline included; longer lines are cut into pieces. */
		size_t cap = 0;
		ssize_t n;

		while (ret == EXIT_OK && (n = getline(&buf, &cap, stdin)) > 0)
			for (size_t off = 0; ret == EXIT_OK && off < (size_t)n; off += max)
				ret = send_one(cmd, ch, buf + off,
					       (size_t)n - off < max ? (size_t)n - off : max,
					       o.timeout_ms);
	} else {
		/* A byte stream: whatever read() returns, in messages of at most max bytes. */
		buf = malloc(max ? max : 1);
		while (ret == EXIT_OK && buf) {
			ssize_t n = read(STDIN_FILENO, buf, max);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				ret = cmd_error(cmd, EXIT_FAIL, "reading stdin: %s", strerror(errno));
				break;
			}
			if (n == 0)
				break;
			ret = send_one(cmd, ch, buf, (size_t)n, o.timeout_ms);
		}
	}
	free(buf);
	{
		long linger = o.linger_ms == -2 ? o.timeout_ms : o.linger_ms;
		int fret = ivshmem_channel_flush(ch, (int)linger);

		if (fret < 0 && ret == EXIT_OK)
			ret = cmd_error(cmd, exit_code_for(fret), "%s", ivshmem_errmsg());
		if (o.stats)
			print_stats(cmd, ch);
		ivshmem_channel_close(ch, 0);
	}
	ivshmem_close(r);
	return ret;
}

static int run_recv(int argc, char **argv)
{
	const struct ivshmem_cmd *cmd = self("recv");
	struct ivshmem_region *r;
	struct ivshmem_channel *ch;
	struct msg_opts o;
	char *buf;
	size_t max;
	long got = 0;
	int ret;

	if (parse(cmd, argc, argv, &o) != EXIT_OK)
		return EXIT_USAGE;
	if (argc - optind != 2)
		return cmd_error(cmd, EXIT_USAGE, "expected DEV CHANNEL (see --help)");
	ret = open_channel(cmd, argc, argv, &o, &r, &ch);
	if (ret != EXIT_OK)
		return ret;
	max = ivshmem_channel_max_msg(ch);
	buf = malloc(max + 1);
	ret = buf ? EXIT_OK : cmd_error(cmd, EXIT_FAIL, "out of memory");
	while (ret == EXIT_OK && (o.count < 0 || got < o.count)) {
		ssize_t n = ivshmem_channel_recv(ch, buf, max, (int)o.timeout_ms);

		if (n == -EPIPE)
			break;	/* the sender closed and everything arrived: end of stream */
		if (n < 0) {
			ret = cmd_error(cmd, exit_code_for((int)n), "%s", ivshmem_errmsg());
			break;
		}
		got++;
		if (o.lines && (n == 0 || buf[n - 1] != '\n'))
			buf[n++] = '\n';
		if (cmd_write_all(STDOUT_FILENO, buf, (size_t)n) < 0)
			ret = cmd_error(cmd, EXIT_FAIL, "writing stdout: %s", strerror(errno));
	}
	free(buf);
	if (o.stats)
		print_stats(cmd, ch);
	ivshmem_channel_close(ch, 0);
	ivshmem_close(r);
	return ret;
}

const struct ivshmem_cmd ivshmem_msg_cmds[] = {
	{
		.name = "format",
		.usage = "[--size SIZE] [--name NAME] [--channel NAME[:RING]]... [--raw NAME:SIZE]... "
			 "[--force] DEV",
		.summary = "write a layout (header, name, channels) into a region",
		.help =
		"Writes the region header (docs/layout.md) and creates the named channels and\n"
		"raw sections. Refuses a region that already has a layout unless --force:\n"
		"formatting destroys what peers are using.\n"
		"\n"
		"  --size SIZE         create DEV as a file of SIZE bytes if it does not exist\n"
		"  --name NAME         region name (up to 63 bytes; shown by 'ivshmem list')\n"
		"  -c, --channel NAME[:RING]  add a channel; RING bytes per direction, a power\n"
		"                      of two (default 64K, or --ring-size)\n"
		"  --ring-size SIZE    default ring size for --channel\n"
		"  --raw NAME:SIZE     add a raw section for application data\n"
		"  --force             replace an existing layout\n"
		"  -b, --backend B     auto, file, server, driver, sysfs, vfio, devmem\n"
		"\n"
		"Example: ivshmem format --size 16M --name demo --channel ctl /dev/shm/demo\n",
		.run = run_format,
	},
	{
		.name = "send",
		.usage = "[--timeout MS] [--linger MS] [--lines] DEV CHANNEL [MESSAGE...]",
		.summary = "send messages (arguments, lines or stdin) into a channel",
		.help =
		"Opens CHANNEL (creating it if missing) and sends each MESSAGE argument as one\n"
		"message, or, without arguments, stdin: as a byte stream in messages of at\n"
		"most the channel's maximum, or one message per line with --lines. Messages\n"
		"sent before the receiver opens are buffered (up to the ring size).\n"
		"On exit it waits until the receiver has read everything (--linger).\n"
		"\n"
		"  -t, --timeout MS    give up a blocked send after MS (default: wait forever)\n"
		"  --linger MS         wait at most MS for delivery at the end (default: --timeout)\n"
		"  --lines             one message per input line\n"
		"  --stats             print counters (doorbells, sleeps) to stderr at the end\n"
		"  --ring-size SIZE    ring size if the channel is created (default 64K)\n"
		"  --vector N          own interrupt vector to sleep on (default 0)\n"
		"  -b, --backend B     region backend\n"
		"\n"
		"Exit: 0 delivered, 1 failed (peer closed or died), 2 usage, 3 no device,\n"
		"4 timed out (nobody read it in time).\n",
		.run = run_send,
	},
	{
		.name = "recv",
		.usage = "[--timeout MS] [--count N] [--lines] DEV CHANNEL",
		.summary = "write messages from a channel to stdout",
		.help =
		"Opens CHANNEL (creating it if missing) and writes every message to stdout\n"
		"until the sender closes the channel (end of stream) or --count messages.\n"
		"\n"
		"  -t, --timeout MS    give up when no message comes for MS (default: forever)\n"
		"  -n, --count N       stop after N messages\n"
		"  --lines             end each message with a newline if it lacks one\n"
		"  --stats             print counters (doorbells, sleeps) to stderr at the end\n"
		"  --vector N          own interrupt vector to sleep on (default 0)\n"
		"  -b, --backend B     region backend\n"
		"\n"
		"Exit: 0 end of stream or count reached, 1 failed (peer died, corrupt ring),\n"
		"2 usage, 3 no device, 4 timed out.\n",
		.run = run_recv,
	},
	{ 0 },
};

static const struct ivshmem_cmd *self(const char *name)
{
	for (const struct ivshmem_cmd *c = ivshmem_msg_cmds; c->name; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}
