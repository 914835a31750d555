#!/bin/bash
# Build QEMU's own contrib/ivshmem-server and contrib/ivshmem-client, the programs ours
# replace, from Debian's qemu source package of the same version as the installed
# qemu-system-x86 (Debian's patches applied), for tests/host/test_qemu_conformance.py.
#
# The source comes from `apt-get source` with deb-src entries derived from this machine's
# own apt sources, in a private apt state and config dir: /etc/apt and the system's
# package index are never changed. QEMU is configured with every optional feature off
# and only the two targets are built (15-25 min on 2 cores), so the binaries are cached
# outside the clone, keyed by the version, and rebuilt only when missing:
#
#   ${IVSHMEM_QEMU_CONTRIB_CACHE:-/var/cache/ivshmem-ci/qemu-contrib}/<version>/
#       ivshmem-server  ivshmem-client  BUILDINFO
#
# Prints that directory on stdout; progress and errors go to stderr. Needs root (it
# installs the build dependencies with apt-get). IVSHMEM_QEMU_CONTRIB_JOBS sets ninja's
# -j (default 2).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib.sh"

cache_root=${IVSHMEM_QEMU_CONTRIB_CACHE:-/var/cache/ivshmem-ci/qemu-contrib}
jobs=${IVSHMEM_QEMU_CONTRIB_JOBS:-2}
need_root "scripts/qemu-contrib.sh"

# The version to match: the source version of the installed QEMU (a binNMU such as
# "+b3" has the same source as its base version, so ${source:Version}, not ${Version}).
apt_install qemu-system-x86
ver=$(dpkg-query -W -f='${source:Version}' qemu-system-x86)
src_pkg=$(dpkg-query -W -f='${source:Package}' qemu-system-x86)
if [ -z "$ver" ] || [ -z "$src_pkg" ]; then
	die "cannot read the source version of qemu-system-x86 (dpkg-query)"
fi
out=$cache_root/$ver

have_binaries() { [ -x "$out/ivshmem-server" ] && [ -x "$out/ivshmem-client" ]; }

mkdir -p "$cache_root"
if have_binaries; then
	echo "$out"
	exit 0
fi
# One build at a time per cache (another test run may be building the same version).
exec 9>"$cache_root/.lock"
bounded 3600 flock 9 || die "timed out waiting for another build to release $cache_root/.lock"
if have_binaries; then
	echo "$out"
	exit 0
fi

# QEMU 7.2's build: meson (>= 0.61.3, Debian 12 has 1.0), ninja, Python 3, GLib and
# zlib are required even with every feature off; dpkg-dev unpacks the source package.
apt_install dpkg-dev xz-utils gcc libc6-dev make pkg-config ninja-build meson python3 \
	libglib2.0-dev zlib1g-dev

work=$(mktemp -d /var/tmp/ivshmem-qemu-contrib.XXXXXX)
trap 'rm -rf "$work"' EXIT

# --- A private apt: the machine's own sources turned into deb-src, its own state ----------
apt_dir=$work/apt
mkdir -p "$apt_dir/sources.list.d" "$apt_dir/state/lists/partial" "$apt_dir/cache/archives/partial"
: >"$apt_dir/sources.list"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
	[ -f "$f" ] || continue
	# "deb [opts] URI suite comps" -> "deb-src [opts] URI suite comps"; existing deb-src kept.
	sed -n -E 's/^[[:space:]]*deb(-src)?([[:space:]])/deb-src\2/p' "$f" >>"$apt_dir/sources.list"
done
for f in /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] || continue
	# deb822: every stanza's "Types: deb ..." becomes "Types: deb-src"; Enabled: no stays.
	sed -E 's/^(Types:).*\<deb(-src)?\>.*$/\1 deb-src/I' "$f" >"$apt_dir/sources.list.d/$(basename "$f")"
