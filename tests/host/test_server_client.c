// SPDX-License-Identifier: MIT
/*
 * The host peer backend (lib/backend/server.c) against scripted fake servers:
 * QEMU's exact message order and other orders a server may use, and every
 * kind of bad greeting (wrong version, early close, silence, a bad shm fd, no
 * own eventfds), each with a clear error rather than a hang or a crash.
 */
#include "server_helper.h"
#include "tap.h"

#include "ivshmem/protocol.h"
#include "ivshmem/region.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

enum fd_kind { NONE, SHM, EVENT, BAD_SHM, PAUSE };	/* PAUSE: sleep 300 ms, send nothing */
enum { END_HANG = 1, END_CLOSE = 2 };

struct step {
	int64_t value;
	enum fd_kind fd;
};

/* Serve one connection on @path with @script, then hang (until the client goes) or close. */
static pid_t fake_server(const char *path, const struct step *script, int n, int end)
{
	int ls = th_listen(path);
	pid_t pid = fork();

	if (pid != 0) {
		close(ls);
		return pid;
	}
	int c = accept(ls, NULL, NULL);

	for (int i = 0; i < n; i++) {
		int fd = -1;

		if (script[i].fd == PAUSE) {
			th_sleep_ms(300);
			continue;
		}
		if (script[i].fd == SHM) {
			fd = memfd_create("fake", MFD_CLOEXEC);
			if (ftruncate(fd, 65536) < 0)
				_exit(98);
		} else if (script[i].fd == EVENT || script[i].fd == BAD_SHM) {
			fd = eventfd(0, EFD_CLOEXEC);
		}
		if (ivshmem_msg_send(c, script[i].value, fd, 0) != 8)
			_exit(97);
		if (fd >= 0)
			close(fd);
	}
	if (end == END_HANG) {
		char b;

		while (read(c, &b, 1) > 0)
			;
	}
	_exit(0);
}

static int open_fake(const char *path, struct ivshmem_region **r)
{
	char target[160];

	snprintf(target, sizeof(target), "server:%s", path);
	return ivshmem_open(r, target, NULL);
}

static void finish(pid_t pid)
{
	int st;

	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
}

/* Process peer events (bounded: 5 s) until @peer has @vectors vectors. */
static void settle_peer(struct ivshmem_region *r, uint16_t peer, int vectors)
{
	long long deadline = th_now_ms() + 5000;
	struct ivshmem_peer_event ev;

	while (ivshmem_peer_vectors(r, peer) < vectors && th_now_ms() < deadline) {
		struct pollfd pfd = { .fd = ivshmem_control_fd(r), .events = POLLIN };

		if (poll(&pfd, 1, 100) > 0)
			while (ivshmem_next_peer_event(r, &ev) > 0)
				;
	}
}

