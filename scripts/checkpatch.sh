#!/bin/bash
# Run the kernel's checkpatch.pl --strict over the driver (kernel/*.c, *.h, the
# in-kernel API header, the example modules, the test modules) and the uapi header. Exit 0 only when it is clean.
#
# checkpatch.pl is not in Debian's linux-headers packages. Looked for, in order:
#   $CHECKPATCH, /usr/src/linux-headers-*/scripts, /usr/src/linux-source-*/scripts,
#   .cache/checkpatch/ (filled from Debian's linux-source-6.1 package:
#   `apt-get download`, then only scripts/checkpatch.pl and its two data files
#   are unpacked from the source tarball).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib.sh"

cache=$top/.cache/checkpatch
src_pkg=linux-source-6.1

find_checkpatch() {
	local c
	for c in "${CHECKPATCH:-}" /usr/src/linux-headers-*/scripts/checkpatch.pl \
		 /usr/src/linux-source-*/scripts/checkpatch.pl "$cache/scripts/checkpatch.pl"; do
		if [ -n "$c" ] && [ -f "$c" ]; then
			echo "$c"
			return 0
		fi
	done
	return 1
}

fetch_checkpatch() {
	command -v apt-get >/dev/null || die "checkpatch.pl not found and apt-get is missing
  fix: set CHECKPATCH=/path/to/linux/scripts/checkpatch.pl"
	local deb tarball
	tmp=$(mktemp -d)
	trap 'rm -rf "${tmp:-}"' EXIT
	log "checkpatch.pl is not installed; fetching it from Debian's $src_pkg package"
	if ! (cd "$tmp" && bounded 600 apt-get download "$src_pkg" >"$tmp/apt.log" 2>&1); then
		cat "$tmp/apt.log" >&2
		die "cannot download $src_pkg (no mirror access?)
  fix: apt-get install $src_pkg, or set CHECKPATCH=/path/to/checkpatch.pl"
	fi
	deb=$(echo "$tmp"/*.deb)
	tarball=$(dpkg-deb -c "$deb" | awk '{print $NF}' | grep -E 'linux-source-[0-9.]+\.tar\.xz$' | head -n 1)
	[ -n "$tarball" ] || die "$deb holds no source tarball"
	mkdir -p "$cache"
	# Only three small files are kept from the source tarball.
	if ! dpkg-deb --fsys-tarfile "$deb" | tar -xOf - "$tarball" |
	     bounded 600 tar -xJf - -C "$cache" --strip-components=1 --wildcards \
		'*/scripts/checkpatch.pl' '*/scripts/spelling.txt' '*/scripts/const_structs.checkpatch'; then
		die "cannot unpack checkpatch.pl from $deb"
	fi
	[ -f "$cache/scripts/checkpatch.pl" ] || die "checkpatch.pl is not in $deb"
}

command -v perl >/dev/null || die "perl is missing; fix: apt-get install perl"
cp=$(find_checkpatch) || { fetch_checkpatch; cp=$(find_checkpatch) || die "still no checkpatch.pl"; }
log "checkpatch: $cp"

compat=$top/kernel/ivshmem_compat.h
files=()
for f in "$top"/kernel/*.c "$top"/kernel/*.h "$top"/kernel/include/linux/*.h \
	 "$top"/include/uapi/linux/ivshmem.h "$top"/include/uapi/linux/ivshmem_host.h \
	 "$top"/tests/vm/guest/ivshmem_kapi_test.c \
	 "$top"/tests/vm/guest/ivshmem_host_kapi_test.c \
	 "$top"/kernel/examples/*.c "$top"/kernel/examples/*.h \
	 "$top"/tests/vm/guest/ivshmem_*nested*.c "$top"/tests/vm/guest/ivshmem_nested.h; do
	[ "$f" = "$compat" ] || files+=("$f")
done
# --no-tree: we are not inside a kernel tree. Out-of-tree, so no MAINTAINERS or
# SPDX-in-tree checks beyond what --strict asks.
cp_args=(--strict --no-tree --terse --show-types)
rc=0
perl "$cp" "${cp_args[@]}" -f "${files[@]}" || rc=1
# The compat header is the one place for kernel-version checks (an out-of-tree module
# builds for several kernels): there, and only there, LINUX_VERSION_CODE and its
# "constant on the left" comparison are allowed; every other check still applies.
perl "$cp" "${cp_args[@]}" --ignore LINUX_VERSION_CODE,CONSTANT_COMPARISON -f "$compat" || rc=1
[ $rc = 0 ] || die "checkpatch --strict found problems (above)"
log "checkpatch --strict: clean ($((${#files[@]} + 1)) files)"
