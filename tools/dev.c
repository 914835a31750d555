// SPDX-License-Identifier: MIT
/* Shared pieces of the device subcommands (dev.h). */
#include "dev.h"

#include "ivshmem/layout.h"
#include "ivshmem/target.h"
#include "ivshmem/util.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static const char shortopts[] = "b:o:l:t:s:";

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
		{ "section", required_argument, NULL, OPT_SECTION },
		{ "progress", no_argument, NULL, OPT_PROGRESS },
		{ NULL, 0, NULL, 0 },
	};
	static const int short_to_long[128] = {
		['b'] = OPT_BACKEND, ['o'] = OPT_OFFSET, ['l'] = OPT_LENGTH,
		['t'] = OPT_TIMEOUT, ['s'] = OPT_SECTION,
	};
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->timeout_ms = -1;
	o->interval_ms = 100;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		if (c == '?' || c == ':') {
			cmd_bad_option(cmd, argc, argv, shortopts, longopts);
			return -1;
		}
		if (c > 0 && c < 128)
			c = short_to_long[c];
		if (c < OPT_BACKEND || !(allowed & ALLOW(c))) {
			cmd_error(cmd, EXIT_USAGE, "option '%s' does not apply to %s (see --help)",
				  argv[optind - 1], cmd->name);
			return -1;
		}
		switch (c) {
		case OPT_BACKEND:
			o->backend = optarg;
			break;
		case OPT_OFFSET:
		case OPT_LENGTH:
			if (ivshmem_parse_size(optarg, c == OPT_OFFSET ? &o->offset : &o->length) < 0) {
				cmd_error(cmd, EXIT_USAGE, "%s: %s%s", c == OPT_OFFSET ? "--offset"
					  : "--length", ivshmem_errmsg(), optarg[0] == '-' ?
					  " (negative numbers are not allowed)" : "");
				return -1;
			}
			if (c == OPT_LENGTH)
				o->have_length = true;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_TIMEOUT:
			/* -1 means forever, as for send and recv. */
			if (strcmp(optarg, "-1") == 0) {
				o->timeout_ms = -1;
				break;
			}
			if (ivshmem_parse_uint(optarg, INT32_MAX, &v) < 0) {
				cmd_error(cmd, EXIT_USAGE, "--timeout: '%s' is not a number of ms "
					  "(or -1: forever)", optarg);
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
		case OPT_SECTION:
			o->section = optarg;
			break;
		case OPT_PROGRESS:
			o->progress = true;
			break;
		}
	}
	return 0;
}

/* How many ivshmem PCI devices this machine has (0 on a host without them, or on error). */
static int pci_count(void)
{
	int n = ivshmem_pci_list(NULL, 0, 0);

	return n < 0 ? 0 : n;
}

static const char host_hint[] =
	"on the host, use the memory's file (/dev/shm/NAME) or join ivshmem-server as a peer "
	"(server:SOCKET)";

/*
 * A PCI selector found nothing. Say so in words that fit: on a machine without
 * ivshmem devices (the host) point at files and server:SOCKET; as root, never
 * blame missing privileges for a name nobody carries.
 */
static int pci_not_found(const struct ivshmem_cmd *cmd, const struct ivshmem_target *t, int err)
{
	int code = dev_exit_code(err);
	char what[96];
	int n;

	if (t->kind == IVSHMEM_TARGET_PCI_NAME)
		snprintf(what, sizeof(what), "name:%s", t->path);
	else if (t->kind == IVSHMEM_TARGET_PCI_INDEX)
		snprintf(what, sizeof(what), "index:%u", t->index);
	else
		snprintf(what, sizeof(what), "%s", t->bdf);
	if (err != -ENODEV)
		return cmd_error(cmd, code, "%s", ivshmem_errmsg());
	n = pci_count();
	if (n == 0)
		return cmd_error(cmd, code, "%s: this machine has no ivshmem PCI devices (pci:, "
				 "index: and name: select a device inside a guest); %s", what,
				 host_hint);
	if (t->kind == IVSHMEM_TARGET_PCI_NAME && geteuid() == 0)
		return cmd_error(cmd, code, "name:%s: none of the %d ivshmem device%s has a region "
				 "header named '%s' ('ivshmem list' shows their names)", t->path, n,
				 n == 1 ? "" : "s", t->path);
	return cmd_error(cmd, code, "%s", ivshmem_errmsg());
}

