// SPDX-License-Identifier: MIT
/*
 * Host peers through the library against the real server: join, leave and
 * notify among several peers, then the misbehaving ones: a client sending
 * garbage, a peer killed with SIGKILL, a client that never reads, and finally
 * SIGTERM with its notices. argv[1]: the ivshmem-server binary.
 */
#include "server_helper.h"
#include "tap.h"

#include "ivshmem/region.h"

#define VECTORS 4

static struct ivshmem_region *open_peer(const char *sock)
{
	struct ivshmem_region *r = NULL;
	char target[160];

	snprintf(target, sizeof(target), "server:%s", sock);
	if (ivshmem_open(&r, target, NULL) < 0)
		tap_diag("open %s: %s", target, ivshmem_errmsg());
	return r;
}

/* Next join/leave event within @timeout_ms: 1, 0 on timeout, <0 error. */
static int next_event(struct ivshmem_region *r, struct ivshmem_peer_event *ev, int timeout_ms)
{
	int64_t deadline = th_now_ms() + timeout_ms;

	for (;;) {
		struct pollfd p = { ivshmem_control_fd(r), POLLIN, 0 };
		int ret = ivshmem_next_peer_event(r, ev);
		int left = (int)(deadline - th_now_ms());

		if (ret != 0)
			return ret;
		if (left <= 0)
			return 0;
		poll(&p, 1, left);
	}
}

static bool expect_event(struct ivshmem_region *r, enum ivshmem_peer_event_type type, int peer)
{
	struct ivshmem_peer_event ev;
	int ret = next_event(r, &ev, 3000);

	if (ret != 1) {
		tap_diag("no event (%d: %s)", ret, ret < 0 ? ivshmem_errmsg() : "timeout");
		return false;
	}
	if (ev.type != type || (peer >= 0 && ev.peer != peer)) {
		tap_diag("got %s %u", ev.type == IVSHMEM_PEER_JOIN ? "join" : "leave", ev.peer);
		return false;
	}
	return type == IVSHMEM_PEER_LEAVE || ev.vectors == VECTORS;
}

static void test_notify_matrix(struct ivshmem_region **p, int n)
{
	bool ok = true;
	int rings = 0;

	for (int from = 0; from < n; from++) {
		for (int to = 0; to < n; to++) {
			if (from == to)
				continue;
			for (int v = 0; v < VECTORS; v++) {
				uint64_t count = 0;

				ok &= ivshmem_notify(p[from], (uint16_t)ivshmem_own_id(p[to]),
						     (uint16_t)v) == 0;
				ok &= ivshmem_wait(p[to], v, 2000, &count) == 1 && count == 1;
				/* No other vector of the target fired. */
				ok &= ivshmem_wait(p[to], -1, 0, NULL) == 0;
				rings++;
			}
		}
	}
	tap_ok(ok, "%d notifications each arrive exactly once on the right peer and vector", rings);
}

