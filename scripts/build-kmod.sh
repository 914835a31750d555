#!/bin/bash
# Build ivshmem.ko out of tree against the GUEST kernel's headers (the Debian
# kernel the VM rig boots, .cache/guest-kernel/current), not the host's.
#   scripts/build-kmod.sh [BUILD_DIR]      -> BUILD_DIR/kernel/ivshmem.ko
# The sources are copied to BUILD_DIR/kernel first (the same layout dkms
# uses), so the source tree stays clean. KDIR=... overrides the headers.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib.sh"

build=${1:-build}
case $build in /*) ;; *) build=$top/$build ;; esac

if [ -z "${KDIR:-}" ]; then
	cur=$top/.cache/guest-kernel/current
	[ -e "$cur" ] || die "no guest kernel at $cur
  fix: run scripts/guest-kernel.sh (it fetches the Debian kernel the VM rig boots)"
	kver=$(readlink "$cur")
	kver=${kver##*/}
	KDIR=/usr/src/linux-headers-$kver
	[ -f "$KDIR/Makefile" ] || die "no headers for the guest kernel $kver at $KDIR
  fix: apt-get install linux-headers-$kver (or set KDIR=/path/to/headers)"
fi
[ -f "$KDIR/Makefile" ] || die "KDIR=$KDIR is not a kernel build tree (no Makefile)"
command -v make >/dev/null || die "make is missing; fix: apt-get install make"

out=$build/kernel
mkdir -p "$out/include/linux" "$out/include/uapi/linux"
cp "$top"/kernel/Kbuild "$top"/kernel/Makefile "$top"/kernel/*.c "$top"/kernel/*.h "$out/"
cp "$top"/kernel/include/linux/*.h "$out/include/linux/"
cp "$top"/include/uapi/linux/ivshmem.h "$out/include/uapi/linux/"

log "building ivshmem.ko against $KDIR"
if ! bounded 600 make -C "$KDIR" M="$out" W=1 modules >"$out/build.log" 2>&1; then
	cat "$out/build.log" >&2
	die "ivshmem.ko failed to build against $KDIR (log: $out/build.log)"
fi
# Warnings are errors here, as in the C build.
if grep -Ei 'warning|error:' "$out/build.log" >&2; then
	die "ivshmem.ko built with warnings (log: $out/build.log)"
fi
[ -f "$out/ivshmem.ko" ] || die "the build produced no $out/ivshmem.ko"
log "built $out/ivshmem.ko"

# The VM tests' user of the in-kernel API, linked against ivshmem.ko's symbols.
kapi=$out/kapi-test
mkdir -p "$kapi"
cp "$top"/tests/vm/guest/ivshmem_kapi_test.c "$kapi/"
printf 'obj-m := ivshmem_kapi_test.o\nccflags-y := -I$(src)/../include\n' >"$kapi/Kbuild"
if ! bounded 600 make -C "$KDIR" M="$kapi" W=1 KBUILD_EXTRA_SYMBOLS="$out/Module.symvers" \
	modules >"$kapi/build.log" 2>&1 || grep -Ei 'warning|error:' "$kapi/build.log" >&2; then
	cat "$kapi/build.log" >&2
	die "the in-kernel API test module failed to build (log: $kapi/build.log)"
fi
cp "$kapi/ivshmem_kapi_test.ko" "$out/"
log "built $out/ivshmem_kapi_test.ko"
