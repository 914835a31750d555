// SPDX-License-Identifier: MIT
/*
 * lib/backend: uses core, proto, guest.
 *
 * Host file backend: any mmap-able file (/dev/shm/NAME as QEMU's
 * memory-backend-file uses it, a hugetlbfs file, a plain file). No doorbell,
 * no interrupts: users of such a region poll.
 */
#include "backend/backends.h"
#include "core/error.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void file_close(struct ivshmem_region *r)
{
	munmap(r->base, r->size);
}

static const struct ivshmem_backend_ops file_ops = {
	.close = file_close,
};

int ivshmem_file_open(struct ivshmem_region *r, const char *path, const struct ivshmem_open_opts *o)
{
	bool ro = o->flags & IVSHMEM_OPEN_READONLY;
	int flags = (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	struct stat st;
	void *base;
	int fd;

	if (!*path)
		return ivshmem_fail(EINVAL, "empty file path");
	if (o->flags & IVSHMEM_OPEN_CREATE) {
		if (ro)
			return ivshmem_fail(EINVAL, "%s: cannot create a file read-only", path);
		flags |= O_CREAT;
	}
	fd = open(path, flags, 0600);
	if (fd < 0)
		return ivshmem_fail(errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return ivshmem_fail(EINVAL, "%s: not a regular file", path);
	}
	if ((o->flags & IVSHMEM_OPEN_CREATE) && o->size > (uint64_t)st.st_size) {
		if (ftruncate(fd, (off_t)o->size) < 0) {
			int err = errno;

			close(fd);
			return ivshmem_fail(err, "%s: cannot size to %llu bytes: %s", path,
					    (unsigned long long)o->size, strerror(err));
		}
		st.st_size = (off_t)o->size;
	}
	if (st.st_size <= 0) {
		close(fd);
		return ivshmem_fail(EINVAL, "%s: empty file (give a size to create it)", path);
	}
	base = mmap(NULL, (size_t)st.st_size, PROT_READ | (ro ? 0 : PROT_WRITE), MAP_SHARED, fd, 0);
	close(fd);
	if (base == MAP_FAILED)
		return ivshmem_fail(errno, "%s: mmap: %s", path, strerror(errno));
	r->ops = &file_ops;
	r->kind = IVSHMEM_BACKEND_FILE;
	r->base = base;
	r->size = (uint64_t)st.st_size;
	return 0;
}
