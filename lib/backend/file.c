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
#include <stdio.h>
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

/* Only regular files can back a region; name what @path is instead. */
static int check_type(const char *path, const struct stat *st)
{
	if (S_ISREG(st->st_mode))
		return 0;
	return ivshmem_fail(EINVAL, "%s: not a regular file (%s)", path,
			    S_ISFIFO(st->st_mode) ? "a FIFO" : S_ISDIR(st->st_mode) ? "a directory" :
			    S_ISCHR(st->st_mode) ? "a character device" :
			    S_ISBLK(st->st_mode) ? "a block device" :
			    S_ISSOCK(st->st_mode) ? "a socket" : "not a file");
}

/* The directory part of @path. */
static void dir_of(const char *path, char *dir, size_t len)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(dir, len, ".");
	else if (slash == path)
		snprintf(dir, len, "/");
	else
		snprintf(dir, len, "%.*s", (int)(slash - path), path);
}

/* A sticky world-writable directory (/dev/shm, /tmp): anybody may plant names there. */
static bool shared_dir(const char *path, struct stat *ds)
{
	char dir[4096];

	dir_of(path, dir, sizeof(dir));
	return stat(dir, ds) == 0 && (ds->st_mode & S_ISVTX) && (ds->st_mode & S_IWOTH);
}

/*
 * Creating (formatting) a file that another user planted in a shared
 * directory, who can read, truncate or chmod it back at will, is refused
 * unless it belongs to root. Opening without CREATE is not: sharing a file
 * another user made (QEMU's memory-backend-file) is the point, and its
 * permissions decide.
 */
static int check_owner(const char *path, const struct stat *st)
{
	struct stat ds;

	if (st->st_uid == geteuid() || st->st_uid == 0 || !shared_dir(path, &ds))
		return 0;
	return ivshmem_fail(EPERM, "%s: exists and belongs to uid %u, in a world-writable directory: "
			    "refusing to create or format another user's file (remove it, or run "
			    "as its owner)", path, (unsigned int)st->st_uid);
}

/*
 * The last component of @path is a symbolic link: follow it only where
 * fs.protected_symlinks would, whatever the sysctl says: outside a shared
 * directory, or when the link belongs to us or to the directory's owner. In a
 * sticky directory nobody else can replace such a link, so the check holds.
 */
static int check_symlink(const char *path)
{
	struct stat ls, ds;

	if (lstat(path, &ls) < 0)
		return ivshmem_fail(errno, "%s: %s", path, strerror(errno));
	if (!shared_dir(path, &ds) || ls.st_uid == geteuid() || ls.st_uid == ds.st_uid)
		return 0;
	return ivshmem_fail(ELOOP, "%s: a symbolic link of uid %u in a world-writable directory; "
			    "refusing to follow it (give the file itself)", path,
			    (unsigned int)ls.st_uid);
}

/*
 * Open @path for the region. Follows a symbolic link in the last component
 * only when check_symlink() allows it, and never blocks on a FIFO
 * (O_NONBLOCK, then the type check; the fd only lives until mmap, so the flag
 * needs no clearing). With CREATE a missing file is created exclusively
 * (never through a link) and *@created says so.
 */
static int open_path(const char *path, bool ro, bool create, bool *created)
{
	int flags = (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK;
	int fd = -1, ret;

	*created = false;
	if (create) {
		fd = open(path, flags | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
		if (fd >= 0) {
			*created = true;
			return fd;
		}
		if (errno != EEXIST)
			return ivshmem_fail(errno, "%s: %s", path, strerror(errno));
	}
	fd = open(path, flags | O_NOFOLLOW);
	if (fd < 0 && errno == ELOOP) {
		ret = check_symlink(path);
		if (ret < 0)
			return ret;
		fd = open(path, flags);
	}
	if (fd < 0)
		return ivshmem_fail(errno, "%s: %s", path, strerror(errno));
	return fd;
}

/*
 * The owner, group and mode @o asks for, given to the file open_path() just
 * created, through its fd: the name may already point elsewhere. Owner and
 * group first: chown clears set-id bits, and the mode is final.
 */
static int set_perms(int fd, const char *path, const struct ivshmem_open_opts *o)
{
	uid_t uid = (o->flags & IVSHMEM_OPEN_OWNER) ? o->owner : (uid_t)-1;
	gid_t gid = (o->flags & IVSHMEM_OPEN_GROUP) ? o->group : (gid_t)-1;
	mode_t mode = o->mode ? o->mode : 0600;

	if (uid != (uid_t)-1 && fchown(fd, uid, (gid_t)-1) < 0)
		return ivshmem_fail(errno, "%s: cannot give it to user %u: %s", path,
				    (unsigned int)uid, strerror(errno));
	if (gid != (gid_t)-1 && fchown(fd, (uid_t)-1, gid) < 0)
		return ivshmem_fail(errno, "%s: cannot give it to group %u: %s", path,
				    (unsigned int)gid, strerror(errno));
	if (fchmod(fd, mode) < 0)
		return ivshmem_fail(errno, "%s: cannot set mode %04o: %s", path, (unsigned int)mode,
				    strerror(errno));
	return 0;
}

int ivshmem_file_open(struct ivshmem_region *r, const char *path, const struct ivshmem_open_opts *o)
{
	bool ro = o->flags & IVSHMEM_OPEN_READONLY, create = o->flags & IVSHMEM_OPEN_CREATE;
	bool created;
	struct stat st;
	void *base;
	int fd, ret;

	if (!*path)
		return ivshmem_fail(EINVAL, "empty file path");
	if (create && ro)
		return ivshmem_fail(EINVAL, "%s: cannot create a file read-only", path);
	if (o->mode & ~0777u)
		return ivshmem_fail(EINVAL, "%s: mode %o: only permission bits (0 to 0777)", path,
				    o->mode);
	fd = open_path(path, ro, create, &created);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		ret = ivshmem_fail(errno, "%s: fstat: %s", path, strerror(errno));
		goto fail;
	}
	ret = check_type(path, &st);
	if (ret == 0 && create && !created)
		ret = check_owner(path, &st);
	if (ret == 0 && created)
		ret = set_perms(fd, path, o);
	if (ret < 0)
		goto fail;
	if (create && o->size > (uint64_t)st.st_size) {
		if (ftruncate(fd, (off_t)o->size) < 0) {
			ret = ivshmem_fail(errno, "%s: cannot size to %llu bytes: %s", path,
					   (unsigned long long)o->size, strerror(errno));
			goto fail;
		}
		st.st_size = (off_t)o->size;
	}
	if (st.st_size <= 0) {
		ret = ivshmem_fail(EINVAL, "%s: empty file (give a size to create it)", path);
		goto fail;
	}
	base = mmap(NULL, (size_t)st.st_size, PROT_READ | (ro ? 0 : PROT_WRITE), MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		ret = ivshmem_fail(errno, "%s: mmap: %s", path, strerror(errno));
		goto fail;
	}
	close(fd);
	r->ops = &file_ops;
	r->kind = IVSHMEM_BACKEND_FILE;
	r->base = base;
	r->size = (uint64_t)st.st_size;
	return 0;
fail:
	close(fd);
	if (created)
		unlink(path);	/* ours, made a moment ago: leave nothing behind */
	return ret;
}
