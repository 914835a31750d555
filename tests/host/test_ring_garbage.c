// SPDX-License-Identifier: MIT
/*
 * A hostile peer: a child process scribbles over the whole shared ring
 * (control block and data area) - random bytes, plausible-looking indices and
 * record headers carrying the right lap tags - while this process runs a consumer and then a producer on
 * it. The ring sits between PROT_NONE guard pages, so any access outside it
 * crashes the test; records handed out must lie inside the data area; every
 * call must return (no endless loop). Meant to run under ASan as well.
 */
#define _GNU_SOURCE
#include "ivshmem/ring.h"
#include "tap.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u
#define CAP (4u * PAGE)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * The hostile peer: forever write garbage that often looks almost right.
 * Against a consumer (@vs_consumer) it plays the producer and leaves the
 * consumer's own index alone (so the consumer can re-attach after each
 * detected corruption); against a producer, the other way round.
 */
static void scribble(uint8_t *ctrl, uint8_t *data, int vs_consumer)
{
	uint64_t s = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	uint64_t *theirs = (uint64_t *)(ctrl + (vs_consumer ? 0 : 128));
	uint64_t *ours = (uint64_t *)(ctrl + (vs_consumer ? 128 : 0));

	for (;;) {
		uint64_t r = xorshift(&s);
		uint64_t base = __atomic_load_n(ours, __ATOMIC_RELAXED);

		switch (r % 8) {
		case 0:	/* a random index */
			__atomic_store_n(theirs, xorshift(&s), __ATOMIC_RELAXED);
			break;
		case 1:	/* a plausible index near the victim's */
		case 2:
			__atomic_store_n(theirs, vs_consumer ? base + ((r >> 8) % CAP & ~7ull)
							     : base - ((r >> 8) % CAP & ~7ull),
					 __ATOMIC_RELEASE);
			break;
		case 3: {	/* a plausible record header (with the right v2 lap tag), often at the victim */
			uint64_t pos = base + ((r & 8) ? 0 : ((r >> 8) % CAP & ~7ull));
			uint32_t hdr[2] = { (uint32_t)((r >> 24) % (CAP / 2)) |
					    ((r >> 56) % 3 == 1 ? 1u << 31 : 0),
					    (r >> 60) % 4 ? ~(uint32_t)(pos >> 3) : (uint32_t)(r >> 32) };

			memcpy(data + (pos & (CAP - 1)), hdr, 8);
			__atomic_store_n((uint32_t *)(ctrl + 256), (uint32_t)r, __ATOMIC_RELAXED);
			break;
		}
		case 4: {	/* a pad that claims to run to the end, tagged for its position */
			uint64_t pos = base + ((r >> 8) % CAP & ~7ull);
			uint64_t off = pos & (CAP - 1);
			uint32_t hdr[2] = { (uint32_t)(CAP - off - 8 + ((r >> 40) % 3) * 8) | 1u << 31,
					    ~(uint32_t)(pos >> 3) };

			memcpy(data + off, hdr, 8);
			break;
		}
		default: {	/* random bytes */
			uint64_t off = (r >> 8) % (CAP - 8) & ~7ull;
			uint64_t v = xorshift(&s);

			memcpy(data + off, &v, 8);
			break;
		}
		}
	}
}

static pid_t start_scribbler(uint8_t *ctrl, uint8_t *data, int vs_consumer)
{
	pid_t pid = fork();

	if (pid == 0) {
		scribble(ctrl, data, vs_consumer);
		_exit(0);
	}
	return pid;
}

int main(void)
{
	/* [guard][ctrl][guard][data CAP][guard] */
	size_t total = PAGE + PAGE + PAGE + CAP + PAGE;
	uint8_t *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	uint8_t *ctrl, *data, *out;
	struct ivshmem_ring r;
	uint64_t ok = 0, corrupt = 0, outside = 0, calls = 0, reattach_fail = 0, sent = 0;
	uint64_t not_sticky = 0;
	double slowest = 0, t_end;
	pid_t pid;
	int status;

	if (base == MAP_FAILED) {
		printf("Bail out! mmap\n");
		return 1;
	}
	ctrl = base + PAGE;
	data = base + 3 * PAGE;
	mprotect(base, PAGE, PROT_NONE);
	mprotect(base + 2 * PAGE, PAGE, PROT_NONE);
	mprotect(data + CAP, PAGE, PROT_NONE);
	ivshmem_ring_format(ctrl, data);
	out = malloc(CAP / 2 - 8);	/* exactly the largest record: ASan checks every copy */

	pid = start_scribbler(ctrl, data, 1);

	/* Consumer for 2 s. */
	t_end = now_s() + 2.0;
	while (now_s() < t_end) {
		if (ivshmem_ring_attach(&r, ctrl, data, CAP, IVSHMEM_RING_CONSUMER) < 0) {
			reattach_fail++;
			continue;
		}
		for (int i = 0; i < 1000; i++) {
			const void *buf;
			size_t len;
			double t0 = now_s();
			int ret = ivshmem_ring_peek(&r, &buf, &len);

			calls++;
			if (ret == 0) {
				if ((const uint8_t *)buf < data ||
				    (const uint8_t *)buf + len > data + CAP)
					outside++;
				memcpy(out, buf, len);
				ivshmem_ring_release(&r, i % 3 ? IVSHMEM_RING_MORE : 0);
				ok++;
			} else if (ret == -EBADMSG) {
				corrupt++;
				if (ivshmem_ring_peek(&r, &buf, &len) != -EBADMSG)
					not_sticky++;
				break;
			}
			ssize_t n = ivshmem_ring_recv(&r, out, CAP / 2 - 8, 0);

			calls++;
			if (n > (ssize_t)(CAP / 2 - 8))
				outside++;
			if (now_s() - t0 > slowest)
				slowest = now_s() - t0;
		}
	}
	tap_diag("consumer: %llu calls, %llu records accepted, %llu corruptions detected, "
		 "%llu attach refusals, slowest call %.3f ms", (unsigned long long)calls,
		 (unsigned long long)ok, (unsigned long long)corrupt,
		 (unsigned long long)reattach_fail, slowest * 1e3);
	tap_ok(calls > 1000, "the consumer kept running (no hang, no crash)");
	tap_ok(corrupt > 0, "corruption was detected (EBADMSG)");
	tap_is(not_sticky, 0, "a detected corruption is sticky");
	tap_is(outside, 0, "no record outside the data area or larger than the maximum");
	tap_ok(slowest < 0.5, "no call took long (bounded work per call)");

	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	/* Start the producer from a sane control block: the last phase left garbage in its index. */
	ivshmem_ring_format(ctrl, data);
	pid = start_scribbler(ctrl, data, 0);

	/* Producer for 1 s against a garbage consumer index. */
	t_end = now_s() + 1.0;
	corrupt = 0;
	while (now_s() < t_end) {
		if (ivshmem_ring_attach(&r, ctrl, data, CAP, IVSHMEM_RING_PRODUCER) < 0)
			continue;
		for (int i = 0; i < 1000; i++) {
			int ret = ivshmem_ring_send(&r, out, (size_t)i % (CAP / 2 - 8), 0);

			if (ret == 0)
				sent++;
			if (ret == -EBADMSG) {
				corrupt++;
				break;
			}
		}
	}
	tap_ok(sent > 0 && corrupt > 0, "producer: %llu sends, %llu corruptions detected, no crash",
	       (unsigned long long)sent, (unsigned long long)corrupt);

	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	free(out);
	return tap_done();
}
