#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Run the binding's pytest suite for `meson test`: exit 0 only when tests ran and all passed.

    run_pytest.py LIBIVSHMEM_SO IVSHMEM_SERVER [PYTEST-ARGS...]

pytest's exit 5 (nothing collected) is a failure here. Uses Debian's python3 when the
interpreter running this script has no pytest (a pyenv python3 first in PATH).
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def python_with_pytest():
    for exe in (sys.executable, "/usr/bin/python3"):
        if subprocess.run([exe, "-c", "import pytest"], capture_output=True).returncode == 0:
            return exe
    sys.exit("run_pytest.py: no python3 with pytest; fix: apt-get install python3-pytest")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    env = {**os.environ, "IVSHMEM_LIB": os.path.abspath(sys.argv[1]),
           "IVSHMEM_SERVER": os.path.abspath(sys.argv[2]), "PYTHONDONTWRITEBYTECODE": "1"}
    rc = subprocess.run([python_with_pytest(), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                         HERE, *sys.argv[3:]], env=env).returncode
    if rc == 5:
        print("run_pytest.py: pytest collected no tests: failing", file=sys.stderr)
        return 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
