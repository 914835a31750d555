# SPDX-License-Identifier: MIT
"""Regions on the file backend: open options, zero-copy views, copies, layout, errors."""
import errno
import os
import stat

import pytest

import ivshmem


def test_open_create_describes_the_region(shm_path):
    with ivshmem.open(shm_path, create=True, size=1 << 20, mode=0o640) as r:
        assert r.size == 1 << 20
        assert r.backend == "file"
        assert r.own_id is None and r.vectors == 0
        assert not r.is_device_memory
    assert stat.S_IMODE(os.stat(shm_path).st_mode) == 0o640
    with ivshmem.open("file:" + shm_path, backend="file") as r:
        assert r.size == 1 << 20


def test_view_is_the_mapping_without_copies(shm_path):
    with ivshmem.Region(shm_path, create=True, size=64 << 10) as a, ivshmem.open(shm_path) as b:
        va = a.view()
        va[100:105] = b"hello"
        assert b.read(100, 5) == b"hello"          # the other mapping sees it: shared, not copied
        b.write(200, b"world")
        assert bytes(va[200:205]) == b"world"
        assert len(va) == a.size and va.format == "B" and not va.readonly
        with open(shm_path, "rb") as f:
            f.seek(100)
            assert f.read(5) == b"hello"
        va.release()


def test_close_refuses_while_a_view_exists(shm_path):
    r = ivshmem.open(shm_path, create=True, size=4096)
    v = r.view()
    with pytest.raises(BufferError):
        r.close()
    v.release()
    r.close()
    assert r.closed
    with pytest.raises(ValueError):
        r.size


def test_read_write_bounds_carry_the_library_sentence(shm_path):
    with ivshmem.open(shm_path, create=True, size=4096) as r:
        with pytest.raises(ivshmem.IvshmemError) as e:
            r.read(4090, 100)
        assert e.value.errno == errno.ERANGE and e.value.strerror


def test_open_errors_are_oserrors_with_errno_and_message():
    with pytest.raises(FileNotFoundError) as e:
        ivshmem.open("/nonexistent-dir/region")
    assert isinstance(e.value, ivshmem.IvshmemError) and isinstance(e.value, OSError)
    assert e.value.errno == errno.ENOENT
    assert "/nonexistent-dir/region" in str(e.value)
    with pytest.raises(ivshmem.IvshmemError) as e:
        ivshmem.open("file:/dev/null/x", backend="nonsense")
    assert e.value.errno == errno.EINVAL


def test_layout_format_sections_name(shm_path):
    with ivshmem.open(shm_path, create=True, size=1 << 20) as r:
        assert r.layout_name() is None
        r.format("demo")
        assert r.layout_name() == "demo"
        raw = r.add_section("blob", 5000)
        assert raw.name == "blob" and raw.type == ivshmem.SECTION_RAW and raw.size == 8192
        with pytest.raises(FileExistsError):
            r.add_section("blob", 4096)
        with r.channel("ch", create=True):
            pass
        names = {s.name: s for s in r.sections()}
        assert set(names) == {"blob", "ch"} and names["ch"].type == ivshmem.SECTION_CHANNEL
        assert r.find_section("ch") == names["ch"]
        with pytest.raises(FileNotFoundError):
            r.find_section("nope")


def test_file_backend_has_no_doorbells(shm_path):
    with ivshmem.open(shm_path, create=True, size=4096) as r:
        with pytest.raises(ivshmem.IvshmemError) as e:
            r.notify(1, 0)
        assert e.value.errno in (errno.ENOTSUP, errno.EOPNOTSUPP)
