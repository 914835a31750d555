// SPDX-License-Identifier: MIT
/*
 * The shared memory behind every peer's BAR2: a POSIX shm object (QEMU's
 * default), an unlinked file in a directory (hugetlbfs), or a sealed memfd.
 */
#define _GNU_SOURCE
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <syslog.h>
#include <unistd.h>

#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x0002U
#endif

/* QEMU's server tries powers of two up to the largest huge page size. */
#define MAX_RETRY_SIZE (1ull << 30)

static bool posix_created;	/* this run created /dev/shm/NAME (O_EXCL) */

static int set_owner_mode(int fd, const struct server_config *cfg, const char *what)
{
	if (fchmod(fd, cfg->shm_mode) < 0) {
		log_msg(LOG_ERR, "%s: cannot set mode %04o: %s", what, (unsigned int)cfg->shm_mode,
			strerror(errno));
		return -1;
	}
	if (cfg->shm_group != (gid_t)-1 && fchown(fd, (uid_t)-1, cfg->shm_group) < 0) {
		log_msg(LOG_ERR, "%s: cannot set group %u: %s", what, (unsigned int)cfg->shm_group,
			strerror(errno));
		return -1;
	}
	return 0;
}

static int size_fd(int fd, struct server_config *cfg, const char *what)
{
	uint64_t size = cfg->shm_size;
	struct stat st;

	if (fstat(fd, &st) < 0) {
		log_msg(LOG_ERR, "%s: fstat: %s", what, strerror(errno));
		return -1;
	}
	if ((uint64_t)st.st_size == size)
		return 0;
	if (st.st_size != 0)
		log_msg(LOG_NOTICE, "%s: resizing from %lld to %llu bytes", what,
			(long long)st.st_size, (unsigned long long)size);
	/* hugetlbfs takes only multiples of its page size: try larger powers of two. */
	while (size > (uint64_t)LLONG_MAX || ftruncate(fd, (off_t)size) < 0) {
		if (size > (uint64_t)LLONG_MAX || errno != EINVAL || size >= MAX_RETRY_SIZE) {
			log_msg(LOG_ERR, "%s: cannot size to %llu bytes: %s", what,
				(unsigned long long)size,
				size > (uint64_t)LLONG_MAX ? "too large" : strerror(errno));
			return -1;
		}
		size *= 2;
	}
	if (size != cfg->shm_size) {
		log_msg(LOG_NOTICE, "%s: the filesystem refused %llu bytes; using %llu, the next "
			"power of two it takes (as QEMU's server does)", what,
			(unsigned long long)cfg->shm_size, (unsigned long long)size);
		cfg->shm_size = size;
	}
	return 0;
}

