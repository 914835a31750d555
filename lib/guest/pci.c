// SPDX-License-Identifier: MIT
/*
 * lib/guest: PCI discovery. Find ivshmem devices in sysfs and resolve
 * selectors (pci:BDF, BDF, index:N, name:NAME) to a PCI address. Uses core
 * (errors, iomem, parsing) and format (a device's name from its header
 * bytes); never opens a region, so the backends above may use it. Everything is re-read
 * from sysfs on each call so hot-added and hot-removed devices are seen
 * without restarting anything.
 */
#include "ivshmem/pci.h"

#include "core/error.h"
#include "format/layout_header.h"
#include "guest/pci_internal.h"
#include "ivshmem/iomem.h"
#include "ivshmem/util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Upper bound on devices we sort; a guest with more ivshmem devices is not realistic. */
#define MAX_DEVICES 256

const char *ivshmem_pci_sysfs_root(void)
{
	const char *root = getenv("IVSHMEM_SYSFS_ROOT");

	return root && *root ? root : "/sys";
}

int ivshmem_pci_path(char *buf, size_t len, const char *bdf, const char *attr)
{
	int n = snprintf(buf, len, "%s/bus/pci/devices/%s%s%s", ivshmem_pci_sysfs_root(), bdf,
			 attr ? "/" : "", attr ? attr : "");

	if (n < 0 || (size_t)n >= len)
		return ivshmem_fail(ENAMETOOLONG, "sysfs path for %s is too long", bdf);
	return 0;
}

int ivshmem_pci_read_attr(const char *bdf, const char *attr, char *buf, size_t len)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd;

	if (ivshmem_pci_path(path, sizeof(path), bdf, attr) < 0)
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	while (n > 0 && isspace((unsigned char)buf[n - 1]))
		buf[--n] = '\0';
	return 0;
}

static int read_hex_attr(const char *bdf, const char *attr, unsigned long *out)
{
	char buf[64], *end;
	int ret = ivshmem_pci_read_attr(bdf, attr, buf, sizeof(buf));

	if (ret < 0)
		return ret;
	errno = 0;
	*out = strtoul(buf, &end, 16);
	if (errno || end == buf || *end)
		return -EINVAL;
	return 0;
}

int ivshmem_pci_bar(const char *bdf, int bar, uint64_t *phys, uint64_t *size)
{
	char buf[1024];
	const char *line = buf;
	int ret = ivshmem_pci_read_attr(bdf, "resource", buf, sizeof(buf));

	*phys = 0;
	*size = 0;
	if (ret < 0)
		return ret;
	/* One line per resource: "0xSTART 0xEND 0xFLAGS"; unused ones are all zero. */
	for (int i = 0; i < bar; i++) {
		line = strchr(line, '\n');
		if (!line)
			return -ENOENT;
		line++;
	}
	unsigned long long start, end, flags;

	if (sscanf(line, "%llx %llx %llx", &start, &end, &flags) != 3)
		return -EINVAL;
	if (end > start) {
		*phys = start;
		*size = end - start + 1;
	}
	return 0;
}

int ivshmem_pci_link_name(const char *bdf, const char *attr, char *out, size_t len)
{
	char path[PATH_MAX], target[PATH_MAX];
	const char *base;
	size_t n;
	ssize_t got;

	out[0] = '\0';
	if (ivshmem_pci_path(path, sizeof(path), bdf, attr) < 0)
		return -ENAMETOOLONG;
	got = readlink(path, target, sizeof(target) - 1);
	if (got <= 0)
		return got < 0 ? -errno : -ENOENT;
	target[got] = '\0';
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	n = strlen(base);
	if (n >= len)
		return -ENAMETOOLONG;
	memcpy(out, base, n + 1);
	return 0;
}

/*
 * Whether the config space lists an MSI-X capability (id 0x11). Only root can
 * read past the first 64 bytes, so this answers -1 (unknown) otherwise.
 */
