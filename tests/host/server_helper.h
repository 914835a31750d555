/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the ivshmem-server tests: start the server binary (path in
 * argv[1]) in the foreground on a private socket, count its open fds, stop it.
 * Raw-socket helpers read single protocol messages without the library.
 */
#ifndef IVSHMEM_TESTS_SERVER_HELPER_H
#define IVSHMEM_TESTS_SERVER_HELPER_H

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct test_server {
	pid_t pid;
	char sock[108];
	char log[128];
	char dir[64];
};

static inline int64_t th_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void th_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* A private temp dir for sockets and logs, removed by th_cleanup_dir(). */
static inline void th_make_dir(struct test_server *s, const char *tag)
{
	snprintf(s->dir, sizeof(s->dir), "/tmp/ivsrv-%s-XXXXXX", tag);
	if (!mkdtemp(s->dir)) {
		perror("mkdtemp");
		exit(99);
	}
	snprintf(s->sock, sizeof(s->sock), "%s/sock", s->dir);
	snprintf(s->log, sizeof(s->log), "%s/server.log", s->dir);
}

static inline void th_cleanup_dir(struct test_server *s)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "# could not remove %s\n", s->dir);
}

static inline bool th_socket_ready(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/*
 * Start "BINARY -F -S sock EXTRA..." with stderr to the log; @nofile > 0 sets
 * its RLIMIT_NOFILE. Waits for the socket (5 s). Returns 0 or -1.
 */
static inline int th_start(struct test_server *s, const char *binary, int nofile,
			   const char *const *extra)
{
	const char *argv[32];
	int n = 0;

	argv[n++] = binary;
	argv[n++] = "-F";
	argv[n++] = "-S";
	argv[n++] = s->sock;
	for (int i = 0; extra && extra[i] && n < 30; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	s->pid = fork();
	if (s->pid < 0)
		return -1;
	if (s->pid == 0) {
		int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (fd >= 0)
			dup2(fd, 2);
		if (nofile > 0) {
			struct rlimit rl;

			/* Within the hard limit; lowering the hard limit too is fine for a test. */
			getrlimit(RLIMIT_NOFILE, &rl);
			if (rl.rlim_max == RLIM_INFINITY || (rlim_t)nofile <= rl.rlim_max)
				rl.rlim_max = (rlim_t)nofile;
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		execv(binary, (char **)argv);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		int status;

		if (th_socket_ready(s->sock))
			return 0;
		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			s->pid = 0;
			return -1;
		}
		th_sleep_ms(10);
	}
	return -1;
}

/* SIGTERM and wait; returns the exit status (or 128+signal, or -1 on a 5 s timeout). */
static inline int th_stop(struct test_server *s)
{
	int status;

	if (s->pid <= 0)
		return -1;
	kill(s->pid, SIGTERM);
	for (int i = 0; i < 500; i++) {
		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			s->pid = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
		th_sleep_ms(10);
	}
	kill(s->pid, SIGKILL);
	waitpid(s->pid, &status, 0);
	s->pid = 0;
	return -1;
}

static inline int th_count_fds(pid_t pid)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* CPU time (user + system) a process used so far, in ms; -1 if unknown. */
static inline long th_cpu_ms(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long ut, st;
	char *p;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
	fclose(f);
	/* After "(comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (long)((ut + st) * 1000 / (unsigned long)sysconf(_SC_CLK_TCK));
}

/* True if the server log contains @needle. */
static inline bool th_log_has(const struct test_server *s, const char *needle)
{
	char buf[1 << 16];
	FILE *f = fopen(s->log, "r");
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(buf, sizeof(buf), f))
		found = strstr(buf, needle) != NULL;
	fclose(f);
	return found;
}

static inline void th_raise_nofile(rlim_t want)
{
	struct rlimit rl;

	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max)
		want = rl.rlim_max;
	rl.rlim_cur = want;
	setrlimit(RLIMIT_NOFILE, &rl);
}

static inline int th_connect(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A listening socket at @path (replacing a stale one) for a fake server; exits 99 on failure. */
static inline int th_listen(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	unlink(path);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	if (bind(ls, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(ls, 4) < 0) {
		perror("fake server");
		exit(99);
	}
	return ls;
}

/*
 * Read exactly one raw message: 8 bytes in one recvmsg, the raw bytes into
 * @bytes, the fd (or -1) into *fd; *ctrl_len gets msg_controllen. Waits at
 * most @timeout_ms. Returns 1, 0 on EOF, -1 on timeout/error.
 */
static inline int th_raw_recv(int sock, uint8_t bytes[8], int *fd, size_t *ctrl_len,
			      int timeout_ms)
{
	union {
		char space[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { bytes, 8 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space,
			      .msg_controllen = sizeof(control.space) };
	struct pollfd pfd = { sock, POLLIN, 0 };
	ssize_t n;

	*fd = -1;
	if (poll(&pfd, 1, timeout_ms) != 1)
		return -1;
	n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	if (n == 0)
		return 0;
	if (n != 8)
		return -1;
	if (ctrl_len)
		*ctrl_len = msg.msg_controllen;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(fd, CMSG_DATA(c), sizeof(int));
	return 1;
}

static inline int64_t th_le64(const uint8_t b[8])
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return (int64_t)v;
}

/* What an fd is, from /proc/self/fd: e.g. "anon_inode:[eventfd]", "/memfd:ivshmem (deleted)". */
static inline const char *th_fd_kind(int fd, char *buf, size_t len)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, buf, len - 1);
	buf[n < 0 ? 0 : n] = '\0';
	return buf;
}

#endif
