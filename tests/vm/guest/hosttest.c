// SPDX-License-Identifier: MIT
/*
 * Guest half of tests/vm/test_host_kernel.py: exercises /dev/ivshmem-host
 * (include/uapi/linux/ivshmem_host.h) in an L1 guest. Prints "ok DESC" /
 * "not ok DESC" / "# note" lines on stdout.
 *   hosttest refusals          what ATTACH must refuse
 *   hosttest kapi KO           attach, load the in-kernel API test module KO,
 *                              markers and doorbells both ways, close, removal
 *   hosttest cycles N          N attach/bind/close cycles
 *   hosttest lost KO hole|shrink  a hole punched in a sealed memfd, or an
 *                              unsealed one shrunk, after ATTACH: the region
 *                              is removed (remove callback of KO, ENODEV)
 *   hosttest exit KO           the attaching process is killed: removal
 *   hosttest lostcycles N      N attach/bind/lose cycles of 64 MiB (hole and
 *                              shrink in turn)
 *   hosttest punch PATH        punch a 4 KiB hole at offset 0 of file PATH
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../../include/uapi/linux/ivshmem_host.h"

#define DEV "/dev/ivshmem-host"
#define MIB (1UL << 20)

#include "check.h"

static int memfd(size_t size, int seal)
{
	int fd = memfd_create("hosttest", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0 || ftruncate(fd, size) < 0) {
		perror("hosttest: memfd");
		exit(2);
	}
	if (seal && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0) {
		perror("hosttest: F_ADD_SEALS");
		exit(2);
	}
	return fd;
}

static int open_dev(void)
{
	int fd = open(DEV, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		perror("hosttest: open " DEV);
		exit(2);
	}
	return fd;
}

/* 0 or -errno */
static int attach(int dev, int fd, uint32_t flags, const char *name, uint64_t *size)
{
	struct ivshmem_host_attach a = {
		.abi_version = IVSHMEM_HOST_ABI_VERSION, .flags = flags, .fd = fd,
		.own_id = 0, .nvectors = 2,
	};

	snprintf(a.name, sizeof(a.name), "%s", name);
	if (ioctl(dev, IVSHMEM_HOST_IOCTL_ATTACH, &a) < 0)
		return -errno;
	if (size)
		*size = a.size;
	return 0;
}

static int bind_peer(int dev, uint32_t peer, uint32_t vector, int fd)
{
	struct ivshmem_host_bind_peer b = { .peer = peer, .vector = vector, .fd = fd };

	return ioctl(dev, IVSHMEM_HOST_IOCTL_BIND_PEER, &b) < 0 ? -errno : 0;
}

static int bind_own(int dev, uint32_t vector, int fd)
{
	struct ivshmem_host_bind_own b = { .vector = vector, .fd = fd };

	return ioctl(dev, IVSHMEM_HOST_IOCTL_BIND_OWN, &b) < 0 ? -errno : 0;
}

static int ring(int dev, uint32_t peer, uint32_t vector)
{
	struct ivshmem_host_ring r = { .peer = peer, .vector = vector };

	return ioctl(dev, IVSHMEM_HOST_IOCTL_RING, &r) < 0 ? -errno : 0;
}

static int peer_change(int dev, uint32_t peer, uint32_t event, uint32_t reserved)
{
	struct ivshmem_host_peer_change c = { .peer = peer, .event = event };

	c.reserved[1] = reserved;
	return ioctl(dev, IVSHMEM_HOST_IOCTL_PEER, &c) < 0 ? -errno : 0;
}

/* INFO's error: 0 while attached, -ENODEV once removed. */
static int info_ret(int dev)
{
	struct ivshmem_host_info info;

	return ioctl(dev, IVSHMEM_HOST_IOCTL_INFO, &info) < 0 ? -errno : 0;
}

/* Waits up to 5 s for the region of @dev to be removed; the milliseconds it took, or -1. */
static int wait_removed(int dev)
{
	for (int ms = 0; ms < 5000; ms += 10) {
		if (info_ret(dev) == -ENODEV)
			return ms;
		usleep(10000);
	}
	return -1;
}

/* A parameter of the API test module; -1 if unreadable. */
static long kapi_param(const char *name)
{
	char path[128];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/ivshmem_host_kapi_test/parameters/%s", name);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static int load_kapi(const char *ko, const char *region)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "insmod %s region=%s", ko, region);
	return system(cmd);
}

/* The eventfd's count after waiting up to @ms for it; 0 on timeout. */
static uint64_t wait_efd(int efd, int ms)
{
	struct pollfd p = { .fd = efd, .events = POLLIN };
	uint64_t v = 0;

	if (poll(&p, 1, ms) == 1 && read(efd, &v, sizeof(v)) != sizeof(v))
		v = 0;
	return v;
}

