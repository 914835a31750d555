// SPDX-License-Identifier: MIT
/*
 * lib/guest: uses core.
 *
 * Removal-safe copies for guest regions (ivshmem_read_checked/_write_checked).
 *
 * When a PCI device is hot-removed the kernel revokes sysfs resource
 * mappings, and the next access raises SIGBUS; a /dev/mem mapping is not
 * revoked and simply reads all-ones. A checked copy therefore (1) runs under
 * a SIGBUS guard that turns the signal into -ENODEV, and (2) afterwards checks
 * that the same device (same address, same BAR2) is still there, so bytes read
 * during a removal are never returned as good. A truncated host file raises
 * SIGBUS the same way and is reported likewise.
 *
 * The guard is a process-wide SIGBUS handler installed on first use. A SIGBUS
 * outside a checked copy is passed on to the handler that was there before
 * (or the default action, which kills the process as it would have anyway).
 */
#include "core/region_internal.h"
#include "core/error.h"

#include "ivshmem/pci.h"
#include "guest/pci_internal.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>

static struct sigaction previous;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int install_error;
static __thread sigjmp_buf *guard_jmp;

static void on_sigbus(int sig, siginfo_t *info, void *ctx)
{
	sigjmp_buf *jmp = guard_jmp;

	if (jmp) {
		guard_jmp = NULL;
		siglongjmp(*jmp, 1);
	}
	/* Not ours: behave as if we were never installed. */
	if (previous.sa_flags & SA_SIGINFO) {
		previous.sa_sigaction(sig, info, ctx);
	} else if (previous.sa_handler != SIG_IGN && previous.sa_handler != SIG_DFL) {
		previous.sa_handler(sig);
	} else {
		signal(sig, SIG_DFL);
		raise(sig);
	}
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

static const struct ivshmem_guest_head *guest_head(const struct ivshmem_region *r)
{
	switch (r->kind) {
	case IVSHMEM_BACKEND_SYSFS:
	case IVSHMEM_BACKEND_DEVMEM:
	case IVSHMEM_BACKEND_VFIO:
		return r->priv;
	default:
		return NULL;
	}
}

int ivshmem_region_present(const struct ivshmem_region *r)
{
	const struct ivshmem_guest_head *h = guest_head(r);
	uint64_t phys, size;

	if (!h)
		return 0;	/* host files, server peers and the driver report removal themselves */
	if (!ivshmem_pci_present(h->bdf) || ivshmem_pci_bar(h->bdf, 2, &phys, &size) < 0 ||
	    phys != h->mem_phys)
		return ivshmem_fail(ENODEV, "%s: the device was removed while mapped", h->bdf);
	return 0;
}

int ivshmem_guarded(struct ivshmem_region *r, int (*fn)(struct ivshmem_region *r, void *arg),
		    void *arg)
{
	sigjmp_buf jmp;
	int ret;

	pthread_once(&install_once, install);
	if (install_error)
		return ivshmem_fail(install_error, "cannot install the SIGBUS guard: %s",
				    strerror(install_error));
	if (sigsetjmp(jmp, 1)) {
		const struct ivshmem_guest_head *h = guest_head(r);

		if (h)
			return ivshmem_fail(ENODEV, "%s: SIGBUS: the device was removed while mapped",
					    h->bdf);
		return ivshmem_fail(ENODEV, "SIGBUS: the region's memory went away "
				    "(backing file truncated?)");
	}
	guard_jmp = &jmp;
	ret = fn(r, arg);
	guard_jmp = NULL;
	if (ret < 0)
		return ret;
	/* Bytes read during a removal are not good even without a fault (/dev/mem). */
	return ivshmem_region_present(r) ?: ret;
}

struct copy_args {
	uint64_t off;
	void *buf;
	size_t len;
	bool write;
};

static int do_copy(struct ivshmem_region *r, void *arg)
{
	struct copy_args *c = arg;

	return c->write ? ivshmem_write(r, c->off, c->buf, c->len)
			: ivshmem_read(r, c->off, c->buf, c->len);
}

static int checked_copy(struct ivshmem_region *r, uint64_t off, void *buf, size_t len, bool write)
{
	struct copy_args c = { .off = off, .buf = buf, .len = len, .write = write };

	return ivshmem_guarded(r, do_copy, &c);
}

int ivshmem_read_checked(const struct ivshmem_region *r, uint64_t offset, void *dst, size_t len)
{
	return checked_copy((struct ivshmem_region *)r, offset, dst, len, false);
}

int ivshmem_write_checked(struct ivshmem_region *r, uint64_t offset, const void *src, size_t len)
{
	return checked_copy(r, offset, (void *)src, len, true);
}
