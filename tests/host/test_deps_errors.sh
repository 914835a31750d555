#!/bin/bash
# SPDX-License-Identifier: MIT
# The install scripts' failure paths: an unreachable mirror and a missing package must each
# end quickly with a message naming the problem (TAP output).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
n=0
fails=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi; }

if [ "$(id -u)" != 0 ]; then
	# Without root, the scripts must say that root is needed.
	out=$(IVSHMEM_APT_UPDATED= bash -c "set -euo pipefail; . '$top/scripts/lib.sh'; apt_index_ready" 2>&1)
	echo "$out" | grep -q "needs root"; ok $? "non-root run says it needs root: $out"
	echo "1..$n"; exit $((fails > 0))
fi

# An unreachable mirror: every fetch goes to a closed local port.
start=$(date +%s)
out=$(IVSHMEM_APT_UPDATED= IVSHMEM_APT_EXTRA_OPTS="-o Acquire::http::Proxy=http://127.0.0.1:9 -o Acquire::https::Proxy=http://127.0.0.1:9 -o Acquire::Retries=0" \
	bash -c "set -euo pipefail; . '$top/scripts/lib.sh'; apt_index_ready" 2>&1)
rc=$?
secs=$(($(date +%s) - start))
[ $rc != 0 ]; ok $? "unreachable mirror fails (exit $rc)"
echo "$out" | grep -q "cannot reach the Debian package mirror"; ok $? "and says so"
[ $secs -lt 120 ]; ok $? "within bounds ($secs s)"
echo "$out" | sed 's/^/# /'

# The real mirror works under the scripts' own `set -euo pipefail` (a grep finding nothing must not abort).
out=$(IVSHMEM_APT_UPDATED= bash -c "set -euo pipefail; . '$top/scripts/lib.sh'; apt_index_ready; echo READY" 2>&1)
echo "$out" | grep -q READY; ok $? "reachable mirror: apt_index_ready succeeds"

# A package that does not exist is named.
out=$(IVSHMEM_APT_UPDATED=1 bash -c "set -euo pipefail; . '$top/scripts/lib.sh'; apt_install ivshmem-no-such-package-xyz" 2>&1)
rc=$?
[ $rc != 0 ]; ok $? "missing package fails (exit $rc)"
echo "$out" | grep -q "'ivshmem-no-such-package-xyz' is not available"; ok $? "and names it: $out"

# Installed packages are not touched (no apt call, so this works offline).
out=$(IVSHMEM_APT_UPDATED= IVSHMEM_APT_EXTRA_OPTS="-o Acquire::http::Proxy=http://127.0.0.1:9" \
	bash -c "set -euo pipefail; . '$top/scripts/lib.sh'; apt_install bash coreutils" 2>&1)
ok $? "already-installed packages need no mirror"
echo "1..$n"
exit $((fails > 0))
