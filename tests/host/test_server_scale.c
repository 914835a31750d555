// SPDX-License-Identifier: MIT
/*
 * The server under load: 1,500 simultaneous peers (beyond select()'s
 * FD_SETSIZE), 10,000 connects with random abrupt closes leaving the
 * server's fd count unchanged, and running out of fds (EMFILE) without
 * dying. Raw sockets keep the test process light. argv[1]: the server.
 */
#include "server_helper.h"
#include "tap.h"

#include <sys/epoll.h>
#include <sys/select.h>

#define PEERS 1500
#define CONNECTS 10000

/* Read and discard every message available now; returns messages read or -1 at EOF. */
static int drain(int sock)
{
	int n = 0;

	for (;;) {
		union { char space[CMSG_SPACE(sizeof(int))]; struct cmsghdr a; } ctl;
		uint8_t buf[8 * 64];
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.space,
				      .msg_controllen = sizeof(ctl.space) };
		ssize_t got = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (got == 0)
			return -1;
		if (got < 0)
			return n;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
			int fd;

			memcpy(&fd, CMSG_DATA(c), sizeof(int));
			close(fd);
		}
		n += (int)(got / 8);
	}
}

/* Read the 3-message greeting; returns the ID or -1. */
static int greeting(int sock)
{
	uint8_t b[8];
	int fd, id;

	if (th_raw_recv(sock, b, &fd, NULL, 5000) != 1 || th_le64(b) != 0)
		return -1;
	if (th_raw_recv(sock, b, &fd, NULL, 5000) != 1)
		return -1;
	id = (int)th_le64(b);
	if (th_raw_recv(sock, b, &fd, NULL, 5000) != 1 || th_le64(b) != -1 || fd < 0)
		return -1;
	close(fd);
	return id;
}

static void test_many_peers(const char *server)
{
	const char *extra[] = { "--memfd", "-l", "64K", NULL };
	static int socks[PEERS];
	struct test_server s;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int fds_before, ids_ok = 1, last_msgs = 0;
	int64_t t0;

	{
		struct rlimit rl;

		/* The server needs 2 fds per peer and this test about 2 per peer too. */
		getrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 2 * PEERS + 1200) {
			tap_ok(1, "# SKIP %d peers: the hard RLIMIT_NOFILE is only %llu", PEERS,
			       (unsigned long long)rl.rlim_max);
			close(ep);
			return;
		}
	}
	th_make_dir(&s, "many");
	if (!tap_ok(th_start(&s, server, 8192, extra) == 0, "server starts with RLIMIT_NOFILE 8192"))
		return;
	fds_before = th_count_fds(s.pid);
	t0 = th_now_ms();
	for (int i = 0; i < PEERS; i++) {
		struct epoll_event evs[64];
		struct epoll_event ev = { .events = EPOLLIN };
		int n;

		socks[i] = th_connect(s.sock);
		if (socks[i] < 0 || greeting(socks[i]) != i) {
			ids_ok = 0;
			tap_diag("peer %d: connect or greeting failed", i);
			break;
		}
		ev.data.u32 = (uint32_t)i;
		epoll_ctl(ep, EPOLL_CTL_ADD, socks[i], &ev);
		/* Keep everyone's queue short: read what the joins sent so far. */
		while ((n = epoll_wait(ep, evs, 64, 0)) > 0)
			for (int k = 0; k < n; k++)
				if (drain(socks[evs[k].data.u32]) < 0)
					ids_ok = 0;
	}
	tap_ok(ids_ok, "%d clients connected with IDs 0..%d", PEERS, PEERS - 1);
	{
		struct rusage ru;

		getrusage(RUSAGE_SELF, &ru);
		tap_diag("%d joins in %lld ms; CPU: server %ld ms, this test %ld ms", PEERS,
			 (long long)(th_now_ms() - t0), th_cpu_ms(s.pid),
			 (long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
				 (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000);
	}
	{
		int fds = th_count_fds(s.pid);

		tap_ok(fds >= fds_before + 2 * PEERS && fds > FD_SETSIZE,
		       "server holds %d fds (> FD_SETSIZE %d): a socket and an eventfd per peer", fds,
		       FD_SETSIZE);
	}
	/*
	 * Read every peer's whole greeting: a client whose socket stays full for
	 * 2 s is dropped, and would hold up the next join until then.
	 */
	for (int64_t quiet = th_now_ms(); th_now_ms() - quiet < 300;) {
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, 50);

		for (int k = 0; k < n; k++) {
			drain(socks[evs[k].data.u32]);
			quiet = th_now_ms();
		}
	}
	/* One more client sees every peer: 1,500 (ID, eventfd) pairs then its own. */
	{
		int extra_sock = th_connect(s.sock);
		int id = greeting(extra_sock), fd = -1;
		uint8_t b[8];
		bool ok = id == PEERS;

		for (int i = 0; i < PEERS && ok; i++) {
			ok = th_raw_recv(extra_sock, b, &fd, NULL, 5000) == 1 && th_le64(b) == i &&
			     fd >= 0;
			if (fd >= 0)
				close(fd);
			last_msgs++;
		}
		ok = ok && th_raw_recv(extra_sock, b, &fd, NULL, 5000) == 1 && th_le64(b) == PEERS;
		if (fd >= 0)
			close(fd);
		tap_ok(ok, "client %d receives all %d peers in ID order, then its own eventfd", id,
		       last_msgs);
		close(extra_sock);
	}
	/* Everyone leaves; peer 0 hears about every other peer leaving. */
	for (int i = PEERS - 1; i >= 1; i--)
		close(socks[i]);
	{
		int64_t deadline = th_now_ms() + 10000;
		int left = 0, fd;
		uint8_t b[8];

		while (left < PEERS && th_now_ms() < deadline) {
			if (th_raw_recv(socks[0], b, &fd, NULL, 2000) != 1)
				break;
			if (fd >= 0)
				close(fd);
			else
				left++;
		}
		tap_is(left, PEERS, "peer 0 gets a leave notice for each of the other 1,500");
	}
	close(socks[0]);
	{
		int64_t deadline = th_now_ms() + 5000;
		int fds;

		while ((fds = th_count_fds(s.pid)) != fds_before && th_now_ms() < deadline)
			th_sleep_ms(20);
		tap_is(fds, fds_before, "server fd count back to where it started");
	}
	tap_is(th_stop(&s), 0, "server exits 0");
	close(ep);
	th_cleanup_dir(&s);
}

