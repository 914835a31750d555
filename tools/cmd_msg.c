// SPDX-License-Identifier: MIT
/*
 * Messaging subcommands of `ivshmem`: format, send, recv.
 *
 * send and recv are pipe-friendly: stdin goes into a channel, a channel goes
 * to stdout, with timeouts and the shared exit codes, so scripts (and the
 * demo) can talk between host processes and guests. A stream is framed
 * (msg_stream.h) so recv can tell a cut-off one; signals close the channel:
 *     ivshmem format --size 16M --name demo --channel ctl /dev/shm/demo
 *     echo hello | ivshmem send /dev/shm/demo ctl      # in one place
 *     ivshmem recv --count 1 /dev/shm/demo ctl        # in another
 */
#include "commands.h"
#include "msg_stream.h"

#include "ivshmem/channel.h"
#include "ivshmem/layout.h"
#include "ivshmem/region.h"
#include "ivshmem/target.h"
#include "ivshmem/util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
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
	long linger_ms;		/* -2: default (--timeout while a receiver is connected, else 0) */
	long count;		/* recv: stop after this many messages; -1: until EOF */
	unsigned int vector;
	bool lines;
	bool force;
	bool stats;
	bool json;		/* --stats as one JSON object */
	bool progress;		/* bytes and rate on a terminal */
	const char *mode, *group, *owner;	/* format: a new file's permissions */
	int nchannels, nraw;
	const char *channels[MAX_SECTIONS];
	const char *raws[MAX_SECTIONS];
};

enum { O_BACKEND = 0x100, O_NAME, O_SIZE, O_RING, O_TIMEOUT, O_LINGER, O_COUNT, O_VECTOR,
       O_LINES, O_FORCE, O_CHANNEL, O_RAW, O_STATS, O_MODE, O_GROUP, O_OWNER, O_JSON, O_PROGRESS };

/* The one exit-code table (commands.h). */
static int exit_code_for(int err)
{
	return cmd_exit_code(err);
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
		{ "mode", required_argument, NULL, O_MODE },
		{ "group", required_argument, NULL, O_GROUP },
		{ "owner", required_argument, NULL, O_OWNER },
		{ "channel", required_argument, NULL, O_CHANNEL },
		{ "raw", required_argument, NULL, O_RAW },
		{ "stats", no_argument, NULL, O_STATS },
		{ "json", no_argument, NULL, O_JSON },
		{ "progress", no_argument, NULL, O_PROGRESS },
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
		case O_JSON:
			o->json = true;
			break;
		case O_PROGRESS:
			o->progress = true;
			break;
		case O_MODE:
			o->mode = optarg;
			break;
		case O_GROUP:
			o->group = optarg;
			break;
		case O_OWNER:
			o->owner = optarg;
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
			return cmd_bad_option(cmd, argc, argv, "b:t:n:c:", longopts);
		}
	}
	return EXIT_OK;
}

