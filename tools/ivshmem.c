// SPDX-License-Identifier: MIT
/* `ivshmem`: the command-line front end. Dispatches to the subcommand groups. */
#include "commands.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
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
	fprintf(out, "\nRun 'ivshmem COMMAND --help' for a command's options.\n"
		     "Exit codes: 0 ok, 1 failure, 2 usage, 3 no such device, 4 timeout.\n");
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
	if (!cmd) {
		fprintf(stderr, "ivshmem: unknown command '%s'\n\n", argv[1]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (cmd_wants_help(cmd, argc - 1, argv + 1))
		return EXIT_OK;
	return cmd->run(argc - 1, argv + 1);
}
