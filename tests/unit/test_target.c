// SPDX-License-Identifier: MIT
/*
 * The one target parser (lib/open/target.c), table-driven. Runs in a scratch
 * directory holding the things a string can turn out to be on disk: a
 * regular file named like a PCI address, a socket, a FIFO, and /dev/null as
 * a character device.
 */
#include "ivshmem/target.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

enum { AUTO = IVSHMEM_BACKEND_AUTO, FILE_B = IVSHMEM_BACKEND_FILE,
       SERVER_B = IVSHMEM_BACKEND_SERVER, DRIVER_B = IVSHMEM_BACKEND_DRIVER,
       SYSFS_B = IVSHMEM_BACKEND_SYSFS };

struct row {
	const char *in;
	int want;			/* backend asked for */
	int ret;			/* 0 or -errno */
	enum ivshmem_target_kind kind;
	const char *arg;		/* path, normalized bdf, or index as text */
	const char *why;
};

static const struct row rows[] = {
	{ "", AUTO, -EINVAL, 0, NULL, "empty string" },
	{ "file:/dev/shm/x", AUTO, 0, IVSHMEM_TARGET_FILE, "/dev/shm/x", "file: prefix" },
	{ "file:a:b", AUTO, 0, IVSHMEM_TARGET_FILE, "a:b", "file: wins over a colon" },
	{ "file:", AUTO, -EINVAL, 0, NULL, "file: with no path" },
	{ "file:x", SERVER_B, -EINVAL, 0, NULL, "file: contradicts --backend server" },
	{ "server:/run/s", AUTO, 0, IVSHMEM_TARGET_SERVER, "/run/s", "server: prefix" },
	{ "server:/run/s", FILE_B, -EINVAL, 0, NULL, "server: contradicts --backend file" },
	{ "/dev/shm/new", AUTO, 0, IVSHMEM_TARGET_FILE, "/dev/shm/new", "absolute missing path" },
	{ "./sock", AUTO, 0, IVSHMEM_TARGET_SERVER, "./sock", "a socket is a server" },
	{ "sock", AUTO, 0, IVSHMEM_TARGET_SERVER, "sock", "an existing relative socket" },
	{ "./sock", FILE_B, 0, IVSHMEM_TARGET_FILE, "./sock", "--backend file takes it as a file" },
	{ "/dev/null", AUTO, 0, IVSHMEM_TARGET_DRIVER_NODE, "/dev/null", "a char device: driver" },
	{ "/dev/null", DRIVER_B, 0, IVSHMEM_TARGET_DRIVER_NODE, "/dev/null", "... also forced" },
	{ "/dev/null", SYSFS_B, -EINVAL, 0, NULL, "a path for a guest backend" },
	{ "./fifo", AUTO, 0, IVSHMEM_TARGET_FILE, "./fifo", "a FIFO goes to the file backend" },
	{ "00:10.0", AUTO, 0, IVSHMEM_TARGET_FILE, "00:10.0", "an existing relative path wins" },
	{ "pci:00:10.0", AUTO, 0, IVSHMEM_TARGET_PCI_ADDRESS, "0000:00:10.0", "pci: always PCI" },
	{ "00:11.0", AUTO, 0, IVSHMEM_TARGET_PCI_ADDRESS, "0000:00:11.0", "short address" },
	{ "0001:0A:1f.7", AUTO, 0, IVSHMEM_TARGET_PCI_ADDRESS, "0001:0a:1f.7", "full, any case" },
	{ "00:11.0", SYSFS_B, 0, IVSHMEM_TARGET_PCI_ADDRESS, "0000:00:11.0", "guest backend" },
	{ "00:99.0", AUTO, -EINVAL, 0, NULL, "device number out of range" },
	{ "pci:zz", AUTO, -EINVAL, 0, NULL, "pci: garbage" },
	{ "a:b", AUTO, -EINVAL, 0, NULL, "a colon but no address" },
	{ "index:3", AUTO, 0, IVSHMEM_TARGET_PCI_INDEX, "3", "index:" },
	{ "index:x", AUTO, -EINVAL, 0, NULL, "index: not a number" },
	{ "index:-1", AUTO, -EINVAL, 0, NULL, "index: negative" },
	{ "index:256", AUTO, -EINVAL, 0, NULL, "index: too large" },
	{ "name:ctl", AUTO, 0, IVSHMEM_TARGET_PCI_NAME, "ctl", "name:" },
	{ "name:", AUTO, -EINVAL, 0, NULL, "name: empty" },
	{ "missing", AUTO, -EINVAL, 0, NULL, "a bare word that is nothing" },
	{ "missing", FILE_B, 0, IVSHMEM_TARGET_FILE, "missing", "... is a file when asked" },
	{ "missing", SERVER_B, 0, IVSHMEM_TARGET_SERVER, "missing", "... a socket when asked" },
};

static void make_scratch(void)
{
	char dir[] = "/tmp/ivshmem-target-XXXXXX";
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (!mkdtemp(dir) || chdir(dir) < 0)
		exit(1);
	fd = open("00:10.0", O_CREAT | O_WRONLY, 0600);
	close(fd);
	mkfifo("fifo", 0600);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(sa.sun_path, "sock");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		exit(1);
	close(fd);
}

static void clean_scratch(void)
{
	char dir[4096];

	unlink("00:10.0");
	unlink("fifo");
	unlink("sock");
	if (getcwd(dir, sizeof(dir)) && chdir("/") == 0)
		rmdir(dir);
}

static void check_row(const struct row *r)
{
	struct ivshmem_target t;
	char got[32];
	int ret = ivshmem_target_parse(r->in, (enum ivshmem_backend)r->want, &t);

	if (ret < 0 || r->ret < 0) {
		tap_ok(ret == r->ret && strlen(ivshmem_errmsg()) > 0, "'%s' (backend %s): %s: %d, %s",
		       r->in, ivshmem_backend_name((enum ivshmem_backend)r->want), r->why, ret,
		       ret < 0 ? ivshmem_errmsg() : "no error");
		return;
	}
	if (t.kind == IVSHMEM_TARGET_PCI_ADDRESS)
		snprintf(got, sizeof(got), "%s", t.bdf);
	else if (t.kind == IVSHMEM_TARGET_PCI_INDEX)
		snprintf(got, sizeof(got), "%u", t.index);
	else
		snprintf(got, sizeof(got), "%s", t.path);
	tap_ok(t.kind == r->kind && strcmp(got, r->arg) == 0, "'%s' (backend %s): %s: kind %d '%s'",
	       r->in, ivshmem_backend_name((enum ivshmem_backend)r->want), r->why, t.kind, got);
}

int main(void)
{
	make_scratch();
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		check_row(&rows[i]);
	tap_ok(ivshmem_pci_find("/dev/shm/x", NULL, 0) == -EINVAL &&
		       strstr(ivshmem_errmsg(), "not a PCI device selector"),
	       "ivshmem_pci_find refuses a path: %s", ivshmem_errmsg());
	clean_scratch();
	return tap_done();
}
