/* SPDX-License-Identifier: MIT */
/*
 * lib/core: event counters (eventfds) whose open file description we share
 * with peers we do not trust. Uses only core (errors).
 *
 * An eventfd passed over a socket is the same open file description in every
 * process that holds it, and O_NONBLOCK is a flag of the description: any
 * peer can clear it for everyone (fcntl F_SETFL). So no call here depends on
 * it: reads use preadv2(RWF_NOWAIT), which the kernel honours on eventfds
 * whatever the flag (Linux >= 5.12; older kernels fall back to poll() then
 * read()), and writes poll() for room first, because the kernel has no
 * per-call non-blocking write for eventfds (pwritev2(RWF_NOWAIT) gives
 * EOPNOTSUPP and re-opening /proc/self/fd/N gives ENXIO for anonymous inodes).
 * The one window left: a peer that saturates its own counter and clears
 * O_NONBLOCK between our poll() and our write() stalls that write until it
 * reads its counter again.
 */
#ifndef IVSHMEM_CORE_EVFD_H
#define IVSHMEM_CORE_EVFD_H

#include <stdint.h>

/*
 * Take the count of event fd @fd without ever blocking. Returns 1 with
 * *@count set, 0 when nothing is pending (or another reader took it first),
 * -EPROTO when @fd does not behave as an event counter (a read of other than
 * 8 bytes), or -errno; ivshmem_errmsg() says which.
 */
int ivshmem_evfd_take(int fd, uint64_t *count);

/*
 * Add 1 to event fd @fd without blocking. A saturated counter has a wake-up
 * pending already: that is success. Returns 0 or -errno (never raises
 * SIGPIPE: a hung-up or failed fd is reported before any write).
 */
int ivshmem_evfd_signal(int fd);

/*
 * 0 when @fd is an eventfd; otherwise -EPROTO and a message naming @what and
 * what the fd is instead ("a pipe", "a regular file"). Reads
 * /proc/self/fd/@fd; without /proc it accepts any anonymous inode.
 */
int ivshmem_evfd_check(int fd, const char *what);

#endif
