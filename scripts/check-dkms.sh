#!/bin/bash
# Prove kernel/dkms.conf works: `dkms add` + `dkms build` of our source tree for
# the guest kernel, in throw-away source and DKMS trees (no module is installed
# into the host's /usr/src or /lib/modules; dkms may create its own signing key
# in /var/lib/dkms, as it does on first use).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib.sh"

command -v dkms >/dev/null || die "dkms is missing; fix: apt-get install dkms (or run scripts/deps.sh)"
cur=$top/.cache/guest-kernel/current
[ -e "$cur" ] || die "no guest kernel; fix: run scripts/guest-kernel.sh"
kver=$(basename "$(readlink "$cur")")
[ -e "/lib/modules/$kver/build/Makefile" ] ||
	die "no /lib/modules/$kver/build; fix: apt-get install linux-headers-$kver"
version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$top/kernel/dkms.conf")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
make -s -C "$top/kernel" dkms-source DKMS_DIR="$tmp/src/ivshmem-$version"
mkdir -p "$tmp/dkms"
dk=(dkms --sourcetree "$tmp/src" --dkmstree "$tmp/dkms")
bounded 60 "${dk[@]}" add -m ivshmem -v "$version"
bounded 600 "${dk[@]}" build -m ivshmem -v "$version" -k "$kver" ||
	die "dkms build failed; log: $(find "$tmp/dkms" -name make.log -exec cat {} + | tail -n 30)"
ko=$(find "$tmp/dkms/ivshmem/$version/$kver" -name 'ivshmem.ko*' | head -n 1)
[ -n "$ko" ] || die "dkms build left no ivshmem.ko"
modinfo "$ko" | grep -q "^vermagic: *$kver " || die "$ko was not built for $kver: $(modinfo -F vermagic "$ko")"
echo "dkms OK: ivshmem/$version built for $kver ($ko)"
