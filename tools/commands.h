/* SPDX-License-Identifier: MIT */
/* Subcommands of the `ivshmem` CLI. Each cmd_*.c file exports one NULL-terminated group. */
#ifndef IVSHMEM_TOOLS_COMMANDS_H
#define IVSHMEM_TOOLS_COMMANDS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct ivshmem_cmd {
	const char *name;
	const char *usage;	/* one line: arguments after the name */
	const char *summary;	/* one line: what it does */
	const char *help;	/* full --help text after the usage line, may be NULL */
	int (*run)(int argc, char **argv);	/* argv[0] is the subcommand name */
};

/*
 * The one exit-code table of every subcommand (printed by `ivshmem --help`,
 * docs/ivshmem.1 EXIT STATUS, README). cmd_exit_code() maps library errors onto it.
 */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,		/* the operation failed: I/O, device, peer, corrupt data, input too long */
	EXIT_USAGE = 2,		/* the command line is wrong: options, numbers, offset/length/section
				 * outside the region */
	EXIT_NODEV = 3,		/* no such device, target, section; or the device was removed */
	EXIT_TIMEOUT = 4,	/* a timeout (--timeout) expired */
};
#define EXIT_TABLE_HELP                                                                       \
	"Exit status: 0 ok; 1 the operation failed (I/O, peer, corrupt data, input too long);\n" \
	"2 bad command line (options, numbers, offset or length outside the region);\n"         \
	"3 no such device, target or section, or the device was removed; 4 timeout.\n"

extern const struct ivshmem_cmd ivshmem_dev_cmds[];	/* cmd_dev.c: list info dump read write notify wait watch peers */
extern const struct ivshmem_cmd ivshmem_msg_cmds[];	/* cmd_msg.c: format send recv */

/* Print "ivshmem NAME: msg" to stderr and return @code. */
int cmd_error(const struct ivshmem_cmd *cmd, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* True (and prints help) when argv holds -h/--help. */
int cmd_wants_help(const struct ivshmem_cmd *cmd, int argc, char **argv);
void cmd_print_help(const struct ivshmem_cmd *cmd, FILE *out);
const struct ivshmem_cmd *cmd_find(const char *name);
/* write(2) all of @buf, retrying short writes and EINTR; 0 or -1 with errno set. */
int cmd_write_all(int fd, const void *buf, size_t len);
/* The exit code for a library error (negative errno), from the table above. */
int cmd_exit_code(int err);
/*
 * getopt returned '?' for @argv: print why (a negative number where a number
 * is wanted, an unknown option with the nearest known one, a missing argument)
 * and return EXIT_USAGE. @shortopts and @longopts are what getopt_long got.
 */
int cmd_bad_option(const struct ivshmem_cmd *cmd, int argc, char **argv, const char *shortopts,
		   const void *longopts);
/* The name in @names (NULL-terminated) nearest to @word by edit distance, or NULL if none is close. */
const char *cmd_nearest(const char *word, const char *const *names);
/* CLOCK_MONOTONIC in milliseconds. */
int64_t cmd_now_ms(void);

/*
 * --progress: "N MiB of M MiB, R MiB/s" on stderr, redrawn at most 5 times a
 * second, only when stderr is a terminal (never into a pipe or a file).
 */
struct cmd_progress {
	bool on;
	uint64_t total;		/* 0: unknown */
	int64_t start_ms, shown_ms;
};
void cmd_progress_start(struct cmd_progress *p, bool wanted, uint64_t total);
void cmd_progress_update(struct cmd_progress *p, uint64_t done);
void cmd_progress_end(struct cmd_progress *p, uint64_t done);

#endif
