// SPDX-License-Identifier: MIT
/*
 * ivshmem-bridge's command line (docs/ivshmem-bridge.8). One table gives the
 * getopt options, the --help text and the configuration line each flag stands
 * for: a flag is a configuration line (docs/multihost.md "Configuration"),
 * applied after the file, so the two can never mean different things.
 */
#define _GNU_SOURCE
#include "bridge.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum flag_kind {
	FLAG_KEYWORD,	/* --KEY VALUE is the configuration line "KEY VALUE" */
	FLAG_PEER,	/* NAME=ADDR:PORT is "peer NAME connect ADDR:PORT", NAME "peer NAME accept" */
	FLAG_CHANNEL,	/* NAME@PEER is "channel NAME PEER" */
	FLAG_CONFIG,	/* read first, wherever it stands */
	FLAG_CHECK,
	FLAG_VERBOSE,
	FLAG_HELP,
	FLAG_VERSION,
};

struct flag {
	const char *name;
	char letter;		/* the short option; 0 for none */
	const char *arg;	/* the argument as --help names it; NULL: takes none */
	enum flag_kind kind;
	const char *help;
};

static const struct flag flags[] = {
	{ "config", 'c', "FILE", FLAG_CONFIG, "read the configuration file (lines 'keyword value...')" },
	{ "name", 'n', "NAME", FLAG_KEYWORD, "this bridge's name, as the remote bridges know it" },
	{ "region", 'r', "TARGET", FLAG_KEYWORD, "the local region: server:SOCKET or a file" },
	{ "secret-file", 's', "PATH", FLAG_KEYWORD,
	  "the shared secret (mode 0600 or stricter; >= 16 bytes)" },
	{ "listen", 'l', "ADDR:PORT", FLAG_KEYWORD,
	  "accept remote bridges here (numeric IPv4, or [IPv6]:PORT)" },
	{ "peer", 'p', "NAME[=ADDR:PORT]", FLAG_PEER,
	  "dial bridge NAME at ADDR:PORT, or (NAME alone) accept it" },
	{ "channel", 'C', "NAME@PEER", FLAG_CHANNEL, "carry channel NAME to the bridge PEER" },
	{ "keepalive-ms", 0, "N", FLAG_KEYWORD, "send a PING after N ms without sending (1000)" },
	{ "dead-ms", 0, "N", FLAG_KEYWORD, "drop a link that received nothing for N ms (3000)" },
	{ "max-record", 0, "SIZE", FLAG_KEYWORD, "the largest record accepted from a remote (1M)" },
	{ "check", 0, NULL, FLAG_CHECK, "check the configuration, print it and exit" },
	{ "verbose", 'v', NULL, FLAG_VERBOSE, "also log debug messages" },
	{ "help", 'h', NULL, FLAG_HELP, "show this help and exit" },
	{ "version", 'V', NULL, FLAG_VERSION, "show the version and exit" },
};
#define NFLAGS		(sizeof(flags) / sizeof(flags[0]))
#define FLAG_VAL	256	/* getopt's value of flags[i] given long: FLAG_VAL + i */
#define HELP_COLUMN	27

static void usage(void)
{
	puts("Usage: ivshmem-bridge [OPTION]...\n"
	     "Carry named channels of a local ivshmem region to the same-named channels on other\n"
	     "hosts' bridges over UCX (docs/multihost.md).\n");
	for (size_t i = 0; i < NFLAGS; i++) {
		const struct flag *f = &flags[i];
		int n = f->letter ? printf("  -%c, ", f->letter) : printf("      ");

		n += printf("--%s%s%s", f->name, f->arg ? " " : "", f->arg ? f->arg : "");
		printf("%*s%s\n", n < HELP_COLUMN - 2 ? HELP_COLUMN - n : 2, "", f->help);
	}
	puts("\nFlags are applied after the configuration file. UCX picks its transport from UCX_TLS\n"
	     "and UCX_NET_DEVICES (e.g. UCX_TLS=tcp UCX_NET_DEVICES=eth1).\n"
	     "Exit status: 0 stopped by SIGTERM/SIGINT (or --check passed), 1 failed at run time,\n"
	     "2 bad flags or configuration.");
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ivshmem-bridge: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'ivshmem-bridge --help'.\n");
	return EXIT_USAGE;
}

