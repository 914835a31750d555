#!/bin/bash
# Run every test of the project on a Debian 12 machine, installing what it needs.
#
#   ./test.sh                 everything (what CI runs)
#   ./test.sh unit host vm    only these stages
#
# Stages: deps build install kmod unit asan tsan fuzz arm64 conformance vm vm-arm64 packages
# (the default; vm includes the nested tests), and vm-nested (only when named: just the nested
# tests, an L1 guest running an L2 guest under KVM; see docs/testing.md).
# The last line is always "N passed, N failed"; the exit status is non-zero on any failure.
# Logs: build-logs/<stage>.log, and meson's full test log per suite in build-logs/testlog-<suite>.txt.
# Environment: IVSHMEM_VM_KVM=1 boots guests with KVM instead of TCG; IVSHMEM_FUZZ_SECONDS sets
# each fuzz target's time (default 20).
set -uo pipefail
top=$(cd "$(dirname "$0")" && pwd)
cd "$top"
. scripts/lib.sh

all_stages=(deps build install kmod unit asan tsan fuzz arm64 conformance vm vm-arm64 packages)
if [ $# -gt 0 ]; then
	for s in "$@"; do
		case " ${all_stages[*]} vm-nested " in *" $s "*) ;; *)
			echo "usage: $0 [STAGE...]   stages: ${all_stages[*]} vm-nested" >&2; exit 2 ;;
		esac
	done
	stages=("$@")
else
	stages=("${all_stages[@]}")
fi
want() { case " ${stages[*]} " in *" $1 "*) return 0 ;; esac; return 1; }

logs=$top/build-logs
mkdir -p "$logs"
passed=0
failed=0
failures=()
t_start=$(date +%s)

