// SPDX-License-Identifier: MIT
/*
 * ivshmem-server benchmark (not a test):
 *  1. join latency (connect until our own eventfds arrived, through the
 *     library) with 1, 100 and 1,000 peers already present; p50/p99;
 *  2. notify->wake round trip between two host peers, side by side with a
 *     bare eventfd ping-pong between two threads in the same run.
 * Usage: bench_server IVSHMEM_SERVER_BINARY [ROUNDS]
 */
#define _GNU_SOURCE
#include "ivshmem/region.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char sock_path[108];

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static double thread_cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double pct(double *v, int n, double p)
{
	int i = (int)(p * (n - 1) + 0.5);

	return v[i];
}

/* Existing peers are raw sockets; this thread reads (and closes) what they are sent. */
static int drain_ep;
static volatile int drain_stop;

static void *drain_thread(void *arg)
{
	(void)arg;
	while (!drain_stop) {
		struct epoll_event evs[64];
		int n = epoll_wait(drain_ep, evs, 64, 50);

		for (int i = 0; i < n; i++) {
			union { char s[CMSG_SPACE(sizeof(int))]; struct cmsghdr a; } ctl;
			uint8_t buf[512];
			struct iovec iov = { buf, sizeof(buf) };
			struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.s,
					    .msg_controllen = sizeof(ctl.s) };

			while (recvmsg(evs[i].data.fd, &m, MSG_DONTWAIT) > 0) {
				for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
					int fd;

					memcpy(&fd, CMSG_DATA(c), sizeof(int));
					close(fd);
				}
				m.msg_controllen = sizeof(ctl.s);
			}
		}
	}
	return NULL;
}

static pid_t server;

/* The server's CPU time so far (user + system), from /proc: stable under machine load. */
static double server_cpu_ms(void)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)server);
	f = fopen(path, "r");
	if (!f)
		return 0;
	p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
	fclose(f);
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

static int raw_connect(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	strcpy(a.sun_path, sock_path);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("connect");
		exit(1);
	}
	return fd;
}

static void join_latency(int *existing, int want, int rounds)
{
	static int peers = 0;
	double *lat = calloc((size_t)rounds, sizeof(double));
	char target[140];

	while (peers < want) {
		struct epoll_event ev = { .events = EPOLLIN };

		ev.data.fd = existing[peers++] = raw_connect();
		epoll_ctl(drain_ep, EPOLL_CTL_ADD, ev.data.fd, &ev);
	}
	snprintf(target, sizeof(target), "server:%s", sock_path);
	/*
	 * The server handles connections in order: once an extra peer has been
	 * greeted, every join before it has been processed too. Only then measure.
	 */
	{
		struct ivshmem_region *r;

		setenv("IVSHMEM_SERVER_TIMEOUT_MS", "60000", 1);
		if (ivshmem_open(&r, target, NULL) < 0) {
			fprintf(stderr, "open: %s\n", ivshmem_errmsg());
			exit(1);
		}
		ivshmem_close(r);
		usleep(100000);
	}
	double cpu0 = server_cpu_ms(), client_cpu = 0;

	for (int i = 0; i < rounds; i++) {
		struct ivshmem_region *r;
		double t0 = now_us(), c0 = thread_cpu_us();

		if (ivshmem_open(&r, target, NULL) < 0) {
			fprintf(stderr, "open: %s\n", ivshmem_errmsg());
			exit(1);
		}
		lat[i] = now_us() - t0;
		client_cpu += thread_cpu_us() - c0;
		ivshmem_close(r);
		/*
		 * Let this peer's leave notice reach everyone (and the drain thread read
		 * them) before the next join: measure joins, not a join racing a leave.
		 */
		usleep(2000 + 20 * (useconds_t)want);
	}
	qsort(lat, (size_t)rounds, sizeof(double), cmp_double);
	printf("join with %5d peers present: p50 %8.1f us  p99 %8.1f us  max %8.1f us  "
	       "(%d joins)\n", want, pct(lat, rounds, 0.5), pct(lat, rounds, 0.99),
	       lat[rounds - 1], rounds);
	printf("      CPU per join: server %.2f ms (join + leave), joining client %.2f ms\n",
	       (server_cpu_ms() - cpu0) / rounds, client_cpu / rounds / 1000);
	free(lat);
}

/* Ping-pong over a pair of "rings": either host peers or bare eventfds. */
struct pingpong {
	struct ivshmem_region *a, *b;	/* NULL: bare eventfds */
	int efd_ab, efd_ba;
	int iters;
};

static void wait_fd(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };
	uint64_t v;

	while (poll(&p, 1, -1) < 0 && errno == EINTR)
		;
	if (read(fd, &v, 8) != 8)
		abort();
}

