// SPDX-License-Identifier: MIT
/* PLACEHOLDER: the msg subcommands are not written yet. */
#include "commands.h"

const struct ivshmem_cmd ivshmem_msg_cmds[] = {
	{ 0 },
};
