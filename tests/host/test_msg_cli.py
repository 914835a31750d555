#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`ivshmem send`/`recv` as scripts use them (issue 12, items 1-6), driving the built binaries:
  1. a clean close over server: is a close, not a death;
  2. SIGINT/SIGTERM close the channel; a killed end's slot is reclaimed at once;
  3. a cut-off byte stream never looks complete (end record with length and CRC32C);
  4. the README's messaging example, executed as written;
  5. a second sender is refused and what is buffered stays;
  6. a receiver waiting for a peer that has not opened yet uses (almost) no CPU;
plus --stats --json.

Usage: test_msg_cli.py IVSHMEM IVSHMEM_SERVER
"""
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import taplib  # noqa: E402
from taplib import ok, diag  # noqa: E402

CLI, SERVER = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
HERE = os.path.dirname(os.path.abspath(__file__))
FREE, OPEN, CLOSED = 0, 1, 2


def run(*args, stdin=None, timeout=30):
    """Run the CLI to its end; a hang is killed after @timeout and has returncode None."""
    try:
        return subprocess.run([CLI, *args], input=stdin, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(e.cmd, None, e.stdout or b"",
                                           (e.stderr or b"") + b"(killed: it hung)")


def spawn(*args, stdin=subprocess.DEVNULL):
    return subprocess.Popen([CLI, *args], stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def close_stdin(p):
    p.stdin.close()
    p.stdin = None


def finish(p, timeout=10):
    """Wait for @p (killing it after @timeout): (returncode, stdout, stderr)."""
    if p.stdin:
        close_stdin(p)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return None, out, err
    return p.returncode, out, err


def wait_until(pred, timeout=10.0):
    """Poll @pred (a condition, not a delay) until it holds or @timeout passes."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def section(path, name):
    """Offset of channel @name in the layout of file @path (docs/layout.md)."""
    with open(path, "rb") as f:
        head = f.read(4096)
    for i in range(60):
        e = 256 + 64 * i
        ename = head[e:e + 32].split(b"\0")[0].decode()
        etype, = struct.unpack_from("<I", head, e + 32)
        if etype == 1 and ename == name:
            return struct.unpack_from("<Q", head, e + 40)[0]
    return None


def slots(path, name):
    """The two endpoint states of channel @name (docs/channel.md)."""
    off = section(path, name)
    with open(path, "rb") as f:
        f.seek(off)
        ctl = f.read(512)
    return [struct.unpack_from("<I", ctl, 128 + 128 * i)[0] for i in range(2)]


def records(path, name, slot):
    """The unread records slot @slot sent: [(payload offset in the file, bytes)] (docs/ring.md)."""
    off = section(path, name)
    with open(path, "rb") as f:
        f.seek(off)
        ctl = f.read(4096)
        cap, = struct.unpack_from("<Q", ctl, 16)
        rc = 512 + 512 * slot
        prod, cons = struct.unpack_from("<Q", ctl, rc)[0], struct.unpack_from("<Q", ctl, rc + 128)[0]
        data = off + 4096 + slot * cap
        out = []
        while cons < prod:
            f.seek(data + (cons & (cap - 1)))
            info, = struct.unpack("<I", f.read(4))
            length = info & 0x7fffffff
            if not info & 0x80000000:           # not a pad
                out.append((data + (cons & (cap - 1)) + 8, length))
            cons += 8 + ((length + 7) & ~7)
        return out


