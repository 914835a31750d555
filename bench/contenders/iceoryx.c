// SPDX-License-Identifier: MIT
/*
 * iceoryx (Debian libiceoryx-binding-c-dev; daemon iox-roudi from the package
 * iceoryx): zero-copy publish/subscribe through the C binding, polling like
 * our polling ring. The publisher loans a chunk, copies the payload in and
 * publishes; the subscriber takes it, copies the payload out and releases it
 * (the same copies as ring send/recv). Publisher WAIT_FOR_CONSUMER and
 * subscriber BLOCK_PRODUCER with a queue of 64 chunks: nothing is dropped.
 * iceoryx waits for a full queue with sched_yield() under its lock, which on
 * a busy 2-CPU machine hands the CPU away; so for throughput the publisher
 * keeps at most QUEUE - 1 chunks in flight, counted through a shared counter
 * the subscriber bumps (a credit, like the ring's cons index): iceoryx at its
 * best, never on that path.
 *
 * The benchmark starts its own iox-roudi (with memory pools for every size)
 * in iceoryx_setup(); it refuses to run beside a RouDi it did not start. The
 * runtime can be initialised only once per process, so all measurements
 * share it, and it deregisters only in its destructor at exit: RouDi, when
 * stopped, sends SIGTERM to every application still registered. So RouDi is
 * stopped by an atexit() handler registered before the runtime exists, which
 * therefore runs after the runtime's destructor. RouDi 2.0.3 aborts (and
 * leaves its shared memory) when it stops after an application died, so on
 * SIGINT/SIGTERM/SIGHUP the benchmark kills RouDi with SIGKILL and removes
 * RouDi's two segments itself; if the benchmark is killed outright, RouDi gets
 * SIGKILL from PR_SET_PDEATHSIG and the next RouDi purges what it left.
 */
#define _GNU_SOURCE
#include "../bench.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <iceoryx_binding_c/chunk.h>
#include <iceoryx_binding_c/log.h>
#include <iceoryx_binding_c/publisher.h>
#include <iceoryx_binding_c/runtime.h>
#include <iceoryx_binding_c/subscriber.h>

#include "ivshmem/ring.h"

#define QUEUE 64
#define CHUNKS 200		/* per pool: queue + held + in flight, twice over */

static pid_t roudi = -1;
static char dir[64], cfg_path[96], log_path[96];	/* our temporary directory, RouDi's config and log */
static char user_segment[128];	/* RouDi's payload segment, named after the user */
static int service_id;

static void stop_roudi(void);

/* Memory pools: one per size up to 1 MiB, chunk = payload + header (64 B), with room. */
static int write_config(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fprintf(f, "[general]\nversion = 1\n\n[[segment]]\n");
	for (size_t s = 8; s <= (1u << 20); s *= 2)
		fprintf(f, "\n[[segment.mempool]]\nsize = %zu\ncount = %d\n", s + 128,
			s >= (256u << 10) ? CHUNKS / 2 : CHUNKS);
	return fclose(f) == 0 ? 0 : -errno;
}

/* Wait for RouDi's "ready" line in its log; false if it exited or took over 20 s. */
static bool roudi_ready(const char *log)
{
	for (int i = 0; i < 2000; i++) {
		char buf[8192];
		int fd = open(log, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

		if (fd >= 0)
			close(fd);
		if (n > 0) {
			buf[n] = 0;
			if (strstr(buf, "RouDi is ready for clients"))
				return true;
		}
		if (waitpid(roudi, NULL, WNOHANG) == roudi) {
			roudi = -1;
			return false;
		}
		usleep(10000);
	}
	return false;
}

/* The start of RouDi's log on stderr (before stop_roudi() removes it). */
static void dump_log(void)
{
	char buf[2048];
	int fd = open(log_path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf));

	if (n > 0)
		fwrite(buf, 1, (size_t)n, stderr);
	if (fd >= 0)
		close(fd);
}

