// SPDX-License-Identifier: MIT
/*
 * Guest PCI discovery, selectors and the sysfs backend over a fake sysfs tree
 * (IVSHMEM_SYSFS_ROOT): on the host the "resource" files are plain files, so
 * mapping, header names, IVPosition, the doorbell encoding and aligned copies
 * at odd offsets can all be checked without a guest.
 */
#include "ivshmem/layout.h"
#include "ivshmem/pci.h"
#include "ivshmem/region.h"
#include "ivshmem/target.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[256];	/* short, so every path built from it fits PATH_MAX */

static void put(const char *bdf, const char *attr, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/%s", root, bdf, attr);
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(1);
	}
	fputs(text, f);
	fclose(f);
}

static void sized_file(const char *bdf, const char *attr, off_t size)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/%s", root, bdf, attr);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, size) < 0) {
		perror(path);
		exit(1);
	}
	close(fd);
}

/* A fake PCI function: BAR0 256 bytes, BAR1 (doorbell only) 4K, BAR2 @mem bytes. */
static void add_dev(const char *bdf, unsigned int vendor, unsigned int device, uint64_t mem,
		    int doorbell, const char *driver)
{
	char path[PATH_MAX], text[1024];
	uint64_t bar2 = 0x800000000ull + (mem << 1);

	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s", root, bdf);
	mkdir(path, 0755);
	snprintf(text, sizeof(text), "0x%04x\n", vendor);
	put(bdf, "vendor", text);
	snprintf(text, sizeof(text), "0x%04x\n", device);
	put(bdf, "device", text);
	put(bdf, "revision", "0x01\n");
	snprintf(text, sizeof(text),
		 "0x00000000fe000000 0x00000000fe0000ff 0x0000000000040200\n"
		 "0x%016llx 0x%016llx 0x0000000000040200\n"
		 "0x%016llx 0x%016llx 0x000000000014220c\n"
		 "0x0000000000000000 0x0000000000000000 0x0000000000000000\n",
		 doorbell ? 0xfe001000ull : 0ull, doorbell ? 0xfe001fffull : 0ull,
		 (unsigned long long)bar2, (unsigned long long)(bar2 + mem - 1));
	put(bdf, "resource", text);
	sized_file(bdf, "resource0", 256);
	sized_file(bdf, "resource2", (off_t)mem);
	if (driver) {
		char target[PATH_MAX];

		snprintf(path, sizeof(path), "%s/bus/pci/drivers/%s", root, driver);
		mkdir(path, 0755);
		snprintf(target, sizeof(target), "../../drivers/%s", driver);
		snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/driver", root, bdf);
		if (symlink(target, path) < 0)
			perror(path);
	}
}

static void name_region(const char *bdf, const char *name)
{
	struct ivshmem_open_opts o = { .backend = IVSHMEM_BACKEND_FILE };
	struct ivshmem_region *r;
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/resource2", root, bdf);
	if (ivshmem_open(&r, path, &o) < 0 || ivshmem_layout_format(r, name) < 0) {
		tap_diag("cannot format %s: %s", path, ivshmem_errmsg());
		exit(1);
	}
	ivshmem_close(r);
}

static int resolve(const char *sel, char *bdf)
{
	struct ivshmem_pci_dev d;
	int ret = ivshmem_pci_find(sel, &d, 0);

	if (ret == 0)
		strcpy(bdf, d.bdf);
	else
		bdf[0] = '\0';
	return ret;
}

