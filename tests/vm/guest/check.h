/* SPDX-License-Identifier: MIT */
/*
 * TAP for the static guest programs (drvtest.c, hosttest.c): check() prints
 * "ok"/"not ok" and a description; the program exits non-zero when
 * check_failures is set.
 */
#ifndef IVSHMEM_VM_GUEST_CHECK_H
#define IVSHMEM_VM_GUEST_CHECK_H

#include <stdarg.h>
#include <stdio.h>

static int check_failures;

static inline __attribute__((format(printf, 2, 3))) void check(int cond, const char *fmt, ...)
{
	va_list ap;

	printf("%s", cond ? "ok " : "not ok ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	check_failures += !cond;
}

#endif
