// SPDX-License-Identifier: MIT
/*
 * ivshmem-server against hostile or broken clients (issue 10, items 1-4):
 * - a client that never reads must not make departed peers' eventfds pile up
 *   in the server (fd count bounded, good clients still join);
 * - one MSG_OOB byte drops the client instead of spinning the loop;
 * - --max-peers does not count peers that already hung up;
 * - out of in-flight fds (ETOOMANYREFS, server unprivileged): non-readers are
 *   dropped, a newcomer is never left hanging, the server does not spin, and
 *   it serves again once the fds are released.
 * Raw sockets, no library. argv[1]: the server binary.
 */
#include "server_helper.h"
#include "tap.h"

#include <grp.h>
#include <pthread.h>
#include <sys/epoll.h>

/* Read messages until our own eventfd (value @id with an fd) arrives; closes fds. */
static bool read_until_own(int sock, int id, int timeout_ms)
{
	int64_t end = th_now_ms() + timeout_ms;

	for (;;) {
		uint8_t b[8];
		int fd, left = (int)(end - th_now_ms());

		if (left <= 0 || th_raw_recv(sock, b, &fd, NULL, left) != 1)
			return false;
		if (fd >= 0)
			close(fd);
		if (th_le64(b) == id && fd >= 0)
			return true;
	}
}

/* Version, ID, shm fd: returns the ID, -1 on error, -2 on EOF (refused). */
static int greeting(int sock, int timeout_ms)
{
	uint8_t b[8];
	int fd, id, got;

	got = th_raw_recv(sock, b, &fd, NULL, timeout_ms);
	if (got == 0)
		return -2;
	if (got != 1 || th_le64(b) != 0)
		return -1;
	if (th_raw_recv(sock, b, &fd, NULL, timeout_ms) != 1)
		return -1;
	id = (int)th_le64(b);
	if (th_raw_recv(sock, b, &fd, NULL, timeout_ms) != 1 || th_le64(b) != -1 || fd < 0)
		return -1;
	close(fd);
	return id;
}

/* A whole join: greeting and own vector. Returns the ID or < 0. */
static int join(const char *path, int *sock_out)
{
	int s = th_connect(path), id;

	if (s < 0)
		return -1;
	id = greeting(s, 5000);
	if (id < 0 || !read_until_own(s, id, 5000)) {
		close(s);
		return id < 0 ? id : -1;
	}
	*sock_out = s;
	return id;
}

/* Reads until EOF (discarding): true if the server closed within @timeout_ms. */
static bool closed_by_server(int sock, int timeout_ms)
{
	int64_t end = th_now_ms() + timeout_ms;

	for (;;) {
		uint8_t b[8];
		int fd, left = (int)(end - th_now_ms()), got;

		if (left <= 0)
			return false;
		got = th_raw_recv(sock, b, &fd, NULL, left);
		if (fd >= 0)
			close(fd);
		if (got == 0)
			return true;
		if (got < 0 && left <= 0)
			return false;
		if (got < 0) {
			struct pollfd p = { sock, POLLIN, 0 };

			if (poll(&p, 1, 0) == 1 && recv(sock, b, 1, MSG_DONTWAIT) == 0)
				return true;
		}
	}
}

static void fd_pinning(const char *server)
{
	const char *extra[] = { "--memfd", "-l", "64K", "-n", "1", "--max-peers", "8", NULL };
	struct test_server s;
	int stuck, worst_fds = 0, failures = 0, good = -1, id;

	th_make_dir(&s, "pin");
	if (!tap_ok(th_start(&s, server, 128, extra) == 0, "pinning: server starts, RLIMIT_NOFILE 128"))
		return;
	stuck = th_connect(s.sock);
	tap_ok(stuck >= 0, "pinning: a client connects and never reads");
	for (int i = 0; i < 400; i++) {
		int c = -1, fds;

		if (join(s.sock, &c) < 0)
			failures++;
		if (c >= 0)
			close(c);
		fds = th_count_fds(s.pid);
		if (fds > worst_fds)
			worst_fds = fds;
	}
	tap_diag("400 connect/close cycles: %d failed, server at most %d fds", failures, worst_fds);
	tap_ok(failures == 0, "pinning: all 400 joins succeed (%d failed)", failures);
	tap_ok(worst_fds <= 40, "pinning: the server's fds stay bounded (at most %d, limit 40)",
	       worst_fds);
	id = join(s.sock, &good);
	tap_ok(id >= 0, "pinning: a good client still joins afterwards");
	if (good >= 0)
		close(good);
	close(stuck);
	tap_is(th_stop(&s), 0, "pinning: SIGTERM, exit 0");
	th_cleanup_dir(&s);
}

