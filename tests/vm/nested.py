# SPDX-License-Identifier: MIT
"""Nested guests: an L1 guest that runs QEMU for L2 guests, under real KVM inside L1.

These machines have no KVM and cannot load modules. Under TCG, `-cpu max` exposes AMD SVM with
nested paging, so kvm_amd loads in an L1 guest (Debian kernel, TCG, 1.5 GiB) and L2 guests run
under KVM inside it: the production ioeventfd/irqfd path that plain TCG guests never take. When
L1's CPU has neither svm nor vmx, L2 falls back to TCG inside TCG (several times slower), which
is reported, never skipped. With IVSHMEM_VM_KVM=1, L1 itself runs under the host's KVM.

API (see tests/vm/test_nested_kvm.py):

    from nested import Nested, run_nested
    from rig import run_test

    def body(tap):
        def make():
            n = Nested("doorbell")                     # L1: rig.Guest n.l1, 1.5 GiB, 2 vCPUs
            a = n.add_l2("a", timeout=150)             # L2: a rig.Guest that L1 will run
            a.add_doorbell(vectors=4)                  # on L1's ivshmem-server (server_start)
            a.add_driver(); a.add_tool()
            a.add_file("/bin/drvtest", build_file("tests/vm/drvtest.static"))
            a.script = 'ok "L2 sees the device" test -e /dev/ivshmem0'
            n.l1.add_file("/lib/ivshmem_host.ko", n.l1.kmod("ivshmem_host.ko"))
            n.l1.script = '''
    server_start -n 4 -l 4M
    l2_run a
    ok "the server is still alive" kill -0 $server_pid
    '''
            return n
        with run_nested(tap, make) as n:               # runs it (again, if the emulator lost it)
            n.report(tap)                              # relays L1's and each L2's verdict

L1 script (sourced like any rig script: ok/pass/fail/diag/v/ctl_read/wait_for work), plus:
  $L2_ACCEL                 kvm or tcg: how L2 guests run (decided after loading kvm_amd/intel)
  server_start [ARGS]       our ivshmem-server (static) in L1 on $SERVER_SOCK, --memfd -v;
                            ARGS e.g. -n 4 -l 4M; $server_pid; its log is /tmp/server.log
  server_stop               SIGTERM it and wait
  l2_start NAME             start L2 NAME in the background (bounded by its timeout) and
                            wait until it booted; a boot that stalls past L2_BOOT_TIMEOUT
                            is killed and retried (L2_BOOT_TRIES in all), and said so
  l2_launch NAME            start it, without waiting or retrying (nested_stress.py)
  l2_wait NAME              wait for it to end; forward its verdict, console tail and QEMU log
  l2_run NAME               l2_start + l2_wait
  l2_send NAME LINE         a line for L2's ctl_read (its ttyS2 is a pipe in L1)
  l2_wait_line NAME ERE S   wait up to S s for a line of L2's verdict channel matching ERE;
                            prints it; a failed check (and status 1) if it never comes
Before the script, L1 loads kvm_amd (or kvm_intel) and checks it, and holds one KVM VM open
(so that SVM is not turned off and on with every L2 guest); after it, L1's dmesg is
checked for warnings. L2 scripts are ordinary rig scripts (they see the devices added with
add_doorbell/add_plain); after each one the rig appends a warnings check of L2's dmesg and a
"# HYPERVISOR x" line; report() checks that x is KVM exactly when L2_ACCEL is kvm. A script
that calls `exit` skips those appended checks: don't.

Exactly the known benign nested-KVM messages are allowed (ivshmem-facts.md): L2's boot WARNING
in arch/x86/kernel/fpu/xstate.c and L1's "Unhandled WRMSR"; any other WARNING, BUG, Oops,
leak or "Unhandled" line fails the run.

Channels: L2's ttyS1 (verdict) is a file in L1; when L2 ends, L1 writes it to its own verdict
channel as "L2:NAME| LINE", then the last 150 console lines ("L2CON:NAME| ") and QEMU's output
("L2QEMU:NAME| "), then "L2END:NAME rc=N boot=S total=S". report() turns that back into one
rig.Result per L2 (a failed L2 prints its console). Every boot is bounded: L1 by rig.Guest's
timeouts, each L2 by `timeout -s KILL` in L1 (its timeout, times NESTED_TCG_FACTOR under the
TCG fallback, and never past L1_MARGIN before L1's hard timeout: L1 still reports it).

The L1 payload (QEMU, its ldd closure, ld.so and ld.so.cache, the TCG accel module, the
firmware QEMU loads, kvm*.ko with their dependencies, the L2 kernel) is one gzip'd cpio archive
appended to L1's initramfs, cached in $IVSHMEM_NESTED_CACHE (default
/var/cache/ivshmem-ci/nested/<QEMU version>-<kernel version>-p<format>/), built in a temp dir and
renamed into place, so an interrupted build never leaves a broken cache.

Environment: those of rig.py, plus
  IVSHMEM_NESTED_CACHE=DIR   where the L1 payload is cached
  IVSHMEM_NESTED_NO_SVM=1    L1's CPU without svm (TCG L1 only): exercises the TCG fallback
  IVSHMEM_NESTED_BOOT_TIMEOUT=S  l2_start's limit for one L2 boot under KVM (default 120)
  IVSHMEM_NESTED_STALL_FIRST=1   every L2's first boot starts paused: proves l2_start's retry
  IVSHMEM_NESTED_ATTEMPTS=N      run_nested's runs of a test lost to the emulator (default 2)
  IVSHMEM_NESTED_LOSE_FIRST=1    the first run's first L2 resets at once: proves that retry
  IVSHMEM_NESTED_LOSE_FIRST=crash  ... panics instead: never retried, the test fails
"""

