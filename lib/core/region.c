// SPDX-License-Identifier: MIT
/*
 * lib/core: the backend-independent half of a region object: accessors,
 * dispatch to the backend's ops, bounds-checked copies and waiting on event
 * fds. Uses only core (errors, iomem). Opening is lib/open's job.
 */
#include "core/region_internal.h"

#include "core/error.h"
#include "core/evfd.h"
#include "ivshmem/iomem.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const backend_names[] = {
	[IVSHMEM_BACKEND_AUTO] = "auto",     [IVSHMEM_BACKEND_FILE] = "file",
	[IVSHMEM_BACKEND_SERVER] = "server", [IVSHMEM_BACKEND_DRIVER] = "driver",
	[IVSHMEM_BACKEND_SYSFS] = "sysfs",   [IVSHMEM_BACKEND_VFIO] = "vfio",
	[IVSHMEM_BACKEND_DEVMEM] = "devmem",
};

const char *ivshmem_backend_name(enum ivshmem_backend b)
{
	if ((unsigned int)b >= sizeof(backend_names) / sizeof(backend_names[0]))
		return "unknown";
	return backend_names[b];
}

int ivshmem_backend_parse(const char *name, enum ivshmem_backend *out)
{
	for (size_t i = 0; i < sizeof(backend_names) / sizeof(backend_names[0]); i++) {
		if (strcmp(name, backend_names[i]) == 0) {
			*out = (enum ivshmem_backend)i;
			return 0;
		}
	}
	return ivshmem_fail(EINVAL,
			    "unknown backend '%s' (auto, file, server, driver, sysfs, vfio, devmem)",
			    name);
}

void ivshmem_close(struct ivshmem_region *r)
{
	if (!r)
		return;
	ivshmem_mapguard_remove(r);
	if (r->ops && r->ops->close)
		r->ops->close(r);
	free(r);
}

void *ivshmem_base(const struct ivshmem_region *r)
{
	return r->base;
}

uint64_t ivshmem_size(const struct ivshmem_region *r)
{
	return r->size;
}

enum ivshmem_backend ivshmem_backend_of(const struct ivshmem_region *r)
{
	return r->kind;
}

bool ivshmem_is_device_memory(const struct ivshmem_region *r)
{
	return r->device_memory;
}

int ivshmem_own_id(const struct ivshmem_region *r)
{
	return r->own_id;
}

unsigned int ivshmem_vectors(const struct ivshmem_region *r)
{
	return r->vectors;
}

static int unsupported(const struct ivshmem_region *r, const char *what)
{
	return ivshmem_fail(ENOTSUP, "the %s backend cannot %s", ivshmem_backend_name(r->kind),
			    what);
}

int ivshmem_notify(struct ivshmem_region *r, uint16_t peer, uint16_t vector)
{
	if (!r->ops->notify)
		return unsupported(r, "ring doorbells (no doorbell register or eventfds)");
	return r->ops->notify(r, peer, vector);
}