static void oob_byte(const char *server)
{
	const char *extra[] = { "--memfd", "-l", "64K", NULL };
	struct test_server s;
	int c, id;
	long cpu0, cpu1;

	th_make_dir(&s, "oob");
	if (!tap_ok(th_start(&s, server, 0, extra) == 0, "oob: server starts"))
		return;
	c = th_connect(s.sock);
	id = greeting(c, 5000);
	tap_ok(id == 0 && read_until_own(c, id, 5000), "oob: a client joins");
	cpu0 = th_cpu_ms(s.pid);
	tap_ok(send(c, "!", 1, MSG_OOB) == 1, "oob: it sends one MSG_OOB byte");
	tap_ok(closed_by_server(c, 3000), "oob: the server drops it");
	th_sleep_ms(1000);
	cpu1 = th_cpu_ms(s.pid);
	tap_ok(cpu1 - cpu0 < 300, "oob: the server stays idle (%ld ms CPU in ~1 s)", cpu1 - cpu0);
	tap_ok(th_log_has(&s, "sent data") || th_log_has(&s, "nothing to read"),
	       "oob: the log says why");
	close(c);
	tap_is(th_stop(&s), 0, "oob: SIGTERM, exit 0");
	th_cleanup_dir(&s);
}

static void max_peers_hung_up(const char *server)
{
	const char *extra[] = { "--memfd", "-l", "64K", "--max-peers", "8", NULL };
	struct test_server s;
	int accepted = 0, rounds = 10, storm_ok = 0, storm = 600;
	pid_t closers[2];

	th_make_dir(&s, "maxp");
	if (!tap_ok(th_start(&s, server, 0, extra) == 0, "max-peers: server starts with --max-peers 8"))
		return;
	/* Deterministic: 8 peers hang up while the server is stopped, then a 9th connects. */
	for (int r = 0; r < rounds; r++) {
		int socks[8], ninth, id;

		for (int i = 0; i < 8; i++) {
			if (join(s.sock, &socks[i]) < 0)
				socks[i] = -1;
		}
		kill(s.pid, SIGSTOP);
		for (int i = 0; i < 8; i++)
			if (socks[i] >= 0)
				close(socks[i]);
		ninth = th_connect(s.sock);
		kill(s.pid, SIGCONT);
		id = ninth >= 0 ? greeting(ninth, 3000) : -1;
		accepted += id >= 0;
		if (ninth >= 0)
			close(ninth);
	}
	tap_ok(accepted == rounds, "max-peers: 8 peers hang up, a 9th joins at once (%d of %d)",
	       accepted, rounds);
	/* A storm: two processes connect and close at once while we probe. */
	for (int k = 0; k < 2; k++) {
		closers[k] = fork();
		if (closers[k] == 0) {
			int64_t end = th_now_ms() + 20000;

			while (th_now_ms() < end) {
				int c = th_connect(s.sock);

				if (c >= 0)
					close(c);
			}
			_exit(0);
		}
	}
	for (int i = 0; i < storm; i++) {
		int c = th_connect(s.sock);

		storm_ok += c >= 0 && greeting(c, 3000) >= 0;
		if (c >= 0)
			close(c);
	}
	for (int k = 0; k < 2; k++) {
		kill(closers[k], SIGKILL);
		waitpid(closers[k], NULL, 0);
	}
	tap_ok(storm_ok >= storm * 98 / 100,
	       "max-peers: in a connect/close storm %d of %d probes join (at least 98%%)",
	       storm_ok, storm);
	tap_is(th_stop(&s), 0, "max-peers: SIGTERM, exit 0");
	th_cleanup_dir(&s);
}