static int cmd_refusals(void)
{
	int dev = open_dev(), dev2 = open_dev(), pfd[2], ro, fd, ret;
	struct ivshmem_host_info info;
	char path[64];

	ret = ioctl(dev, IVSHMEM_HOST_IOCTL_INFO, &info) < 0 ? -errno : 0;
	check(ret == -ENODEV, "INFO before ATTACH: ENODEV (%d)", ret);
	if (pipe(pfd) < 0)
		return 2;
	ret = attach(dev, pfd[1], 0, "r", NULL);
	check(ret == -EINVAL, "a pipe is refused: EINVAL (%d)", ret);
	ret = attach(dev, open("/proc/version", O_RDONLY), 0, "r", NULL);
	check(ret == -EINVAL, "a procfs file is refused: EINVAL (%d)", ret);
	ret = attach(dev, 9999, 0, "r", NULL);
	check(ret == -EBADF, "a closed fd: EBADF (%d)", ret);
	fd = memfd(MIB, 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY);
	ret = attach(dev, ro, 0, "r", NULL);
	check(ro >= 0 && ret == -EACCES, "a read-only fd is refused: EACCES (%d)", ret);
	ret = attach(dev, fd, IVSHMEM_HOST_REQUIRE_SEALS, "r", NULL);
	check(ret == -EPERM, "an unsealed memfd with REQUIRE_SEALS: EPERM (%d)", ret);
	ret = attach(dev, memfd(MIB + 100, 0), 0, "r", NULL);
	check(ret == -EINVAL, "a size that is not page-aligned: EINVAL (%d)", ret);
	ret = attach(dev, memfd(0, 0), 0, "r", NULL);
	check(ret == -EINVAL, "size 0: EINVAL (%d)", ret);
	ret = attach(dev, fd, 0, "", NULL);
	check(ret == -EINVAL, "an empty name: EINVAL (%d)", ret);
	ret = attach(dev, fd, 0, "r", NULL);
	check(ret == 0, "an unsealed memfd without REQUIRE_SEALS is accepted (%d)", ret);
	ret = attach(dev, fd, 0, "r2", NULL);
	check(ret == -EBUSY, "a second ATTACH on one file: EBUSY (%d)", ret);
	ret = attach(dev2, memfd(MIB, 1), 0, "r", NULL);
	check(ret == -EEXIST, "a name already attached: EEXIST (%d)", ret);
	ret = bind_peer(dev, 1, 2, eventfd(0, 0));
	check(ret == -EINVAL, "BIND_PEER vector >= nvectors: EINVAL (%d)", ret);
	ret = bind_own(dev, 0, pfd[0]);
	check(ret == -EINVAL, "BIND_OWN of a pipe: EINVAL (%d)", ret);
	ret = ring(dev, 7, 0);
	check(ret == -ENOENT, "RING of an unbound peer: ENOENT (%d)", ret);
	ret = peer_change(dev, 0, IVSHMEM_HOST_PEER_JOINED, 0);
	check(ret == -EINVAL, "PEER join of our own ID: EINVAL (%d)", ret);
	ret = peer_change(dev, 70000, IVSHMEM_HOST_PEER_JOINED, 0);
	check(ret == -EINVAL, "PEER join of ID 70000: EINVAL (%d)", ret);
	ret = peer_change(dev, 3, 7, 0);
	check(ret == -EINVAL, "PEER with an unknown event: EINVAL (%d)", ret);
	ret = peer_change(dev, 3, IVSHMEM_HOST_PEER_JOINED, 1);
	check(ret == -EINVAL, "PEER with a reserved field set: EINVAL (%d)", ret);
	ret = peer_change(dev, 3, IVSHMEM_HOST_PEER_LEFT, 0);
	check(ret == -ENOENT, "PEER leave of a peer that never joined: ENOENT (%d)", ret);
	check(bind_peer(dev, 3, 1, eventfd(0, 0)) == 0, "BIND_PEER (3, 1)");
	ret = peer_change(dev, 3, IVSHMEM_HOST_PEER_JOINED, 0);
	check(ret == 0, "PEER join of 3 (%d)", ret);
	ret = peer_change(dev, 3, IVSHMEM_HOST_PEER_JOINED, 0);
	check(ret == -EEXIST, "PEER join of 3 again: EEXIST (%d)", ret);
	check(ring(dev, 3, 1) == 0, "RING (3, 1) while 3 is joined");
	ret = peer_change(dev, 3, IVSHMEM_HOST_PEER_LEFT, 0);
	check(ret == 0, "PEER leave of 3 (%d)", ret);
	ret = ring(dev, 3, 1);
	check(ret == -ENOENT, "the leave unbound 3's eventfds: RING ENOENT (%d)", ret);
	close(dev);
	ret = attach(dev2, memfd(MIB, 1), 0, "r", NULL);
	check(ret == 0, "the name is free again once its file is closed (%d)", ret);
	close(dev2);
	return check_failures ? 1 : 0;
}