/* The configuration line that flag @f with @arg stands for; -1 when @arg has the wrong shape. */
static int flag_line(const struct flag *f, const char *arg, char *line, size_t len)
{
	const char *sep;

	switch (f->kind) {
	case FLAG_KEYWORD:
		return snprintf(line, len, "%s %s", f->name, arg);
	case FLAG_PEER:
		sep = strchr(arg, '=');
		if (!sep)
			return snprintf(line, len, "peer %s accept", arg);
		return snprintf(line, len, "peer %.*s connect %s", (int)(sep - arg), arg, sep + 1);
	case FLAG_CHANNEL:
		sep = strchr(arg, '@');
		if (!sep)
			return -1;
		return snprintf(line, len, "channel %.*s %s", (int)(sep - arg), arg, sep + 1);
	default:
		return -1;
	}
}

/* getopt's tables, from flags[]. */
static void getopt_tables(struct option *longs, char *shorts)
{
	for (size_t i = 0; i < NFLAGS; i++) {
		longs[i] = (struct option){ flags[i].name, flags[i].arg ? required_argument : no_argument,
					    NULL, FLAG_VAL + (int)i };
		if (flags[i].letter) {
			*shorts++ = flags[i].letter;
			if (flags[i].arg)
				*shorts++ = ':';
		}
	}
	longs[NFLAGS] = (struct option){ NULL, 0, NULL, 0 };
	*shorts = '\0';
}

/* The flag getopt returned @opt for; NULL for an unknown option. */
static const struct flag *flag_of(int opt)
{
	if (opt >= FLAG_VAL && opt < FLAG_VAL + (int)NFLAGS)
		return &flags[opt - FLAG_VAL];
	for (size_t i = 0; i < NFLAGS; i++)
		if (flags[i].letter && flags[i].letter == opt)
			return &flags[i];
	return NULL;
}

/* --help, --version and the file: -1 to go on, or an exit status. */
static int first_pass(struct bridge *b, int argc, char **argv, const struct option *longs,
		      const char *shorts)
{
	const struct flag *f;
	char err[512];
	int opt;

	while ((opt = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		f = flag_of(opt);
		if (!f)
			return usage_error("bad option (see above)");
		if (f->kind == FLAG_HELP) {
			usage();
			return 0;
		}
		if (f->kind == FLAG_VERSION) {
			printf("ivshmem-bridge %s\n", IVSHMEM_VERSION);
			return 0;
		}
		if (f->kind == FLAG_CONFIG && config_file(&b->cfg, optarg, err, sizeof(err)) < 0)
			return usage_error("%s", err);
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	return -1;
}

int options_parse(struct bridge *b, int argc, char **argv, bool *check)
{
	struct option longs[NFLAGS + 1];
	char shorts[2 * NFLAGS + 1], err[512], line[1200];
	const struct flag *f;
	int opt, ret;

	config_init(&b->cfg);
	getopt_tables(longs, shorts);
	/* The file first, whatever its position: flags override it. */
	ret = first_pass(b, argc, argv, longs, shorts);
	if (ret >= 0)
		return ret;
	optind = 1;
	while ((opt = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		f = flag_of(opt);
		if (f->kind == FLAG_VERBOSE)
			b->verbose = true;
		else if (f->kind == FLAG_CHECK)
			*check = true;
		else if (f->kind == FLAG_CONFIG)
			continue;
		else if (flag_line(f, optarg, line, sizeof(line)) < 0)
			return usage_error("--%s %s: %s", f->name, optarg, f->arg);
		else if (config_line(&b->cfg, line, err, sizeof(err)) < 0)
			return usage_error("%s", err);
	}
	if (config_finish(&b->cfg, err, sizeof(err)) < 0)
		return usage_error("%s", err);
	b->secret_len = secret_load(b->cfg.secret_file, b->secret, sizeof(b->secret), err,
				    sizeof(err));
	if (b->secret_len < 0)
		return usage_error("%s", err);
	return -1;
}