static int has_msix_cap(const char *bdf)
{
	char path[PATH_MAX];
	uint8_t cfg[256];
	ssize_t n;
	int fd;

	if (ivshmem_pci_path(path, sizeof(path), bdf, "config") < 0)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = pread(fd, cfg, sizeof(cfg), 0);
	close(fd);
	if (n < 0x40 || !(cfg[0x06] & 0x10))	/* status: capability list present */
		return n >= 0x40 ? 0 : -1;
	/* Walk at most 48 capabilities so a looping list cannot hang us. */
	unsigned int pos = cfg[0x34] & 0xfc;

	for (int i = 0; i < 48 && pos >= 0x40 && pos + 1 < (unsigned int)n; i++) {
		if (cfg[pos] == 0x11)
			return 1;
		pos = cfg[pos + 1] & 0xfc;
	}
	return (size_t)n == sizeof(cfg) ? 0 : -1;
}

/* IVPosition through BAR0 in sysfs: one aligned 32-bit read. */
static int read_ivposition(const char *bdf, uint64_t regs_size)
{
	char path[PATH_MAX];
	void *regs;
	int fd, val;

	if (regs_size < 16 || ivshmem_pci_path(path, sizeof(path), bdf, "resource0") < 0)
		return -1;
	ivshmem_pci_enable_memory(bdf);	/* with decoding off, IVPosition reads as all-ones */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	regs = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (regs == MAP_FAILED)
		return -1;
	val = (int)ivshmem_reg_read32(regs, 8);
	munmap(regs, 4096);
	return val;
}

/*
 * Our driver owns BAR0 and BAR2 while bound, so they cannot be mapped through
 * sysfs; it publishes IVPosition and the region name as attributes instead.
 */
static int read_driver_attr(const char *bdf, const char *attr, char *buf, size_t len)
{
	char dir[PATH_MAX], rel[128];
	struct dirent *de;
	int ret = -ENOENT;
	DIR *d;

	if (ivshmem_pci_path(dir, sizeof(dir), bdf, "ivshmem") < 0)
		return -ENAMETOOLONG;
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "ivshmem", 7) != 0 ||
		    snprintf(rel, sizeof(rel), "ivshmem/%s/%s", de->d_name, attr) >= (int)sizeof(rel))
			continue;
		ret = ivshmem_pci_read_attr(bdf, rel, buf, len);
		break;
	}
	closedir(d);
	return ret;
}

static void read_from_driver(struct ivshmem_pci_dev *dev, unsigned int flags)
{
	char buf[80];
	uint64_t v;

	if ((flags & IVSHMEM_PCI_PROBE_REGS) &&
	    read_driver_attr(dev->bdf, "ivposition", buf, sizeof(buf)) == 0 &&
	    ivshmem_parse_uint(buf, 65535, &v) == 0)
		dev->ivposition = (int)v;
	if ((flags & IVSHMEM_PCI_PROBE_NAME) &&
	    read_driver_attr(dev->bdf, "name", buf, sizeof(buf)) == 0) {
		size_t n = strlen(buf);

		if (n < sizeof(dev->name)) {
			memcpy(dev->name, buf, n + 1);
			dev->name_status = n ? 1 : 0;
		}
	}
}

/*
 * A device nobody enabled (no driver, hot-added, or no firmware as on arm64's
 * -M virt) may have memory decoding off: its BARs then read as all-ones. sysfs
 * "enable" turns it on, as a driver would; a no-op when it is on.
 */
void ivshmem_pci_enable_memory(const char *bdf)
{
	char path[PATH_MAX];
	uint8_t cmd;
	int fd;

	if (ivshmem_pci_path(path, sizeof(path), bdf, "config") < 0)
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (pread(fd, &cmd, 1, 4) != 1 || (cmd & 0x02)) {
		close(fd);
		return;
	}
	close(fd);
	if (ivshmem_pci_path(path, sizeof(path), bdf, "enable") < 0)
		return;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, "1", 1) != 1) {
		/* Best effort: the mmap below still works, reads just return all-ones. */
	}
	close(fd);
}

