#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The live demo: ivshmem-server, two QEMU guests (Debian kernel + ivshmem.ko) and a host peer.

    host peer ──host-a──► guest A ──a-b──► guest B ──host-b──► host peer

Every hop is a named channel in one shared region served by our ivshmem-server (a sealed memfd:
nothing in /dev/shm); doorbells wake the receiver (MSI-X in the guests, eventfds on the host).
Lines are printed in causal order: each side says what it passes on *before* it sends it, and a
line that reports a receipt is held back until the line of the send it depends on was printed.
Run it through ./demo.sh, which installs and builds what it needs first.
"""
import os
import re
import shutil
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
		say "round $round: got from host on host-a: '$msg'"
		say "round $round: passing it to guest B on a-b"
		ivshmem send --timeout 120000 $dev a-b "$msg + A" || { fail "send a-b"; exit 1; }
	else
		msg=$(ivshmem recv --count 1 --timeout 120000 $dev a-b) || { fail "recv a-b"; exit 1; }
		say "round $round: got from guest A on a-b: '$msg'"
		say "round $round: passing it to the host on host-b"
		ivshmem send --timeout 120000 $dev host-b "$msg + B" || { fail "send host-b"; exit 1; }
	fi
done
pass "guest $ME done"
"""


ROUNDS = 3


class Causal:
    """Prints the guests' lines in causal order.

    A receipt in round N is printed only after the send it depends on: guest B's "got" after
    guest A's "passing" of the same round, the host's "got back" after guest B's "passing".
    (Guest A's "got" follows the host's "sending", which the host prints before it sends.)
    Lines of one guest keep their order: a held line holds the ones after it.
    """

    RX = re.compile(r"^round (\d+): (got|passing)")

    def __init__(self):
        self.cond = threading.Condition()
        self.passed = {"guest-a": 0, "guest-b": 0}   # last round whose "passing" line was printed
        self.held = {}

    def _ready(self, who, text):
        m = self.RX.match(text)
        if not m or m.group(2) != "got" or who != "guest-b":
            return True
        return self.passed["guest-a"] >= int(m.group(1))

    def show(self, guest):
        """Print what @guest said since the last call, as far as causality allows."""
        queue = self.held.setdefault(guest.name, [])
        queue.extend(guest.new_lines())
        while queue:
            line = queue[0]
            if line.startswith("# "):
                if not self._ready(guest.name, line[2:]):
                    return
                say(guest.name, line[2:])
                m = self.RX.match(line[2:])
                if m and m.group(2) == "passing":
                    with self.cond:
                        self.passed[guest.name] = int(m.group(1))
                        self.cond.notify_all()
            elif line.startswith("not ok"):
                say(guest.name, "FAILED: " + line[7:])
            queue.pop(0)

    def wait_passed(self, who, rnd, timeout=60):
        """Block until @who's "passing" line of round @rnd was printed (bounded)."""
        with self.cond:
            return self.cond.wait_for(lambda: self.passed[who] >= rnd, timeout)


def host_peer(sock, outcome, order):
    """The host's part: send each round into host-a and wait for it on host-b."""
    try:
        for i in range(1, ROUNDS + 1):
            message = f"round {i} from the host"
            say("host", f"round {i}: sending '{message}' on host-a")
            cli("send", "--timeout", "120000", f"server:{sock}", "host-a", message)
            back = cli("recv", "--count", "1", "--timeout", "180000", f"server:{sock}", "host-b",
                       timeout=200).strip()
            order.wait_passed("guest-b", i)
            good = back == f"{message} + A + B"
            say("host", f"round {i}: got back on host-b: '{back}'" + ("" if good else "  <-- WRONG"))
            outcome.append(good)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        say("host", f"FAILED: {e}")
        outcome.append(False)


class ServerLog:
    """The server's log. While the rounds run, lines about peers are held back and printed after
    the guests' last lines (the guests' lines arrive late over their serial ports, so a server
    line printed at once could precede the guest line that caused it); the host's short-lived
    send/recv peers are left out."""

    def __init__(self, server):
        self.lock = threading.Lock()
        self.rounds = False
        self.known = set()   # peers that joined before the rounds: the guests (and the format run)
        self.held = []
        threading.Thread(target=self._read, args=(server,), daemon=True).start()

    def _read(self, server):
        for line in server.stdout:
            m = re.search(r"peer (\d+)", line)
            with self.lock:
                if m and self.rounds:
                    if m.group(1) in self.known:
                        self.held.append(line.rstrip())
                    continue
                if m and "joined" in line:
                    self.known.add(m.group(1))
            say("server", line.rstrip())

    def hold(self):
        with self.lock:
            self.rounds = True

    def release(self):
        with self.lock:
            self.rounds = False
            for line in self.held:
                say("server", line)
            self.held = []


def main():
    for path in (SERVER, CLI):
        if not os.path.exists(path):
            sys.exit(f"demo: {path} is missing; build first (./demo.sh does)")
    workdir = tempfile.mkdtemp(prefix="ivshmem-demo-")
    sock = os.path.join(workdir, "ivshmem.sock")
    say("demo", "ivshmem demo: host peer -> guest A -> guest B -> host peer, over named channels")
    # --memfd: sealed anonymous memory, so nothing is left in /dev/shm whatever happens.
    server = subprocess.Popen([SERVER, "-F", "-v", "-S", sock, "-l", "16M", "-n", "2", "--memfd"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = ServerLog(server)
    ok = False
    guests = []
    order = Causal()
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
            g.wait_line(r"^# booted", timeout=120)
            order.show(g)
        outcome = []
        say("demo", "the host's send and recv are short-lived server peers: their joins and leaves "
                    "are left out below (they would race the guests' lines)")
        log.hold()
        host = threading.Thread(target=host_peer, args=(sock, outcome, order), daemon=True)
        host.start()
        # Stream the guests' lines live until both have finished.
        while any(g.proc.poll() is None for g in guests) or host.is_alive():
            for g in guests:
                order.show(g)
            if time.monotonic() - T0 > 600:
                raise RuntimeError("the demo did not finish within 10 minutes")
            time.sleep(0.1)
        results = [g.wait() for g in guests]
        for g in guests:
            order.show(g)
        log.release()
        ok = len(outcome) == ROUNDS and all(outcome) and all(r.passed for r in results)
        for r in results:
            if not r.passed:
                say(r.guest.name, f"FAILED: {r.error or 'see console'}\n{r.guest.console_tail(40)}")
    except (RigError, RuntimeError, subprocess.TimeoutExpired) as e:
        say("demo", f"FAILED: {e}")
    finally:
        log.release()
        for g in guests:
            g.__exit__(None, None, None)
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(workdir, ignore_errors=True)
    say("demo", f"every message went around ({ROUNDS} rounds): host -> A -> B -> host"
        if ok else "demo FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
