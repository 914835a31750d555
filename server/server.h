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
	bool keep_shm;			/* leave /dev/shm/NAME behind at exit */
	uint64_t shm_size;		/* a power of two; shm_create() may raise it (hugetlbfs) */
	unsigned int vectors;
	unsigned int max_peers;
	unsigned int max_queue;		/* messages queued to one client beyond its join burst */
	int listen_fd;			/* from systemd, or -1 */
	const char *kernel_peer;	/* --kernel-peer NAME, or NULL */
};

/*
 * With --kernel-peer, ivshmem_host.ko is peer KERNEL_PEER_ID: the first peer,
 * so the ID every server starts with. A master=on device (which needs ID 0)
 * cannot be used beside it.
 */
#define KERNEL_PEER_ID 0

/* Logging (log.c): to stderr or syslog; debug only with -v. */
enum log_target { LOG_TO_STDERR, LOG_TO_SYSLOG };
void log_setup(enum log_target target, bool verbose);
void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Shared memory (shm.c): returns the fd or -1 after logging why. Never uses a
 * /dev/shm object that is not a regular file owned by our effective UID, and
 * never changes the mode or group of one it did not create. Sizes a
 * filesystem refuses are retried at the next powers of two up to 1 GiB (as
 * QEMU's server does, for hugetlbfs), updating cfg->shm_size; sizes no peer
 * could map are refused.
 */
int shm_create(struct server_config *cfg);
/*
 * At exit: shm_unlink /dev/shm/NAME if it is still the object @fd refers to,
 * unless cfg->keep_shm (as QEMU's server does). After a failed start
 * (@started false) only an object this run created is removed.
 */
void shm_release(const struct server_config *cfg, int fd, bool started);

/* Listening socket (server.c): bind, replacing a stale socket, never a live one. */
int server_listen(const struct server_config *cfg);
/*
 * The event loop: returns 0 after SIGTERM/SIGINT, 1 on a fatal error.
 * @kernel_dev: the /dev/ivshmem-host fd holding the region attached as peer
 * KERNEL_PEER_ID (ivshmem_kpeer_attach()), or -1; the loop owns it and closes
 * it when the kernel peer leaves, which removes the region from the kernel.
 */
int server_run(const struct server_config *cfg, int listen_fd, int shm_fd, int signal_fd,
	       int kernel_dev);

#endif