import glob
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time

from rig import (Cpio, Guest, Result, RigError, build_file, guest_kernel, module_closure,
                 qemu_binary)

CACHE_DIR = os.environ.get("IVSHMEM_NESTED_CACHE") or "/var/cache/ivshmem-ci/nested"
PAYLOAD_FORMAT = 1      # bump when the payload's contents change
L1_CPU = "max,la57=off"  # TCG's max, with SVM and nested paging (see Nested)
NESTED_TCG_FACTOR = 6   # L2 timeouts under TCG inside TCG
# An L2 boot under KVM takes 24-45 s here; 1 in 24 stalled for good in nested_stress.py
# (QEMU's TCG, not our code: docs/testing.md), so l2_start kills a boot that takes longer
# than this and retries.
L2_BOOT_TIMEOUT = int(os.environ.get("IVSHMEM_NESTED_BOOT_TIMEOUT", "120"))  # s (x TCG factor)
L2_BOOT_TRIES = 3
# An L2 guest's error when it booted and ended without an exit status (lost_to_emulator).
VANISHED = "stopped without an exit status"
L1_MARGIN = 60          # s: every L2 ends this long before L1's hard timeout
SERVER_SOCK = "/run/ivshmem.sock"
KVM_MODULES = ("kvm_amd", "kvm_intel")
# Files QEMU opens for `-machine pc -nodefaults -kernel` (no NIC, no VGA: no option ROMs).
FIRMWARE = ("bios-256k.bin", "linuxboot_dma.bin", "kvmvapic.bin")
ACCEL_MODULES = ("accel-tcg-x86_64.so",)

# The known benign messages under nested KVM (ivshmem-facts.md), per level: extended regexps.
BENIGN_L1 = r"kvm.*Unhandled WRMSR"
BENIGN_L2 = r"WARNING: CPU: [0-9]+ PID: [0-9]+ at arch/x86/kernel/fpu/xstate\.c"
WARNING_RE = r"WARNING|BUG|Oops|leak|Unhandled"

# nested_warnings WHERE BENIGN: dmesg has no warning line but ones matching BENIGN.
WARNINGS_SH = r"""
nested_warnings() {
	dmesg >/tmp/nested.dmesg
	grep -E '""" + WARNING_RE + r"""' /tmp/nested.dmesg >/tmp/nested.warn
	grep -vE "$2" /tmp/nested.warn >/tmp/nested.bad
	grep -E "$2" /tmp/nested.warn | sed 's/^\[[ 0-9.]*\] //' | sort -u | head -n 5 |
		while IFS= read -r l; do diag "allowed (known benign under nested KVM): $l"; done
	head -n 20 /tmp/nested.bad | while IFS= read -r l; do diag "unexpected: $l"; done
	ok "$1: no kernel warning but the known nested-KVM ones" test ! -s /tmp/nested.bad
}
"""

L2_EPILOGUE = WARNINGS_SH + r"""
hv=$(dmesg | sed -n 's/.*Hypervisor detected: //p' | head -n 1)
diag "HYPERVISOR ${hv:-none}"
nested_warnings "L2 kernel" '""" + BENIGN_L2 + r"""'
"""

