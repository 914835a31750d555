#!/bin/bash
# Prove kernel/dkms.conf works: `dkms add` + `dkms build` of our source tree for
# a guest kernel, in throw-away source and DKMS trees (no module is installed
# into the host's /usr/src or /lib/modules; dkms may create its own signing key
# in /var/lib/dkms, as it does on first use).
#   scripts/check-dkms.sh [KERNEL]   current (default: Debian 12's 6.1, headers installed)
#                                    backports (6.12, headers unpacked by guest-kernel.sh)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib.sh"

command -v dkms >/dev/null || die "dkms is missing; fix: apt-get install dkms (or run scripts/deps.sh)"
name=${1:-current}
cur=$top/.cache/guest-kernel/$name
[ -e "$cur" ] || die "no guest kernel at $cur; fix: run scripts/guest-kernel.sh $name"
kver=$(basename "$(readlink "$cur")")
if [ "$name" = current ]; then
	kdir=/lib/modules/$kver/build
	fix="apt-get install linux-headers-$kver"
else
	kdir=$top/.cache/guest-kernel/$kver/usr/src/linux-headers-$kver
	fix="scripts/guest-kernel.sh $name"
fi
[ -e "$kdir/Makefile" ] || die "no headers for $kver at $kdir; fix: $fix"
version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$top/kernel/dkms.conf")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
make -s -C "$top/kernel" dkms-source DKMS_DIR="$tmp/src/ivshmem-$version"
mkdir -p "$tmp/dkms"
dk=(dkms --sourcetree "$tmp/src" --dkmstree "$tmp/dkms")
bounded 60 "${dk[@]}" add -m ivshmem -v "$version"
bounded 600 "${dk[@]}" build -m ivshmem -v "$version" -k "$kver" --kernelsourcedir "$kdir" ||
	die "dkms build failed; log: $(find "$tmp/dkms" -name make.log -exec cat {} + | tail -n 30)"
for mod in ivshmem ivshmem_host; do
	ko=$(find "$tmp/dkms/ivshmem/$version/$kver" -name "$mod.ko*" | head -n 1)
	[ -n "$ko" ] || die "dkms build left no $mod.ko"
	modinfo "$ko" | grep -q "^vermagic: *$kver " ||
		die "$ko was not built for $kver: $(modinfo -F vermagic "$ko")"
	echo "dkms OK: $mod.ko of ivshmem/$version built for $kver ($ko)"
done