int main(void)
{
	char dir[] = "/tmp/ivshmem-fake-XXXXXX", path[64];
	struct ivshmem_region *r;
	uint16_t ids[8];
	int64_t t0;
	pid_t pid;
	int ret, fds_before;

	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(dir))
		return 99;
	snprintf(path, sizeof(path), "%s/sock", dir);
	setenv("IVSHMEM_SERVER_TIMEOUT_MS", "500", 1);
	fds_before = th_count_fds(getpid());

	/* QEMU's server: peers 3 and 5 present, N = 2, our ID 7. */
	{
		const struct step qemu[] = {
			{ 0, NONE }, { 7, NONE }, { -1, SHM },
			{ 3, EVENT }, { 3, EVENT }, { 5, EVENT }, { 5, EVENT },
			{ 7, EVENT }, { 7, EVENT },
		};

		pid = fake_server(path, qemu, 9, END_HANG);
		ret = open_fake(path, &r);
		tap_ok(ret == 0, "QEMU's order: opens (%s)", ret ? ivshmem_errmsg() : "ok");
		if (ret == 0) {
			tap_ok(ivshmem_own_id(r) == 7 && ivshmem_vectors(r) == 2 && ivshmem_size(r) == 65536,
			       "ID 7, 2 vectors, 64 KiB");
			ret = ivshmem_peer_list(r, ids, 8);
			tap_ok(ret == 2 && ids[0] == 3 && ids[1] == 5, "peers 3 and 5");
			tap_ok(ivshmem_notify(r, 5, 1) == 0, "can ring peer 5 vector 1");
			ivshmem_close(r);
		}
		finish(pid);
	}
	/* Own eventfds before the peers' (a different but valid order): found by the quiet wait. */
	{
		const struct step own_first[] = {
			{ 0, NONE }, { 1, NONE }, { -1, SHM },
			{ 1, EVENT }, { 1, EVENT }, { 1, EVENT }, { 0, EVENT }, { 0, EVENT }, { 0, EVENT },
		};

		pid = fake_server(path, own_first, 9, END_HANG);
		ret = open_fake(path, &r);
		/*
		 * On a loaded machine the quiet wait may end before peer 0's fds
		 * arrive; they then come as events, as they would for any client.
		 */
		if (ret == 0)
			settle_peer(r, 0, 3);
		tap_ok(ret == 0 && ivshmem_vectors(r) == 3 && ivshmem_peer_vectors(r, 0) == 3,
		       "own eventfds first, then a peer's: 3 vectors, peer 0 with 3");
		if (ret == 0)
			ivshmem_close(r);
		finish(pid);
	}
	/* Alone: only own eventfds. */
	{
		const struct step alone[] = {
			{ 0, NONE }, { 0, NONE }, { -1, SHM }, { 0, EVENT }, { 0, EVENT },
		};

		pid = fake_server(path, alone, 5, END_HANG);
		t0 = th_now_ms();
		ret = open_fake(path, &r);
		tap_ok(ret == 0 && ivshmem_vectors(r) == 2, "alone: 2 vectors after %lld ms",
		       (long long)(th_now_ms() - t0));
		if (ret == 0)
			ivshmem_close(r);
		finish(pid);
	}

	struct bad {
		const char *what;
		struct step s[6];
		int n, end, err;
		const char *needle;
	} bad[] = {
		{ "version 1", { { 1, NONE } }, 1, END_HANG, EPROTO, "version" },
		{ "ID 70000", { { 0, NONE }, { 70000, NONE } }, 2, END_HANG, EPROTO, "outside" },
		{ "fd on the version", { { 0, EVENT } }, 1, END_HANG, EPROTO, "carries an fd" },
		{ "eventfd before the shm", { { 0, NONE }, { 2, NONE }, { 2, EVENT } }, 3, END_HANG,
		  EPROTO, "shared memory fd" },
		{ "closed after the ID", { { 0, NONE }, { 2, NONE } }, 2, END_CLOSE, ECONNRESET,
		  "closed" },
		{ "silence", { { 0, NONE } }, 1, END_HANG, ETIMEDOUT, "no complete greeting" },
		{ "no own eventfds", { { 0, NONE }, { 2, NONE }, { -1, SHM } }, 3, END_HANG, ETIMEDOUT,
		  "none of our own eventfds" },
		{ "an eventfd as shm", { { 0, NONE }, { 2, NONE }, { -1, BAD_SHM }, { 2, EVENT } }, 4,
		  END_HANG, EPROTO, "not a non-empty file" },
		{ "a 'we left' notice", { { 0, NONE }, { 2, NONE }, { -1, SHM }, { 2, NONE } }, 4,
		  END_HANG, EPROTO, "left" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pid = fake_server(path, bad[i].s, bad[i].n, bad[i].end);
		t0 = th_now_ms();
		ret = open_fake(path, &r);
		tap_ok(ret == -bad[i].err && strstr(ivshmem_errmsg(), bad[i].needle) &&
		       th_now_ms() - t0 < 3000,
		       "%s: -%s, '%s' (%s)", bad[i].what, strerror(bad[i].err), bad[i].needle,
		       ivshmem_errmsg());
		if (ret == 0)
			ivshmem_close(r);
		finish(pid);
	}
	/* A violation after open: the stream is broken for good, with the reason. */
	{
		const struct step late[] = {
			{ 0, NONE }, { 0, NONE }, { -1, SHM }, { 1, EVENT }, { 0, EVENT },
			{ 0, PAUSE }, { -1, SHM },
		};
		struct ivshmem_peer_event ev;

		pid = fake_server(path, late, 5, END_HANG);
		ret = open_fake(path, &r);
		tap_ok(ret == 0, "opens before the violation");
		finish(pid);
		pid = 0;
		if (ret == 0) {
			/* The fake server closed after the greeting: a clean end of stream. */
			while ((ret = ivshmem_next_peer_event(r, &ev)) == 0)
				th_sleep_ms(10);
			tap_is(ret, -ECONNRESET, "server gone: ECONNRESET");
			tap_is(ivshmem_next_peer_event(r, &ev), -ECONNRESET, "and it stays");
			ivshmem_close(r);
		}
		pid = fake_server(path, late, 7, END_HANG);
		ret = open_fake(path, &r);
		if (ret == 0) {
			int64_t deadline = th_now_ms() + 2000;

			while ((ret = ivshmem_next_peer_event(r, &ev)) >= 0 && th_now_ms() < deadline)
				th_sleep_ms(10);
			tap_ok(ret == -EPROTO && strstr(ivshmem_errmsg(), "second shm"),
			       "a second shm fd later: EPROTO (%s)", ivshmem_errmsg());
			ivshmem_close(r);
		} else {
			tap_ok(0, "opens before the late violation (%s)", ivshmem_errmsg());
		}
		finish(pid);
	}
	tap_is(th_count_fds(getpid()), fds_before, "no fd leaked across all of it");
	unlink(path);
	rmdir(dir);
	return tap_done();
}
