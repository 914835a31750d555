// SPDX-License-Identifier: MIT
/*
 * The region layout on a memfd: format, name, directory, placement, and
 * refusal of corrupt headers and entries.
 */
#define _GNU_SOURCE
#include "ivshmem/layout.h"
#include "ivshmem/region.h"
#include "tap.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIZE (1u << 20)

static void poke32(struct ivshmem_region *r, uint64_t off, uint32_t v)
{
	v = htole32(v);
	ivshmem_write(r, off, &v, 4);
}

static void poke64(struct ivshmem_region *r, uint64_t off, uint64_t v)
{
	v = htole64(v);
	ivshmem_write(r, off, &v, 8);
}

static int printed_contains(struct ivshmem_region *r, const char *needle)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int found;

	ivshmem_layout_print(r, f);
	fclose(f);
	found = buf && strstr(buf, needle) != NULL;
	free(buf);
	return found;
}

int main(void)
{
	struct ivshmem_open_opts opts = { .backend = IVSHMEM_BACKEND_FILE };
	struct ivshmem_section s, t, list[IVSHMEM_LAYOUT_DIR_MAX];
	struct ivshmem_region *r;
	char path[64], name[IVSHMEM_LAYOUT_NAME_LEN], raw[64];
	int fd = memfd_create("layout-test", 0);
	int ret, n;

	if (fd < 0 || ftruncate(fd, SIZE) < 0) {
		perror("memfd");
		return 1;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (ivshmem_open(&r, path, &opts) < 0) {
		printf("Bail out! cannot open %s: %s\n", path, ivshmem_errmsg());
		return 1;
	}

	tap_is(ivshmem_layout_name(r, name, sizeof(name)), 0, "unformatted: no header");
	tap_is(ivshmem_layout_print(r, stdout), 0, "print on an unformatted region says 0");
	tap_is(ivshmem_layout_find(r, "x", &s), -ENODATA, "find without a header: ENODATA");
	tap_is(ivshmem_layout_add(r, "x", IVSHMEM_SECTION_RAW, 4096, &s), -ENODATA,
	       "add without a header: ENODATA");

	memset(name, 'n', 64);
	name[63] = '\0';
	tap_ok(ivshmem_layout_format(r, name) == 0, "format with a 63-byte name");
	{
		char longname[80];

		memset(longname, 'x', sizeof(longname));
		longname[64] = '\0';
		tap_is(ivshmem_layout_format(r, longname), -ENAMETOOLONG, "64-byte name: refused");
	}
	tap_is(ivshmem_layout_format(r, "demo-region"), 0, "format as demo-region");
	tap_is(ivshmem_layout_name(r, name, sizeof(name)), 1, "formatted: header found");
	tap_ok(strcmp(name, "demo-region") == 0, "name read back");
	ivshmem_read(r, IVSHMEM_LAYOUT_NAME_OFFSET, raw, sizeof(raw));
	tap_ok(strcmp(raw, "demo-region") == 0, "the name sits at the documented offset 64");
	ivshmem_read(r, 0, raw, 12);
	tap_ok(memcmp(raw, "IVSHMLAY", 8) == 0 && raw[8] == 1 && raw[9] == 0,
	       "magic and little-endian version 1 at offsets 0 and 8");
	tap_is(ivshmem_layout_name(r, name, 5), 1, "short buffer");
	tap_ok(strcmp(name, "demo") == 0, "name cut to the buffer");
	tap_is(ivshmem_layout_list(r, list, 60), 0, "empty directory");

	tap_is(ivshmem_layout_add(r, "chan-a", IVSHMEM_SECTION_CHANNEL, 10000, &s), 0, "add chan-a");
	tap_ok(s.offset == 4096 && s.size == 12288, "placed at 4096, size rounded to 12288");
	tap_is(ivshmem_layout_add(r, "raw-b", IVSHMEM_SECTION_RAW, 4096, &t), 0, "add raw-b");
	tap_ok(t.offset == 4096 + 12288, "placed right after chan-a");
	tap_is(ivshmem_layout_add(r, "chan-a", IVSHMEM_SECTION_RAW, 4096, &t), -EEXIST,
	       "duplicate name: EEXIST");
	tap_ok(t.offset == 4096 && t.type == IVSHMEM_SECTION_CHANNEL, "EEXIST returns the existing one");
	tap_is(ivshmem_layout_add(r, "big", IVSHMEM_SECTION_RAW, SIZE, &t), -ENOSPC,
	       "larger than the free space: ENOSPC");
	tap_is(ivshmem_layout_add(r, "", IVSHMEM_SECTION_RAW, 4096, &t), -EINVAL, "empty name: EINVAL");
	tap_is(ivshmem_layout_add(r, "0123456789012345678901234567890123", IVSHMEM_SECTION_RAW,
				  4096, &t), -EINVAL, "name over 31 bytes: EINVAL");
	tap_is(ivshmem_layout_add(r, "bad\ttab", IVSHMEM_SECTION_RAW, 4096, &t), -EINVAL,
	       "control characters: EINVAL");
	tap_is(ivshmem_layout_find(r, "raw-b", &t), 0, "find raw-b");
	tap_is(ivshmem_layout_find(r, "nope", &t), -ENOENT, "find a missing one: ENOENT");
	tap_ok(printed_contains(r, "demo-region") && printed_contains(r, "chan-a") &&
	       printed_contains(r, "raw-b"), "print shows the name and both sections");

	/* Fill the directory. */
	for (n = 2; n < (int)IVSHMEM_LAYOUT_DIR_MAX; n++) {
		char nm[16];

		snprintf(nm, sizeof(nm), "s%d", n);
		if (ivshmem_layout_add(r, nm, IVSHMEM_SECTION_RAW, 4096, &t) < 0)
			break;
	}
	tap_is(n, IVSHMEM_LAYOUT_DIR_MAX, "60 sections fit");
	tap_is(ivshmem_layout_add(r, "one-more", IVSHMEM_SECTION_RAW, 4096, &t), -ENOSPC,
	       "61st section: ENOSPC (directory full)");
	tap_is(ivshmem_layout_list(r, list, 60), 60, "list has 60");

	/* Corrupt entries are skipped and reported, the others stay usable. */
	poke64(r, IVSHMEM_LAYOUT_DIR_OFFSET + 64 + 40, 4096);	/* raw-b overlaps chan-a */
	tap_is(ivshmem_layout_list(r, list, 60), 59, "an overlapping entry is not listed");
	tap_is(ivshmem_layout_find(r, "raw-b", &t), -ENOENT, "nor found");
	tap_ok(printed_contains(r, "CORRUPT"), "print flags it as corrupt");
	poke64(r, IVSHMEM_LAYOUT_DIR_OFFSET + 64 + 40, SIZE);	/* beyond the end */
	tap_is(ivshmem_layout_find(r, "raw-b", &t), -ENOENT, "out of range entry: skipped");
	poke32(r, IVSHMEM_LAYOUT_DIR_OFFSET + 64 + 32, 77);
	tap_ok(printed_contains(r, "unknown type"), "unknown type reported");
	tap_is(ivshmem_layout_find(r, "chan-a", &t), 0, "good entries still found");

	/* Corrupt headers. */
	poke32(r, 8, 2);
	ret = ivshmem_layout_name(r, name, sizeof(name));
	tap_ok(ret < 0 && strstr(ivshmem_errmsg(), "version"), "version 2: corrupt (%s)",
	       ivshmem_errmsg());
	poke32(r, 8, 1);
	poke64(r, 16, 2ull * SIZE);
	tap_ok(ivshmem_layout_name(r, name, sizeof(name)) < 0, "region size beyond the mapping: corrupt");
	poke64(r, 16, SIZE);
	poke32(r, 32, 61);
	tap_ok(ivshmem_layout_list(r, list, 60) < 0, "61 directory slots: corrupt");
	poke32(r, 32, 60);
	memset(raw, 'z', sizeof(raw));
	ivshmem_write(r, 64, raw, 64);
	tap_ok(ivshmem_layout_name(r, name, sizeof(name)) < 0, "name without NUL: corrupt");
	tap_ok(ivshmem_layout_print(r, stdout) < 0, "print refuses it too");
	tap_is(ivshmem_layout_add(r, "x", IVSHMEM_SECTION_RAW, 4096, &t) < 0, 1,
	       "add refuses a corrupt header");

	/* The lock: a stale holder is taken over after 2 s. */
	ivshmem_layout_format(r, "");
	tap_is(ivshmem_layout_name(r, name, sizeof(name)), 1, "unnamed format");
	tap_ok(name[0] == '\0', "empty name");
	poke32(r, IVSHMEM_LAYOUT_LOCK_OFFSET, 0xdeadbeef);
	tap_is(ivshmem_layout_add(r, "after-stale", IVSHMEM_SECTION_RAW, 4096, &t), 0,
	       "a lock left by a dead holder is taken over");
	ivshmem_read(r, IVSHMEM_LAYOUT_LOCK_OFFSET, raw, 4);
	tap_ok(memcmp(raw, "\0\0\0\0", 4) == 0, "and released afterwards");

	ivshmem_close(r);
	close(fd);
	return tap_done();
}