record() { # record NAME OK|FAIL
	if [ "$2" = OK ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failures+=("$1")
	fi
}

# check NAME LOG CMD...: a single pass/fail check (a build, a script), bounded to 30 min.
check() {
	local name=$1 logf=$logs/$2.log
	shift 2
	log "$name"
	if bounded 1800 "$@" >"$logf" 2>&1; then
		record "$name" OK
		return 0
	fi
	echo "FAILED: $name (log: $logf); last lines:" >&2
	tail -n 40 "$logf" >&2
	record "$name" FAIL
	return 1
}

# suite FLAVOUR BUILDDIR MESON-TEST-ARGS...: run meson tests and count each test's result.
suite() {
	local flavour=$1 dir=$2
	shift 2
	log "meson test ($flavour): $*"
	rm -f "$dir/meson-logs/testlog.json"
	bounded 2400 meson test -C "$dir" --print-errorlogs "$@" >"$logs/test-$flavour.log" 2>&1
	local rc=$?
	# Kept per suite: the next suite run in the same build dir overwrites meson's own.
	cp "$dir/meson-logs/testlog.txt" "$logs/testlog-$flavour.txt" 2>/dev/null
	if [ ! -s "$dir/meson-logs/testlog.json" ]; then
		echo "FAILED: meson test ($flavour) produced no results (exit $rc); last lines:" >&2
		tail -n 40 "$logs/test-$flavour.log" >&2
		record "$flavour tests" FAIL
		return
	fi
	local counts
	counts=$(python3 - "$dir/meson-logs/testlog.json" "$flavour" <<'EOF'
import json, sys
ok = bad = skip = 0
names = []
for line in open(sys.argv[1]):
    t = json.loads(line)
    r = t.get("result")
    if r == "OK" or r == "EXPECTEDFAIL":
        ok += 1
    elif r == "SKIP":
        skip += 1
    else:
        bad += 1
        names.append(f"{sys.argv[2]}/{t.get('name')}:{r}".replace(" ", ""))
print(ok, bad, skip, " ".join(names))
EOF
)
	local ok bad skip names
	read -r ok bad skip names <<<"$counts"
	passed=$((passed + ok))
	failed=$((failed + bad))
	[ -n "$names" ] && failures+=($names)
	echo "    $flavour: $ok passed, $bad failed, $skip skipped" >&2
	if [ "$bad" != 0 ]; then
		echo "    failing output ($logs/test-$flavour.log):" >&2
		grep -E "^(not ok|# )|FAIL|ERROR|TIMEOUT" "$logs/test-$flavour.log" | head -n 80 >&2
		# A VM test prints a failed guest's console on stdout, which meson leaves out above.
		python3 - "$dir/meson-logs/testlog.json" <<'EOF' >&2
import json, sys
for line in open(sys.argv[1]):
    t = json.loads(line)
    if t.get("result") not in ("OK", "EXPECTEDFAIL", "SKIP"):
        out = (t.get("stdout") or "").splitlines()
        print(f"    ---- last {min(len(out), 200)} lines of {t.get('name')}'s output ----")
        print("\n".join(out[-200:]))
EOF
	fi
	if [ "$skip" != 0 ]; then
		failed=$((failed + skip))
		failures+=("$flavour: $skip skipped test(s) (a skip in this run is a failure)")
	fi
}

setup() { # setup DIR MESON-ARGS...: (re)configure a build dir
	local dir=$1
	shift
	if [ -d "$dir" ]; then
		meson setup --reconfigure "$dir" "$@"
	else
		meson setup "$dir" "$@"
	fi
}

if want deps; then
	need_root "./test.sh"
	check "install Debian packages" deps bash scripts/deps.sh || {
		echo "0 passed, 1 failed"; exit 1; }
	check "fetch guest kernel (linux-image-amd64) and headers" guest-kernel bash scripts/guest-kernel.sh
	check "fetch guest kernel 6.12 (bookworm-backports) and headers" guest-kernel-backports \
		bash scripts/guest-kernel.sh backports
	check "fetch arm64 guest kernel, headers and busybox" guest-kernel-arm64 bash scripts/guest-kernel.sh arm64
fi

build_ok=0
if want build || want unit || want conformance || want vm || want vm-arm64 || want vm-nested || want install || want kmod; then
	check "build (gcc, -Wall -Wextra -Werror)" build \
		bash -c "$(declare -f setup); setup build -Dwerror=true && ninja -C build" && build_ok=1
fi

if want install && [ $build_ok = 1 ]; then
	check "meson install + pkg-config consumer" install bash scripts/check-install.sh build
fi

if want kmod; then
	if [ -x scripts/build-kmod.sh ]; then
		check "ivshmem.ko against the guest kernel's linux-headers" kmod bash scripts/build-kmod.sh build
	else
		record "ivshmem.ko build (scripts/build-kmod.sh missing)" FAIL
	fi
	check "dkms add + build of kernel/ for the guest kernel" dkms bash scripts/check-dkms.sh
	check "ivshmem.ko against 6.12's linux-headers (bookworm-backports)" kmod-backports \
		bash scripts/build-kmod.sh build backports
	check "dkms add + build of kernel/ for 6.12" dkms-backports bash scripts/check-dkms.sh backports
	if [ -x scripts/checkpatch.sh ]; then
		check "checkpatch.pl --strict on kernel/ and the uapi header" checkpatch bash scripts/checkpatch.sh
	else
		record "checkpatch (scripts/checkpatch.sh missing)" FAIL
	fi
fi

if want unit && [ $build_ok = 1 ]; then
	check "lib/ layers: no include cycle, no upward include or call" layers bash -c \
		"python3 scripts/check-layers.py --self-test && \
		 python3 scripts/check-layers.py --archive build/lib/libivshmem.a"
	suite gcc build --suite unit --suite host
fi

if want asan; then
	check "build (ASan+UBSan)" build-asan bash -c "$(declare -f setup); \
		setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dguest_static=false \
		-Dbuildtype=debug && ninja -C build-asan" &&
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		suite asan build-asan --suite unit --suite host --timeout-multiplier 3
fi

if want tsan; then
	check "build (clang TSan)" build-tsan bash -c "$(declare -f setup); \
		CC=clang setup build-tsan -Db_sanitize=thread -Db_lundef=false -Dguest_static=false \
		&& ninja -C build-tsan" &&
		TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
		suite tsan build-tsan --suite tsan --timeout-multiplier 3
fi

if want fuzz; then
	check "build (clang libFuzzer)" build-fuzz bash -c "$(declare -f setup); \
		CC=clang setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
		-Dguest_static=false && ninja -C build-fuzz" &&
		suite fuzz build-fuzz --suite fuzz
fi

if want arm64; then
	check "cross-compile for aarch64" build-arm64 bash -c "$(declare -f setup); \
		setup build-arm64 --cross-file scripts/cross/aarch64-linux-gnu.ini -Dguest_static=false \
		&& ninja -C build-arm64"
	# What benchmarks are built with: -O3 must stay -Werror clean too.
	check "build (release, -O3 -Werror)" build-release bash -c "$(declare -f setup); \
		setup build-release --buildtype=release -Dwerror=true -Dguest_static=false \
		&& ninja -C build-release"
fi

# QEMU's own contrib ivshmem-server and ivshmem-client, built once per QEMU version and cached
# outside the clone (scripts/qemu-contrib.sh), then the same scenarios against theirs and ours.
if want conformance && [ $build_ok = 1 ]; then
	check "QEMU's contrib ivshmem-server/-client from Debian's qemu source" qemu-contrib \
		bash -c 'bash scripts/qemu-contrib.sh >"$1"' _ "$logs/qemu-contrib.dir" &&
		IVSHMEM_QEMU_CONTRIB=$(cat "$logs/qemu-contrib.dir") \
		suite conformance build --suite conformance
fi

if want vm && [ $build_ok = 1 ]; then
	suite vm build --suite vm
fi

if want vm-nested && [ $build_ok = 1 ]; then
	want kmod || check "modules for the nested guests" kmod-nested bash scripts/build-kmod.sh build
	suite vm-nested build --suite vm-nested
fi

if want vm-arm64 && [ $build_ok = 1 ]; then
	check "aarch64 guest: static tools and ivshmem.ko cross-built" build-vm-arm64 bash -c "$(declare -f setup); \
		setup build-vm-arm64 --cross-file scripts/cross/aarch64-linux-gnu.ini -Dguest_static=true \
		&& ninja -C build-vm-arm64 tools/ivshmem.static && bash scripts/build-kmod.sh build-vm-arm64 arm64" &&
		suite vm-arm64 build --suite vm-arm64
fi

# The Debian packages: build (from a copy of the tree), lintian, install, smoke test, purge.
if want packages; then
	check "Debian packages: build, lintian, install, smoke test, purge" packages bash scripts/check-packages.sh
fi

elapsed=$(($(date +%s) - t_start))
echo
echo "test.sh: stages [${stages[*]}] took $((elapsed / 60)) min $((elapsed % 60)) s"
if [ ${#failures[@]} -gt 0 ]; then
	echo "failed:"
	printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