static void test_parse(void)
{
	static const struct {
		const char *in, *out;
	} good[] = {
		{ "0000:00:10.0", "0000:00:10.0" }, { "00:10.0", "0000:00:10.0" },
		{ "0001:02:1F.7", "0001:02:1f.7" }, { "ffff:ff:1f.7", "ffff:ff:1f.7" },
		{ "0:0:1.0", "0000:00:01.0" },
	};
	static const char *const bad[] = {
		"", "00:10", "00:20.0", "00:1f.8", "zz:00.0", "00:10.0x", "10000:00:00.0",
		"00:10.0 ", " 00:10.0", "00:100.0", "0000:00:10.0:1", "-1:00.0", "00:+1.0",
	};
	char out[32];
	int fails = 0;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (ivshmem_pci_parse_bdf(good[i].in, out, sizeof(out)) != 0 ||
		    strcmp(out, good[i].out) != 0) {
			tap_diag("parse '%s' gave '%s'", good[i].in, out);
			fails++;
		}
	}
	tap_is(fails, 0, "good PCI addresses normalize (short form, case, domain)");
	fails = 0;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (ivshmem_pci_parse_bdf(bad[i], out, sizeof(out)) != -EINVAL) {
			tap_diag("'%s' was accepted as '%s'", bad[i], out);
			fails++;
		}
	}
	tap_is(fails, 0, "malformed or out-of-range PCI addresses are refused with EINVAL");
	tap_ok(ivshmem_pci_parse_bdf("00:10.0", out, 8) == -ENAMETOOLONG,
	       "a too-small output buffer is an error, not a truncation");
}

static void test_discovery(void)
{
	struct ivshmem_pci_dev devs[8];
	int n;

	n = ivshmem_pci_list(devs, 8, 0);
	tap_is(n, 3, "three ivshmem devices found, the other vendor's device skipped");
	if (n != 3)
		return;
	tap_ok(strcmp(devs[0].bdf, "0000:00:10.0") == 0 && strcmp(devs[1].bdf, "0000:00:11.0") == 0 &&
		       strcmp(devs[2].bdf, "0001:02:03.1") == 0,
	       "list is sorted by address (%s %s %s)", devs[0].bdf, devs[1].bdf, devs[2].bdf);
	tap_ok(devs[0].mem_size == 1 << 20 && devs[1].mem_size == 1 << 19 &&
		       devs[2].mem_size == 1 << 16,
	       "BAR2 sizes from the resource file");
	tap_ok(!devs[0].doorbell && devs[1].doorbell && !devs[2].doorbell,
	       "doorbell detected from BAR1");
	tap_ok(devs[0].driver[0] == '\0' && strcmp(devs[1].driver, "ivshmem") == 0,
	       "bound driver read from the driver link (%s)", devs[1].driver);
	tap_ok(devs[0].revision == 1 && devs[0].ivposition == -1 && devs[0].name_status == -1,
	       "revision read; IVPosition and name not probed unless asked");
	tap_is(ivshmem_pci_list(devs, 1, 0), 3, "a short array still reports the total count");
}

static bool is_pci_target(const char *s)
{
	struct ivshmem_target t;

	return ivshmem_target_parse(s, IVSHMEM_BACKEND_AUTO, &t) == 0 && ivshmem_target_is_pci(&t);
}

static void test_selectors(void)
{
	char bdf[32];

	tap_ok(resolve("index:0", bdf) == 0 && strcmp(bdf, "0000:00:10.0") == 0, "index:0");
	tap_ok(resolve("index:2", bdf) == 0 && strcmp(bdf, "0001:02:03.1") == 0, "index:2");
	tap_is(resolve("index:3", bdf), -ENODEV, "index past the end is ENODEV");
	tap_ok(strstr(ivshmem_errmsg(), "only 3") != NULL, "... and says how many there are: %s",
	       ivshmem_errmsg());
	tap_is(resolve("index:-1", bdf), -EINVAL, "negative index is EINVAL");
	tap_is(resolve("index:", bdf), -EINVAL, "empty index is EINVAL");
	tap_is(resolve("index:1x", bdf), -EINVAL, "trailing junk in index is EINVAL");
	tap_ok(resolve("pci:0000:00:11.0", bdf) == 0 && strcmp(bdf, "0000:00:11.0") == 0,
	       "pci:full address");
	tap_ok(resolve("00:11.0", bdf) == 0 && strcmp(bdf, "0000:00:11.0") == 0,
	       "bare short address");
	tap_ok(resolve("pci:1:2:3.1", bdf) == 0 && strcmp(bdf, "0001:02:03.1") == 0,
	       "pci:address in another domain");
	tap_is(resolve("pci:00:12.0", bdf), -ENODEV, "absent address is ENODEV");
	tap_is(resolve("0000:00:02.0", bdf), -ENODEV, "a non-ivshmem device is ENODEV");
	tap_ok(strstr(ivshmem_errmsg(), "not an ivshmem device") != NULL, "... and says so: %s",
	       ivshmem_errmsg());
	tap_is(resolve("pci:zz", bdf), -EINVAL, "pci:garbage is EINVAL");
	tap_is(resolve("00:99.0", bdf), -EINVAL, "out-of-range device number is EINVAL");
	tap_is(resolve("name:", bdf), -EINVAL, "empty name is EINVAL");
	tap_ok(!is_pci_target("/dev/shm/x") && !is_pci_target("file:a:b") &&
		       is_pci_target("index:0") && is_pci_target("00:10.0"),
	       "paths and file: targets are not PCI selectors");
}