int dev_call_error(const struct ivshmem_cmd *cmd, const char *target, const struct dev *d,
		   int err)
{
	if (err == -ENOTSUP && ivshmem_backend_of(d->r) == IVSHMEM_BACKEND_FILE)
		return cmd_error(cmd, EXIT_FAIL, "%s is a file, which has no doorbells or "
				 "interrupts; on the host they come from ivshmem-server: use "
				 "server:SOCKET", target);
	return cmd_error(cmd, cmd_exit_code(err), "%s", ivshmem_errmsg());
}

/*
 * The PCI device behind a driver node (/dev/ivshmemN), best effort: the
 * node's sysfs entry links to it. Only for describing (info); false if unknown.
 */
static bool describe_node(const char *node, struct ivshmem_pci_dev *pci)
{
	char link[PATH_MAX], dest[PATH_MAX];
	struct stat st;
	const char *bdf;
	ssize_t n;

	if (stat(node, &st) < 0 || !S_ISCHR(st.st_mode))
		return false;
	snprintf(link, sizeof(link), "%s/dev/char/%u:%u/device", ivshmem_pci_sysfs_root(),
		 major(st.st_rdev), minor(st.st_rdev));
	n = readlink(link, dest, sizeof(dest) - 1);
	if (n <= 0)
		return false;
	dest[n] = '\0';
	bdf = strrchr(dest, '/');
	return ivshmem_pci_probe(bdf ? bdf + 1 : dest, pci, 0) == 0;
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
			return pci_not_found(cmd, &t, ret);
		d->is_pci = true;
		snprintf(buf, sizeof(buf), "pci:%s", d->pci.bdf);
		open_as = buf;
	}
	ret = ivshmem_open(&d->r, open_as, &oo);
	if (ret < 0)
		return cmd_error(cmd, dev_exit_code(ret), "%s", ivshmem_errmsg());
	if (t.kind == IVSHMEM_TARGET_DRIVER_NODE)
		d->is_pci = describe_node(t.path, &d->pci);
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

/* The window --offset is relative to: the named section, or the whole region. */
static int dev_window(const struct ivshmem_cmd *cmd, const struct dev *d, const struct opts *o,
		      uint64_t *base, uint64_t *size)
{
	struct ivshmem_section s;
	int ret;

	*base = 0;
	*size = ivshmem_size(d->r);
	if (!o->section)
		return EXIT_OK;
	ret = ivshmem_layout_find(d->r, o->section, &s);
	if (ret == -ENOENT)
		return cmd_error(cmd, EXIT_NODEV, "--section %s: no such section ('ivshmem info' "
				 "lists them)", o->section);
	if (ret == -ENODATA)
		return cmd_error(cmd, EXIT_NODEV, "--section %s: the region has no layout "
				 "('ivshmem format' writes one)", o->section);
	if (ret < 0)
		return cmd_error(cmd, dev_exit_code(ret), "--section %s: %s", o->section,
				 ivshmem_errmsg());
	*base = s.offset;
	*size = s.size;
	return EXIT_OK;
}

int dev_range(const struct ivshmem_cmd *cmd, const struct dev *d, const struct opts *o,
	      uint64_t def, uint64_t *start, uint64_t *len)
{
	const char *what = o->section ? "section" : "region";
	uint64_t base, size;
	int ret = dev_window(cmd, d, o, &base, &size);

	if (ret)
		return ret;
	/* Only an explicit --length 0 may start at the very end. */
	if (o->offset > size || (o->offset == size && !(o->have_length && o->length == 0)))
		return cmd_error(cmd, EXIT_USAGE, "--offset %" PRIu64 " is at or beyond the end of "
				 "the %s (%" PRIu64 " bytes)", o->offset, what, size);
	*len = o->have_length ? o->length : def ? def : size - o->offset;
	if (!o->have_length && *len > size - o->offset)
		*len = size - o->offset;
	if (*len > size - o->offset)
		return cmd_error(cmd, EXIT_USAGE, "--offset %" PRIu64 " + --length %" PRIu64
				 " is beyond the %s (%" PRIu64 " bytes)", o->offset, *len, what,
				 size);
	*start = base + o->offset;
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
