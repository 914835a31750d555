// SPDX-License-Identifier: MIT
/* ivshmem notify and wait: doorbells and interrupts. */
#include "dev.h"

#include "ivshmem/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cmd_notify(int argc, char **argv)
{
	const struct ivshmem_cmd *cmd = cmd_find("notify");
	uint64_t peer, vector;
	const char *target = NULL;
	struct opts o;
	struct dev d;
	int ret;

	if (dev_parse_opts(cmd, argc, argv, ALLOW(OPT_BACKEND), &o) < 0)
		return EXIT_USAGE;
	if (argc - optind != 3)
		return cmd_error(cmd, EXIT_USAGE, "want DEV PEER VECTOR (see --help)");
	target = argv[optind];
	if (ivshmem_parse_uint(argv[optind + 1], 65535, &peer) < 0)
		return cmd_error(cmd, EXIT_USAGE, "PEER '%s' is not 0..65535", argv[optind + 1]);
	if (ivshmem_parse_uint(argv[optind + 2], 65535, &vector) < 0)
		return cmd_error(cmd, EXIT_USAGE, "VECTOR '%s' is not a number", argv[optind + 2]);
	if ((ret = dev_open(cmd, target, &o, 0, &d)))
		return ret;
	ret = ivshmem_notify(d.r, (uint16_t)peer, (uint16_t)vector);
	ret = ret < 0 ? dev_call_error(cmd, target, &d, ret) : EXIT_OK;
	ivshmem_close(d.r);
	return ret;
}

int cmd_wait(int argc, char **argv)
{
	const struct ivshmem_cmd *cmd = cmd_find("wait");
	const char *target = NULL;
	int vector = -1, ret;
	uint64_t v, count = 0;
	struct opts o;
	struct dev d;

	if (dev_parse_opts(cmd, argc, argv, ALLOW(OPT_BACKEND) | ALLOW(OPT_TIMEOUT), &o) < 0)
		return EXIT_USAGE;
	if ((ret = dev_one_target(cmd, argc, argv, &target)))
		return ret;
	if (optind < argc) {
		if (ivshmem_parse_uint(argv[optind], 65535, &v) < 0)
			return cmd_error(cmd, EXIT_USAGE, "VECTOR '%s' is not a number",
					 argv[optind]);
		vector = (int)v;
		optind++;
	}
	if (optind != argc)
		return cmd_error(cmd, EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
	if ((ret = dev_open(cmd, target, &o, IVSHMEM_OPEN_READONLY, &d)))
		return ret;
	ret = ivshmem_wait(d.r, vector, (int)o.timeout_ms, &count);
	if (ret == 1) {
		if (vector >= 0)
			printf("interrupt on vector %d: count %" PRIu64 "\n", vector, count);
		else
			printf("interrupt: count %" PRIu64 "\n", count);
		ret = EXIT_OK;
	} else if (ret == 0) {
		ret = cmd_error(cmd, EXIT_TIMEOUT, "no interrupt within %ld ms", o.timeout_ms);
	} else {
		ret = dev_call_error(cmd, target, &d, ret);
	}
	ivshmem_close(d.r);
	return ret;
}

