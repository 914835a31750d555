// SPDX-License-Identifier: MIT
/*
 * Files planted by another user (issue 10, items 12 and 13): in a sticky
 * world-writable directory (like /dev/shm) a symbolic link of another user is
 * never followed and another user's file is never formatted; a FIFO is refused
 * at once instead of blocking in open(). Planting as another user needs root
 * (chown); without it those checks are skipped. argv[1]: the ivshmem binary.
 */
#define _GNU_SOURCE
#include "tap.h"

#include "ivshmem/region.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NOBODY 65534
#define BOUND_MS 5000

static char dir[64], victim[128];

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run @argv with stdin from /dev/null; exit status, 128 + signal, or -1 when it hung. */
static int run(char *const argv[])
{
	struct timespec step = { 0, 5000000 };
	int64_t t0 = now_ms();
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	while (now_ms() - t0 < BOUND_MS) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
		nanosleep(&step, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

static off_t size_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : -1;
}

/* The victim is 64 KiB of zeros until someone writes into it. */
static bool victim_untouched(void)
{
	static char zero[65536], buf[65536];
	int fd = open(victim, O_RDONLY);
	bool same = fd >= 0 && read(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf) &&
		    memcmp(buf, zero, sizeof(buf)) == 0;

	if (fd >= 0)
		close(fd);
	return same && size_of(victim) == 65536;
}

static void test_planted(const char *cli)
{
	struct ivshmem_open_opts create = { .flags = IVSHMEM_OPEN_CREATE, .size = 65536 };
	struct ivshmem_region *r = NULL;
	char link[160], file[160], mine[160];
	int ret;

	snprintf(link, sizeof(link), "%s/planted-link", dir);
	snprintf(file, sizeof(file), "%s/planted-file", dir);
	snprintf(mine, sizeof(mine), "%s/my-link", dir);
	if (symlink(victim, link) < 0 || lchown(link, NOBODY, NOBODY) < 0) {
		tap_ok(0, "setup: plant a symlink as uid %d", NOBODY);
		return;
	}
	ret = ivshmem_open(&r, link, &create);
	tap_ok(ret == -ELOOP && victim_untouched(),
	       "creating through another user's symlink in a sticky directory is refused: %s",
	       ivshmem_errmsg());
	ret = ivshmem_open(&r, link, NULL);
	tap_ok(ret == -ELOOP, "... and so is opening it (%d)", ret);
	if (cli) {
		char *fmt[] = { (char *)cli, "format", "--size", "64K", link, NULL };
		char *wr[] = { (char *)cli, "write", link, NULL };

		ret = run(fmt);
		tap_ok(ret > 0 && ret < 128 && victim_untouched(),
		       "'ivshmem format --size 64K' through it fails (%d) and leaves the target alone",
		       ret);
		ret = run(wr);
		tap_ok(ret > 0 && ret < 128 && victim_untouched(),
		       "'ivshmem write' through it fails (%d)", ret);
	}

	/* A link of our own in the same directory is ours to follow. */
	if (symlink(victim, mine) == 0) {
		struct ivshmem_open_opts o = { .flags = IVSHMEM_OPEN_CREATE, .size = 65536 };

		ret = ivshmem_open(&r, mine, &o);
		tap_ok(ret == 0, "our own symlink is followed (%s)", ret ? ivshmem_errmsg() : "ok");
		ivshmem_close(r);
		r = NULL;
		if (truncate(victim, 0) < 0 || truncate(victim, 65536) < 0)
			tap_diag("truncate failed");
		unlink(mine);
	}

	/* A regular file another user planted under the name we meant to create. */
	int fd = open(file, O_CREAT | O_EXCL | O_RDWR, 0666);

	if (fd < 0 || fchown(fd, NOBODY, NOBODY) < 0 || ftruncate(fd, 4096) < 0) {
		tap_ok(0, "setup: plant a file as uid %d", NOBODY);
	} else {
		ret = ivshmem_open(&r, file, &create);
		tap_ok(ret == -EPERM && size_of(file) == 4096,
		       "formatting another user's file in a sticky directory is refused: %s",
		       ivshmem_errmsg());
		ret = ivshmem_open(&r, file, NULL);
		tap_ok(ret == 0, "... opening it without CREATE is allowed (sharing, %s)",
		       ret ? ivshmem_errmsg() : "ok");
		ivshmem_close(r);
	}
	if (fd >= 0)
		close(fd);
	unlink(file);
	unlink(link);
}

static void test_fifo(const char *cli)
{
	char fifo[160];
	static const char *const cmds[][4] = {
		{ "info", NULL }, { "dump", NULL }, { "read", NULL }, { "wait", "--timeout", "1000" },
	};

	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	if (mkfifo(fifo, 0600) < 0) {
		tap_ok(0, "mkfifo");
		return;
	}
	pid_t pid = fork();

	if (pid == 0) {
		struct ivshmem_region *r;

		alarm(5);
		_exit(ivshmem_open(&r, fifo, NULL) == -EINVAL && strstr(ivshmem_errmsg(), "FIFO") ?
			      0 : 1);
	}
	int st;

	waitpid(pid, &st, 0);
	tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	       "opening a FIFO fails at once, saying it is a FIFO (status %#x)", st);
	for (size_t i = 0; cli && i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char *argv[] = { (char *)cli, (char *)cmds[i][0], fifo, (char *)cmds[i][1],
				 (char *)cmds[i][2], NULL };
		int ret = run(argv);

		tap_ok(ret > 0 && ret < 128, "'ivshmem %s' on a FIFO fails at once (%d)", cmds[i][0],
		       ret);
	}
	unlink(fifo);
}

int main(int argc, char **argv)
{
	const char *cli = argc > 1 ? argv[1] : NULL;
	int fd;

	snprintf(dir, sizeof(dir), "/tmp/ivshmem-files-XXXXXX");
	if (!mkdtemp(dir) || chmod(dir, 01777) < 0)
		return 99;
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	fd = open(victim, O_CREAT | O_EXCL | O_RDWR, 0600);	/* root's file elsewhere */
	if (fd < 0 || ftruncate(fd, 65536) < 0)
		return 99;
	close(fd);
	if (geteuid() == 0)
		test_planted(cli);
	else
		tap_diag("not root: cannot plant files as another user; skipping those checks");
	test_fifo(cli);
	unlink(victim);
	rmdir(dir);
	return tap_done();
}
