// SPDX-License-Identifier: MIT
/* Logging for ivshmem-server: stderr (foreground, systemd's journal) or syslog (daemon). */
#include "server.h"

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>

static enum log_target log_target = LOG_TO_STDERR;
static bool log_verbose;

void log_setup(enum log_target target, bool verbose)
{
	log_target = target;
	log_verbose = verbose;
	if (target == LOG_TO_SYSLOG)
		openlog("ivshmem-server", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_msg(int prio, const char *fmt, ...)
{
	static const char *const names[] = { "emerg", "alert", "crit", "error",
					     "warning", "notice", "info", "debug" };
	va_list ap;

	if (prio == LOG_DEBUG && !log_verbose)
		return;
	va_start(ap, fmt);
	if (log_target == LOG_TO_SYSLOG) {
		vsyslog(prio, fmt, ap);
	} else {
		fprintf(stderr, "ivshmem-server: %s: ", names[prio & 7]);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}