static void test_connect_storm(const char *server)
{
	const char *extra[] = { "--memfd", "-l", "64K", "-n", "2", NULL };
	enum { LIVE = 40 };
	int live[LIVE];
	struct test_server s;
	int fds_before, fds, greeted = 0, failures = 0;
	unsigned int seed = 12345;
	int64_t t0;

	for (int i = 0; i < LIVE; i++)
		live[i] = -1;
	th_make_dir(&s, "storm");
	if (!tap_ok(th_start(&s, server, 4096, extra) == 0, "server starts"))
		return;
	fds_before = th_count_fds(s.pid);
	t0 = th_now_ms();
	for (int i = 0; i < CONNECTS; i++) {
		int slot = (int)(rand_r(&seed) % LIVE);
		int sock = th_connect(s.sock);

		if (sock < 0) {
			failures++;
			continue;
		}
		switch (rand_r(&seed) % 4) {
		case 0:		/* hang up at once, before the server even accepted */
			close(sock);
			break;
		case 1:		/* hang up in the middle of the greeting */
		{
			uint8_t b[8];
			int fd;

			if (th_raw_recv(sock, b, &fd, NULL, 2000) == 1)
				greeted++;
			close(sock);
			break;
		}
		case 2:		/* close with a reset (unread data, SO_LINGER 0) */
		{
			struct linger lg = { 1, 0 };

			setsockopt(sock, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			close(sock);
			break;
		}
		default:	/* stay a while, replacing a random live one */
			if (live[slot] >= 0)
				close(live[slot]);
			live[slot] = sock;
			break;
		}
		for (int k = 0; k < LIVE; k++)
			if (live[k] >= 0 && drain(live[k]) < 0) {
				close(live[k]);
				live[k] = -1;
			}
	}
	tap_diag("%d connects in %lld ms (%d connect failures)", CONNECTS,
		 (long long)(th_now_ms() - t0), failures);
	tap_is(failures, 0, "every connect succeeded");
	tap_ok(greeted > 0, "some clients were mid-greeting when they hung up (%d)", greeted);
	for (int i = 0; i < LIVE; i++)
		if (live[i] >= 0)
			close(live[i]);
	{
		int64_t deadline = th_now_ms() + 5000;

		while ((fds = th_count_fds(s.pid)) != fds_before && th_now_ms() < deadline)
			th_sleep_ms(20);
		tap_is(fds, fds_before, "server /proc/PID/fd count unchanged after 10,000 connects");
	}
	{
		int c = th_connect(s.sock);

		tap_ok(greeting(c) >= 0, "server still greets new clients");
		close(c);
	}
	tap_is(th_stop(&s), 0, "server exits 0");
	th_cleanup_dir(&s);
}

static void test_emfile(const char *server)
{
	/* 64 fds: about 25 peers of 2 fds each fit, the rest are refused. */
	const char *extra[] = { "--memfd", "-l", "64K", NULL };
	enum { TRY = 60 };
	int socks[TRY], accepted = 0, refused = 0;
	struct test_server s;

	th_make_dir(&s, "emfile");
	if (!tap_ok(th_start(&s, server, 64, extra) == 0, "server starts with RLIMIT_NOFILE 64"))
		return;
	for (int i = 0; i < TRY; i++) {
		socks[i] = th_connect(s.sock);
		if (socks[i] >= 0 && greeting(socks[i]) >= 0)
			accepted++;
		else
			refused++;
	}
	tap_ok(accepted >= 20 && refused > 0, "%d clients accepted, %d refused when out of fds",
	       accepted, refused);
	tap_ok(th_log_has(&s, "out of file descriptors") || th_log_has(&s, "eventfds"),
	       "server logs the refusal");
	for (int i = 0; i < TRY; i++)
		if (socks[i] >= 0)
			close(socks[i]);
	th_sleep_ms(200);
	{
		int c = th_connect(s.sock);
		int id = greeting(c);

		tap_ok(id >= 0, "after they leave the server accepts clients again (ID %d)", id);
		close(c);
	}
	tap_ok(kill(s.pid, 0) == 0, "server still running");
	tap_is(th_stop(&s), 0, "server exits 0");
	th_cleanup_dir(&s);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s IVSHMEM_SERVER_BINARY\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	th_raise_nofile(16384);
	test_many_peers(argv[1]);
	test_connect_storm(argv[1]);
	test_emfile(argv[1]);
	return tap_done();
}