/* Test hook, as in the devmem backend: host tests point it at a plain file. */
static const char *devmem_path(void)
{
	const char *p = getenv("IVSHMEM_DEVMEM_PATH");

	return p && *p ? p : "/dev/mem";
}

/*
 * Copy the first IVSHMEM_LAYOUT_HEADER_SIZE bytes of BAR2 into @raw through a
 * read-only mapping of sysfs resource2, else of /dev/mem at the BAR (both need
 * root). The mapping is uncached: aligned loads only.
 */
static int read_bar2_head(const struct ivshmem_pci_dev *dev, uint8_t *raw)
{
	const size_t len = IVSHMEM_LAYOUT_HEADER_SIZE;
	char path[PATH_MAX];
	void *p = MAP_FAILED;
	int fd;

	ivshmem_pci_enable_memory(dev->bdf);
	if (ivshmem_pci_path(path, sizeof(path), dev->bdf, "resource2") == 0) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
			close(fd);
		}
	}
	if (p == MAP_FAILED && dev->mem_phys && dev->mem_phys % 4096 == 0) {
		fd = open(devmem_path(), O_RDONLY | O_SYNC | O_CLOEXEC);
		if (fd >= 0) {
			p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, (off_t)dev->mem_phys);
			close(fd);
		}
	}
	if (p == MAP_FAILED)
		return -1;
	ivshmem_iomem_read(raw, p, len);
	munmap(p, len);
	return 0;
}

/* The region header's name, decoded by the layout format's pure function. */
static void read_name(struct ivshmem_pci_dev *dev)
{
	struct ivshmem_layout_header h;
	uint8_t *raw;
	char saved[IVSHMEM_ERRMSG_MAX];
	int ret;

	dev->name_status = -1;
	dev->name[0] = '\0';
	if (dev->mem_size < IVSHMEM_LAYOUT_HEADER_SIZE) {
		dev->name_status = 0;
		return;
	}
	raw = malloc(IVSHMEM_LAYOUT_HEADER_SIZE);
	/* A device we cannot read is listed without a name. */
	if (!raw || read_bar2_head(dev, raw) < 0) {
		free(raw);
		return;
	}
	/* A corrupt header must not replace the caller's error message. */
	snprintf(saved, sizeof(saved), "%s", ivshmem_errmsg());
	ret = ivshmem_layout_header_decode(raw, dev->mem_size, &h);
	ivshmem_fail(0, "%s", saved);
	free(raw);
	dev->name_status = ret > 0 ? 1 : ret == 0 ? 0 : -2;
	if (ret > 0 && strlen(h.name) < sizeof(dev->name))
		memcpy(dev->name, h.name, strlen(h.name) + 1);
	else if (ret > 0)
		dev->name_status = -2;
}