static void ring_fd(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, 8) != 8)
		abort();
}

static void *ponger(void *arg)
{
	struct pingpong *pp = arg;

	for (int i = 0; i < pp->iters; i++) {
		if (pp->b) {
			wait_fd(ivshmem_event_fd(pp->b, 0));
			ivshmem_notify(pp->b, (uint16_t)ivshmem_own_id(pp->a), 0);
		} else {
			wait_fd(pp->efd_ab);
			ring_fd(pp->efd_ba);
		}
	}
	return NULL;
}

static double pingpong_rtt(struct pingpong *pp)
{
	pthread_t t;
	double t0;

	pthread_create(&t, NULL, ponger, pp);
	t0 = now_us();
	for (int i = 0; i < pp->iters; i++) {
		if (pp->a) {
			ivshmem_notify(pp->a, (uint16_t)ivshmem_own_id(pp->b), 0);
			wait_fd(ivshmem_event_fd(pp->a, 0));
		} else {
			ring_fd(pp->efd_ab);
			wait_fd(pp->efd_ba);
		}
	}
	pthread_join(t, NULL);
	return (now_us() - t0) / pp->iters;
}

static void usage(FILE *out, const char *prog)
{
	fprintf(out,
		"usage: %s IVSHMEM_SERVER_BINARY [ROUNDS >= 10]\n\n"
		"A benchmark of ivshmem-server, not a test. It starts the given server binary\n"
		"(--memfd, 1 MiB, on a socket in a temporary directory) and measures:\n"
		"  1. join latency: connect until the own eventfds arrived, through libivshmem,\n"
		"     with 1, 100 and 1,000 peers already present (p50/p99 over ROUNDS joins,\n"
		"     default 200);\n"
		"  2. notify->wake round trip between two host peers, beside a bare eventfd\n"
		"     ping-pong between two threads in the same run (ROUNDS x 100 iterations).\n"
		"Raises RLIMIT_NOFILE to 8192 for the 1,000 peers. See docs/benchmarks.md.\n", prog);
}

int main(int argc, char **argv)
{
	int rounds = argc > 2 ? atoi(argv[2]) : 200;
	static int existing[1100];
	struct rlimit rl;
	char dir[] = "/tmp/ivshmem-bench-XXXXXX";
	pthread_t drainer;

	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout, argv[0]);
		return 0;
	}
	if (argc < 2 || argc > 3 || argv[1][0] == '-' || rounds < 10) {
		usage(stderr, argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max < 8192 ? rl.rlim_max : 8192;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (!mkdtemp(dir))
		return 1;
	snprintf(sock_path, sizeof(sock_path), "%s/sock", dir);
	server = fork();
	if (server == 0) {
		execl(argv[1], argv[1], "-F", "-S", sock_path, "--memfd", "-l", "1M",
		      "--log", "syslog", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		struct stat st;

		if (stat(sock_path, &st) == 0)
			break;
		usleep(10000);
	}
	drain_ep = epoll_create1(EPOLL_CLOEXEC);
	pthread_create(&drainer, NULL, drain_thread, NULL);

	printf("ivshmem-server join latency (connect until own eventfds arrived, via libivshmem)\n");
	join_latency(existing, 1, rounds);
	join_latency(existing, 100, rounds);
	join_latency(existing, 1000, rounds);
	drain_stop = 1;
	pthread_join(drainer, NULL);
	for (int i = 0; i < 1000; i++)
		close(existing[i]);
	usleep(300000);

	{
		char target[140];
		struct pingpong peers = { .iters = rounds * 100 }, bare = { .iters = rounds * 100 };
		double rtt_peers, rtt_bare;

		snprintf(target, sizeof(target), "server:%s", sock_path);
		if (ivshmem_open(&peers.a, target, NULL) < 0 ||
		    ivshmem_open(&peers.b, target, NULL) < 0) {
			fprintf(stderr, "open: %s\n", ivshmem_errmsg());
			return 1;
		}
		bare.efd_ab = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		bare.efd_ba = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		/* Interleave to share the machine's noise fairly. */
		rtt_bare = pingpong_rtt(&bare);
		rtt_peers = pingpong_rtt(&peers);
		rtt_bare = (rtt_bare + pingpong_rtt(&bare)) / 2;
		rtt_peers = (rtt_peers + pingpong_rtt(&peers)) / 2;
		printf("notify->wake round trip: host peers %.2f us, bare eventfd %.2f us, "
		       "ratio %.2f (%d iterations)\n", rtt_peers, rtt_bare, rtt_peers / rtt_bare,
		       peers.iters);
		ivshmem_close(peers.a);
		ivshmem_close(peers.b);
	}
	kill(server, SIGTERM);
	waitpid(server, NULL, 0);
	rmdir(dir);
	return 0;
}
