/* SPDX-License-Identifier: MIT */
/* Subcommands of the `ivshmem` CLI. Each cmd_*.c file exports one NULL-terminated group. */
#ifndef IVSHMEM_TOOLS_COMMANDS_H
#define IVSHMEM_TOOLS_COMMANDS_H

#include <stdio.h>

struct ivshmem_cmd {
	const char *name;
	const char *usage;	/* one line: arguments after the name */
	const char *summary;	/* one line: what it does */
	const char *help;	/* full --help text after the usage line, may be NULL */
	int (*run)(int argc, char **argv);	/* argv[0] is the subcommand name */
};

/* Exit codes shared by every subcommand. */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,		/* the operation failed (I/O, device, peer) */
	EXIT_USAGE = 2,		/* bad flags or arguments */
	EXIT_NODEV = 3,		/* no such device / target */
	EXIT_TIMEOUT = 4,	/* wait/recv timed out */
};

extern const struct ivshmem_cmd ivshmem_dev_cmds[];	/* cmd_dev.c: list info dump read write notify wait */
extern const struct ivshmem_cmd ivshmem_msg_cmds[];	/* cmd_msg.c: format send recv bench */

/* Print "ivshmem NAME: msg" to stderr and return @code. */
int cmd_error(const struct ivshmem_cmd *cmd, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* True (and prints help) when argv holds -h/--help. */
int cmd_wants_help(const struct ivshmem_cmd *cmd, int argc, char **argv);
void cmd_print_help(const struct ivshmem_cmd *cmd, FILE *out);
const struct ivshmem_cmd *cmd_find(const char *name);
/* write(2) all of @buf, retrying short writes and EINTR; 0 or -1 with errno set. */
int cmd_write_all(int fd, const void *buf, size_t len);

#endif
