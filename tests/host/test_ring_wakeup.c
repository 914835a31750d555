// SPDX-License-Identifier: MIT
/*
 * No lost wake-up. A producer and a consumer thread share a tiny ring (so
 * both sides often find it full or empty) and sleep on eventfds with the
 * ring's arm/kick protocol, with random pauses to shift the race windows.
 * A side that times out in its sleep while the ring says it could proceed
 * missed a kick: that is a lost wake-up and fails the test. A version of
 * ring.c that loads the peer's index before publishing its armed flag (or
 * without seq_cst ordering) fails this within seconds.
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
#include <unistd.h>

#define CAP 256
#define SLEEP_TIMEOUT_MS 1000

static _Alignas(128) uint8_t ctrl[IVSHMEM_RING_CTRL_SIZE];
static _Alignas(64) uint8_t data[CAP];
static int efd_cons, efd_prod;
static unsigned long total;
static unsigned long lost_cons, lost_prod, sleeps_cons, sleeps_prod, bad;

static int kick_fd(void *arg)
{
	uint64_t one = 1;

	return write(*(int *)arg, &one, sizeof(one)) == sizeof(one) ? 0 : -errno;
}

static void jitter(unsigned int *seed)
{
	unsigned int r = rand_r(seed) % 16;

	/* Mostly none, sometimes a short busy pause, rarely a yield. */
	if (r < 10)
		return;
	if (r < 15)
		for (volatile int i = 0; i < (int)(r * 20); i++)
			;
	else
		sched_yield();
}