static int open_target(const struct ivshmem_cmd *cmd, const char *target, const struct msg_opts *o,
		       const struct ivshmem_open_opts *perms, struct ivshmem_region **r)
{
	struct ivshmem_open_opts oo = { 0 };
	int ret;

	if (perms) {	/* create a missing file of --size, with these permissions */
		oo = *perms;
		oo.flags |= IVSHMEM_OPEN_CREATE;
		oo.size = o->size;
	}
	if (o->backend && ivshmem_backend_parse(o->backend, &oo.backend) < 0)
		return cmd_error(cmd, EXIT_USAGE, "%s", ivshmem_errmsg());
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

/* Every --channel and --raw name once: a second section of the same name would be refused late. */
static int format_check_names(const struct ivshmem_cmd *cmd, const struct msg_opts *o)
{
	char a[IVSHMEM_SECTION_NAME_LEN], b[IVSHMEM_SECTION_NAME_LEN];
	const char *all[2 * MAX_SECTIONS];
	uint64_t size;
	int n = 0;

	for (int i = 0; i < o->nchannels; i++)
		all[n++] = o->channels[i];
	for (int i = 0; i < o->nraw; i++)
		all[n++] = o->raws[i];
	for (int i = 0; i < n; i++) {
		if (split_size(cmd, all[i], a, sizeof(a), &size, 4096) != EXIT_OK)
			return EXIT_USAGE;
		for (int k = 0; k < i; k++) {
			split_size(cmd, all[k], b, sizeof(b), &size, 4096);
			if (strcmp(a, b) == 0)
				return cmd_error(cmd, EXIT_USAGE, "section name '%s' is given twice", a);
		}
	}
	return EXIT_OK;
}

/*
 * A file DEV: remember whether this run creates it (so a failure removes it
 * again), and refuse a --size that would silently resize an existing file.
 * *@path is set only when the file does not exist yet.
 */
static int format_check_file(const struct ivshmem_cmd *cmd, const char *target,
			     const struct msg_opts *o, const char **created_path)
{
	struct ivshmem_open_opts oo = { 0 };
	struct ivshmem_target t;
	struct stat st;

	*created_path = NULL;
	if (o->backend && ivshmem_backend_parse(o->backend, &oo.backend) < 0)
		return cmd_error(cmd, EXIT_USAGE, "%s", ivshmem_errmsg());
	if (ivshmem_target_parse(target, oo.backend, &t) < 0 || t.kind != IVSHMEM_TARGET_FILE)
		return EXIT_OK;	/* not a file: open_target() reports any problem */
	if (stat(t.path, &st) < 0) {
		if (errno == ENOENT && o->size)
			*created_path = t.path;
		return EXIT_OK;
	}
	if (o->size && S_ISREG(st.st_mode) && (uint64_t)st.st_size != o->size)
		return cmd_error(cmd, EXIT_USAGE, "%s exists with %lld bytes; --size %" PRIu64
				 " would resize it (remove the file first, or leave out --size)",
				 t.path, (long long)st.st_size, o->size);
	return EXIT_OK;
}

/* The sections after the header: channels, then raw sections. */
static int format_sections(const struct ivshmem_cmd *cmd, struct ivshmem_region *r,
			   const struct msg_opts *o)
{
	char name[IVSHMEM_SECTION_NAME_LEN];

	for (int i = 0; i < o->nchannels; i++) {
		struct ivshmem_channel_opts co = { .flags = IVSHMEM_CHANNEL_CREATE };
		struct ivshmem_channel *ch;
		uint64_t ring;

		if (split_size(cmd, o->channels[i], name, sizeof(name), &ring,
			       o->ring_size ? o->ring_size : 65536) != EXIT_OK)
			return EXIT_USAGE;
		co.ring_size = ring;
		co.heartbeat_ms = -1;
		/* Create by opening and closing: the channel is left fresh (both slots reusable). */
		if (ivshmem_channel_open(&ch, r, name, &co) < 0)
			return cmd_error(cmd, EXIT_FAIL, "channel %s: %s", name, ivshmem_errmsg());
		ivshmem_channel_close(ch, 0);
	}
	for (int i = 0; i < o->nraw; i++) {
		struct ivshmem_section s;
		uint64_t size;

		if (split_size(cmd, o->raws[i], name, sizeof(name), &size, 4096) != EXIT_OK)
			return EXIT_USAGE;
		if (ivshmem_layout_add(r, name, IVSHMEM_SECTION_RAW, size, &s) < 0)
			return cmd_error(cmd, EXIT_FAIL, "raw %s: %s", name, ivshmem_errmsg());
	}
	return EXIT_OK;
}

/*
 * The owner, group and mode of a file that format creates. Without --group:
 * group kvm, the group that libvirt's QEMU (user libvirt-qemu, groups
 * libvirt-qemu and kvm) and ivshmem-server's units share, where it exists and
 * we may give files to it. Without --mode: 0660 with a group, else 0600.
 */
#define FORMAT_GROUP "kvm"

static bool may_give_to_group(gid_t gid)
{
	gid_t groups[256];
	int n;

	if (geteuid() == 0 || getegid() == gid)
		return true;
	n = getgroups(256, groups);
	for (int i = 0; i < n; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

/*
 * A group's or user's id by name. The statically linked build (the guests'
 * initramfs) cannot load glibc's NSS modules, so it looks up no names at all.
 */
static bool name_to_id(const char *name, bool group, unsigned int *id)
{
#ifdef IVSHMEM_STATIC
	(void)name;
	(void)group;
	(void)id;
	return false;
#else
	struct passwd *pw;
	struct group *gr;

	if (group && (gr = getgrnam(name))) {
		*id = gr->gr_gid;
		return true;
	}
	if (!group && (pw = getpwnam(name))) {
		*id = pw->pw_uid;
		return true;
	}
	return false;
#endif
}

/* A user or group by name or number. */
static int lookup_id(const struct ivshmem_cmd *cmd, const char *opt, const char *s, bool group,
		     unsigned int *id)
{
	uint64_t v;

	if (ivshmem_parse_uint(s, UINT32_MAX - 1, &v) == 0) {
		*id = (unsigned int)v;
		return EXIT_OK;
	}
	if (name_to_id(s, group, id))
		return EXIT_OK;
	return cmd_error(cmd, EXIT_USAGE, "%s: no %s '%s'", opt, group ? "group" : "user", s);
}

static int format_perms(const struct ivshmem_cmd *cmd, const struct msg_opts *o,
			struct ivshmem_open_opts *perms)
{
	unsigned int id = 0;
	char *end;

	memset(perms, 0, sizeof(*perms));
	if (o->mode) {
		errno = 0;
		perms->mode = (unsigned int)strtoul(o->mode, &end, 8);
		if (errno || end == o->mode || *end || perms->mode > 0777)
			return cmd_error(cmd, EXIT_USAGE, "--mode: '%s' is not an octal mode "
					 "from 0 to 0777", o->mode);
	}
	if (o->group) {
		if (lookup_id(cmd, "--group", o->group, true, &id) != EXIT_OK)
			return EXIT_USAGE;
		perms->flags |= IVSHMEM_OPEN_GROUP;
		perms->group = (gid_t)id;
	}
	if (o->owner) {
		if (lookup_id(cmd, "--owner", o->owner, false, &id) != EXIT_OK)
			return EXIT_USAGE;
		perms->flags |= IVSHMEM_OPEN_OWNER;
		perms->owner = (uid_t)id;
	}
	if (!o->group && name_to_id(FORMAT_GROUP, true, &id) && may_give_to_group((gid_t)id)) {
		perms->flags |= IVSHMEM_OPEN_GROUP;
		perms->group = (gid_t)id;
	}
	if (!o->mode)
		perms->mode = (perms->flags & IVSHMEM_OPEN_GROUP) ? 0660 : 0600;
	return EXIT_OK;
}

/*
 * An existing file keeps its owner, group and mode: format never loosens a
 * file it did not create. Asking for others is an error, not a silent no-op.
 */
static int format_check_perms(const struct ivshmem_cmd *cmd, const char *target,
			      const struct msg_opts *o, const struct ivshmem_open_opts *perms)
{
	struct ivshmem_target t;
	struct stat st;
	bool differs;

	if (!o->mode && !o->group && !o->owner)
		return EXIT_OK;
	if (ivshmem_target_parse(target, IVSHMEM_BACKEND_AUTO, &t) < 0 ||
	    t.kind != IVSHMEM_TARGET_FILE)
		return cmd_error(cmd, EXIT_USAGE, "--mode, --group and --owner are for a file DEV");
	if (stat(t.path, &st) < 0)
		return EXIT_OK;		/* created with them */
	differs = (o->mode && (st.st_mode & 0777) != perms->mode) ||
		  (o->group && st.st_gid != perms->group) ||
		  (o->owner && st.st_uid != perms->owner);
	if (differs)
		return cmd_error(cmd, EXIT_FAIL, "%s exists with mode %04o, owner %u, group %u; "
				 "format sets permissions only on a file it creates (change them "
				 "with chmod/chown, or remove the file first)", t.path,
				 (unsigned int)(st.st_mode & 0777), (unsigned int)st.st_uid,
				 (unsigned int)st.st_gid);
	return EXIT_OK;
}

static int run_format(int argc, char **argv)
{
	const struct ivshmem_cmd *cmd = self("format");
	struct ivshmem_open_opts perms;
	const char *created = NULL;
	struct ivshmem_region *r;
	struct msg_opts o;
	int ret;

	if (parse(cmd, argc, argv, &o) != EXIT_OK)
		return EXIT_USAGE;
	if (optind != argc - 1)
		return cmd_error(cmd, EXIT_USAGE, "expected one DEV (see --help)");
	if ((ret = format_check_names(cmd, &o)) != EXIT_OK ||
	    (ret = format_perms(cmd, &o, &perms)) != EXIT_OK ||
	    (ret = format_check_perms(cmd, argv[optind], &o, &perms)) != EXIT_OK ||
	    (ret = format_check_file(cmd, argv[optind], &o, &created)) != EXIT_OK)
		return ret;
	ret = open_target(cmd, argv[optind], &o, o.size > 0 ? &perms : NULL, &r);
	if (ret != EXIT_OK)
		goto out_unlink;
	ret = ivshmem_layout_name(r, NULL, 0);
	if (ret != 0 && !o.force) {
		ret = cmd_error(cmd, EXIT_FAIL, "%s already has a %s layout; --force replaces it "
				"(only while no one uses the region)", argv[optind],
				ret > 0 ? "valid" : "corrupt");
		goto out_close;
	}
	if (ivshmem_layout_format(r, o.name) < 0) {
		ret = cmd_error(cmd, EXIT_FAIL, "%s", ivshmem_errmsg());
		goto out_close;
	}
	ret = format_sections(cmd, r, &o);
	if (ret == EXIT_OK)
		ivshmem_layout_print(r, stdout);
out_close:
	ivshmem_close(r);
out_unlink:
	/* A failed format leaves no file behind that it created. */
	if (ret != EXIT_OK && created && unlink(created) < 0 && errno != ENOENT)
		fprintf(stderr, "ivshmem %s: removing %s: %s\n", cmd->name, created, strerror(errno));
	return ret;
}

/* ---- send / recv ------------------------------------------------------------------------ */

/*
 * SIGINT, SIGTERM and SIGHUP end send and recv cleanly. The handler only
 * records the signal and writes a byte into a self-pipe; the channel watches
 * the pipe as its cancel fd (every wait returns -EINTR) and reading stdin
 * polls it. The command then closes its end and dies of the same signal.
 */
static volatile sig_atomic_t got_signal;
static int cancel_pipe[2] = { -1, -1 };

static void on_signal(int sig)
{
	int saved = errno;

	got_signal = sig;
	if (write(cancel_pipe[1], "", 1) < 0) {
		/* Full: a wake-up is pending already. */
	}
	errno = saved;
}

/* An fd >= 3 (the channel's cancel fd 0 means none), close-on-exec and non-blocking. */
static int high_fd(int fd)
{
	int hi = fcntl(fd, F_DUPFD_CLOEXEC, 3);

	close(fd);
	if (hi >= 0 && fcntl(hi, F_SETFL, O_NONBLOCK) < 0) {
		close(hi);
		hi = -1;
	}
	return hi;
}

static int catch_signals(const struct ivshmem_cmd *cmd)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa = { .sa_handler = on_signal };	/* no SA_RESTART: reads stop */

	if (pipe(cancel_pipe) < 0)
		return cmd_error(cmd, EXIT_FAIL, "pipe: %s", strerror(errno));
	cancel_pipe[0] = high_fd(cancel_pipe[0]);
	cancel_pipe[1] = high_fd(cancel_pipe[1]);
	if (cancel_pipe[0] < 0 || cancel_pipe[1] < 0)
		return cmd_error(cmd, EXIT_FAIL, "pipe: %s", strerror(errno));
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN);	/* a closed stdout is reported, after closing the channel */
	return EXIT_OK;
}

/* The end of send/recv: after a signal, die of it (the channel is closed by now). */
static int exit_status(int ret)
{
	int sig = got_signal;

	if (!sig)
		return ret;
	signal(sig, SIG_DFL);
	raise(sig);
	return 128 + sig;
}

/* Report a library error, unless it only says that a signal cut a wait short. */
static int msg_error(const struct ivshmem_cmd *cmd, int err)
{
	if (err == -EINTR && got_signal)
		return EXIT_FAIL;
	return cmd_error(cmd, exit_code_for(err), "%s", ivshmem_errmsg());
}

static int open_channel(const struct ivshmem_cmd *cmd, int argc, char **argv,
			struct msg_opts *o, unsigned int role, struct ivshmem_region **r,
			struct ivshmem_channel **ch)
{
	struct ivshmem_channel_opts co = { .flags = IVSHMEM_CHANNEL_CREATE | role };
	int ret;

	if (argc - optind < 2)
		return cmd_error(cmd, EXIT_USAGE, "expected DEV CHANNEL (see --help)");
	ret = open_target(cmd, argv[optind], o, NULL, r);
	if (ret != EXIT_OK)
		return ret;
	co.ring_size = o->ring_size;
	co.vector = o->vector;
	co.open_timeout_ms = o->timeout_ms < 0 ? 30000 : (int)o->timeout_ms;
	co.cancel_fd = cancel_pipe[0];
	/* -EBUSY (the end is taken: a second sender or receiver) is exit 1, like any refusal. */
	ret = ivshmem_channel_open(ch, *r, argv[optind + 1], &co);
	if (ret < 0) {
		ret = msg_error(cmd, ret);
		ivshmem_close(*r);
		return ret;
	}
	return EXIT_OK;
}

/* --stats: one line on stderr (or one JSON object with --json), for scripts and the VM tests. */
static void print_stats(const struct ivshmem_cmd *cmd, struct ivshmem_channel *ch,
			const struct msg_opts *o, uint64_t bytes)
{
	struct ivshmem_channel_stats st;
	const char *state = ivshmem_channel_state_name(ivshmem_channel_state(ch));

	ivshmem_channel_stats(ch, &st);
	if (o->json) {
		fprintf(stderr, "{\"command\": \"%s\", \"sent\": %" PRIu64 ", \"received\": %" PRIu64
			", \"bytes\": %" PRIu64 ", \"doorbells\": %" PRIu64 ", \"sleeps\": %" PRIu64
			", \"doorbell_wakeups\": %" PRIu64 ", \"doorbell_mode\": %s, \"state\": \"%s\"}\n",
			cmd->name, st.sent, st.received, bytes, st.doorbells, st.sleeps,
			st.doorbell_wakeups, st.doorbell_mode ? "true" : "false", state);
		return;
	}
	fprintf(stderr, "ivshmem %s: stats: sent %" PRIu64 " received %" PRIu64 " doorbells %" PRIu64
		" sleeps %" PRIu64 " doorbell-wakeups %" PRIu64 " state %s bytes %" PRIu64 "\n",
		cmd->name, st.sent, st.received, st.doorbells, st.sleeps, st.doorbell_wakeups, state,
		bytes);
}

static int send_one(const struct ivshmem_cmd *cmd, struct ivshmem_channel *ch, const void *buf,
		    size_t len, long timeout_ms)
{
	int ret = ivshmem_channel_send(ch, buf, len, (int)timeout_ms);

	return ret < 0 ? msg_error(cmd, ret) : EXIT_OK;
}

/* read() from stdin; -1 with errno EINTR once a signal came (the wait polls the cancel pipe). */
static ssize_t read_input(void *buf, size_t len)
{
	struct pollfd pfd[2] = { { .fd = STDIN_FILENO, .events = POLLIN },
				 { .fd = cancel_pipe[0], .events = POLLIN } };

	for (;;) {
		ssize_t n;

		if (got_signal) {
			errno = EINTR;
			return -1;
		}
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			return -1;
		if (got_signal || !pfd[0].revents)
			continue;
		n = read(STDIN_FILENO, buf, len);
		if (n >= 0 || (errno != EINTR && errno != EAGAIN))
			return n;
	}
}

static int input_error(const struct ivshmem_cmd *cmd)
{
	return got_signal ? EXIT_FAIL : cmd_error(cmd, EXIT_FAIL, "reading stdin: %s",
						  strerror(errno));
}

/* --lines: one message per line, newline included; a line longer than max goes in pieces. */
static int send_lines(const struct ivshmem_cmd *cmd, struct ivshmem_channel *ch,
		      const struct msg_opts *o, char *buf, size_t max, uint64_t *total)
{
	size_t have = 0;
	bool eof = false;

	for (;;) {
		char *nl = memchr(buf, '\n', have);
		size_t len;
		int ret;

		if (!nl && have < max && !eof) {
			ssize_t n = read_input(buf + have, max - have);

			if (n < 0)
				return input_error(cmd);
			eof = n == 0;
			have += (size_t)n;
			continue;
		}
		len = nl ? (size_t)(nl - buf) + 1 : have;
		if (len == 0)
			return EXIT_OK;
		ret = send_one(cmd, ch, buf, len, o->timeout_ms);
		if (ret != EXIT_OK)
			return ret;
		*total += len;
		memmove(buf, buf + len, have - len);
		have -= len;
	}
}

/*
 * A byte stream (docs/channel.md "Byte streams"): a header record, whatever
 * read() returns in records of at most max bytes, an empty record, and the
 * end record with the length and CRC32C. Without the end record a receiver
 * knows the stream was cut off.
 */
static int send_stream(const struct ivshmem_cmd *cmd, struct ivshmem_channel *ch,
		       const struct msg_opts *o, char *buf, size_t max, struct cmd_progress *pg,
		       uint64_t *total)
{
	uint8_t head[STREAM_HEADER_LEN], end[STREAM_END_LEN];
	struct stream_sum sum = { 0, 0 };
	int ret;

	stream_header(head);
	ret = send_one(cmd, ch, head, sizeof(head), o->timeout_ms);
	while (ret == EXIT_OK) {
		ssize_t n = read_input(buf, max);

		if (n < 0)
			return input_error(cmd);
		if (n == 0)
			break;
		stream_add(&sum, buf, (size_t)n);
		ret = send_one(cmd, ch, buf, (size_t)n, o->timeout_ms);
		*total = sum.len;
		cmd_progress_update(pg, sum.len);
	}
	if (ret != EXIT_OK)
		return ret;
	stream_end(&sum, end);
	ret = send_one(cmd, ch, "", 0, o->timeout_ms);
	return ret != EXIT_OK ? ret : send_one(cmd, ch, end, sizeof(end), o->timeout_ms);
}

/*
 * Delivery (--linger). By default wait (up to --timeout) only while a
 * receiver is connected; with nobody there yet, what we sent stays buffered
 * for the next receiver and we are done. --linger MS waits up to MS either
 * way; --linger 0 never waits. Exit 1 if the receiver left with our data
 * unread (its not reading a stream's two closing records is fine: it took
 * every byte and stopped at --count).
 */
static int send_finish(const struct ivshmem_cmd *cmd, struct ivshmem_channel *ch,
		       const struct msg_opts *o, bool stream)
{
	long linger = o->linger_ms;
	uint64_t records, bytes;
	int ret;

	if (linger == -2)
		linger = ivshmem_channel_state(ch) == IVSHMEM_CHANNEL_WAITING ? 0 : o->timeout_ms;
	ret = ivshmem_channel_flush(ch, (int)linger);
	if (ret == 0 || (ret == -ETIMEDOUT && linger == 0))
		return EXIT_OK;
	if ((ret == -EPIPE || ret == -ECONNRESET) && ivshmem_channel_outq(ch, &records, &bytes) == 0) {
		if (records == 0 || (stream && records <= 2 && bytes == STREAM_END_LEN))
			return EXIT_OK;
		return cmd_error(cmd, EXIT_FAIL, "the receiver left before reading %" PRIu64
				 " message%s (%" PRIu64 " bytes): %s", records,
				 records == 1 ? "" : "s", bytes,
				 ret == -EPIPE ? "it closed the channel" : "it died");
	}
	return msg_error(cmd, ret);
}

static int run_send(int argc, char **argv)
{
	const struct ivshmem_cmd *cmd = self("send");
	struct cmd_progress pg = { 0 };
	struct ivshmem_region *r;
	struct ivshmem_channel *ch;
	struct msg_opts o;
	uint64_t total = 0;
	bool stream = false;
	struct stat st;
	size_t max;
	char *buf;
	int ret;

	if (parse(cmd, argc, argv, &o) != EXIT_OK)
		return EXIT_USAGE;
	ret = catch_signals(cmd);
	if (ret == EXIT_OK)
		ret = open_channel(cmd, argc, argv, &o, IVSHMEM_CHANNEL_SEND_ONLY, &r, &ch);
	if (ret != EXIT_OK)
		return exit_status(ret);
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
			total += len;
		}
	} else if ((buf = malloc(max ? max : 1)) == NULL) {
		ret = cmd_error(cmd, EXIT_FAIL, "out of memory");
	} else {
		cmd_progress_start(&pg, o.progress, fstat(STDIN_FILENO, &st) == 0 &&
				   S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0);
		stream = !o.lines;
		ret = o.lines ? send_lines(cmd, ch, &o, buf, max, &total)
			      : send_stream(cmd, ch, &o, buf, max, &pg, &total);
		cmd_progress_end(&pg, total);
		free(buf);
	}
	if (ret == EXIT_OK)
		ret = send_finish(cmd, ch, &o, stream);
	if (o.stats)
		print_stats(cmd, ch, &o, total);
	ivshmem_channel_close(ch, 0);
	ivshmem_close(r);
	return exit_status(ret);
}