static void test_names(void)
{
	struct ivshmem_pci_dev devs[8];
	char bdf[32];
	int n;

	name_region("0000:00:10.0", "alpha");
	name_region("0000:00:11.0", "beta");
	n = ivshmem_pci_list(devs, 8, IVSHMEM_PCI_PROBE_NAME);
	tap_ok(n == 3 && devs[0].name_status == 1 && strcmp(devs[0].name, "alpha") == 0 &&
		       devs[1].name_status == 1 && strcmp(devs[1].name, "beta") == 0 &&
		       devs[2].name_status == 0,
	       "names read from region headers; an unformatted region has none");
	tap_ok(resolve("name:beta", bdf) == 0 && strcmp(bdf, "0000:00:11.0") == 0, "name:beta");
	tap_ok(resolve("name:alpha", bdf) == 0 && strcmp(bdf, "0000:00:10.0") == 0, "name:alpha");
	tap_is(resolve("name:gamma", bdf), -ENODEV, "unknown name is ENODEV");
	name_region("0001:02:03.1", "beta");
	tap_is(resolve("name:beta", bdf), -EEXIST, "a name two devices carry is EEXIST");
	tap_ok(strstr(ivshmem_errmsg(), "0000:00:11.0") && strstr(ivshmem_errmsg(), "0001:02:03.1"),
	       "... naming both: %s", ivshmem_errmsg());
}

