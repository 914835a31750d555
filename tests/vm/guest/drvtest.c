// SPDX-License-Identifier: MIT
/*
 * drvtest: the guest half of the ivshmem.ko VM tests (statically linked, run
 * inside the rig's busybox guests). Each subcommand prints TAP-style
 * "ok DESC" / "not ok DESC" / "# note" lines on stdout (the guest script
 * sends them to the verdict channel) and exits non-zero if any check failed.
 *
 *   drvtest info DEV                      print size, ivposition, vectors
 *   drvtest ring DEV PEER VECTOR [N]      ring a doorbell N times
 *   drvtest ring-all DEV PEER VECTORS     ring vectors 0..VECTORS-1 of PEER once each
 *   drvtest listen DEV MS TAG             wait until every own vector fired once
 *                                         (exit 3 when the device is unplugged meanwhile)
 *   drvtest storm-send DEV PEER VECTOR N OFF
 *   drvtest storm-recv DEV VECTOR N OFF MS
 *   drvtest bad DEV                       invalid ioctl/mmap arguments
 *   drvtest plain DEV                     interrupt calls on a plain device
 *   drvtest hold DEV SYSDIR MS            map, wait for SYSDIR to vanish (unplug), check revocation
 *   drvtest concurrent DEV PROCS ITERS    many processes opening, mapping, closing
 *   drvtest lib TARGET                    libivshmem's driver backend on TARGET
 *   drvtest bench-copy PATH MB ROUNDS     memcpy bandwidth through a mapping of PATH
 *   drvtest bench-pingpong PATH ROUNDS    two-process ping-pong through a mapping of PATH
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/ivshmem.h>

#include "ivshmem/region.h"

#include "check.h"

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	printf("not ok drvtest: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(2);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned long num(const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || *end || end == s)
		die("bad number '%s'", s);
	return v;
}

static int open_dev(const char *dev)
{
	int fd = open(dev, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		die("open %s: %s", dev, strerror(errno));
	return fd;
}

static struct ivshmem_info get_info(int fd)
{
	struct ivshmem_info info;

	if (ioctl(fd, IVSHMEM_IOCTL_INFO, &info) < 0)
		die("IVSHMEM_IOCTL_INFO: %s", strerror(errno));
	return info;
}

static void *map_dev(int fd, uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	return p;
}

static int vector_fd(int fd, unsigned int vector, unsigned int flags)
{
	struct ivshmem_vector_fd req = { .vector = vector, .flags = flags };

	return ioctl(fd, IVSHMEM_IOCTL_VECTOR_FD, &req);
}

static int ring(int fd, unsigned int peer, unsigned int vector)
{
	struct ivshmem_ring req = { .peer = peer, .vector = vector };

	return ioctl(fd, IVSHMEM_IOCTL_RING, &req);
}

static int bind_eventfd(int fd, unsigned int vector, int efd)
{
	struct ivshmem_eventfd req = { .vector = vector, .fd = efd };

	return ioctl(fd, IVSHMEM_IOCTL_BIND_EVENTFD, &req);
}

/* The errno of a call that should fail, or 0 if it succeeded. */
static int err_of(int ret)
{
	return ret < 0 ? errno : 0;
}

static int cmd_info(char **argv)
{
	int fd = open_dev(argv[0]);
	struct ivshmem_info i = get_info(fd);

	printf("abi=%u size=%" PRIu64 " ivposition=%u vectors=%u doorbell=%u index=%u pci=%s\n",
	       i.abi_version, (uint64_t)i.size, i.ivposition, i.vectors,
	       !!(i.flags & IVSHMEM_INFO_DOORBELL), i.index, i.pci_addr);
	close(fd);
	return 0;
}

static int cmd_ring(char **argv, int argc)
{
	int fd = open_dev(argv[0]);
	unsigned long peer = num(argv[1]), vector = num(argv[2]);
	unsigned long n = argc > 3 ? num(argv[3]) : 1;

	for (unsigned long i = 0; i < n; i++)
		if (ring(fd, (unsigned int)peer, (unsigned int)vector) < 0)
			die("ring %lu/%lu: %s", peer, vector, strerror(errno));
	close(fd);
	return 0;
}

