#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A guest on host A talks to a guest on host B through ivshmem-bridge (issue 17), then to a
process on host B over the same channels.

Two "hosts" are two network namespaces joined by a veth pair (tests/host/netns.py). On each,
the test runs the README's lines (HOST_LINES, printed by --readme) exactly, placeholders filled:
an ivshmem-server, `ivshmem format` through it, and an ivshmem-bridge carrying channels a2b and
b2a to the other host over UCX/TCP on the veth. One TCG guest per host (ivshmem-doorbell on its
host's server, QEMU_DEVICE; ivshmem.ko; the static CLI) boots, both at the same time. Then:
  1. guest <-> guest, both ways at once, with GUEST_LINES (the README's): guest A sends N
     records on a2b and receives guest B's N on b2a; guest B the other way round. Each record is
     a line "number CRC32 payload" of 0..3000 payload bytes. Each receiver checks: exit 0
     (the sender's close drained everything in flight, then end of stream), the channel
     counted exactly N records (--stats: no merged or split record; a split one would also
     add a newline), and the bytes equal the sender's file (order, no loss, no duplicate).
  2. guest A <-> a process on host B (python/ivshmem) on the same channels, a second session
     of each, guest A running the same two lines on new files: the process checks each record
     (number, CRC32, bytes; one record per recv, so boundaries too), answers each at once on
     b2a, then must get end of stream (EPIPE) and closes; guest A checks the answers as above.
QEMU runs outside the namespaces (it reaches its host's server through the unix socket).
Bounded: each guest boots within 180 s and runs at most 360 s, every transfer in a guest is
killed after 120 s (its errors printed), every channel call of the process has a timeout.

With --host-b TARGET N SEED the file is the process on host B (the test runs it so, inside
namespace B); it prints one JSON line. With --readme it prints the README's lines.
"""
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "host"))
from rig import BUILD_DIR, SOURCE_DIR, Guest, RigError, build_file, run_test  # noqa: E402
from bridgelib import wait_until  # noqa: E402
from netns import NetnsError, TwoHosts  # noqa: E402

N = 400
SEEDS = {"a2b": 1, "b2a": 2, "a2b-2": 3}   # guest A, guest B, guest A's second session
TIMEOUT = 180          # seconds, for every channel call of the process on host B
GUEST_TRANSFER_S = 120  # a guest kills a transfer still running after this
BOOT_S = 180           # from QEMU's start until both guests are ready (driver bound)

# The README's lines (README.md, "Across hosts"). The test runs exactly these with the
# placeholders filled; --readme prints them with README_VALUES. A trailing " &" runs in the
# background; leading NAME=VALUE words are the environment, as in a shell.
HOST_LINES = {
    "server": "ivshmem-server -F -S {sock} --memfd -l 16M -n 2 &",
    "format": "ivshmem format --name host{x} server:{sock}",
    "A": "UCX_TLS=tcp UCX_NET_DEVICES={dev} ivshmem-bridge --name A --region server:{sock} "
         "--secret-file {key} --listen {addr_a}:7100 --peer B --channel a2b@B --channel b2a@B &",
    "B": "UCX_TLS=tcp UCX_NET_DEVICES={dev} ivshmem-bridge --name B --region server:{sock} "
         "--secret-file {key} --peer A={addr_a}:7100 --channel a2b@A --channel b2a@A &",
}
QEMU_DEVICE = "-chardev socket,path={sock},id=ivs -device ivshmem-doorbell,chardev=ivs,vectors=2"
GUEST_LINES = {   # in the guest's /root; each sends its own file and receives into got.txt
    "A": ("ivshmem send --lines /dev/ivshmem0 a2b < a2b.txt &",
          "ivshmem recv --lines --stats /dev/ivshmem0 b2a > got.txt"),
    "B": ("ivshmem send --lines /dev/ivshmem0 b2a < b2a.txt &",
          "ivshmem recv --lines --stats /dev/ivshmem0 a2b > got.txt"),
}
README_VALUES = {"sock": "/run/ivshmem.sock", "key": "KEY", "addr_a": "10.0.0.1", "dev": "eth1",
                 "x": "X"}


def readme():
    """The README's snippet: the lines above with README_VALUES, between comments."""
    v = README_VALUES
    return "\n".join([
        "# Hosts A (10.0.0.1) and B, the same secret file KEY (mode 0600) on both. On each host X:",
        HOST_LINES["server"].format(**v), HOST_LINES["format"].format(**v),
        HOST_LINES["A"].format(**v) + "   # on A", HOST_LINES["B"].format(**v) + "   # on B",
        "qemu-system-x86_64 ... " + QEMU_DEVICE.format(**v),
        "# guest A (ivshmem.ko loaded) sends its lines, one record each, and gets B's until B closes:",
        *GUEST_LINES["A"], "# guest B, the other way round:", *GUEST_LINES["B"]])


def records(n, seed):
    """n records, one line each (--lines keeps the newline in the record)."""
    rnd = random.Random(seed)
    out = []
    for seq in range(n):
        payload = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789")
                          for _ in range(rnd.choice((0, 1, 7, 64, 500, 1500, 3000))))
        out.append(f"{seq} {zlib.crc32(payload.encode()):08x} {payload}\n".encode())
    return out


def answer(rec):
    """B's answer to one record: its number, length and CRC32, and the payload reversed."""
    seq, _, payload = rec[:-1].split(b" ", 2)
    return b"re %s %d %08x %s\n" % (seq, len(rec), zlib.crc32(rec), payload[::-1])


def check(rec, seq):
    """Why record @rec is not record @seq of the stream, or None."""
    if not rec.endswith(b"\n") or rec.count(b"\n") != 1:
        return f"record {seq}: not one line ({len(rec)} bytes): boundaries lost"
    parts = rec[:-1].split(b" ", 2)
    if len(parts) != 3 or parts[0] != b"%d" % seq:
        return f"record {seq}: arrived as {rec[:40]!r}"
    if b"%08x" % zlib.crc32(parts[2]) != parts[1]:
        return f"record {seq}: checksum mismatch"
    return None


def host_b(target, n, seed):
    """The process on host B: check every record on a2b, answer each on b2a, then close."""
    import ivshmem
    want = records(n, seed)
    res = {"received": 0, "answered": 0, "error": None, "end": None, "delivered": None}
    with ivshmem.open(target) as r:
        # Guest B has just closed its ends; the bridge may still be reopening its own.
        up = r.channel("a2b", role="recv", open_timeout=30)
        down = r.channel("b2a", role="send", open_timeout=30)
        for seq in range(n):
            try:
                rec = up.recv(timeout=TIMEOUT)
            except OSError as e:
                res["error"] = f"record {seq}: {type(e).__name__}: {e}"
                break
            res["error"] = check(rec, seq) or (None if rec == want[seq] else
                                                f"record {seq}: bytes differ")
            if res["error"]:
                break
            res["received"] += 1
            down.send(answer(rec), timeout=TIMEOUT)
            res["answered"] += 1
        try:
            extra = up.recv(timeout=TIMEOUT)
            res["end"] = f"an extra record of {len(extra)} bytes"
        except BrokenPipeError:
            res["end"] = "EPIPE"
        except OSError as e:
            res["end"] = f"{type(e).__name__}: {e}"
        res["delivered"] = down.close(linger=TIMEOUT)
        up.close(linger=0)
    print(json.dumps(res), flush=True)
    return 0


# Guest shell: `same GOT WANT DESC` compares a received file with the expected one and, when
# they differ, shows the first differing line of each; `count FILE` is what recv --stats
# counted; `watch` kills this guest's transfers after GUEST_TRANSFER_S (their errors then show).
GUEST_LIB = r"""
same() {
	if cmp -s "$1" "$2"; then pass "$3"; return; fi
	fail "$3"
	at=$(cmp "$1" "$2" 2>&1 | sed -n 's/.* line \([0-9]*\).*/\1/p')
	diag "$(cmp "$1" "$2" 2>&1); got $(wc -l <"$1") lines, $(wc -c <"$1") bytes"
	[ -n "$at" ] && diag "line $at got:  $(sed -n "${at}p" "$1" | cut -c1-80)"
	[ -n "$at" ] && diag "line $at want: $(sed -n "${at}p" "$2" | cut -c1-80)"
}
count() { sed -n 's/.* received \([0-9]*\) .*/\1/p' "$1"; }
watch() { ( sleep %(limit)d; diag "TIMEOUT: transfers still running after %(limit)d s"; \
	kill $(pidof ivshmem) ) 2>/dev/null & watcher=$!; }
unwatch() { kill $watcher 2>/dev/null; }
ok "driver bound, 2 vectors" test "$(cat /sys/class/ivshmem/ivshmem0/vectors)" = 2
diag "guest-ready"
ctl_read go
"""

# One transfer both ways in guest X, with the README's lines; PEER is who is at the other end.
GUEST_TRANSFER = r"""watch
{
%(send)s
sender=$!
%(recv)s
rc=$?
wait $sender
src=$?
} 2>/tmp/%(tag)s.err
unwatch
ok "guest %(x)s: sent %(n)d records on %(out)s to %(peer)s, its bridge read all (exit $src)" \
	test $src = 0
ok "guest %(x)s: %(in)s ended (end of stream) after the records of %(peer)s (exit $rc)" test $rc = 0
ok "guest %(x)s: %(in)s carried exactly %(n)d records, boundaries kept (counted $(count /tmp/%(tag)s.err))" \
	test "$(count /tmp/%(tag)s.err)" = %(n)d
same got.txt want.txt \
	"guest %(x)s: the %(n)d records of %(peer)s (number, CRC32, payload), in order, byte for byte"
diag "guest %(x)s: $(tr '\n' ' ' </tmp/%(tag)s.err)"
"""

# Guest A, between the two: the same lines again, now with the second session's files.
GUEST_NEXT = r"""diag "phase1-done"
ctl_read go2
mv a2b-2.txt a2b.txt
mv want-answers.txt want.txt
"""


def guest_script(x):
    """Phase 1 (guest <-> guest) in guest @x; in guest A, phase 2 (guest A <-> process on B)."""
    chans = {"out": "a2b", "in": "b2a"} if x == "A" else {"out": "b2a", "in": "a2b"}
    step = dict(chans, x=x, n=N, send=GUEST_LINES[x][0], recv=GUEST_LINES[x][1])
    s = GUEST_LIB % {"limit": GUEST_TRANSFER_S}
    s += GUEST_TRANSFER % dict(step, tag="p1", peer="guest " + ("B" if x == "A" else "A"))
    if x == "A":
        s += GUEST_NEXT + GUEST_TRANSFER % dict(step, tag="p2", peer="the process on host B")
    return s


def start_line(host, line, log, path):
    """Run one README line inside @host: leading NAME=VALUE words go to the environment, a
    trailing '&' means in the background (a Popen), otherwise it runs to the end (a result)."""
    words = shlex.split(line)
    env = dict(os.environ, PATH=path)
    while "=" in words[0]:
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    if words[-1] == "&":
        return host.popen(words[:-1], stdout=log, stderr=log, env=env)
    return host.run(words, env=env, timeout=30)


class Hosts:
    """The two hosts of the README: in each, its server, the format, its bridge."""

    def __init__(self, net, tmp):
        self.net, self.tmp = net, tmp
        self.key = os.path.join(tmp, "KEY")
        fd = os.open(self.key, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, os.urandom(24).hex().encode() + b"\n")
        os.close(fd)
        dirs = [os.path.join(BUILD_DIR, d) for d in ("server", "bridge", "tools")]
        build_file("bridge/ivshmem-bridge")
        self.path = ":".join(dirs + [os.environ.get("PATH", "/usr/bin:/bin")])
        self.sock = {x: os.path.join(tmp, f"{x}.sock") for x in "AB"}
        self.procs = {}

    def values(self, x):
        host = self.net.a if x == "A" else self.net.b
        return {"sock": self.sock[x], "key": self.key, "addr_a": self.net.a.addr, "dev": host.dev,
                "x": x}

    def host(self, x):
        return self.net.a if x == "A" else self.net.b

    def log(self, name):
        return os.path.join(self.tmp, f"{name}.log")

    def text(self, name):
        try:
            with open(self.log(name), "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def run(self, name, x, line):
        with open(self.log(name), "ab") as log:
            r = start_line(self.host(x), line.format(**self.values(x)), log, self.path)
        if isinstance(r, subprocess.Popen):
            self.procs[name] = r
        return r

    def start(self, tap):
        """Servers, formats, bridges; False (and why) if any of it failed."""
        for x in "AB":
            self.run(f"server-{x}", x, HOST_LINES["server"])
        for x in "AB":
            if not wait_until(lambda: os.path.exists(self.sock[x]), 10):
                return tap.ok(False, f"host {x}: ivshmem-server listens: {self.text('server-' + x)}")
            r = self.run(f"format-{x}", x, HOST_LINES["format"])
            why = f": {r.stderr.decode().strip()}" if r.returncode else ""
            if not tap.ok(r.returncode == 0, f"host {x}: ivshmem format through its server "
                          f"(exit {r.returncode}){why}"):
                return False
        self.run("bridge-A", "A", HOST_LINES["A"])
        # B redials every second anyway; waiting for A's listener keeps B's log free of a
        # first failed dial.
        wait_until(lambda: "listening on" in self.text("bridge-A"), 10)
        self.run("bridge-B", "B", HOST_LINES["B"])
        up = wait_until(lambda: all("is up" in self.text(f"bridge-{x}") for x in "AB"), 15)
        return tap.ok(up, "bridges A and B linked over the veth pair")

    def stop_bridges(self):
        """SIGTERM both bridges: {name: exit status} (0 is a clean stop; -9: had to kill)."""
        out = {}
        for x in "AB":
            p = self.procs.get(f"bridge-{x}")
            if p is None:
                continue
            p.terminate()
            try:
                out[x] = p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                out[x] = p.wait()
        return out


def make_guest(x, hosts, files):
    g = Guest(f"bridge{x}", timeout=360, boot_timeout=BOOT_S, kernel_args="panic_on_warn=1")
    for name, data in files.items():
        path = os.path.join(hosts.tmp, f"{x}-{name}")
        with open(path, "wb") as f:
            f.write(data)
        g.add_file(f"/root/{name}", path)
    g.devices += shlex.split(QEMU_DEVICE.format(**hosts.values(x)))
    g.add_driver(load=True)
    g.add_tool()
    g.script = guest_script(x)
    return g


def finish(g):
    """The guest's result: as it ended, or stopped now (an earlier step failed); None if it
    never started."""
    if g.proc is None:
        return None
    if g.result is None:
        g.kill()
        g.wait()
    return g.result


def run_guests(tap, hosts, ga, gb):
    """Boot both, phase 1 (both guests), phase 2 (guest A and the process on B)."""
    lib = build_file("lib/libivshmem.so")
    t0 = time.monotonic()
    ga.start()
    gb.start()
    for g in (ga, gb):   # both boot at once: one deadline for both
        g.wait_line(r"guest-ready", timeout=max(1.0, t0 + BOOT_S - time.monotonic()))
    tap.diag(f"both guests ready {time.monotonic() - t0:.1f} s after starting QEMU")
    t1 = time.monotonic()
    ga.send("go")
    gb.send("go")
    gb.wait()
    ga.wait_line(r"phase1-done", timeout=GUEST_TRANSFER_S + 30)
    t2 = time.monotonic()
    tap.diag(f"phase 1 (guest <-> guest, {N} records each way): {t2 - t1:.1f} s")
    env = dict(os.environ, IVSHMEM_LIB=lib, PYTHONPATH=os.path.join(SOURCE_DIR, "python"))
    proc = hosts.net.b.popen([sys.executable, os.path.abspath(__file__), "--host-b",
                              f"server:{hosts.sock['B']}", str(N), str(SEEDS["a2b-2"])],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    ga.send("go2")
    ga.wait()
    try:
        out, err = proc.communicate(timeout=2 * TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    tap.diag(f"phase 2 (guest A <-> process on B): {time.monotonic() - t2:.1f} s")
    return proc, out, err


def check_host_b(tap, proc, out, err):
    try:
        b = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        tap.ok(False, f"host B: the process reported nothing (exit {proc.returncode}): "
               f"{err.decode()[-600:]}")
        return
    tap.ok(b["error"] is None and b["received"] == N,
           f"host B: {b['received']}/{N} records from guest A, each checked "
           f"(number, CRC32, bytes, one per recv){': ' + b['error'] if b['error'] else ''}")
    tap.ok(b["end"] == "EPIPE", f"host B: then end of stream, EPIPE (got {b['end']})")
    tap.ok(b["answered"] == N and b["delivered"] is True,
           f"host B: answered {b['answered']}, its close waited until the bridge read them "
           f"({b['delivered']})")
    tap.ok(proc.returncode == 0, f"host B: the process exited {proc.returncode}")


def body(tap):
    data = {k: records(N, s) for k, s in SEEDS.items()}
    files = {"A": {"a2b.txt": b"".join(data["a2b"]), "want.txt": b"".join(data["b2a"]),
                   "a2b-2.txt": b"".join(data["a2b-2"]),
                   "want-answers.txt": b"".join(map(answer, data["a2b-2"]))},
             "B": {"b2a.txt": b"".join(data["b2a"]), "want.txt": b"".join(data["a2b"])}}
    t0 = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="ivshmem-bridge-guest-")
    try:
        with TwoHosts() as net:
            hosts = Hosts(net, tmp)
            if hosts.start(tap):
                run_both(tap, hosts, files)
            for x, rc in hosts.stop_bridges().items():
                tap.ok(rc == 0, f"bridge {x} stops cleanly on SIGTERM (exit {rc})")
            for x in "AB":
                tap.diag(f"bridge {x}: {hosts.text('bridge-' + x).strip()}")
    except NetnsError as e:
        tap.ok(False, f"two hosts (network namespaces): {e}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    tap.diag(f"test time {time.monotonic() - t0:.1f} s")


def run_both(tap, hosts, files):
    with make_guest("A", hosts, files["A"]) as ga, make_guest("B", hosts, files["B"]) as gb:
        proc = None
        try:
            proc, out, err = run_guests(tap, hosts, ga, gb)
        except RigError as e:
            tap.ok(False, f"rig: {e}")
        for g in (gb, ga):
            result = finish(g)
            if result is None:
                tap.ok(False, f"[{g.name}] the guest never started")
            else:
                tap.guest(result)
        if proc is not None:
            check_host_b(tap, proc, out, err)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--host-b":
        sys.exit(host_b(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
    if sys.argv[1:] == ["--readme"]:
        print(readme())
        sys.exit(0)
    run_test(body)
