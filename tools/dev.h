/* SPDX-License-Identifier: MIT */
/*
 * What the device subcommands share: option parsing, opening DEV through
 * the one target parser, removal-guarded copies and small formatters. Each
 * subcommand lives in its own cmd_*.c; the table is in cmd_dev.c.
 */
#ifndef IVSHMEM_TOOLS_DEV_H
#define IVSHMEM_TOOLS_DEV_H

#include "commands.h"

#include "ivshmem/pci.h"
#include "ivshmem/region.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHUNK (64 * 1024)

struct opts {
	const char *backend;
	uint64_t offset;
	uint64_t length;
	bool have_length;
	bool json;
	long timeout_ms;	/* -1: forever */
	long interval_ms;
	const char *section;	/* --section: offsets are relative to it */
	bool progress;
};

enum { OPT_BACKEND = 0x100, OPT_OFFSET, OPT_LENGTH, OPT_JSON, OPT_TIMEOUT, OPT_INTERVAL,
       OPT_SECTION, OPT_PROGRESS };

#define ALLOW(o) (1u << ((o) - OPT_BACKEND))
/*
 * Parse the options in @allowed (ALLOW(OPT_x) bits) into @o; positional
 * arguments are left in argv[optind..]. Returns -1 after printing a usage error.
 */
int dev_parse_opts(const struct ivshmem_cmd *cmd, int argc, char **argv, unsigned int allowed,
		   struct opts *o);

struct dev {
	struct ivshmem_region *r;
	struct ivshmem_pci_dev pci;	/* valid when is_pci */
	bool is_pci;
};
/* The exit code for a library error (commands.h's table). */
#define dev_exit_code cmd_exit_code
/* Open @target with @flags into @d; EXIT_OK or the exit code (error printed). */
int dev_open(const struct ivshmem_cmd *cmd, const char *target, const struct opts *o,
	     unsigned int flags, struct dev *d);
/* Take DEV from argv[optind]; EXIT_OK or EXIT_USAGE (error printed). */
int dev_one_target(const struct ivshmem_cmd *cmd, int argc, char **argv, const char **target);
/*
 * The common start of a subcommand that takes options and exactly one DEV:
 * parse @allowed options into @o, then open DEV (*@target) with @open_flags into @d.
 * Returns EXIT_OK or the exit code (the error is already printed).
 */
int dev_open_one(const struct ivshmem_cmd *cmd, int argc, char **argv, unsigned int allowed,
		 unsigned int open_flags, struct opts *o, struct dev *d, const char **target);
/* A removal-guarded copy to or from the mapping; EXIT_OK or the exit code (error printed). */
int dev_guarded_copy(const struct ivshmem_cmd *cmd, struct dev *d, bool write, uint64_t off,
		     void *buf, size_t len);
/*
 * Resolve --section/--offset/--length against the region: *@start (from the
 * start of the region) and *@len, inside the section when one is named.
 * Default length @def, cut at the end (0: to the end). EXIT_OK or the exit
 * code (error printed): 2 for a range outside, 3 for a missing section.
 */
int dev_range(const struct ivshmem_cmd *cmd, const struct dev *d, const struct opts *o,
	      uint64_t def, uint64_t *start, uint64_t *len);
/*
 * Report library error @err of a call on the open @d, in words that fit where
 * the user is (a file on the host has no interrupts: point to server:SOCKET,
 * not to guest drivers). Returns the exit code.
 */
int dev_call_error(const struct ivshmem_cmd *cmd, const char *target, const struct dev *d,
		   int err);
/* "64K", "16M" or a plain number when not a whole unit. */
const char *dev_human_size(uint64_t v, char *buf, size_t len);
/* Print @s as a JSON string literal to stdout. */
void dev_json_string(const char *s);

/* The subcommands. */
int cmd_list(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_read(int argc, char **argv);
int cmd_write(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_notify(int argc, char **argv);
int cmd_wait(int argc, char **argv);
int cmd_peers(int argc, char **argv);

#endif
