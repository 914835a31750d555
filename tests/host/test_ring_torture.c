// SPDX-License-Identifier: MIT
/*
 * Wake-up torture (docs/ring.md, "Why no wake-up is lost"). A producer sends
 * bursts of records separated by random gaps; the consumer drains, then arms
 * and sleeps on an eventfd at once (no spinning), so arming races publishing
 * as often as possible. A sleep that times out while a record waits is a
 * lost wake-up. Two ways to wait for the kick:
 *   sleep: poll() on an eventfd, as a channel does (long timeout);
 *   spin:  spin on a flag the kick sets, so the consumer arms millions of times a
 *          second and the store-buffer race between arming and publishing is hit
 *          often (the x86 StoreLoad reordering is rare per attempt).
 *
 *   test_ring_torture                 the real ring, both ways: no loss
 *   test_ring_torture --expect-loss   a ring with a deliberately broken ordering
 *                                     (IVSHMEM_RING_TEST_BROKEN: no fence, no re-check after
 *                                     arming), spin way: the test must see a loss, which
 *                                     proves it can fail
 */
#include "ivshmem/ring.h"
#include "sanitizers.h"
#include "tap.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define CAP 4096

static _Alignas(128) uint8_t ctrl[IVSHMEM_RING_CTRL_SIZE];
static _Alignas(64) uint8_t data[CAP];
static int efd;
static int spin_mode;
static int kicked;
static int sleep_ms;
static double deadline;
static int stop;	/* shared between the threads: atomics only */
static unsigned long bursts, sent, received, sleeps, lost, bad;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int kick_fd(void *arg)
{
	uint64_t one = 1;

	if (spin_mode) {
		__atomic_store_n(&kicked, 1, __ATOMIC_RELEASE);
		return 0;
	}
	return write(*(int *)arg, &one, sizeof(one)) == sizeof(one) ? 0 : -errno;
}

static void gap(unsigned int *seed)
{
	unsigned int r = rand_r(seed) % 64;

	if (spin_mode) {
		for (volatile unsigned int i = 0; i < r; i++)
			;
		return;
	}
	if (r < 40)
		for (volatile unsigned int i = 0; i < r * 8; i++)
			;
	else if (r < 63)
		for (volatile unsigned int i = 0; i < r * 100; i++)
			;
	else
		usleep(50);
}

