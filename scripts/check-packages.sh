#!/bin/bash
# The Debian packages end to end (./test.sh packages): build them from a copy of the tree
# (the source tree stays clean), lintian, `apt-get install ./*.deb`, a smoke test of each
# package, then purge them and prove nothing is left behind.
#   scripts/check-packages.sh [OUTDIR]   keep the .debs in OUTDIR (default: a temp dir, removed)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib.sh"
need_root "scripts/check-packages.sh"
for t in dpkg-buildpackage dh lintian dkms; do
	command -v "$t" >/dev/null || die "$t is missing; fix: run scripts/deps.sh"
done

tmp=$(mktemp -d)
server_pid=
cleanup() {
	set +e
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
	# Never leave our packages installed, whatever failed.
	local left
	left=$(dpkg-query -W -f='${Package} ${Status}\n' 'ivshmem-*' 'libivshmem*' python3-ivshmem 2>/dev/null |
		awk '$NF != "not-installed" {print $1}' || true)
	[ -n "$left" ] && DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" purge -y -q $left >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

log "dpkg-buildpackage -us -uc -b in a copy of the tree"
mkdir "$tmp/src"
git -C "$top" ls-files -co --exclude-standard -z | tar -C "$top" --null -T - -cf - | tar -xf - -C "$tmp/src"
(cd "$tmp/src" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" bounded 1800 dpkg-buildpackage -us -uc -b) \
	>"$tmp/build.log" 2>&1 || die "dpkg-buildpackage failed: $(tail -n 40 "$tmp/build.log")"
cd "$tmp"
debs=(ivshmem-server_*.deb ivshmem-tools_*.deb libivshmem0_*.deb libivshmem-dev_*.deb ivshmem-dkms_*.deb
      python3-ivshmem_*.deb)
for d in "${debs[@]}"; do [ -f "$d" ] || die "dpkg-buildpackage made no $d"; done
pkgs=(ivshmem-server ivshmem-tools libivshmem0 libivshmem-dev ivshmem-dkms python3-ivshmem)

log "lintian (default profile; overrides in debian/*.lintian-overrides)"
lint=$(bounded 600 lintian ./*.changes 2>&1 | grep -v 'running with root privileges' || true)
[ -z "$lint" ] || die "lintian is not clean:
$lint"

log "apt-get install ./*.deb"
DEBIAN_FRONTEND=noninteractive bounded 900 apt-get "${APT_OPTS[@]}" install -y -q "${debs[@]/#/./}" \
	>"$tmp/install.log" 2>&1 || die "apt-get install failed: $(tail -n 30 "$tmp/install.log")"
for p in "${pkgs[@]}"; do dpkg -L "$p" >>"$tmp/files"; done

log "ivshmem-server: nothing enabled or started on install"
for u in ivshmem-server.socket ivshmem-server.service; do
	[ -f "/lib/systemd/system/$u" ] || die "$u not installed"
	[ ! -e "/etc/systemd/system/sockets.target.wants/$u" ] && [ ! -e "/etc/systemd/system/multi-user.target.wants/$u" ] ||
		die "$u was enabled on install"
done
[ -f /lib/systemd/system/ivshmem-server@.service ] || die "the template unit is not installed"
if pgrep -f "^/usr/bin/ivshmem-server( |$)" >/dev/null; then
	die "an ivshmem-server runs after install (none should start)"
fi

log "ivshmem-server from its unit's command line; a host peer joins; a record both ways in Python"
sock=$tmp/ivshmem.sock
exec_start=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/ivshmem-server.service)
# The unit's defaults for its variables, and our socket instead of /run's.
cmd=$(printf '%s' "$exec_start" | sed -e "s#/run/ivshmem-server.sock#$sock#" -e 's/\${IVSHMEM_SIZE}/4M/' \
	-e 's/\${IVSHMEM_VECTORS}/1/' -e 's/\$IVSHMEM_MEMORY/--memfd/' -e 's/\$IVSHMEM_OPTS//')
case $cmd in /usr/bin/ivshmem-server\ *) ;; *) die "unexpected ExecStart: $exec_start" ;; esac
# shellcheck disable=SC2086
$cmd 2>"$tmp/server.log" &
server_pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || die "the server did not start: $(cat "$tmp/server.log")"
(cd / && env -u IVSHMEM_LIB -u PYTHONPATH timeout 60 /usr/bin/python3 - "$sock" <<'PY') || die "Python smoke test failed"
import sys
import ivshmem
assert ivshmem.__file__.startswith("/usr/lib/python3/dist-packages/"), ivshmem.__file__
sock = sys.argv[1]
with ivshmem.open("server:" + sock) as a, ivshmem.open("server:" + sock) as b:
    assert a.backend == "server" and a.own_id != b.own_id and a.vectors == 1
    a.format("pkg")
    with a.channel("smoke", create=True) as x, b.channel("smoke") as y:
        x.send(b"record")
        assert y.recv(timeout=5) == b"record"
        y.send(b"reply")
        assert x.recv(timeout=5) == b"reply"
print("python3-ivshmem OK")
PY
bounded 30 /usr/bin/ivshmem-client -h >/dev/null 2>&1 || die "ivshmem-client -h failed"
bounded 30 /usr/bin/ivshmem --help >/dev/null 2>&1 || die "ivshmem --help failed"
pc=$(pkg-config --libs libivshmem) && [ "$(echo $pc)" = "-livshmem" ] || die "pkg-config --libs libivshmem: $pc"
kill "$server_pid"
wait "$server_pid" || true
server_pid=

log "ivshmem-dkms: dkms builds the module for the guest kernel's headers"
kver=$(basename "$(readlink "$top/.cache/guest-kernel/current")") ||
	die "no guest kernel; fix: scripts/guest-kernel.sh"
kdir=/lib/modules/$kver/build
[ -e "$kdir/Makefile" ] || die "no headers for $kver at $kdir; fix: apt-get install linux-headers-$kver"
version=$(dpkg-query -W -f='${Version}' ivshmem-dkms)
bounded 900 dkms build -m ivshmem -v "$version" -k "$kver" --kernelsourcedir "$kdir" >"$tmp/dkms.log" 2>&1 ||
	die "dkms build failed: $(tail -n 30 "$tmp/dkms.log")"
dkms status -m ivshmem -v "$version" -k "$kver" | grep -q "^ivshmem/$version, $kver, .*: \(built\|installed\)" ||
	die "dkms status does not show ivshmem built for $kver: $(dkms status -m ivshmem)"

log "apt-get purge; nothing left behind"
DEBIAN_FRONTEND=noninteractive bounded 600 apt-get "${APT_OPTS[@]}" purge -y -q "${pkgs[@]}" \
	>"$tmp/purge.log" 2>&1 || die "apt-get purge failed: $(tail -n 30 "$tmp/purge.log")"
for p in "${pkgs[@]}"; do
	if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -qv 'not-installed'; then
		die "$p is still known to dpkg"
	fi
done
left=$(sort -u "$tmp/files" | while read -r f; do if [ -e "$f" ] && [ ! -d "$f" ]; then echo "$f"; fi; done)
[ -z "$left" ] || die "files left after purge: $left"
[ ! -e "/usr/src/ivshmem-$version" ] || die "/usr/src/ivshmem-$version left after purge"
[ ! -e /var/lib/dkms/ivshmem ] || die "the dkms tree still has ivshmem: $(ls -R /var/lib/dkms/ivshmem)"
units=$(find /etc/systemd /lib/systemd/system -name '*ivshmem*' 2>/dev/null)
[ -z "$units" ] || die "units left after purge: $units"
echo "packages OK: ${pkgs[*]} built, lintian clean, installed, smoke-tested, purged"