/*
 * Listen on every own vector until each fired at least once, counting both
 * through vector fds and through bound eventfds: the two must agree. Prints
 * "# LISTENING TAG" once all fds exist, so the host knows when to ring.
 */
static int cmd_listen(char **argv)
{
	int fd = open_dev(argv[0]);
	double deadline = now_s() + (double)num(argv[1]) / 1000;
	struct ivshmem_info info = get_info(fd);
	unsigned int n = info.vectors, done = 0;
	struct pollfd pfd[64];
	uint64_t got[64] = { 0 }, c;
	int efd[64];

	if (n == 0 || n > 64)
		die("%u vectors", n);
	for (unsigned int v = 0; v < n; v++) {
		pfd[v].fd = vector_fd(fd, v, IVSHMEM_VECTOR_FD_NONBLOCK);
		pfd[v].events = POLLIN;
		efd[v] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (pfd[v].fd < 0 || efd[v] < 0 || bind_eventfd(fd, v, efd[v]) < 0)
			die("vector %u: %s", v, strerror(errno));
	}
	printf("# LISTENING %s\n", argv[2]);
	fflush(stdout);
	while (done < n && now_s() < deadline) {
		if (poll(pfd, n, 100) <= 0)
			continue;
		for (unsigned int v = 0; v < n; v++) {
			if (pfd[v].revents & (POLLERR | POLLHUP)) {
				/* Unplugged: every vector fd reports it; nothing more will come. */
				note("%s: vector %u: the device is gone", argv[2], v);
				return 3;
			}
			if (!(pfd[v].revents & POLLIN) || read(pfd[v].fd, &c, sizeof(c)) != sizeof(c))
				continue;
			if (!got[v])
				done++;
			got[v] += c;
			pfd[v].events = 0;	/* one is enough; the rest shows in the eventfd */
		}
	}
	for (unsigned int v = 0; v < n; v++) {
		uint64_t e = 0;

		/* Both counters were bumped by the same interrupt handler. */
		if (read(pfd[v].fd, &c, sizeof(c)) == sizeof(c))
			got[v] += c;
		if (read(efd[v], &c, sizeof(c)) == sizeof(c))
			e = c;
		check(got[v] >= 1, "%s: vector %u delivered (%" PRIu64 " interrupt(s))", argv[2], v,
		      got[v]);
		check(e == got[v], "%s: vector %u: the bound eventfd counted the same (%" PRIu64 ")",
		      argv[2], v, e);
		close(efd[v]);
		close(pfd[v].fd);
	}
	close(fd);
	return check_failures ? 1 : 0;
}

/* Ring every vector 0..VECTORS-1 of PEER once. */
static int cmd_ring_all(char **argv)
{
	int fd = open_dev(argv[0]);
	unsigned int peer = (unsigned int)num(argv[1]), n = (unsigned int)num(argv[2]);

	for (unsigned int v = 0; v < n; v++)
		check(ring(fd, peer, v) == 0, "rang peer %u vector %u", peer, v);
	close(fd);
	return check_failures ? 1 : 0;
}

/*
 * Storm: the sender stores a sequence number in shared memory before every
 * doorbell; the receiver counts interrupts and reads the sequence number
 * after each. Interrupts coalesce (QEMU reads the eventfd counter once per
 * batch and raises one MSI-X), so interrupts <= doorbells, but the last
 * doorbell must be followed by an interrupt that sees the last sequence.
 * Layout at OFF: +0 sequence (u64), +8 receiver-ready flag (u64).
 */
#define STORM_READY 0x5245414459ULL

