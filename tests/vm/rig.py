# SPDX-License-Identifier: MIT
"""The VM rig: boots real QEMU guests running the Debian kernel on a busybox initramfs.

A test describes guests (devices, files, a shell script) and the rig runs them:

    from rig import Guest, Tap
    tap = Tap()
    with Guest("smoke") as g:
        shm = g.add_plain(size="16M")              # /dev/shm file, host-visible
        g.script = 'ok "found" test -e /sys/bus/pci/devices/0000:00:04.0'
        result = g.run()                           # boots, waits, collects the verdict
    tap.guest(result)                              # relays the guest's ok/not ok lines
    sys.exit(tap.done())

Each guest has its own temp dir, a hard timeout, and three serial ports:
  ttyS0  console          -> console.log (printed when the guest fails)
  ttyS1  verdict channel  -> verdict.log: "ok ...", "not ok ...", "# ...", RIG-* marks
  ttyS2  control channel  <- Guest.send(): lines the guest reads with `ctl_read`
plus an HMP monitor socket for hotplug (Guest.hmp()).

An aarch64 guest (Guest(..., arch="aarch64")) runs qemu-system-aarch64 -M virt under TCG with
Debian's arm64 kernel and busybox (scripts/guest-kernel.sh arm64); its console is the PL011
(ttyAMA0) and a pci-serial-4x card gives the same ttyS1/ttyS2 channels as on x86. Its static
tools and module come from the aarch64 cross build (IVSHMEM_ARM64_BUILD_DIR).

Environment:
  IVSHMEM_VM_KVM=1       use KVM instead of TCG for x86_64 guests (KVM hangs on our CI
                         machines); without a usable /dev/kvm the guest fails to start, naming it
  IVSHMEM_VM_TIMEOUT=S   scale: override every guest's timeout
  IVSHMEM_VM_KERNEL=K    which x86_64 guest kernel: current (default, Debian 12's 6.1) or
                         backports (6.12); scripts/guest-kernel.sh K and scripts/build-kmod.sh BUILD K
  IVSHMEM_GUEST_KERNEL   unpacked guest kernel dir (default: .cache/guest-kernel/K)
  IVSHMEM_BUILD_DIR      meson build dir holding the static tools and ivshmem.ko
  IVSHMEM_ARM64_BUILD_DIR  aarch64 cross build (-Dguest_static=true) with ivshmem.static and
                         kernel-arm64/ivshmem.ko (default: build-vm-arm64 in the source dir)
  IVSHMEM_KEEP_VM_DIRS=1 keep each guest's temp dir for debugging
"""

import glob
import gzip
import io
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