/* Refuse what no peer could map, or what the filesystem cannot hold. */
static int check_backable(int fd, const struct server_config *cfg, const char *what)
{
	struct statfs sf;
	void *p;

	if (fstatfs(fd, &sf) == 0 && sf.f_blocks &&
	    cfg->shm_size / (uint64_t)sf.f_bsize > (uint64_t)sf.f_blocks) {
		log_msg(LOG_ERR, "%s: %llu bytes do not fit in its filesystem (%llu bytes in all)",
			what, (unsigned long long)cfg->shm_size,
			(unsigned long long)sf.f_blocks * (unsigned long long)sf.f_bsize);
		return -1;
	}
	if (cfg->shm_size > SIZE_MAX) {
		log_msg(LOG_ERR, "%s: %llu bytes cannot be mapped here", what,
			(unsigned long long)cfg->shm_size);
		return -1;
	}
	/* Reserves nothing: only asks the kernel for the address range every peer needs. */
	p = mmap(NULL, (size_t)cfg->shm_size, PROT_NONE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (p == MAP_FAILED) {
		log_msg(LOG_ERR, "%s: cannot map %llu bytes (%s): no peer could", what,
			(unsigned long long)cfg->shm_size, strerror(errno));
		return -1;
	}
	munmap(p, (size_t)cfg->shm_size);
	return 0;
}

/* An existing /dev/shm/NAME: ours (euid) and a regular file, or refused. */
static int open_existing(const struct server_config *cfg, const char *what)
{
	int fd = shm_open(cfg->shm_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0);
	struct stat st;

	if (fd < 0) {
		log_msg(LOG_ERR, "%s: exists but cannot be opened: %s", what, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
		if (S_ISREG(st.st_mode))
			log_msg(LOG_ERR, "%s: exists and belongs to UID %u, not to us (UID %u): "
				"refusing to share memory that someone else controls (remove it, "
				"or choose another -M)", what, (unsigned int)st.st_uid,
				(unsigned int)geteuid());
		else
			log_msg(LOG_ERR, "%s: exists and is not a regular file: refusing it", what);
		close(fd);
		return -1;
	}
	log_msg(LOG_NOTICE, "%s: using the existing object (ours, mode %04o, %lld bytes); its "
		"mode and group stay as they are", what, (unsigned int)(st.st_mode & 07777),
		(long long)st.st_size);
	if ((st.st_mode & 0777) != cfg->shm_mode)
		log_msg(LOG_NOTICE, "%s: not changed to --shm-mode %04o: we did not create it", what,
			(unsigned int)cfg->shm_mode);
	return fd;
}

static int create_posix(struct server_config *cfg)
{
	char what[PATH_MAX + 32];
	int fd;

	snprintf(what, sizeof(what), "/dev/shm/%s", cfg->shm_path);
	/* O_EXCL: never adopt an object someone else created (or planted) meanwhile. */
	fd = shm_open(cfg->shm_path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, cfg->shm_mode);
	if (fd >= 0) {
		posix_created = true;
		if (set_owner_mode(fd, cfg, what) < 0)
			goto fail;
	} else if (errno == EEXIST) {
		fd = open_existing(cfg, what);
		if (fd < 0)
			return -1;
	} else {
		log_msg(LOG_ERR, "%s: shm_open: %s", what, strerror(errno));
		return -1;
	}
	if (size_fd(fd, cfg, what) < 0 || check_backable(fd, cfg, what) < 0)
		goto fail;
	return fd;
fail:
	shm_release(cfg, fd, false);
	close(fd);
	return -1;
}

void shm_release(const struct server_config *cfg, int fd, bool started)
{
	struct stat ours, now;
	int cur;

	if (cfg->shm_kind != SHM_POSIX || (started ? cfg->keep_shm : !posix_created))
		return;
	/* Only if the name still refers to our object (nobody replaced it meanwhile). */
	cur = shm_open(cfg->shm_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW, 0);
	if (cur < 0)
		return;
	if (fstat(fd, &ours) == 0 && fstat(cur, &now) == 0 && ours.st_dev == now.st_dev &&
	    ours.st_ino == now.st_ino && shm_unlink(cfg->shm_path) == 0)
		log_msg(LOG_INFO, "removed /dev/shm/%s%s", cfg->shm_path,
			started ? " (--keep-shm keeps it)" : "");
	close(cur);
}

static int create_in_dir(struct server_config *cfg)
{
	char path[PATH_MAX];
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/ivshmem.XXXXXX", cfg->shm_path) >=
	    sizeof(path)) {
		log_msg(LOG_ERR, "%s: directory path too long", cfg->shm_path);
		return -1;
	}
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0) {
		log_msg(LOG_ERR, "%s: cannot create a file there: %s", cfg->shm_path,
			strerror(errno));
		return -1;
	}
	/* Nobody needs the name: peers get the fd, and it vanishes with the last one. */
	unlink(path);
	if (set_owner_mode(fd, cfg, cfg->shm_path) < 0 || size_fd(fd, cfg, cfg->shm_path) < 0 ||
	    check_backable(fd, cfg, cfg->shm_path) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int create_memfd(struct server_config *cfg)
{
	int fd = memfd_create("ivshmem", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0) {
		log_msg(LOG_ERR, "memfd_create: %s", strerror(errno));
		return -1;
	}
	if (set_owner_mode(fd, cfg, "memfd") < 0 || size_fd(fd, cfg, "memfd") < 0 ||
	    check_backable(fd, cfg, "memfd") < 0) {
		close(fd);
		return -1;
	}
	/*
	 * A peer holding the fd could otherwise ftruncate it and SIGBUS every
	 * other peer. F_SEAL_SEAL stops anyone adding F_SEAL_WRITE later.
	 */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		log_msg(LOG_ERR, "memfd: cannot seal: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int shm_create(struct server_config *cfg)
{
	switch (cfg->shm_kind) {
	case SHM_POSIX:
		return create_posix(cfg);
	case SHM_DIR:
		return create_in_dir(cfg);
	case SHM_MEMFD:
		return create_memfd(cfg);
	}
	return -1;
}
