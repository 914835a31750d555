// SPDX-License-Identifier: MIT
/*
 * The driver backend's error paths on the host, over a fake sysfs tree
 * (IVSHMEM_SYSFS_ROOT): every way of not getting a device says why. The
 * working paths need ivshmem.ko and run in the VM tests (test_driver_*.py).
 */
#include "backend/backends.h"
#include "tap.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BDF "0000:00:08.0"

static char root[64];

static int try_open(const char *target)
{
	static const struct ivshmem_open_opts opts = { .backend = IVSHMEM_BACKEND_DRIVER };
	struct ivshmem_region r = { .own_id = -1 };
	int ret = ivshmem_driver_open(&r, target, &opts);

	if (ret == 0)
		r.ops->close(&r);
	return ret;
}

static void sh(const char *fmt, const char *arg)
{
	char cmd[PATH_MAX * 2];

	snprintf(cmd, sizeof(cmd), fmt, root, arg);
	if (system(cmd) != 0)
		tap_diag("setup command failed: %s", cmd);
}

static int says(const char *what)
{
	return strstr(ivshmem_errmsg(), what) != NULL;
}

int main(void)
{
	int ret;

	snprintf(root, sizeof(root), "/tmp/ivshmem-fake-sysfs-%d", (int)getpid());
	setenv("IVSHMEM_SYSFS_ROOT", root, 1);
	sh("mkdir -p %s/bus/pci/drivers/vfio-pci %s/bus/pci/drivers/ivshmem", root);

	ret = try_open(BDF);
	tap_ok(ret == -ENODEV && says("no such PCI device"), "no device: ENODEV (%s)",
	       ivshmem_errmsg());

	sh("mkdir -p %s/bus/pci/devices/%s", BDF);
	ret = try_open(BDF);
	tap_ok(ret == -ENODEV && says("not loaded") && says("modprobe ivshmem"),
	       "no driver, module not loaded: says so (%s)", ivshmem_errmsg());

	sh("mkdir -p %s/module/%s", "ivshmem");
	ret = try_open(BDF);
	tap_ok(ret == -ENODEV && says("no driver is bound"),
	       "module loaded, device unbound: says so (%s)", ivshmem_errmsg());

	sh("ln -s ../../../bus/pci/drivers/vfio-pci %s/bus/pci/devices/%s/driver", BDF);
	ret = try_open(BDF);
	tap_ok(ret == -EBUSY && says("bound to vfio-pci"), "bound to another driver: EBUSY (%s)",
	       ivshmem_errmsg());

	sh("rm %s/bus/pci/devices/%s/driver", BDF);
	sh("ln -s ../../../bus/pci/drivers/ivshmem %s/bus/pci/devices/%s/driver", BDF);
	ret = try_open(BDF);
	tap_ok(ret == -ENODEV && says("no ivshmemN"), "bound but no class device: ENODEV (%s)",
	       ivshmem_errmsg());

	ret = try_open("/nonexistent/ivshmem9");
	tap_ok(ret == -ENOENT && says("no such device node"), "missing node: ENOENT (%s)",
	       ivshmem_errmsg());

	ret = try_open("/dev/null");
	tap_ok(ret == -ENODEV && says("not an ivshmem.ko device"),
	       "a char device that is not ours: ENODEV (%s)", ivshmem_errmsg());

	sh("rm -rf %s%s", "");
	return tap_done();
}
