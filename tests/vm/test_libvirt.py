#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""libvirt as Debian 12 ships it (9.0, QEMU as user libvirt-qemu), driven the way
docs/libvirt.md tells an operator to, with no chown, chmod or truncate of our own:
  (a) plain <shmem>: the host makes /dev/shm/NAME with `ivshmem format` (its default
      permissions are what libvirt's QEMU needs) and writes into it; guest A reads the bytes
      by name and by the PCI address `virsh dumpxml` reports, and writes an answer the host reads;
  (b) doorbell <shmem>: ivshmem-server@NAME.service's own ExecStart= line (with
      /etc/ivshmem/NAME.conf, run the way systemd would: there is no systemd here) on
      libvirt's socket path; guests A and B ring each other and a host peer
      (`ivshmem notify/wait server:SOCK`) through ivshmem.ko;
      A domain whose doorbell server is not running does not start, with the error the
      docs quote;
  (c) hot-add to the running guest B: `virsh attach-device --live` of a plain and of a
      doorbell <shmem> (a second server instance, on the unit's defaults), `virsh
      detach-device --live` of the plain one, then the HMP route with its caveats (virsh
      exits 0 when HMP failed; dumpxml does not show the device; the domain is tainted).
The test starts virtlogd and libvirtd itself and creates transient TCG direct-kernel domains
running the rig's Debian kernel and initramfs; verdicts come from the guests' second serial
port, never from the console."""
import contextlib
import fcntl
import grp
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rig import SOURCE_DIR, Guest, RigError, build_file, qemu_binary, run_test  # noqa: E402

TAG = f"ivt{os.getpid()}"           # prefix of every name this run creates
ENV_DIR = "/etc/ivshmem"            # the template unit's EnvironmentFile=-/etc/ivshmem/%i.conf
LOCK = "/run/lock/ivshmem-test-libvirt.lock"  # one run at a time per machine (one libvirtd)
OFFSET = 1 << 20                    # where the host writes into plain regions (the guests'
                                    # `--offset 1M`); guests answer 4K after it

# ---- libvirt ----------------------------------------------------------------------------------

LIBVIRTD_CONF = """# test_libvirt.py: the system daemon, with its client sockets in a directory of the test
unix_sock_dir = "{dir}"
log_outputs = "3:file:{dir}/libvirtd.log"
"""


def connectable(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def one_line(text):
    """Command output for a TAP description, which must stay on one line."""
    return " ".join(str(text).split())


def poll(cond, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RigError(f"{what}: not within {timeout} s")
        time.sleep(interval)


class Libvirt:
    """virtlogd and libvirtd, started by the test (no systemd here) as root with Debian's
    /etc/libvirt/qemu.conf: QEMU runs as libvirt-qemu, groups libvirt-qemu and kvm, under the
    dac security driver. Only libvirtd's client sockets are the test's own (virsh -c URI)."""

    def __init__(self, tmp):
        for tool in ("libvirtd", "virtlogd", "virsh"):
            if not shutil.which(tool):
                raise RigError(f"{tool} not found\n  fix: apt-get install libvirt-daemon-system "
                               "libvirt-clients (or run scripts/deps.sh)")
        try:
            pwd.getpwnam("libvirt-qemu")
        except KeyError:
            raise RigError("no user libvirt-qemu\n  fix: apt-get install libvirt-daemon-system")
        if connectable("/run/libvirt/libvirt-sock"):
            raise RigError("a system libvirtd is running: this test starts its own (stop it first)")
        self.dir = os.path.join(tmp, "libvirt")
        os.makedirs(self.dir)
        self.uri = f"qemu:///system?socket={self.dir}/libvirt-sock"
        self.procs = []
        self.domains = {}       # name -> QEMU pid
        self._kvm_restore = None
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self):
        self._kvm_like_udev()
        if connectable("/run/libvirt/virtlogd-sock"):
            print("# virtlogd already runs: using it", flush=True)
        else:
            self._spawn("virtlogd", ["virtlogd"])
            poll(lambda: connectable("/run/libvirt/virtlogd-sock"), 30, "virtlogd's socket")
        conf = os.path.join(self.dir, "libvirtd.conf")
        with open(conf, "w") as f:
            f.write(LIBVIRTD_CONF.format(dir=self.dir))
        self._spawn("libvirtd", ["libvirtd", "--config", conf,
                                 "--pid-file", os.path.join(self.dir, "libvirtd.pid")])
        poll(lambda: self.virsh("version", check=False).returncode == 0 or self._dead("libvirtd"),
             90, "libvirtd answering virsh")
        if self._dead("libvirtd"):
            log = self.log("libvirtd")
            hint = ("\n  another libvirtd holds libvirt's driver state: stop it (this test starts "
                    "its own)" if "Failed to acquire pid file" in log else "")
            raise RigError("libvirtd exited:\n" + log + hint)

    def _kvm_like_udev(self):
        """Debian's udev makes /dev/kvm root:kvm 0660. Where nothing did (these machines run
        no udev), libvirt probes QEMU with CAP_DAC_OVERRIDE, sees KVM, then finds that
        libvirt-qemu cannot open /dev/kvm and throws the probe away: every virsh call probes
        again (a minute per `virsh create`). Do what udev does while the test runs; the
        domains are type='qemu' (TCG) all the same."""
        try:
            st = os.stat("/dev/kvm")
        except FileNotFoundError:
            return
        kvm = grp.getgrnam("kvm").gr_gid
        if st.st_gid == kvm and st.st_mode & 0o060 == 0o060:
            return
        self._kvm_restore = (st.st_gid, stat.S_IMODE(st.st_mode))
        os.chown("/dev/kvm", -1, kvm)
        os.chmod("/dev/kvm", 0o660)

    def _spawn(self, name, args):
        log = open(os.path.join(self.dir, f"{name}.out"), "w")
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
        self.procs.append((name, p))

    def _dead(self, name):
        return any(n == name and p.poll() is not None for n, p in self.procs)

    def log(self, name):
        text = ""
        for f in (f"{name}.out", f"{name}.log"):
            with contextlib.suppress(FileNotFoundError):
                with open(os.path.join(self.dir, f), errors="replace") as fh:
                    text += fh.read()[-4000:]
        return text

    def virsh(self, *args, check=True, timeout=120):
        r = subprocess.run(["virsh", "-c", self.uri, *args], capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise RigError(f"virsh {' '.join(args)}: exit {r.returncode}: "
                           f"{(r.stderr or r.stdout).strip()}")
        return r

    def create(self, name, xml_path):
        self.domains[name] = None
        self.virsh("create", xml_path)
        with open(f"/run/libvirt/qemu/{name}.pid") as f:
            self.domains[name] = int(f.read())
        return self.domains[name]

    def destroy(self, name):
        self.virsh("destroy", name, check=False, timeout=60)

    def shmem_addresses(self, domain):
        """{shmem name: PCI address} from `virsh dumpxml`, as docs/libvirt.md reads them."""
        root = ET.fromstring(self.virsh("dumpxml", domain).stdout)
        out = {}
        for sh in root.iter("shmem"):
            a = sh.find("address")
            if a is not None:
                out[sh.get("name")] = "%04x:%02x:%02x.%x" % tuple(
                    int(a.get(k), 16) for k in ("domain", "bus", "slot", "function"))
        return out

    def close(self):
        # Domains first: libvirtd leaves running QEMUs behind when it exits.
        for name, pid in self.domains.items():
            self.destroy(name)
            if pid and _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for name, p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        if self._kvm_restore:
            os.chown("/dev/kvm", -1, self._kvm_restore[0])
            os.chmod("/dev/kvm", self._kvm_restore[1])
        for name in self.domains:   # libvirt's per-domain logs (printed already on failure)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"/var/log/libvirt/qemu/{name}.log")


def _alive(pid):
    """True while @pid runs (a zombie has finished)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


class _QemuOfDomain:
    """The QEMU libvirt runs for a domain: as much of Popen as rig.Guest uses."""

    def __init__(self, pid):
        self.pid = pid
        self.returncode = None

    def poll(self):
        if self.returncode is None and not _alive(self.pid):
            self.returncode = 0
        return self.returncode


# ---- domains ----------------------------------------------------------------------------------

DOMAIN_XML = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>{mem}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <features><acpi/></features>
  <cpu mode='maximum' check='none'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>{qemu}</emulator>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
    <serial type='file'><source path='{console}'/><target port='0'/></serial>
    <serial type='file'><source path='{verdict}'/><target port='1'/></serial>
    <serial type='unix'><source mode='bind' path='{ctl}'/><target port='2'/></serial>
{devices}  </devices>
</domain>
"""


def plain_xml(name, size_m):
    """docs/libvirt.md's plain <shmem>: QEMU maps /dev/shm/NAME."""
    return (f"<shmem name='{name}'>\n  <model type='ivshmem-plain'/>\n"
            f"  <size unit='M'>{size_m}</size>\n</shmem>\n")


def doorbell_xml(name, vectors):
    """docs/libvirt.md's doorbell <shmem> on ivshmem-server@NAME's socket."""
    return (f"<shmem name='{name}'>\n  <model type='ivshmem-doorbell'/>\n"
            f"  <server path='/var/lib/libvirt/shmem-{name}-sock'/>\n"
            f"  <msi vectors='{vectors}' ioeventfd='on'/>\n</shmem>\n")


class Domain(Guest):
    """A rig guest (initramfs, verdict and control serial ports, timeouts, console on failure)
    whose QEMU libvirt starts from domain XML. ttyS1 and ttyS2 are <serial> ports 1 and 2."""

    def __init__(self, lv, name, devices=(), **kw):
        super().__init__(name, **kw)
        os.chmod(self.dir, 0o755)    # QEMU (libvirt-qemu) opens the kernel and sockets in here
        self.lv = lv
        self.domain = f"{TAG}-{name}"
        self.xml_devices = list(devices)
        self.kernel_args = "panic_on_warn=1"

    def start(self):
        vmlinuz, initrd = self._initramfs()
        # libvirt's dac driver chowns the kernel to libvirt-qemu while the domain runs: a copy
        # keeps the shared cache untouched.
        kernel = os.path.join(self.dir, "vmlinuz")
        shutil.copyfile(vmlinuz, kernel)
        self.verdict_path = os.path.join(self.dir, "verdict.log")
        self.console_path = os.path.join(self.dir, "console.log")
        self.ctl_path = os.path.join(self.dir, "ctl.sock")
        xml = DOMAIN_XML.format(
            name=self.domain, mem=self.mem, kernel=kernel, initrd=initrd, qemu=qemu_binary(),
            cmdline="console=ttyS0 panic=-1 oops=panic quiet loglevel=4 " + self.kernel_args,
            console=self.console_path, verdict=self.verdict_path, ctl=self.ctl_path,
            devices="".join("    " + line + "\n" for d in self.xml_devices
                            for line in d.strip().split("\n")))
        path = os.path.join(self.dir, "domain.xml")
        with open(path, "w") as f:
            f.write(xml)
        self.started = time.monotonic()
        self.proc = _QemuOfDomain(self.lv.create(self.domain, path))
        return self

    def hmp(self, command, timeout=60):
        """An HMP command through libvirt, as docs/libvirt.md shows: (exit status, text)."""
        r = self.lv.virsh("qemu-monitor-command", "--hmp", self.domain, command, check=False,
                          timeout=timeout)
        return r.returncode, one_line(r.stdout + r.stderr)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.lv.destroy(self.domain)
        if self._ctl:
            self._ctl.close()
            self._ctl = None

    def console_tail(self, lines=80):
        out = super().console_tail(lines)
        with contextlib.suppress(FileNotFoundError, PermissionError):
            with open(f"/var/log/libvirt/qemu/{self.domain}.log", errors="replace") as f:
                out += f"\n---- /var/log/libvirt/qemu/{self.domain}.log ----\n" + f.read()[-3000:]
        return out


# ---- ivshmem-server@NAME without systemd ------------------------------------------------------

class UnitServer:
    """ivshmem-server@NAME.service's ExecStart= run as systemd would run it: the unit's
    Environment= defaults, then EnvironmentFile= (/etc/ivshmem/NAME.conf, if there is one),
    specifiers (%i, %t; %t is a directory of the test) and $VAR / ${VAR} expanded,
    RuntimeDirectory= created. The unit is read from the source tree; @bindir@ is the build's."""

    UNIT = os.path.join(SOURCE_DIR, "server", "ivshmem-server@.service")

    def __init__(self, instance, tmp):
        self.instance = instance
        self.runtime = os.path.join(tmp, "run")
        self.sock = f"/var/lib/libvirt/shmem-{instance}-sock"
        keys = self._service_section()
        env = {}
        for line in keys.get("Environment", []):
            for assignment in shlex.split(line):
                k, _, v = assignment.partition("=")
                env[k] = v
        for path in keys.get("EnvironmentFile", []):
            path = self._specifiers(path)
            optional = path.startswith("-")
            try:
                env.update(read_env_file(path.lstrip("-")))
            except FileNotFoundError:
                if not optional:
                    raise RigError(f"{path}: missing (EnvironmentFile= without '-')")
        for d in keys.get("RuntimeDirectory", []):
            os.makedirs(os.path.join(self.runtime, self._specifiers(d)), exist_ok=True)
        (execstart,) = keys["ExecStart"]
        server = build_file("server/ivshmem-server")
        self.argv = expand_exec(self._specifiers(execstart.replace("@bindir@/ivshmem-server",
                                                                   server)), env)
        self.log_path = os.path.join(tmp, f"server-{instance}.log")
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self._log)
        try:
            self.wait_log("listening on")
        except RigError:
            self.stop()
            raise

    def _service_section(self):
        keys, section = {}, None
        with open(self.UNIT) as f:
            for line in f:
                line = line.strip()
                if line.startswith("["):
                    section = line
                elif section == "[Service]" and "=" in line and not line.startswith("#"):
                    k, _, v = line.partition("=")
                    keys.setdefault(k, []).append(v)
        return keys

    def _specifiers(self, s):
        return re.sub(r"%[%it]", lambda m: {"%%": "%", "%i": self.instance,
                                            "%t": self.runtime}[m.group(0)], s)

    def text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_log(self, needle, timeout=15):
        poll(lambda: needle in self.text() or self.proc.poll() is not None, timeout,
             f"ivshmem-server@{self.instance}: '{needle}' in its log")
        if needle not in self.text():
            raise RigError(f"ivshmem-server@{self.instance} exited ({self.proc.returncode}):\n"
                           f"{' '.join(self.argv)}\n{self.text()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def read_env_file(path):
    """systemd's EnvironmentFile= format: KEY=VALUE lines, # comments, optional quotes."""
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;" or "=" not in line:
                continue
            k, _, v = line.partition("=")
            v = v.strip()
            if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
                v = v[1:-1]
            env[k.strip()] = v
    return env


def expand_exec(line, env):
    """systemd's ExecStart= expansion: a word that is exactly $VAR becomes the value's
    whitespace-separated words (none if empty); ${VAR} is replaced inside a word."""
    argv = []
    for word in shlex.split(line):
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if m:
            argv += env.get(m.group(1), "").split()
        else:
            argv.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}",
                               lambda m: env.get(m.group(1), ""), word))
    return argv


# ---- host side: our tools ---------------------------------------------------------------------

def ivshmem(*args, input=None, timeout=60):
    return subprocess.run([build_file("tools/ivshmem"), *args], capture_output=True,
                          input=input, timeout=timeout)


def make_plain(tap, name, size, text):
    """docs/libvirt.md: `ivshmem format --size SIZE --name NAME /dev/shm/NAME`, then data."""
    path = f"/dev/shm/{name}"
    r = ivshmem("format", "--size", size, "--name", name, path)
    if not tap.ok(r.returncode == 0, f"ivshmem format {path} ({one_line(r.stderr.decode())})"):
        raise RigError(f"cannot make {path}")
    st = os.stat(path)
    tap.ok(st.st_gid == grp.getgrnam("kvm").gr_gid and stat.S_IMODE(st.st_mode) == 0o660,
           f"{path} is group kvm, 0660 by default "
           f"(gid {st.st_gid}, mode {stat.S_IMODE(st.st_mode):04o})")
    r = ivshmem("write", path, "--offset", str(OFFSET), input=text.encode())
    tap.ok(r.returncode == 0, f"the host writes '{text}' into {path} "
           f"({one_line(r.stderr.decode())})")
    return path


def guest_answer(path):
    with open(path, "rb") as f:
        f.seek(OFFSET + 4096)
        return f.read(64).split(b"\0")[0].decode(errors="replace")


def peers(sock):
    """Peer IDs that `ivshmem peers server:SOCK` lists (without its own)."""
    r = ivshmem("peers", f"server:{sock}")
    return {int(m.group(1)) for m in re.finditer(r"peer (\d+):", r.stdout.decode())}


# ---- guests -----------------------------------------------------------------------------------

# ivshmem.ko is loaded at boot; every device, plain or doorbell, is /dev/ivshmemN. The host
# sends commands on the control port and names devices by the address from `virsh dumpxml`.
GUEST_SCRIPT = r"""
node() { ls /sys/bus/pci/devices/$1/ivshmem 2>/dev/null; }
bound() { test -n "$(node $1)"; }
# within SECONDS CMD...: retry CMD until it succeeds or SECONDS of wall-clock time have passed
# (rig's wait_for counts tries, which a loaded TCG guest makes slow).
within() { end=$(( $(date +%s) + $1 )); shift; until "$@"; do [ $(date +%s) -lt $end ] || return 1; sleep 0.2; done; }
diag ready
while ctl_read line; do
	set -- $line
	case $1 in
	appear)		# appear BDF: a hot-added device shows up and ivshmem.ko binds it
		if ! within 120 bound $2; then
			fail "$2 appears, bound to ivshmem.ko"
			diag "$(ls /sys/bus/pci/devices | tr '\n' ' ')"
			diag "$(ls -l /sys/bus/pci/devices/$2/driver 2>&1)"
			dmesg | tail -n 40
		else
			pass "$2 appears, bound to ivshmem.ko"
		fi
		diag "APPEARED $2" ;;
	gone)		# gone BDF: a device detached from the host side is gone
		ok "$2 is gone after the detach" within 120 test ! -e /sys/bus/pci/devices/$2
		diag "GONE $2" ;;
	plain)		# plain BDF NAME TEXT: read TEXT by name and by address, answer 4K after it
		printf '%s' "$4" > /tmp/want
		ivshmem read name:$3 --offset 1M --length ${#4} > /tmp/byname
		ok "$3: the host's bytes, read by name" cmp /tmp/byname /tmp/want
		ivshmem read $2 --offset 1M --length ${#4} > /tmp/bybdf
		ok "$3: the same bytes, read by address $2" cmp /tmp/bybdf /tmp/want
		printf 'answer from %s' "$2" | ivshmem write $2 --offset $((__OFFSET__ + 4096))
		ok "$3: the guest writes its answer" test $? = 0
		diag "PLAIN $2" ;;
	id)		# id BDF: this VM's peer ID on the device's server
		diag "ID $2 $(cat /sys/bus/pci/devices/$2/ivshmem/*/ivposition)" ;;
	wait)		# wait BDF VECTOR
		ok "$2: an interrupt on vector $3" ivshmem wait --timeout 60000 /dev/$(node $2) $3
		diag "WAITED $2 $3" ;;
	ring)		# ring BDF PEER VECTOR
		ivshmem notify /dev/$(node $2) $3 $4 ;;
	done)
		break ;;
	esac
done
""".replace("__OFFSET__", str(OFFSET))


def guest_id(g, bdf):
    g.send(f"id {bdf}")
    return int(g.wait_line(rf"^# ID {bdf} \d+$", timeout=60).split()[-1])


def ring_until(waiting, bdf, vector, ring, what):
    """Ask @waiting to wait for @vector on @bdf, then ring until it reports the interrupt."""
    waiting.send(f"wait {bdf} {vector}")
    return waiting.ring_until(ring, rf"^# WAITED {bdf} {vector}$", what, every=0.5)


def plain_check(tap, g, bdf, name, path, text):
    g.send(f"plain {bdf} {name} {text}")
    g.wait_line(rf"^# PLAIN {bdf}$", timeout=60)
    got = guest_answer(path)
    tap.ok(got == f"answer from {bdf}", f"the host reads {g.name}'s answer in {path} ({got!r})")


def doorbells(tap, a, b, bell, bdf_a, bdf_b):
    """(b): A <-> B and the host peer <-> A on ivshmem-server@bell."""
    ida, idb = guest_id(a, bdf_a), guest_id(b, bdf_b)
    listed = peers(bell.sock)
    tap.ok(ida != idb and {ida, idb} <= listed,
           f"`ivshmem peers` lists both guests (IDs {ida}, {idb}; listed {sorted(listed)})")
    ring_until(b, bdf_b, 1, lambda: a.send(f"ring {bdf_a} {idb} 1"), "guest A -> guest B")
    ring_until(a, bdf_a, 0, lambda: b.send(f"ring {bdf_b} {ida} 0"), "guest B -> guest A")
    ring_until(a, bdf_a, 1, lambda: ivshmem("notify", f"server:{bell.sock}", str(ida), "1"),
               "host peer -> guest A")
    # guest A -> a host peer waiting with `ivshmem wait server:SOCK 0`
    waiter = subprocess.Popen([build_file("tools/ivshmem"), "wait", "--timeout", "120000",
                               f"server:{bell.sock}", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        host = poll(lambda: (peers(bell.sock) - {ida, idb}) or waiter.poll() is not None, 30,
                    "the waiting host peer in `ivshmem peers`")
        host = min(host) if isinstance(host, set) else None
        deadline = time.monotonic() + 90
        while host is not None and waiter.poll() is None and time.monotonic() < deadline:
            a.send(f"ring {bdf_a} {host} 0")
            with contextlib.suppress(subprocess.TimeoutExpired):
                waiter.wait(timeout=0.5)
    finally:
        if waiter.poll() is None:
            waiter.kill()
        out, err = waiter.communicate()
    tap.ok(waiter.returncode == 0 and "vector 0" in out,
           f"guest A -> host peer {host} (`ivshmem wait server:SOCK 0`): "
           f"{one_line(out + ' ' + err)}")


def hot_add(tap, lv, b, tmp, hotbell):
    """(c): attach-device --live of a plain and a doorbell <shmem>, then the HMP route."""
    name = f"{TAG}-hot"
    path = make_plain(tap, name, "8M", f"hot-{TAG}")
    xmls = {name: plain_xml(name, 8), hotbell.instance: doorbell_xml(hotbell.instance, 1)}
    for n, x in xmls.items():
        f = os.path.join(tmp, f"attach-{n}.xml")
        with open(f, "w") as fh:
            fh.write(x)
        r = lv.virsh("attach-device", b.domain, f, "--live", check=False)
        tap.ok(r.returncode == 0, f"virsh attach-device --live <shmem name='{n}'> "
               f"({one_line(r.stderr or r.stdout)})")
    addr = lv.shmem_addresses(b.domain)
    tap.ok(name in addr and hotbell.instance in addr,
           f"virsh dumpxml shows both attached <shmem> with addresses ({addr})")
    for n in (name, hotbell.instance):
        b.send(f"appear {addr[n]}")
        b.wait_line(rf"^# APPEARED {addr[n]}$", timeout=180)
    plain_check(tap, b, addr[name], name, path, f"hot-{TAG}")
    r = lv.virsh("detach-device", b.domain, os.path.join(tmp, f"attach-{name}.xml"), "--live",
                 check=False)
    tap.ok(r.returncode == 0, f"virsh detach-device --live <shmem name='{name}'> "
           f"({one_line(r.stderr or r.stdout)})")
    b.send(f"gone {addr[name]}")
    b.wait_line(rf"^# GONE {addr[name]}$", timeout=180)
    poll(lambda: name not in lv.shmem_addresses(b.domain), 60, "the detached <shmem> leaving dumpxml")
    bdf = addr[hotbell.instance]
    idb = guest_id(b, bdf)
    ring_until(b, bdf, 0, lambda: ivshmem("notify", f"server:{hotbell.sock}", str(idb), "0"),
               "host peer -> hot-added doorbell")
    hmp_route(tap, lv, b)


def hmp_route(tap, lv, b):
    """The HMP route of docs/libvirt.md, caveats included."""
    name, bdf = f"{TAG}-hmp", "0000:00:10.0"
    path = make_plain(tap, name, "4M", f"hmp-{TAG}")
    b.send(f"appear {bdf}")     # the guest waits for it from before it exists
    rc, out = b.hmp(f"object_add memory-backend-file,id=hmp1,size=8M,share=on,mem-path={path}")
    tap.ok(rc == 0 and "does not match" in out,
           f"caveat: a size other than the file's fails, yet virsh exits {rc}: {out!r}")
    rc, out = b.hmp(f"object_add memory-backend-file,id=hmp2,size=4M,share=on,mem-path={path}")
    tap.ok(rc == 0 and out == "", f"HMP object_add with the file's exact size ({out!r})")
    rc, out = b.hmp("device_add ivshmem-plain,memdev=hmp2,id=hmpdev,bus=pci.0,addr=0x10")
    tap.ok(rc == 0 and out == "", f"HMP device_add ivshmem-plain at 00:10.0 ({out!r})")
    b.wait_line(rf"^# APPEARED {bdf}$", timeout=180)
    plain_check(tap, b, bdf, name, path, f"hmp-{TAG}")
    tap.ok(name not in lv.shmem_addresses(b.domain) and "hmpdev" not in
           lv.virsh("dumpxml", b.domain).stdout, "caveat: virsh dumpxml does not show it")
    with open(f"/var/log/libvirt/qemu/{b.domain}.log", errors="replace") as f:
        log = f.read()
    tap.ok("custom-monitor" in log, "caveat: the domain is tainted (custom-monitor)")


def no_server(tap, lv):
    """docs/libvirt.md: a domain whose doorbell server is not running does not start."""
    name = f"{TAG}-noserver"
    with Domain(lv, "noserver", [doorbell_xml(name, 1)]) as g:
        try:
            g.start()
            started = True
        except RigError as e:
            started, err = False, str(e)
        tap.ok(not started and "Failed to connect to" in err,
               "without its server, a doorbell domain does not start: "
               + (one_line(err.split("qemu-system-x86_64:")[-1]) if not started else "it did"))


def listening(server):
    return next((line for line in server.text().splitlines() if "listening on" in line), "")


def write_env(instance, text):
    os.makedirs(ENV_DIR, exist_ok=True)
    path = os.path.join(ENV_DIR, f"{instance}.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def servers(tap, tmp, cleanup):
    """Two instances of the template's command line: one with a .conf, one on the defaults."""
    bell_name, hot_name = f"{TAG}-bell", f"{TAG}-hotbell"
    conf = write_env(bell_name, "# docs/libvirt.md\nIVSHMEM_SIZE=8M\nIVSHMEM_VECTORS=2\n"
                                "IVSHMEM_OPTS=-v\n")
    cleanup.callback(os.unlink, conf)
    bell = UnitServer(bell_name, tmp)
    cleanup.callback(bell.stop)
    hotbell = UnitServer(hot_name, tmp)
    cleanup.callback(hotbell.stop)
    st = os.stat(bell.sock)
    tap.ok(stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == grp.getgrnam("kvm").gr_gid,
           f"{bell.sock}: group kvm, 0660, as ivshmem-server@.socket makes it")
    tap.ok("8M of sealed memfd memory, 2 vectors" in bell.text(),
           f"{conf} sets size and vectors: {listening(bell)}")
    tap.ok("4M of sealed memfd memory, 1 vector" in hotbell.text(),
           f"without a .conf, the unit's defaults: {listening(hotbell)}")
    return bell, hotbell


def scenario(tap, lv, tmp, a, b, bell, hotbell, plain, plain_path):
    for g in (a, b):
        g.add_tool()
        g.add_driver()
        g.script = GUEST_SCRIPT
        g.start()
    for g in (a, b):
        g.wait_line(r"^# ready", timeout=240)
        tap.diag(f"domain {g.domain}: QEMU start to the guest's /init {g.boot_seconds:.1f} s")
    addr_a, addr_b = lv.shmem_addresses(a.domain), lv.shmem_addresses(b.domain)
    tap.diag(f"virsh dumpxml: A {addr_a}, B {addr_b}")

    t = time.monotonic()
    plain_check(tap, a, addr_a[plain], plain, plain_path, f"plain-{TAG}")
    tap.diag(f"(a) plain <shmem>: {time.monotonic() - t:.1f} s")
    t = time.monotonic()
    doorbells(tap, a, b, bell, addr_a[bell.instance], addr_b[bell.instance])
    tap.diag(f"(b) doorbell <shmem>: {time.monotonic() - t:.1f} s")
    t = time.monotonic()
    hot_add(tap, lv, b, tmp, hotbell)
    tap.diag(f"(c) hot-add: {time.monotonic() - t:.1f} s")
    for g in (a, b):
        g.send("done")


def one_at_a_time(timeout=300):
    """Several build dirs may run this test at once; there is one libvirt per machine."""
    os.makedirs(os.path.dirname(LOCK), exist_ok=True)
    f = open(LOCK, "w")
    try:
        poll(lambda: _try_lock(f), timeout, f"the lock {LOCK} (another test_libvirt.py runs)",
             interval=1)
    except RigError:
        f.close()
        raise
    return f        # held until closed (or the process ends)


def _try_lock(f):
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def body(tap):
    lock = one_at_a_time()
    tmp = tempfile.mkdtemp(prefix="ivshmem-libvirt-")
    os.chmod(tmp, 0o755)
    env_dir_existed = os.path.isdir(ENV_DIR)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(lock.close)
        cleanup.callback(shutil.rmtree, tmp, ignore_errors=True)
        if not env_dir_existed:
            cleanup.callback(lambda: os.path.isdir(ENV_DIR) and not os.listdir(ENV_DIR)
                             and os.rmdir(ENV_DIR))
        for n in ("plain", "hot", "hmp"):
            cleanup.callback(lambda n=n: os.path.exists(f"/dev/shm/{TAG}-{n}")
                             and os.unlink(f"/dev/shm/{TAG}-{n}"))
        t0 = time.monotonic()
        lv = Libvirt(tmp)
        cleanup.callback(lv.close)
        tap.diag(f"virtlogd + libvirtd up in {time.monotonic() - t0:.1f} s; "
                 f"{lv.virsh('version').stdout.strip().splitlines()[-1]}")
        plain = f"{TAG}-plain"
        plain_path = make_plain(tap, plain, "16M", f"plain-{TAG}")
        bell, hotbell = servers(tap, tmp, cleanup)
        no_server(tap, lv)
        a = cleanup.enter_context(Domain(lv, "a", [plain_xml(plain, 16),
                                                   doorbell_xml(bell.instance, 2)],
                                         timeout=600, boot_timeout=240))
        b = cleanup.enter_context(Domain(lv, "b", [doorbell_xml(bell.instance, 2)],
                                         timeout=600, boot_timeout=240))
        finished = False
        try:
            scenario(tap, lv, tmp, a, b, bell, hotbell, plain, plain_path)
            finished = True
        finally:
            # Finished, the guests power off by themselves; else they are stopped here. What
            # they said (verdicts; the console if anything failed) is printed either way.
            for g in (a, b):
                if not finished:
                    g.kill()
                if g.proc is not None:
                    tap.guest(g.wait())
        for s in (bell, hotbell):
            tap.ok(s.stop() == 0, f"ivshmem-server@{s.instance} exits 0 on SIGTERM")


def on_sigterm(signum, frame):
    raise SystemExit(f"killed by signal {signum}")   # unwinds: domains and daemons are cleaned up


signal.signal(signal.SIGTERM, on_sigterm)
run_test(body)
