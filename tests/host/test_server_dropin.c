// SPDX-License-Identifier: MIT
/*
 * QEMU's join order (issue 11, item 1): once a client holds its own vectors,
 * every other peer has been sent its join notice. With 200 idle peers
 * present, a newcomer that writes its ID into the shared memory and rings a
 * responder as soon as ivshmem_open() returns must get every answer: the
 * responder (libivshmem, which catches up on its socket for an unknown ID)
 * always knows it. argv[1]: the server binary.
 */
#include "server_helper.h"
#include "tap.h"

#include "ivshmem/region.h"

#include <pthread.h>
#include <sys/epoll.h>

#define IDLE 200
#define ROUNDS 300

/* Shared memory layout of this test. */
#define OFF_ASK		0	/* uint32: ID of the newcomer to answer */
#define OFF_LOST	64	/* uint32: answers the responder could not send */
#define OFF_STOP	128	/* uint32: responder, exit */

static volatile int drain_stop;

/* The idle peers read and discard everything (as QEMU's devices do). */
static void *drain(void *arg)
{
	int ep = *(int *)arg;

	while (!drain_stop) {
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, 100);

		for (int i = 0; i < n; i++) {
			union { char space[CMSG_SPACE(sizeof(int))]; struct cmsghdr a; } ctl;
			uint8_t buf[8 * 16];
			struct iovec iov = { buf, sizeof(buf) };
			struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
					      .msg_control = ctl.space,
					      .msg_controllen = sizeof(ctl.space) };

			if (recvmsg(evs[i].data.fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) <= 0)
				continue;
			for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
				int fd;

				memcpy(&fd, CMSG_DATA(c), sizeof(int));
				close(fd);
			}
		}
	}
	return NULL;
}

static struct ivshmem_region *open_peer(const char *sock)
{
	struct ivshmem_region *r = NULL;
	char target[160];

	snprintf(target, sizeof(target), "server:%s", sock);
	if (ivshmem_open(&r, target, NULL) < 0)
		tap_diag("open %s: %s", target, ivshmem_errmsg());
	return r;
}

static uint32_t get32(struct ivshmem_region *r, uint64_t off)
{
	uint32_t v = 0;

	ivshmem_read(r, off, &v, sizeof(v));
	return v;
}

static void put32(struct ivshmem_region *r, uint64_t off, uint32_t v)
{
	ivshmem_write(r, off, &v, sizeof(v));
}

/* The responder: on each doorbell, ring back the ID written at OFF_ASK. */
static void responder(const char *sock, int ready_fd)
{
	struct ivshmem_region *r = open_peer(sock);
	int id = r ? ivshmem_own_id(r) : -1;

	if (write(ready_fd, &id, sizeof(id)) != sizeof(id) || !r)
		_exit(1);
	while (!get32(r, OFF_STOP)) {
		uint64_t count;

		if (ivshmem_wait(r, 0, 200, &count) != 1)
			continue;
		if (ivshmem_notify(r, (uint16_t)get32(r, OFF_ASK), 0) < 0)
			put32(r, OFF_LOST, get32(r, OFF_LOST) + 1);
	}
	ivshmem_close(r);
	_exit(0);
}

int main(int argc, char **argv)
{
	const char *extra[] = { "--memfd", "-l", "64K", "-n", "1", NULL };
	int idle[IDLE], pipefd[2], rid = -1, ep, answered = 0, opened = 0;
	struct ivshmem_region *ctl;
	struct test_server s;
	pthread_t drainer;
	pid_t child;
	int64_t t0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s IVSHMEM_SERVER_BINARY\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	th_raise_nofile(4096);
	th_make_dir(&s, "order");
	if (!tap_ok(th_start(&s, argv[1], 4096, extra) == 0, "server starts"))
		return tap_done();
	if (pipe(pipefd) < 0)
		return 99;
	child = fork();
	if (child == 0)
		responder(s.sock, pipefd[1]);
	if (read(pipefd[0], &rid, sizeof(rid)) != sizeof(rid) || rid < 0) {
		tap_ok(0, "the responder joins");
		th_stop(&s);
		return tap_done();
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	for (int i = 0; i < IDLE; i++) {
		struct epoll_event ev = { .events = EPOLLIN };

		idle[i] = th_connect(s.sock);
		ev.data.fd = idle[i];
		if (idle[i] >= 0)
			epoll_ctl(ep, EPOLL_CTL_ADD, idle[i], &ev);
	}
	pthread_create(&drainer, NULL, drain, &ep);
	ctl = open_peer(s.sock);
	tap_ok(ctl && ivshmem_peer_vectors(ctl, (uint16_t)rid) == 1,
	       "the responder and %d idle peers are present", IDLE);

	t0 = th_now_ms();
	for (int i = 0; i < ROUNDS; i++) {
		struct ivshmem_region *r = open_peer(s.sock);
		uint64_t count;

		if (!r)
			continue;
		opened++;
		/* At once: our own vectors are here, so the responder has been told of us. */
		put32(r, OFF_ASK, (uint32_t)ivshmem_own_id(r));
		if (ivshmem_notify(r, (uint16_t)rid, 0) == 0 && ivshmem_wait(r, 0, 2000, &count) == 1)
			answered++;
		ivshmem_close(r);
	}
	tap_diag("%d rounds in %lld ms", ROUNDS, (long long)(th_now_ms() - t0));
	tap_is(opened, ROUNDS, "every newcomer opens");
	tap_is(ctl ? (long long)get32(ctl, OFF_LOST) : -1, 0,
	       "the responder never met an ID it did not know");
	tap_ok(answered == ROUNDS, "every newcomer got its answer (%d of %d)", answered, ROUNDS);
	if (ctl) {
		put32(ctl, OFF_STOP, 1);
		ivshmem_close(ctl);
	}
	waitpid(child, NULL, 0);
	drain_stop = 1;
	pthread_join(drainer, NULL);
	for (int i = 0; i < IDLE; i++)
		close(idle[i]);
	tap_is(th_stop(&s), 0, "SIGTERM: exit 0");
	th_cleanup_dir(&s);
	return tap_done();
}