/* The server as user nobody (root's CAP_SYS_RESOURCE lifts the in-flight limit). */
static int start_unprivileged(struct test_server *s, const char *binary, int nofile,
			      const char *const *extra)
{
	const char *argv[32];
	int n = 0;

	argv[n++] = binary;
	argv[n++] = "-F";
	argv[n++] = "-S";
	argv[n++] = s->sock;
	for (int i = 0; extra[i] && n < 30; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	if (chown(s->dir, 65534, 65534) < 0)
		return -1;
	s->pid = fork();
	if (s->pid == 0) {
		int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		struct rlimit rl = { (rlim_t)nofile, (rlim_t)nofile };

		if (fd >= 0)
			dup2(fd, 2);
		setrlimit(RLIMIT_NOFILE, &rl);
		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(126);
		execv(binary, (char **)argv);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		if (th_socket_ready(s->sock))
			return 0;
		if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
			s->pid = 0;
			return -1;
		}
		th_sleep_ms(10);
	}
	return -1;
}

static void too_many_refs(const char *server)
{
	const char *extra[] = { "--memfd", "-l", "64K", "-n", "1", NULL };
	enum { READERS = 8, NOFILE = 64 };
	int lazy[READERS], joined = 0, c, id, newcomer;
	struct test_server s;
	bool all_dropped = true;
	int64_t t0, took;
	long cpu0, cpu1;

	if (getuid() != 0) {
		tap_ok(1, "# SKIP in-flight limit: needs root to run the server as nobody");
		return;
	}
	th_make_dir(&s, "refs");
	if (!tap_ok(start_unprivileged(&s, server, NOFILE, extra) == 0,
		    "in-flight: server starts as nobody, RLIMIT_NOFILE %d", NOFILE))
		return;
	for (int i = 0; i < READERS; i++)
		lazy[i] = th_connect(s.sock);
	/* Every join hands each lazy client one more fd it does not read. */
	for (int i = 0; i < 10 && !th_log_has(&s, "too many fds in flight"); i++) {
		c = -1;
		if (join(s.sock, &c) >= 0)
			joined++;
		if (c >= 0)
			close(c);
	}
	tap_diag("%d churn joins completed before the limit", joined);
	tap_ok(th_log_has(&s, "too many fds in flight"), "in-flight: the server hit ETOOMANYREFS");
	/* A newcomer now: it gets its fds, or is told (EOF) within the stall bound. */
	newcomer = th_connect(s.sock);
	t0 = th_now_ms();
	id = greeting(newcomer, 6000);
	if (id >= 0 && read_until_own(newcomer, id, 6000)) {
		took = th_now_ms() - t0;
		tap_ok(1, "in-flight: a newcomer joins (%lld ms)", (long long)took);
	} else {
		took = th_now_ms() - t0;
		tap_ok(took < 5000, "in-flight: a newcomer that cannot get its fds is dropped, not "
		       "left hanging (%lld ms)", (long long)took);
	}
	close(newcomer);
	for (int i = 0; i < READERS; i++)
		all_dropped &= closed_by_server(lazy[i], 4000);
	tap_ok(all_dropped, "in-flight: every client sitting on unread fds was dropped");
	tap_ok(th_log_has(&s, "not reading"), "in-flight: the log says why");
	cpu0 = th_cpu_ms(s.pid);
	th_sleep_ms(1000);
	cpu1 = th_cpu_ms(s.pid);
	tap_ok(cpu1 - cpu0 < 100, "in-flight: no retry loop afterwards (%ld ms CPU in 1 s)",
	       cpu1 - cpu0);
	/* Their fds are released once they close: the server serves again. */
	for (int i = 0; i < READERS; i++)
		close(lazy[i]);
	c = -1;
	t0 = th_now_ms();
	id = join(s.sock, &c);
	tap_ok(id >= 0, "in-flight: once the non-readers are gone a client joins (%lld ms)",
	       (long long)(th_now_ms() - t0));
	if (c >= 0)
		close(c);
	tap_is(th_stop(&s), 0, "in-flight: SIGTERM, exit 0");
	th_cleanup_dir(&s);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s IVSHMEM_SERVER_BINARY\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	fd_pinning(argv[1]);
	oob_byte(argv[1]);
	max_peers_hung_up(argv[1]);
	too_many_refs(argv[1]);
	return tap_done();
}