static pid_t spawn_roudi(const char *cfg, const char *log)
{
	pid_t pid = fork();

	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		/* Never outlive the benchmark, whatever kills it (see the top of this file). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		execlp("iox-roudi", "iox-roudi", "-c", cfg, "-m", "off", "-l", "info", (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Another iox-roudi on this machine (there can be only one; never touch someone else's)? */
static bool roudi_running(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	bool found = false;

	while (d && !found && (e = readdir(d))) {
		char path[300], comm[32] = "";
		FILE *f;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (f) {
			found = fgets(comm, sizeof(comm), f) && strcmp(comm, "iox-roudi\n") == 0;
			fclose(f);
		}
	}
	if (d)
		closedir(d);
	return found;
}

/* SIGINT/SIGTERM/SIGHUP while RouDi runs: async-signal-safe calls only. */
static void on_signal(int sig)
{
	if (roudi > 0) {
		kill(roudi, SIGKILL);
		waitpid(roudi, NULL, 0);
		unlink("/dev/shm/iceoryx_mgmt");
		if (user_segment[0])
			unlink(user_segment);
	}
	if (dir[0]) {
		unlink(cfg_path);
		unlink(log_path);
		rmdir(dir);
	}
	_exit(128 + sig);
}

int iceoryx_setup(void)
{
	struct passwd *pw = getpwuid(getuid());

	if (roudi_running()) {
		fprintf(stderr, "ivshmem-bench: iceoryx: an iox-roudi is already running; not using one "
				"this benchmark did not start\n");
		return -EBUSY;
	}
	if (pw)
		snprintf(user_segment, sizeof(user_segment), "/dev/shm/%s", pw->pw_name);
	snprintf(dir, sizeof(dir), "/tmp/ivshmem-bench-XXXXXX");
	if (!mkdtemp(dir))
		return -errno;
	snprintf(cfg_path, sizeof(cfg_path), "%s/roudi.toml", dir);
	snprintf(log_path, sizeof(log_path), "%s/roudi.log", dir);
	if (write_config(cfg_path) < 0) {
		stop_roudi();
		return -EIO;
	}
	roudi = spawn_roudi(cfg_path, log_path);
	if (roudi < 0 || !roudi_ready(log_path)) {
		fprintf(stderr, "ivshmem-bench: iceoryx: iox-roudi did not start (package iceoryx); "
				"its log:\n");
		dump_log();
		stop_roudi();
		return -ENOENT;
	}
	atexit(stop_roudi);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	iox_set_loglevel(Iceoryx_LogLevel_Warn);
	iox_runtime_init("ivshmem-bench");
	return 0;
}

/* At exit, after the runtime deregistered (see the top of this file); or when setup fails. */
static void stop_roudi(void)
{
	if (roudi > 0) {
		kill(roudi, SIGTERM);
		for (int i = 0; i < 500 && waitpid(roudi, NULL, WNOHANG) != roudi; i++) {
			if (i == 499) {
				kill(roudi, SIGKILL);
				waitpid(roudi, NULL, 0);
			}
			usleep(10000);
		}
		roudi = -1;
	}
	if (dir[0]) {
		unlink(cfg_path);
		unlink(log_path);
		rmdir(dir);
		dir[0] = 0;
	}
}

/* One direction: a publisher and its subscriber on a fresh event name. */
struct topic {
	iox_pub_storage_t pub_storage;
	iox_sub_storage_t sub_storage;
	iox_pub_t pub;
	iox_sub_t sub;
};

static int topic_open(struct topic *t)
{
	iox_pub_options_t po;
	iox_sub_options_t so;
	char event[32];

	snprintf(event, sizeof(event), "e%d", service_id++);
	iox_pub_options_init(&po);
	po.historyCapacity = 0;
	po.subscriberTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
	iox_sub_options_init(&so);
	so.queueCapacity = QUEUE;
	so.historyRequest = 0;
	so.queueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
	t->pub = iox_pub_init(&t->pub_storage, "ivshmem-bench", "bench", event, &po);
	t->sub = iox_sub_init(&t->sub_storage, "ivshmem-bench", "bench", event, &so);
	/* RouDi connects them in its discovery loop (every 100 ms or so). */
	for (int i = 0; i < 1000; i++) {
		if (iox_sub_get_subscription_state(t->sub) == SubscribeState_SUBSCRIBED &&
		    iox_pub_has_subscribers(t->pub))
			return 0;
		usleep(5000);
	}
	fprintf(stderr, "ivshmem-bench: iceoryx: subscription timed out\n");
	return -ETIMEDOUT;
}

static void topic_close(struct topic *t)
{
	iox_sub_release_queued_chunks(t->sub);
	iox_sub_deinit(t->sub);
	iox_pub_deinit(t->pub);
}

static void publish(struct topic *t, const void *src, size_t size)
{
	void *chunk;
	enum iox_AllocationResult ret;

	while ((ret = iox_pub_loan_chunk(t->pub, &chunk, (uint32_t)size)) != AllocationResult_SUCCESS) {
		if (ret != AllocationResult_RUNNING_OUT_OF_CHUNKS &&
		    ret != AllocationResult_TOO_MANY_CHUNKS_ALLOCATED_IN_PARALLEL) {
			fprintf(stderr, "ivshmem-bench: iceoryx: loan failed (%d)\n", (int)ret);
			exit(1);
		}
		ivshmem_cpu_relax();
	}
	memcpy(chunk, src, size);
	iox_pub_publish_chunk(t->pub, chunk);
}

static void take(struct topic *t, void *dst, size_t size)
{
	const void *chunk;

	while (iox_sub_take_chunk(t->sub, &chunk) != ChunkReceiveResult_SUCCESS)
		ivshmem_cpu_relax();
	memcpy(dst, chunk, size);
	iox_sub_release_chunk(t->sub, chunk);
}

struct iox_pair {
	struct topic t[2];	/* 0: a -> b, 1: b -> a */
	size_t size;
	uint64_t count, ns;
	uint64_t *rtt;
	uint8_t *src, *dst_a, *dst_b;
	struct windows win;
	volatile int ready;
	_Alignas(64) volatile uint64_t received;
};

static void *iox_tx(void *arg)
{
	struct iox_pair *p = arg;
	uint64_t seen = 0;

	wait_flag(&p->ready);
	for (uint64_t i = 0; i < p->count; i++) {
		while (i - seen >= QUEUE - 1) {
			seen = __atomic_load_n(&p->received, __ATOMIC_ACQUIRE);
			ivshmem_cpu_relax();
		}
		publish(&p->t[0], p->src, p->size);
	}
	return NULL;
}

static void *iox_rx(void *arg)
{
	struct iox_pair *p = arg;

	pin(bench_cpu_b);
	__atomic_store_n(&p->ready, 1, __ATOMIC_RELEASE);
	win_start(&p->win, p->count);
	for (uint64_t i = 0; i < p->count; i++) {
		take(&p->t[0], p->dst_b, p->size);
		__atomic_store_n(&p->received, i + 1, __ATOMIC_RELEASE);
		win_tick(&p->win, i);
	}
	p->ns = win_ns(&p->win, p->count);
	return NULL;
}

static void *iox_ping(void *arg)
{
	struct iox_pair *p = arg;

	wait_flag(&p->ready);
	for (uint64_t i = 0; i < p->count; i++) {
		uint64_t t0 = now_ns();

		publish(&p->t[0], p->src, p->size);
		take(&p->t[1], p->dst_a, p->size);
		p->rtt[i] = now_ns() - t0;
	}
	return NULL;
}

static void *iox_pong(void *arg)
{
	struct iox_pair *p = arg;

	pin(bench_cpu_b);
	__atomic_store_n(&p->ready, 1, __ATOMIC_RELEASE);
	for (uint64_t i = 0; i < p->count; i++) {
		take(&p->t[0], p->dst_b, p->size);
		publish(&p->t[1], p->dst_b, p->size);
	}
	return NULL;
}

static void run(const struct contender *c, size_t size, bool lat)
{
	struct iox_pair *p = calloc(1, sizeof(*p));
	int ntopics = lat ? 2 : 1;

	if (!p)
		exit(1);
	p->size = size;
	for (int i = 0; i < ntopics; i++)
		if (topic_open(&p->t[i]) < 0)
			exit(1);
	p->src = xalloc(size);
	p->dst_a = xalloc(size);
	p->dst_b = xalloc(size);
	if (lat) {
		p->count = count_for(size, 200000);
		p->rtt = calloc(p->count, sizeof(uint64_t));
		run_pair(iox_ping, iox_pong, p);
		bench_latency(c->name, size, p->rtt, p->count);
	} else {
		p->count = count_for(size, 5000000);
		run_pair(iox_tx, iox_rx, p);
		bench_throughput(c->name, size, p->count, p->ns, -1);
	}
	for (int i = 0; i < ntopics; i++)
		topic_close(&p->t[i]);
	free(p->rtt);
	free(p->src);
	free(p->dst_a);
	free(p->dst_b);
	free(p);
}

void iceoryx_tput(const struct contender *c, size_t size)
{
	run(c, size, false);
}

void iceoryx_lat(const struct contender *c, size_t size)
{
	run(c, size, true);
}
