# SPDX-License-Identifier: MIT
"""TAP output shared by the Python host tests (meson runs them with protocol 'tap').

    from taplib import ok, skip, diag, done
    ok(cond, "what was checked", detail)   # detail: shown (last lines) only on failure
    sys.exit(done())                       # prints the plan; 1 if anything failed

Importing it also turns SIGTERM (what meson sends a test that runs over its timeout, and
what an interrupted ./test.sh passes on) into SystemExit, so the tests' finally blocks
stop their servers and remove their files and temp dirs.
"""
import signal
import sys


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _terminate)

count = 0
failed = 0


def ok(cond, desc, detail=None):
    global count, failed
    count += 1
    print(f"{'' if cond else 'not '}ok {count} - {desc}", flush=True)
    if not cond:
        failed += 1
        for line in str(detail or "").splitlines()[-15:]:
            print(f"#   {line[:300]}", flush=True)
    return cond


def skip(desc, why):
    global count
    count += 1
    print(f"ok {count} - {desc} # SKIP {why}", flush=True)


def diag(text):
    for line in str(text).splitlines() or [""]:
        print(f"# {line}", flush=True)


def done():
    print(f"1..{count}", flush=True)
    return 1 if failed else 0
