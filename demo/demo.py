#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The live demo: ivshmem-server, two QEMU guests (Debian kernel + ivshmem.ko) and a host peer.

    host peer ──host-a──► guest A ──a-b──► guest B ──host-b──► host peer

Every hop is a named channel in one shared region served by our ivshmem-server; doorbells wake the
receiver (MSI-X in the guests, eventfds on the host). Each line is printed as it happens.
Run it through ./demo.sh, which installs and builds what it needs first.
"""
import os
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "vm"))
from rig import BUILD_DIR, Guest, RigError  # noqa: E402

SERVER = os.path.join(BUILD_DIR, "server", "ivshmem-server")
CLI = os.path.join(BUILD_DIR, "tools", "ivshmem")
T0 = time.monotonic()
COLORS = {"server": "35", "host": "36", "guest-a": "32", "guest-b": "33", "demo": "1"}
print_lock = threading.Lock()


def say(who, text):
    color = COLORS.get(who, "0") if sys.stdout.isatty() else None
    tag = f"[{time.monotonic() - T0:6.1f}s {who:>7}]"
    with print_lock:
        print(f"\033[{color}m{tag}\033[0m {text}" if color else f"{tag} {text}", flush=True)


def cli(*args, timeout=120):
    """Run our ivshmem CLI on the host (a short-lived server peer) and return its stdout."""
    p = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"ivshmem {' '.join(args)} failed ({p.returncode}): {p.stderr.strip()}")
    return p.stdout


# The guests' part, in busybox sh. Each line they `say` goes to the verdict channel and is
# printed by the host as it arrives. ME and PEER are set per guest.
GUEST_SCRIPT = r"""
say() { v "# $*"; }
dev=/dev/ivshmem0
wait_for 10 test -e $dev || { fail "no $dev: did ivshmem.ko bind?"; exit 1; }
say "booted $(uname -r); $(ivshmem info $dev | grep -iE 'ivposition|peer id' | head -n 1 | tr -s ' ')"
if [ "$ME" = a ]; then
	msg=$(ivshmem recv --count 1 --timeout 120000 $dev host-a) || { fail "recv host-a"; exit 1; }
	say "got from host on host-a: '$msg'"
	ivshmem send --timeout 120000 $dev a-b "$msg + guest A was here" || { fail "send a-b"; exit 1; }
	say "passed it to guest B on a-b"
else
	msg=$(ivshmem recv --count 1 --timeout 120000 $dev a-b) || { fail "recv a-b"; exit 1; }
	say "got from guest A on a-b: '$msg'"
	ivshmem send --timeout 120000 $dev host-b "$msg + guest B was here" || { fail "send host-b"; exit 1; }
	say "passed it to the host on host-b"
fi
pass "guest $ME done"
"""


def stream(guest, who, stop):
    while not stop.is_set():
        for line in guest.new_lines():
            if line.startswith("# "):
                say(who, line[2:])
            elif line.startswith("not ok"):
                say(who, "FAILED: " + line[7:])
        time.sleep(0.1)


def main():
    for path in (SERVER, CLI):
        if not os.path.exists(path):
            sys.exit(f"demo: {path} is missing; build first (./demo.sh does)")
    workdir = tempfile.mkdtemp(prefix="ivshmem-demo-")
    sock = os.path.join(workdir, "ivshmem.sock")
    say("demo", "ivshmem demo: host peer -> guest A -> guest B -> host peer, over named channels")
    server = subprocess.Popen([SERVER, "-F", "-v", "-S", sock, "-l", "16M", "-n", "2",
                               "-M", f"ivshmem-demo-{os.getpid()}", "-p", os.path.join(workdir, "pid")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    threading.Thread(target=lambda: [say("server", l.rstrip()) for l in server.stdout],
                     daemon=True).start()
    ok = False
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("ivshmem-server did not start")
            time.sleep(0.05)
        cli("format", f"server:{sock}", "--name", "demo",
            "--channel", "host-a", "--channel", "a-b", "--channel", "host-b")
        say("host", "formatted region 'demo' with channels host-a, a-b, host-b")

        guests = []
        stop = threading.Event()
        for me in ("a", "b"):
            g = Guest(f"guest-{me}", timeout=300, mem=256)
            g.add_doorbell(sock, vectors=2)
            g.add_driver()
            g.add_tool()
            g.script = f"ME={me}\n" + GUEST_SCRIPT
            guests.append(g)
        for g in guests:
            g.start()
            say("demo", f"booting {g.name} (QEMU {'KVM' if os.environ.get('IVSHMEM_VM_KVM') == '1' else 'TCG'}, "
                        "ivshmem-doorbell, 2 vectors)")
            threading.Thread(target=stream, args=(g, g.name, stop), daemon=True).start()

        # The host peer: send into host-a, then wait for what comes back on host-b.
        for g in guests:
            g.wait_line(r"^# booted", timeout=120)
        message = "hello from the host"
        say("host", f"sending '{message}' on host-a")
        cli("send", "--timeout", "120000", f"server:{sock}", "host-a", message)
        back = cli("recv", "--count", "1", "--timeout", "180000", f"server:{sock}", "host-b",
                   timeout=200).strip()
        say("host", f"got back on host-b: '{back}'")
        results = [g.wait() for g in guests]
        stop.set()
        ok = back == f"{message} + guest A was here + guest B was here" and all(r.passed for r in results)
        for r in results:
            if not r.passed:
                say(r.guest.name, f"FAILED: {r.error or 'see console'}\n{r.guest.console_tail(40)}")
        for g in guests:
            g.__exit__(None, None, None)
    except (RigError, RuntimeError, subprocess.TimeoutExpired) as e:
        say("demo", f"FAILED: {e}")
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    say("demo", "the message went around: host -> A -> B -> host" if ok else "demo FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
