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
#include <syslog.h>
#include <unistd.h>

#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x0002U
#endif

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

static int size_fd(int fd, const struct server_config *cfg, const char *what)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		log_msg(LOG_ERR, "%s: fstat: %s", what, strerror(errno));
		return -1;
	}
	if ((uint64_t)st.st_size == cfg->shm_size)
		return 0;
	if (st.st_size != 0)
		log_msg(LOG_NOTICE, "%s: resizing from %lld to %llu bytes", what,
			(long long)st.st_size, (unsigned long long)cfg->shm_size);
	if (cfg->shm_size > (uint64_t)LLONG_MAX || ftruncate(fd, (off_t)cfg->shm_size) < 0) {
		log_msg(LOG_ERR, "%s: cannot size to %llu bytes: %s", what,
			(unsigned long long)cfg->shm_size, strerror(errno));
		return -1;
	}
	return 0;
}

static int create_posix(const struct server_config *cfg)
{
	char what[PATH_MAX + 32];
	int fd;

	snprintf(what, sizeof(what), "POSIX shm '%s'", cfg->shm_path);
	fd = shm_open(cfg->shm_path, O_CREAT | O_RDWR | O_CLOEXEC, cfg->shm_mode);
	if (fd < 0) {
		log_msg(LOG_ERR, "%s: shm_open: %s", what, strerror(errno));
		return -1;
	}
	if (set_owner_mode(fd, cfg, what) < 0 || size_fd(fd, cfg, what) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int create_in_dir(const struct server_config *cfg)
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
	if (set_owner_mode(fd, cfg, cfg->shm_path) < 0 || size_fd(fd, cfg, cfg->shm_path) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int create_memfd(const struct server_config *cfg)
{
	int fd = memfd_create("ivshmem", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0) {
		log_msg(LOG_ERR, "memfd_create: %s", strerror(errno));
		return -1;
	}
	if (set_owner_mode(fd, cfg, "memfd") < 0 || size_fd(fd, cfg, "memfd") < 0) {
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

int shm_create(const struct server_config *cfg)
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
