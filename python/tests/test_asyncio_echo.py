# SPDX-License-Identifier: MIT
"""An asyncio echo between two processes over a /dev/shm file channel (loop.add_reader)."""
import asyncio
import os
import subprocess
import sys
import textwrap

import ivshmem

ECHO = textwrap.dedent("""
    import asyncio, sys
    import ivshmem

    async def main(path):
        with ivshmem.open(path) as r, r.channel("echo", open_timeout=5) as ch:
            while True:
                try:
                    msg = await ch.arecv()
                except BrokenPipeError:
                    return                   # the client closed and we read everything
                await ch.asend(msg[::-1])

    asyncio.run(main(sys.argv[1]))
""")


async def client(ch, n):
    got = []
    for i in range(n):
        msg = f"record {i} ".encode() * (i % 50 + 1)
        await ch.asend(msg)
        got.append((msg, await ch.arecv()))
    return got


def test_asyncio_echo_between_processes(shm_path):
    with ivshmem.open(shm_path, create=True, size=1 << 20) as r:
        r.format("echo")
        ch = r.channel("echo", create=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        proc = subprocess.Popen([sys.executable, "-c", ECHO, shm_path], env=env)
        try:
            got = asyncio.run(asyncio.wait_for(client(ch, 200), 30))
            assert all(back == sent[::-1] for sent, back in got) and len(got) == 200
            assert ch.close(linger=5) is True
            assert proc.wait(10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
