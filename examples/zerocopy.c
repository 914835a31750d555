// SPDX-License-Identifier: MIT
/*
 * Zero-copy with the SPSC ring: the producer reserves room in shared memory,
 * writes the record in place and commits it; the consumer peeks at it in
 * place and releases it. No copy on either side (docs/ring.md).
 *
 *     zerocopy FILE [RECORDS]
 *
 * The ring lives in a raw layout section of FILE; the producer is this
 * process, the consumer a forked child. The ring has no wake-ups of its own
 * (a channel adds doorbells), so both sides poll, yielding the CPU.
 * Build: cc zerocopy.c $(pkg-config --cflags --libs libivshmem)
 */
#include <ivshmem.h>

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define RING_CAP (64u * 1024)

/* The record i: its length and a byte pattern both sides can compute. */
static size_t record_len(unsigned int i)
{
	return 1 + (i * 97) % 2000;
}

static uint8_t record_byte(unsigned int i, size_t k)
{
	return (uint8_t)(i + k * 7);
}

static int consume(uint8_t *sec, unsigned int records)
{
	struct ivshmem_ring ring;
	uint64_t bytes = 0;

	if (ivshmem_ring_attach(&ring, sec, sec + IVSHMEM_RING_CTRL_SIZE, RING_CAP,
				IVSHMEM_RING_CONSUMER) < 0)
		return 1;
	for (unsigned int i = 0; i < records;) {
		const uint8_t *p;
		size_t len;
		int ret = ivshmem_ring_peek(&ring, (const void **)&p, &len);

		if (ret == -EAGAIN) {
			sched_yield();	/* empty: a channel would sleep on a doorbell here */
			continue;
		}
		if (ret < 0) {
			fprintf(stderr, "zerocopy: peek: %s\n", strerror(-ret));
			return 1;
		}
		/* The record is read where the producer wrote it. */
		if (len != record_len(i))
			return fprintf(stderr, "zerocopy: record %u: length %zu\n", i, len) > 0;
		for (size_t k = 0; k < len; k++)
			if (p[k] != record_byte(i, k))
				return fprintf(stderr, "zerocopy: record %u: byte %zu\n", i, k) > 0;
		bytes += len;
		ivshmem_ring_release(&ring, 0);
		i++;
	}
	printf("consumer: %u records, %" PRIu64 " bytes, checked in place\n", records, bytes);
	return 0;
}

static int produce(uint8_t *sec, unsigned int records, pid_t consumer)
{
	struct ivshmem_ring ring;

	if (ivshmem_ring_attach(&ring, sec, sec + IVSHMEM_RING_CTRL_SIZE, RING_CAP,
				IVSHMEM_RING_PRODUCER) < 0)
		return 1;
	for (unsigned int i = 0; i < records;) {
		size_t len = record_len(i);
		uint8_t *p;
		int ret = ivshmem_ring_reserve(&ring, len, (void **)&p);

		if (ret == -EAGAIN) {
			int st;

			/* Full: wait for the consumer to release, unless it is gone. */
			if (waitpid(consumer, &st, WNOHANG) == consumer) {
				fprintf(stderr, "zerocopy: the consumer exited early\n");
				return 1;
			}
			sched_yield();
			continue;
		}
		if (ret < 0) {
			fprintf(stderr, "zerocopy: reserve: %s\n", strerror(-ret));
			return 1;
		}
		/* Build the record directly in shared memory, then publish it. */
		for (size_t k = 0; k < len; k++)
			p[k] = record_byte(i, k);
		ivshmem_ring_commit(&ring, len, 0);
		i++;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct ivshmem_open_opts create = { .flags = IVSHMEM_OPEN_CREATE, .size = 1 << 20 };
	unsigned int records = argc > 2 ? (unsigned int)atoi(argv[2]) : 100000;
	struct ivshmem_section s;
	struct ivshmem_region *r;
	int status, ret;
	uint8_t *sec;
	pid_t child;

	if (argc < 2 || records == 0) {
		fprintf(stderr, "usage: zerocopy FILE [RECORDS]\n");
		return 2;
	}
	if (ivshmem_open(&r, argv[1], &create) < 0) {
		fprintf(stderr, "zerocopy: %s\n", ivshmem_errmsg());
		return 1;
	}
	/* A fresh layout with one raw section: the ring's control block, then its data. */
	if (ivshmem_layout_format(r, "zerocopy") < 0 ||
	    ivshmem_layout_add(r, "ring", IVSHMEM_SECTION_RAW, IVSHMEM_RING_CTRL_SIZE + RING_CAP,
			       &s) < 0) {
		fprintf(stderr, "zerocopy: %s\n", ivshmem_errmsg());
		ivshmem_close(r);
		return 1;
	}
	sec = (uint8_t *)ivshmem_base(r) + s.offset;
	ivshmem_ring_format(sec, sec + IVSHMEM_RING_CTRL_SIZE);	/* empty, before either side attaches */
	fflush(stdout);
	child = fork();	/* the child shares the mapping: MAP_SHARED */
	if (child < 0) {
		perror("fork");
		ivshmem_close(r);
		return 1;
	}
	if (child == 0)
		_exit(consume(sec, records));
	ret = produce(sec, records, child);
	if (ret) {
		kill(child, SIGKILL);	/* it may be polling an empty ring */
		waitpid(child, &status, 0);
	} else if (waitpid(child, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		ret = 1;
	if (!ret)
		printf("producer: %u records reserved, written in place and committed\n", records);
	ivshmem_close(r);
	return ret;
}