/* Sleep on @fd after arming; true if we slept the whole timeout although we could proceed. */
static int sleep_on(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v;
	int ret = poll(&p, 1, SLEEP_TIMEOUT_MS);

	if (ret == 1 && read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return ret == 0;
}

static void *producer(void *arg)
{
	struct ivshmem_ring r;
	unsigned int seed = 1;

	(void)arg;
	ivshmem_ring_attach(&r, ctrl, data, CAP, IVSHMEM_RING_PRODUCER);
	r.kick = kick_fd;
	r.kick_arg = &efd_cons;
	for (unsigned long i = 0; i < total;) {
		size_t len = 8 + (i % 7) * 8;
		unsigned long buf[8] = { i };
		int ret = ivshmem_ring_send(&r, buf, len, 0);

		if (ret == 0) {
			i++;
			jitter(&seed);
			continue;
		}
		if (ret != -EAGAIN) {
			bad++;
			break;
		}
		ret = ivshmem_ring_arm(&r, len);
		if (ret == 0) {
			sleeps_prod++;
			if (sleep_on(efd_prod) && ivshmem_ring_writable(&r, len))
				lost_prod++;
			ivshmem_ring_disarm(&r);
		}
	}
	return NULL;
}

static void *consumer(void *arg)
{
	struct ivshmem_ring r;
	unsigned int seed = 2;

	(void)arg;
	ivshmem_ring_attach(&r, ctrl, data, CAP, IVSHMEM_RING_CONSUMER);
	r.kick = kick_fd;
	r.kick_arg = &efd_prod;
	for (unsigned long i = 0; i < total;) {
		unsigned long buf[8];
		ssize_t n = ivshmem_ring_recv(&r, buf, sizeof(buf), 0);

		if (n >= 0) {
			if ((size_t)n != 8 + (i % 7) * 8 || buf[0] != i)
				bad++;
			i++;
			jitter(&seed);
			continue;
		}
		if (n != -EAGAIN) {
			bad++;
			break;
		}
		if (ivshmem_ring_arm(&r, 0) == 0) {
			sleeps_cons++;
			if (sleep_on(efd_cons) && ivshmem_ring_readable(&r))
				lost_cons++;
			ivshmem_ring_disarm(&r);
		}
	}
	return NULL;
}

/*
 * Ping-pong: after each message the sender sleeps until the answer comes, so
 * no later publish can paper over a missed kick: one lost wake-up stalls the
 * exchange and is reported.
 */
static _Alignas(128) uint8_t ctrl2[IVSHMEM_RING_CTRL_SIZE];
static _Alignas(64) uint8_t data2[CAP];
static int efd_a, efd_b;
/*
 * Ping-pong runs at least pp_total round trips and goes on (up to
 * PP_MAX_FACTOR times as many) until enough of them slept: how often a side
 * finds the ring empty depends on the scheduler (TSan on 2 busy cores once
 * slept 636 times in 10,000), and the test is only meaningful if it did.
 */
#define PP_MAX_FACTOR 20
#define PP_STOP (~0UL)
static unsigned long pp_total, pp_min_sleeps, pp_done, pp_lost, pp_bad, pp_sleeps;

/* Receive one value, sleeping on @fd when empty; counts lost wake-ups. */
static int pp_recv(struct ivshmem_ring *rx, int fd, unsigned long *v, unsigned int *seed)
{
	for (;;) {
		ssize_t n = ivshmem_ring_recv(rx, v, sizeof(*v), 0);

		if (n == sizeof(*v))
			return 0;
		if (n != -EAGAIN)
			return -1;
		/* Arm at a random moment around the answer's arrival (~ a cache miss away). */
		for (volatile int i = 0, w = rand_r(seed) % 400; i < w; i++)
			;
		if (ivshmem_ring_arm(rx, 0) == 0) {
			__atomic_fetch_add(&pp_sleeps, 1, __ATOMIC_RELAXED);
			if (sleep_on(fd)) {
				if (ivshmem_ring_readable(rx))
					__atomic_fetch_add(&pp_lost, 1, __ATOMIC_RELAXED);
				else
					return -1;	/* the peer is gone */
			}
			ivshmem_ring_disarm(rx);
		}
	}
}

static void *pinger(void *arg)
{
	struct ivshmem_ring tx, rx;
	unsigned int seed = 3;

	(void)arg;
	ivshmem_ring_attach(&tx, ctrl, data, CAP, IVSHMEM_RING_PRODUCER);
	ivshmem_ring_attach(&rx, ctrl2, data2, CAP, IVSHMEM_RING_CONSUMER);
	tx.kick = kick_fd;
	tx.kick_arg = &efd_b;
	unsigned long i, stop = PP_STOP;

	for (i = 0; i < pp_total * PP_MAX_FACTOR; i++) {
		unsigned long v;

		if (pp_lost >= 3)
			break;	/* enough evidence; each one costs a sleep timeout */
		if (i >= pp_total && __atomic_load_n(&pp_sleeps, __ATOMIC_RELAXED) > pp_min_sleeps)
			break;
		if (ivshmem_ring_send(&tx, &i, sizeof(i), 0) < 0 || pp_recv(&rx, efd_a, &v, &seed) < 0 ||
		    v != i + 1) {
			pp_bad++;
			break;
		}
	}
	pp_done = i;
	if (ivshmem_ring_send(&tx, &stop, sizeof(stop), 0) < 0)
		pp_bad++;
	return NULL;
}

static void *ponger(void *arg)
{
	struct ivshmem_ring tx, rx;
	unsigned int seed = 4;

	(void)arg;
	ivshmem_ring_attach(&tx, ctrl2, data2, CAP, IVSHMEM_RING_PRODUCER);
	ivshmem_ring_attach(&rx, ctrl, data, CAP, IVSHMEM_RING_CONSUMER);
	tx.kick = kick_fd;
	tx.kick_arg = &efd_a;
	for (;;) {
		unsigned long v;

		/* Answer fast: busy-poll a while so the reply races the pinger's arm. */
		for (int k = 0; k < 20000 && !ivshmem_ring_readable(&rx); k++)
			;
		if (pp_recv(&rx, efd_b, &v, &seed) < 0 || v == PP_STOP)
			break;
		v++;
		if (ivshmem_ring_send(&tx, &v, sizeof(v), 0) < 0)
			break;
	}
	return NULL;
}

int main(void)
{
	pthread_t p, c;
	const char *env = getenv("IVSHMEM_WAKEUP_MESSAGES");

#ifdef UNDER_TSAN
	total = 30000;
#else
	total = 300000;
#endif
	if (env)
		total = strtoul(env, NULL, 0);
	efd_cons = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	efd_prod = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ivshmem_ring_format(ctrl, data);
	pthread_create(&p, NULL, producer, NULL);
	pthread_create(&c, NULL, consumer, NULL);
	pthread_join(p, NULL);
	pthread_join(c, NULL);
	tap_is(bad, 0, "every record arrives in order with its length");
	tap_diag("%lu records; consumer slept %lu times, producer %lu times", total, sleeps_cons,
		 sleeps_prod);
	tap_ok(sleeps_cons > 100 && sleeps_prod > 100,
	       "both sides really slept (the race was exercised)");
	tap_is(lost_cons, 0, "no lost wake-up of the consumer");
	tap_is(lost_prod, 0, "no lost wake-up of the producer");

	pp_total = total / 3;
	pp_min_sleeps = pp_total / 10;
	efd_a = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	efd_b = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ivshmem_ring_format(ctrl, data);
	ivshmem_ring_format(ctrl2, data2);
	pthread_create(&p, NULL, pinger, NULL);
	pthread_create(&c, NULL, ponger, NULL);
	pthread_join(p, NULL);
	pthread_join(c, NULL);
	tap_diag("ping-pong: %lu round trips (at least %lu), %lu sleeps", pp_done, pp_total,
		 pp_sleeps);
	tap_is(pp_bad, 0, "ping-pong: every answer arrives");
	tap_ok(pp_sleeps > pp_min_sleeps, "ping-pong: the sides really slept");
	tap_is(pp_lost, 0, "ping-pong: no lost wake-up");
	return tap_done();
}
