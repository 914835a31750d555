#!/bin/bash
# Fetch the guest kernel: the one Debian's linux-image-amd64 depends on right now,
# with `apt-get download` + `dpkg-deb -x` (never installed on the host), and make
# sure the matching linux-headers package is there to build our module against.
#
# Result: .cache/guest-kernel/<version>/{boot/vmlinuz-*,lib/modules/*}
#         .cache/guest-kernel/current -> <version>
#         prints the version on stdout.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cache=${IVSHMEM_CACHE:-$top/.cache}/guest-kernel
. "$top/scripts/lib.sh"

apt_index_ready

# linux-image-amd64 -> "Depends: linux-image-6.1.0-NN-amd64" (resolved now, never hard-coded).
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$pkg" ] || die "cannot resolve linux-image-amd64 to a kernel package (apt-cache depends linux-image-amd64 shows none; is the package index complete?)"
kver=${pkg#linux-image-}

if [ ! -e "$cache/$kver/boot/vmlinuz-$kver" ]; then
	log "fetching guest kernel $pkg (apt-get download, unpacked with dpkg-deb -x)"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && bounded 600 apt-get "${APT_OPTS[@]}" download "$pkg" >/dev/null 2>"$tmp/err") ||
		die "apt-get download $pkg failed: $(tail -n 3 "$tmp/err")"
	mkdir -p "$cache/$kver.part"
	dpkg-deb -x "$tmp"/"$pkg"_*.deb "$cache/$kver.part" ||
		die "dpkg-deb -x of $pkg failed"
	# The package ships no modules.dep (its postinst makes it); the rig resolves dependencies from it.
	depmod -b "$cache/$kver.part" "$kver" || die "depmod for the guest kernel $kver failed"
	rm -rf "$cache/$kver"
	mv "$cache/$kver.part" "$cache/$kver"
fi
[ -e "$cache/$kver/lib/modules/$kver/modules.dep" ] ||
	depmod -b "$cache/$kver" "$kver" || die "depmod for the guest kernel $kver failed"
ln -sfn "$kver" "$cache/current"

# Headers to build ivshmem.ko: a -dev style package, so installing it is fine.
if [ ! -e "/usr/src/linux-headers-$kver/Makefile" ]; then
	apt_install "linux-headers-$kver"
fi
echo "$kver"