done
grep -rqsE '^(deb-src|Types:)' "$apt_dir/sources.list" "$apt_dir/sources.list.d" ||
	die "no apt sources found in /etc/apt/sources.list or /etc/apt/sources.list.d/*.sources to derive deb-src entries from"
apt_priv=("${APT_OPTS[@]}"
	-o "Dir::Etc::SourceList=$apt_dir/sources.list"
	-o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
	-o "Dir::State=$apt_dir/state"
	-o "Dir::State::status=/var/lib/dpkg/status"
	-o "Dir::Cache=$apt_dir/cache")

log "apt-get update (private state in $apt_dir, deb-src entries of this machine's sources)"
# A third-party source without deb-src is only a warning: apt-get source below says
# clearly if Debian's own mirror did not deliver.
bounded 900 apt-get "${apt_priv[@]}" update >"$work/update.log" 2>&1 ||
	{ sed 's/^/  /' "$work/update.log" >&2; die "apt-get update with the deb-src entries failed"; }
grep -E '^(E|W|Err):' "$work/update.log" | sed 's/^/warning: apt-get update (deb-src): /' >&2 || true

log "apt-get source $src_pkg=$ver"
mkdir -p "$work/src"
(cd "$work/src" && bounded 1800 apt-get "${apt_priv[@]}" source --only-source "$src_pkg=$ver") \
	>"$work/source.log" 2>&1 || {
	tail -n 20 "$work/source.log" >&2
	die "apt-get source $src_pkg=$ver failed: is that version still on the mirror (apt-cache policy qemu-system-x86)?"
}
tree=$(find "$work/src" -mindepth 1 -maxdepth 1 -type d -name "$src_pkg-*" | head -n 1)
if [ -z "$tree" ] || [ ! -x "$tree/configure" ]; then
	die "apt-get source did not unpack a QEMU tree with ./configure in $work/src"
fi

# --- Configure with every optional feature off; build only the two contrib programs -------
# No emulator at all (--disable-system/--disable-user), but tools on: meson.build builds
# contrib/ivshmem-* only with tools enabled (and eventfd, which Linux has).
conf=(--without-default-features --disable-system --disable-user --enable-tools
	--disable-docs --disable-werror --meson=/usr/bin/meson --ninja=/usr/bin/ninja)
targets=(contrib/ivshmem-server/ivshmem-server contrib/ivshmem-client/ivshmem-client)
t0=$(date +%s)
log "configure ${conf[*]}"
mkdir -p "$tree/build"
# Debian's own python3 and meson, whatever else is first on PATH (e.g. pyenv shims).
(cd "$tree/build" && PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH bounded 1200 nice ../configure "${conf[@]}") >"$work/configure.log" 2>&1 || {
	tail -n 30 "$work/configure.log" >&2
	die "QEMU's configure failed (flags: ${conf[*]})"
}
log "ninja -j$jobs ${targets[*]}"
bounded 3600 nice ninja -C "$tree/build" -j"$jobs" "${targets[@]}" >"$work/ninja.log" 2>&1 || {
	tail -n 30 "$work/ninja.log" >&2
	die "building QEMU's ${targets[*]} failed"
}
t1=$(date +%s)

mkdir -p "$out.part"
install -m 0755 "$tree/build/contrib/ivshmem-server/ivshmem-server" \
	"$tree/build/contrib/ivshmem-client/ivshmem-client" "$out.part/"
cat >"$out.part/BUILDINFO" <<EOF
source: $src_pkg $ver (Debian source package, apt-get source, Debian patches applied)
configure: ${conf[*]}
targets: ${targets[*]}
built: $(date -u +%Y-%m-%dT%H:%M:%SZ) in $((t1 - t0)) s with ninja -j$jobs on $(nproc) cores
EOF
rm -rf "$out"
mv "$out.part" "$out"
log "QEMU $ver contrib ivshmem-server and ivshmem-client built in $((t1 - t0)) s"
echo "$out"