int ivshmem_event_fd(struct ivshmem_region *r, unsigned int vector)
{
	if (!r->ops->event_fd)
		return unsupported(r, "deliver interrupts (use the driver or vfio backend, or poll)");
	if (vector >= r->vectors)
		return ivshmem_fail(EINVAL, "vector %u out of range (this region has %u)", vector,
				    r->vectors);
	return r->ops->event_fd(r, vector);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Take one pending count among @pfd: 1 taken, 0 none, <0 error. */
static int take_one(const struct pollfd *pfd, unsigned int n, unsigned int first, uint64_t *count)
{
	for (unsigned int i = 0; i < n; i++) {
		uint64_t c;
		int ret;

		if (!(pfd[i].revents & (POLLIN | POLLERR | POLLHUP | POLLNVAL)))
			continue;
		if (pfd[i].revents & (POLLERR | POLLHUP | POLLNVAL))
			return ivshmem_fail(ENODEV, "vector %u: device gone", first + i);
		ret = ivshmem_evfd_take(pfd[i].fd, &c);
		if (ret < 0)
			return ret;
		if (ret == 0)
			continue;	/* another reader took it */
		if (count)
			*count = c;
		return 1;
	}
	return 0;
}

int ivshmem_wait(struct ivshmem_region *r, int vector, int timeout_ms, uint64_t *count)
{
	unsigned int first = vector < 0 ? 0 : (unsigned int)vector;
	unsigned int n = vector < 0 ? r->vectors : 1;
	struct pollfd pfd[256];
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;

	if (!r->ops->event_fd)
		return unsupported(r, "deliver interrupts (use the driver or vfio backend, or poll)");
	if (vector >= 0 && (unsigned int)vector >= r->vectors)
		return ivshmem_fail(EINVAL, "vector %d out of range (this region has %u)", vector,
				    r->vectors);
	if (n == 0)
		return ivshmem_fail(ENOTSUP, "this region has no interrupt vectors");
	if (n > sizeof(pfd) / sizeof(pfd[0]))
		n = sizeof(pfd) / sizeof(pfd[0]);
	for (unsigned int i = 0; i < n; i++) {
		pfd[i].fd = r->ops->event_fd(r, first + i);
		if (pfd[i].fd < 0)
			return pfd[i].fd;
		pfd[i].events = POLLIN;
	}
	/* Every pass honours the deadline, whatever the fds report (a stolen count, say). */
	for (;;) {
		int left = deadline < 0 ? -1 : (int)(deadline - now_ms());
		int ret;

		if (deadline >= 0 && left < 0)
			left = 0;
		ret = poll(pfd, n, left);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return ivshmem_fail(errno, "poll: %s", strerror(errno));
		if (ret > 0) {
			ret = take_one(pfd, n, first, count);
			if (ret != 0)
				return ret;
		}
		if (deadline >= 0 && now_ms() >= deadline)
			return 0;
	}
}

static int check_range(const struct ivshmem_region *r, uint64_t offset, size_t len)
{
	if (offset > r->size || len > r->size - offset)
		return ivshmem_fail(ERANGE,
				    "offset %llu + length %zu is outside the region (%llu bytes)",
				    (unsigned long long)offset, len, (unsigned long long)r->size);
	return 0;
}

int ivshmem_read(const struct ivshmem_region *r, uint64_t offset, void *dst, size_t len)
{
	int ret = check_range(r, offset, len);

	if (ret < 0)
		return ret;
	if (r->device_memory)
		ivshmem_iomem_read(dst, (const char *)r->base + offset, len);
	else
		memcpy(dst, (const char *)r->base + offset, len);
	return ivshmem_check_mapping(r);
}

int ivshmem_write(struct ivshmem_region *r, uint64_t offset, const void *src, size_t len)
{
	int ret = check_range(r, offset, len);

	if (ret < 0)
		return ret;
	if (r->device_memory)
		ivshmem_iomem_write((char *)r->base + offset, src, len);
	else
		memcpy((char *)r->base + offset, src, len);
	return ivshmem_check_mapping(r);
}

int ivshmem_peer_list(struct ivshmem_region *r, uint16_t *ids, size_t max)
{
	if (!r->ops->peer_list)
		return unsupported(r, "list peers (only server peers know them)");
	return r->ops->peer_list(r, ids, max);
}

int ivshmem_peer_vectors(struct ivshmem_region *r, uint16_t peer)
{
	if (!r->ops->peer_vectors)
		return unsupported(r, "tell a peer's vectors (only server peers know them)");
	return r->ops->peer_vectors(r, peer);
}

int ivshmem_control_fd(struct ivshmem_region *r)
{
	if (!r->ops->control_fd)
		return unsupported(r, "report peer events (only server peers get them)");
	return r->ops->control_fd(r);
}

int ivshmem_next_peer_event(struct ivshmem_region *r, struct ivshmem_peer_event *ev)
{
	if (!r->ops->next_peer_event)
		return unsupported(r, "report peer events (only server peers get them)");
	return r->ops->next_peer_event(r, ev);
}
