// SPDX-License-Identifier: MIT
/*
 * The host peer library and tools against a malicious server and hostile
 * peers (issue 10, items 7, 8 and 11). A fake server (forked) sends fds this
 * test made, so the test itself plays the hostile peer that shares their open
 * file descriptions: it clears O_NONBLOCK and saturates counters. Every
 * operation that could hang runs in a child under a hard bound, so a
 * regression is a "not ok", never a stuck test.
 *
 * argv[1], argv[2]: the ivshmem and ivshmem-client binaries (optional).
 */
#include "server_helper.h"
#include "tap.h"

#include "ivshmem/channel.h"
#include "ivshmem/layout.h"
#include "ivshmem/protocol.h"
#include "ivshmem/region.h"

#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>

#define BOUND_MS 8000	/* a child still running after this is a hang */

struct msg {
	int64_t value;
	int fd;		/* sent with the message; -1: none */
};

static char sock_path[96];

/* Serve each connection on sock_path with @script, then wait for the client to go. */
static pid_t fake_server(const struct msg *script, int n)
{
	int ls = th_listen(sock_path);
	pid_t pid = fork();

	if (pid != 0) {
		close(ls);
		return pid;
	}
	for (;;) {
		int c = accept(ls, NULL, NULL);
		char b;

		if (c < 0)
			_exit(0);
		for (int i = 0; i < n; i++)
			if (ivshmem_msg_send(c, script[i].value, script[i].fd, 0) != 8)
				break;
		while (read(c, &b, 1) > 0)
			;
		close(c);
	}
}

static void stop(pid_t pid)
{
	int st;

	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
}

/*
 * Wait for child @pid at most BOUND_MS. Returns its exit status, 128 + signal
 * if a signal killed it, or -1 if it hung (then it is killed).
 */
static int bounded_wait(pid_t pid, int64_t *ms)
{
	int64_t t0 = th_now_ms();
	int st;

	while (th_now_ms() - t0 < BOUND_MS) {
		if (waitpid(pid, &st, WNOHANG) == pid) {
			if (ms)
				*ms = th_now_ms() - t0;
			return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
		}
		th_sleep_ms(5);
	}
	stop(pid);
	return -1;
}

static int open_fake(struct ivshmem_region **r)
{
	char target[128];

	snprintf(target, sizeof(target), "server:%s", sock_path);
	return ivshmem_open(r, target, NULL);
}

/* A 1 MiB memfd with a layout and channel "c", as a shared memory fd. */
static int formatted_shm(void)
{
	struct ivshmem_channel_opts co = { .flags = IVSHMEM_CHANNEL_CREATE, .heartbeat_ms = -1 };
	struct ivshmem_channel *ch;
	struct ivshmem_region *r;
	char target[64];
	int fd = memfd_create("hostile", MFD_CLOEXEC);

	if (fd < 0 || ftruncate(fd, 1 << 20) < 0)
		return -1;
	snprintf(target, sizeof(target), "file:/proc/self/fd/%d", fd);
	if (ivshmem_open(&r, target, NULL) < 0 || ivshmem_layout_format(r, "hostile") < 0 ||
	    ivshmem_channel_open(&ch, r, "c", &co) < 0)
		return -1;
	ivshmem_channel_close(ch, 0);
	ivshmem_close(r);
	return fd;
}

