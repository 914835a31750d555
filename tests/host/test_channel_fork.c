// SPDX-License-Identifier: MIT
/*
 * fork() after ivshmem_channel_open() (issue 12.7, issue 10 "Also"). The
 * child gets a copy of the channel but not its heartbeat thread, whose lock
 * the parent may hold at the moment of the fork. 200 times: the child's calls
 * fail with EBADFD, its close frees its copy without joining anything or
 * touching the shared slot (an alarm turns a hang into a failure), and the
 * parent's end keeps beating and talking to its peer.
 */
#define _GNU_SOURCE
#include "ivshmem/channel.h"
#include "ivshmem/layout.h"
#include "ivshmem/region.h"
#include "tap.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define FORKS 200

static char path[64];

static struct ivshmem_region *open_region(void)
{
	struct ivshmem_open_opts o = { .backend = IVSHMEM_BACKEND_FILE };
	struct ivshmem_region *r = NULL;

	if (ivshmem_open(&r, path, &o) < 0) {
		printf("Bail out! %s\n", ivshmem_errmsg());
		exit(1);
	}
	return r;
}

/* The child: everything but close refuses; close returns at once. */
static void child(struct ivshmem_channel *a)
{
	char buf[8];

	alarm(10);
	if (ivshmem_channel_send(a, "x", 1, 0) != -EBADFD)
		_exit(2);
	if (ivshmem_channel_recv(a, buf, sizeof(buf), 1000) != -EBADFD)
		_exit(3);
	if (ivshmem_channel_close(a, 1000) != 0)
		_exit(4);
	_exit(0);
}

int main(void)
{
	struct ivshmem_open_opts create = { .backend = IVSHMEM_BACKEND_FILE,
					    .flags = IVSHMEM_OPEN_CREATE, .size = 1 << 20 };
	/* A 1 ms heartbeat: its thread holds its lock around each beat, often at fork time. */
	struct ivshmem_channel_opts o = { .flags = IVSHMEM_CHANNEL_CREATE, .ring_size = 8192,
					  .heartbeat_ms = 1, .dead_ms = 500 };
	struct ivshmem_channel *a, *b;
	struct ivshmem_region *r, *ra, *rb;
	int good = 0, hung = 0, status;
	char buf[16];

	snprintf(path, sizeof(path), "/dev/shm/ivshmem-test-chfork-%d", (int)getpid());
	unlink(path);
	if (ivshmem_open(&r, path, &create) < 0 || ivshmem_layout_format(r, "chfork") < 0) {
		printf("Bail out! %s\n", ivshmem_errmsg());
		return 1;
	}
	ra = open_region();
	rb = open_region();
	tap_is(ivshmem_channel_open(&a, ra, "fork", &o), 0, "A opens 'fork'");
	tap_is(ivshmem_channel_open(&b, rb, "fork", &o), 0, "B opens it");
	for (int i = 0; i < FORKS; i++) {
		pid_t pid = fork();

		if (pid == 0)
			child(a);
		if (pid < 0 || waitpid(pid, &status, 0) != pid)
			break;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			good++;
		else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
			hung++;
		else if (good + hung == i)
			tap_diag("child %d: status %#x", i, status);
	}
	tap_is(good, FORKS, "200 children forked after open: EBADFD, then close returns at once");
	tap_is(hung, 0, "no child hung in close");
	tap_is(ivshmem_channel_state(b), IVSHMEM_CHANNEL_CONNECTED,
	       "the parent's end is still open: B is connected");
	tap_is(ivshmem_channel_send(a, "after", 5, 1000), 0, "A still sends");
	tap_is(ivshmem_channel_recv(b, buf, sizeof(buf), 1000), 5, "B receives it");
	tap_is(ivshmem_channel_send(b, "back", 4, 1000), 0, "B answers");
	tap_is(ivshmem_channel_recv(a, buf, sizeof(buf), 1000), 4, "A receives it");
	tap_is(ivshmem_channel_recv(b, buf, sizeof(buf), 0), -EAGAIN, "B has read everything");
	tap_is(ivshmem_channel_close(a, 1000), 0, "A closes (joins its own heartbeat thread)");
	tap_is(ivshmem_channel_recv(b, buf, sizeof(buf), 1000), -EPIPE, "B sees the close");
	ivshmem_channel_close(b, 0);
	ivshmem_close(ra);
	ivshmem_close(rb);
	ivshmem_close(r);
	unlink(path);
	return tap_done();
}