static int cmd_kapi(const char *ko)
{
	int dev = open_dev(), fd = memfd(MIB, 1), peer_efd = eventfd(0, EFD_CLOEXEC);
	int own_efd = eventfd(0, EFD_CLOEXEC), ret, i;
	struct ivshmem_host_info info;
	uint64_t size = 0, one = 1, got;
	char cmd[256];
	char *map;

	ret = attach(dev, fd, IVSHMEM_HOST_REQUIRE_SEALS, "kapi", &size);
	check(ret == 0 && size == MIB, "ATTACH a sealed 1 MiB memfd (%d, size %llu)", ret,
	      (unsigned long long)size);
	ret = ioctl(dev, IVSHMEM_HOST_IOCTL_INFO, &info) < 0 ? -errno : 0;
	check(ret == 0 && info.size == MIB && info.nvectors == 2 && !strcmp(info.name, "kapi"),
	      "INFO (%d)", ret);
	check(bind_peer(dev, 1, 0, peer_efd) == 0, "BIND_PEER (1, 0)");
	check(bind_own(dev, 0, own_efd) == 0, "BIND_OWN 0");
	check(ring(dev, 1, 0) == 0 && wait_efd(peer_efd, 2000) == 1, "RING (1, 0) reaches the eventfd");

	snprintf(cmd, sizeof(cmd), "insmod %s region=kapi echo_peer=1", ko);
	check(system(cmd) == 0, "%s", cmd);
	map = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	check(map != MAP_FAILED && !strcmp(map, "ivshmem-host-kapi-ok"),
	      "user space reads the marker the module wrote through the kernel mapping");
	for (i = 0; i < 100; i++) {
		if (write(own_efd, &one, sizeof(one)) != sizeof(one))
			break;
		got = wait_efd(peer_efd, 2000);
		if (got != 1)
			break;
	}
	check(i == 100, "100 own-vector signals echoed by the module's callback to peer 1 (%d)", i);
	ret = ioctl(dev, IVSHMEM_HOST_IOCTL_INFO, &info) < 0 ? -errno : 0;
	check(ret == 0 && info.own_events == 100, "INFO own_events = 100 (%llu)",
	      (unsigned long long)info.own_events);
	check(bind_own(dev, 0, -1) == 0, "unbind own vector 0");
	if (write(own_efd, &one, sizeof(one)) == sizeof(one))
		check(wait_efd(peer_efd, 300) == 0, "no echo after the unbind");
	close(dev);
	check(map[0] == 'i', "the memfd keeps its contents after the region is removed");
	munmap(map, MIB);
	return check_failures ? 1 : 0;
}

static int cmd_cycles(int n)
{
	int i, dev, fd, efd;
	uint64_t size;

	for (i = 0; i < n; i++) {
		dev = open_dev();
		fd = memfd(64 * MIB, 1);
		efd = eventfd(0, EFD_CLOEXEC);
		if (attach(dev, fd, IVSHMEM_HOST_REQUIRE_SEALS, "cycle", &size) ||
		    bind_peer(dev, 3, 1, efd) || bind_own(dev, 1, efd) || ring(dev, 3, 1))
			break;
		close(dev);
		close(fd);
		close(efd);
	}
	check(i == n, "%d attach/bind/ring/close cycles of 64 MiB (%d done)", n, i);
	return check_failures ? 1 : 0;
}

/* Lose the file's pages under the region: a hole in a sealed memfd, or a shrink. */
static int lose_pages(int fd, int shrink, size_t size)
{
	if (shrink)
		return ftruncate(fd, size / 2);
	return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, size / 2, 4096);
}

