#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ivshmem-bridge's command line: --help and its man page agree, bad flags and configuration
files give one clear line and exit 2, the secret file's mode is checked, run-time failures
exit 1, --check prints the effective configuration. No namespaces needed."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import taplib  # noqa: E402,F401
from taplib import ok, done  # noqa: E402

BRIDGE, SERVER, CLI, PEER, FAKE, SRC = sys.argv[1:7]


def run(*args, timeout=20):
    r = subprocess.run([BRIDGE, *args], capture_output=True, timeout=timeout,
                       env=dict(os.environ, UCX_TLS="tcp", UCX_NET_DEVICES="lo"))
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def options_of(text):
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*[a-z]", text))


def main():
    tmp = tempfile.mkdtemp(prefix="ivshmem-bridge-cli-")
    try:
        secret = os.path.join(tmp, "key")
        with open(secret, "w") as f:
            f.write("0123456789abcdef0123\n")
        os.chmod(secret, 0o600)
        base = ["--name", "A", "--region", os.path.join(tmp, "nope"), "--secret-file", secret,
                "--peer", "B=127.0.0.1:7199", "--channel", "ctl@B"]

        rc, out, err = run("--help")
        ok(rc == 0 and "--secret-file" in out and "Exit status" in out, "--help: exit 0", err)
        page = os.path.join(SRC, "docs", "ivshmem-bridge.8")
        if shutil.which("groff"):
            r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-rLL=100n", page], capture_output=True)
            text = re.sub(r".\x08", "", r.stdout.decode(errors="replace"))
            ok(r.returncode == 0 and r.stderr == b"", "ivshmem-bridge.8 renders with no warnings",
               r.stderr.decode())
            ok(options_of(out) == options_of(text), "ivshmem-bridge.8 lists exactly the options of --help",
               sorted(options_of(out) ^ options_of(text)))
        else:
            ok(False, "groff is needed to check ivshmem-bridge.8 (scripts/deps.sh installs it)")
        rc, out, _ = run("--version")
        ok(rc == 0 and out.startswith("ivshmem-bridge "), "--version: exit 0")

        rc, out, err = run(*base, "--check")
        ok(rc == 0 and "channel ctl B" in out and "peer B connect 127.0.0.1:7199" in out,
           "--check prints the effective configuration, exit 0", out + err)

        bad = [
            (["--bogus"], "bad option"),
            (base + ["--channel", "ctl"], "NAME@PEER"),
            (base + ["--channel", "x@Z"], "peer 'Z', which is not configured"),
            (base + ["--peer", "C=10.0.0.1"], "ADDR:PORT"),
            (base + ["--peer", "C=host.example:1"], "not a numeric"),
            (base + ["--dead-ms", "100", "--keepalive-ms", "1000"], "at most half of dead-ms"),
            (base + ["--name", "a/b"], "1 to 63"),
            (["--region", "x", "--secret-file", secret, "--peer", "B"], "no name"),
            (["--name", "A", "--region", "x", "--secret-file", secret, "--peer", "B"],
             "no listen address"),
            (base + ["extra"], "unexpected argument"),
        ]
        for args, words in bad:
            rc, out, err = run(*args)
            ok(rc == 2 and words in err and "Try 'ivshmem-bridge --help'" in err,
               f"{' '.join(args[-2:])}: exit 2 saying '{words}'", err)

        conf = os.path.join(tmp, "c.conf")
        with open(conf, "w") as f:
            f.write("name A\n# a comment\nregion x\nfrobnicate yes\n")
        rc, out, err = run("--config", conf)
        ok(rc == 2 and f"{conf}:4: unknown keyword 'frobnicate'" in err,
           "a config file's error names the file and line: exit 2", err)
        rc, out, err = run("--config", os.path.join(tmp, "missing.conf"))
        ok(rc == 2 and "No such file" in err, "a missing config file: exit 2", err)

        os.chmod(secret, 0o644)
        rc, out, err = run(*base)
        ok(rc == 2 and "chmod 600" in err, "a secret file readable by others is refused: exit 2", err)
        os.chmod(secret, 0o600)
        short = os.path.join(tmp, "short")
        with open(short, "w") as f:
            f.write("abc\n")
        os.chmod(short, 0o600)
        rc, out, err = run(*(base[:4] + ["--secret-file", short] + base[6:]))
        ok(rc == 2 and "a secret has 16" in err, "a too-short secret is refused: exit 2", err)

        rc, out, err = run(*base)
        ok(rc == 1 and "region" in err and "nope" in err, "a region that cannot be opened: exit 1",
           err)
        region = os.path.join(tmp, "region")
        r = subprocess.run([CLI, "format", "--size", "1M", "--name", "cli", region], capture_output=True)
        ok(r.returncode == 0, "format a file region", r.stderr.decode())
        rc, out, err = run("--name", "A", "--region", region, "--secret-file", secret, "--peer", "B",
                           "--listen", "192.0.2.1:7100")
        ok(rc == 1 and "listen on 192.0.2.1:7100" in err,
           "an address that cannot be bound: exit 1 with the address", err)

        # Running (a file region, a channel, a peer that is never there), then SIGTERM: exit 0,
        # so that a crash or a sanitizer report at exit (leaks too) fails here.
        p = subprocess.Popen([BRIDGE, "--name", "A", "--region", region, "--secret-file", secret,
                              "--peer", "B=127.0.0.1:9", "--channel", "ctl@B"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=dict(os.environ, UCX_TLS="tcp", UCX_NET_DEVICES="lo"))
        time.sleep(1.5)   # started, the channel open, a dial or two failed
        p.send_signal(signal.SIGTERM)
        try:
            out, err = p.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        err = err.decode()
        ok(p.returncode == 0 and "started" in err and "stopping (signal 15)" in err,
           f"a running bridge stops on SIGTERM with exit 0 (status {p.returncode})", err[-3000:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return done()


if __name__ == "__main__":
    sys.exit(main())
