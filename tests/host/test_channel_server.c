// SPDX-License-Identifier: MIT
/*
 * Channels between two peers of ivshmem-server (argv[1]): the doorbell path.
 * Both endpoints sleep on their eventfds (no spinning), so every message of a
 * ping-pong needs a doorbell: the round trips prove that the armed flags,
 * the recorded peer IDs and ivshmem_notify() wake the right peer. Then a
 * peer without a heartbeat is SIGKILLed: only the server's leave notice can
 * tell, and the blocked recv must return ECONNRESET at once.
 */
#include "server_helper.h"

#include "ivshmem/channel.h"
#include "ivshmem/layout.h"
#include "ivshmem/region.h"
#include "tap.h"

static struct test_server srv;
static char target[160];

static struct ivshmem_region *open_peer(void)
{
	struct ivshmem_region *r = NULL;

	if (ivshmem_open(&r, target, NULL) < 0) {
		printf("Bail out! %s: %s\n", target, ivshmem_errmsg());
		exit(1);
	}
	return r;
}

static double now_s(void)
{
	return th_now_ms() / 1000.0;
}

#define ROUNDS 2000

/*
 * A peer that closes its end and then leaves the server (issue 12.1): the
 * leave notice arrives before the receiver looks, and still it is a close
 * (EPIPE after the data), not a death: the slot says CLOSED.
 */
static void close_then_leave(void)
{
	struct ivshmem_channel_opts o = { .flags = IVSHMEM_CHANNEL_CREATE, .dead_ms = 60000 };
	struct ivshmem_region *ra = open_peer(), *rb = open_peer();
	struct ivshmem_channel *a, *b;
	struct pollfd pfd = { .events = POLLIN };
	char buf[16];

	tap_is(ivshmem_channel_open(&a, ra, "bye", &o), 0, "A opens 'bye'");
	tap_is(ivshmem_channel_open(&b, rb, "bye", &o), 0, "B opens it");
	tap_is(ivshmem_channel_send(a, "hi", 2, 1000), 0, "A sends");
	ivshmem_channel_close(a, 0);
	ivshmem_close(ra);
	pfd.fd = ivshmem_control_fd(rb);
	tap_ok(poll(&pfd, 1, 5000) == 1, "A left the server: B's control socket has the notice");
	tap_is(ivshmem_channel_recv(b, buf, sizeof(buf), 1000), 2, "B gets the data");
	tap_is(ivshmem_channel_recv(b, buf, sizeof(buf), 1000), -EPIPE,
	       "then EPIPE: a close, not a death (ECONNRESET)");
	tap_is(ivshmem_channel_state(b), IVSHMEM_CHANNEL_PEER_CLOSED, "state: peer-closed");
	ivshmem_channel_close(b, 0);
	ivshmem_close(rb);
}

static void echo_child(void)
{
	struct ivshmem_region *r = open_peer();
	struct ivshmem_channel_opts o = { .flags = IVSHMEM_CHANNEL_CREATE, .spin_us = -1,
					  .open_timeout_ms = 5000 };
	struct ivshmem_channel *ch;
	unsigned int v;

	if (ivshmem_channel_open(&ch, r, "ping", &o) < 0)
		_exit(10);
	for (int i = 0; i < ROUNDS; i++) {
		if (ivshmem_channel_recv(ch, &v, sizeof(v), 5000) != sizeof(v))
			_exit(11);
		v++;
		if (ivshmem_channel_send(ch, &v, sizeof(v), 5000) < 0)
			_exit(12);
	}
	/* Then a stream the other way, with the default spin. */
	while (ivshmem_channel_recv(ch, &v, sizeof(v), 5000) == sizeof(v))
		;
	_exit(ivshmem_channel_close(ch, 5000) == 0 ? 0 : 13);
}

