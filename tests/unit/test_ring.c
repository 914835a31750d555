// SPDX-License-Identifier: MIT
/*
 * The SPSC ring on a plain buffer, one thread playing both sides: records,
 * wrap-around, full/empty, zero-copy, batching, suppression and kicks, and
 * every kind of corrupted shared state a hostile peer can produce.
 */
#include "ivshmem/ring.h"
#include "tap.h"

#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#define CAP 4096

static _Alignas(128) uint8_t ctrl[IVSHMEM_RING_CTRL_SIZE];
static _Alignas(64) uint8_t data[CAP];
static struct ivshmem_ring prod, cons;
static int kicks_to_consumer, kicks_to_producer;

static int kick_consumer(void *arg)
{
	(void)arg;
	kicks_to_consumer++;
	return 0;
}

static int kick_producer(void *arg)
{
	(void)arg;
	kicks_to_producer++;
	return 0;
}

static void fresh(void)
{
	memset(data, 0xAA, sizeof(data));
	ivshmem_ring_format(ctrl, data);
	ivshmem_ring_attach(&prod, ctrl, data, CAP, IVSHMEM_RING_PRODUCER);
	ivshmem_ring_attach(&cons, ctrl, data, CAP, IVSHMEM_RING_CONSUMER);
	prod.kick = kick_consumer;
	cons.kick = kick_producer;
	kicks_to_consumer = kicks_to_producer = 0;
}

static void put64(unsigned int off, uint64_t v)
{
	v = htole64(v);
	memcpy(ctrl + off, &v, 8);
}

/* A record header as the v2 producer writes it: info (len | pad << 31) and the lap tag of @pos. */
static void put_hdr_pos(unsigned int off, uint64_t pos, uint32_t len, int pad)
{
	uint32_t h[2] = { htole32(len | (pad ? 1u << 31 : 0)), htole32(~(uint32_t)(pos >> 3)) };

	memcpy(data + off, h, 8);
}

static void put_hdr(unsigned int off, uint32_t len, int pad)
{
	put_hdr_pos(off, off, len, pad);
}

static void fill(uint8_t *p, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7);
}

static int check(const uint8_t *p, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != (uint8_t)(seed * 131 + i * 7))
			return 0;
	return 1;
}

static void test_basics(void)
{
	struct ivshmem_ring r;
	uint8_t buf[CAP], out[CAP];
	ssize_t n;

	tap_is(ivshmem_ring_attach(&r, ctrl, data, 1000, IVSHMEM_RING_PRODUCER), -EINVAL,
	       "capacity not a power of two: EINVAL");
	tap_is(ivshmem_ring_attach(&r, ctrl, data, 32, IVSHMEM_RING_PRODUCER), -EINVAL,
	       "capacity below the minimum: EINVAL");
	tap_is(ivshmem_ring_attach(&r, ctrl, data + 1, CAP, IVSHMEM_RING_PRODUCER), -EINVAL,
	       "misaligned data: EINVAL");
	fresh();
	tap_is(ivshmem_ring_max_record(&prod), CAP / 2 - 8, "max record is cap/2 - 8");
	tap_is(ivshmem_ring_recv(&cons, out, sizeof(out), 0), -EAGAIN, "empty ring: EAGAIN");
	tap_is(ivshmem_ring_send(&prod, buf, CAP / 2 - 7, 0), -EMSGSIZE,
	       "record larger than max: EMSGSIZE");
	tap_is(ivshmem_ring_send(&cons, buf, 8, 0), -EINVAL, "send on the consumer side: EINVAL");

	fill(buf, 100, 1);
	tap_is(ivshmem_ring_send(&prod, buf, 100, 0), 0, "send 100 bytes");
	tap_is(ivshmem_ring_send(&prod, buf, 0, 0), 0, "send an empty record");
	tap_is(ivshmem_ring_recv(&cons, out, 99, 0), -EMSGSIZE, "too small a buffer: EMSGSIZE");
	n = ivshmem_ring_recv(&cons, out, sizeof(out), 0);
	tap_ok(n == 100 && check(out, 100, 1), "the record is still there and intact");
	tap_is(ivshmem_ring_recv(&cons, out, sizeof(out), 0), 0, "empty record received");
	tap_is(ivshmem_ring_recv(&cons, out, sizeof(out), 0), -EAGAIN, "empty again");
	tap_is(kicks_to_consumer + kicks_to_producer, 0, "no kicks while nobody is armed");
}

