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
for round in $(seq 1 $ROUNDS); do
	if [ "$ME" = a ]; then
		msg=$(ivshmem recv --count 1 --timeout 120000 $dev host-a) || { fail "recv host-a"; exit 1; }
		say "got from host on host-a: '$msg'"
		ivshmem send --timeout 120000 $dev a-b "$msg + A" || { fail "send a-b"; exit 1; }
		say "passed it to guest B on a-b"
	else
		msg=$(ivshmem recv --count 1 --timeout 120000 $dev a-b) || { fail "recv a-b"; exit 1; }
		say "got from guest A on a-b: '$msg'"
		ivshmem send --timeout 120000 $dev host-b "$msg + B" || { fail "send host-b"; exit 1; }
		say "passed it to the host on host-b"
	fi
done
pass "guest $ME done"
"""


ROUNDS = 3


def show(guest):
    """Print what a guest said since the last call."""
    for line in guest.new_lines():
        if line.startswith("# "):
            say(guest.name, line[2:])
        elif line.startswith("not ok"):
            say(guest.name, "FAILED: " + line[7:])


def host_peer(sock, outcome):
    """The host's part: send each round into host-a and wait for it on host-b."""
    try:
        for i in range(1, ROUNDS + 1):
            message = f"round {i} from the host"
            say("host", f"sending '{message}' on host-a")
            cli("send", "--timeout", "120000", f"server:{sock}", "host-a", message)
            back = cli("recv", "--count", "1", "--timeout", "180000", f"server:{sock}", "host-b",
                       timeout=200).strip()
            good = back == f"{message} + A + B"
            say("host", f"got back on host-b: '{back}'" + ("" if good else "  <-- WRONG"))
            outcome.append(good)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        say("host", f"FAILED: {e}")
        outcome.append(False)


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
    guests = []
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("ivshmem-server did not start")
            time.sleep(0.05)
        cli("format", f"server:{sock}", "--name", "demo",
            "--channel", "host-a", "--channel", "a-b", "--channel", "host-b")
        say("host", "formatted region 'demo' with channels host-a, a-b, host-b")

        for me in ("a", "b"):
            g = Guest(f"guest-{me}", timeout=300, mem=256)
            g.add_doorbell(sock, vectors=2)
            g.add_driver()
            g.add_tool()
            g.script = f"ME={me}\nROUNDS={ROUNDS}\n" + GUEST_SCRIPT
            guests.append(g)
        for g in guests:
            g.start()
            say("demo", f"booting {g.name} (QEMU {'KVM' if os.environ.get('IVSHMEM_VM_KVM') == '1' else 'TCG'}, "
                        "Debian kernel, ivshmem-doorbell with 2 vectors, ivshmem.ko)")
        for g in guests:
            while not any(line.startswith("# booted") for line in g._lines):
                show(g)
                g.wait_line(r"^# booted", timeout=120)
            show(g)
        outcome = []
        host = threading.Thread(target=host_peer, args=(sock, outcome), daemon=True)
        host.start()
        # Stream the guests' lines live until both have finished.
        while any(g.proc.poll() is None for g in guests) or host.is_alive():
            for g in guests:
                show(g)
            if time.monotonic() - T0 > 600:
                raise RuntimeError("the demo did not finish within 10 minutes")
            time.sleep(0.1)
        results = [g.wait() for g in guests]
        for g in guests:
            show(g)
        ok = len(outcome) == ROUNDS and all(outcome) and all(r.passed for r in results)
        for r in results:
            if not r.passed:
                say(r.guest.name, f"FAILED: {r.error or 'see console'}\n{r.guest.console_tail(40)}")
    except (RigError, RuntimeError, subprocess.TimeoutExpired) as e:
        say("demo", f"FAILED: {e}")
    finally:
        for g in guests:
            g.__exit__(None, None, None)
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    say("demo", f"every message went around ({ROUNDS} rounds): host -> A -> B -> host"
        if ok else "demo FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
