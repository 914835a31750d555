#!/bin/bash
# Build ivshmem.ko (guest driver) and ivshmem_host.ko (host-kernel peer) out of tree against a GUEST kernel's headers (a Debian kernel the
# VM rig boots, fetched by scripts/guest-kernel.sh), not the host's.
#   scripts/build-kmod.sh [BUILD_DIR [KERNEL]]
#     KERNEL current (default)  -> BUILD_DIR/kernel/ivshmem.ko       (Debian 12's 6.1)
#            backports          -> BUILD_DIR/kernel-backports/       (bookworm-backports' 6.12)
#            arm64              -> BUILD_DIR/kernel-arm64/           (cross-built: ARCH=arm64,
#                                  CROSS_COMPILE=aarch64-linux-gnu-)
# The sources are copied to the output dir first (the same layout dkms uses), so the
# source tree stays clean. KDIR=... overrides the headers.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib.sh"

build=${1:-build}
name=${2:-current}
case $build in /*) ;; *) build=$top/$build ;; esac
case $name in
current) out=$build/kernel ;;
backports | arm64) out=$build/kernel-$name ;;
*) die "usage: $0 [BUILD_DIR [current|backports|arm64]]" ;;
esac

cur=$top/.cache/guest-kernel/$name
kver=
if [ -e "$cur" ]; then
	kver=$(readlink "$cur")
	kver=${kver##*/}
fi
if [ -z "${KDIR:-}" ]; then
	[ -n "$kver" ] || die "no guest kernel at $cur
  fix: run scripts/guest-kernel.sh $name (it fetches the Debian kernel the VM rig boots)"
	if [ "$name" = current ]; then
		KDIR=/usr/src/linux-headers-$kver
		fix="apt-get install linux-headers-$kver"
	else
		KDIR=$top/.cache/guest-kernel/$kver/usr/src/linux-headers-$kver
		fix="scripts/guest-kernel.sh $name"
	fi
	[ -f "$KDIR/Makefile" ] || die "no headers for the guest kernel $kver at $KDIR
  fix: $fix (or set KDIR=/path/to/headers)"
fi
[ -f "$KDIR/Makefile" ] || die "KDIR=$KDIR is not a kernel build tree (no Makefile)"
kmake=(make -C "$KDIR" W=1)
if grep -q '^override ARCH = arm64' "$KDIR/.kernelvariables" 2>/dev/null && [ "$(uname -m)" != aarch64 ]; then
	command -v aarch64-linux-gnu-gcc >/dev/null ||
		die "aarch64-linux-gnu-gcc is missing; fix: apt-get install gcc-aarch64-linux-gnu"
	kmake+=(ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-)
fi
command -v make >/dev/null || die "make is missing; fix: apt-get install make"

mkdir -p "$out/include/linux" "$out/include/uapi/linux"
cp "$top"/kernel/Kbuild "$top"/kernel/Makefile "$top"/kernel/*.c "$top"/kernel/*.h "$out/"
cp "$top"/kernel/include/linux/*.h "$out/include/linux/"
cp "$top"/include/uapi/linux/ivshmem.h "$top"/include/uapi/linux/ivshmem_host.h "$out/include/uapi/linux/"

log "building ivshmem.ko and ivshmem_host.ko against $KDIR"
if ! bounded 600 "${kmake[@]}" M="$out" modules >"$out/build.log" 2>&1; then
	cat "$out/build.log" >&2
	die "ivshmem.ko/ivshmem_host.ko failed to build against $KDIR (log: $out/build.log)"
fi
# Warnings are errors here, as in the C build.
if grep -Ei 'warning|error:' "$out/build.log" >&2; then
	die "ivshmem.ko/ivshmem_host.ko built with warnings (log: $out/build.log)"
fi
for ko in ivshmem ivshmem_host; do
	[ -f "$out/$ko.ko" ] || die "the build produced no $out/$ko.ko"
	log "built $out/$ko.ko"
done

# The VM tests' users of the two in-kernel APIs, linked against the modules' symbols.
# build_kapi_test NAME DIR: tests/vm/guest/NAME.c -> $out/NAME.ko, built in $out/DIR
build_kapi_test() {
	local name=$1 dir=$out/$2
	mkdir -p "$dir"
	cp "$top/tests/vm/guest/$name.c" "$dir/"
	printf 'obj-m := %s.o\nccflags-y := -I$(src)/../include\n' "$name" >"$dir/Kbuild"
	if ! bounded 600 "${kmake[@]}" M="$dir" KBUILD_EXTRA_SYMBOLS="$out/Module.symvers" \
		modules >"$dir/build.log" 2>&1 || grep -Ei 'warning|error:' "$dir/build.log" >&2; then
		cat "$dir/build.log" >&2
		die "the in-kernel API test module $name failed to build (log: $dir/build.log)"
	fi
	cp "$dir/$name.ko" "$out/"
	log "built $out/$name.ko"
}
build_kapi_test ivshmem_kapi_test kapi-test
build_kapi_test ivshmem_host_kapi_test host-kapi-test
# The nested VM test's two halves (tests/vm/test_host_kernel_nested.py): L1 host kernel, L2 guest
# kernel, and the header they share (found through the test modules' -I$out/include).
cp "$top/tests/vm/guest/ivshmem_nested.h" "$out/include/"
build_kapi_test ivshmem_host_nested host-nested
build_kapi_test ivshmem_nested_guest nested-guest

# The example users of the in-kernel APIs (kernel/examples/, docs/host-kernel.md "Example module").
ex=$out/examples
mkdir -p "$ex"
cp "$top"/kernel/examples/Kbuild "$top"/kernel/examples/*.[ch] "$ex/"
if ! bounded 600 "${kmake[@]}" M="$ex" KBUILD_EXTRA_SYMBOLS="$out/Module.symvers" \
	modules >"$ex/build.log" 2>&1 || grep -Ei 'warning|error:' "$ex/build.log" >&2; then
	cat "$ex/build.log" >&2
	die "the example modules failed to build (log: $ex/build.log)"
fi
for ko in ivshmem_hoststat ivshmem_hoststat_guest; do
	cp "$ex/$ko.ko" "$out/"
	log "built $out/$ko.ko"
done