static void test_sysfs_backend(void)
{
	struct ivshmem_open_opts o = { .backend = IVSHMEM_BACKEND_SYSFS };
	struct ivshmem_region *r;
	char path[PATH_MAX];
	uint8_t pattern[300], got[300], file[300];
	uint32_t reg = 7;
	int fd, bad = 0;

	/* IVPosition lives at offset 8 of BAR0. */
	snprintf(path, sizeof(path), "%s/bus/pci/devices/0000:00:11.0/resource0", root);
	fd = open(path, O_RDWR);
	if (fd < 0 || pwrite(fd, &reg, 4, 8) != 4) {
		tap_ok(0, "writing the fake IVPosition");
		return;
	}
	if (!tap_ok(ivshmem_open(&r, "00:11.0", &o) == 0, "sysfs backend opens a fake device")) {
		tap_diag("%s", ivshmem_errmsg());
		close(fd);
		return;
	}
	tap_ok(ivshmem_is_device_memory(r) && ivshmem_size(r) == 1 << 19 && ivshmem_vectors(r) == 0,
	       "sysfs: device memory, BAR2 size, no interrupt vectors");
	tap_is(ivshmem_own_id(r), 7, "own id read from IVPosition");
	tap_ok(ivshmem_notify(r, 3, 2) == 0, "doorbell write accepted");
	reg = 0;
	if (pread(fd, &reg, 4, 12) != 4)
		reg = 0xdeadbeef;
	tap_ok(reg == (3u << 16 | 2), "doorbell register = peer << 16 | vector (%#x)", reg);
	tap_is(ivshmem_notify(r, 3, 256), -EINVAL, "vector > 255 is refused (QEMU would mask it)");
	tap_ok(ivshmem_event_fd(r, 0) == -ENOTSUP && strstr(ivshmem_errmsg(), "interrupts"),
	       "no interrupts from sysfs, and the error says so: %s", ivshmem_errmsg());
	close(fd);

	/* Aligned-only copies at every odd offset/length must still be byte-exact. */
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 13 + 1);
	snprintf(path, sizeof(path), "%s/bus/pci/devices/0000:00:11.0/resource2", root);
	fd = open(path, O_RDONLY);
	for (uint64_t off = 8192; off < 8192 + 19; off++) {
		for (size_t len = 0; len < sizeof(pattern); len += 37) {
			memset(got, 0, sizeof(got));
			if (ivshmem_write(r, off, pattern, len) < 0 ||
			    ivshmem_read(r, off, got, len) < 0 || memcmp(got, pattern, len) != 0 ||
			    pread(fd, file, len, (off_t)off) != (ssize_t)len ||
			    memcmp(file, pattern, len) != 0)
				bad++;
		}
	}
	close(fd);
	tap_is(bad, 0, "unaligned offsets/lengths through the device-memory copy helpers");
	tap_is(ivshmem_read(r, (1 << 19) - 4, got, 5), -ERANGE, "read past the end is ERANGE");
	tap_is(ivshmem_write(r, UINT64_MAX, got, 1), -ERANGE, "huge offset is ERANGE, no overflow");
	ivshmem_close(r);

	o.backend = IVSHMEM_BACKEND_VFIO;
	tap_ok(ivshmem_open(&r, "00:11.0", &o) < 0 && strstr(ivshmem_errmsg(), "'ivshmem'"),
	       "vfio refuses a device bound elsewhere: %s", ivshmem_errmsg());
	tap_ok(ivshmem_open(&r, "00:10.0", &o) < 0 && strstr(ivshmem_errmsg(), "not bound"),
	       "vfio refuses an unbound device: %s", ivshmem_errmsg());
	o.backend = IVSHMEM_BACKEND_DEVMEM;
	setenv("IVSHMEM_DEVMEM_PATH", "/nonexistent/mem", 1);
	tap_ok(ivshmem_open(&r, "00:10.0", &o) < 0 && strstr(ivshmem_errmsg(), "missing"),
	       "devmem says when /dev/mem is missing: %s", ivshmem_errmsg());
	unsetenv("IVSHMEM_DEVMEM_PATH");
}

/* Reads the mapping directly, as ivshmem_layout_print() does. */
static int touch_mapping(struct ivshmem_region *r, void *arg)
{
	volatile const uint8_t *p = ivshmem_base(r);

	(void)arg;
	return p[8192] == 0xff ? 8 : 7;
}

