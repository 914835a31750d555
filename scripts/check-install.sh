#!/bin/bash
# `meson install` into a staging dir, then build and run a program against the
# installed headers, library and pkg-config file: proves the install is usable.
set -euo pipefail
build=${1:-build}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
meson install -C "$build" --destdir "$stage" --quiet
prefix=$(meson introspect "$build" --buildoptions |
	python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"))')
for f in bin/ivshmem bin/ivshmem-server bin/ivshmem-client include/ivshmem.h include/ivshmem/region.h \
	include/linux/ivshmem.h; do
	[ -e "$stage$prefix/$f" ] || { echo "not installed: $prefix/$f" >&2; exit 1; }
done
pc=$(find "$stage" -name libivshmem.pc | head -n 1)
[ -n "$pc" ] || { echo "libivshmem.pc not installed" >&2; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$stage
cat >"$stage/consumer.c" <<'C'
#include <ivshmem.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv)
{
	struct ivshmem_open_opts o = { .flags = IVSHMEM_OPEN_CREATE, .size = 4096 };
	struct ivshmem_region *r;
	char buf[6] = "";
	if (argc < 2 || ivshmem_open(&r, argv[1], &o) < 0) {
		fprintf(stderr, "open: %s\n", ivshmem_errmsg());
		return 1;
	}
	ivshmem_write(r, 100, "works", 6);
	ivshmem_read(r, 100, buf, 6);
	ivshmem_close(r);
	return strcmp(buf, "works") != 0;
}
C
# shellcheck disable=SC2046
cc -Wall -Werror -o "$stage/consumer" "$stage/consumer.c" $(pkg-config --cflags --libs libivshmem)
libdir=$(dirname "$(find "$stage" -name 'libivshmem.so.0' | head -n 1)")
LD_LIBRARY_PATH=$libdir "$stage/consumer" "/dev/shm/ivshmem-install-check-$$"
rm -f "/dev/shm/ivshmem-install-check-$$"
echo "install OK: prefix $prefix, pkg-config $(pkg-config --modversion libivshmem)"
