# SPDX-License-Identifier: MIT
"""Shared fixtures: the package under test, /dev/shm files that are always removed, a real
ivshmem-server. Environment: IVSHMEM_LIB (the library), IVSHMEM_SERVER (the server binary)."""
import os
import socket
import subprocess
import sys
import time
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # python/, unless an installed ivshmem is wanted
if os.environ.get("IVSHMEM_PY_INSTALLED"):
    sys.path.pop(0)
TOP = os.path.dirname(os.path.dirname(HERE))


@pytest.fixture
def shm_path():
    """A fresh /dev/shm path, removed after the test whatever happened."""
    path = f"/dev/shm/ivshmem-py-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    yield path
    if os.path.exists(path):
        os.unlink(path)


def server_binary():
    path = os.environ.get("IVSHMEM_SERVER") or os.path.join(TOP, "build", "server", "ivshmem-server")
    if not os.access(path, os.X_OK):
        pytest.fail(f"no ivshmem-server at {path}; set IVSHMEM_SERVER")
    return path


def wait_socket(path, proc, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(path)
                return True
        except OSError:
            time.sleep(0.02)
    return False


@pytest.fixture
def server(tmp_path):
    """A running ivshmem-server (-F, memfd, 1 MiB, 2 vectors); yields its socket path."""
    sock = str(tmp_path / "sock")
    log = open(tmp_path / "server.log", "w+")
    proc = subprocess.Popen([server_binary(), "-F", "-S", sock, "--memfd", "-l", "1M", "-n", "2"],
                            stdout=subprocess.DEVNULL, stderr=log)
    try:
        if not wait_socket(sock, proc):
            log.seek(0)
            pytest.fail(f"ivshmem-server did not start: {log.read()}")
        yield sock
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
