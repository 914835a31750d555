// SPDX-License-Identifier: MIT
/*
 * lib/core: mappings that can vanish under us. Uses only core (errors).
 *
 * A host file can be truncated by any process that may write it, and a
 * guest's sysfs or VFIO mapping is revoked when the device is removed; the
 * next access to the lost range raises SIGBUS. Every region opened through
 * ivshmem_open() is registered here, and one process-wide SIGBUS handler
 * (installed with the first registration, chained to the handler that was
 * there before) does this for a fault inside a registered mapping:
 *
 *   1. marks the region lost (an atomic flag the region reads, never a lock);
 *   2. maps private anonymous zero pages over the whole mapping (MAP_FIXED,
 *      so the address stays valid and hugetlbfs alignment is respected);
 *   3. returns, and the faulting instruction runs again on the zero page.
 *
 * So a lost mapping costs nothing on any fast path: readers see zeros, and
 * the slow paths and copies (ivshmem_read/_write, layout, channel, checked
 * copies) ask ivshmem_mapping_check() and report -ENODEV. A SIGBUS anywhere
 * else, or of another kind (an unaligned access to device memory on arm64 is
 * BUS_ADRALN; a memory error is BUS_MCEERR_*), goes to the previous handler.
 *
 * The registry is a list that only grows: nodes are reused, never freed, so
 * the handler can walk it without a lock while other threads register.
 */
#define _GNU_SOURCE
#include "core/region_internal.h"

#include "core/error.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

struct ivshmem_mapguard {
	struct ivshmem_mapguard *next;	/* set before the node is published, then fixed */
	uintptr_t base, len;		/* atomic: read by the handler */
	int in_use;			/* atomic: 0 free for reuse */
	int lost;			/* atomic: set by the handler, never cleared while in use */
};

static struct ivshmem_mapguard *guards;	/* atomic head of the list */
static struct sigaction previous;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int install_error;

static void pass_on(int sig, siginfo_t *info, void *ctx)
{
	if (previous.sa_flags & SA_SIGINFO) {
		previous.sa_sigaction(sig, info, ctx);
	} else if (previous.sa_handler != SIG_IGN && previous.sa_handler != SIG_DFL) {
		previous.sa_handler(sig);
	} else {
		/* As if we were never installed: the fault repeats and kills. */
		signal(sig, SIG_DFL);
		raise(sig);
	}
}

/* Async-signal-safe: atomics, the mmap system call, sigaction/raise only. */
static void on_sigbus(int sig, siginfo_t *info, void *ctx)
{
	uintptr_t addr = (uintptr_t)info->si_addr;
	int saved = errno;

	if (info->si_code != BUS_ADRERR)
		goto not_ours;
	for (struct ivshmem_mapguard *g = __atomic_load_n(&guards, __ATOMIC_ACQUIRE); g;
	     g = g->next) {
		uintptr_t base, len;

		if (!__atomic_load_n(&g->in_use, __ATOMIC_ACQUIRE))
			continue;
		base = __atomic_load_n(&g->base, __ATOMIC_ACQUIRE);
		len = __atomic_load_n(&g->len, __ATOMIC_ACQUIRE);
		if (addr - base >= len)
			continue;
		/* Lost before zeros appear: whoever reads a zero can see the flag. */
		__atomic_store_n(&g->lost, 1, __ATOMIC_SEQ_CST);
		/*
		 * The raw system call: a libc or sanitizer wrapper of mmap() need not be
		 * async-signal-safe (ASan's interceptor, under load, sometimes failed
		 * here and the fault killed the process).
		 */
		if ((long)syscall(SYS_mmap, (void *)base, len, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0L) < 0)
			break;
		errno = saved;
		return;
	}
not_ours:
	errno = saved;
	pass_on(sig, info, ctx);
}

static void install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &previous) < 0)
		install_error = errno;
}

static struct ivshmem_mapguard *get_node(void)
{
	struct ivshmem_mapguard *g;

	for (g = __atomic_load_n(&guards, __ATOMIC_ACQUIRE); g; g = g->next) {
		int free_node = 0;

		if (__atomic_compare_exchange_n(&g->in_use, &free_node, 1, false, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED))
			return g;
	}
	g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->in_use = 1;
	g->next = __atomic_load_n(&guards, __ATOMIC_RELAXED);
	while (!__atomic_compare_exchange_n(&guards, &g->next, g, true, __ATOMIC_RELEASE,
					    __ATOMIC_RELAXED))
		;
	return g;
}

int ivshmem_mapguard_add(struct ivshmem_region *r)
{
	struct ivshmem_mapguard *g;

	pthread_once(&install_once, install);
	if (install_error)
		return ivshmem_fail(install_error, "cannot install the SIGBUS handler: %s",
				    strerror(install_error));
	if (!r->base || !r->size)
		return 0;
	g = get_node();
	if (!g)
		return ivshmem_fail(ENOMEM, "out of memory");
	__atomic_store_n(&g->lost, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&g->len, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&g->base, (uintptr_t)r->base, __ATOMIC_RELEASE);
	__atomic_store_n(&g->len, (uintptr_t)r->size, __ATOMIC_RELEASE);
	r->guard = g;
	return 0;
}

void ivshmem_mapguard_remove(struct ivshmem_region *r)
{
	struct ivshmem_mapguard *g = r->guard;

	if (!g)
		return;
	__atomic_store_n(&g->len, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&g->base, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&g->in_use, 0, __ATOMIC_RELEASE);
	r->guard = NULL;
}

bool ivshmem_mapguard_lost(const struct ivshmem_region *r)
{
	return r->guard && __atomic_load_n(&r->guard->lost, __ATOMIC_ACQUIRE);
}

int ivshmem_check_mapping(const struct ivshmem_region *r)
{
	if (!ivshmem_mapguard_lost(r))
		return 0;
	return ivshmem_fail(ENODEV, "SIGBUS: the region's memory went away under us (%s); "
			    "it reads as zeros now",
			    r->kind == IVSHMEM_BACKEND_FILE || r->kind == IVSHMEM_BACKEND_SERVER ?
			    "its file was truncated by another process" :
			    "the device was removed while mapped");
}