def crc32c(data, crc=0):
    crc ^= 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82f63b78 if crc & 1 else 0)
    return crc ^ 0xffffffff


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """ivshmem-server in the foreground, its memory in /dev/shm (so the test can read it)."""

    def __init__(self, tmp):
        self.sock = os.path.join(tmp, "sock")
        self.shm = f"ivshmem-test-msgcli-{os.getpid()}"
        self.proc = subprocess.Popen([SERVER, "-F", "-S", self.sock, "-M", self.shm, "-l", "1M",
                                      "-n", "2"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.ready = wait_until(lambda: os.path.exists(self.sock), 5)
        self.target = f"server:{self.sock}"
        self.path = f"/dev/shm/{self.shm}"

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if os.path.exists(self.path):
            os.unlink(self.path)


def fresh(path, *channels):
    if os.path.exists(path):
        os.unlink(path)
    args = ["format", "--size", "1M", "--name", "msgcli"]
    for c in channels:
        args += ["--channel", c]
    r = run(*args, path)
    return r.returncode == 0


# ---- 1. a clean close over server: --------------------------------------------------------------

def close_over_server(srv):
    r = run("format", "--force", "--name", "msgcli", "--channel", "c", "--channel", "l", srv.target)
    ok(r.returncode == 0, "format the server's memory", r.stderr)
    for chan, extra in (("l", ["--lines"]), ("c", [])):
        recv = spawn("recv", "--timeout", "20000", srv.target, chan)
        wait_until(lambda: OPEN in slots(srv.path, chan), 5)
        # `(echo hi; sleep 2) | send`, with the pause ended by the test, not by time.
        send = spawn("send", *extra, "--timeout", "20000", srv.target, chan,
                     stdin=subprocess.PIPE)
        send.stdin.write(b"hi\n")
        send.stdin.flush()
        got = wait_until(lambda: slots(srv.path, chan).count(OPEN) == 2, 5)
        time.sleep(0.5)     # the receiver is asleep in recv when the sender closes and leaves
        close_stdin(send)
        s = finish(send, 20)
        rv = finish(recv, 20)
        mode = "--lines" if extra else "a stream"
        ok(got and s[0] == 0, f"server, {mode}: send closes and leaves: exit 0", s[2])
        ok(rv[0] == 0 and rv[1] == b"hi\n",
           f"server, {mode}: recv sees a close, not a death: exit 0 with the data "
           f"(exit {rv[0]}, {rv[1]!r})", rv[2])


# ---- 2. signals and killed ends ---------------------------------------------------------------------

def signals(path):
    fresh(path, "sig")
    recv = spawn("recv", path, "sig")
    ok(wait_until(lambda: slots(path, "sig")[0] == OPEN, 5), "recv opened (slot 0 OPEN)")
    t0 = time.monotonic()
    recv.send_signal(signal.SIGINT)
    rc, _, err = finish(recv, 5)
    ok(rc == -signal.SIGINT, f"SIGINT: recv dies of SIGINT after closing ({rc}, "
       f"{time.monotonic() - t0:.2f} s)", err)
    ok(slots(path, "sig")[0] == CLOSED, "its end is CLOSED, not left OPEN")

    # A send blocked on a full ring (no receiver), then SIGTERM.
    fresh(path, "sig")
    blob = os.urandom(1 << 20)
    send = spawn("send", path, "sig", stdin=subprocess.PIPE)
    # More than the ring holds (one 32 KiB record of a 64 KiB ring), less than ring + pipe.
    send.stdin.write(blob[:80 << 10])
    send.stdin.flush()
    full = wait_until(lambda: slots(path, "sig")[0] == OPEN and
                      sum(n for _, n in records(path, "sig", 0)) > 30000, 5)
    send.send_signal(signal.SIGTERM)
    rc, _, err = finish(send, 5)
    ok(full and rc == -signal.SIGTERM, f"SIGTERM: a send blocked on a full ring closes and dies "
       f"of SIGTERM ({rc})", err)
    ok(slots(path, "sig")[0] == CLOSED, "its end is CLOSED")
    r = run("recv", "--timeout", "5000", path, "sig")
    ok(r.returncode == 1 and b"incomplete stream" in r.stderr and blob.startswith(r.stdout),
       f"a later recv gets the part that was sent and exit 1, 'incomplete stream' "
       f"({len(r.stdout)} bytes, exit {r.returncode})", r.stderr)

    # A send waiting for stdin, interrupted.
    fresh(path, "sig")
    send = spawn("send", path, "sig", stdin=subprocess.PIPE)
    wait_until(lambda: slots(path, "sig")[0] == OPEN, 5)
    send.send_signal(signal.SIGINT)
    rc, _, err = finish(send, 5)
    ok(rc == -signal.SIGINT and slots(path, "sig")[0] == CLOSED,
       f"SIGINT while reading stdin: closed, died of SIGINT ({rc})", err)


def killed_end(target, path, what):
    """A SIGKILLed recv (no handler can run) is reclaimed at once by the next one."""
    run("format", "--force", "--name", "msgcli", "--channel", "k", target)
    dead = spawn("recv", target, "k")
    wait_until(lambda: OPEN in slots(path, "k"), 5)
    dead.kill()
    dead.communicate()
    t0 = time.monotonic()
    recv = spawn("recv", "--count", "1", "--timeout", "10000", target, "k")
    s = run("send", "--timeout", "10000", target, "k", "after")
    rv = finish(recv, 15)
    took = time.monotonic() - t0
    ok(s.returncode == 0 and rv[0] == 0 and rv[1] == b"after",
       f"{what}: after a SIGKILLed recv, a new recv and a send talk (exit {rv[0]}, "
       f"{rv[1]!r})", rv[2] + s.stderr)
    ok(took < 2.0, f"{what}: at once, not after the 3 s heartbeat timeout ({took:.2f} s)")


# ---- 3. a cut-off stream -----------------------------------------------------------------------------

def streams(path, tmp):
    fresh(path, "s")
    src = os.path.join(tmp, "big")
    blob = os.urandom(3 << 20)
    with open(src, "wb") as f:
        f.write(blob)
    t0 = time.monotonic()
    with open(src, "rb") as f:
        s = subprocess.run([CLI, "send", "--timeout", "2000", path, "s"], stdin=f,
                           capture_output=True, timeout=30)
    ok(s.returncode == 4, f"send --timeout 2000 of 3 MiB with no reader: exit 4 "
       f"({s.returncode}, {time.monotonic() - t0:.1f} s)", s.stderr)
    r = run("recv", "--timeout", "5000", path, "s")
    ok(r.returncode not in (0, None) and b"incomplete stream" in r.stderr,
       f"a later recv does not exit 0: exit {r.returncode}, "
       f"{r.stderr.decode().strip()}", r.stderr)
    ok(blob.startswith(r.stdout) and 0 < len(r.stdout) < len(blob),
       f"it wrote the {len(r.stdout)} bytes that were sent, no more")

    # A complete stream, and its records as docs/channel.md describes them.
    fresh(path, "s")
    data = os.urandom(20000)         # fits in the ring: no receiver needed
    s = run("send", path, "s", stdin=data)
    recs = records(path, "s", 0)
    with open(path, "rb") as f:
        def payload(rec):
            f.seek(rec[0])
            return f.read(rec[1])
        head, tail = payload(recs[0]), payload(recs[-1])
    ok(s.returncode == 0 and head == b"IVSTREAM" + struct.pack("<II", 1, 0),
       "a stream starts with the 16-byte header record", head)
    ok(recs[-2][1] == 0 and tail == b"IVSTREND" + struct.pack("<QII", len(data), crc32c(data), 0),
       "and ends with an empty record and the end record: length and CRC32C", tail)
    r = run("recv", "--timeout", "5000", path, "s")
    ok(r.returncode == 0 and r.stdout == data, f"recv of the complete stream: exit 0, "
       f"every byte ({len(r.stdout)})", r.stderr)

    # The same stream with one bit of the end record's CRC flipped.
    fresh(path, "s")
    run("send", path, "s", stdin=data)
    at = records(path, "s", 0)[-1][0] + 16
    with open(path, "r+b") as f:
        f.seek(at)
        b = f.read(1)
        f.seek(at)
        f.write(bytes([b[0] ^ 1]))
    r = run("recv", "--timeout", "5000", path, "s")
    ok(r.returncode == 1 and b"damaged stream" in r.stderr, "a wrong CRC32C: exit 1, "
       f"'damaged stream' ({r.stderr.decode().strip()})", r.stderr)

    # Concurrent, larger than the ring, with --stats --json.
    fresh(path, "s")
    dst = os.path.join(tmp, "out")
    with open(dst, "wb") as o:
        recv = subprocess.Popen([CLI, "recv", "--stats", "--json", "--timeout", "20000", path, "s"],
                                stdout=o, stderr=subprocess.PIPE)
    with open(src, "rb") as f:
        s = subprocess.run([CLI, "send", "--stats", "--json", "--timeout", "20000", path, "s"],
                           stdin=f, capture_output=True, timeout=60)
    rc, _, err = finish(recv, 30)
    with open(dst, "rb") as o:
        out = o.read()
    ok(s.returncode == 0 and rc == 0 and out == blob, f"3 MiB through a 64 KiB ring: both exit 0, "
       f"identical ({len(out)} bytes)", err + s.stderr)
    try:
        js, jr = json.loads(s.stderr.decode().strip().splitlines()[-1]), \
            json.loads(err.decode().strip().splitlines()[-1])
        good = js["command"] == "send" and js["bytes"] == len(blob) and \
            jr["bytes"] == len(blob) and jr["received"] > 0 and "doorbell_mode" in jr
    except (ValueError, KeyError, IndexError) as e:
        good, js, jr = False, e, None
    ok(good, "--stats --json: one JSON object each, with the byte counts", f"{js} {jr}")


# ---- 4. the README, as written --------------------------------------------------------------------

def readme(tmp):
    text = open(os.path.join(HERE, "..", "..", "README.md")).read()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    block = next((b for b in blocks if "ivshmem send" in b and "ivshmem recv" in b), None)
    if not ok(block is not None, "README.md has the messaging example"):
        return
    # Run as written, in order, in one shell; only the file moves out of the way of a real demo.
    path = f"/dev/shm/ivshmem-test-readme-{os.getpid()}"
    script = block.replace("/dev/shm/demo", path)
    bindir = os.path.join(tmp, "bin")
    os.makedirs(bindir, exist_ok=True)
    os.symlink(CLI, os.path.join(bindir, "ivshmem"))
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ["PATH"]}
    try:
        r = subprocess.run(["sh", "-e", "-c", script], capture_output=True, timeout=20, env=env)
        rc, out, err = r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = None, e.stdout or b"", e.stderr or b""
    finally:
        if os.path.exists(path):
            os.unlink(path)
    ok(rc == 0 and out.endswith(b"hello\n"),
       f"the README's messaging example runs as written, in order: exit {rc}, prints hello",
       (err or b"").decode() + (out or b"").decode()[-200:])


# ---- 5. point-to-point ---------------------------------------------------------------------------

def second_sender(path):
    fresh(path, "p")
    a = run("send", "--linger", "0", path, "p", "first")
    b = run("send", "--linger", "0", path, "p", "second")
    ok(a.returncode == 0, "a first send with nobody there: exit 0, buffered", a.stderr)
    ok(b.returncode == 1 and b"taken" in b.stderr and b"point-to-point" in b.stderr,
       f"a second sender is refused: exit 1 ({b.stderr.decode().strip()})", b.stderr)
    r = run("recv", "--timeout", "5000", path, "p")
    ok(r.returncode == 0 and r.stdout == b"first", f"the first message is intact ({r.stdout!r})",
       r.stderr)

    fresh(path, "p")
    first = spawn("recv", "--timeout", "10000", path, "p")
    wait_until(lambda: slots(path, "p")[0] == OPEN, 5)
    second = run("recv", "--timeout", "10000", path, "p", timeout=15)
    ok(second.returncode == 1 and b"receive-only" in second.stderr,
       f"a second receiver is refused at once ({second.stderr.decode().strip()})")
    run("send", path, "p", "for the first")
    rc, out, err = finish(first, 15)
    ok(rc == 0 and out == b"for the first", "the first receiver still gets the message", err)


# ---- 6. an idle receiver ---------------------------------------------------------------------------

def set_slots(path, name, states):
    """Write both slot states of channel @name, as endpoints that left them so would."""
    off = section(path, name)
    with open(path, "r+b") as f:
        for i, st in enumerate(states):
            f.seek(off + 128 + 128 * i)
            f.write(struct.pack("<I", st))


def aborted_slots(path):
    """`ivshmem info` on ABORTED slots (3, what ivshmem_channel_abort() leaves): named, not
    called corrupt; an open end whose peer aborted is peer-aborted."""
    ok(fresh(path, "ab"), "aborted: a fresh channel")
    for states, pair in (([3, 0], "idle"), ([1, 3], "peer-aborted"), ([1, 2], "peer-closed"),
                         ([4, 0], "corrupt")):
        set_slots(path, "ab", states)
        r = run("info", path)
        text = r.stdout.decode()
        want = [("free", "open", "closed", "aborted")[st] if st < 4 else "invalid" for st in states]
        ok(r.returncode == 0 and f"channel ab: {pair}, slots {want[0]}/{want[1]}," in text,
           f"info: slots {states} read as {pair}, slots {want[0]}/{want[1]}", text)
        j = json.loads(run("info", "--json", path).stdout)
        ch = next(x for x in j["layout"]["sections"] if x["name"] == "ab")["channel"]
        ok(ch["state"] == pair and [x["state"] for x in ch["slots"]] == want,
           f"info --json: slots {states} read as {pair}, {want}", json.dumps(ch))


def idle_cpu(target, path, what):
    recv = spawn("recv", "--timeout", "3000", target, "idle")
    wait_until(lambda: OPEN in slots(path, "idle"), 5)
    time.sleep(0.2)     # past start-up and the first back-off steps
    c0, t0 = cpu_seconds(recv.pid), time.monotonic()
    time.sleep(2.0)     # the measurement window, not a synchronisation
    c1, t1 = cpu_seconds(recv.pid), time.monotonic()
    rc, _, err = finish(recv, 10)
    used = c1 - c0
    diag(f"{what}: idle receiver: {used * 1000:.0f} ms CPU in {t1 - t0:.2f} s")
    ok(rc == 4, f"{what}: recv --timeout 3000 with no peer: exit 4", err)
    ok(used <= 0.03, f"{what}: a receiver waiting for a peer uses {used * 1000:.0f} ms of CPU "
       f"in {t1 - t0:.1f} s (bound 30 ms, 1.5 %)")


def main():
    tmp = tempfile.mkdtemp(prefix="ivshmem-msgcli-")
    path = f"/dev/shm/ivshmem-test-msgcli-file-{os.getpid()}"
    srv = Server(tmp)
    try:
        if not srv.ready:
            print("Bail out! ivshmem-server did not start")
            return 1
        steps = [
            ("close over server:", lambda: close_over_server(srv)),
            ("signals", lambda: signals(path)),
            ("killed end, file", lambda: killed_end(path, path, "file")),
            ("killed end, server", lambda: killed_end(srv.target, srv.path, "server")),
            ("streams", lambda: streams(path, tmp)),
            ("README", lambda: readme(tmp)),
            ("second sender", lambda: second_sender(path)),
            ("aborted slots", lambda: aborted_slots(path)),
            ("idle, file", lambda: fresh(path, "idle") and idle_cpu(path, path, "file")),
            ("idle, server", lambda: run("format", "--force", "--name", "msgcli", "--channel",
                                         "idle", srv.target) and
             idle_cpu(srv.target, srv.path, "server")),
        ]
        for name, step in steps:
            try:
                step()
            except Exception as e:      # a broken step fails, the others still run
                ok(False, f"{name}: {type(e).__name__}: {e}")
    finally:
        srv.stop()
        if os.path.exists(path):
            os.unlink(path)
        shutil.rmtree(tmp, ignore_errors=True)
    return taplib.done()


if __name__ == "__main__":
    sys.exit(main())
