// SPDX-License-Identifier: MIT
/*
 * lib/open: the one parser that turns a target string into a typed target
 * (the rules are listed in include/ivshmem/target.h), and PCI target
 * resolution. Uses core (errors, parsing) and guest (PCI addresses, index
 * and name look-ups).
 */
#include "ivshmem/target.h"

#include "core/error.h"
#include "guest/pci_internal.h"
#include "ivshmem/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Devices a guest may have; index:N beyond it is surely a typo. */
#define MAX_INDEX 255

static bool has_prefix(const char *s, const char *prefix, const char **rest)
{
	size_t n = strlen(prefix);

	if (strncmp(s, prefix, n) != 0)
		return false;
	*rest = s + n;
	return true;
}

static int host_prefix(const char *s, enum ivshmem_target_kind kind, enum ivshmem_backend need,
		       enum ivshmem_backend want, const char *rest, struct ivshmem_target *t)
{
	if (want != IVSHMEM_BACKEND_AUTO && want != need)
		return ivshmem_fail(EINVAL, "%s: a %s target needs the %s backend", s,
				    ivshmem_backend_name(need), ivshmem_backend_name(need));
	if (!*rest)
		return ivshmem_fail(EINVAL, "%s: no path after the prefix", s);
	t->kind = kind;
	t->path = rest;
	return 0;
}

/* A path on disk: what it is decides the backend. */
static int path_target(const char *s, enum ivshmem_backend want, struct ivshmem_target *t)
{
	struct stat st;
	bool exists = stat(s, &st) == 0;

	t->path = s;
	if (exists && S_ISSOCK(st.st_mode) && want == IVSHMEM_BACKEND_AUTO) {
		t->kind = IVSHMEM_TARGET_SERVER;
		return 0;
	}
	if (exists && S_ISCHR(st.st_mode) &&
	    (want == IVSHMEM_BACKEND_AUTO || want == IVSHMEM_BACKEND_DRIVER)) {
		t->kind = IVSHMEM_TARGET_DRIVER_NODE;
		return 0;
	}
	if (want != IVSHMEM_BACKEND_AUTO)
		return ivshmem_fail(EINVAL, "%s: backend %s needs a PCI device selector", s,
				    ivshmem_backend_name(want));
	t->kind = IVSHMEM_TARGET_FILE;
	return 0;
}

static int pci_target(const char *s, const char *arg, struct ivshmem_target *t)
{
	int ret = ivshmem_pci_parse_bdf(arg, t->bdf, sizeof(t->bdf));

	if (ret < 0)
		return ret;
	t->kind = IVSHMEM_TARGET_PCI_ADDRESS;
	t->path = s;
	return 0;
}

int ivshmem_target_parse(const char *s, enum ivshmem_backend want, struct ivshmem_target *t)
{
	const char *rest;
	uint64_t idx;
	struct stat st;

	memset(t, 0, sizeof(*t));
	if (!s || !*s)
		return ivshmem_fail(EINVAL, "no target given");
	if (has_prefix(s, "file:", &rest))
		return host_prefix(s, IVSHMEM_TARGET_FILE, IVSHMEM_BACKEND_FILE, want, rest, t);
	if (has_prefix(s, "server:", &rest))
		return host_prefix(s, IVSHMEM_TARGET_SERVER, IVSHMEM_BACKEND_SERVER, want, rest, t);
	if (want == IVSHMEM_BACKEND_FILE || want == IVSHMEM_BACKEND_SERVER)
		return host_prefix(s, want == IVSHMEM_BACKEND_FILE ? IVSHMEM_TARGET_FILE :
				   IVSHMEM_TARGET_SERVER, want, want, s, t);
	if (has_prefix(s, "pci:", &rest))
		return pci_target(s, rest, t);
	if (has_prefix(s, "index:", &rest)) {
		if (ivshmem_parse_uint(rest, MAX_INDEX, &idx) < 0)
			return ivshmem_fail(EINVAL, "%s: the index must be a number from 0 to %d "
					    "(see 'ivshmem list')", s, MAX_INDEX);
		t->kind = IVSHMEM_TARGET_PCI_INDEX;
		t->index = (unsigned int)idx;
		t->path = s;
		return 0;
	}
	if (has_prefix(s, "name:", &rest)) {
		if (!*rest)
			return ivshmem_fail(EINVAL, "%s: needs the region's name (name:NAME)", s);
		t->kind = IVSHMEM_TARGET_PCI_NAME;
		t->path = rest;
		return 0;
	}
	/* An explicit path, or a relative one that exists ("00:10.0" in the cwd). */
	if (s[0] == '/' || s[0] == '.' || stat(s, &st) == 0)
		return path_target(s, want, t);
	/* Anything else with a colon is meant as a PCI address. */
	if (strchr(s, ':'))
		return pci_target(s, s, t);
	return ivshmem_fail(EINVAL,
			    "'%s' is not a target (want a file path, file:PATH, server:SOCKET, "
			    "pci:DDDD:BB:DD.F, BB:DD.F, index:N or name:NAME)", s);
}

int ivshmem_target_find_pci(const struct ivshmem_target *t, struct ivshmem_pci_dev *dev,
			    unsigned int flags)
{
	char bdf[16];
	int ret;

	switch (t->kind) {
	case IVSHMEM_TARGET_PCI_ADDRESS:
		snprintf(bdf, sizeof(bdf), "%s", t->bdf);
		ret = 0;
		break;
	case IVSHMEM_TARGET_PCI_INDEX:
		ret = ivshmem_pci_resolve_index(t->index, bdf, sizeof(bdf));
		break;
	case IVSHMEM_TARGET_PCI_NAME:
		ret = ivshmem_pci_resolve_name(t->path, bdf, sizeof(bdf));
		break;
	default:
		return ivshmem_fail(EINVAL, "%s: not a PCI device selector", t->path);
	}
	if (ret < 0)
		return ret;
	/* Make sure it exists and is ours, so every backend gets a sane address. */
	return ivshmem_pci_probe(bdf, dev, flags);
}

int ivshmem_pci_find(const char *selector, struct ivshmem_pci_dev *dev, unsigned int flags)
{
	struct ivshmem_target t;
	int ret = ivshmem_target_parse(selector, IVSHMEM_BACKEND_AUTO, &t);

	if (ret < 0)
		return ret;
	if (!ivshmem_target_is_pci(&t))
		return ivshmem_fail(EINVAL, "'%s' is not a PCI device selector (pci:DDDD:BB:DD.F, "
				    "BB:DD.F, index:N or name:NAME)", selector);
	return ivshmem_target_find_pci(&t, dev, flags);
}
