# SPDX-License-Identifier: MIT
"""README.md's Python example, executed as written."""
import contextlib
import io
import os
import re

from conftest import TOP


def readme_example():
    text = open(os.path.join(TOP, "README.md"), encoding="utf-8").read()
    section = text.split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "README.md's Python section has one python code block"
    return blocks[0]


def test_readme_python_example_runs_as_written():
    code = readme_example()
    assert len(code.strip().splitlines()) <= 12
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})
    finally:
        leftover = "/dev/shm/ivshmem-readme-example"
        if os.path.exists(leftover):
            os.unlink(leftover)
            raise AssertionError("the example left its /dev/shm file behind")
    assert out.getvalue() == "b'ping'\nb'hello'\n"