int ivshmem_pci_probe(const char *bdf, struct ivshmem_pci_dev *dev, unsigned int flags)
{
	unsigned long vendor = 0, device = 0, rev;
	uint64_t bar1_phys, bar1_size;
	int ret;

	memset(dev, 0, sizeof(*dev));
	dev->ivposition = -1;
	dev->name_status = -1;
	if (snprintf(dev->bdf, sizeof(dev->bdf), "%s", bdf) >= (int)sizeof(dev->bdf))
		return ivshmem_fail(EINVAL, "%s: not a PCI address", bdf);
	ret = read_hex_attr(bdf, "vendor", &vendor);
	if (ret == -ENOENT)
		return ivshmem_fail(ENODEV, "%s: no such PCI device (in %s/bus/pci/devices)", bdf,
				    ivshmem_pci_sysfs_root());
	if (ret < 0)
		return ivshmem_fail(-ret, "%s: cannot read its vendor ID: %s", bdf, strerror(-ret));
	if (read_hex_attr(bdf, "device", &device) < 0 || vendor != IVSHMEM_PCI_VENDOR ||
	    device != IVSHMEM_PCI_DEVICE)
		return ivshmem_fail(ENODEV, "%s: not an ivshmem device (%04lx:%04lx, want 1af4:1110)",
				    bdf, vendor, device);
	if (read_hex_attr(bdf, "revision", &rev) == 0)
		dev->revision = (unsigned int)rev;
	ivshmem_pci_bar(bdf, 0, &dev->regs_phys, &dev->regs_size);
	ivshmem_pci_bar(bdf, 1, &bar1_phys, &bar1_size);
	ivshmem_pci_bar(bdf, 2, &dev->mem_phys, &dev->mem_size);
	/* BAR1 holds the MSI-X table: only ivshmem-doorbell has it. */
	dev->doorbell = bar1_size > 0 || has_msix_cap(bdf) == 1;
	ivshmem_pci_link_name(bdf, "driver", dev->driver, sizeof(dev->driver));
	ivshmem_pci_link_name(bdf, "iommu_group", dev->iommu_group, sizeof(dev->iommu_group));
	if (strcmp(dev->driver, "ivshmem") == 0)
		read_from_driver(dev, flags);
	if ((flags & IVSHMEM_PCI_PROBE_REGS) && dev->ivposition < 0)
		dev->ivposition = read_ivposition(bdf, dev->regs_size);
	/*
	 * Not through VFIO: opening the group would take the device from whoever
	 * else wants it and reprogram its MSI-X routing just to read 64 bytes.
	 */
	if ((flags & IVSHMEM_PCI_PROBE_NAME) && dev->name_status < 0 && dev->mem_size &&
	    strcmp(dev->driver, "vfio-pci"))
		read_name(dev);
	return 0;
}

