"""ctypes bindings to the few libbpf.so.1 calls the eBPF sensor needs (open, load, attach, maps),
and those the network enforcer adds (cgroup attach, pinned maps and links, map iteration).

libbpf (>= 1.0) returns NULL or a negative errno and sets ``errno``: every failure here raises
:class:`BpfError` with the call, the errno name and the last lines libbpf logged (the verifier's
log when a program is refused).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import threading
from collections import deque
from typing import Any

from stockade.sensor.interface import SensorError

__all__ = ["BpfError", "BpfLink", "BpfObject", "libbpf"]


class BpfError(SensorError):
    """A libbpf call that failed, with its errno and the last lines libbpf logged."""

    title = "eBPF error"

    def __init__(self, msg: str, err: int = 0) -> None:
        super().__init__(msg)
        self.errno = err


_lib: ctypes.CDLL | None = None
_lib_lock = threading.Lock()
#: libbpf's last log lines (verifier output included), for error messages
_log: deque[str] = deque(maxlen=200)
_PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_print_cb: Any = None
#: one buffer for libbpf's messages (a verifier log comes as one message)
_print_buf = ctypes.create_string_buffer(1 << 20)


def _on_print(_level: int, fmt: bytes | None, va: int | None) -> int:
    try:
        buf = _print_buf
        _libc.vsnprintf(buf, len(buf), fmt, va)
        for line in buf.value.decode("utf-8", "replace").splitlines():
            if line.strip():
                _log.append(line)
    except Exception:
        pass
    return 0


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
_libc.vsnprintf.restype = ctypes.c_int


def libbpf() -> ctypes.CDLL:
    """libbpf.so.1, loaded once, with prototypes set and its log captured."""
    global _lib, _print_cb
    with _lib_lock:
        if _lib is not None:
            return _lib
        name = ctypes.util.find_library("bpf") or "libbpf.so.1"
        try:
            lib = ctypes.CDLL(name, use_errno=True)
        except OSError as e:
            raise BpfError(f"libbpf not found ({name}): {e}; apt-get install libbpf1") from e
        vp, cp, ci = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
        protos: dict[str, tuple[Any, list[Any]]] = {
            "bpf_object__open_file": (vp, [cp, vp]),
            "bpf_object__load": (ci, [vp]),
            "bpf_object__close": (None, [vp]),
            "bpf_object__find_map_by_name": (vp, [vp, cp]),
            "bpf_object__find_program_by_name": (vp, [vp, cp]),
            "bpf_object__next_program": (vp, [vp, vp]),
            "bpf_program__name": (cp, [vp]),
            "bpf_program__set_autoload": (ci, [vp, ctypes.c_bool]),
            "bpf_program__attach": (vp, [vp]),
            "bpf_link__destroy": (ci, [vp]),
            "bpf_map__fd": (ci, [vp]),
            "bpf_map__set_max_entries": (ci, [vp, ctypes.c_uint32]),
            "bpf_map__max_entries": (ctypes.c_uint32, [vp]),
            "bpf_map__value_size": (ctypes.c_uint32, [vp]),
            "bpf_map_update_elem": (ci, [ci, vp, vp, ctypes.c_uint64]),
            "bpf_map_lookup_elem": (ci, [ci, vp, vp]),
            "bpf_map_delete_elem": (ci, [ci, vp]),
            "libbpf_num_possible_cpus": (ci, []),
            "bpf_map_create": (ci, [ci, cp, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32, vp]),
            "bpf_map_get_next_key": (ci, [ci, vp, vp]),
            "bpf_map__set_pin_path": (ci, [vp, cp]),
            "bpf_program__attach_cgroup": (vp, [vp, ci]),
            "bpf_link__pin": (ci, [vp, cp]),
            "bpf_link__open": (vp, [cp]),
            "bpf_link__fd": (ci, [vp]),
            "bpf_link__detach": (ci, [vp]),
            "bpf_link__update_program": (ci, [vp, vp]),
            "btf__load_vmlinux_btf": (vp, []),
            "btf__find_by_name_kind": (ci, [vp, cp, ctypes.c_uint32]),
            "btf__free": (None, [vp]),
            "libbpf_set_print": (vp, [_PRINT_FN]),
        }
        for fn, (res, args) in protos.items():
            f = getattr(lib, fn)
            f.restype = res
            f.argtypes = args
        _print_cb = _PRINT_FN(_on_print)
        lib.libbpf_set_print(_print_cb)
        _lib = lib
        return lib


def _err(call: str, rc: int | None = None) -> BpfError:
    e = -rc if rc is not None and rc < 0 else ctypes.get_errno()
    name = errno.errorcode.get(e, str(e))
    detail = "; ".join(
        line for line in list(_log)[-12:] if not line.startswith(("mark_precise", "libbpf: prog"))
    )
    msg = f"{call}: {name} ({os.strerror(e) if e else 'failed'})"
    if detail:
        msg += f": {detail}"
    return BpfError(msg, e)


def last_log(n: int = 40) -> list[str]:
    return list(_log)[-n:]


class BpfLink:
    """An attached program; `destroy()` detaches it (unless it is pinned: then it only lets go)."""

    def __init__(self, ptr: int, name: str) -> None:
        self._ptr: int | None = ptr
        self.name = name

    @classmethod
    def open_pinned(cls, path: str, name: str) -> BpfLink:
        """The link pinned at `path` (bpffs), opened again (after a restart)."""
        ctypes.set_errno(0)
        ptr = libbpf().bpf_link__open(path.encode())
        if not ptr:
            raise _err(f"bpf_link__open({path})")
        return cls(ptr, name)

    def pin(self, path: str) -> None:
        """Pin the link at `path` (bpffs): it stays attached when this process closes it or dies."""
        rc = libbpf().bpf_link__pin(self._live(), path.encode())
        if rc < 0:
            raise _err(f"bpf_link__pin({path})", rc)

    def detach(self) -> None:
        """Detach the program now, pinned or not (the link's fd stays valid until `destroy()`)."""
        rc = libbpf().bpf_link__detach(self._live())
        if rc < 0:
            raise _err(f"bpf_link__detach({self.name})", rc)

    def update_program(self, obj: BpfObject, prog: str) -> None:
        """Replace the link's program by `prog` of `obj`, atomically (no moment without one)."""
        rc = libbpf().bpf_link__update_program(self._live(), obj.program_ptr(prog))
        if rc < 0:
            raise _err(f"bpf_link__update_program({prog})", rc)

    def _live(self) -> int:
        if self._ptr is None:
            raise BpfError(f"link {self.name} destroyed")
        return self._ptr

    def destroy(self) -> None:
        """Detach the program (safe twice); a pinned link stays attached through its pin."""
        if self._ptr is not None:
            libbpf().bpf_link__destroy(self._ptr)
            self._ptr = None


class BpfObject:
    """An opened BPF object file: set map sizes and autoload, `load()`, then attach and use maps."""

    def __init__(self, path: str) -> None:
        lib = libbpf()
        _log.clear()
        ctypes.set_errno(0)
        ptr = lib.bpf_object__open_file(path.encode(), None)
        if not ptr:
            raise _err(f"bpf_object__open_file({path})")
        self._ptr: int | None = ptr
        self.path = path
        self.links: list[BpfLink] = []

    @property
    def ptr(self) -> int:
        """The libbpf object pointer; :class:`BpfError` once closed."""
        if self._ptr is None:
            raise BpfError("BPF object closed")
        return self._ptr

    def programs(self) -> list[str]:
        """The names of the object's programs."""
        lib = libbpf()
        out: list[str] = []
        p = lib.bpf_object__next_program(self.ptr, None)
        while p:
            out.append(lib.bpf_program__name(p).decode())
            p = lib.bpf_object__next_program(self.ptr, p)
        return out

    def program_ptr(self, name: str) -> int:
        """The libbpf program pointer of program `name` (loaded with the object)."""
        return self._prog(name)

    def _prog(self, name: str) -> int:
        p = libbpf().bpf_object__find_program_by_name(self.ptr, name.encode())
        if not p:
            raise BpfError(f"no program {name!r} in {self.path}")
        return int(p)

    def _map(self, name: str) -> int:
        m = libbpf().bpf_object__find_map_by_name(self.ptr, name.encode())
        if not m:
            raise BpfError(f"no map {name!r} in {self.path}")
        return int(m)

    def set_autoload(self, prog: str, on: bool) -> None:
        """Whether `load()` loads program `prog`."""
        rc = libbpf().bpf_program__set_autoload(self._prog(prog), on)
        if rc < 0:
            raise _err(f"bpf_program__set_autoload({prog})", rc)

    def set_max_entries(self, map_name: str, n: int) -> None:
        """Size map `map_name` (before `load()`)."""
        rc = libbpf().bpf_map__set_max_entries(self._map(map_name), n)
        if rc < 0:
            raise _err(f"bpf_map__set_max_entries({map_name})", rc)

    def set_pin_path(self, map_name: str, path: str) -> None:
        """Pin map `map_name` at `path` (bpffs) when loading; a map already pinned there (by an
        earlier run) is reused instead of created, if its definition matches (before `load()`)."""
        rc = libbpf().bpf_map__set_pin_path(self._map(map_name), path.encode())
        if rc < 0:
            raise _err(f"bpf_map__set_pin_path({map_name})", rc)

    def load(self) -> None:
        """Load the object into the kernel (the verifier runs here)."""
        _log.clear()
        rc = libbpf().bpf_object__load(self.ptr)
        if rc < 0:
            raise _err("bpf_object__load", rc)

    def attach(self, prog: str) -> BpfLink:
        """Attach program `prog` to its tracepoint."""
        ctypes.set_errno(0)
        link = libbpf().bpf_program__attach(self._prog(prog))
        if not link:
            raise _err(f"attach {prog}")
        bl = BpfLink(link, prog)
        self.links.append(bl)
        return bl

    def attach_cgroup(self, prog: str, cgroup_fd: int) -> BpfLink:
        """Attach cgroup program `prog` to the cgroup2 directory open as `cgroup_fd` (a bpf_link:
        multi-attach, beside any other program there). The caller owns the returned link."""
        ctypes.set_errno(0)
        link = libbpf().bpf_program__attach_cgroup(self._prog(prog), cgroup_fd)
        if not link:
            raise _err(f"attach {prog} to a cgroup")
        return BpfLink(link, prog)

    def map_fd(self, name: str) -> int:
        """The file descriptor of map `name`."""
        fd = libbpf().bpf_map__fd(self._map(name))
        if fd < 0:
            raise _err(f"bpf_map__fd({name})", fd)
        return int(fd)

    def map_max_entries(self, name: str) -> int:
        """The size of map `name`."""
        return int(libbpf().bpf_map__max_entries(self._map(name)))

    def close(self) -> None:
        """Detach every program and unload the object (safe twice)."""
        for link in self.links:
            link.destroy()
        self.links.clear()
        if self._ptr is not None:
            libbpf().bpf_object__close(self._ptr)
            self._ptr = None


def map_update(fd: int, key: bytes, value: bytes, flags: int = 0) -> None:
    k = ctypes.create_string_buffer(key, len(key))
    v = ctypes.create_string_buffer(value, len(value))
    rc = libbpf().bpf_map_update_elem(fd, k, v, flags)
    if rc < 0:
        raise _err("bpf_map_update_elem", rc)


def map_delete(fd: int, key: bytes) -> None:
    k = ctypes.create_string_buffer(key, len(key))
    libbpf().bpf_map_delete_elem(fd, k)


def map_lookup(fd: int, key: bytes, value_size: int) -> bytes | None:
    k = ctypes.create_string_buffer(key, len(key))
    v = ctypes.create_string_buffer(value_size)
    rc = libbpf().bpf_map_lookup_elem(fd, k, v)
    if rc < 0:
        return None
    return v.raw


def map_keys(fd: int, key_size: int, limit: int | None = None) -> list[bytes]:
    """Every key of the map open as `fd` (a snapshot: keys added meanwhile may be missed), at most
    `limit` steps (a map changing meanwhile, an LRU map evicting, may make the walk start over and
    repeat keys)."""
    lib = libbpf()
    out: list[bytes] = []
    nxt = ctypes.create_string_buffer(key_size)
    rc = lib.bpf_map_get_next_key(fd, None, nxt)
    while rc == 0 and (limit is None or len(out) < limit):
        out.append(nxt.raw)
        cur = ctypes.create_string_buffer(nxt.raw, key_size)
        rc = lib.bpf_map_get_next_key(fd, cur, nxt)
    return out


def can_create_maps() -> str:
    """ "" when the bpf() syscall works here, else why not (EPERM, ENOSYS, ...)."""
    fd = libbpf().bpf_map_create(2, b"stockade_probe", 4, 4, 1, None)  # BPF_MAP_TYPE_ARRAY
    if fd < 0:
        e = -fd
        return f"bpf() refused: {errno.errorcode.get(e, str(e))} ({os.strerror(e)})"
    os.close(fd)
    return ""


def possible_cpus() -> int:
    n = libbpf().libbpf_num_possible_cpus()
    if n <= 0:
        raise _err("libbpf_num_possible_cpus", n)
    return int(n)