static int cmd_storm_send(char **argv)
{
	int fd = open_dev(argv[0]);
	unsigned int peer = (unsigned int)num(argv[1]), vector = (unsigned int)num(argv[2]);
	uint64_t n = num(argv[3]), off = num(argv[4]);
	struct ivshmem_info info = get_info(fd);
	char *mem = map_dev(fd, info.size);
	_Atomic uint64_t *seq = (_Atomic uint64_t *)(mem + off);
	_Atomic uint64_t *ready = seq + 1;
	double t0 = now_s(), t;

	while (atomic_load(ready) != STORM_READY) {
		if (now_s() - t0 > 60)
			die("the receiver never got ready");
		usleep(1000);
	}
	t0 = now_s();
	for (uint64_t i = 1; i <= n; i++) {
		atomic_store_explicit(seq, i, memory_order_release);
		if (ring(fd, peer, vector) < 0)
			die("ring #%" PRIu64 ": %s", i, strerror(errno));
	}
	t = now_s() - t0;
	check(1, "sent %" PRIu64 " doorbells to peer %u vector %u in %.2f s (%.0f/s)", n, peer,
	      vector, t, (double)n / t);
	return 0;
}

static int cmd_storm_recv(char **argv)
{
	int fd = open_dev(argv[0]);
	unsigned int vector = (unsigned int)num(argv[1]);
	uint64_t n = num(argv[2]), off = num(argv[3]);
	double timeout = (double)num(argv[4]) / 1000, t0, first = 0, last = 0;
	struct ivshmem_info info = get_info(fd);
	char *mem = map_dev(fd, info.size);
	_Atomic uint64_t *seq = (_Atomic uint64_t *)(mem + off);
	_Atomic uint64_t *ready = seq + 1;
	int vfd = vector_fd(fd, vector, 0);
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	uint64_t interrupts = 0, reads = 0, seen = 0, c, efc = 0;

	if (vfd < 0 || efd < 0 || bind_eventfd(fd, vector, efd) < 0)
		die("vector %u: %s", vector, strerror(errno));
	atomic_store(seq, 0);
	atomic_store(ready, STORM_READY);
	t0 = now_s();
	while (seen < n && now_s() - t0 < timeout) {
		struct pollfd pfd = { .fd = vfd, .events = POLLIN };

		if (poll(&pfd, 1, 200) <= 0)
			continue;
		if (read(vfd, &c, sizeof(c)) != sizeof(c))
			die("read vector fd: %s", strerror(errno));
		if (!first)
			first = now_s();
		last = now_s();
		interrupts += c;
		reads++;
		seen = atomic_load_explicit(seq, memory_order_acquire);
	}
	atomic_store(ready, 0);
	if (read(efd, &c, sizeof(c)) == sizeof(c))
		efc = c;
	check(seen == n, "storm: the last doorbell's sequence %" PRIu64 " was seen after an "
	      "interrupt (saw %" PRIu64 ")", n, seen);
	check(interrupts >= 1 && interrupts <= n,
	      "storm: %" PRIu64 " interrupts for %" PRIu64 " doorbells (coalesced, never more)",
	      interrupts, n);
	check(efc == interrupts, "storm: the bound eventfd added up to the same %" PRIu64
	      " (got %" PRIu64 ")", interrupts, efc);
	note("storm: doorbells=%" PRIu64 " interrupts=%" PRIu64 " reads=%" PRIu64
	     " coalescing=%.2f doorbells/interrupt, %.0f interrupts/s", n, interrupts, reads,
	     interrupts ? (double)n / (double)interrupts : 0.0,
	     last > first ? (double)interrupts / (last - first) : 0.0);
	return check_failures ? 1 : 0;
}

