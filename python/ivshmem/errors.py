# SPDX-License-Identifier: MIT
"""Exceptions carrying libivshmem's error sentence (ivshmem_errmsg()) and the errno."""
import errno as _errno

from ._lib import lib


class IvshmemError(OSError):
    """A libivshmem call failed: .errno is the errno, .strerror the library's sentence."""


# Also an instance of the builtin OSError subclass Python itself would raise.
_BUILTIN = {
    _errno.ETIMEDOUT: TimeoutError,
    _errno.EAGAIN: BlockingIOError,
    _errno.EPIPE: BrokenPipeError,
    _errno.ECONNRESET: ConnectionResetError,
    _errno.ENOENT: FileNotFoundError,
    _errno.EEXIST: FileExistsError,
    _errno.EACCES: PermissionError,
    _errno.EPERM: PermissionError,
    _errno.EINTR: InterruptedError,
}
_CLASSES = {e: type("Ivshmem" + base.__name__, (IvshmemError, base), {"__module__": __name__})
            for e, base in _BUILTIN.items()}


def error(rc, what=None):
    """The exception for negative return code @rc, with the calling thread's ivshmem_errmsg()."""
    code = -rc
    msg = lib.ivshmem_errmsg().decode(errors="replace") or _errno.errorcode.get(code, "error")
    if what:
        msg = f"{what}: {msg}"
    return _CLASSES.get(code, IvshmemError)(code, msg)


def check(rc, what=None):
    """Return @rc when it is >= 0, else raise error(rc)."""
    if rc < 0:
        raise error(rc, what)
    return rc
