#!/bin/bash
# Fetch a guest kernel for the VM rig with `apt-get download` + `dpkg-deb -x` (never
# installed on the host), resolved from Debian's meta-package *now* (never hard-coded):
#
#   scripts/guest-kernel.sh [KERNEL]
#     current    (default) Debian 12's linux-image-amd64 (6.1); its linux-headers package is
#                installed on the host (a -dev style package) to build our module against
#     backports  linux-image-amd64 from bookworm-backports (6.12, Debian 13's kernel)
#     arm64      Debian 12's linux-image-arm64 for the aarch64 guest, plus busybox-static:arm64
#
# backports and arm64 come through a PRIVATE apt dir (.cache/apt: sources derived from the
# machine's own Debian sources plus <codename>-backports, architectures amd64 and arm64;
# /etc/apt and the host's package state are never touched). Their headers (linux-headers
# + -common + the amd64 linux-kbuild, which runs on the build machine) are unpacked next
# to the kernel, so the module is built with KDIR=<dir>/usr/src/linux-headers-<version>.
#
# Result: .cache/guest-kernel/<version>/{boot/vmlinuz-*,lib/modules/*[,usr/src,bin/busybox]}
#         .cache/guest-kernel/KERNEL -> <version>
#         prints the version on stdout.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cache=${IVSHMEM_CACHE:-$top/.cache}
. "$top/scripts/lib.sh"

name=${1:-current}
case $name in
current | backports | arm64) ;;
*) die "usage: $0 [current|backports|arm64]" ;;
esac
kcache=$cache/guest-kernel
mkdir -p "$kcache"

# ---- the private apt dir -----------------------------------------------------------------

papt=$cache/apt
PAPT_OPTS=()

# The machine's Debian archive sources (URI, suite, component), from apt's own view of them.
debian_sources() {
	# shellcheck disable=SC2016 # apt's own $(FIELD) syntax, not the shell's
	apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 'Created-By: Packages' 2>/dev/null |
		awk '$1 ~ /debian/' | sort -u
}

# Write .cache/apt and refresh its index (once per run).
private_apt() {
	local codename keyring sources main_uri
	codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	[ -n "$codename" ] || die "cannot tell the Debian release (no VERSION_CODENAME in /etc/os-release)"
	sources=$(debian_sources)
	[ -n "$sources" ] || die "no Debian archive in the machine's apt sources (apt-get indextargets shows none)
  fix: configure deb.debian.org (or a mirror) in /etc/apt/sources.list.d/debian.sources"
	main_uri=$(awk -v s="$codename" '$2 == s {print $1; exit}' <<<"$sources")
	[ -n "$main_uri" ] || die "the machine's apt sources have no '$codename' suite to derive $codename-backports from"
	keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	[ -f "$keyring" ] || die "$keyring is missing; fix: apt-get install debian-archive-keyring"
	mkdir -p "$papt/sources.list.d" "$papt/preferences.d" "$papt/state/lists/partial" \
		"$papt/cache/archives/partial"
	{
		echo "# Written by scripts/guest-kernel.sh from the machine's Debian sources; private to this cache."
		awk -v k="$keyring" '{print "deb [arch=amd64,arm64 signed-by=" k "] " $1 " " $2 " " $3}' <<<"$sources"
		echo "deb [arch=amd64,arm64 signed-by=$keyring] $main_uri $codename-backports main"
	} | sort -u >"$papt/sources.list.new"
	mv "$papt/sources.list.new" "$papt/sources.list"
	: >"$papt/preferences"
	PAPT_OPTS=("${APT_OPTS[@]}"
		-o Dir::Etc::SourceList="$papt/sources.list" -o Dir::Etc::SourceParts="$papt/sources.list.d"
		-o Dir::Etc::Preferences="$papt/preferences" -o Dir::Etc::PreferencesParts="$papt/preferences.d"
		-o Dir::State="$papt/state" -o Dir::State::status=/var/lib/dpkg/status
		-o Dir::Cache="$papt/cache"
		-o APT::Architectures::=amd64 -o APT::Architectures::=arm64)
	[ -n "${IVSHMEM_PRIVATE_APT_UPDATED:-}" ] && return 0
	log "apt-get update (private index in $papt: $codename, $codename-backports; amd64, arm64)"
	local err rc=0
	err=$(mktemp)
	bounded 600 apt-get "${PAPT_OPTS[@]}" update >/dev/null 2>"$err" || rc=$?
	if [ $rc != 0 ] || grep -qE '^(E|Err):' "$err"; then
		local why
		why=$(grep -E '^(E|W|Err):' "$err" | head -n 5 || true)
		rm -f "$err"
		die "cannot update the private apt index in $papt (exit $rc):
${why:-  (no message; is the network up?)}"
	fi
	rm -f "$err"
	export IVSHMEM_PRIVATE_APT_UPDATED=1
}