static int cmd_bad(char **argv)
{
	int fd = open_dev(argv[0]);
	struct ivshmem_info info = get_info(fd);
	struct ivshmem_ring r = { .peer = 0, .vector = 0, .reserved = 1 };
	struct ivshmem_vector_fd vreq = { .vector = 0, .flags = 0x80 };
	struct ivshmem_eventfd ereq = { .vector = 0, .fd = -1, .reserved = 7 };
	long pg = sysconf(_SC_PAGESIZE);
	void *p;
	int efd;

	check(err_of(ioctl(fd, _IO(IVSHMEM_IOCTL_MAGIC, 0x7f))) == ENOTTY, "unknown ioctl: ENOTTY");
	check(err_of(ioctl(fd, _IO('T', 0x01))) == ENOTTY, "foreign ioctl type: ENOTTY");
	check(err_of(ioctl(fd, IVSHMEM_IOCTL_INFO, (void *)16)) == EFAULT, "INFO to a bad pointer: EFAULT");
	check(err_of(ring(fd, 0x10000, 0)) == EINVAL, "ring peer 65536: EINVAL");
	check(err_of(ring(fd, 0, 256)) == EINVAL, "ring vector 256: EINVAL");
	check(err_of(ioctl(fd, IVSHMEM_IOCTL_RING, &r)) == EINVAL, "ring with reserved set: EINVAL");
	check(err_of(vector_fd(fd, info.vectors, 0)) == EINVAL, "vector fd for vector %u (one past): EINVAL",
	      info.vectors);
	check(err_of(ioctl(fd, IVSHMEM_IOCTL_VECTOR_FD, &vreq)) == EINVAL, "vector fd with unknown flags: EINVAL");
	check(err_of(bind_eventfd(fd, info.vectors, -1)) == EINVAL, "bind eventfd to vector %u: EINVAL",
	      info.vectors);
	check(err_of(ioctl(fd, IVSHMEM_IOCTL_BIND_EVENTFD, &ereq)) == EINVAL, "bind with reserved set: EINVAL");
	check(err_of(bind_eventfd(fd, 0, -5)) == EINVAL, "bind fd -5: EINVAL");
	check(err_of(bind_eventfd(fd, 0, fd)) == EINVAL, "bind a non-eventfd fd: EINVAL");
	check(err_of(bind_eventfd(fd, 0, 4000)) == EBADF, "bind a closed fd: EBADF");
	/* A second open file cannot steal a binding; the owner can replace and drop it. */
	efd = eventfd(0, EFD_CLOEXEC);
	if (bind_eventfd(fd, 0, efd) == 0) {
		int fd2 = open_dev(argv[0]);

		check(err_of(bind_eventfd(fd2, 0, efd)) == EBUSY, "another file binding a bound vector: EBUSY");
		check(bind_eventfd(fd, 0, efd) == 0, "the owner re-binds");
		check(bind_eventfd(fd, 0, -1) == 0, "the owner unbinds");
		check(bind_eventfd(fd2, 0, efd) == 0, "then another file may bind");
		close(fd2);
	} else {
		check(0, "bind eventfd to vector 0: %s", strerror(errno));
	}
	close(efd);

	p = mmap(NULL, info.size + pg, PROT_READ, MAP_SHARED, fd, 0);
	check(p == MAP_FAILED && errno == EINVAL, "mmap one page too long: EINVAL");
	p = mmap(NULL, pg, PROT_READ, MAP_SHARED, fd, (off_t)info.size);
	check(p == MAP_FAILED && errno == EINVAL, "mmap at offset = size: EINVAL");
	p = mmap(NULL, 2 * pg, PROT_READ, MAP_SHARED, fd, (off_t)(info.size - pg));
	check(p == MAP_FAILED && errno == EINVAL, "mmap crossing the end: EINVAL");
	p = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	check(p == MAP_FAILED && errno == EINVAL, "MAP_PRIVATE: EINVAL");
	p = mmap(NULL, pg, PROT_READ, MAP_SHARED, fd, (off_t)(info.size - pg));
	check(p != MAP_FAILED, "mmap of the last page works");
	if (p != MAP_FAILED) {
		void *q = mremap(p, pg, 2 * pg, MREMAP_MAYMOVE);

		check(q == MAP_FAILED, "mremap cannot grow a mapping past the region");
		munmap(p, pg);
	}
	close(fd);
	fd = open(argv[0], O_RDONLY | O_CLOEXEC);
	p = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	check(p == MAP_FAILED && errno == EACCES, "writable mmap of a read-only open: EACCES");
	p = mmap(NULL, pg, PROT_READ, MAP_SHARED, fd, 0);
	check(p != MAP_FAILED, "read-only mmap of a read-only open works");
	if (p != MAP_FAILED) {
		check(mprotect(p, pg, PROT_READ | PROT_WRITE) < 0 && errno == EACCES,
		      "mprotect cannot make it writable: EACCES");
		munmap(p, pg);
	}
	close(fd);
	return check_failures ? 1 : 0;
}

