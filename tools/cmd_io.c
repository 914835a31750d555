// SPDX-License-Identifier: MIT
/* ivshmem dump, read, write and watch: bytes in and out of a region, removal-guarded. */
#include "dev.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void hex_line(uint64_t addr, const uint8_t *b, size_t n)
{
	printf("%08" PRIx64 "  ", addr);
	for (size_t i = 0; i < 16; i++) {
		if (i < n)
			printf("%02x ", b[i]);
		else
			printf("   ");
		if (i == 7)
			putchar(' ');
	}
	printf(" |");
	for (size_t i = 0; i < n; i++)
		putchar(b[i] >= 0x20 && b[i] < 0x7f ? b[i] : '.');
	printf("|\n");
}

/* hexdump -C style; identical lines collapse into one "*". */
static void hexdump(uint64_t addr, const uint8_t *b, size_t n, uint8_t prev[16], bool *have_prev,
		    bool *starred)
{
	for (size_t i = 0; i < n; i += 16) {
		size_t k = n - i < 16 ? n - i : 16;

		if (k == 16 && *have_prev && memcmp(prev, b + i, 16) == 0) {
			if (!*starred)
				printf("*\n");
			*starred = true;
			continue;
		}
		hex_line(addr + i, b + i, k);
		memcpy(prev, b + i, k);
		*have_prev = k == 16;
		*starred = false;
	}
}

struct hexdump_state {
	uint8_t prev[16];
	bool have_prev, starred;
};

/* A consumer of the bytes copied out of the region: 0, or an exit code. */
typedef int (*chunk_sink)(const struct ivshmem_cmd *cmd, uint64_t addr, const uint8_t *buf,
			  size_t n, void *state);

static int sink_hexdump(const struct ivshmem_cmd *cmd, uint64_t addr, const uint8_t *buf,
			size_t n, void *state)
{
	struct hexdump_state *h = state;

	(void)cmd;
	hexdump(addr, buf, n, h->prev, &h->have_prev, &h->starred);
	return 0;
}

static int sink_stdout(const struct ivshmem_cmd *cmd, uint64_t addr, const uint8_t *buf, size_t n,
		       void *state)
{
	(void)addr;
	(void)state;
	if (cmd_write_all(STDOUT_FILENO, buf, n) < 0)
		return cmd_error(cmd, EXIT_FAIL, "writing to stdout: %s", strerror(errno));
	return 0;
}

#define RANGE_OPTS (ALLOW(OPT_BACKEND) | ALLOW(OPT_OFFSET) | ALLOW(OPT_LENGTH) | ALLOW(OPT_SECTION))

/*
 * The shared body of `dump` and `read`: parse DEV and the range, then copy the
 * range out chunk by chunk (removal-guarded) into @sink. *@end_out is the
 * offset after the last byte, for dump's closing line.
 */
static int copy_out(const struct ivshmem_cmd *cmd, int argc, char **argv, uint64_t default_len,
		    chunk_sink sink, void *state, uint64_t *end_out)
{
	const char *target = NULL;
	uint64_t start = 0, len = 0, done = 0;
	struct cmd_progress progress;
	struct opts o;
	struct dev d;
	uint8_t *buf;
	int ret;

	ret = dev_open_one(cmd, argc, argv, RANGE_OPTS | ALLOW(OPT_PROGRESS), IVSHMEM_OPEN_READONLY,
			   &o, &d, &target);
	if (ret)
		return ret;
	ret = dev_range(cmd, &d, &o, default_len, &start, &len);
	buf = malloc(CHUNK);
	if (!ret && !buf)
		ret = cmd_error(cmd, EXIT_FAIL, "out of memory");
	cmd_progress_start(&progress, o.progress && !ret, len);
	while (!ret && done < len) {
		size_t n = len - done < CHUNK ? (size_t)(len - done) : CHUNK;

		ret = dev_guarded_copy(cmd, &d, false, start + done, buf, n);
		if (!ret)
			ret = sink(cmd, start + done, buf, n, state);
		done += n;
		cmd_progress_update(&progress, done);
	}
	cmd_progress_end(&progress, done);
	*end_out = start + len;
	free(buf);
	ivshmem_close(d.r);
	return ret;
}

int cmd_dump(int argc, char **argv)
{
	struct hexdump_state h = { .have_prev = false };
	uint64_t end;
	int ret = copy_out(cmd_find("dump"), argc, argv, 256, sink_hexdump, &h, &end);

	if (!ret)
		printf("%08" PRIx64 "\n", end);
	return ret;
}

