// SPDX-License-Identifier: MIT
/* Shared pieces of the device subcommands (dev.h). */
#include "dev.h"

#include "ivshmem/target.h"
#include "ivshmem/util.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int dev_parse_opts(const struct ivshmem_cmd *cmd, int argc, char **argv, unsigned int allowed,
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

int dev_exit_code(int err)
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

int dev_open(const struct ivshmem_cmd *cmd, const char *target, const struct opts *o,
		    unsigned int flags, struct dev *d)
{
	struct ivshmem_open_opts oo = { .flags = flags };
	struct ivshmem_target t;
	char buf[32];
	const char *open_as = target;
	int ret;

	memset(d, 0, sizeof(*d));
	if (o->backend && ivshmem_backend_parse(o->backend, &oo.backend) < 0)
		return cmd_error(cmd, EXIT_USAGE, "%s", ivshmem_errmsg());
	/* A PCI device is described first (for info), then opened by its address. */
	ret = ivshmem_target_parse(target, oo.backend, &t);
	if (ret < 0)
		return cmd_error(cmd, dev_exit_code(ret), "%s", ivshmem_errmsg());
	if (ivshmem_target_is_pci(&t)) {
		ret = ivshmem_target_find_pci(&t, &d->pci, 0);
		if (ret < 0)
			return cmd_error(cmd, dev_exit_code(ret), "%s", ivshmem_errmsg());
		d->is_pci = true;
		snprintf(buf, sizeof(buf), "pci:%s", d->pci.bdf);
		open_as = buf;
	}
	ret = ivshmem_open(&d->r, open_as, &oo);
	if (ret < 0)
		return cmd_error(cmd, dev_exit_code(ret), "%s", ivshmem_errmsg());
	return EXIT_OK;
}

/* ---- guarded access to the mapping ------------------------------------------------------- */

/*
 * The library's checked copies catch the SIGBUS of a revoked mapping and
 * re-check the device afterwards (a /dev/mem mapping of a removed device
 * reads all-ones instead of faulting), so stale data is never reported as good.
 */
int dev_guarded_copy(const struct ivshmem_cmd *cmd, struct dev *d, bool write, uint64_t off,
			void *buf, size_t len)
{
	int ret = write ? ivshmem_write_checked(d->r, off, buf, len)
			: ivshmem_read_checked(d->r, off, buf, len);

	if (ret < 0)
		return cmd_error(cmd, dev_exit_code(ret), "%s", ivshmem_errmsg());
	return EXIT_OK;
}

/* Resolve --offset/--length against the region; default length @def (0: to the end). */
int dev_range(const struct ivshmem_cmd *cmd, const struct dev *d, const struct opts *o,
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

const char *dev_human_size(uint64_t v, char *buf, size_t len)
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

void dev_json_string(const char *s)
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

int dev_one_target(const struct ivshmem_cmd *cmd, int argc, char **argv, const char **target)
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
int dev_open_one(const struct ivshmem_cmd *cmd, int argc, char **argv, unsigned int allowed,
			unsigned int open_flags, struct opts *o, struct dev *d, const char **target)
{
	int ret;

	if (dev_parse_opts(cmd, argc, argv, allowed, o) < 0)
		return EXIT_USAGE;
	if ((ret = dev_one_target(cmd, argc, argv, target)))
		return ret;
	if (optind != argc)
		return cmd_error(cmd, EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
	return dev_open(cmd, *target, o, open_flags, d);
}

int64_t dev_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