static int cmd_plain(char **argv)
{
	int fd = open_dev(argv[0]);
	struct ivshmem_info info = get_info(fd);
	int efd = eventfd(0, EFD_CLOEXEC);

	check(!(info.flags & IVSHMEM_INFO_DOORBELL) && info.vectors == 0,
	      "plain device: no doorbell, 0 vectors");
	check(err_of(ring(fd, 0, 0)) == EOPNOTSUPP, "plain: ring: EOPNOTSUPP");
	check(err_of(vector_fd(fd, 0, 0)) == EOPNOTSUPP, "plain: vector fd: EOPNOTSUPP");
	check(err_of(bind_eventfd(fd, 0, efd)) == EOPNOTSUPP, "plain: bind eventfd: EOPNOTSUPP");
	close(efd);
	close(fd);
	return check_failures ? 1 : 0;
}

static sigjmp_buf fault_jmp;

static void on_sigbus(int sig)
{
	siglongjmp(fault_jmp, sig);
}

/* Touch @p; returns the signal it raised (SIGBUS/SIGSEGV) or 0. */
static int touch(volatile char *p)
{
	struct sigaction sa = { .sa_handler = on_sigbus };
	int sig;

	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	sig = sigsetjmp(fault_jmp, 1);
	if (sig == 0)
		(void)p[0];
	signal(SIGBUS, SIG_DFL);
	signal(SIGSEGV, SIG_DFL);
	return sig;
}

/* Map the device, then wait for the host to unplug it (SYSDIR vanishes). */
static int cmd_hold(char **argv)
{
	int fd = open_dev(argv[0]);
	const char *sysdir = argv[1];
	double deadline = now_s() + (double)num(argv[2]) / 1000;
	struct ivshmem_info info = get_info(fd);
	volatile char *mem = map_dev(fd, info.size);
	struct ivshmem_info after;
	struct pollfd pfd;
	int vfd = -1, sig;
	uint64_t c;

	mem[0] = 'x';
	mem[info.size - 1] = 'y';
	check(touch(mem) == 0 && mem[0] == 'x', "mapping is usable before the unplug");
	if (info.vectors)
		vfd = vector_fd(fd, 0, IVSHMEM_VECTOR_FD_NONBLOCK);
	printf("# HOLDING %s\n", argv[0]);
	fflush(stdout);
	while (access(sysdir, F_OK) == 0) {
		if (now_s() > deadline)
			die("%s is still there: the unplug did not happen", sysdir);
		usleep(20000);
	}
	check(1, "%s is gone", sysdir);
	sig = touch(mem);
	check(sig == SIGBUS, "access to the revoked mapping raises SIGBUS (got signal %d)", sig);
	sig = touch(mem + info.size - 1);
	check(sig == SIGBUS, "the last byte too (got signal %d)", sig);
	check(err_of(ioctl(fd, IVSHMEM_IOCTL_INFO, &after)) == ENODEV, "INFO after unplug: ENODEV");
	check(err_of(ring(fd, 0, 0)) == ENODEV, "ring after unplug: ENODEV");
	check(mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED && errno == ENODEV,
	      "mmap after unplug: ENODEV");
	if (vfd >= 0) {
		pfd.fd = vfd;
		pfd.events = POLLIN;
		check(poll(&pfd, 1, 1000) == 1 && (pfd.revents & (POLLERR | POLLHUP)),
		      "vector fd polls POLLERR|POLLHUP");
		check(read(vfd, &c, sizeof(c)) < 0 && errno == ENODEV, "vector fd read: ENODEV");
		close(vfd);
	}
	check(munmap((void *)mem, info.size) == 0, "munmap of the revoked mapping");
	check(close(fd) == 0, "close after unplug");
	return check_failures ? 1 : 0;
}