L1_LIB = WARNINGS_SH + r"""
L2_BOOT_TIMEOUT=@BOOT_TIMEOUT@
L2_BOOT_TRIES=@BOOT_TRIES@
L2_STALL_FIRST=@STALL_FIRST@
L2_ACCEL=tcg
L2_CPU=max
SERVER_SOCK=""" + SERVER_SOCK + r"""
server_pid=
now() { cut -d' ' -f1 /proc/uptime; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
l2_pid() { eval "echo \${l2pid_$1:-}"; }

# l2_alive NAME: its QEMU still runs. Not kill -0: an ended one stays a zombie until waited for.
l2_alive() {
	l2p=$(l2_pid "$1")
	[ -n "$l2p" ] && read -r _ _ l2st _ 2>/dev/null <"/proc/$l2p/stat" && [ "$l2st" != Z ]
}

nested_setup() {
	mkdir -p /run /tmp/l2
	flags=$(grep -m 1 '^flags' /proc/cpuinfo)
	kvm_mod=
	case " $flags " in
	*" svm "*) kvm_mod=kvm_amd ;;
	*" vmx "*) kvm_mod=kvm_intel ;;
	esac
	if [ -n "$kvm_mod" ]; then
		for ko in $(cat /etc/nested/$kvm_mod.order); do
			insmod "$ko" 2>/tmp/insmod.err || fail "L1: insmod $ko: $(cat /tmp/insmod.err)"
		done
	fi
	if [ -c /dev/kvm ]; then
		L2_ACCEL=kvm
		L2_CPU=host
		# Hold one VM (no vCPU) for L1's lifetime, so that KVM never turns SVM off and on
		# again on every CPU when an L2 guest ends or starts: that cross-CPU call once
		# never returned (L1 soft lockup in kvm_destroy_vm, docs/testing.md).
		/usr/bin/qemu-system-x86_64 -machine none -accel kvm -nodefaults -display none -S \
			</dev/null >/tmp/kvm-hold.log 2>&1 &
		kvm_hold=$!
		ok "L1 holds a KVM VM open for its lifetime (SVM stays enabled between L2 guests)" \
			wait_for 20 sh -c "ls -l /proc/$kvm_hold/fd 2>/dev/null | grep -q kvm-vm"
	fi
	export L2_ACCEL L2_CPU
	v "NESTED-ACCEL $L2_ACCEL ${kvm_mod:-none}"
	if [ -n "$kvm_mod" ]; then
		ok "L2 accelerator: $L2_ACCEL (L1's CPU has ${kvm_mod#kvm_} virtualization: $kvm_mod loaded, /dev/kvm present)" \
			sh -c "test $L2_ACCEL = kvm && test -d /sys/module/$kvm_mod"
	else
		pass "L2 accelerator: tcg (L1's CPU has neither svm nor vmx: TCG inside TCG, a fallback, not a skip)"
	fi
}

server_start() {
	ivshmem-server -F -S "$SERVER_SOCK" --memfd -v "$@" 2>/tmp/server.log &
	server_pid=$!
	wait_for 10 grep -q 'listening on' /tmp/server.log ||
		fail "L1: ivshmem-server $* did not start: $(tr '\n' '|' </tmp/server.log)"
}

server_stop() {
	[ -n "$server_pid" ] || return 0
	kill "$server_pid"
	wait "$server_pid"
	server_pid=
}

l2_launch() {
	l2name=$1
	shift
	d=/tmp/l2/$l2name
	mkdir -p "$d"
	rm -f "$d/ctl.in" "$d/ctl.out" "$d/booted" "$d/rc"
	mkfifo "$d/ctl.in" "$d/ctl.out"
	: >"$d/verdict.log"
	now >"$d/start"
	sh "/etc/nested/l2-$l2name.sh" "$@" >"$d/qemu.log" 2>&1 &
	eval "l2pid_$l2name=$!"
}

# l2_start NAME: launch L2 NAME and wait until it boots (its /init wrote RIG-BOOTED, before
# any module of ours loads). A boot that stalls past L2_BOOT_TIMEOUT or ends first is QEMU's
# TCG losing the L2 guest (docs/testing.md): kill it, say so, try again (L2_BOOT_TRIES in all).
l2_start() {
	l2try=1
	while :; do
		# IVSHMEM_NESTED_STALL_FIRST=1: the first try starts paused (-S), to prove the retry.
		if [ $l2try = 1 ] && [ "$L2_STALL_FIRST" = 1 ]; then l2_launch "$1" -S; else l2_launch "$1"; fi
		d=/tmp/l2/$1
		pid=$(l2_pid "$1")
		t=$L2_BOOT_TIMEOUT
		[ "$L2_ACCEL" = kvm ] || t=$((t * @TCG_FACTOR@))
		t=$((t * 5))
		while ! grep -q '^RIG-BOOTED' "$d/verdict.log" && l2_alive "$1" && [ $t -gt 0 ]; do
			sleep 0.2
			t=$((t - 1))
		done
		if grep -q '^RIG-BOOTED' "$d/verdict.log"; then
			now >"$d/booted"
			return 0
		fi
		kill -KILL "$pid" 2>/dev/null
		wait "$pid"
		rc=$?
		v "L2RETRY:$1 attempt $l2try of $L2_BOOT_TRIES did not boot (QEMU status $rc after $(elapsed "$(cat "$d/start")" "$(now)") s); console tail: $(tail -n 3 "$d/console.log" 2>/dev/null | tr -d '\033' | tr '\n' '|')"
		if [ $l2try -ge $L2_BOOT_TRIES ]; then
			echo $rc >"$d/rc"   # for l2_wait, which reports it as never booted
			return 0
		fi
		l2try=$((l2try + 1))
	done
}

l2_wait() {
	d=/tmp/l2/$1
	pid=$(l2_pid "$1")
	while l2_alive "$1"; do
		sleep 0.2
	done
	if [ -f "$d/rc" ]; then
		rc=$(cat "$d/rc")
	else
		wait "$pid"
		rc=$?
	fi
	end=$(now)
	start=$(cat "$d/start")
	booted=$(cat "$d/booted" 2>/dev/null || true)
	[ -n "$booted" ] || ! grep -q '^RIG-BOOTED' "$d/verdict.log" || booted=$end
	# awk ends every line, the last one of a console cut mid-line too.
	awk -v p="L2:$1| " '{ print p $0 }' "$d/verdict.log" >&3
	tail -n 150 "$d/console.log" 2>/dev/null | awk -v p="L2CON:$1| " '{ print p $0 }' >&3
	awk -v p="L2QEMU:$1| " '{ print p $0 }' "$d/qemu.log" >&3
	v "L2END:$1 rc=$rc boot=$( [ -n "$booted" ] && elapsed "$start" "$booted" || echo -) total=$(elapsed "$start" "$end")"
	return 0
}

l2_run() {
	l2_start "$1"
	l2_wait "$1"
}

l2_send() {
	# Opening the FIFO blocks once QEMU (its reader) is gone: check, and bound it anyway.
	if ! l2_alive "$1"; then
		fail "L1: cannot send '$2' to L2 $1: it has ended"
		return 1
	fi
	timeout 10 sh -c 'echo "$1" >"$2"' - "$2" "/tmp/l2/$1/ctl.in" ||
		fail "L1: sending '$2' to L2 $1 failed or blocked"
}

l2_wait_line() {
	t=$(( $3 * 10 ))
	while ! grep -E "$2" "/tmp/l2/$1/verdict.log" >"/tmp/l2/$1/match" 2>/dev/null; do
		t=$((t - 1))
		if [ $t -le 0 ]; then
			fail "L1: L2 $1 wrote no /$2/ within $3 s"
			return 1
		fi
		if ! l2_alive "$1"; then
			fail "L1: L2 $1 ended before writing /$2/"
			return 1
		fi
		sleep 0.1
	done
	tail -n 1 "/tmp/l2/$1/match"
}
"""