/* An eventfd saturated by us, the hostile peer, with O_NONBLOCK cleared for everyone. */
static int saturated_blocking_eventfd(void)
{
	uint64_t v = 0xfffffffffffffffeull;
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	if (write(fd, &v, sizeof(v)) != sizeof(v))
		return -1;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

/* Run the CLI @argv (NULL-terminated); its exit status, 128 + signal, or -1 on a hang. */
static int run_cli(char *const argv[], int64_t *ms)
{
	pid_t pid = fork();

	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		dup2(null, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	return bounded_wait(pid, ms);
}

/* Item 7: the peer's eventfd is full and blocking: notify must not wait for it. */
static void test_notify_saturated(const char *cli, const char *client)
{
	int shm = memfd_create("s", MFD_CLOEXEC), evil = saturated_blocking_eventfd();
	int own = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct msg script[] = { { 0, -1 }, { 7, -1 }, { -1, shm }, { 3, evil }, { 7, own } };
	struct ivshmem_region *r;
	int64_t ms = 0;
	pid_t srv, pid;
	int ret;

	if (ftruncate(shm, 65536) < 0 || evil < 0)
		tap_diag("setup failed");
	srv = fake_server(script, 5);
	pid = fork();
	if (pid == 0) {
		if (open_fake(&r) < 0)
			_exit(2);
		_exit(ivshmem_notify(r, 3, 0) == 0 ? 0 : 3);
	}
	ret = bounded_wait(pid, &ms);
	tap_ok(ret == 0, "notify of a saturated eventfd whose O_NONBLOCK a peer cleared returns "
	       "(status %d, %lld ms)", ret, (long long)ms);
	if (cli) {
		char *argv[] = { (char *)cli, "notify", NULL, "3", "0", NULL };
		char target[128];

		snprintf(target, sizeof(target), "server:%s", sock_path);
		argv[2] = target;
		ret = run_cli(argv, &ms);
		tap_ok(ret == 0, "... and so does 'ivshmem notify' (status %d, %lld ms)", ret,
		       (long long)ms);
	}
	if (client) {
		char *argv[] = { (char *)client, "-S", sock_path, "--notify", "3:0", NULL };

		ret = run_cli(argv, &ms);
		tap_ok(ret == 0, "... and 'ivshmem-client --notify' (status %d, %lld ms)", ret,
		       (long long)ms);
	}
	stop(srv);
	close(shm);
	close(evil);
	close(own);
}

/* Item 7: our own eventfd made blocking by a peer: a channel recv must still time out. */
static void test_recv_blocking_evfd(void)
{
	int shm = formatted_shm(), own = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct msg script[] = { { 0, -1 }, { 7, -1 }, { -1, shm }, { 7, own } };
	int64_t ms = 0;
	pid_t srv, pid;
	int ret;

	fcntl(own, F_SETFL, fcntl(own, F_GETFL) & ~O_NONBLOCK);
	srv = fake_server(script, 4);
	pid = fork();
	if (pid == 0) {
		struct ivshmem_channel_opts co = { .heartbeat_ms = -1 };
		struct ivshmem_channel *ch;
		struct ivshmem_region *r;
		char buf[64];

		if (open_fake(&r) < 0 || ivshmem_channel_open(&ch, r, "c", &co) < 0)
			_exit(2);
		_exit(ivshmem_channel_recv(ch, buf, sizeof(buf), 300) == -ETIMEDOUT ? 0 : 3);
	}
	ret = bounded_wait(pid, &ms);
	tap_ok(ret == 0, "channel recv with a 300 ms timeout returns though a peer cleared "
	       "O_NONBLOCK on our eventfd (status %d, %lld ms)", ret, (long long)ms);
	stop(srv);
	close(shm);
	close(own);
}

/* Item 8: what the server passes as an eventfd must be one. */
static void test_wrong_fd_types(const char *cli, const char *client)
{
	int pipefd[2], shm = memfd_create("s", MFD_CLOEXEC), memfd = memfd_create("m", MFD_CLOEXEC);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC), good = eventfd(0, EFD_CLOEXEC);
	struct {
		const char *name;
		int own, peer;
	} cases[4];
	int ncases = 0;

	if (pipe2(pipefd, O_CLOEXEC) < 0 || ftruncate(shm, 65536) < 0)
		tap_diag("setup failed");
	close(pipefd[0]);	/* a write would raise SIGPIPE */
	cases[ncases++] = (typeof(cases[0])){ "a pipe as a peer's eventfd", good, pipefd[1] };
	cases[ncases++] = (typeof(cases[0])){ "/dev/null as our eventfd", null, good };
	cases[ncases++] = (typeof(cases[0])){ "a memfd as our eventfd", memfd, good };
	for (int i = 0; i < ncases; i++) {
		struct msg script[] = { { 0, -1 }, { 7, -1 }, { -1, shm }, { 3, cases[i].peer },
					{ 7, cases[i].own } };
		pid_t srv = fake_server(script, 5), pid = fork();
		int64_t ms = 0;
		int ret;

		if (pid == 0) {
			struct ivshmem_region *r;
			uint64_t count;

			if (open_fake(&r) < 0)
				_exit(strstr(ivshmem_errmsg(), "not an eventfd") ? 10 : 2);
			/* Accepted anyway: neither call may kill, hang or spin. */
			ivshmem_notify(r, 3, 0);
			ret = ivshmem_wait(r, 0, 300, &count);
			_exit(ret == 1 ? 3 : 4);
		}
		ret = bounded_wait(pid, &ms);
		tap_ok(ret == 10 && ms < 3000, "%s is refused at open (status %d, %lld ms)",
		       cases[i].name, ret, (long long)ms);
		if (cli && cases[i].own != good) {
			char target[128];
			char *argv[] = { (char *)cli, "wait", target, "--timeout", "1000", NULL };

			snprintf(target, sizeof(target), "server:%s", sock_path);
			ret = run_cli(argv, &ms);
			tap_ok(ret > 0 && ret < 128 && ms < 3000, "... 'ivshmem wait --timeout 1000' "
			       "fails at once (status %d, %lld ms)", ret, (long long)ms);
		}
		if (client && cases[i].own != good) {
			char *argv[] = { (char *)client, "-S", sock_path, "--wait", "1", "--timeout",
					 "1000", NULL };

			ret = run_cli(argv, &ms);
			tap_ok(ret > 0 && ret < 128 && ms < 3000, "... 'ivshmem-client --wait 1' "
			       "fails at once (status %d, %lld ms)", ret, (long long)ms);
		}
		if (cli && cases[i].peer != good) {
			char target[128];
			char *argv[] = { (char *)cli, "notify", target, "3", "0", NULL };

			snprintf(target, sizeof(target), "server:%s", sock_path);
			ret = run_cli(argv, &ms);
			tap_ok(ret > 0 && ret < 128, "... 'ivshmem notify' fails without a signal "
			       "(status %d)", ret);
		}
		stop(srv);
	}
	close(pipefd[1]);
	close(shm);
	close(memfd);
	close(null);
	close(good);
}

/* Item 11: a peer with more vectors than we got is not "none of our own eventfds". */
static void test_more_peer_vectors(void)
{
	int shm = memfd_create("s", MFD_CLOEXEC), e[3];
	struct ivshmem_region *r = NULL;
	pid_t srv;
	int ret;

	for (int i = 0; i < 3; i++)
		e[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ftruncate(shm, 65536) < 0)
		tap_diag("setup failed");
	struct msg script[] = { { 0, -1 }, { 7, -1 }, { -1, shm }, { 3, e[0] }, { 3, e[1] },
				{ 7, e[2] } };

	srv = fake_server(script, 6);
	ret = open_fake(&r);
	tap_ok(ret == 0 && ivshmem_vectors(r) == 1 && ivshmem_peer_vectors(r, 3) == 2,
	       "a peer announced with 2 vectors while we got 1: the open succeeds with 1 (%s)",
	       ret < 0 ? ivshmem_errmsg() : "ok");
	tap_ok(ret == 0 || !strstr(ivshmem_errmsg(), "none of our own"),
	       "... and never says the server sent none of our eventfds");
	ivshmem_close(r);
	stop(srv);
	close(shm);
	for (int i = 0; i < 3; i++)
		close(e[i]);
}

/* Item 11: out of fds is said as such, not as a protocol violation. */
static void test_out_of_fds(void)
{
	int shm = memfd_create("s", MFD_CLOEXEC), e = eventfd(0, EFD_CLOEXEC);
	struct msg script[] = { { 0, -1 }, { 7, -1 }, { -1, shm }, { 3, e }, { 7, e } };
	pid_t srv, pid;
	int ret;

	if (ftruncate(shm, 65536) < 0)
		tap_diag("setup failed");
	srv = fake_server(script, 5);
	pid = fork();
	if (pid == 0) {
		struct rlimit rl = { 64, 64 };
		struct ivshmem_region *r;
		int fds[64], n = 0;

		/* Fill every fd below 64, then free two: the socket and the shm fd fit, no more. */
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			_exit(5);
		while (n < 64 && (fds[n] = open("/dev/null", O_RDONLY)) >= 0)
			n++;
		if (n < 2)
			_exit(6);
		close(fds[--n]);
		close(fds[--n]);
		if (open_fake(&r) == 0)
			_exit(3);
		if (strstr(ivshmem_errmsg(), "out of file descriptors"))
			_exit(0);
		fprintf(stderr, "# got: %s\n", ivshmem_errmsg());
		_exit(strstr(ivshmem_errmsg(), "truncated control data") ? 4 : 7);
	}
	ret = bounded_wait(pid, NULL);
	tap_ok(ret == 0, "a client out of fds is told so, not 'truncated control data' (status %d)",
	       ret);
	stop(srv);
	close(shm);
	close(e);
}

int main(int argc, char **argv)
{
	const char *cli = argc > 1 ? argv[1] : NULL, *client = argc > 2 ? argv[2] : NULL;
	char dir[] = "/tmp/ivshmem-hostile-XXXXXX";

	signal(SIGPIPE, SIG_DFL);	/* as the CLI has it: a write to a dead pipe kills */
	if (!mkdtemp(dir))
		return 99;
	snprintf(sock_path, sizeof(sock_path), "%s/sock", dir);
	setenv("IVSHMEM_SERVER_TIMEOUT_MS", "1000", 1);

	test_notify_saturated(cli, client);
	test_recv_blocking_evfd();
	test_wrong_fd_types(cli, client);
	test_more_peer_vectors();
	test_out_of_fds();

	unlink(sock_path);
	rmdir(dir);
	return tap_done();
}