/* Several processes open, map, write their slot, read it back and close, over and over. */
static int cmd_concurrent(char **argv)
{
	const char *dev = argv[0];
	unsigned long procs = num(argv[1]), iters = num(argv[2]), bad = 0;

	for (unsigned long p = 0; p < procs; p++) {
		pid_t pid = fork();

		if (pid < 0)
			die("fork: %s", strerror(errno));
		if (pid == 0) {
			for (unsigned long i = 0; i < iters; i++) {
				int fd = open(dev, O_RDWR | O_CLOEXEC);
				struct ivshmem_info info;
				volatile uint64_t *slot;
				char *m;
				int vfd;

				if (fd < 0 || ioctl(fd, IVSHMEM_IOCTL_INFO, &info) < 0)
					_exit(10);
				m = mmap(NULL, info.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
				if (m == MAP_FAILED)
					_exit(11);
				slot = (volatile uint64_t *)(m + 4096 * (p + 1));
				*slot = (p << 32) | i;
				if (*slot != ((p << 32) | i))
					_exit(12);
				if (info.vectors) {
					vfd = vector_fd(fd, (unsigned int)(i % info.vectors), 0);
					if (vfd < 0)
						_exit(13);
					close(vfd);
				}
				munmap(m, info.size);
				close(fd);
			}
			_exit(0);
		}
	}
	for (unsigned long p = 0; p < procs; p++) {
		int st;

		if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			bad++;
	}
	check(bad == 0, "%lu processes x %lu open/mmap/write/close cycles (%lu failed)", procs,
	      iters, bad);
	return check_failures ? 1 : 0;
}

/* libivshmem's driver backend: the preferred guest path. */
static int cmd_lib(char **argv)
{
	struct ivshmem_region *r;
	int ret = ivshmem_open(&r, argv[0], NULL);
	unsigned int n;

	check(ret == 0, "ivshmem_open(%s): %s", argv[0], ret ? ivshmem_errmsg() : "ok");
	if (ret)
		return 1;
	n = ivshmem_vectors(r);
	check(ivshmem_backend_of(r) == IVSHMEM_BACKEND_DRIVER, "backend is %s",
	      ivshmem_backend_name(ivshmem_backend_of(r)));
	check(!ivshmem_is_device_memory(r), "the mapping is ordinary (cacheable) memory");
	note("lib: size %" PRIu64 ", own id %d, %u vectors", ivshmem_size(r), ivshmem_own_id(r), n);
	/* Unaligned access is fine on a cacheable mapping. */
	memcpy((char *)ivshmem_base(r) + 3, "unaligned", 9);
	check(memcmp((char *)ivshmem_base(r) + 3, "unaligned", 9) == 0, "unaligned copy round-trips");
	if (n == 0) {
		check(ivshmem_notify(r, 0, 0) == -ENOTSUP, "plain: notify is -ENOTSUP (%s)",
		      ivshmem_errmsg());
		check(ivshmem_event_fd(r, 0) == -ENOTSUP, "plain: event_fd is -ENOTSUP");
	}
	/* A VM may ring itself: every own vector, through the library. */
	for (unsigned int v = 0; v < n; v++) {
		uint64_t count = 0;

		ret = ivshmem_notify(r, (uint16_t)ivshmem_own_id(r), (uint16_t)v);
		check(ret == 0, "lib: ring self vector %u (%s)", v, ret ? ivshmem_errmsg() : "ok");
		ret = ivshmem_wait(r, (int)v, 5000, &count);
		check(ret == 1 && count >= 1, "lib: vector %u fired (count %" PRIu64 ")", v, count);
	}
	if (n)
		check(ivshmem_notify(r, 0, 300) < 0, "lib: vector 300 refused (%s)", ivshmem_errmsg());
	ivshmem_close(r);
	return check_failures ? 1 : 0;
}

static void *map_path(const char *path, uint64_t *size)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	struct ivshmem_info info;
	struct stat st;
	void *p;

	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	if (ioctl(fd, IVSHMEM_IOCTL_INFO, &info) == 0) {
		*size = info.size;
	} else {
		if (fstat(fd, &st) < 0)
			die("fstat %s: %s", path, strerror(errno));
		*size = (uint64_t)st.st_size;	/* sysfs resource2 has the BAR size */
	}
	p = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		die("mmap %s: %s", path, strerror(errno));
	close(fd);
	return p;
}