L1_LIB = (L1_LIB.replace("@BOOT_TIMEOUT@", str(L2_BOOT_TIMEOUT))
          .replace("@BOOT_TRIES@", str(L2_BOOT_TRIES))
          .replace("@STALL_FIRST@", os.environ.get("IVSHMEM_NESTED_STALL_FIRST", "0"))
          .replace("@TCG_FACTOR@", str(NESTED_TCG_FACTOR)))

L1_PROLOGUE = ". /etc/nested/lib.sh\nnested_setup\n"
L1_EPILOGUE = "\nserver_stop\nnested_warnings \"L1 kernel\" '" + BENIGN_L1 + "'\n"


# ---- the cached L1 payload ------------------------------------------------------------------

def counts(lines, tag):
    """The key=value figures of the '# TAG ...' line in @lines ({} if there is none); a value
    that is not a number is None (a module that failed to load prints empty ones)."""
    for line in lines:
        if line.startswith(f"# {tag} "):
            kv = (item.partition("=") for item in line.split()[2:])
            return {k: int(v) if re.fullmatch(r"-?\d+", v) else None for k, _, v in kv}
    return {}


def _qemu_version(qemu):
    out = subprocess.run([qemu, "--version"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"version (\S+)(?: \((.*)\))?", out)
    if not m:
        raise RigError(f"cannot tell {qemu}'s version from: {out.strip()!r}")
    return m.group(2) or m.group(1)


def _ldd(path):
    """The shared libraries @path loads (ldd's resolved paths) and its interpreter."""
    out = subprocess.run(["ldd", path], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RigError(f"ldd {path} failed: {out.stderr.strip()}")
    libs = []
    for line in out.stdout.splitlines():
        m = re.search(r"=> (/\S+)", line) or re.match(r"\s*(/\S+) \(", line)
        if m:
            libs.append(m.group(1))
    return libs


def _firmware_dirs(qemu):
    out = subprocess.run([qemu, "-L", "help"], capture_output=True, text=True, timeout=30).stdout
    return [os.path.normpath(d) for d in out.split()]


def _find(name, dirs, what):
    for d in dirs:
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    raise RigError(f"{what} {name} not found in {', '.join(dirs)}\n"
                   "  fix: apt-get install qemu-system-x86 (it brings seabios and ipxe-qemu)")


def _build_payload(out_dir, qemu, kernel):
    vmlinuz, modules_dir, _ = kernel
    c = Cpio()
    manifest = []

    def put(dest, src):
        c.add_file(dest, src, 0o755 if os.access(src, os.X_OK) else 0o644)
        manifest.append(f"{dest} <- {src} ({os.path.getsize(src)} bytes)")

    put("/usr/bin/qemu-system-x86_64", qemu)
    accel = []
    for name in ACCEL_MODULES:
        # QEMU's module dir (CONFIG_QEMU_MODDIR): /usr/lib/<multiarch>/qemu on Debian.
        found = sorted(glob.glob(f"/usr/lib/*/qemu/{name}")) + sorted(
            glob.glob(f"/usr/lib/qemu/{name}"))
        if not found:
            raise RigError(f"QEMU's module {name} is missing (TCG for L2 needs it)\n"
                           "  fix: apt-get install qemu-system-x86")
        accel.append(found[0])
        put(found[0], found[0])
    libs = []
    for binary in [qemu] + accel:
        libs += [lib for lib in _ldd(binary) if lib not in libs]
    for lib in libs:
        put(lib, lib)
    if os.path.exists("/etc/ld.so.cache"):
        put("/etc/ld.so.cache", "/etc/ld.so.cache")
    fw_dirs = _firmware_dirs(qemu)
    for name in FIRMWARE:
        path = _find(name, fw_dirs, "QEMU firmware")
        put(path, path)
    kos = set()
    for mod in KVM_MODULES:
        order = []
        for ko in module_closure(modules_dir, [mod]):
            dest = "/lib/nested/kvm/" + os.path.basename(ko)
            if dest not in kos:
                kos.add(dest)
                put(dest, ko)
            order.append(dest)
        c.add(f"/etc/nested/{mod}.order", ("\n".join(order) + "\n").encode(), 0o644)
    put("/l2/vmlinuz", vmlinuz)
    c.write(os.path.join(out_dir, "payload.cpio.gz"))
    with open(os.path.join(out_dir, "manifest.txt"), "w") as f:
        f.write("\n".join(manifest) + "\n")


def l1_payload():
    """The cached payload archive (built when missing): QEMU, libraries, firmware, kvm*.ko."""
    qemu = qemu_binary()
    kernel = guest_kernel()
    key = re.sub(r"[^A-Za-z0-9.+_-]", "_",
                 f"qemu-{_qemu_version(qemu)}-{kernel[2]}-p{PAYLOAD_FORMAT}")
    final = os.path.join(CACHE_DIR, key)
    archive = os.path.join(final, "payload.cpio.gz")
    if os.path.exists(archive):
        return archive
    try:
        os.makedirs(CACHE_DIR, exist_ok=True)
    except OSError as e:
        raise RigError(f"cannot create the nested payload cache {CACHE_DIR}: {e}\n"
                       "  fix: set IVSHMEM_NESTED_CACHE to a writable directory")
    for stale in glob.glob(os.path.join(CACHE_DIR, ".build-*")):
        if time.time() - os.path.getmtime(stale) > 3600:  # a build killed long ago
            shutil.rmtree(stale, ignore_errors=True)
    tmp = tempfile.mkdtemp(prefix=".build-", dir=CACHE_DIR)
    os.chmod(tmp, 0o755)
    try:
        _build_payload(tmp, qemu, kernel)
        try:
            os.rename(tmp, final)
        except OSError:
            if not os.path.exists(archive):  # not a concurrent build that won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return archive


# ---- L2 guests -------------------------------------------------------------------------------

class L2Guest(Guest):
    """An L2 guest: a rig.Guest whose initramfs the host builds and whose QEMU runs in L1.
    Devices refer to L1's paths (the server socket, /dev/shm files in L1)."""

    def __init__(self, nested, name, timeout=150, mem=256, smp=1, kernel_args=""):
        if not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise RigError(f"L2 guest name {name!r}: letters, digits and _ only")
        super().__init__(f"{nested.name}-{name}", timeout=timeout, mem=mem, smp=smp,
                         kernel_args=kernel_args)
        self.l2_name = name
        self.forwarded_console = []
        self.forwarded_qemu = []

    def add_plain(self, path=None, size="16M", memfd=False, addr=None, data=None, id=None):
        """An ivshmem-plain device on L1's /dev/shm/@path (QEMU in L1 creates it); returns
        that L1 path. For initial data, the L1 script writes the file at its full size before
        l2_start (`truncate -s SIZE`: QEMU refuses a smaller one). No @data here."""
        if data is not None:
            raise RigError("L2Guest.add_plain: write initial data from the L1 script instead")
        self._ndev += 1
        mid = f"shm{self._ndev}"
        path = path or f"/dev/shm/ivshmem-{self.l2_name}-{self._ndev}"
        if memfd:
            self.devices += ["-object", f"memory-backend-memfd,id={mid},size={size},share=on"]
            path = None
        else:
            self.devices += ["-object",
                             f"memory-backend-file,id={mid},size={size},share=on,mem-path={path}"]
        did = f",id={id}" if id else ""
        self.devices += ["-device", f"ivshmem-plain,memdev={mid}{self._addr(addr)}{did}"]
        return path

    def add_doorbell(self, socket_path=SERVER_SOCK, vectors=1, addr=None, ioeventfd=True,
                     master=False, id=None):
        """An ivshmem-doorbell device on a server socket in L1 (default: server_start's)."""
        super().add_doorbell(socket_path, vectors=vectors, addr=addr, ioeventfd=ioeventfd,
                             master=master, id=id)

    def launcher(self):
        """The shell script L1 runs to start this guest's QEMU (bounded by `timeout`)."""
        d = f"/tmp/l2/{self.l2_name}"
        append = f"console=ttyS0 panic=-1 oops=panic quiet loglevel=4 {self.kernel_args}".strip()
        args = ["-machine", self.machine, "-m", str(self.mem), "-smp", str(self.smp),
                "-nodefaults", "-nographic", "-no-reboot", "-display", "none",
                "-kernel", "/l2/vmlinuz", "-initrd", f"/l2/{self.l2_name}.initramfs.gz",
                "-append", append,
                "-chardev", f"file,id=con,path={d}/console.log", "-serial", "chardev:con",
                "-chardev", f"file,id=verdict,path={d}/verdict.log", "-serial", "chardev:verdict",
                "-chardev", f"pipe,id=ctl,path={d}/ctl", "-serial", "chardev:ctl"]
        args += self.devices + self.qemu_extra
        t = int(self.timeout)
        quoted = " ".join(shlex.quote(a) for a in args)
        return (f"t={t}\n[ \"$L2_ACCEL\" = kvm ] || t=$((t * {NESTED_TCG_FACTOR}))\n"
                # End before L1's own hard timeout, so that L1 still forwards what L2 did.
                "left=$(awk -v d=\"$NESTED_L1_DEADLINE\" '{ print int(d - $1) }' /proc/uptime)\n"
                "[ \"$t\" -le \"$left\" ] || t=$left\n[ \"$t\" -gt 0 ] || t=1\n"
                "exec timeout -s KILL $t /usr/bin/qemu-system-x86_64 "
                f"-accel \"$L2_ACCEL\" -cpu \"$L2_CPU\" {quoted} \"$@\"\n")

    def forwarded_result(self, lines):
        """The rig.Result of this guest from L1's forwarded lines (prefixes stripped)."""
        own = f"L2:{self.l2_name}| "
        con = f"L2CON:{self.l2_name}| "
        qlog = f"L2QEMU:{self.l2_name}| "
        end = f"L2END:{self.l2_name} "
        verdict, end_line = [], None
        for line in lines:
            if line.startswith(own):
                verdict.append(line[len(own):])
            elif line.startswith(con):
                self.forwarded_console.append(line[len(con):])
            elif line.startswith(qlog):
                self.forwarded_qemu.append(line[len(qlog):])
            elif line.startswith(end):
                end_line = dict(kv.split("=", 1) for kv in line[len(end):].split())
        exit_code, booted, out = None, False, []
        for line in verdict:
            if line.startswith("RIG-EXIT"):
                exit_code = int(line.split()[1])
            elif line.startswith("RIG-BOOTED"):
                booted = True
                self.kernel_release = line[len("RIG-BOOTED"):].strip() or None
            else:
                out.append(line)
        error = None
        if end_line is None:
            error = "L1 never reported this L2 guest's end (L1 failed or timed out first)"
        else:
            self.end = end_line
            if end_line.get("boot", "-") != "-":
                self.boot_seconds = float(end_line["boot"])
            if end_line.get("rc") == "137":
                error = f"killed by L1 after its timeout ({end_line.get('total')} s)"
            elif not booted:
                error = f"never booted (QEMU in L1 exited with {end_line.get('rc')})"
            elif exit_code is None:
                error = f"{VANISHED} (QEMU in L1: {end_line.get('rc')}; oops?)"
        self.result = Result(self, out, exit_code, error)
        return self.result

    def console_tail(self, lines=150):
        out = (f"---- console of L2 guest {self.name} (last {lines} lines, via L1) ----\n"
               + "\n".join(self.forwarded_console[-lines:]) + "\n")
        if self.forwarded_qemu:
            out += "---- its qemu output (in L1) ----\n" + "\n".join(self.forwarded_qemu) + "\n"
        return out + "---- end ----"


# ---- the L1 guest ----------------------------------------------------------------------------

class Nested:
    """An L1 guest (self.l1, a rig.Guest) running L2 guests. Use as a context manager."""

    def __init__(self, name, timeout=900, boot_timeout=180, mem=1536, smp=2,
                 kernel_args="panic_on_warn=1 softlockup_panic=1"):
        self.name = name
        self.l1 = Guest(f"{name}-L1", timeout=timeout, boot_timeout=boot_timeout, mem=mem,
                        smp=smp, kernel_args=kernel_args)
        # QEMU takes the last -cpu. Without LA57, L1 (and KVM's nested page tables for L2)
        # use 4-level paging: L2 boots took 24-45 s instead of 58-62 s here.
        self.l1.qemu_extra += ["-cpu", L1_CPU]
        if os.environ.get("IVSHMEM_NESTED_NO_SVM") == "1":
            # QEMU takes the last -cpu: a model without svm (TCG has no vmx), to run the TCG
            # fallback on purpose. Not max,svm=off: the static busybox aborts at start there.
            self.l1.qemu_extra += ["-cpu", "Nehalem"]
        self.l2 = {}
        self.script = None
        self.accel = None          # "kvm" or "tcg", as L1 decided
        self.l1_virt = None        # the KVM module L1's CPU calls for (kvm_amd), or "none"
        self.result = None
        self.started = None
        self.wall_seconds = None

    def add_l2(self, name, timeout=150, mem=256, smp=1, kernel_args=""):
        if name in self.l2:
            raise RigError(f"two L2 guests named {name}")
        g = L2Guest(self, name, timeout=timeout, mem=mem, smp=smp, kernel_args=kernel_args)
        self.l2[name] = g
        return g

    def _l1_text(self, guest_path, text):
        host = os.path.join(self.l1.dir, "nested-" + guest_path.strip("/").replace("/", "_"))
        with open(host, "w") as f:
            f.write(text)
        self.l1.add_file(guest_path, host)

    def start(self):
        l1 = self.l1
        l1.extra_initrd.append(l1_payload())
        l1.add_file("/bin/ivshmem-server", build_file("server/ivshmem-server.static"))
        # L1's uptime lags the host's clock by QEMU's start-up: keep a margin for forwarding.
        deadline = max(self.l1.timeout - L1_MARGIN, 1)
        self._l1_text("/etc/nested/lib.sh", f"NESTED_L1_DEADLINE={deadline:.0f}\n"
                      "export NESTED_L1_DEADLINE\n" + L1_LIB)
        for name, g in self.l2.items():
            g.script = g.script + "\n" + L2_EPILOGUE
            _, initrd = g._initramfs()
            l1.add_file(f"/l2/{name}.initramfs.gz", initrd)
            self._l1_text(f"/etc/nested/l2-{name}.sh", g.launcher())
        l1.script = L1_PROLOGUE + l1.script + L1_EPILOGUE
        self.started = time.monotonic()
        l1.start()
        return self

    def wait(self):
        self.result = self.l1.wait()
        self.wall_seconds = time.monotonic() - self.started
        for line in self.result.lines:
            if line.startswith("NESTED-ACCEL "):
                self.accel, self.l1_virt = line.split()[1:3]
        for g in self.l2.values():
            g.forwarded_result(self.result.lines)
        return self.result

    def run(self):
        if self.l1.proc is None:
            self.start()
        return self.wait()

    def report(self, tap):
        """Relay L1's and every L2's checks; check that each L2 ran under the accelerator L1
        reported. Returns True when everything passed."""
        tap.diag(f"[{self.name}] L2 accelerator: {self.accel or 'unknown (L1 never said)'}; "
                 f"whole nested run {self.wall_seconds or 0:.1f} s")
        ok = tap.guest(self.result)
        for line in self.result.lines:
            if line.startswith("L2RETRY:"):
                tap.diag(f"[{self.name}] L2 {line[len('L2RETRY:'):]}")
        for g in self.l2.values():
            end = getattr(g, "end", {})
            tap.diag(f"[{g.name}] L2 under {self.accel}: boot {end.get('boot', '-')} s, "
                     f"run {end.get('total', '-')} s (in L1)")
            ok = tap.guest(g.result) and ok
            hv = [line.split(None, 2)[2] for line in g.result.lines
                  if line.startswith("# HYPERVISOR ")]
            seen = hv[0] if hv else "(not reported)"
            if self.accel == "kvm":
                ok = tap.ok(seen == "KVM", f"[{g.name}] L2's kernel detected hypervisor KVM "
                            f"(dmesg: {seen})") and ok
            else:
                ok = tap.ok(bool(hv) and seen != "KVM", f"[{g.name}] L2 ran under TCG: no KVM "
                            f"hypervisor in its dmesg ({seen})") and ok
        return ok

    def lost_to_emulator(self):
        """Why this run was lost to QEMU's TCG rather than failed by our code, or None.

        Only two signatures, both seen with nothing of ours involved (nested_stress.py,
        docs/testing.md): L1's kernel stuck or corrupted in an L2 vCPU thread (qemu-system-x86)
        with no ivshmem frame in its trace; an L2 guest that booted, then vanished (QEMU in L1
        exited, no exit status) without a kernel message on its console. An oops, a panic or a
        hang of ours leaves one of those, or a failed check, and is never retried."""
        con = _kernel_lines(self.l1.console_text())
        ours = [ln for ln in con if "ivshmem" in ln and "Modules linked in" not in ln]
        stuck = [ln for ln in con if re.search(
            r"soft lockup - CPU#\d+ stuck .*\[qemu-system-x86|stack guard page was hit|"
            r"corrupted stack end detected", ln)]
        if stuck and not ours:
            return f"L1's kernel: {stuck[0].split('] ', 1)[-1]}"
        for g in self.l2.values():
            r = getattr(g, "result", None)
            if (r is None or r.error is None or not r.error.startswith(VANISHED)
                    or g.boot_seconds is None):
                continue
            trace = [ln for ln in _kernel_lines("\n".join(g.forwarded_console))
                     if re.search(r"Kernel panic|Oops|BUG|Call Trace|RIP:|ivshmem", ln)]
            if not trace:
                return (f"L2 guest {g.name} vanished after booting (QEMU in L1 exited "
                        f"{getattr(g, 'end', {}).get('rc')}) with no kernel message on its console")
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.l1.__exit__(*exc)
        for g in self.l2.values():
            g.__exit__(*exc)
        return False


def _kernel_lines(text):
    """The kernel's lines of a console (printk timestamps), not the test script's output."""
    return [ln for ln in text.split("\n") if re.match(r"\s*\[\s*\d+\.\d+\]", ln)]


NESTED_ATTEMPTS = int(os.environ.get("IVSHMEM_NESTED_ATTEMPTS", "2"))


def run_nested(tap, make):
    """make() returns a configured, unstarted Nested. Run it; when the run was lost to the
    emulator (Nested.lost_to_emulator), say so with L1's console tail as TAP comments and run
    a fresh one, NESTED_ATTEMPTS runs in all. Returns the last Nested, run but not reported:
    use it as a context manager (its guests are cleaned up on exit)."""
    for attempt in range(1, NESTED_ATTEMPTS + 1):
        n = make()
        lose = os.environ.get("IVSHMEM_NESTED_LOSE_FIRST")
        if attempt == 1 and lose in ("1", "crash"):
            # Proves the retry: the first L2 resets at once, as a guest QEMU lost would
            # (sysrq b); or, never retried, crashes with a kernel panic (sysrq c).
            g = next(iter(n.l2.values()))
            g.script = f"echo {'c' if lose == 'crash' else 'b'} >/proc/sysrq-trigger\nsleep 10\n" + g.script
        try:
            n.run()
            why = n.lost_to_emulator() if attempt < NESTED_ATTEMPTS else None
        except BaseException:
            n.__exit__(None, None, None)
            raise
        if why is None:
            return n
        tap.diag(f"[{n.name}] NESTED-RETRY attempt {attempt} of {NESTED_ATTEMPTS} lost to the "
                 f"emulator: {why}; running it again on a fresh L1")
        tap.diag(n.l1.console_tail(40))
        for g in n.l2.values():
            if getattr(g, "result", None) is not None and not g.result.passed:
                tap.diag(g.console_tail(40))
        n.__exit__(None, None, None)
    raise RigError("unreachable")
