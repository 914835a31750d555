// SPDX-License-Identifier: MIT
/* lib/core: the thread-local "why did it fail" sentence behind ivshmem_errmsg(). */
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>

static __thread char last_error[IVSHMEM_ERRMSG_MAX] = "no error";

const char *ivshmem_errmsg(void)
{
	return last_error;
}

int ivshmem_fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return -err;
}