SOURCE_DIR = os.environ.get("IVSHMEM_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD_DIR = os.environ.get("IVSHMEM_BUILD_DIR") or os.path.join(SOURCE_DIR, "build")
ARM64_BUILD_DIR = os.environ.get("IVSHMEM_ARM64_BUILD_DIR") or os.path.join(SOURCE_DIR, "build-vm-arm64")
KERNEL_NAME = os.environ.get("IVSHMEM_VM_KERNEL") or "current"
KERNEL_DIR = os.environ.get("IVSHMEM_GUEST_KERNEL") or os.path.join(
    SOURCE_DIR, ".cache", "guest-kernel", KERNEL_NAME)
KVM_DEVICE = "/dev/kvm"

# What differs between guest architectures. "kernel" names scripts/guest-kernel.sh's kernel.
ARCHES = {
    "x86_64": {"qemu": "qemu-system-x86_64", "package": "qemu-system-x86", "machine": "pc",
               "cpu": "max", "console": "ttyS0", "kernel": None, "build_dir": BUILD_DIR},
    # cortex-a57 rather than max: no pointer authentication or SVE to emulate, so TCG boots
    # it faster; -M virt's PCIe host, GICv2m (MSI-X) and PL011 are built into Debian's kernel.
    "aarch64": {"qemu": "qemu-system-aarch64", "package": "qemu-system-arm", "machine": "virt",
                "cpu": "cortex-a57", "console": "ttyAMA0", "kernel": "arm64",
                "build_dir": ARM64_BUILD_DIR},
}

BOOT_MARK = "RIG-BOOTED"
EXIT_MARK = "RIG-EXIT"


class RigError(Exception):
    """A problem with the rig itself (missing kernel, QEMU, binary): names what is missing."""


def _die_missing(what, hint):
    raise RigError(f"{what}\n  fix: {hint}")


def guest_kernel(kernel_dir=None):
    """(vmlinuz path, modules dir, version) of the unpacked guest kernel."""
    kernel_dir = kernel_dir or KERNEL_DIR
    images = sorted(glob.glob(os.path.join(kernel_dir, "boot", "vmlinuz-*")))
    if not images:
        name = os.path.basename(os.path.normpath(kernel_dir))
        arg = f" {name}" if name in ("backports", "arm64") else ""
        _die_missing(f"no guest kernel under {kernel_dir}",
                     f"run scripts/guest-kernel.sh{arg} (fetches Debian's kernel with apt-get download)")
    version = os.path.basename(images[-1])[len("vmlinuz-"):]
    return images[-1], os.path.join(kernel_dir, "lib", "modules", version), version


def qemu_binary(arch="x86_64"):
    a = ARCHES[arch]
    path = shutil.which(a["qemu"])
    if not path:
        _die_missing(f"{a['qemu']} not found", f"apt-get install {a['package']} (or run scripts/deps.sh)")
    return path


def kmod_dir(build_dir=None, kernel=None):
    """Where scripts/build-kmod.sh BUILD_DIR KERNEL put ivshmem.ko and its test module."""
    kernel = kernel or KERNEL_NAME
    return os.path.join(build_dir or BUILD_DIR, "kernel" if kernel == "current" else f"kernel-{kernel}")


def kmod_file(name, build_dir=None, kernel=None):
    """One of our modules (ivshmem.ko, ivshmem_kapi_test.ko) built for a guest kernel."""
    build_dir = build_dir or BUILD_DIR
    kernel = kernel or KERNEL_NAME
    path = os.path.join(kmod_dir(build_dir, kernel), name)
    if not os.path.exists(path):
        _die_missing(f"{path} is missing", f"build it: scripts/build-kmod.sh {build_dir} {kernel}")
    return path


def busybox_binary(kernel_dir=None):
    """A static busybox for the guest: the host's for x86_64, the one scripts/guest-kernel.sh
    unpacked next to a foreign-architecture kernel (kernel_dir/bin/busybox) otherwise."""
    if kernel_dir is not None:
        path = os.path.join(kernel_dir, "bin", "busybox")
        if not os.path.exists(path):
            _die_missing(f"no busybox for this guest at {path}",
                         "run scripts/guest-kernel.sh arm64 (it unpacks busybox-static:arm64)")
        return path
    for path in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.exists(path):
            with open(path, "rb") as f:
                head = f.read(4096)
            # A dynamically linked busybox would not run in our library-less initramfs.
            if b"ld-linux" not in head:
                return path
    _die_missing("no statically linked busybox", "apt-get install busybox-static")


def build_file(rel):
    """A file produced by the meson build (e.g. tools/ivshmem.static)."""
    path = os.path.join(BUILD_DIR, rel)
    if not os.path.exists(path):
        _die_missing(f"{path} is missing", f"build it: ninja -C {BUILD_DIR}")
    return path


# The verdict (ttyS1) and control (ttyS2) ports have the same names on every architecture.
INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /tmp /run /dev/shm
mount -t tmpfs tmp /tmp
mount -t tmpfs shm /dev/shm
stty -F /dev/ttyS1 raw -echo 2>/dev/null
stty -F /dev/ttyS2 raw -echo 2>/dev/null
exec 3>/dev/ttyS1
# Held open for the whole run: opening a serial port flushes its input, so a
# line the host sends between two reads would lose bytes if each read reopened it.
exec 4</dev/ttyS2
echo "RIG-BOOTED $(uname -r)" >&3
for m in $(cat /etc/rig-modules 2>/dev/null); do
	insmod "$m" || echo "not ok loading module $m" >&3
done
cd /root
sh /etc/rig-lib.sh /root/test.sh >/dev/console 2>&1
rc=$?
echo "RIG-EXIT $rc" >&3
sync
poweroff -f
"""

# Helpers the test script can call (sourced before it; it runs under `set -u`).
RIG_LIB = r"""
v() { echo "$*" >&3; }
ok() { desc=$1; shift; if "$@"; then v "ok $desc"; else v "not ok $desc"; fi; }
pass() { v "ok $*"; }
fail() { v "not ok $*"; }
diag() { v "# $*"; }
# ctl_read VAR: next line the host sent with Guest.send() (blocks; the host has a timeout).
ctl_read() { IFS= read -r "$1" <&4; }
# wait_for SECONDS CMD...: retry CMD every 0.1 s until it succeeds or time runs out.
wait_for() { t=$(( $1 * 10 )); shift; while ! "$@" 2>/dev/null; do t=$((t-1)); [ $t -gt 0 ] || return 1; sleep 0.1; done; }
set -u
. "$1"
"""


class Cpio:
    """Writes a gzip'd newc archive: no external cpio needed, and the result is reproducible."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.ino = 1
        self.dirs = set()

    def _entry(self, name, mode, data=b""):
        name_b = name.encode() + b"\0"
        hdr = "070701" + "".join(f"{x:08x}" for x in (
            self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0))
        self.ino += 1
        self.buf.write(hdr.encode() + name_b)
        self.buf.write(b"\0" * ((4 - (110 + len(name_b)) % 4) % 4))
        self.buf.write(data)
        self.buf.write(b"\0" * ((4 - len(data) % 4) % 4))

    def mkdir(self, path):
        path = path.strip("/")
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d and d not in self.dirs:
                self.dirs.add(d)
                self._entry(d, stat.S_IFDIR | 0o755)

    def add(self, path, data, mode=0o755):
        path = path.strip("/")
        self.mkdir(os.path.dirname(path))
        self._entry(path, stat.S_IFREG | mode, data)

    def add_file(self, path, src, mode=None):
        with open(src, "rb") as f:
            data = f.read()
        self.add(path, data, mode if mode is not None else (os.stat(src).st_mode & 0o777))

    def write(self, out):
        self._entry("TRAILER!!!", 0)
        with gzip.open(out, "wb", compresslevel=1) as f:
            f.write(self.buf.getvalue())


def module_closure(modules_dir, names):
    """Resolve module names (e.g. 'vfio-pci') to .ko paths in load order, dependencies first."""
    deps = {}
    with open(os.path.join(modules_dir, "modules.dep")) as f:
        for line in f:
            path, _, rest = line.partition(":")
            deps[path] = rest.split()
    by_name = {os.path.basename(p).split(".ko")[0].replace("-", "_"): p for p in deps}
    order = []

    def visit(path):
        for d in reversed(deps.get(path, [])):
            visit(d)
        if path not in order:
            order.append(path)

    for name in names:
        key = name.replace("-", "_")
        if key not in by_name:
            raise RigError(f"kernel module {name} is not in {modules_dir}")
        visit(by_name[key])
    return [os.path.join(modules_dir, p) for p in order]


# The aarch64 guest's serial card: clear of the test devices' fixed addresses.
SERIAL_ADDR = "0x1f"


def check_kvm():
    """IVSHMEM_VM_KVM=1 needs a usable KVM_DEVICE; say so instead of letting QEMU fail."""
    if not os.path.exists(KVM_DEVICE):
        raise RigError(f"IVSHMEM_VM_KVM=1 but {KVM_DEVICE} does not exist (no KVM on this machine)\n"
                       "  fix: unset IVSHMEM_VM_KVM to boot guests under TCG, or load kvm_intel/kvm_amd")
    if not os.access(KVM_DEVICE, os.R_OK | os.W_OK):
        raise RigError(f"IVSHMEM_VM_KVM=1 but {KVM_DEVICE} is not readable and writable by uid "
                       f"{os.getuid()}\n  fix: add the user to group kvm, or unset IVSHMEM_VM_KVM")


class Result:
    def __init__(self, guest, lines, exit_code, error):
        self.guest = guest
        self.lines = lines          # verdict channel lines, marks excluded
        self.exit_code = exit_code  # of the guest script; None if it never finished
        self.error = error          # rig-level failure (timeout, never booted, crash)

    @property
    def passed(self):
        return (self.error is None and self.exit_code == 0
                and not any(line.startswith("not ok") for line in self.lines))


class Guest:
    """One QEMU guest. Use as a context manager so it is always killed and cleaned up."""

    def __init__(self, name, timeout=120, boot_timeout=90, mem=256, machine=None, smp=1,
                 kernel_args="", iommu=False, kernel_dir=None, arch="x86_64"):
        if arch not in ARCHES:
            raise RigError(f"unknown guest architecture {arch} (known: {', '.join(ARCHES)})")
        self.name = name
        self.arch = arch
        a = ARCHES[arch]
        machine = machine or a["machine"]
        self.kernel_name = a["kernel"] or KERNEL_NAME   # scripts/guest-kernel.sh's name
        self.build_dir = a["build_dir"]                 # guest binaries: static tools, modules
        if kernel_dir is None and a["kernel"]:
            kernel_dir = os.path.join(SOURCE_DIR, ".cache", "guest-kernel", a["kernel"])
        self.kernel_dir = kernel_dir  # default: the fetched Debian kernel
        self.timeout = float(os.environ.get("IVSHMEM_VM_TIMEOUT", timeout))
        self.boot_timeout = float(os.environ.get("IVSHMEM_VM_TIMEOUT", boot_timeout))
        self.mem = mem
        self.machine = machine
        self.smp = smp
        self.kernel_args = kernel_args
        self.iommu = iommu
        if iommu and not machine.startswith("q35"):
            raise RigError("an emulated IOMMU (intel-iommu) needs machine='q35'")
        self.dir = tempfile.mkdtemp(prefix=f"ivshmem-vm-{name}-")
        self.script = "true"
        self.files = {}        # guest path -> host path
        self.modules = []      # Debian kernel modules to insmod, by name
        self.extra_ko = []     # our own .ko files to insmod after them
        self.devices = []      # qemu args
        self.qemu_extra = []   # more qemu args (e.g. -plugin), appended last
        self.extra_initrd = []  # gzip'd newc archives appended to the initramfs (nested.py)
        self.proc = None
        self._verdict_pos = 0
        self._lines = []
        self._ctl = None
        self._ndev = 0
        self.shm_files = []
        self.result = None
        self.boot_seconds = None   # QEMU start -> the guest's /init running
        self.kernel_release = None  # uname -r in the guest, from the boot mark

    # ---- devices ------------------------------------------------------------------------
    def _addr(self, addr):
        bus = "pcie.0" if self.machine.startswith(("q35", "virt")) else "pci.0"
        return f",bus={bus},addr={addr}" if addr is not None else ""

    def add_plain(self, path=None, size="16M", memfd=False, addr=None, data=None, id=None):
        """An ivshmem-plain device. Returns the host path of its backing file (None for memfd).
        @id names the -device for the monitor (device_del ID)."""
        self._ndev += 1
        mid = f"shm{self._ndev}"
        if memfd:
            self.devices += ["-object", f"memory-backend-memfd,id={mid},size={size},share=on"]
            path = None
        else:
            if path is None:
                path = f"/dev/shm/ivshmem-rig-{os.getpid()}-{self.name}-{self._ndev}"
                self.shm_files.append(path)
            nbytes = parse_size(size)
            with open(path, "ab") as f:
                if f.tell() < nbytes:
                    f.truncate(nbytes)
            if data is not None:
                with open(path, "r+b") as f:
                    f.write(data)
            self.devices += ["-object",
                             f"memory-backend-file,id={mid},size={size},share=on,mem-path={path}"]
        did = f",id={id}" if id else ""
        self.devices += ["-device", f"ivshmem-plain,memdev={mid}{self._addr(addr)}{did}"]
        return path

    def add_doorbell(self, socket_path, vectors=1, addr=None, ioeventfd=True, master=False,
                     id=None):
        """An ivshmem-doorbell device on an ivshmem-server socket (@id: see add_plain)."""
        self._ndev += 1
        cid = f"ivsock{self._ndev}"
        opts = f"vectors={vectors},ioeventfd={'on' if ioeventfd else 'off'}"
        if master:
            opts += ",master=on"
        if id:
            opts += f",id={id}"
        self.devices += ["-chardev", f"socket,path={socket_path},id={cid}",
                         "-device", f"ivshmem-doorbell,chardev={cid},{opts}{self._addr(addr)}"]

    def add_file(self, guest_path, host_path):
        self.files[guest_path] = host_path

    def guest_file(self, rel):
        """A file of this guest's architecture from its build dir (e.g. tools/ivshmem.static)."""
        path = os.path.join(self.build_dir, rel)
        if not os.path.exists(path):
            if self.arch == "x86_64":
                return build_file(rel)
            _die_missing(f"{path} is missing", f"build the {self.arch} tools: meson setup "
                         f"--cross-file scripts/cross/aarch64-linux-gnu.ini -Dguest_static=true "
                         f"{self.build_dir} && ninja -C {self.build_dir}")
        return path

    def add_tool(self, name="ivshmem"):
        """Our static tool, as /bin/NAME in the guest."""
        self.files[f"/bin/{name}"] = self.guest_file(f"tools/{name}.static")

    def kmod(self, name="ivshmem.ko"):
        """One of our modules built for this guest's kernel (scripts/build-kmod.sh)."""
        return kmod_file(name, self.build_dir, self.kernel_name)

    def add_driver(self, load=True):
        """Our ivshmem.ko (built by scripts/build-kmod.sh for this guest's kernel). With
        load=True the guest insmods it at boot; otherwise it is /lib/ivshmem.ko for the script."""
        ko = self.kmod()
        if load:
            self.extra_ko.append(ko)
        else:
            self.files["/lib/ivshmem.ko"] = ko
        return ko

    # ---- running ------------------------------------------------------------------------
    def _initramfs(self):
        vmlinuz, modules_dir, _ = guest_kernel(self.kernel_dir)
        c = Cpio()
        for d in ("bin", "sbin", "proc", "sys", "dev", "tmp", "root", "etc", "lib/modules"):
            c.mkdir(d)
        foreign = self.arch != "x86_64"
        c.add_file("bin/busybox", busybox_binary(self.kernel_dir if foreign else None), 0o755)
        c.add("init", INIT.encode())
        c.add("etc/rig-lib.sh", RIG_LIB.encode(), 0o644)
        c.add("root/test.sh", self.script.encode(), 0o755)
        load = []
        for ko in module_closure(modules_dir, self.modules) if self.modules else []:
            dest = "lib/modules/" + os.path.basename(ko)
            c.add_file(dest, ko, 0o644)
            load.append("/" + dest)
        for ko in self.extra_ko:
            dest = "lib/modules/" + os.path.basename(ko)
            c.add_file(dest, ko, 0o644)
            load.append("/" + dest)
        c.add("etc/rig-modules", "\n".join(load).encode() + b"\n", 0o644)
        for gpath, hpath in self.files.items():
            c.add_file(gpath, hpath)
        out = os.path.join(self.dir, "initramfs.gz")
        c.write(out)
        # The kernel unpacks concatenated archives in order: a large prebuilt payload (QEMU and
        # its libraries for an L1 guest) is appended as is, not re-compressed for every guest.
        with open(out, "ab") as f:
            for extra in self.extra_initrd:
                with open(extra, "rb") as src:
                    shutil.copyfileobj(src, f)
        return vmlinuz, out

    def start(self):
        vmlinuz, initrd = self._initramfs()
        self.verdict_path = os.path.join(self.dir, "verdict.log")
        self.console_path = os.path.join(self.dir, "console.log")
        self.monitor_path = os.path.join(self.dir, "monitor.sock")
        self.ctl_path = os.path.join(self.dir, "ctl.sock")
        a = ARCHES[self.arch]
        # KVM only runs a guest of the host's own architecture; a foreign one is always TCG.
        kvm = os.environ.get("IVSHMEM_VM_KVM") == "1" and self.arch == os.uname().machine
        if kvm:
            check_kvm()
        self.kvm = kvm
        machine = self.machine + (",kernel-irqchip=split" if self.iommu else "")
        args = [qemu_binary(self.arch), "-machine", machine,
                "-accel", "kvm" if kvm else "tcg",
                "-cpu", "host" if kvm else a["cpu"],
                "-m", str(self.mem), "-smp", str(self.smp),
                "-nodefaults", "-nographic", "-no-reboot", "-display", "none",
                "-kernel", vmlinuz, "-initrd", initrd,
                "-append", (f"console={a['console']} panic=-1 oops=panic quiet loglevel=4 "
                            + ("intel_iommu=on " if self.iommu else "") + self.kernel_args),
                "-chardev", f"file,id=con,path={self.console_path}", "-serial", "chardev:con",
                "-chardev", f"file,id=verdict,path={self.verdict_path}",
                "-chardev", f"socket,id=ctl,path={self.ctl_path},server=on,wait=off",
                "-monitor", f"unix:{self.monitor_path},server=on,wait=off"]
        if self.arch == "x86_64":
            args += ["-serial", "chardev:verdict", "-serial", "chardev:ctl"]
        else:
            # -M virt has one UART (the console). A 4-port PCI 16550 card gives ttyS0-ttyS3:
            # ports 2 and 3 carry the verdict and control channels, as ttyS1/ttyS2 on x86.
            args += ["-device", "pci-serial-4x,chardev2=verdict,chardev3=ctl,"
                     f"bus=pcie.0,addr={SERIAL_ADDR}"]
        if self.iommu:
            args += ["-device", "intel-iommu,intremap=on"]
        args += self.devices + self.qemu_extra
        with open(os.path.join(self.dir, "qemu.cmd"), "w") as f:
            f.write(" ".join(args) + "\n")
        self.qemu_log = open(os.path.join(self.dir, "qemu.log"), "w")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.qemu_log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.started = time.monotonic()
        return self

    def _read_verdict(self):
        try:
            with open(self.verdict_path, "rb") as f:
                f.seek(self._verdict_pos)
                data = f.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n")
        if end < 0:
            return
        self._verdict_pos += end + 1
        for raw in data[:end].split(b"\n"):
            line = raw.decode(errors="replace").rstrip("\r")
            if line.startswith(BOOT_MARK) and self.boot_seconds is None:
                self.boot_seconds = time.monotonic() - self.started  # QEMU start to our /init
                self.kernel_release = line[len(BOOT_MARK):].strip() or None
            self._lines.append(line)

    def _booted(self):
        return any(line.startswith(BOOT_MARK) for line in self._lines)

    def wait_line(self, pattern, timeout=60):
        """Wait until the guest writes a verdict-channel line matching @pattern; return it."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + float(os.environ.get("IVSHMEM_VM_TIMEOUT", timeout))
        seen = 0
        while True:
            self._read_verdict()
            for line in self._lines[seen:]:
                if rx.search(line):
                    return line
            seen = len(self._lines)
            if self.proc.poll() is not None:
                raise RigError(f"guest {self.name} exited before printing /{pattern}/\n"
                               + self.console_tail())
            if time.monotonic() > deadline:
                raise RigError(f"guest {self.name}: no /{pattern}/ within {timeout} s\n"
                               + self.console_tail())
            time.sleep(0.05)

    def ring_until(self, ring, pattern, what, timeout=90, every=0.3):
        """Call @ring() every @every s until the guest writes a line matching @pattern (its
        waiter may start after a first ring, and only what arrives while it waits counts);
        return that line. @what names the path in the error when it never comes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ring()
            try:
                return self.wait_line(pattern, timeout=every)
            except RigError as e:
                if "exited" in str(e):
                    raise
        raise RigError(f"{what}: the guest never reported the interrupt")

    def new_lines(self):
        """Verdict-channel lines that arrived since the last call (for live output, e.g. the demo)."""
        self._read_verdict()
        start = getattr(self, "_streamed", 0)
        self._streamed = len(self._lines)
        return self._lines[start:]

    def send(self, line):
        """Send one line to the guest's control channel (read with ctl_read)."""
        if self._ctl is None:
            self._ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._ctl.settimeout(10)
            self._ctl.connect(self.ctl_path)
        self._ctl.sendall(line.encode() + b"\n")

    def hmp(self, command, timeout=30):
        """Run a human monitor command (e.g. device_add) and return its output."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.monitor_path)
        try:
            def until_prompt():
                buf = b""
                while not buf.endswith(b"(qemu) "):
                    chunk = s.recv(65536)
                    if not chunk:
                        raise RigError(f"monitor of {self.name} closed")
                    buf += chunk
                return buf.decode(errors="replace")
            until_prompt()
            s.sendall(command.encode() + b"\n")
            out = until_prompt()
        finally:
            s.close()
        # The monitor echoes the command line with terminal escapes; keep what follows it.
        out = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", out)
        lines = out.replace("\r", "").split("\n")
        return "\n".join(line for line in lines[1:] if line != "(qemu) ").strip()

    def wait(self):
        """Wait for the guest to finish (or time out) and return its Result."""
        error = None
        boot_deadline = self.started + self.boot_timeout
        deadline = self.started + self.timeout
        while True:
            self._read_verdict()
            if self.proc.poll() is not None:
                break
            now = time.monotonic()
            if not self._booted() and now > boot_deadline:
                error = (f"guest never booted: no {BOOT_MARK} mark on the verdict channel "
                         f"within {self.boot_timeout:.0f} s")
                break
            if now > deadline:
                error = f"guest did not finish within {self.timeout:.0f} s (hard timeout)"
                break
            time.sleep(0.05)
        self.kill()
        self._read_verdict()
        exit_code = None
        lines = []
        for line in self._lines:
            if line.startswith(EXIT_MARK):
                exit_code = int(line.split()[1])
            elif not line.startswith(BOOT_MARK):
                lines.append(line)
        if error is None and exit_code is None:
            if not self._booted():
                error = (f"guest never booted: QEMU exited (code {self.proc.returncode}) before "
                         f"the {BOOT_MARK} mark; bad kernel, initramfs or QEMU arguments?")
            else:
                error = ("guest stopped without reporting an exit status "
                         f"(QEMU exit code {self.proc.returncode}: kernel panic or oops?)")
        if error and getattr(self, "kvm", False):
            error += f"; the guest ran under KVM (IVSHMEM_VM_KVM=1): does {KVM_DEVICE} work here?"
        self.result = Result(self, lines, exit_code, error)
        return self.result

    def run(self):
        if self.proc is None:
            self.start()
        return self.wait()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        if self._ctl:
            self._ctl.close()
            self._ctl = None

    def console_text(self):
        """The whole console so far, carriage returns dropped ("" before the first boot)."""
        try:
            with open(self.console_path, "rb") as f:
                return f.read().decode(errors="replace").replace("\r", "")
        except (FileNotFoundError, AttributeError):
            return ""

    def console_tail(self, lines=80):
        text = self.console_text()
        try:
            with open(os.path.join(self.dir, "qemu.log")) as f:
                qlog = f.read().strip()
        except FileNotFoundError:
            qlog = ""
        tail = "\n".join(text.split("\n")[-lines:])
        out = f"---- console of guest {self.name} (last {lines} lines) ----\n{tail}\n"
        if qlog:
            out += f"---- qemu output ----\n{qlog}\n"
        return out + "---- end ----"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        for path in self.shm_files:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        if os.environ.get("IVSHMEM_KEEP_VM_DIRS") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)
        return False


class Server:
    """Our ivshmem-server in the foreground, on a socket in @tmpdir, with a sealed memfd.

    Its stderr goes to a log file that tests can wait on and check (wait_log, text).
    Use as a context manager, or call stop() (returns the server's exit status).
    """

    def __init__(self, tmpdir, vectors=1, size="4M", verbose=True):
        self.sock = os.path.join(tmpdir, "ivshmem.sock")
        self.log_path = os.path.join(tmpdir, "server.log")
        self._log = open(self.log_path, "w")
        args = [build_file("server/ivshmem-server"), "-F", "-S", self.sock, "--memfd",
                "-l", str(size), "-n", str(vectors), "-p", os.path.join(tmpdir, "server.pid")]
        self.proc = subprocess.Popen(args + (["-v"] if verbose else []),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self._log)
        try:
            self.wait_log("listening on")
        except RigError:
            self.stop()
            raise

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_log(self, needle, timeout=10):
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RigError(f"ivshmem-server: no '{needle}' in its log within {timeout} s:\n"
                               + self.text())
            time.sleep(0.02)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return -1
        self._log.close()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def parse_size(s):
    s = str(s).strip().upper()
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if s[-1] in mult:
        return int(s[:-1]) * mult[s[-1]]
    return int(s)


class Tap:
    """TAP output for meson: host checks plus each guest's relayed ok/not ok lines."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, desc):
        self.n += 1
        print(f"{'' if cond else 'not '}ok {self.n} - {desc}", flush=True)
        if not cond:
            self.failed += 1
        return cond

    def diag(self, msg):
        for line in str(msg).split("\n"):
            print(f"# {line}", flush=True)

    def guest(self, result):
        """Relay a guest's verdict; on any failure print its console."""
        g = result.guest
        if getattr(g, "boot_seconds", None) is not None:
            self.diag(f"[{g.name}] {getattr(g, 'arch', 'x86_64')} guest, kernel "
                      f"{getattr(g, 'kernel_release', None)}, booted in {g.boot_seconds:.1f} s")
        for line in result.lines:
            if line.startswith("ok "):
                self.ok(True, f"[{g.name}] {line[3:]}")
            elif line.startswith("not ok "):
                self.ok(False, f"[{g.name}] {line[7:]}")
            elif line.startswith("#"):
                self.diag(f"[{g.name}] {line[1:].strip()}")
        if result.error:
            self.ok(False, f"[{g.name}] {result.error}")
        else:
            self.ok(result.exit_code == 0, f"[{g.name}] guest script exit status {result.exit_code}")
        if not result.passed:
            self.diag(g.console_tail())
        return result.passed

    def done(self):
        print(f"1..{self.n}", flush=True)
        return 1 if self.failed or self.n == 0 else 0


def run_test(body):
    """Run body(tap); a RigError or exception becomes a failed check with a clear message."""
    tap = Tap()
    try:
        body(tap)
    except RigError as e:
        tap.ok(False, f"rig: {e}")
    except Exception as e:  # noqa: BLE001 - any crash of the test is a failure, not a hang
        import traceback
        tap.diag(traceback.format_exc())
        tap.ok(False, f"test crashed: {e!r}")
    sys.exit(tap.done())
