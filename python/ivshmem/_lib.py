# SPDX-License-Identifier: MIT
"""Loading libivshmem and declaring the C calls the binding uses (include/ivshmem/*.h)."""
import ctypes
import ctypes.util
import os

c_int, c_uint, c_uint16, c_uint32, c_uint64 = (ctypes.c_int, ctypes.c_uint, ctypes.c_uint16,
                                               ctypes.c_uint32, ctypes.c_uint64)
c_size_t, c_ssize_t, c_char_p, c_void_p = ctypes.c_size_t, ctypes.c_ssize_t, ctypes.c_char_p, ctypes.c_void_p


class OpenOpts(ctypes.Structure):
    """struct ivshmem_open_opts (region.h)."""
    _fields_ = [("backend", c_int), ("flags", c_uint), ("size", c_uint64), ("mode", c_uint),
                ("owner", c_uint32), ("group", c_uint32)]


class ChannelOpts(ctypes.Structure):
    """struct ivshmem_channel_opts (channel.h): zero is the default of every field."""
    _fields_ = [("flags", c_uint), ("ring_size", c_uint64), ("vector", c_uint), ("spin_us", c_int),
                ("heartbeat_ms", c_int), ("dead_ms", c_int), ("open_timeout_ms", c_int),
                ("cancel_fd", c_int)]


class SectionC(ctypes.Structure):
    """struct ivshmem_section (layout.h)."""
    _fields_ = [("name", ctypes.c_char * 32), ("type", c_uint32), ("flags", c_uint32),
                ("offset", c_uint64), ("size", c_uint64), ("slot", c_uint)]


class PeerEventC(ctypes.Structure):
    """struct ivshmem_peer_event (region.h)."""
    _fields_ = [("type", c_int), ("peer", c_uint16), ("vectors", c_uint)]


class ChannelStatsC(ctypes.Structure):
    """struct ivshmem_channel_stats (channel.h)."""
    _fields_ = [("sent", c_uint64), ("received", c_uint64), ("doorbells", c_uint64),
                ("sleeps", c_uint64), ("doorbell_wakeups", c_uint64), ("doorbell_mode", c_int)]


P = c_void_p  # opaque struct ivshmem_region * / struct ivshmem_channel *

# name: (restype, argtypes)
_PROTOTYPES = {
    "ivshmem_open": (c_int, [ctypes.POINTER(P), c_char_p, ctypes.POINTER(OpenOpts)]),
    "ivshmem_close": (None, [P]),
    "ivshmem_errmsg": (c_char_p, []),
    "ivshmem_base": (c_void_p, [P]),
    "ivshmem_size": (c_uint64, [P]),
    "ivshmem_backend_of": (c_int, [P]),
    "ivshmem_backend_name": (c_char_p, [c_int]),
    "ivshmem_backend_parse": (c_int, [c_char_p, ctypes.POINTER(c_int)]),
    "ivshmem_is_device_memory": (ctypes.c_bool, [P]),
    "ivshmem_own_id": (c_int, [P]),
    "ivshmem_vectors": (c_uint, [P]),
    "ivshmem_notify": (c_int, [P, c_uint16, c_uint16]),
    "ivshmem_event_fd": (c_int, [P, c_uint]),
    "ivshmem_wait": (c_int, [P, c_int, c_int, ctypes.POINTER(c_uint64)]),
    "ivshmem_read": (c_int, [P, c_uint64, c_void_p, c_size_t]),
    "ivshmem_write": (c_int, [P, c_uint64, c_void_p, c_size_t]),
    "ivshmem_check_mapping": (c_int, [P]),
    "ivshmem_peer_list": (c_int, [P, ctypes.POINTER(c_uint16), c_size_t]),
    "ivshmem_peer_vectors": (c_int, [P, c_uint16]),
    "ivshmem_control_fd": (c_int, [P]),
    "ivshmem_next_peer_event": (c_int, [P, ctypes.POINTER(PeerEventC)]),
    "ivshmem_layout_name": (c_int, [P, ctypes.c_char_p, c_size_t]),
    "ivshmem_layout_format": (c_int, [P, c_char_p]),
    "ivshmem_layout_list": (c_int, [P, ctypes.POINTER(SectionC), c_size_t]),
    "ivshmem_layout_find": (c_int, [P, c_char_p, ctypes.POINTER(SectionC)]),
    "ivshmem_layout_add": (c_int, [P, c_char_p, c_uint32, c_uint64, ctypes.POINTER(SectionC)]),
    "ivshmem_channel_open": (c_int, [ctypes.POINTER(P), P, c_char_p, ctypes.POINTER(ChannelOpts)]),
    "ivshmem_channel_close": (c_int, [P, c_int]),
    "ivshmem_channel_flush": (c_int, [P, c_int]),
    "ivshmem_channel_outq": (c_int, [P, ctypes.POINTER(c_uint64), ctypes.POINTER(c_uint64)]),
    "ivshmem_channel_send": (c_int, [P, c_void_p, c_size_t, c_int]),
    "ivshmem_channel_recv": (c_ssize_t, [P, c_void_p, c_size_t, c_int]),
    "ivshmem_channel_fd": (c_int, [P]),
    "ivshmem_channel_state": (c_int, [P]),
    "ivshmem_channel_state_name": (c_char_p, [c_int]),
    "ivshmem_channel_max_msg": (c_size_t, [P]),
    "ivshmem_channel_stats": (None, [P, ctypes.POINTER(ChannelStatsC)]),
}


def _candidates():
    """Where to look, in order: $IVSHMEM_LIB, the source tree's build dir, the system."""
    env = os.environ.get("IVSHMEM_LIB")
    if env:
        return [env]  # explicit: no fallback that could hide a wrong path
    here = os.path.dirname(os.path.abspath(__file__))
    tree = os.path.normpath(os.path.join(here, "..", "..", "build", "lib", "libivshmem.so.0"))
    found = ctypes.util.find_library("ivshmem")
    return [p for p in (tree, found, "libivshmem.so.0") if p and (p == found or os.path.sep not in p
                                                                  or os.path.exists(p))]


def load():
    """Load libivshmem and declare its prototypes; OSError naming every place tried."""
    tried = []
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path, use_errno=True)
        except OSError as e:
            tried.append(f"{path}: {e}")
            continue
        for name, (res, args) in _PROTOTYPES.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args
        return lib
    raise OSError("ivshmem: cannot load libivshmem (set IVSHMEM_LIB to its path, or install "
                  "libivshmem0); tried: " + "; ".join(tried))


lib = load()
