#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`ivshmem format`'s permissions of the file it creates (issue 13, docs/libvirt.md):
  - by default group kvm (libvirt's QEMU runs in it) and 0660, else 0600; exact, whatever the
    umask;
  - --mode, --group, --owner (by name or number) set exactly what they say;
  - an existing file keeps its owner, group and mode: never loosened, even by --force, and
    --mode/--group/--owner that differ from it are refused (exit 1) with the file untouched;
  - a caller who may not use group kvm gets 0600, and an explicit --group it may not use fails
    without leaving a file; bad values are usage errors (exit 2) and create nothing.
Usage: test_format_perms.py IVSHMEM
"""
import grp
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import taplib  # noqa: E402
from taplib import ok, skip  # noqa: E402

CLI = sys.argv[1]


def fmt(path, *args, user=None):
    """ivshmem format under umask 077 (so nothing below depends on the umask)."""
    def child():
        os.umask(0o077)
        if user is not None:
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
    return subprocess.run([CLI, "format", "--name", "perms", *args, path], capture_output=True,
                          text=True, preexec_fn=child, timeout=30)


def perms(path):
    st = os.stat(path)
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def group_or_none(name):
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def main():
    root = os.geteuid() == 0
    kvm = group_or_none("kvm")
    tmp = tempfile.mkdtemp(prefix="ivshmem-perms-")
    os.chmod(tmp, 0o1777)       # like /dev/shm: the unprivileged cases write here too
    try:
        p = os.path.join(tmp, "default")
        r = fmt(p, "--size", "1M")
        want = (0o660, os.geteuid(), kvm) if kvm is not None and root else None
        if want:
            ok(r.returncode == 0 and perms(p) == want,
               "a new file: 0660, group kvm, under umask 077", f"{perms(p)} {r.stderr}")
        else:
            ok(r.returncode == 0 and perms(p)[0] in (0o600, 0o660), "a new file (no kvm group "
               "or not root): 0600 or 0660", f"{r.stderr}")

        p = os.path.join(tmp, "explicit")
        r = fmt(p, "--size", "1M", "--mode", "0640", "--group", str(os.getegid()))
        ok(r.returncode == 0 and perms(p) == (0o640, os.geteuid(), os.getegid()),
           "--mode 0640 --group GID: exactly that", f"{perms(p) if os.path.exists(p) else ''} "
           f"{r.stderr}")

        p = os.path.join(tmp, "grpname")
        gname = grp.getgrgid(os.getegid()).gr_name
        r = fmt(p, "--size", "1M", "--group", gname)
        ok(r.returncode == 0 and perms(p) == (0o660, os.geteuid(), os.getegid()),
           f"--group {gname} (by name) alone: mode 0660", r.stderr)

        p = os.path.join(tmp, "modeonly")
        r = fmt(p, "--size", "1M", "--mode", "0640")
        ok(r.returncode == 0 and perms(p)[0] == 0o640 and (kvm is None or not root
                                                          or perms(p)[2] == kvm),
           "--mode 0640 alone: that mode, still the default group", r.stderr)

        p = os.path.join(tmp, "owner")
        if root:
            nobody = pwd.getpwnam("nobody")
            r = fmt(p, "--size", "1M", "--owner", "nobody", "--mode", "0600")
            ok(r.returncode == 0 and perms(p)[:2] == (0o600, nobody.pw_uid),
               "--owner nobody (as root): owned by nobody", r.stderr)
        else:
            skip("--owner", "needs root")

        # An existing file is never loosened.
        p = os.path.join(tmp, "existing")
        with open(p, "wb") as f:
            f.truncate(1 << 20)
        os.chmod(p, 0o600)
        before = perms(p)
        r = fmt(p)
        ok(r.returncode == 0 and perms(p) == before,
           "formatting an existing 0600 file keeps its owner, group and mode", r.stderr)
        r = fmt(p, "--force", "--size", "1M")
        ok(r.returncode == 0 and perms(p) == before, "... also with --force --size", r.stderr)
        r = fmt(p, "--force", "--mode", "0666")
        ok(r.returncode == 1 and perms(p) == before and "exists with mode 0600" in r.stderr,
           "--mode 0666 on it: refused (exit 1), file untouched", r.stderr)
        if kvm is not None:
            r = fmt(p, "--force", "--group", "kvm")
            ok(r.returncode == 1 and perms(p) == before,
               "--group kvm on it: refused, file untouched", r.stderr)
        r = fmt(p, "--force", "--mode", "0600")
        ok(r.returncode == 0 and perms(p) == before,
           "--mode equal to the file's: accepted", r.stderr)

        # Bad values create nothing.
        for args, what in ((["--mode", "999"], "--mode 999"), (["--mode", "01777"], "--mode 01777"),
                           (["--group", "no-such-group-x"], "an unknown --group"),
                           (["--owner", "no-such-user-x"], "an unknown --owner")):
            p = os.path.join(tmp, "bad")
            r = fmt(p, "--size", "1M", *args)
            ok(r.returncode == 2 and not os.path.exists(p), f"{what}: exit 2, no file", r.stderr)
        r = fmt("server:/nonexistent.sock", "--mode", "0600")
        ok(r.returncode == 2, "--mode on a non-file DEV: exit 2", r.stderr)

        # A caller outside group kvm.
        if root and kvm is not None:
            nobody = pwd.getpwnam("nobody")
            p = os.path.join(tmp, "nobody-default")
            r = fmt(p, "--size", "1M", user=nobody)
            ok(r.returncode == 0 and perms(p) == (0o600, nobody.pw_uid, nobody.pw_gid),
               "not in group kvm: the default falls back to 0600, own group",
               f"{perms(p) if os.path.exists(p) else ''} {r.stderr}")
            p = os.path.join(tmp, "nobody-kvm")
            r = fmt(p, "--size", "1M", "--group", "kvm", user=nobody)
            ok(r.returncode == 1 and "group" in r.stderr and not os.path.exists(p),
               "not in group kvm: --group kvm fails and leaves no file", r.stderr)
        else:
            skip("a caller outside group kvm", "needs root and a kvm group")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return taplib.done()


sys.exit(main())
