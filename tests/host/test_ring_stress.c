// SPDX-License-Identifier: MIT
/*
 * Correctness under load: 10^7 records (variable sizes, batches on both sides,
 * zero-copy on the consumer) from one process to another through a ring in a
 * shared memfd. Each record carries its sequence number, its length (a
 * function of the sequence number) and a checksum of its payload: loss,
 * duplication, reordering, truncation and corruption are all detected.
 *
 * IVSHMEM_STRESS_MESSAGES=N overrides the count. Under ASan the default is
 * 2*10^6; under TSan the two sides are threads (TSan cannot see across
 * processes) and the default is 2*10^5.
 */
#define _GNU_SOURCE
#include "ivshmem/ring.h"
#include "sanitizers.h"
#include "tap.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CAP (256u * 1024)

struct msg_head {
	uint64_t seq;
	uint32_t len;	/* payload bytes after the head */
	uint32_t sum;
};

struct result {
	uint64_t received, bad_seq, bad_len, bad_sum, errors, stalls;
};

static uint8_t *ctrl, *data;
static int efd_cons, efd_prod;
static uint64_t total;

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

static uint32_t payload_len(uint64_t seq)
{
	uint64_t h = mix(seq);

	/* Mostly small, sometimes up to 4 KiB: exercises pads at the end of the ring. */
	return (h & 0xff) < 8 ? (uint32_t)(h >> 8) % 4096 : (uint32_t)(h >> 8) % 240;
}

static uint32_t checksum(const uint8_t *p, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static int kick_fd(void *arg)
{
	uint64_t one = 1;

	return write(*(int *)arg, &one, sizeof(one)) == sizeof(one) ? 0 : -errno;
}

/* Spin briefly, then arm and sleep; false if nothing happened for 10 s (a hang). */
static int wait_for(struct ivshmem_ring *r, int fd, size_t need)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v;

	for (int i = 0; i < 2000; i++) {
		if (r->role == IVSHMEM_RING_CONSUMER ? ivshmem_ring_readable(r)
						     : ivshmem_ring_writable(r, need))
			return 1;
		ivshmem_cpu_relax();
	}
	if (ivshmem_ring_arm(r, need) != 0)
		return 1;
	int ret = poll(&p, 1, 10000);

	if (ret == 1 && read(fd, &v, sizeof(v)) != sizeof(v))
		v = 0;
	ivshmem_ring_disarm(r);
	return ret == 1 || (r->role == IVSHMEM_RING_CONSUMER ? ivshmem_ring_readable(r)
							     : ivshmem_ring_writable(r, need));
}

static void *produce(void *arg)
{
	struct ivshmem_ring r;
	uint64_t *errors = arg;
	uint64_t batch_left = 0, x = 7;

	ivshmem_ring_attach(&r, ctrl, data, CAP, IVSHMEM_RING_PRODUCER);
	r.kick = kick_fd;
	r.kick_arg = &efd_cons;
	for (uint64_t seq = 0; seq < total;) {
		uint32_t len = payload_len(seq);
		struct msg_head *h;
		void *buf;
		int ret = ivshmem_ring_reserve(&r, sizeof(*h) + len, &buf);

		if (ret == -EAGAIN) {
			ivshmem_ring_publish(&r);
			if (!wait_for(&r, efd_prod, sizeof(*h) + len)) {
				(*errors)++;
				break;
			}
			continue;
		}
		if (ret < 0) {
			(*errors)++;
			break;
		}
		h = buf;
		uint8_t *p = (uint8_t *)(h + 1);
		uint64_t s = mix(seq ^ 0x1234);

		for (uint32_t i = 0; i < len; i++) {
			p[i] = (uint8_t)s;
			s = s >> 8 | s << 56;
		}
		h->seq = seq;
		h->len = len;
		h->sum = checksum(p, len);
		if (batch_left == 0) {
			x = mix(x);
			batch_left = 1 + x % 16;
		}
		batch_left--;
		ivshmem_ring_commit(&r, sizeof(*h) + len, batch_left ? IVSHMEM_RING_MORE : 0);
		seq++;
	}
	ivshmem_ring_publish(&r);
	return NULL;
}

static void *consume(void *arg)
{
	struct result *res = arg;
	struct ivshmem_ring r;
	uint64_t expect = 0;

	ivshmem_ring_attach(&r, ctrl, data, CAP, IVSHMEM_RING_CONSUMER);
	r.kick = kick_fd;
	r.kick_arg = &efd_prod;
	while (expect < total) {
		const void *buf;
		size_t len;
		int ret = ivshmem_ring_peek(&r, &buf, &len);

		if (ret == -EAGAIN) {
			ivshmem_ring_publish(&r);
			if (!wait_for(&r, efd_cons, 0)) {
				res->stalls++;
				break;
			}
			continue;
		}
		if (ret < 0) {
			res->errors++;
			break;
		}
		const struct msg_head *h = buf;

		if (len < sizeof(*h) || h->len != len - sizeof(*h)) {
			res->bad_len++;
		} else {
			if (h->seq != expect)
				res->bad_seq++;
			if (h->len != payload_len(h->seq))
				res->bad_len++;
			if (checksum((const uint8_t *)(h + 1), h->len) != h->sum)
				res->bad_sum++;
		}
		expect = (len >= sizeof(*h) ? h->seq : expect) + 1;
		res->received++;
		ivshmem_ring_release(&r, (res->received % 8) ? IVSHMEM_RING_MORE : 0);
	}
	ivshmem_ring_publish(&r);
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void)
{
	const char *env = getenv("IVSHMEM_STRESS_MESSAGES");
	struct result *res;
	uint64_t prod_errors = 0;
	double t0, dt;
	int fd;

#if defined(UNDER_TSAN)
	total = 200000;
#elif defined(UNDER_ASAN)
	total = 2000000;
#else
	total = 10000000;
#endif
	if (env)
		total = strtoull(env, NULL, 0);
	fd = memfd_create("ring-stress", 0);
	if (fd < 0 || ftruncate(fd, 4096 + CAP + 4096) < 0) {
		printf("Bail out! memfd\n");
		return 1;
	}
	ctrl = mmap(NULL, 4096 + CAP + 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (ctrl == MAP_FAILED) {
		printf("Bail out! mmap\n");
		return 1;
	}
	data = ctrl + 4096;
	res = (struct result *)(data + CAP);
	memset(res, 0, sizeof(*res));
	ivshmem_ring_format(ctrl, data);
	efd_cons = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	efd_prod = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	t0 = now_s();
#ifdef UNDER_TSAN
	pthread_t c;

	pthread_create(&c, NULL, consume, res);
	produce(&prod_errors);
	pthread_join(c, NULL);
	tap_diag("threads (TSan build)");
#else
	pid_t pid = fork();

	if (pid == 0) {
		consume(res);
		_exit(0);
	}
	produce(&prod_errors);
	int status;

	waitpid(pid, &status, 0);
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "consumer process exited cleanly");
#endif
	dt = now_s() - t0;
	tap_diag("%llu records in %.2f s: %.1f M records/s", (unsigned long long)total, dt,
		 total / dt / 1e6);
	tap_is(prod_errors, 0, "producer: no errors or stalls");
	tap_is(res->errors + res->stalls, 0, "consumer: no errors or stalls");
	tap_is(res->received, total, "every record received exactly once");
	tap_is(res->bad_seq, 0, "in order, no loss or duplication");
	tap_is(res->bad_len, 0, "lengths intact");
	tap_is(res->bad_sum, 0, "checksums intact");
	return tap_done();
}
