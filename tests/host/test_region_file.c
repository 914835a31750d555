// SPDX-License-Identifier: MIT
/* The host file backend: create, map, share between two opens, bounds and errors. */
#include "ivshmem.h"
#include "tap.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	char path[64];
	struct ivshmem_region *a, *b, *c;
	struct ivshmem_open_opts create = { .flags = IVSHMEM_OPEN_CREATE, .size = 1 << 20 };
	char buf[16];
	char target[80];
	int ret;

	snprintf(path, sizeof(path), "/dev/shm/ivshmem-test-%d", (int)getpid());
	unlink(path);

	ret = ivshmem_open(&a, path, NULL);
	tap_ok(ret == -ENOENT && a == NULL, "missing file without CREATE: ENOENT (%s)",
	       ivshmem_errmsg());
	tap_ok(strstr(ivshmem_errmsg(), path) != NULL, "error names the path");

	ret = ivshmem_open(&a, path, &create);
	tap_ok(ret == 0, "create 1 MiB file");
	if (ret)
		return tap_done();
	tap_is(ivshmem_size(a), 1 << 20, "size");
	tap_ok(ivshmem_backend_of(a) == IVSHMEM_BACKEND_FILE, "file backend chosen");
	tap_is(ivshmem_own_id(a), -1, "no own id");
	tap_is(ivshmem_vectors(a), 0, "no vectors");

	snprintf(target, sizeof(target), "file:%s", path);
	tap_ok(ivshmem_open(&b, target, NULL) == 0, "open again with file: prefix");
	tap_ok(ivshmem_write(a, 4093, "hello", 5) == 0, "unaligned write");
	memset(buf, 0, sizeof(buf));
	tap_ok(ivshmem_read(b, 4093, buf, 5) == 0 && memcmp(buf, "hello", 5) == 0,
	       "second mapping sees the write");
	tap_ok(ivshmem_read(b, (1 << 20) - 4, buf, 5) == -ERANGE, "read past the end: ERANGE");
	tap_ok(ivshmem_write(b, UINT64_MAX, buf, 1) == -ERANGE, "huge offset: ERANGE");
	tap_ok(ivshmem_read(b, 1 << 20, buf, 0) == 0, "empty read at the end is fine");
	tap_ok(ivshmem_notify(a, 0, 0) == -ENOTSUP, "no doorbell: ENOTSUP (%s)", ivshmem_errmsg());
	tap_ok(ivshmem_event_fd(a, 0) == -ENOTSUP, "no interrupts: ENOTSUP");
	tap_ok(ivshmem_wait(a, -1, 10, NULL) == -ENOTSUP, "wait without interrupts: ENOTSUP");
	tap_ok(ivshmem_peer_list(a, NULL, 0) == -ENOTSUP, "no peer list: ENOTSUP");

	struct ivshmem_open_opts bad = { .backend = IVSHMEM_BACKEND_SERVER };

	tap_ok(ivshmem_open(&c, target, &bad) == -EINVAL, "file: target with server backend");
	tap_ok(ivshmem_open(&c, "", NULL) == -EINVAL, "empty target");
	tap_ok(ivshmem_open(&c, "/proc/self", NULL) == -EISDIR, "directory is not a region: EISDIR");

	/* A relative path that exists is a file, even when it looks like a PCI address. */
	char cwd[4096], lookalike[64], rel[80];

	snprintf(lookalike, sizeof(lookalike), "/dev/shm/0000:00:1f.%d", (int)(getpid() % 8));
	tap_ok(getcwd(cwd, sizeof(cwd)) != NULL && chdir("/dev/shm") == 0, "chdir /dev/shm");
	snprintf(rel, sizeof(rel), "ivshmem-test-%d", (int)getpid());
	ret = ivshmem_open(&c, rel, NULL);
	tap_ok(ret == 0 && ivshmem_backend_of(c) == IVSHMEM_BACKEND_FILE,
	       "relative path that exists opens as a file (%s)", ret ? ivshmem_errmsg() : "ok");
	if (ret == 0)
		ivshmem_close(c);
	snprintf(rel, sizeof(rel), "file:%s", lookalike);
	ret = ivshmem_open(&c, rel, &create);
	if (ret == 0)
		ivshmem_close(c);
	ret = ivshmem_open(&c, lookalike + 9, NULL);
	tap_ok(ret == 0 && ivshmem_backend_of(c) == IVSHMEM_BACKEND_FILE,
	       "an existing file named like a PCI address is a file (%s)",
	       ret ? ivshmem_errmsg() : "ok");
	if (ret == 0)
		ivshmem_close(c);
	snprintf(rel, sizeof(rel), "pci:%s", lookalike + 9);
	ret = ivshmem_open(&c, rel, NULL);
	tap_ok(ret < 0 && c == NULL, "but pci: always means a device (%s)", ivshmem_errmsg());
	unlink(lookalike);
	tap_ok(chdir(cwd) == 0, "chdir back");

	ivshmem_close(b);
	ivshmem_close(a);
	unlink(path);
	return tap_done();
}