static int cmd_lost(const char *ko, const char *how)
{
	int shrink = !strcmp(how, "shrink"), dev = open_dev(), dev2, ret, ms;
	int fd = memfd(4 * MIB, !shrink), efd = eventfd(0, EFD_CLOEXEC);

	ret = attach(dev, fd, shrink ? 0 : IVSHMEM_HOST_REQUIRE_SEALS, "lost", NULL);
	check(ret == 0, "ATTACH a %s 4 MiB memfd (%d)", shrink ? "unsealed" : "sealed", ret);
	check(bind_peer(dev, 1, 0, efd) == 0 && bind_own(dev, 0, efd) == 0 &&
	      peer_change(dev, 1, IVSHMEM_HOST_PEER_JOINED, 0) == 0, "bind, peer 1 joined");
	check(load_kapi(ko, "lost") == 0, "the API test module takes the region");
	check(kapi_param("joins") == 1, "its peer callback heard of peer 1 at load (replay)");
	check(info_ret(dev) == 0 && kapi_param("removed") == 0, "attached, not removed");
	ret = lose_pages(fd, shrink, 4 * MIB);
	check(ret == 0, "%s (%s)", shrink ? "ftruncate to 2 MiB" : "FALLOC_FL_PUNCH_HOLE of 4 KiB",
	      ret ? strerror(errno) : "done");
	ms = wait_removed(dev);
	check(ms >= 0, "the region is removed (INFO: ENODEV after %d ms)", ms);
	check(kapi_param("removed") == 1, "the module's remove callback ran");
	ret = bind_peer(dev, 2, 0, efd);
	check(ret == -ENODEV, "BIND_PEER after the removal: ENODEV (%d)", ret);
	ret = peer_change(dev, 2, IVSHMEM_HOST_PEER_JOINED, 0);
	check(ret == -ENODEV, "PEER after the removal: ENODEV (%d)", ret);
	ret = ring(dev, 1, 0);
	check(ret == -ENODEV, "RING after the removal: ENODEV (%d)", ret);
	dev2 = open_dev();
	ret = attach(dev2, memfd(MIB, 1), 0, "lost", NULL);
	check(ret == 0, "the name is free again (%d)", ret);
	close(dev2);
	close(dev);
	check(system("rmmod ivshmem_host_kapi_test") == 0, "the API test module unloads");
	close(fd);
	close(efd);
	return check_failures ? 1 : 0;
}

static int cmd_exit(const char *ko)
{
	int pfd[2], status = 0;
	char byte = 0;
	pid_t pid;

	if (pipe(pfd) < 0)
		return 2;
	pid = fork();
	if (pid == 0) {
		int dev = open_dev();

		byte = attach(dev, memfd(4 * MIB, 1), IVSHMEM_HOST_REQUIRE_SEALS, "exit", NULL) ?
		       'E' : 'A';
		if (write(pfd[1], &byte, 1) != 1)
			_exit(2);
		pause();
		_exit(0);
	}
	check(pid > 0 && read(pfd[0], &byte, 1) == 1 && byte == 'A',
	      "a child process attached region 'exit'");
	check(load_kapi(ko, "exit") == 0, "the API test module takes the region");
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	for (int ms = 0; ms < 5000 && kapi_param("removed") != 1; ms += 10)
		usleep(10000);
	check(kapi_param("removed") == 1, "the child was killed: the remove callback ran");
	check(system("rmmod ivshmem_host_kapi_test") == 0, "the API test module unloads");
	return check_failures ? 1 : 0;
}

static int cmd_lostcycles(int n)
{
	int i, dev, fd, efd;

	for (i = 0; i < n; i++) {
		dev = open_dev();
		fd = memfd(64 * MIB, i % 2 == 0);
		efd = eventfd(0, EFD_CLOEXEC);
		if (attach(dev, fd, 0, "lostcycle", NULL) || bind_peer(dev, 3, 1, efd) ||
		    bind_own(dev, 1, efd) || lose_pages(fd, i % 2, 64 * MIB) || wait_removed(dev) < 0)
			break;
		close(dev);
		close(fd);
		close(efd);
	}
	check(i == n, "%d attach/bind/lose cycles of 64 MiB, holes and shrinks (%d done)", n, i);
	return check_failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 2 && !strcmp(argv[1], "refusals"))
		return cmd_refusals();
	if (argc == 3 && !strcmp(argv[1], "kapi"))
		return cmd_kapi(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "cycles"))
		return cmd_cycles(atoi(argv[2]));
	if (argc == 4 && !strcmp(argv[1], "lost") &&
	    (!strcmp(argv[3], "hole") || !strcmp(argv[3], "shrink")))
		return cmd_lost(argv[2], argv[3]);
	if (argc == 3 && !strcmp(argv[1], "exit"))
		return cmd_exit(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "lostcycles"))
		return cmd_lostcycles(atoi(argv[2]));
	if (argc == 3 && !strcmp(argv[1], "punch")) {
		int fd = open(argv[2], O_RDWR | O_CLOEXEC);

		return fd < 0 || fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096);
	}
	fprintf(stderr, "usage: hosttest refusals | kapi KO | cycles N | lost KO hole|shrink | "
		"exit KO | lostcycles N | punch PATH\n");
	return 2;
}