static void *producer(void *arg)
{
	struct ivshmem_ring r;
	unsigned int seed = 7;

	(void)arg;
	ivshmem_ring_attach(&r, ctrl, data, CAP, IVSHMEM_RING_PRODUCER);
	r.kick = kick_fd;
	r.kick_arg = &efd;
	for (unsigned long b = 0; b < bursts && !__atomic_load_n(&stop, __ATOMIC_RELAXED) &&
	     now_s() < deadline; b++) {
		unsigned int n = 1 + rand_r(&seed) % 8;

		for (unsigned int i = 0; i < n; i++) {
			unsigned long v = __atomic_load_n(&sent, __ATOMIC_RELAXED);
			int ret;

			/* Full: the consumer is awake and draining; a spin is enough here. */
			while ((ret = ivshmem_ring_send(&r, &v, sizeof(v),
							i + 1 < n ? IVSHMEM_RING_MORE : 0)) == -EAGAIN &&
			       !__atomic_load_n(&stop, __ATOMIC_RELAXED))
				ivshmem_cpu_relax();
			if (ret == 0)
				__atomic_store_n(&sent, v + 1, __ATOMIC_RELEASE);
		}
		ivshmem_ring_publish(&r);
		/*
		 * Spin way: lock-step. The next burst waits until this one was read, so no later
		 * publish can paper over a missed kick, and the next publish races the consumer's
		 * arming as closely as it gets.
		 */
		for (double end = now_s() + 2.0 * sleep_ms / 1e3;
		     spin_mode && __atomic_load_n(&received, __ATOMIC_ACQUIRE) !=
				  __atomic_load_n(&sent, __ATOMIC_RELAXED) && now_s() < end;)
			ivshmem_cpu_relax();
		gap(&seed);
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	kick_fd(&efd);
	return NULL;
}

/* Wait for the kick; true if the whole timeout passed without one. */
static bool slept_through(void)
{
	struct pollfd p = { .fd = efd, .events = POLLIN };
	uint64_t v;
	int ret;

	if (spin_mode) {
		double end = now_s() + sleep_ms / 1e3;

		for (unsigned long i = 0; !__atomic_load_n(&kicked, __ATOMIC_ACQUIRE); i++) {
			ivshmem_cpu_relax();
			if (i % 1024 == 0 && now_s() > end)
				return true;
		}
		__atomic_store_n(&kicked, 0, __ATOMIC_RELAXED);
		return false;
	}
	ret = poll(&p, 1, sleep_ms);

	if (ret == 1 && read(efd, &v, sizeof(v)) != sizeof(v))
		return false;
	return ret == 0;
}

static void *consumer(void *arg)
{
	struct ivshmem_ring r;

	(void)arg;
	ivshmem_ring_attach(&r, ctrl, data, CAP, IVSHMEM_RING_CONSUMER);
	for (;;) {
		unsigned long v;
		ssize_t n = ivshmem_ring_recv(&r, &v, sizeof(v), 0);

		if (n == sizeof(v)) {
			bad += v != received;
			__atomic_store_n(&received, received + 1, __ATOMIC_RELEASE);
			continue;
		}
		if (n != -EAGAIN) {
			bad++;
			break;
		}
		if (__atomic_load_n(&stop, __ATOMIC_ACQUIRE) &&
		    received == __atomic_load_n(&sent, __ATOMIC_ACQUIRE))
			break;
		if (ivshmem_ring_arm(&r, 0) != 0)
			continue;
		sleeps++;
		if (slept_through() && ivshmem_ring_readable(&r))
			__atomic_fetch_add(&lost, 1, __ATOMIC_RELAXED);
		ivshmem_ring_disarm(&r);
	}
	return NULL;
}

/* One run; returns the number of lost wake-ups. */
static unsigned long run(int spin, unsigned long nbursts, double seconds, int timeout_ms,
			 bool stop_at_first_loss)
{
	pthread_t p, c;

	spin_mode = spin;
	bursts = nbursts;
	sleep_ms = timeout_ms;
	deadline = now_s() + seconds;
	__atomic_store_n(&stop, 0, __ATOMIC_RELAXED);
	kicked = 0;
	sent = received = sleeps = lost = bad = 0;
	ivshmem_ring_format(ctrl, data);
	pthread_create(&p, NULL, producer, NULL);
	pthread_create(&c, NULL, consumer, NULL);
	while (stop_at_first_loss && !__atomic_load_n(&stop, __ATOMIC_RELAXED) &&
	       !__atomic_load_n(&lost, __ATOMIC_RELAXED) && now_s() < deadline)
		usleep(1000);
	if (stop_at_first_loss)
		__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	pthread_join(p, NULL);
	pthread_join(c, NULL);
	tap_diag("%s: %lu records in bursts, the consumer waited %lu times, %lu lost wake-ups",
		 spin ? "spin" : "sleep", sent, sleeps, lost);
	return lost;
}

int main(int argc, char **argv)
{
	bool expect_loss = argc > 1 && strcmp(argv[1], "--expect-loss") == 0;
#ifdef UNDER_TSAN
	unsigned long scale = 10;
#else
	unsigned long scale = 1;
#endif

	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (expect_loss) {
		/* A broken ring is caught quickly; a wait of 20 ms without a kick is a loss. */
		tap_ok(run(1, ~0ul, 30, 20, true) > 0,
		       "the broken ring loses a wake-up (the test can fail)");
		return tap_done();
	}
	/* A healthy ring never needs a kick to take long: 5 s without one is a loss. */
	tap_is(run(0, 200000 / scale, 60, 5000, false), 0, "sleeping consumer: no lost wake-up");
	tap_is(bad, 0, "... every record arrives once, in order");
	tap_ok(sleeps > 1000 / scale, "... the consumer really slept (the race was exercised)");
	tap_is(run(1, 3000000 / scale, 10, 5000, false), 0, "spinning consumer: no lost wake-up");
	tap_is(bad, 0, "... every record arrives once, in order");
	tap_ok(sleeps > 10000 / scale, "... the consumer armed and waited %lu times", sleeps);
	return tap_done();
}