/* Large copies both ways through the mapping; prints BENCH lines the host parses. */
static int cmd_bench_copy(char **argv)
{
	uint64_t size, len = num(argv[1]) << 20, rounds = num(argv[2]);
	char *mem = map_path(argv[0], &size), *buf;
	double t0, tw, tr;

	if (len > size)
		len = size;
	buf = malloc(len);
	if (!buf)
		die("out of memory");
	memset(buf, 0x5a, len);
	memcpy(mem, buf, len);	/* fault the pages in first */
	t0 = now_s();
	for (uint64_t i = 0; i < rounds; i++)
		memcpy(mem, buf, len);
	tw = now_s() - t0;
	t0 = now_s();
	for (uint64_t i = 0; i < rounds; i++)
		memcpy(buf, mem, len);
	tr = now_s() - t0;
	check(memcmp(buf, mem, len) == 0, "bench-copy %s: data intact", argv[0]);
	printf("# BENCH copy %s write_Bps=%.0f read_Bps=%.0f\n", argv[0],
	       (double)(len * rounds) / tw, (double)(len * rounds) / tr);
	fflush(stdout);
	return check_failures ? 1 : 0;
}

/* Two processes bounce a counter through one cache line of the mapping. */
static int cmd_bench_pingpong(char **argv)
{
	uint64_t size, rounds = num(argv[1]);
	char *mem = map_path(argv[0], &size);
	_Atomic uint64_t *ball = (_Atomic uint64_t *)(mem + 8192);
	double t0, t;
	pid_t pid;
	int st;

	atomic_store(ball, 0);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		for (uint64_t i = 0; i < rounds; i++) {
			while (atomic_load_explicit(ball, memory_order_acquire) != 2 * i + 1)
				sched_yield();	/* the guest may have one CPU */
			atomic_store_explicit(ball, 2 * i + 2, memory_order_release);
		}
		_exit(0);
	}
	t0 = now_s();
	for (uint64_t i = 0; i < rounds; i++) {
		atomic_store_explicit(ball, 2 * i + 1, memory_order_release);
		while (atomic_load_explicit(ball, memory_order_acquire) != 2 * i + 2)
			sched_yield();
	}
	t = now_s() - t0;
	waitpid(pid, &st, 0);
	check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "bench-pingpong %s: %" PRIu64 " round trips",
	      argv[0], rounds);
	printf("# BENCH pingpong %s roundtrips_per_s=%.0f\n", argv[0], (double)rounds / t);
	fflush(stdout);
	return check_failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	char **a = argv + 2;
	int n = argc - 2;

	if (strcmp(cmd, "ring") == 0 && (n == 3 || n == 4))
		return cmd_ring(a, n);
	if (strcmp(cmd, "listen") == 0 && n == 3)
		return cmd_listen(a);
	if (strcmp(cmd, "ring-all") == 0 && n == 3)
		return cmd_ring_all(a);
	if (strcmp(cmd, "info") == 0 && n == 1)
		return cmd_info(a);
	if (strcmp(cmd, "storm-send") == 0 && n == 5)
		return cmd_storm_send(a);
	if (strcmp(cmd, "storm-recv") == 0 && n == 5)
		return cmd_storm_recv(a);
	if (strcmp(cmd, "bad") == 0 && n == 1)
		return cmd_bad(a);
	if (strcmp(cmd, "plain") == 0 && n == 1)
		return cmd_plain(a);
	if (strcmp(cmd, "hold") == 0 && n == 3)
		return cmd_hold(a);
	if (strcmp(cmd, "concurrent") == 0 && n == 3)
		return cmd_concurrent(a);
	if (strcmp(cmd, "lib") == 0 && n == 1)
		return cmd_lib(a);
	if (strcmp(cmd, "bench-copy") == 0 && n == 3)
		return cmd_bench_copy(a);
	if (strcmp(cmd, "bench-pingpong") == 0 && n == 2)
		return cmd_bench_pingpong(a);
	fprintf(stderr, "usage: see the comment at the top of tests/vm/guest/drvtest.c\n");
	return 2;
}
