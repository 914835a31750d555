// SPDX-License-Identifier: MIT
/*
 * Device subcommands of `ivshmem`: list, info, dump, read, write, notify,
 * wait, watch. DEV is any region target (a file, server:SOCK, a PCI
 * selector), so the same commands work on the host and in a guest.
 *
 * Every access to the mapping goes through ivshmem_read()/ivshmem_write()
 * (aligned-only on device memory) inside a SIGBUS guard: a hot-removed
 * device (or a truncated backing file) revokes the mapping, and we report
 * that instead of dying or printing stale bytes.
 */
#include "commands.h"

#include "ivshmem/pci.h"
#include "ivshmem/region.h"
#include "ivshmem/util.h"

#if __has_include("ivshmem/layout.h")
#include "ivshmem/layout.h"
#define HAVE_LAYOUT 1
#endif

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (64 * 1024)

/* ---- options shared by the subcommands ---------------------------------------------------- */

struct opts {
	const char *backend;
	uint64_t offset;
	uint64_t length;
	bool have_length;
	bool json;
	long timeout_ms;	/* -1: forever */
	long interval_ms;
};

enum { OPT_BACKEND = 0x100, OPT_OFFSET, OPT_LENGTH, OPT_JSON, OPT_TIMEOUT, OPT_INTERVAL };

/*
 * Parse the options in @allowed (a string of OPT_* chars is awkward; a mask of
 * 1 << (OPT_x - OPT_BACKEND) is used instead). Positional arguments are left
 * in argv[optind..]. Returns -1 after printing a usage error.
 */
#define ALLOW(o) (1u << ((o) - OPT_BACKEND))

static int parse_opts(const struct ivshmem_cmd *cmd, int argc, char **argv, unsigned int allowed,
		      struct opts *o)
{
	static const struct option longopts[] = {
		{ "backend", required_argument, NULL, OPT_BACKEND },
		{ "offset", required_argument, NULL, OPT_OFFSET },
		{ "length", required_argument, NULL, OPT_LENGTH },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "interval", required_argument, NULL, OPT_INTERVAL },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->timeout_ms = -1;
	o->interval_ms = 100;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "b:o:l:t:", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			c = OPT_BACKEND;
			break;
		case 'o':
			c = OPT_OFFSET;
			break;
		case 'l':
			c = OPT_LENGTH;
			break;
		case 't':
			c = OPT_TIMEOUT;
			break;
		case '?':
			cmd_error(cmd, EXIT_USAGE, "unknown or incomplete option '%s' (see --help)",
				  argv[optind - 1]);
			return -1;
		default:
			break;
		}
		if (c < OPT_BACKEND || !(allowed & ALLOW(c))) {
			cmd_error(cmd, EXIT_USAGE, "option '%s' does not apply here (see --help)",
				  argv[optind - 1]);
			return -1;
		}
		switch (c) {
		case OPT_BACKEND:
			o->backend = optarg;
			break;
		case OPT_OFFSET:
			if (ivshmem_parse_size(optarg, &o->offset) < 0) {
				cmd_error(cmd, EXIT_USAGE, "--offset: %s", ivshmem_errmsg());
				return -1;
			}
			break;
		case OPT_LENGTH:
			if (ivshmem_parse_size(optarg, &o->length) < 0) {
				cmd_error(cmd, EXIT_USAGE, "--length: %s", ivshmem_errmsg());
				return -1;
			}
			o->have_length = true;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_TIMEOUT:
			if (ivshmem_parse_uint(optarg, INT32_MAX, &v) < 0) {
				cmd_error(cmd, EXIT_USAGE, "--timeout: '%s' is not a number of ms",
					  optarg);
				return -1;
			}
			o->timeout_ms = (long)v;
			break;
		case OPT_INTERVAL:
			if (ivshmem_parse_uint(optarg, 3600000, &v) < 0 || v == 0) {
				cmd_error(cmd, EXIT_USAGE, "--interval: '%s' is not 1..3600000 ms",
					  optarg);
				return -1;
			}
			o->interval_ms = (long)v;
			break;
		}
	}
	return 0;
}

