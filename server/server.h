/* SPDX-License-Identifier: MIT */
/* ivshmem-server internals: configuration, logging, shared memory, event loop. */
#ifndef IVSHMEM_SERVER_H
#define IVSHMEM_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum shm_kind {
	SHM_POSIX,	/* shm_open(NAME): /dev/shm/NAME, QEMU's default */
	SHM_DIR,	/* an unlinked file in a directory (hugetlbfs) */
	SHM_MEMFD,	/* sealed memfd: nobody can resize it */
};

struct server_config {
	const char *socket_path;
	mode_t socket_mode;
	gid_t socket_group;		/* (gid_t)-1: keep */
	enum shm_kind shm_kind;
	const char *shm_path;		/* POSIX name or directory */
	mode_t shm_mode;
	gid_t shm_group;
	uint64_t shm_size;		/* already a power of two */
	unsigned int vectors;
	unsigned int max_peers;
	unsigned int max_queue;		/* messages queued to one client beyond its join burst */
	int listen_fd;			/* from systemd, or -1 */
};

/* Logging (log.c): to stderr or syslog; debug only with -v. */
enum log_target { LOG_TO_STDERR, LOG_TO_SYSLOG };
void log_setup(enum log_target target, bool verbose);
void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Shared memory (shm.c): returns the fd or -1 after logging why. */
int shm_create(const struct server_config *cfg);

/* Listening socket (server.c): bind, replacing a stale socket, never a live one. */
int server_listen(const struct server_config *cfg);
/* The event loop: returns 0 after SIGTERM/SIGINT, 1 on a fatal error. */
int server_run(const struct server_config *cfg, int listen_fd, int shm_fd, int signal_fd);

#endif
