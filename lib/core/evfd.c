// SPDX-License-Identifier: MIT
/*
 * lib/core: event counters shared with untrusted peers (evfd.h says why
 * nothing here depends on O_NONBLOCK). Uses only core (errors).
 */
#define _GNU_SOURCE
#include "core/evfd.h"

#include "core/error.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

int ivshmem_evfd_take(int fd, uint64_t *count)
{
	struct iovec iov = { count, sizeof(*count) };
	ssize_t n;

	do
		n = preadv2(fd, &iov, 1, -1, RWF_NOWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EOPNOTSUPP) {
		/* Old kernel, or not an eventfd (a device node of ours, say). */
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 0) == 0)
			return 0;
		do
			n = read(fd, count, sizeof(*count));
		while (n < 0 && errno == EINTR);
	}
	if (n == (ssize_t)sizeof(*count))
		return 1;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n < 0)
		return ivshmem_fail(errno, "reading event fd %d: %s", fd, strerror(errno));
	return ivshmem_fail(EPROTO, "event fd %d gave %zd bytes, not an 8-byte count "
			    "(not an eventfd)", fd, n);
}

int ivshmem_evfd_signal(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	const uint64_t one = 1;
	ssize_t n;
	int ret;

	do
		ret = poll(&p, 1, 0);
	while (ret < 0 && errno == EINTR);
	if (ret < 0)
		return ivshmem_fail(errno, "poll: %s", strerror(errno));
	if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
		return ivshmem_fail(EPIPE, "event fd %d is hung up or invalid", fd);
	if (ret == 0)
		return 0;	/* saturated: the owner has a wake-up pending */
	do
		n = write(fd, &one, sizeof(one));
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(one) || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)))
		return 0;
	if (n < 0)
		return ivshmem_fail(errno, "writing event fd %d: %s", fd, strerror(errno));
	return ivshmem_fail(EPROTO, "event fd %d took %zd bytes of 8 (not an eventfd)", fd, n);
}

static const char *kind_of(const struct stat *st)
{
	switch (st->st_mode & S_IFMT) {
	case S_IFIFO:
		return "a pipe or FIFO";
	case S_IFSOCK:
		return "a socket";
	case S_IFCHR:
		return "a character device";
	case S_IFBLK:
		return "a block device";
	case S_IFDIR:
		return "a directory";
	case S_IFREG:
		return "a regular file";
	case 0:
		return "an anonymous inode";
	default:
		return "an unknown kind of file";
	}
}

int ivshmem_evfd_check(int fd, const char *what)
{
	char path[32], link[64];
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st) < 0)
		return ivshmem_fail(errno, "%s: fstat: %s", what, strerror(errno));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0 && (st.st_mode & S_IFMT) == 0)
		return 0;	/* no /proc: an anonymous inode is the best we can tell */
	if (n < 0)
		return ivshmem_fail(EPROTO, "%s is %s, not an eventfd", what, kind_of(&st));
	link[n] = '\0';
	if (strcmp(link, "anon_inode:[eventfd]") == 0)
		return 0;
	return ivshmem_fail(EPROTO, "%s is %s (%s), not an eventfd", what, kind_of(&st), link);
}