/* ---- opening a target --------------------------------------------------------------------- */

struct dev {
	struct ivshmem_region *r;
	struct ivshmem_pci_dev pci;	/* valid when is_pci */
	bool is_pci;
};

static int exit_code_for(int err)
{
	switch (err) {
	case -ENODEV:
	case -ENOENT:
	case -ENXIO:
		return EXIT_NODEV;
	case -EINVAL:
		return EXIT_USAGE;
	default:
		return EXIT_FAIL;
	}
}

static int open_dev(const struct ivshmem_cmd *cmd, const char *target, const struct opts *o,
		    unsigned int flags, struct dev *d)
{
	struct ivshmem_open_opts oo = { .flags = flags };
	char buf[4096];
	const char *open_as = target;
	struct stat st;
	int ret;

	memset(d, 0, sizeof(*d));
	if (o->backend && ivshmem_backend_parse(o->backend, &oo.backend) < 0)
		return cmd_error(cmd, EXIT_USAGE, "%s", ivshmem_errmsg());
	/*
	 * The rule ivshmem_open() follows: pci:/index:/name: always select a
	 * device; otherwise a relative path that exists beats a look-alike.
	 */
	if (ivshmem_pci_is_selector(target) &&
	    (strncmp(target, "pci:", 4) == 0 || strncmp(target, "index:", 6) == 0 ||
	     strncmp(target, "name:", 5) == 0 || stat(target, &st) != 0)) {
		ret = ivshmem_pci_find(target, &d->pci, 0);
		if (ret < 0)
			return cmd_error(cmd, exit_code_for(ret), "%s", ivshmem_errmsg());
		d->is_pci = true;
		snprintf(buf, sizeof(buf), "pci:%s", d->pci.bdf);
		open_as = buf;
	}
	ret = ivshmem_open(&d->r, open_as, &oo);
	if (ret < 0)
		return cmd_error(cmd, exit_code_for(ret), "%s", ivshmem_errmsg());
	return EXIT_OK;
}

/* ---- guarded access to the mapping ------------------------------------------------------- */

/*
 * The library's checked copies catch the SIGBUS of a revoked mapping and
 * re-check the device afterwards (a /dev/mem mapping of a removed device
 * reads all-ones instead of faulting), so stale data is never reported as good.
 */
static int guarded_copy(const struct ivshmem_cmd *cmd, struct dev *d, bool write, uint64_t off,
			void *buf, size_t len)
{
	int ret = write ? ivshmem_write_checked(d->r, off, buf, len)
			: ivshmem_read_checked(d->r, off, buf, len);

	if (ret < 0)
		return cmd_error(cmd, exit_code_for(ret), "%s", ivshmem_errmsg());
	return EXIT_OK;
}

/* Resolve --offset/--length against the region; default length @def (0: to the end). */
static int range_of(const struct ivshmem_cmd *cmd, const struct dev *d, const struct opts *o,
		    uint64_t def, uint64_t *len)
{
	uint64_t size = ivshmem_size(d->r);

	/* Only an explicit --length 0 may start at the very end. */
	if (o->offset > size || (o->offset == size && !(o->have_length && o->length == 0)))
		return cmd_error(cmd, EXIT_USAGE, "--offset %" PRIu64 " is at or beyond the end of "
				 "the region (%" PRIu64 " bytes)", o->offset, size);
	*len = o->have_length ? o->length : def ? def : size - o->offset;
	if (!o->have_length && *len > size - o->offset)
		*len = size - o->offset;
	if (*len > size - o->offset)
		return cmd_error(cmd, EXIT_USAGE, "--offset %" PRIu64 " + --length %" PRIu64
			" is beyond the region (%" PRIu64 " bytes)", o->offset, *len, size);
	return EXIT_OK;
}

