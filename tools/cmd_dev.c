// SPDX-License-Identifier: MIT
/* PLACEHOLDER: the dev subcommands are not written yet. */
#include "commands.h"

const struct ivshmem_cmd ivshmem_dev_cmds[] = {
	{ 0 },
};
