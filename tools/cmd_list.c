// SPDX-License-Identifier: MIT
/* ivshmem list: the ivshmem PCI devices of this machine. */
#include "dev.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cmd_list(int argc, char **argv)
{
	const struct ivshmem_cmd *cmd = cmd_find("list");
	struct ivshmem_pci_dev *devs;
	struct opts o;
	char sz[32];
	int n;

	if (dev_parse_opts(cmd, argc, argv, ALLOW(OPT_JSON), &o) < 0)
		return EXIT_USAGE;
	if (optind != argc)
		return cmd_error(cmd, EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
	devs = calloc(256, sizeof(*devs));
	if (!devs)
		return cmd_error(cmd, EXIT_FAIL, "out of memory");
	n = ivshmem_pci_list(devs, 256, IVSHMEM_PCI_PROBE_REGS | IVSHMEM_PCI_PROBE_NAME);
	if (n < 0) {
		free(devs);
		return cmd_error(cmd, EXIT_FAIL, "%s", ivshmem_errmsg());
	}
	if (n > 256)
		n = 256;
	if (o.json) {
		printf("[");
		for (int i = 0; i < n; i++) {
			const struct ivshmem_pci_dev *p = &devs[i];

			printf("%s\n  {\"index\": %d, \"bdf\": \"%s\", \"size\": %" PRIu64
			       ", \"type\": \"%s\", \"revision\": %u, \"driver\": ",
			       i ? "," : "", i, p->bdf, p->mem_size, p->doorbell ? "doorbell" : "plain",
			       p->revision);
			if (p->driver[0])
				dev_json_string(p->driver);
			else
				printf("null");
			printf(", \"ivposition\": ");
			if (p->ivposition >= 0)
				printf("%d", p->ivposition);
			else
				printf("null");
			printf(", \"name\": ");
			if (p->name_status == 1)
				dev_json_string(p->name);
			else
				printf("null");
			printf(", \"header\": \"%s\", \"bar2_phys\": \"0x%" PRIx64 "\"}",
			       p->name_status == 1 ? "ok" : p->name_status == 0 ? "none"
				: p->name_status == -2 ? "corrupt" : "unknown",
			       p->mem_phys);
		}
		printf("%s]\n", n ? "\n" : "");
	} else if (n == 0) {
		fprintf(stderr, "no ivshmem devices (1af4:1110) under %s/bus/pci/devices "
			"(list shows a guest's devices; on the host, give the other commands the "
			"memory's file or server:SOCKET)\n", ivshmem_pci_sysfs_root());
	} else {
		printf("%-5s %-13s %6s %-8s %3s %-10s %6s %s\n", "INDEX", "ADDRESS", "SIZE", "TYPE",
		       "REV", "DRIVER", "IVPOS", "NAME");
		for (int i = 0; i < n; i++) {
			const struct ivshmem_pci_dev *p = &devs[i];
			char ivpos[16];

			if (p->ivposition >= 0)
				snprintf(ivpos, sizeof(ivpos), "%d", p->ivposition);
			else
				snprintf(ivpos, sizeof(ivpos), "-");
			printf("%-5d %-13s %6s %-8s %3u %-10s %6s %s\n", i, p->bdf,
			       dev_human_size(p->mem_size, sz, sizeof(sz)),
			       p->doorbell ? "doorbell" : "plain", p->revision,
			       p->driver[0] ? p->driver : "-", ivpos,
			       p->name_status == 1 ? p->name : p->name_status == 0 ? "-"
				: p->name_status == -2 ? "(corrupt header)" : "?");
		}
		if (geteuid() != 0)
			fprintf(stderr, "(not root: IVPOS and NAME need root or the driver)\n");
	}
	free(devs);
	return EXIT_OK;
}