static const char *human_size(uint64_t v, char *buf, size_t len)
{
	static const char units[] = "KMGT";
	int u = -1;

	while (v >= 1024 && v % 1024 == 0 && u < 3) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%" PRIu64, v);
	else
		snprintf(buf, len, "%" PRIu64 "%c", v, units[u]);
	return buf;
}

/* ---- list --------------------------------------------------------------------------------- */

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static int cmd_list(int argc, char **argv)
{
	const struct ivshmem_cmd *cmd = cmd_find("list");
	struct ivshmem_pci_dev *devs;
	struct opts o;
	char sz[32];
	int n;

	if (parse_opts(cmd, argc, argv, ALLOW(OPT_JSON), &o) < 0)
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
				json_string(p->driver);
			else
				printf("null");
			printf(", \"ivposition\": ");
			if (p->ivposition >= 0)
				printf("%d", p->ivposition);
			else
				printf("null");
			printf(", \"name\": ");
			if (p->name_status == 1)
				json_string(p->name);
			else
				printf("null");
			printf(", \"header\": \"%s\", \"bar2_phys\": \"0x%" PRIx64 "\"}",
			       p->name_status == 1 ? "ok" : p->name_status == 0 ? "none"
				: p->name_status == -2 ? "corrupt" : "unknown",
			       p->mem_phys);
		}
		printf("%s]\n", n ? "\n" : "");
	} else if (n == 0) {
		fprintf(stderr, "no ivshmem devices (1af4:1110) under %s/bus/pci/devices\n",
			ivshmem_pci_sysfs_root());
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
			       human_size(p->mem_size, sz, sizeof(sz)),
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

/* ---- info --------------------------------------------------------------------------------- */

static int one_target(const struct ivshmem_cmd *cmd, int argc, char **argv, const char **target)
{
	if (optind >= argc)
		return cmd_error(cmd, EXIT_USAGE, "missing DEV (see --help)");
	*target = argv[optind++];
	return EXIT_OK;
}

/*
 * The common start of a subcommand that takes options and exactly one DEV:
 * parse @allowed options into @o, then open DEV (*@target) with @open_flags into @d.
 * Returns EXIT_OK or the exit code (the error is already printed).
 */
static int open_one_dev(const struct ivshmem_cmd *cmd, int argc, char **argv, unsigned int allowed,
			unsigned int open_flags, struct opts *o, struct dev *d, const char **target)
{
	int ret;

	if (parse_opts(cmd, argc, argv, allowed, o) < 0)
		return EXIT_USAGE;
	if ((ret = one_target(cmd, argc, argv, target)))
		return ret;
	if (optind != argc)
		return cmd_error(cmd, EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
	return open_dev(cmd, *target, o, open_flags, d);
}

#ifdef HAVE_LAYOUT
static int print_layout(struct ivshmem_region *r, void *arg)
{
	(void)arg;
	return ivshmem_layout_print(r, stdout);
}
#endif

static int cmd_info(int argc, char **argv)
{
	const struct ivshmem_cmd *cmd = cmd_find("info");
	const char *target = NULL;
	struct opts o;
	struct dev d;
	char sz[32];
	int ret, id;

	ret = open_one_dev(cmd, argc, argv, ALLOW(OPT_BACKEND), IVSHMEM_OPEN_READONLY, &o, &d,
			   &target);
	if (ret)
		return ret;
	printf("target:        %s\n", target);
	if (d.is_pci) {
		struct ivshmem_pci_dev *p = &d.pci;

		printf("pci address:   %s\n", p->bdf);
		printf("type:          %s\n", p->doorbell ? "ivshmem-doorbell (MSI-X)" : "ivshmem-plain");
		printf("revision:      %u\n", p->revision);
		printf("driver:        %s\n", p->driver[0] ? p->driver : "(none)");
		printf("bar2:          0x%" PRIx64 " (%" PRIu64 " bytes)\n", p->mem_phys, p->mem_size);
		if (p->iommu_group[0])
			printf("iommu group:   %s\n", p->iommu_group);
	}
	printf("backend:       %s\n", ivshmem_backend_name(ivshmem_backend_of(d.r)));
	printf("size:          %s (%" PRIu64 " bytes)\n", human_size(ivshmem_size(d.r), sz,
								  sizeof(sz)), ivshmem_size(d.r));
	printf("device memory: %s\n", ivshmem_is_device_memory(d.r)
					  ? "yes (uncached: aligned accesses only)" : "no (cacheable)");
	id = ivshmem_own_id(d.r);
	if (id >= 0)
		printf("own peer id:   %d\n", id);
	else
		printf("own peer id:   (none)\n");
	printf("vectors:       %u%s\n", ivshmem_vectors(d.r),
	       ivshmem_vectors(d.r) ? "" : " (this backend cannot deliver interrupts)");
	ret = EXIT_OK;
#ifdef HAVE_LAYOUT
	{
		int lret = ivshmem_guarded(d.r, print_layout, NULL);

		if (lret == -ENODEV)
			ret = cmd_error(cmd, EXIT_NODEV, "%s", ivshmem_errmsg());
		else if (lret == 0)
			printf("layout:        none (unformatted region)\n");
		else if (lret < 0)
			printf("layout:        corrupt layout header: %s\n", ivshmem_errmsg());
	}
#endif
	ivshmem_close(d.r);
	return ret;
}

/* ---- dump / read / write ------------------------------------------------------------------ */

static void hex_line(uint64_t addr, const uint8_t *b, size_t n)
{
	printf("%08" PRIx64 "  ", addr);
	for (size_t i = 0; i < 16; i++) {
		if (i < n)
			printf("%02x ", b[i]);
		else
			printf("   ");
		if (i == 7)
			putchar(' ');
	}
	printf(" |");
	for (size_t i = 0; i < n; i++)
		putchar(b[i] >= 0x20 && b[i] < 0x7f ? b[i] : '.');
	printf("|\n");
}

/* hexdump -C style; identical lines collapse into one "*". */
static void hexdump(uint64_t addr, const uint8_t *b, size_t n, uint8_t prev[16], bool *have_prev,
		    bool *starred)
{
	for (size_t i = 0; i < n; i += 16) {
		size_t k = n - i < 16 ? n - i : 16;

		if (k == 16 && *have_prev && memcmp(prev, b + i, 16) == 0) {
			if (!*starred)
				printf("*\n");
			*starred = true;
			continue;
		}
		hex_line(addr + i, b + i, k);
		memcpy(prev, b + i, k);
		*have_prev = k == 16;
		*starred = false;
	}
}

struct hexdump_state {
	uint8_t prev[16];
	bool have_prev, starred;
};

/* A consumer of the bytes copied out of the region: 0, or an exit code. */
typedef int (*chunk_sink)(const struct ivshmem_cmd *cmd, uint64_t addr, const uint8_t *buf,
			  size_t n, void *state);

static int sink_hexdump(const struct ivshmem_cmd *cmd, uint64_t addr, const uint8_t *buf,
			size_t n, void *state)
{
	struct hexdump_state *h = state;

	(void)cmd;
	hexdump(addr, buf, n, h->prev, &h->have_prev, &h->starred);
	return 0;
}

static int sink_stdout(const struct ivshmem_cmd *cmd, uint64_t addr, const uint8_t *buf, size_t n,
		       void *state)
{
	(void)addr;
	(void)state;
	if (cmd_write_all(STDOUT_FILENO, buf, n) < 0)
		return cmd_error(cmd, EXIT_FAIL, "writing to stdout: %s", strerror(errno));
	return 0;
}

/*
 * The shared body of `dump` and `read`: parse DEV and the range, then copy the
 * range out chunk by chunk (removal-guarded) into @sink. *@end_out is the
 * offset after the last byte, for dump's closing line.
 */
static int copy_out(const struct ivshmem_cmd *cmd, int argc, char **argv, uint64_t default_len,
		    chunk_sink sink, void *state, uint64_t *end_out)
{
	const char *target = NULL;
	uint64_t len, done = 0;
	struct opts o;
	struct dev d;
	uint8_t *buf;
	int ret;

	ret = open_one_dev(cmd, argc, argv, ALLOW(OPT_BACKEND) | ALLOW(OPT_OFFSET) | ALLOW(OPT_LENGTH),
			   IVSHMEM_OPEN_READONLY, &o, &d, &target);
	if (ret)
		return ret;
	ret = range_of(cmd, &d, &o, default_len, &len);
	buf = malloc(CHUNK);
	if (!ret && !buf)
		ret = cmd_error(cmd, EXIT_FAIL, "out of memory");
	while (!ret && done < len) {
		size_t n = len - done < CHUNK ? (size_t)(len - done) : CHUNK;

		ret = guarded_copy(cmd, &d, false, o.offset + done, buf, n);
		if (!ret)
			ret = sink(cmd, o.offset + done, buf, n, state);
		done += n;
	}
	*end_out = o.offset + len;
	free(buf);
	ivshmem_close(d.r);
	return ret;
}

static int cmd_dump(int argc, char **argv)
{
	struct hexdump_state h = { .have_prev = false };
	uint64_t end;
	int ret = copy_out(cmd_find("dump"), argc, argv, 256, sink_hexdump, &h, &end);

	if (!ret)
		printf("%08" PRIx64 "\n", end);
	return ret;
}

static int cmd_read(int argc, char **argv)
{
	uint64_t end;

	return copy_out(cmd_find("read"), argc, argv, 0, sink_stdout, NULL, &end);
}

static int cmd_write(int argc, char **argv)
{
	const struct ivshmem_cmd *cmd = cmd_find("write");
	const char *target = NULL;
	uint64_t size, pos;
	struct opts o;
	struct dev d;
	uint8_t *buf;
	int ret;

	ret = open_one_dev(cmd, argc, argv, ALLOW(OPT_BACKEND) | ALLOW(OPT_OFFSET) | ALLOW(OPT_LENGTH),
			   0, &o, &d, &target);
	if (ret)
		return ret;
	size = ivshmem_size(d.r);
	pos = o.offset;
	if (pos > size)
		ret = cmd_error(cmd, EXIT_USAGE, "--offset %" PRIu64 " is beyond the region (%" PRIu64
				" bytes)", pos, size);
	buf = malloc(CHUNK);
	if (!ret && !buf)
		ret = cmd_error(cmd, EXIT_FAIL, "out of memory");
	while (!ret) {
		uint64_t limit = o.have_length ? o.offset + o.length - pos : CHUNK;
		size_t want = limit < CHUNK ? (size_t)limit : CHUNK;
		ssize_t n;

		if (want == 0)
			break;
		n = read(STDIN_FILENO, buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = cmd_error(cmd, EXIT_FAIL, "reading stdin: %s", strerror(errno));
			break;
		}
		if (n == 0)
			break;
		if ((uint64_t)n > size - pos) {
			/* Write nothing partial past the end: say how much fitted. */
			ret = cmd_error(cmd, EXIT_FAIL, "input does not fit: the region ends at %"
					PRIu64 " (%" PRIu64 " bytes written from offset %" PRIu64 ")",
					size, pos - o.offset, o.offset);
			break;
		}
		ret = guarded_copy(cmd, &d, true, pos, buf, (size_t)n);
		pos += (uint64_t)n;
	}
	free(buf);
	ivshmem_close(d.r);
	return ret;
}

/* ---- notify / wait / watch ---------------------------------------------------------------- */

static int cmd_notify(int argc, char **argv)
{
	const struct ivshmem_cmd *cmd = cmd_find("notify");
	uint64_t peer, vector;
	const char *target = NULL;
	struct opts o;
	struct dev d;
	int ret;

	if (parse_opts(cmd, argc, argv, ALLOW(OPT_BACKEND), &o) < 0)
		return EXIT_USAGE;
	if (argc - optind != 3)
		return cmd_error(cmd, EXIT_USAGE, "want DEV PEER VECTOR (see --help)");
	target = argv[optind];
	if (ivshmem_parse_uint(argv[optind + 1], 65535, &peer) < 0)
		return cmd_error(cmd, EXIT_USAGE, "PEER '%s' is not 0..65535", argv[optind + 1]);
	if (ivshmem_parse_uint(argv[optind + 2], 65535, &vector) < 0)
		return cmd_error(cmd, EXIT_USAGE, "VECTOR '%s' is not a number", argv[optind + 2]);
	if ((ret = open_dev(cmd, target, &o, 0, &d)))
		return ret;
	ret = ivshmem_notify(d.r, (uint16_t)peer, (uint16_t)vector);
	if (ret < 0)
		ret = cmd_error(cmd, ret == -EINVAL ? EXIT_USAGE : EXIT_FAIL, "%s", ivshmem_errmsg());
	else
		ret = EXIT_OK;
	ivshmem_close(d.r);
	return ret;
}

static int cmd_wait(int argc, char **argv)
{
	const struct ivshmem_cmd *cmd = cmd_find("wait");
	const char *target = NULL;
	int vector = -1, ret;
	uint64_t v, count = 0;
	struct opts o;
	struct dev d;

	if (parse_opts(cmd, argc, argv, ALLOW(OPT_BACKEND) | ALLOW(OPT_TIMEOUT), &o) < 0)
		return EXIT_USAGE;
	if ((ret = one_target(cmd, argc, argv, &target)))
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
	if ((ret = open_dev(cmd, target, &o, IVSHMEM_OPEN_READONLY, &d)))
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
		ret = cmd_error(cmd, ret == -ENODEV ? EXIT_NODEV : EXIT_FAIL, "%s", ivshmem_errmsg());
	}
	ivshmem_close(d.r);
	return ret;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cmd_watch(int argc, char **argv)
{
	const struct ivshmem_cmd *cmd = cmd_find("watch");
	uint8_t *cur = NULL, *last = NULL;
	const char *target = NULL;
	uint64_t len;
	struct opts o;
	struct dev d;
	int64_t deadline;
	int ret;

	ret = open_one_dev(cmd, argc, argv,
			   ALLOW(OPT_BACKEND) | ALLOW(OPT_OFFSET) | ALLOW(OPT_LENGTH) |
				   ALLOW(OPT_TIMEOUT) | ALLOW(OPT_INTERVAL),
			   IVSHMEM_OPEN_READONLY, &o, &d, &target);
	if (ret)
		return ret;
	deadline = o.timeout_ms < 0 ? -1 : now_ms() + o.timeout_ms;
	ret = range_of(cmd, &d, &o, 64, &len);
	if (!ret && len > CHUNK)
		ret = cmd_error(cmd, EXIT_USAGE, "--length: watch at most %d bytes", CHUNK);
	if (!ret) {
		cur = malloc(len ? len : 1);
		last = malloc(len ? len : 1);
		if (!cur || !last)
			ret = cmd_error(cmd, EXIT_FAIL, "out of memory");
	}
	for (bool first = true; !ret; first = false) {
		ret = guarded_copy(cmd, &d, false, o.offset, cur, (size_t)len);
		if (ret)
			break;
		if (first || memcmp(cur, last, (size_t)len) != 0) {
			uint8_t prev[16];
			bool have_prev = false, starred = false;

			hexdump(o.offset, cur, (size_t)len, prev, &have_prev, &starred);
			printf("--\n");
			fflush(stdout);
			memcpy(last, cur, (size_t)len);
		}
		if (deadline >= 0 && now_ms() >= deadline) {
			ret = EXIT_OK;
			break;
		}
		usleep((useconds_t)o.interval_ms * 1000);
	}
	free(cur);
	free(last);
	ivshmem_close(d.r);
	return ret;
}

/* ---- the table ---------------------------------------------------------------------------- */

#define DEV_HELP                                                                              \
	"DEV is a region target:\n"                                                           \
	"  PATH, file:PATH           a host file (/dev/shm/NAME, hugetlbfs)\n"               \
	"  server:SOCKET             a peer of ivshmem-server\n"                             \
	"  pci:DDDD:BB:DD.F, BB:DD.F a guest PCI device by address\n"                        \
	"  index:N                   the Nth device of 'ivshmem list'\n"                     \
	"  name:NAME                 the device whose region header is named NAME\n"       \
	"  /dev/ivshmemN             a device node of the ivshmem driver\n"

#define BACKEND_HELP                                                                          \
	"  -b, --backend NAME  force a backend: file server driver sysfs vfio devmem\n"      \
	"                      (default: automatic; guests try driver, sysfs, vfio, devmem)\n"

#define SIZE_HELP "N accepts K/M/G suffixes and 0x hex.\n"

const struct ivshmem_cmd ivshmem_dev_cmds[] = {
	{ "list", "[--json]", "list the ivshmem PCI devices of this machine",
	  "Columns: index, PCI address, BAR2 size, plain/doorbell, revision, bound driver,\n"
	  "IVPosition (root) and the region header's name (root or the driver).\n"
	  "Devices are re-read from sysfs each time: hot-added devices appear at once.\n\n"
	  "  --json   one JSON array of objects (index, bdf, size, type, revision, driver,\n"
	  "           ivposition, name, header, bar2_phys); null where unknown\n",
	  cmd_list },
	{ "info", "[--backend NAME] DEV", "describe a region: backend, size, peer id, vectors, layout",
	  BACKEND_HELP "\n" DEV_HELP, cmd_info },
	{ "dump", "[--backend NAME] [--offset N] [--length N] DEV",
	  "hexdump part of a region (default: 256 bytes at offset 0)",
	  BACKEND_HELP "  -o, --offset N      start here (default 0)\n"
		       "  -l, --length N      this many bytes (default 256)\n" SIZE_HELP "\n" DEV_HELP,
	  cmd_dump },
	{ "read", "[--backend NAME] [--offset N] [--length N] DEV",
	  "copy raw bytes from a region to stdout",
	  BACKEND_HELP "  -o, --offset N      start here (default 0)\n"
		       "  -l, --length N      this many bytes (default: to the end)\n" SIZE_HELP
		       "\n" DEV_HELP,
	  cmd_read },
	{ "write", "[--backend NAME] [--offset N] [--length N] DEV",
	  "copy raw bytes from stdin into a region",
	  BACKEND_HELP "  -o, --offset N      start here (default 0)\n"
		       "  -l, --length N      stop after N bytes (default: at end of input)\n"
		       SIZE_HELP "Input that would run past the region's end is an error (exit 1).\n\n"
		       DEV_HELP,
	  cmd_write },
	{ "notify", "[--backend NAME] DEV PEER VECTOR", "ring a peer's doorbell vector",
	  BACKEND_HELP "\nWrites (PEER << 16) | VECTOR to the Doorbell register (guest) or the peer's\n"
		       "eventfd (server). QEMU ignores unknown peers and vectors silently.\n\n" DEV_HELP,
	  cmd_notify },
	{ "wait", "[--backend NAME] [--timeout MS] DEV [VECTOR]",
	  "wait for an interrupt on own VECTOR (default: any)",
	  BACKEND_HELP "  -t, --timeout MS    give up after MS milliseconds (exit 4)\n\n"
		       "Needs a backend with interrupts: driver or vfio in a guest, server on the\n"
		       "host. Others fail and say so.\n\n" DEV_HELP,
	  cmd_wait },
	{ "watch", "[--backend NAME] [--offset N] [--length N] [--interval MS] [--timeout MS] DEV",
	  "poll part of a region and hexdump it whenever it changes",
	  BACKEND_HELP "  -o, --offset N      start here (default 0)\n"
		       "  -l, --length N      this many bytes (default 64, at most 64K)\n"
		       "      --interval MS   poll period (default 100)\n"
		       "  -t, --timeout MS    stop after MS milliseconds (exit 0)\n\n"
		       "Exits 3 if the device is removed while watched.\n\n" DEV_HELP,
	  cmd_watch },
	{ 0 },
};