/* Many rounds of mixed sizes so the indices wrap many times and pads are exercised. */
static void test_wrap(void)
{
	uint8_t buf[CAP], out[CAP];
	unsigned int sent = 0, got = 0, bad = 0, full = 0;
	static size_t lens[1024];
	uint64_t x = 12345;

	fresh();
	while (got < 20000) {
		/* Send until full with sizes 0..max. */
		for (;;) {
			size_t len;
			int ret;

			x = x * 6364136223846793005ull + 1442695040888963407ull;
			len = (x >> 33) % 300;
			if ((x >> 20) % 50 == 0)
				len = ivshmem_ring_max_record(&prod);
			fill(buf, len, sent);
			ret = ivshmem_ring_send(&prod, buf, len, 0);
			if (ret == -EAGAIN) {
				full++;
				break;
			}
			if (ret < 0) {
				bad++;
				break;
			}
			lens[sent % 1024] = len;
			sent++;
			if (sent - got > 3 && (x >> 40) % 2)
				break;
		}
		for (int k = 0; k < 3; k++) {
			ssize_t n = ivshmem_ring_recv(&cons, out, sizeof(out), 0);

			if (n == -EAGAIN)
				break;
			if (n < 0 || (size_t)n != lens[got % 1024] || !check(out, (size_t)n, got))
				bad++;
			got++;
		}
	}
	tap_is(bad, 0, "20000 records through a 4 KiB ring: all intact, in order");
	tap_ok(full > 100, "the ring filled up (%u times) and recovered", full);
	tap_ok(cons.local > 100 * CAP, "indices wrapped many times (%llu bytes)",
	       (unsigned long long)cons.local);
}

static void test_zero_copy_and_batching(void)
{
	void *w;
	const void *rd;
	size_t len;
	uint8_t out[64];

	fresh();
	tap_is(ivshmem_ring_reserve(&prod, 64, &w), 0, "reserve 64");
	memcpy(w, "hello", 5);
	tap_is(ivshmem_ring_commit(&prod, 5, 0), 0, "commit a shorter record (5)");
	tap_is(ivshmem_ring_commit(&prod, 5, 0), -EINVAL, "commit without reserve: EINVAL");
	tap_is(ivshmem_ring_peek(&cons, &rd, &len), 0, "peek");
	tap_ok(len == 5 && memcmp(rd, "hello", 5) == 0, "peeked in place");
	tap_is(ivshmem_ring_peek(&cons, &rd, &len), 0, "peek again gives the same record");
	tap_is(ivshmem_ring_release(&cons, 0), 0, "release");
	tap_is(ivshmem_ring_used(&prod), 0,
	       "releasing the last record publishes at once (a flush sees it read)");
	tap_ok(!ivshmem_ring_poll_wait(&cons, 100, 0), "poll_wait on an empty ring gives up");
	tap_ok(!ivshmem_ring_poll_wait(&cons, 20, IVSHMEM_RING_POLL_BACKOFF),
	       "... with backoff too");
	ivshmem_ring_send(&prod, "x", 1, 0);
	tap_ok(ivshmem_ring_poll_wait(&cons, 100, IVSHMEM_RING_POLL_BACKOFF),
	       "poll_wait sees a waiting record");
	tap_is(ivshmem_ring_recv(&cons, out, sizeof(out), 0), 1, "... and it is there");
	tap_is(ivshmem_ring_release(&cons, 0), -EINVAL, "release without peek: EINVAL");

	/* Batching: MORE defers the fence and the wake-up check, not the records. */
	tap_is(ivshmem_ring_arm(&cons, 0), 0, "the consumer arms on an empty ring");
	for (int i = 0; i < 10; i++)
		ivshmem_ring_send(&prod, &i, sizeof(i), IVSHMEM_RING_MORE);
	tap_is(kicks_to_consumer, 0, "a batch in progress does not kick");
	tap_is(ivshmem_ring_publish(&prod), 0, "publish the batch");
	tap_is(kicks_to_consumer, 1, "publishing kicks the armed consumer once");
	int ok = 1;
	for (int i = 0; i < 10; i++) {
		int v = -1;

		if (ivshmem_ring_recv(&cons, &v, sizeof(v), IVSHMEM_RING_MORE) != sizeof(v) ||
		    v != i)
			ok = 0;
	}
	tap_ok(ok, "the whole batch arrives in order");
	tap_ok(ivshmem_ring_used(&prod) > 0, "batched releases are not yet visible to the producer");
	tap_is(ivshmem_ring_recv(&cons, out, sizeof(out), 0), -EAGAIN, "the ring is empty now");
	tap_is(ivshmem_ring_used(&prod), 0, "finding it empty published the consumer index");
}

