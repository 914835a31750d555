#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The systemd units in server/ (issue 13): `systemd-analyze verify` accepts all four, with
the install-time @bindir@ filled in, without a warning; both services share one set of
defaults (IVSHMEM_VECTORS=1 is QEMU's own default for vectors=); the template serves libvirt's
socket path for its instance name. (tests/vm/test_libvirt.py runs the template's command line.)
Usage: test_units.py SERVER_DIR IVSHMEM_SERVER
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import taplib  # noqa: E402
from taplib import ok, skip  # noqa: E402

SRC, SERVER = sys.argv[1:3]
UNITS = ["ivshmem-server.service", "ivshmem-server.socket",
         "ivshmem-server@.service", "ivshmem-server@.socket"]


def read(name):
    with open(os.path.join(SRC, name)) as f:
        return f.read()


def main():
    tmp = tempfile.mkdtemp(prefix="ivshmem-units-")
    try:
        for u in UNITS:
            with open(os.path.join(tmp, u), "w") as f:
                f.write(read(u).replace("@bindir@/ivshmem-server", os.path.abspath(SERVER)))
        analyze = shutil.which("systemd-analyze")
        if analyze:
            names = [os.path.join(tmp, u.replace("@.", "@demo.")) for u in UNITS]
            for u in UNITS:
                if "@." in u:
                    os.symlink(u, os.path.join(tmp, u.replace("@.", "@demo.")))
            r = subprocess.run([analyze, "verify", "--man=no", *names], capture_output=True,
                               text=True, timeout=60)
            ok(r.returncode == 0 and not r.stderr.strip(),
               "systemd-analyze verify: all four units, no warning", r.stderr)
        else:
            skip("systemd-analyze verify", "no systemd-analyze")
        envs = {u: re.search(r"^Environment=(.*)$", read(u), re.M).group(1)
                for u in UNITS if u.endswith(".service")}
        ok(len(set(envs.values())) == 1 and "IVSHMEM_VECTORS=1 " in next(iter(envs.values())),
           f"both services have the same defaults, vectors 1 ({envs})")
        tpl = read("ivshmem-server@.service")
        sock = read("ivshmem-server@.socket")
        ok("ListenStream=/var/lib/libvirt/shmem-%i-sock" in sock
           and "-S /var/lib/libvirt/shmem-%i-sock" in tpl,
           "the template listens where libvirt looks: /var/lib/libvirt/shmem-NAME-sock")
        ok("SocketGroup=kvm" in sock and "SocketMode=0660" in sock
           and "--socket-group kvm --socket-mode 0660" in tpl,
           "socket group kvm, mode 0660, in the .socket and on the command line alike")
        exec_line = re.search(r"^ExecStart=(.*)$", tpl, re.M).group(1)
        ok("EnvironmentFile=-/etc/ivshmem/%i.conf" in tpl and " -F " in exec_line
           and " -p " not in exec_line,
           "per instance: /etc/ivshmem/NAME.conf; in the foreground, no pid file to share")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return taplib.done()


sys.exit(main())