papt_cache() { apt-cache "${PAPT_OPTS[@]}" "$@"; }

# first_dep PKG PATTERN [APT-CACHE-OPTS...]: the first Depends of PKG whose name matches PATTERN.
first_dep() {
	local pkg=$1 pattern=$2
	shift 2
	papt_cache "$@" depends "$pkg" 2>/dev/null |
		awk -v p="$pattern" '$1 == "Depends:" {gsub(/[<>]/, "", $2); sub(/:.*/, "", $2)
			if ($2 ~ p) {print $2; exit}}'
}

# fetch DIR PKG...: apt-get download PKG... (private index) and unpack each into DIR.
fetch() {
	local dir=$1 tmp deb
	shift
	tmp=$(mktemp -d)
	log "apt-get download $* (private index), unpacked with dpkg-deb -x"
	if ! (cd "$tmp" && bounded 900 apt-get "${PAPT_OPTS[@]}" download "$@" >/dev/null 2>"$tmp/err"); then
		local why
		why=$(tail -n 3 "$tmp/err")
		rm -rf "$tmp"
		die "apt-get download $* failed: $why"
	fi
	for deb in "$tmp"/*.deb; do
		dpkg-deb -x "$deb" "$dir" || { rm -rf "$tmp"; die "dpkg-deb -x of $deb failed"; }
	done
	rm -rf "$tmp"
}

# ---- kernels ------------------------------------------------------------------------------

# unpack_kernel PKG KVER [PKG...]: the kernel package (plus extras) into .cache/guest-kernel/KVER.
unpack_kernel() {
	local pkg=$1 kver=$2
	shift 2
	[ -e "$kcache/$kver/boot/vmlinuz-$kver" ] && return 0
	rm -rf "$kcache/$kver.part"
	mkdir -p "$kcache/$kver.part"
	fetch "$kcache/$kver.part" "$pkg" "$@"
	# The package ships no modules.dep (its postinst makes it); the rig resolves dependencies from it.
	depmod -b "$kcache/$kver.part" "$kver" || die "depmod for the guest kernel $kver failed"
	rm -rf "${kcache:?}/$kver"
	mv "$kcache/$kver.part" "$kcache/$kver"
}

# unpack_headers KVER ARCH: linux-headers-KVER (ARCH), its -common and the amd64 linux-kbuild
# into the kernel's dir; the Makefile's absolute include of -common is pointed there.
unpack_headers() {
	local kver=$1 arch=$2 root=$kcache/$1 hdr common kbuild
	hdr=$root/usr/src/linux-headers-$kver
	[ -f "$hdr/Makefile" ] && [ -e "$hdr/scripts/mod/modpost" ] && return 0
	common=$(first_dep "linux-headers-$kver:$arch" '^linux-headers-.*-common')
	kbuild=$(first_dep "linux-headers-$kver:$arch" '^linux-kbuild-')
	if [ -z "$common" ] || [ -z "$kbuild" ]; then
		die "cannot resolve what linux-headers-$kver:$arch depends on (-common, linux-kbuild)"
	fi
	# linux-kbuild holds build-machine programs (fixdep, modpost): always the amd64 build.
	fetch "$root" "linux-headers-$kver:$arch" "$common" "$kbuild:amd64"
	sed -i "s#^include /usr/src/#include $root/usr/src/#" "$hdr/Makefile"
	[ -e "$hdr/scripts/mod/modpost" ] || die "the headers for $kver have no scripts/mod/modpost after unpacking"
}

case $name in
current)
	apt_index_ready
	# linux-image-amd64 -> "Depends: linux-image-6.1.0-NN-amd64".
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	[ -n "$pkg" ] || die "cannot resolve linux-image-amd64 to a kernel package (apt-cache depends linux-image-amd64 shows none; is the package index complete?)"
	kver=${pkg#linux-image-}
	if [ ! -e "$kcache/$kver/boot/vmlinuz-$kver" ]; then
		log "fetching guest kernel $pkg (apt-get download, unpacked with dpkg-deb -x)"
		tmp=$(mktemp -d)
		trap 'rm -rf "$tmp"' EXIT
		(cd "$tmp" && bounded 600 apt-get "${APT_OPTS[@]}" download "$pkg" >/dev/null 2>"$tmp/err") ||
			die "apt-get download $pkg failed: $(tail -n 3 "$tmp/err")"
		rm -rf "$kcache/$kver.part"
		mkdir -p "$kcache/$kver.part"
		dpkg-deb -x "$tmp"/"$pkg"_*.deb "$kcache/$kver.part" || die "dpkg-deb -x of $pkg failed"
		depmod -b "$kcache/$kver.part" "$kver" || die "depmod for the guest kernel $kver failed"
		rm -rf "${kcache:?}/$kver"
		mv "$kcache/$kver.part" "$kcache/$kver"
	fi
	# Headers to build ivshmem.ko: a -dev style package, so installing it is fine.
	if [ ! -e "/usr/src/linux-headers-$kver/Makefile" ]; then
		apt_install "linux-headers-$kver"
	fi
	;;
backports)
	private_apt
	codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
	pkg=$(first_dep linux-image-amd64:amd64 '^linux-image-[0-9]' -t "$codename-backports")
	[ -n "$pkg" ] || die "cannot resolve linux-image-amd64 in $codename-backports to a kernel package"
	kver=${pkg#linux-image-}
	kver=${kver%-unsigned}
	[[ $kver == *-amd64 ]] || die "unexpected kernel package name $pkg"
	unpack_kernel "$pkg:amd64" "$kver"
	unpack_headers "$kver" amd64
	;;
arm64)
	private_apt
	pkg=$(first_dep linux-image-arm64:arm64 '^linux-image-[0-9]')
	[ -n "$pkg" ] || die "cannot resolve linux-image-arm64 to a kernel package"
	kver=${pkg#linux-image-}
	kver=${kver%-unsigned}
	[[ $kver == *-arm64 ]] || die "unexpected kernel package name $pkg"
	unpack_kernel "$pkg:arm64" "$kver"
	unpack_headers "$kver" arm64
	# The aarch64 initramfs needs an aarch64 busybox: busybox-static:arm64 -> <dir>/bin/busybox.
	[ -x "$kcache/$kver/bin/busybox" ] || fetch "$kcache/$kver" busybox-static:arm64
	[ -x "$kcache/$kver/bin/busybox" ] || die "busybox-static:arm64 left no bin/busybox"
	;;
esac
[ -e "$kcache/$kver/lib/modules/$kver/modules.dep" ] ||
	depmod -b "$kcache/$kver" "$kver" || die "depmod for the guest kernel $kver failed"
ln -sfn "$kver" "$kcache/$name"
echo "$kver"