static void test_suppression(void)
{
	uint8_t buf[CAP / 2];
	int n;

	fresh();
	tap_is(ivshmem_ring_arm(&cons, 0), 0, "consumer arms on an empty ring");
	ivshmem_ring_send(&prod, buf, 8, 0);
	tap_is(kicks_to_consumer, 1, "the first record kicks the armed consumer");
	ivshmem_ring_send(&prod, buf, 8, 0);
	ivshmem_ring_send(&prod, buf, 8, 0);
	tap_is(kicks_to_consumer, 1, "later records do not kick again (it is awake)");
	tap_is(ivshmem_ring_arm(&cons, 0), 1, "arming with data waiting: do not sleep");
	ivshmem_ring_send(&prod, buf, 8, 0);
	tap_is(kicks_to_consumer, 1, "a consumer that did not sleep is not kicked");
	while (ivshmem_ring_recv(&cons, buf, sizeof(buf), 0) >= 0)
		;

	/* The producer side: fill, arm, the consumer's release kicks it. */
	n = 0;
	while (ivshmem_ring_send(&prod, buf, 1000, 0) == 0)
		n++;
	tap_ok(n >= 3, "filled with %d records of 1000 bytes", n);
	tap_is(ivshmem_ring_arm(&prod, 1000), 0, "producer arms on a full ring");
	tap_is(ivshmem_ring_recv(&cons, buf, sizeof(buf), 0), 1000, "consumer takes one");
	tap_is(kicks_to_producer, 0, "one release is below the publication batch: no kick yet");
	while (ivshmem_ring_recv(&cons, buf, sizeof(buf), 0) >= 0)
		;
	tap_is(kicks_to_producer, 1, "draining the ring publishes and kicks the armed producer");
	tap_is(ivshmem_ring_arm(&prod, 1000), 1, "space is there: do not sleep");
	tap_is(ivshmem_ring_arm(&prod, CAP), -EMSGSIZE, "arming for an impossible size: EMSGSIZE");
}