int main(int argc, char **argv)
{
	const char *extra[] = { "--memfd", "-l", "64K", "-n", "4", "--max-queue", "64", NULL };
	struct ivshmem_region *p[3];
	struct test_server s;
	uint16_t ids[8];
	int ret;

	if (argc < 2) {
		fprintf(stderr, "usage: %s IVSHMEM_SERVER_BINARY\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	th_make_dir(&s, "peers");
	if (!tap_ok(th_start(&s, argv[1], 0, extra) == 0, "server starts"))
		return tap_done();

	for (int i = 0; i < 3; i++) {
		p[i] = open_peer(s.sock);
		if (!p[i]) {
			tap_ok(0, "peer %d opens", i);
			th_stop(&s);
			return tap_done();
		}
	}
	tap_ok(ivshmem_own_id(p[0]) == 0 && ivshmem_own_id(p[1]) == 1 && ivshmem_own_id(p[2]) == 2,
	       "three peers get IDs 0, 1, 2");
	tap_ok(ivshmem_vectors(p[0]) == VECTORS && ivshmem_vectors(p[2]) == VECTORS,
	       "each has 4 own vectors (alone and with others present)");
	tap_is(ivshmem_size(p[1]), 65536, "region size from the server");
	tap_ok(ivshmem_backend_of(p[0]) == IVSHMEM_BACKEND_SERVER, "server backend");
	tap_ok(expect_event(p[0], IVSHMEM_PEER_JOIN, 1) && expect_event(p[0], IVSHMEM_PEER_JOIN, 2),
	       "peer 0 sees 1 and 2 join with 4 vectors");
	tap_ok(expect_event(p[1], IVSHMEM_PEER_JOIN, 2), "peer 1 sees 2 join");
	{
		struct ivshmem_peer_event ev;

		tap_is(ivshmem_next_peer_event(p[2], &ev), 0,
		       "peer 2 gets no events for the peers present when it joined");
	}
	ret = ivshmem_peer_list(p[2], ids, 8);
	tap_ok(ret == 2 && ids[0] == 0 && ids[1] == 1, "peer 2 lists peers 0 and 1");
	tap_is(ivshmem_peer_vectors(p[2], 0), VECTORS, "peer 0 has 4 vectors");
	tap_ok(ivshmem_write(p[0], 100, "shared", 6) == 0, "peer 0 writes the memory");
	{
		char buf[8] = "";

		tap_ok(ivshmem_read(p[2], 100, buf, 6) == 0 && memcmp(buf, "shared", 6) == 0,
		       "peer 2 reads it: same memory");
	}
	test_notify_matrix(p, 3);
	tap_is(ivshmem_notify(p[0], 9, 0), -ENOENT, "notify an unknown peer: ENOENT");
	tap_is(ivshmem_notify(p[0], 1, VECTORS), -EINVAL, "notify vector 4 of 4: EINVAL");
	tap_ok(ivshmem_notify(p[0], 0, 3) == 0 && ivshmem_wait(p[0], 3, 1000, NULL) == 1,
	       "a peer can ring itself");

	/* A client that sends anything is dropped, and everyone is told. */
	{
		int g = th_connect(s.sock);

		tap_ok(expect_event(p[0], IVSHMEM_PEER_JOIN, 3), "garbage client joins as 3");
		tap_ok(write(g, "GARBAGE!", 8) == 8, "it sends 8 bytes");
		tap_ok(expect_event(p[0], IVSHMEM_PEER_LEAVE, 3) &&
		       expect_event(p[1], IVSHMEM_PEER_JOIN, 3) &&
		       expect_event(p[1], IVSHMEM_PEER_LEAVE, 3),
		       "peers 0 and 1 get its leave notice");
		th_sleep_ms(50);
		tap_ok(th_log_has(&s, "sent data"), "server logs why it dropped it");
		close(g);
		expect_event(p[2], IVSHMEM_PEER_JOIN, 3);
		expect_event(p[2], IVSHMEM_PEER_LEAVE, 3);
	}

	/* A peer killed with SIGKILL: the kernel closes its socket, the server tells the rest. */
	{
		int pipefd[2];
		pid_t child;
		int child_id = -1;

		if (pipe(pipefd) < 0)
			return 99;
		child = fork();
		if (child == 0) {
			struct ivshmem_region *c = open_peer(s.sock);
			int id = c ? ivshmem_own_id(c) : -1;

			if (write(pipefd[1], &id, sizeof(id)) != sizeof(id))
				_exit(1);
			pause();
			_exit(0);
		}
		if (read(pipefd[0], &child_id, sizeof(child_id)) != sizeof(child_id))
			child_id = -1;
		tap_ok(child_id == 4, "child peer joins as 4 (IDs not reused: 3 was used)");
		tap_ok(expect_event(p[1], IVSHMEM_PEER_JOIN, child_id), "peer 1 sees it join");
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		tap_ok(expect_event(p[1], IVSHMEM_PEER_LEAVE, child_id),
		       "after SIGKILL peer 1 gets its leave notice");
		tap_ok(expect_event(p[0], IVSHMEM_PEER_JOIN, child_id) &&
		       expect_event(p[0], IVSHMEM_PEER_LEAVE, child_id) &&
		       expect_event(p[2], IVSHMEM_PEER_JOIN, child_id) &&
		       expect_event(p[2], IVSHMEM_PEER_LEAVE, child_id), "so do peers 0 and 2");
		close(pipefd[0]);
		close(pipefd[1]);
	}

	/*
	 * A client that never reads: its socket buffer fills, and then it holds
	 * up the next join (whose own vectors wait until every peer was sent the
	 * notice) for at most the server's 2 s stall bound, and is dropped.
	 */
	{
		int stuck = th_connect(s.sock);
		int64_t worst = 0, t0 = th_now_ms();
		int churn = 0, stuck_id = 5, slow = 0;
		bool events_ok = true;

		tap_ok(expect_event(p[0], IVSHMEM_PEER_JOIN, stuck_id), "a never-reading client joins");
		for (churn = 0; churn < 400 && !th_log_has(&s, "not reading"); churn++) {
			int64_t a = th_now_ms();
			struct ivshmem_region *x = open_peer(s.sock);
			int64_t took = th_now_ms() - a;

			if (!x) {
				events_ok = false;
				break;
			}
			if (took > worst)
				worst = took;
			slow += took > 1000;
			events_ok &= expect_event(p[0], IVSHMEM_PEER_JOIN, ivshmem_own_id(x));
			ivshmem_close(x);
			events_ok &= expect_event(p[0], IVSHMEM_PEER_LEAVE, -1);
		}
		tap_diag("%d joins+leaves in %lld ms, slowest open %lld ms", churn,
			 (long long)(th_now_ms() - t0), (long long)worst);
		tap_ok(events_ok, "others keep joining, leaving and being told while it is stuck");
		tap_ok(slow <= 1 && worst < 3500,
		       "one open at most was held up by the stuck client, within the 2 s stall "
		       "bound (%d slow, slowest %lld ms)", slow, (long long)worst);
		tap_ok(th_log_has(&s, "not reading"), "server drops it: 'not reading' logged");
		/* Skip the churn's events, then the stuck client's own leave shows up. */
		bool saw_leave = false;
		struct ivshmem_peer_event ev;

		while (next_event(p[1], &ev, 1000) == 1)
			saw_leave |= ev.type == IVSHMEM_PEER_LEAVE && ev.peer == stuck_id;
		tap_ok(saw_leave, "peers get the stuck client's leave notice");
		/* What it had been sent is still readable, then EOF: its connection is closed. */
		{
			uint8_t b[8];
			int fd, got;
			size_t ctrl;
			long msgs = 0;

			while ((got = th_raw_recv(stuck, b, &fd, &ctrl, 2000)) == 1) {
				msgs++;
				if (fd >= 0)
					close(fd);
			}
			tap_ok(got == 0, "its connection was closed after %ld messages", msgs);
		}
		close(stuck);
		while (next_event(p[0], &ev, 100) == 1)
			;
		while (next_event(p[2], &ev, 100) == 1)
			;
	}
	test_notify_matrix(p, 3);

	/* SIGTERM: every peer hears that all the others left, then the connection ends. */
	tap_is(th_stop(&s), 0, "SIGTERM: exit status 0");
	{
		bool ok = true;
		struct ivshmem_peer_event ev;

		for (int i = 0; i < 3; i++) {
			int leaves = 0;

			while ((ret = next_event(p[i], &ev, 2000)) == 1)
				leaves += ev.type == IVSHMEM_PEER_LEAVE;
			ok &= leaves == 2 && ret == -ECONNRESET;
			if (leaves != 2 || ret != -ECONNRESET)
				tap_diag("peer %d: %d leaves, then %d (%s)", i, leaves, ret,
					 ivshmem_errmsg());
		}
		tap_ok(ok, "each peer got 2 leave notices, then ECONNRESET");
		tap_ok(strstr(ivshmem_errmsg(), "closed") != NULL, "error says the server closed (%s)",
		       ivshmem_errmsg());
	}
	tap_ok(!th_socket_ready(s.sock), "socket removed");
	tap_is(ivshmem_peer_list(p[0], ids, 8), 0, "after the notices peer 0 knows no peers");
	for (int i = 0; i < 3; i++)
		ivshmem_close(p[i]);

	/* A server that crashes sends no notices: peers keep each other's eventfds. */
	tap_ok(th_start(&s, argv[1], 0, extra) == 0, "server restarts");
	p[0] = open_peer(s.sock);
	p[1] = open_peer(s.sock);
	if (p[0] && p[1]) {
		struct ivshmem_peer_event ev;

		expect_event(p[0], IVSHMEM_PEER_JOIN, 1);
		kill(s.pid, SIGKILL);
		waitpid(s.pid, NULL, 0);
		s.pid = 0;
		tap_is(next_event(p[0], &ev, 2000), -ECONNRESET, "server killed: ECONNRESET");
		tap_ok(ivshmem_notify(p[0], 1, 2) == 0 && ivshmem_wait(p[1], 2, 1000, NULL) == 1,
		       "peers still ring each other after the server died");
		tap_is(ivshmem_next_peer_event(p[0], &ev), -ECONNRESET, "ECONNRESET stays");
	} else {
		tap_ok(0, "two peers open on the restarted server");
	}
	ivshmem_close(p[0]);
	ivshmem_close(p[1]);
	th_cleanup_dir(&s);
	return tap_done();
}