int cmd_read(int argc, char **argv)
{
	uint64_t end;

	return copy_out(cmd_find("read"), argc, argv, 0, sink_stdout, NULL, &end);
}

/*
 * write: stdin into [start, start + room). With --length, stop after that many
 * bytes; without, input that does not fit is an error (1) after writing what fit.
 */
int cmd_write(int argc, char **argv)
{
	const struct ivshmem_cmd *cmd = cmd_find("write");
	const char *target = NULL;
	uint64_t start = 0, room = 0, done = 0;
	struct cmd_progress progress;
	struct opts o;
	struct dev d;
	uint8_t *buf;
	int ret;

	ret = dev_open_one(cmd, argc, argv, RANGE_OPTS | ALLOW(OPT_PROGRESS), 0, &o, &d, &target);
	if (ret)
		return ret;
	ret = dev_range(cmd, &d, &o, 0, &start, &room);
	buf = malloc(CHUNK);
	if (!ret && !buf)
		ret = cmd_error(cmd, EXIT_FAIL, "out of memory");
	cmd_progress_start(&progress, o.progress && !ret, o.have_length ? room : 0);
	while (!ret) {
		/* One byte more than fits, to notice input that is too long. */
		uint64_t want64 = o.have_length ? room - done : room - done + 1;
		size_t want = want64 < CHUNK ? (size_t)want64 : CHUNK;
		ssize_t n;

		if (want == 0)
			break;
		n = read(STDIN_FILENO, buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = cmd_error(cmd, EXIT_FAIL, "reading stdin: %s", strerror(errno));
			break;
		}
		if (n == 0)
			break;
		if ((uint64_t)n > room - done) {
			/* Write nothing partial past the end: say how much fitted. */
			n = (ssize_t)(room - done);
			ret = n ? dev_guarded_copy(cmd, &d, true, start + done, buf, (size_t)n) : 0;
			done += (uint64_t)n;
			if (!ret)
				ret = cmd_error(cmd, EXIT_FAIL, "input does not fit: the %s ends %" PRIu64
						" bytes after offset %" PRIu64 " (%" PRIu64 " bytes written)",
						o.section ? "section" : "region", room, o.offset, done);
			break;
		}
		ret = dev_guarded_copy(cmd, &d, true, start + done, buf, (size_t)n);
		done += (uint64_t)n;
		cmd_progress_update(&progress, done);
	}
	cmd_progress_end(&progress, done);
	free(buf);
	ivshmem_close(d.r);
	return ret;
}

int cmd_watch(int argc, char **argv)
{
	const struct ivshmem_cmd *cmd = cmd_find("watch");
	uint8_t *cur = NULL, *last = NULL;
	const char *target = NULL;
	uint64_t start, len;
	struct opts o;
	struct dev d;
	int64_t deadline;
	int ret;

	ret = dev_open_one(cmd, argc, argv,
			   RANGE_OPTS | ALLOW(OPT_TIMEOUT) | ALLOW(OPT_INTERVAL),
			   IVSHMEM_OPEN_READONLY, &o, &d, &target);
	if (ret)
		return ret;
	deadline = o.timeout_ms < 0 ? -1 : cmd_now_ms() + o.timeout_ms;
	ret = dev_range(cmd, &d, &o, 64, &start, &len);
	if (!ret && len > CHUNK)
		ret = cmd_error(cmd, EXIT_USAGE, "--length: watch at most %d bytes", CHUNK);
	if (!ret) {
		cur = malloc(len ? len : 1);
		last = malloc(len ? len : 1);
		if (!cur || !last)
			ret = cmd_error(cmd, EXIT_FAIL, "out of memory");
	}
	for (bool first = true; !ret; first = false) {
		ret = dev_guarded_copy(cmd, &d, false, start, cur, (size_t)len);
		if (ret)
			break;
		if (first || memcmp(cur, last, (size_t)len) != 0) {
			uint8_t prev[16];
			bool have_prev = false, starred = false;

			hexdump(start, cur, (size_t)len, prev, &have_prev, &starred);
			printf("--\n");
			fflush(stdout);
			memcpy(last, cur, (size_t)len);
		}
		if (deadline >= 0 && cmd_now_ms() >= deadline) {
			ret = EXIT_OK;
			break;
		}
		usleep((useconds_t)o.interval_ms * 1000);
	}
	free(cur);
	free(last);
	ivshmem_close(d.r);
	return ret;
}