/* Hostile peers: the consumer and the producer must refuse inconsistent state. */
static void test_corruption(void)
{
	uint8_t out[CAP];
	const void *rd;
	size_t len;
	uint32_t hdr[2];

	/* A header with the right lap tag and bad contents (v2: the consumer never reads prod). */
	fresh();
	ivshmem_ring_send(&prod, out, 16, 0);
	put_hdr(0, 4000, 0);	/* longer than the rest of the area */
	tap_is(ivshmem_ring_peek(&cons, &rd, &len), -EBADMSG, "record past the end: EBADMSG");
	put_hdr(0, 16, 0);
	tap_is(ivshmem_ring_peek(&cons, &rd, &len), -EBADMSG, "the error is sticky");

	fresh();
	ivshmem_ring_send(&prod, out, 16, 0);
	put_hdr(0, 0x7fffffff, 0);
	tap_is(ivshmem_ring_peek(&cons, &rd, &len), -EBADMSG, "huge record length: EBADMSG");

	fresh();
	ivshmem_ring_send(&prod, out, 16, 0);
	put_hdr(0, 16, 1);	/* a pad at offset 0 */
	tap_is(ivshmem_ring_peek(&cons, &rd, &len), -EBADMSG, "pad at offset 0: EBADMSG");

	/* A wrong lap tag is "empty", whatever the rest says: a hostile peer stalls only itself. */
	fresh();
	ivshmem_ring_send(&prod, out, 16, 0);
	hdr[0] = htole32(16);
	hdr[1] = htole32(0x12345678);
	memcpy(data, hdr, 8);
	tap_is(ivshmem_ring_peek(&cons, &rd, &len), -EAGAIN, "wrong lap tag: empty, not data");
	put_hdr(0, 16, 0);
	tap_is(ivshmem_ring_peek(&cons, &rd, &len), 0, "... and the record once the tag is right");

	/* A stale record of an older lap at the consumer's position is not a record. */
	fresh();
	put64(0, 2 * CAP);
	put64(128, 2 * CAP);
	ivshmem_ring_attach(&cons, ctrl, data, CAP, IVSHMEM_RING_CONSUMER);
	put_hdr_pos(0, CAP, 16, 0);	/* lap 1's header at offset 0 */
	tap_is(ivshmem_ring_peek(&cons, &rd, &len), -EAGAIN, "an older lap's header reads as empty");

	/* A pad with the wrong length near the end. */
	fresh();
	put64(0, CAP - 64);
	put64(128, CAP - 64);
	ivshmem_ring_attach(&prod, ctrl, data, CAP, IVSHMEM_RING_PRODUCER);
	ivshmem_ring_attach(&cons, ctrl, data, CAP, IVSHMEM_RING_CONSUMER);
	ivshmem_ring_send(&prod, out, 100, 0);	/* pads 64 bytes, record at 0 */
	tap_ok(ivshmem_ring_recv(&cons, out, sizeof(out), 0) == 100, "a pad is skipped");
	ivshmem_ring_send(&prod, out, 100, 0);
	put64(0, 2 * CAP - 64);
	put64(128, 2 * CAP - 64);
	ivshmem_ring_attach(&prod, ctrl, data, CAP, IVSHMEM_RING_PRODUCER);
	ivshmem_ring_attach(&cons, ctrl, data, CAP, IVSHMEM_RING_CONSUMER);
	ivshmem_ring_send(&prod, out, 100, 0);
	put_hdr_pos(CAP - 64, 2 * CAP - 64, 8, 1);
	tap_is(ivshmem_ring_peek(&cons, &rd, &len), -EBADMSG, "pad of the wrong length: EBADMSG");

	/* The producer refuses a consumer index that runs ahead or goes back. */
	fresh();
	ivshmem_ring_send(&prod, out, 16, 0);
	put64(128, 64);
	tap_is(ivshmem_ring_used(&prod), -EBADMSG, "consumer index beyond what was sent: EBADMSG");
	fresh();
	ivshmem_ring_send(&prod, out, 16, 0);
	ivshmem_ring_recv(&cons, out, sizeof(out), 0);
	ivshmem_ring_used(&prod);
	put64(128, (uint64_t)-8);
	tap_is(ivshmem_ring_used(&prod), -EBADMSG, "consumer index going backwards: EBADMSG");

	/* Attaching to garbage. */
	fresh();
	put64(0, CAP);
	put64(128, 0);
	tap_is(ivshmem_ring_attach(&cons, ctrl, data, CAP, IVSHMEM_RING_CONSUMER), -EBADMSG,
	       "attach to a ring fuller than cap - 8: EBADMSG");
	put64(0, 1ull << 40);
	put64(128, 0);
	tap_is(ivshmem_ring_attach(&cons, ctrl, data, CAP, IVSHMEM_RING_CONSUMER), -EBADMSG,
	       "attach to inconsistent indices: EBADMSG");
}

int main(void)
{
	test_basics();
	test_wrap();
	test_zero_copy_and_batching();
	test_suppression();
	test_corruption();
	return tap_done();
}
