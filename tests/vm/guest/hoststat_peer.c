// SPDX-License-Identifier: MIT
/*
 * Guest half of tests/vm/test_hoststat.py, in the L1 guest (no L2): attaches
 * a formatted region file to /dev/ivshmem-host as NAME (own ID 0, one
 * vector) and plays the guest kernel's part of ivshmem_hoststat.ko's request
 * protocol (docs/host-kernel.md, "Example module") from user space: its
 * eventfds stand for the doorbells (own vector 0 = the module's, peer 1
 * vector 0 = ours). Prints TAP lines on stdout, then "# PEER-READY" and keeps
 * the region attached until SIGTERM: closing the attaching file is the
 * region's removal.
 *   hoststat_peer FILE NAME ROUNDS [GO]   requests once the file GO exists
 *   hoststat_peer FILE NAME hold          only attach (no requests, no checks)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "ivshmem/layout.h"
#include "ivshmem/region.h"
#include "../../../include/uapi/linux/ivshmem_host.h"

#include "check.h"

/* docs/host-kernel.md, "The request/answer protocol" */
enum { H_STATE = 0, H_VERSION = 4, H_PEER = 8, H_VECTOR = 12, H_ANSWERED = 24, H_STATUS = 32,
       H_VALUE = 40, H_RECORD_SEQ = 48 };
enum { G_SEQ = 128, G_COMMAND = 136, G_FIGURE = 140, G_REPLY_PEER = 144, G_REPLY_VECTOR = 148 };
enum { CMD_PUBLISH = 1, CMD_GET = 2 };
enum { FIG_MEM_TOTAL_KB = 1, FIG_MEM_FREE_KB = 2, FIG_RUN_DELAY = 0x100 };
#define NO_REPLY	0xffffffffu
#define REPLY_PEER	1

struct peer {
	uint8_t *req;		/* the request area in our mapping */
	int own_efd;		/* the module's own vector 0: "ring the host" */
	int reply_efd;		/* peer 1 vector 0: the module rings it to answer */
};

struct answer {
	uint32_t status;
	uint64_t value, record_seq;
};

static uint32_t ld32(const uint8_t *p)
{
	return __atomic_load_n((const uint32_t *)p, __ATOMIC_ACQUIRE);
}

static uint64_t ld64(const uint8_t *p)
{
	return __atomic_load_n((const uint64_t *)p, __ATOMIC_ACQUIRE);
}