int main(int argc, char **argv)
{
	const char *extra[] = { "-M", NULL, "-l", "1M", "-n", "2", NULL };
	struct ivshmem_channel_opts o = { .flags = IVSHMEM_CHANNEL_CREATE, .spin_us = -1 };
	struct ivshmem_channel_stats st;
	struct ivshmem_channel *ch;
	struct ivshmem_region *r;
	char shm_name[64];
	unsigned int bad = 0;
	int status, pfd[2];
	pid_t pid;
	double t0;

	if (argc < 2) {
		printf("Bail out! usage: %s SERVER-BINARY\n", argv[0]);
		return 1;
	}
	th_make_dir(&srv, "chan");
	snprintf(shm_name, sizeof(shm_name), "ivshmem-test-chsrv-%d", (int)getpid());
	extra[1] = shm_name;
	if (th_start(&srv, argv[1], 0, extra) < 0) {
		printf("Bail out! cannot start %s\n", argv[1]);
		return 1;
	}
	snprintf(target, sizeof(target), "server:%s", srv.sock);
	r = open_peer();
	tap_ok(ivshmem_vectors(r) == 2 && ivshmem_own_id(r) >= 0, "a server peer with 2 vectors");
	tap_is(ivshmem_layout_format(r, "chan-server"), 0, "format the server's memory");

	/* Every fork happens before this process starts a heartbeat thread (see test_channel_fork.c). */
	pid = fork();
	if (pid == 0)
		echo_child();
	tap_is(ivshmem_channel_open(&ch, r, "ping", &o), 0, "open 'ping' (no spinning)");
	t0 = now_s();
	for (unsigned int i = 0; i < ROUNDS; i++) {
		unsigned int v = i * 2;

		if (ivshmem_channel_send(ch, &v, sizeof(v), 5000) < 0 ||
		    ivshmem_channel_recv(ch, &v, sizeof(v), 5000) != sizeof(v) || v != i * 2 + 1) {
			bad++;
			tap_diag("round %u: %s", i, ivshmem_errmsg());
			break;
		}
	}
	tap_is(bad, 0, "2000 round trips, both sides sleeping on doorbells");
	/* Without working doorbells each wait would last a liveness-check period (250 ms). */
	tap_ok(now_s() - t0 < 30.0, "in %.2f s: woken by doorbells, not by timeouts", now_s() - t0);
	ivshmem_channel_stats(ch, &st);
	tap_ok(st.doorbell_mode == 1, "this endpoint sleeps on doorbells");
	tap_diag("ping-pong: %llu doorbells rung, %llu sleeps", (unsigned long long)st.doorbells,
		 (unsigned long long)st.sleeps);
	tap_ok(st.doorbells >= ROUNDS / 20, "the peer was woken by doorbells (%llu)",
	       (unsigned long long)st.doorbells);

	/* Streaming with the default spin: almost no doorbells. */
	{
		uint64_t before = st.doorbells;
		unsigned int n = 200000;

		for (unsigned int i = 0; i < n && !bad; i++)
			if (ivshmem_channel_send(ch, &i, sizeof(i), 5000) < 0)
				bad++;
		ivshmem_channel_stats(ch, &st);
		tap_diag("stream of %u: %.4f doorbells per message", n,
			 (double)(st.doorbells - before) / n);
	}
	tap_is(ivshmem_channel_close(ch, 5000), 0, "close: the peer read everything");
	waitpid(pid, &status, 0);
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the echo peer finished cleanly (%d)",
	       status);

	/* Death of a peer that has no heartbeat: only the server's leave notice tells. */
	struct ivshmem_channel_opts slow = { .flags = IVSHMEM_CHANNEL_CREATE, .dead_ms = 60000 };

	if (pipe(pfd) < 0)
		return 1;
	pid = fork();
	if (pid == 0) {
		struct ivshmem_region *rc = open_peer();
		struct ivshmem_channel_opts nohb = { .flags = IVSHMEM_CHANNEL_CREATE, .heartbeat_ms = -1 };
		struct ivshmem_channel *c;
		char c1 = 'r';

		if (ivshmem_channel_open(&c, rc, "death", &nohb) < 0)
			_exit(10);
		if (write(pfd[1], &c1, 1) != 1)
			_exit(11);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	{
		char c1;

		if (read(pfd[0], &c1, 1) != 1)
			tap_diag("the child did not open the channel");
	}
	tap_is(ivshmem_channel_open(&ch, r, "death", &slow), 0, "open 'death' (dead_ms 60 s)");
	tap_is(ivshmem_channel_state(ch), IVSHMEM_CHANNEL_CONNECTED, "connected to the peer");
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	t0 = now_s();
	{
		char buf[16];
		ssize_t n = ivshmem_channel_recv(ch, buf, sizeof(buf), 20000);

		tap_ok(n == -ECONNRESET, "a blocked recv fails with ECONNRESET (%s)", ivshmem_errmsg());
	}
	tap_ok(now_s() - t0 < 5.0, "from the server's leave notice, not a 60 s timeout (%.2f s)",
	       now_s() - t0);
	ivshmem_channel_close(ch, 0);
	close_then_leave();
	ivshmem_close(r);
	th_stop(&srv);
	th_cleanup_dir(&srv);
	{
		char path[96];

		/* The server leaves its shared memory behind, like QEMU's does. */
		snprintf(path, sizeof(path), "/dev/shm/%s", shm_name);
		unlink(path);
	}
	return tap_done();
}