/* write(2) all of @buf to stdout; stops at a signal. */
static int write_output(const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(STDOUT_FILENO, p, len);

		if (n < 0 && errno == EINTR && !got_signal)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* After a stream's empty record: the end record must match what arrived. */
static int recv_stream_end(const struct ivshmem_cmd *cmd, struct ivshmem_channel *ch,
			   const struct msg_opts *o, char *buf, size_t max,
			   const struct stream_sum *sum)
{
	ssize_t n = ivshmem_channel_recv(ch, buf, max, (int)o->timeout_ms);
	char why[160];

	if (n < 0 && !(n == -EINTR && got_signal))
		return cmd_error(cmd, n == -ETIMEDOUT ? EXIT_TIMEOUT : EXIT_FAIL,
				 "incomplete stream: no end record after %" PRIu64 " bytes: %s",
				 sum->len, ivshmem_errmsg());
	if (n < 0)
		return EXIT_FAIL;
	if (stream_check_end(sum, buf, (size_t)n, why, sizeof(why)) < 0)
		return cmd_error(cmd, EXIT_FAIL, "damaged stream: %s", why);
	return EXIT_OK;
}

/*
 * Messages to stdout until the sender closes (end of stream) or --count. A
 * first record that is a stream header makes it a byte stream: exit 0 only
 * once its end record matched, exit 1 if it was cut off or damaged.
 */
static int recv_loop(const struct ivshmem_cmd *cmd, struct ivshmem_channel *ch,
		     const struct msg_opts *o, char *buf, size_t max, struct cmd_progress *pg,
		     uint64_t *total)
{
	struct stream_sum sum = { 0, 0 };
	bool stream = false, first = true;
	long got = 0;

	while (o->count < 0 || got < o->count) {
		ssize_t n = ivshmem_channel_recv(ch, buf, max, (int)o->timeout_ms);

		if (n == -EPIPE && !stream)
			return EXIT_OK;	/* the sender closed and everything arrived */
		if ((n == -EPIPE || n == -ECONNRESET) && stream)
			return cmd_error(cmd, EXIT_FAIL, "incomplete stream: %" PRIu64 " bytes "
					 "arrived, then the sender %s without ending the stream",
					 sum.len, n == -EPIPE ? "closed the channel" : "died");
		if (n < 0)
			return msg_error(cmd, (int)n);
		if (first) {
			first = false;
			stream = stream_is_header(buf, (size_t)n);
			if (stream)
				continue;
		}
		if (stream && n == 0)
			return recv_stream_end(cmd, ch, o, buf, max, &sum);
		if (stream)
			stream_add(&sum, buf, (size_t)n);
		got++;
		*total += (uint64_t)n;
		if (o->lines && (n == 0 || buf[n - 1] != '\n'))
			buf[n++] = '\n';
		if (write_output(buf, (size_t)n) < 0)
			return got_signal ? EXIT_FAIL : cmd_error(cmd, EXIT_FAIL, "writing stdout: %s",
								  strerror(errno));
		cmd_progress_update(pg, *total);
	}
	return EXIT_OK;
}

static int run_recv(int argc, char **argv)
{
	const struct ivshmem_cmd *cmd = self("recv");
	struct cmd_progress pg = { 0 };
	struct ivshmem_region *r;
	struct ivshmem_channel *ch;
	struct msg_opts o;
	uint64_t total = 0;
	char *buf;
	size_t max;
	int ret;

	if (parse(cmd, argc, argv, &o) != EXIT_OK)
		return EXIT_USAGE;
	if (argc - optind != 2)
		return cmd_error(cmd, EXIT_USAGE, "expected DEV CHANNEL (see --help)");
	ret = catch_signals(cmd);
	if (ret == EXIT_OK)
		ret = open_channel(cmd, argc, argv, &o, IVSHMEM_CHANNEL_RECV_ONLY, &r, &ch);
	if (ret != EXIT_OK)
		return exit_status(ret);
	max = ivshmem_channel_max_msg(ch);
	buf = malloc(max + 1);
	if (buf) {
		cmd_progress_start(&pg, o.progress, 0);
		ret = recv_loop(cmd, ch, &o, buf, max, &pg, &total);
		cmd_progress_end(&pg, total);
	} else {
		ret = cmd_error(cmd, EXIT_FAIL, "out of memory");
	}
	free(buf);
	if (o.stats)
		print_stats(cmd, ch, &o, total);
	ivshmem_channel_close(ch, 0);
	ivshmem_close(r);
	return exit_status(ret);
}

const struct ivshmem_cmd ivshmem_msg_cmds[] = {
	{
		.name = "format",
		.usage = "[--size SIZE [--mode MODE] [--group GROUP] [--owner USER]] [--name NAME] "
			 "[--channel NAME[:RING]]... [--raw NAME:SIZE]... [--force] DEV",
		.summary = "write a layout (header, name, channels) into a region",
		.help =
		"Writes the region header (docs/layout.md) and creates the named channels and\n"
		"raw sections. Refuses a region that already has a layout unless --force:\n"
		"formatting destroys what peers are using.\n"
		"\n"
		"  --size SIZE         create DEV as a file of SIZE bytes if it does not exist;\n"
		"                      an existing file keeps its size (a different SIZE is\n"
		"                      refused, never a silent resize)\n"
		"  --mode MODE         octal mode of a file it creates (set exactly, not under\n"
		"                      the umask); default 0660 with a group, else 0600\n"
		"  --group GROUP       group of a file it creates (name or number); default\n"
		"                      kvm, the group of libvirt's QEMU (user libvirt-qemu),\n"
		"                      if it exists and you may use it\n"
		"  --owner USER        owner of a file it creates (root only)\n"
		"                      An existing file keeps its owner, group and mode: other\n"
		"                      ones asked for are refused\n"
		"  --name NAME         region name (up to 63 bytes; shown by 'ivshmem list')\n"
		"  -c, --channel NAME[:RING]  add a channel; RING bytes per direction, a power\n"
		"                      of two (default 64K, or --ring-size)\n"
		"  --ring-size SIZE    default ring size for --channel\n"
		"  --raw NAME:SIZE     add a raw section for application data\n"
		"Section names must differ. A failed format removes the file it created.\n"
		"  --force             replace an existing layout\n"
		"  -b, --backend B     auto, file, server, driver, sysfs, vfio, devmem\n"
		"\n"
		"Example: ivshmem format --size 16M --name demo --channel ctl /dev/shm/demo\n",
		.run = run_format,
	},
	{
		.name = "send",
		.usage = "[--timeout MS] [--linger MS] [--lines] [--stats [--json]] [--progress] DEV "
			 "CHANNEL [MESSAGE...]",
		.summary = "send messages (arguments, lines or stdin) into a channel",
		.help =
		"Opens CHANNEL as its sending end (creating it if missing) and sends each\n"
		"MESSAGE argument as one message; without arguments, stdin: one message per\n"
		"line with --lines, else a byte stream that ends with its length and CRC32C\n"
		"(docs/channel.md, \"Byte streams\"), so recv can tell a cut-off stream.\n"
		"What is sent before a receiver opens stays in the channel for it. At the\n"
		"end, send waits until the receiver read everything, but only while one is\n"
		"connected; with nobody there yet it exits 0 at once (the data waits).\n"
		"Channels are point-to-point: a second sender is refused (exit 1) while\n"
		"another is open or a sender's data waits for a receiver; nothing is lost.\n"
		"SIGINT/SIGTERM/SIGHUP close the channel, then end the command.\n"
		"\n"
		"  -t, --timeout MS    give up a blocked send after MS (default: wait forever)\n"
		"  --linger MS         wait at most MS for delivery at the end, connected or\n"
		"                      not (0: never wait; default: --timeout while connected)\n"
		"  --lines             one message per input line\n"
		"  --stats             print counters (doorbells, sleeps, bytes) to stderr\n"
		"  --json              --stats as one JSON object\n"
		"  --progress          bytes and rate on stderr, only on a terminal\n"
		"  --ring-size SIZE    ring size if the channel is created (default 64K)\n"
		"  --vector N          own interrupt vector to sleep on (default 0)\n"
		"  -b, --backend B     region backend\n"
		"\n"
		"Exit: 0 delivered (or buffered for a receiver not there yet), 1 failed (the\n"
		"receiver left without reading, died; the channel end is taken), 2 usage,\n"
		"3 no device, 4 timed out (nobody read it in time).\n",
		.run = run_send,
	},
	{
		.name = "recv",
		.usage = "[--timeout MS] [--count N] [--lines] [--stats [--json]] [--progress] DEV "
			 "CHANNEL",
		.summary = "write messages from a channel to stdout",
		.help =
		"Opens CHANNEL as its receiving end (creating it if missing) and writes every\n"
		"message to stdout until the sender closes the channel (end of stream) or\n"
		"--count messages. A byte stream from send ends with exit 0 only when its\n"
		"length and CRC32C match what arrived. A second receiver is refused (exit 1).\n"
		"SIGINT/SIGTERM/SIGHUP close the channel, then end the command.\n"
		"\n"
		"  -t, --timeout MS    give up when no message comes for MS (default: forever)\n"
		"  -n, --count N       stop after N messages\n"
		"  --lines             end each message with a newline if it lacks one\n"
		"  --stats             print counters (doorbells, sleeps, bytes) to stderr\n"
		"  --json              --stats as one JSON object\n"
		"  --progress          bytes and rate on stderr, only on a terminal\n"
		"  --vector N          own interrupt vector to sleep on (default 0)\n"
		"  -b, --backend B     region backend\n"
		"\n"
		"Exit: 0 end of stream or count reached, 1 failed (sender died, incomplete or\n"
		"damaged stream, the channel end is taken, corrupt ring), 2 usage, 3 no\n"
		"device, 4 timed out.\n",
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