static int cmp_bdf(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Addresses of every ivshmem device, sorted; the caller frees names[i] and names. */
static int scan(char ***names_out)
{
	char path[PATH_MAX];
	struct dirent *de;
	char **names = NULL;
	int n = 0;
	DIR *d;

	*names_out = NULL;
	snprintf(path, sizeof(path), "%s/bus/pci/devices", ivshmem_pci_sysfs_root());
	d = opendir(path);
	if (!d) {
		int err = errno;

		if (err == ENOENT)
			return 0;	/* no PCI bus (a container, the host without sysfs): no devices */
		return ivshmem_fail(err, "%s: %s", path, strerror(err));
	}
	names = calloc(MAX_DEVICES, sizeof(*names));
	if (!names) {
		closedir(d);
		return ivshmem_fail(ENOMEM, "out of memory");
	}
	while ((de = readdir(d)) && n < MAX_DEVICES) {
		unsigned long vendor, device;

		if (de->d_name[0] == '.')
			continue;
		if (read_hex_attr(de->d_name, "vendor", &vendor) < 0 ||
		    read_hex_attr(de->d_name, "device", &device) < 0 ||
		    vendor != IVSHMEM_PCI_VENDOR || device != IVSHMEM_PCI_DEVICE)
			continue;
		names[n] = strdup(de->d_name);
		if (!names[n])
			break;
		n++;
	}
	closedir(d);
	qsort(names, (size_t)n, sizeof(*names), cmp_bdf);
	*names_out = names;
	return n;
}

static void free_names(char **names, int n)
{
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int ivshmem_pci_list(struct ivshmem_pci_dev *devs, size_t max, unsigned int flags)
{
	char **names;
	int n = scan(&names);
	int found = 0;

	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		struct ivshmem_pci_dev tmp;

		/* A device removed between the scan and the probe is simply not listed. */
		if (ivshmem_pci_probe(names[i], (size_t)found < max ? &devs[found] : &tmp,
				      flags) < 0)
			continue;
		found++;
	}
	free_names(names, n);
	return found;
}

int ivshmem_pci_parse_bdf(const char *s, char *out, size_t len)
{
	unsigned int dom = 0, bus, dev, fn;
	int used = 0;

	if (sscanf(s, "%x:%x:%x.%x%n", &dom, &bus, &dev, &fn, &used) == 4 && !s[used]) {
		/* full form */
	} else if (dom = 0, used = 0,
		   sscanf(s, "%x:%x.%x%n", &bus, &dev, &fn, &used) == 3 && !s[used]) {
		/* short form: domain 0 */
	} else {
		return ivshmem_fail(EINVAL,
				    "'%s' is not a PCI address (want DDDD:BB:DD.F or BB:DD.F, hex)",
				    s);
	}
	for (const char *p = s; *p; p++) {
		if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
			return ivshmem_fail(EINVAL, "'%s' is not a PCI address (stray '%c')", s, *p);
	}
	if (dom > 0xffff || bus > 0xff || dev > 0x1f || fn > 7)
		return ivshmem_fail(EINVAL,
				    "'%s': PCI address out of range (domain <= ffff, bus <= ff, "
				    "device <= 1f, function <= 7)",
				    s);
	if (snprintf(out, len, "%04x:%02x:%02x.%x", dom, bus, dev, fn) >= (int)len)
		return ivshmem_fail(ENAMETOOLONG, "PCI address buffer too small");
	return 0;
}

int ivshmem_pci_resolve_index(unsigned int idx, char *bdf, size_t len)
{
	char **names;
	int n, ret;

	n = scan(&names);
	if (n < 0)
		return n;
	if (idx >= (uint64_t)n)
		ret = ivshmem_fail(ENODEV, "index:%u: there %s only %d ivshmem device%s", idx,
				   n == 1 ? "is" : "are", n, n == 1 ? "" : "s");
	else if (snprintf(bdf, len, "%s", names[idx]) >= (int)len)
		ret = ivshmem_fail(ENAMETOOLONG, "PCI address buffer too small");
	else
		ret = 0;
	free_names(names, n);
	return ret;
}

int ivshmem_pci_resolve_name(const char *name, char *bdf, size_t len)
{
	struct ivshmem_pci_dev *devs;
	int n, matches = 0, ret;
	char first[16] = "", second[16] = "";

	if (!*name)
		return ivshmem_fail(EINVAL, "name: needs the region's name (name:NAME)");
	devs = calloc(MAX_DEVICES, sizeof(*devs));
	if (!devs)
		return ivshmem_fail(ENOMEM, "out of memory");
	n = ivshmem_pci_list(devs, MAX_DEVICES, IVSHMEM_PCI_PROBE_NAME);
	if (n < 0) {
		free(devs);
		return n;
	}
	if (n > MAX_DEVICES)
		n = MAX_DEVICES;
	for (int i = 0; i < n; i++) {
		if (devs[i].name_status != 1 || strcmp(devs[i].name, name) != 0)
			continue;
		if (matches++ == 0)
			snprintf(first, sizeof(first), "%s", devs[i].bdf);
		else if (matches == 2)
			snprintf(second, sizeof(second), "%s", devs[i].bdf);
	}
	free(devs);
	if (matches == 0)
		return ivshmem_fail(ENODEV,
				    "name:%s: no ivshmem device has a region header named '%s' "
				    "(%d device%s checked; reading headers needs root or the driver)",
				    name, name, n, n == 1 ? "" : "s");
	if (matches > 1)
		return ivshmem_fail(EEXIST,
				    "name:%s: %d devices are named '%s' (%s, %s%s); select one by address",
				    name, matches, name, first, second, matches > 2 ? ", ..." : "");
	ret = snprintf(bdf, len, "%s", first) >= (int)len ? -ENAMETOOLONG : 0;
	if (ret)
		return ivshmem_fail(ENAMETOOLONG, "PCI address buffer too small");
	return 0;
}

bool ivshmem_pci_present(const char *bdf)
{
	unsigned long vendor;

	return read_hex_attr(bdf, "vendor", &vendor) == 0 && vendor == IVSHMEM_PCI_VENDOR;
}

void ivshmem_guest_head_init(struct ivshmem_guest_head *h, const char *bdf)
{
	uint64_t size;

	memset(h, 0, sizeof(*h));
	snprintf(h->bdf, sizeof(h->bdf), "%.12s", bdf);
	if (ivshmem_pci_bar(bdf, 2, &h->mem_phys, &size) < 0)
		h->mem_phys = 0;
}
