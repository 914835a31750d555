// SPDX-License-Identifier: MIT
/* `ivshmem`: the command-line front end. Dispatches to the subcommand groups. */
#include "commands.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const struct ivshmem_cmd *const groups[] = { ivshmem_dev_cmds, ivshmem_msg_cmds };

const struct ivshmem_cmd *cmd_find(const char *name)
{
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
		for (const struct ivshmem_cmd *c = groups[g]; c->name; c++)
			if (strcmp(c->name, name) == 0)
				return c;
	return NULL;
}

int cmd_error(const struct ivshmem_cmd *cmd, int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ivshmem %s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

int cmd_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int cmd_exit_code(int err)
{
	switch (err) {
	case -ENODEV:
	case -ENOENT:
	case -ENXIO:
	case -ENODATA:
		return EXIT_NODEV;
	case -EINVAL:
	case -ERANGE:
		return EXIT_USAGE;
	case -ETIMEDOUT:
	case -EAGAIN:
		return EXIT_TIMEOUT;
	default:
		return EXIT_FAIL;
	}
}

/*
 * Edit distance with adjacent transpositions ("lsit" is one step from "list"),
 * for "did you mean"; words longer than 31 bytes are never near.
 */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), d[32][32];

	if (la > 31 || lb > 31)
		return SIZE_MAX;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);

			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

const char *cmd_nearest(const char *word, const char *const *names)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX, limit = strlen(word) <= 4 ? 1 : 2;

	for (; *names; names++) {
		size_t d = edit_distance(word, *names);

		if (d < best_d) {
			best_d = d;
			best = *names;
		}
	}
	return best_d <= limit ? best : NULL;
}

static bool is_negative_number(const char *s)
{
	return s[0] == '-' && isdigit((unsigned char)s[1]);
}

int cmd_bad_option(const struct ivshmem_cmd *cmd, int argc, char **argv, const char *shortopts,
		   const void *longopts)
{
	const struct option *lo = longopts;
	const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
	const char *names[64];
	char word[64];
	size_t n = 0;

	/* getopt took "-1" for option '1': find the word it came from. */
	if (isdigit(optopt)) {
		for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
			if (is_negative_number(argv[i]))
				return cmd_error(cmd, EXIT_USAGE, "'%s' is negative: numbers here are "
						 "0 or more (see --help)", argv[i]);
	}
	if (optopt > 0 && optopt < 128 && optopt != ':' && strchr(shortopts, optopt))
		return cmd_error(cmd, EXIT_USAGE, "option '-%c' needs a value (see --help)", optopt);
	if (strncmp(arg, "--", 2) == 0 && lo) {
		const char *eq = strchr(arg, '=');
		size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
		const char *near;

		for (; lo->name && n < 63; lo++)
			names[n++] = lo->name;
		names[n] = NULL;
		snprintf(word, sizeof(word), "%.*s", (int)len, arg + 2);
		for (size_t i = 0; i < n; i++)
			if (strcmp(names[i], word) == 0)
				return cmd_error(cmd, EXIT_USAGE, "option '--%s' needs a value "
						 "(see --help)", word);
		near = cmd_nearest(word, names);
		if (near)
			return cmd_error(cmd, EXIT_USAGE, "unknown option '%s'; did you mean "
					 "'--%s'? (see --help)", arg, near);
	}
	return cmd_error(cmd, EXIT_USAGE, "unknown option '%s' (see --help)", arg);
}

int64_t cmd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- --progress ----------------------------------------------------------------------- */

static void progress_draw(const struct cmd_progress *p, uint64_t done, bool last)
{
	int64_t ms = cmd_now_ms() - p->start_ms;
	double mib = (double)done / (1024 * 1024);
	double rate = ms > 0 ? mib * 1000.0 / (double)ms : 0;

	if (p->total)
		fprintf(stderr, "\r%.1f MiB of %.1f MiB (%3.0f%%), %.1f MiB/s\033[K", mib,
			(double)p->total / (1024 * 1024), 100.0 * (double)done / (double)p->total,
			rate);
	else
		fprintf(stderr, "\r%.1f MiB, %.1f MiB/s\033[K", mib, rate);
	if (last)
		fputc('\n', stderr);
	fflush(stderr);
}

void cmd_progress_start(struct cmd_progress *p, bool wanted, uint64_t total)
{
	p->on = wanted && isatty(STDERR_FILENO);
	p->total = total;
	p->start_ms = p->shown_ms = cmd_now_ms();
}

void cmd_progress_update(struct cmd_progress *p, uint64_t done)
{
	int64_t now;

	if (!p->on)
		return;
	now = cmd_now_ms();
	if (now - p->shown_ms < 200)
		return;
	p->shown_ms = now;
	progress_draw(p, done, false);
}

void cmd_progress_end(struct cmd_progress *p, uint64_t done)
{
	if (p->on)
		progress_draw(p, done, true);
	p->on = false;
}

void cmd_print_help(const struct ivshmem_cmd *cmd, FILE *out)
{
	fprintf(out, "usage: ivshmem %s %s\n\n%s\n", cmd->name, cmd->usage, cmd->summary);
	if (cmd->help)
		fprintf(out, "\n%s", cmd->help);
}

int cmd_wants_help(const struct ivshmem_cmd *cmd, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			cmd_print_help(cmd, stdout);
			return 1;
		}
	}
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: ivshmem COMMAND [ARGS]\n\n"
		     "Inspect and use ivshmem shared memory from a guest or the host.\n\n"
		     "Commands:\n");
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
		for (const struct ivshmem_cmd *c = groups[g]; c->name; c++)
			fprintf(out, "  %-8s %s\n", c->name, c->summary);
	fprintf(out, "\nRun 'ivshmem COMMAND --help' for a command's options.\n\n" EXIT_TABLE_HELP);
}

/* "unknown command": name the nearest one when it is a likely typo. */
static int unknown_command(const char *word)
{
	const char *names[64], *near;
	size_t n = 0;

	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
		for (const struct ivshmem_cmd *c = groups[g]; c->name && n < 63; c++)
			names[n++] = c->name;
	names[n] = NULL;
	near = cmd_nearest(word, names);
	if (near) {
		fprintf(stderr, "ivshmem: unknown command '%s'; did you mean '%s'?\n"
			"Run 'ivshmem --help' for the list of commands.\n", word, near);
	} else {
		fprintf(stderr, "ivshmem: unknown command '%s'\n\n", word);
		usage(stderr);
	}
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	const struct ivshmem_cmd *cmd;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		if (argc > 2 && (cmd = cmd_find(argv[2]))) {
			cmd_print_help(cmd, stdout);
			return EXIT_OK;
		}
		usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("ivshmem %s\n", IVSHMEM_VERSION);
		return EXIT_OK;
	}
	cmd = cmd_find(argv[1]);
	if (!cmd)
		return unknown_command(argv[1]);
	if (cmd_wants_help(cmd, argc - 1, argv + 1))
		return EXIT_OK;
	return cmd->run(argc - 1, argv + 1);
}