static void st32(uint8_t *p, uint32_t v)
{
	__atomic_store_n((uint32_t *)p, v, __ATOMIC_RELAXED);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* One request; 0 with @a filled, -ETIMEDOUT, -EBADMSG (a wrong "answered"). */
static int request(struct peer *p, uint32_t command, uint32_t figure, bool doorbell,
		   struct answer *a)
{
	uint64_t seq = ld64(p->req + H_ANSWERED) + 1, one = 1, got;
	struct pollfd pfd = { .fd = p->reply_efd, .events = POLLIN };
	int64_t end = now_ms() + 5000;

	st32(p->req + G_COMMAND, command);
	st32(p->req + G_FIGURE, figure);
	st32(p->req + G_REPLY_PEER, doorbell ? REPLY_PEER : NO_REPLY);
	st32(p->req + G_REPLY_VECTOR, 0);
	__atomic_store_n((uint64_t *)(p->req + G_SEQ), seq, __ATOMIC_RELEASE);
	if (write(p->own_efd, &one, sizeof(one)) != sizeof(one))
		return -errno;
	if (doorbell) {
		if (poll(&pfd, 1, 5000) != 1 || read(p->reply_efd, &got, sizeof(got)) != sizeof(got))
			return -ETIMEDOUT;
	} else {
		while (ld64(p->req + H_ANSWERED) != seq && now_ms() < end)
			usleep(1000);
	}
	if (ld64(p->req + H_ANSWERED) != seq)
		return -EBADMSG;
	a->status = ld32(p->req + H_STATUS);
	a->value = ld64(p->req + H_VALUE);
	a->record_seq = ld64(p->req + H_RECORD_SEQ);
	return 0;
}

static uint64_t meminfo_kb(const char *key)
{
	char line[256];
	unsigned long long v = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) && sscanf(line + strlen(key), " %llu", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

/* Attach @file as @name with our two eventfds bound; the device fd. */
static int attach(const char *file, const char *name, struct peer *p)
{
	struct ivshmem_host_attach a = {
		.abi_version = IVSHMEM_HOST_ABI_VERSION, .own_id = 0, .nvectors = 1,
	};
	struct ivshmem_host_bind_own own = { .vector = 0 };
	struct ivshmem_host_bind_peer peer = { .peer = REPLY_PEER, .vector = 0 };
	int dev = open("/dev/ivshmem-host", O_RDWR | O_CLOEXEC);

	a.fd = open(file, O_RDWR | O_CLOEXEC);
	snprintf(a.name, sizeof(a.name), "%s", name);
	p->own_efd = eventfd(0, EFD_CLOEXEC);
	p->reply_efd = eventfd(0, EFD_CLOEXEC);
	own.fd = p->own_efd;
	peer.fd = p->reply_efd;
	if (dev < 0 || a.fd < 0 || ioctl(dev, IVSHMEM_HOST_IOCTL_ATTACH, &a) < 0 ||
	    ioctl(dev, IVSHMEM_HOST_IOCTL_BIND_OWN, &own) < 0 ||
	    ioctl(dev, IVSHMEM_HOST_IOCTL_BIND_PEER, &peer) < 0) {
		perror("hoststat_peer: attach");
		return -1;
	}
	close(a.fd);
	return dev;
}

static void on_term(int sig)
{
	(void)sig;
}

/* Say we are ready, then hold until SIGTERM (blocked until sigsuspend: none is lost). */
static void ready_until_term(void)
{
	sigset_t term, none;

	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigemptyset(&none);
	sigprocmask(SIG_BLOCK, &term, NULL);
	signal(SIGTERM, on_term);
	printf("# PEER-READY\n");
	sigsuspend(&none);
}

int main(int argc, char **argv)
{
	unsigned long published = 0, answers = 0, rounds;
	uint64_t mem_total = meminfo_kb("MemTotal:"), last_record = 0;
	struct ivshmem_region *r;
	struct ivshmem_section s;
	struct answer a;
	struct peer p;
	int64_t end;
	int dev, ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: hoststat_peer FILE NAME ROUNDS|hold [GO]\n");
		return 2;
	}
	if (!strcmp(argv[3], "hold")) {
		dev = attach(argv[1], argv[2], &p);
		if (dev < 0)
			return 2;
		ready_until_term();
		return 0;
	}
	rounds = strtoul(argv[3], NULL, 0);
	if (ivshmem_open(&r, argv[1], NULL) < 0 || ivshmem_layout_find(r, "hoststat-req", &s) < 0) {
		fprintf(stderr, "hoststat_peer: %s\n", ivshmem_errmsg());
		return 2;
	}
	p.req = (uint8_t *)ivshmem_base(r) + s.offset;
	dev = attach(argv[1], argv[2], &p);
	if (dev < 0)
		return 2;
	for (end = now_ms() + 30000; ld32(p.req + H_STATE) != 1 && now_ms() < end;)
		usleep(10000);
	check(ld32(p.req + H_STATE) == 1 && ld32(p.req + H_VERSION) == 1,
	      "the module serves requests (host block state 1, version 1)");
	check(ld32(p.req + H_PEER) == 0 && ld32(p.req + H_VECTOR) == 0,
	      "the host block names the module's peer ID 0 and vector 0");
	while (argc == 5 && access(argv[4], F_OK) < 0)
		usleep(20000);

	for (unsigned long i = 0; i < rounds; i++) {
		bool publish = i % 2 == 0;

		ret = request(&p, publish ? CMD_PUBLISH : CMD_GET, FIG_MEM_TOTAL_KB, true, &a);
		if (ret || a.status)
			break;
		answers++;
		if (publish && a.record_seq <= last_record)
			break;
		if (!publish && a.value != mem_total)
			break;
		published += publish;
		last_record = publish ? a.record_seq : last_record;
	}
	check(answers == rounds, "%lu requests over doorbells, each answered and rung back "
	      "(PUBLISH: record seq grows, GET: mem_total_kb = MemTotal %" PRIu64 ") (%lu)",
	      rounds, mem_total, answers);
	ret = request(&p, CMD_GET, FIG_MEM_FREE_KB, false, &a);
	check(!ret && !a.status && a.value > 0 && a.value <= mem_total,
	      "a request with no reply doorbell is answered in the area (mem_free_kb %" PRIu64 ")",
	      a.value);
	ret = request(&p, 99, 0, true, &a);
	check(!ret && a.status == EINVAL, "an unknown command: status EINVAL (%d, %u)", ret,
	      a.status);
	ret = request(&p, CMD_GET, FIG_RUN_DELAY + 64, true, &a);
	check(!ret && a.status == EINVAL, "a figure past the vCPUs: status EINVAL (%d, %u)", ret,
	      a.status);
	ret = request(&p, CMD_GET, FIG_RUN_DELAY, true, &a);
	check(!ret && !a.status, "GET run_delay of vCPU 0: %" PRIu64 " ns", a.value);
	printf("# PEER requests=%lu published=%lu\n", rounds + 4, published);
	ready_until_term();
	close(dev);	/* the region's removal */
	ivshmem_close(r);
	return check_failures ? 1 : 0;
}