static void test_hotplug(void)
{
	struct ivshmem_pci_dev devs[8];
	char path[PATH_MAX];
	char bdf[32];

	struct ivshmem_open_opts o = { .backend = IVSHMEM_BACKEND_SYSFS };
	struct ivshmem_region *r = NULL, *r2 = NULL;
	uint8_t buf[64];

	add_dev("0000:00:12.0", 0x1af4, 0x1110, 1 << 16, 0, NULL);
	tap_is(ivshmem_pci_list(devs, 8, 0), 4, "a device added at runtime is listed at once");
	tap_ok(ivshmem_pci_present("0000:00:12.0"), "... and present");
	tap_ok(ivshmem_open(&r, "00:12.0", &o) == 0, "... and opens");
	tap_ok(r && ivshmem_read_checked(r, 100, buf, 10) == 0 && ivshmem_region_present(r) == 0,
	       "checked read of a present device works");

	/* A revoked mapping: the backing "resource2" shrinks, the next access faults. */
	add_dev("0000:00:13.0", 0x1af4, 0x1110, 1 << 16, 0, NULL);
	tap_ok(ivshmem_open(&r2, "00:13.0", &o) == 0, "second device opens");
	sized_file("0000:00:13.0", "resource2", 0);
	tap_is(r2 ? ivshmem_read_checked(r2, 8192, buf, sizeof(buf)) : 0, -ENODEV,
	       "SIGBUS during a checked read becomes ENODEV");
	tap_ok(strstr(ivshmem_errmsg(), "SIGBUS") && strstr(ivshmem_errmsg(), "removed"),
	       "... with a clear message: %s", ivshmem_errmsg());
	tap_is(r2 ? ivshmem_write_checked(r2, 8192, buf, sizeof(buf)) : 0, -ENODEV,
	       "... and so does a checked write");
	tap_is(r2 ? ivshmem_guarded(r2, touch_mapping, NULL) : 0, -ENODEV,
	       "... and code reading the mapping itself under ivshmem_guarded()");
	tap_is(r ? ivshmem_guarded(r, touch_mapping, NULL) : 0, 7,
	       "ivshmem_guarded() passes on what the code returns");
	ivshmem_close(r2);
	snprintf(path, sizeof(path), "rm -rf '%s/bus/pci/devices/0000:00:13.0'", root);
	if (system(path) != 0)
		tap_diag("rm failed");

	snprintf(path, sizeof(path), "rm -rf '%s/bus/pci/devices/0000:00:12.0'", root);
	if (system(path) != 0)
		tap_diag("rm failed");
	tap_is(ivshmem_pci_list(devs, 8, 0), 3, "a removed device disappears at once");
	tap_ok(!ivshmem_pci_present("0000:00:12.0"), "... and is not present");
	tap_is(resolve("00:12.0", bdf), -ENODEV, "... and its address no longer resolves");
	/* The mapping itself still reads (as /dev/mem would): only the check can tell. */
	tap_is(r ? ivshmem_read_checked(r, 100, buf, 10) : 0, -ENODEV,
	       "a checked read after removal is ENODEV, not stale data");
	tap_ok(strstr(ivshmem_errmsg(), "removed while mapped") != NULL, "... and says so: %s",
	       ivshmem_errmsg());
	tap_is(r ? ivshmem_region_present(r) : 0, -ENODEV, "region_present agrees");
	ivshmem_close(r);
}

int main(void)
{
	char path[PATH_MAX], cmd[PATH_MAX + 16];
	const char *tmp = getenv("TMPDIR");

	snprintf(root, sizeof(root), "%s/ivshmem-fake-sysfs-XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/bus", root);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/bus/pci", root);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/bus/pci/devices", root);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/bus/pci/drivers", root);
	mkdir(path, 0755);
	setenv("IVSHMEM_SYSFS_ROOT", root, 1);

	test_parse();
	unsetenv("IVSHMEM_SYSFS_ROOT");
	{
		char *saved = strdup(root);

		snprintf(root, sizeof(root), "/nonexistent-sysfs");
		setenv("IVSHMEM_SYSFS_ROOT", root, 1);
		tap_is(ivshmem_pci_list(NULL, 0, 0), 0, "no PCI bus at all: zero devices, no error");
		snprintf(root, sizeof(root), "%s", saved);
		free(saved);
		setenv("IVSHMEM_SYSFS_ROOT", root, 1);
	}
	add_dev("0000:00:11.0", 0x1af4, 0x1110, 1 << 19, 1, "ivshmem");
	add_dev("0000:00:10.0", 0x1af4, 0x1110, 1 << 20, 0, NULL);
	add_dev("0000:00:02.0", 0x8086, 0x1237, 1 << 16, 0, NULL);
	add_dev("0001:02:03.1", 0x1af4, 0x1110, 1 << 16, 0, NULL);
	test_discovery();
	test_selectors();
	test_names();
	test_sysfs_backend();
	test_hotplug();

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", root);
	return tap_done();
}
