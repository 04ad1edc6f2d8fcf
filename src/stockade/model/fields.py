"""The field catalogue: every field a rule may name, its type, its argument, and how to read it.

Events are plain dicts. A syscall-source event is a flat object keyed by Falco field names
(``{"evt.type": "openat", "fd.name": "/etc/shadow", ...}``); keys may carry an argument
(``"proc.aname[2]"``). A field the event does not carry may be *derived* from others
(``fd.directory`` from ``fd.name``); derivation happens lazily, when a rule or an output needs it,
so the hot path never pays for fields nobody reads.

Other sources' fields (:mod:`stockade.model.k8s_audit_fields`) are registered here too, each with
an extractor that reads the source's native event shape; what a field is and the registry itself are
in :mod:`stockade.model.fieldspec`, which every field module builds on.

An extractor takes the event dict and returns the value, or ``None`` when the field is missing.
A missing field makes every comparison on it false (Falco semantics).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from typing import Any

from stockade.model.event import SYSCALL
from stockade.model.evtnames import NO_RESULT_TYPES
from stockade.model.fieldspec import (
    ArgKind,
    Extractor,
    FieldSpec,
    FieldType,
    register,
    registered,
    registered_fields,
)
from stockade.model.images import split_image
from stockade.model.k8s_audit_fields import register_k8s_audit_fields
from stockade.model.syscall_fields import SYSCALL_FIELD_DESCRIPTIONS, SYSCALL_FIELD_TYPES
from stockade.model.timeutil import event_time_ns

__all__ = [
    "FIELD_ALIASES",
    "ArgKind",
    "Extractor",
    "FieldSpec",
    "FieldType",
    "all_fields",
    "derivation",
    "lookup",
    "register",
    "syscall_value",
]


def lookup(name: str) -> FieldSpec | None:
    """The spec of a field, or None. Dynamic families (evt.arg.X) resolve to their family."""
    spec = registered(name)
    if spec is not None:
        return spec
    for prefix in ("evt.arg.", "evt.rawarg.", "evtin.span.arg."):
        if name.startswith(prefix) and len(name) > len(prefix):
            fam = registered(prefix.rstrip("."))
            if fam is not None:
                return FieldSpec(name, fam.type, fam.source, ArgKind.NONE, description=fam.description)
    return None


def all_fields() -> list[FieldSpec]:
    """Every field of every source, by name."""
    return sorted(registered_fields(), key=lambda s: s.name)


# ---------------------------------------------------------------------------------------------
# Syscall-source derivations. Each takes the event and returns the value or None.
# ---------------------------------------------------------------------------------------------

OPEN_TYPES = frozenset({"open", "openat", "openat2", "open_by_handle_at", "creat"})

FD_TYPECHARS = {
    "file": "f",
    "directory": "d",
    "ipv4": "4",
    "ipv6": "6",
    "unix": "u",
    "pipe": "p",
    "event": "e",
    "signalfd": "s",
    "eventpoll": "l",
    "inotify": "i",
    "timerfd": "t",
    "netlink": "n",
    "bpf": "b",
    "userfaultfd": "u",
    "io_uring": "r",
    "memfd": "m",
    "pidfd": "P",
}
FD_TYPES_BY_CHAR = {v: k for k, v in reversed(FD_TYPECHARS.items())}


def _first_token(s: Any) -> str | None:
    if not isinstance(s, str) or not s:
        return None
    return s.split(" ", 1)[0]


def _proc_exe(e: dict[str, Any]) -> Any:
    p = e.get("proc.exepath")
    if p is not None:
        return p
    return _first_token(e.get("proc.cmdline"))


def _proc_name(e: dict[str, Any]) -> Any:
    for k in ("proc.exepath", "proc.exe"):
        v = e.get(k)
        if isinstance(v, str) and v:
            return posixpath.basename(v)
    tok = _first_token(e.get("proc.cmdline"))
    return posixpath.basename(tok) if tok else None


def _proc_args(e: dict[str, Any]) -> Any:
    c = e.get("proc.cmdline")
    if not isinstance(c, str):
        return None
    parts = c.split(" ", 1)
    return parts[1] if len(parts) > 1 else ""


def _proc_cmdline(e: dict[str, Any]) -> Any:
    args = e.get("proc.args")
    if args is None:
        return None  # unknown arguments: the name alone would say "run without any"
    name = e.get("proc.name") or _proc_name(e)
    if name is None:
        return None
    return f"{name} {args}" if args else name


def _ancestors(e: dict[str, Any], what: str) -> list[Any] | None:
    """Ancestor values of kind `what` (name, exepath, pid, exe, cmdline), parent first."""
    lst = e.get(f"proc.a{what}")
    if isinstance(lst, list):
        return lst
    parent_key = {
        "name": "proc.pname",
        "exepath": "proc.pexepath",
        "pid": "proc.ppid",
        "exe": "proc.pexe",
        "cmdline": "proc.pcmdline",
    }[what]
    out: list[Any] = []
    v = e.get(parent_key)
    if v is None:
        v = e.get(f"proc.a{what}[1]")
    if v is None:
        return None
    out.append(v)
    i = 2
    while True:
        v = e.get(f"proc.a{what}[{i}]")
        if v is None:
            break
        out.append(v)
        i += 1
    return out


def _ancestor_extractor(what: str, self_key: str) -> Callable[[str | None], Extractor]:
    def make(arg: str | None) -> Extractor:
        if arg is None:
            return lambda e: _ancestors(e, what)
        n = int(arg)
        key = f"proc.a{what}[{n}]"
        if n == 0:
            return lambda e: e.get(key, _syscall_get(e, self_key))

        def get(e: dict[str, Any]) -> Any:
            v = e.get(key)
            if v is not None:
                return v
            lst = _ancestors(e, what)
            if lst is not None and len(lst) >= n:
                return lst[n - 1]
            return None

        return get

    return make


def _parent(what: str) -> Extractor:
    def get(e: dict[str, Any]) -> Any:
        v = e.get(f"proc.a{what}[1]")
        if v is not None:
            return v
        lst = e.get(f"proc.a{what}")
        if isinstance(lst, list) and lst:
            return lst[0]
        if what == "name":
            pe = e.get("proc.pexepath") or e.get("proc.pexe")
            if isinstance(pe, str) and pe:
                return posixpath.basename(pe)
        if what == "exepath":
            pe = e.get("proc.pexe")
            if isinstance(pe, str) and pe.startswith("/"):
                return pe
        return None

    return get


def _fd_directory(e: dict[str, Any]) -> Any:
    """libsinsp (sinsp_filtercheck_fd.cpp TYPE_DIRECTORY): only for a file or a directory; a
    directory's is its own name; a file's is its name up to the last '/' ("/" if that is the first
    character, the name itself if it ends with '/'). Sockets, pipes, ... have none."""
    n = e.get("fd.name")
    if n.__class__ is not str:
        return None
    t = e.get("fd.type")
    if t is None:
        c = e.get("fd.typechar")
        t = FD_TYPES_BY_CHAR.get(c) if isinstance(c, str) else _fd_type(e)
    if t == "directory":
        return n
    if t is None and not n.startswith("/"):
        return None  # not known to be a file
    if t is not None and t != "file":
        return None
    pos = n.rfind("/")
    if pos <= 0:
        return "/"
    return n[:pos] if pos < len(n) - 1 else n


def _fd_filename(e: dict[str, Any]) -> Any:
    n = e.get("fd.name")
    if n.__class__ is str and n.startswith("/"):
        return n[n.rfind("/") + 1 :]
    return None


def _fd_type(e: dict[str, Any]) -> Any:
    c = e.get("fd.typechar")
    if isinstance(c, str):
        return FD_TYPES_BY_CHAR.get(c)
    n = e.get("fd.name")
    if isinstance(n, str):
        if "->" in n:
            return "ipv6" if n.startswith("[") or n.count(":") > 2 else "ipv4"
        if n.startswith("/") and e.get("evt.type") in OPEN_TYPES:
            fl = _flags(e)
            # libsinsp's open parser: O_DIRECTORY makes a directory descriptor
            return "directory" if fl is not None and "O_DIRECTORY" in fl else "file"
    return None


def _fd_typechar(e: dict[str, Any]) -> Any:
    t = e.get("fd.type")
    if t is None:
        t = _fd_type(e)
    return FD_TYPECHARS.get(t) if isinstance(t, str) else None


def _fd_num(e: dict[str, Any]) -> Any:
    """The descriptor a call returned; -1 when it failed (libsinsp: no fd info, INVALID_FD_NUM),
    which Falco's `open_file_failed` macro tests with `fd.num=-1`."""
    if e.get("evt.type") in OPEN_TYPES or e.get("evt.type") in ("socket", "accept", "accept4"):
        r = e.get("evt.rawres")
        if r is None:
            r = _evt_rawres(e)
        if isinstance(r, int):
            return r if r >= 0 else -1
    return None


def _split_tuple(e: dict[str, Any]) -> tuple[str, str, str, str] | None:
    """fd.name of a socket: 'cip:cport->sip:sport' (IPv6 as [addr]:port)."""
    n = e.get("fd.name")
    if not isinstance(n, str) or "->" not in n:
        return None
    try:
        c, s = n.split("->", 1)
        cip, cport = c.rsplit(":", 1)
        sip, sport = s.rsplit(":", 1)
        return cip.strip("[]"), cport, sip.strip("[]"), sport
    except ValueError:
        return None


def _tuple_part(i: int, numeric: bool) -> Extractor:
    def get(e: dict[str, Any]) -> Any:
        t = _split_tuple(e)
        if t is None:
            return None
        v = t[i]
        if numeric:
            try:
                return int(v)
            except ValueError:
                return None
        return v

    return get


_CLIENT_SIDE = frozenset({"connect", "sendto", "sendmsg", "sendmmsg", "write", "writev", "read", "recvfrom"})


def _local_remote(local: bool, port: bool) -> Extractor:
    # Falco: for a connect() the local end is the client; for accept() it is the server.
    def get(e: dict[str, Any]) -> Any:
        ip_or_port = "port" if port else "ip"
        is_server = e.get("fd.is_server")
        if is_server is None:
            is_server = e.get("evt.type") in ("accept", "accept4", "listen", "bind")
        side = "s" if (local == bool(is_server)) else "c"
        key = f"fd.{side}{ip_or_port}"
        v = e.get(key)
        if v is not None:
            return v
        return _tuple_part({"cip": 0, "cport": 1, "sip": 2, "sport": 3}[side + ip_or_port], port)(e)

    return get


def _flags(e: dict[str, Any]) -> set[str] | None:
    f = e.get("evt.arg.flags")
    if isinstance(f, str):
        # "O_RDONLY|O_CLOEXEC" or Falco's "5(O_RDONLY|O_CLOEXEC)"
        if "(" in f:
            f = f[f.index("(") + 1 : f.rindex(")") if ")" in f else None]
        return set(f.split("|"))
    if isinstance(f, list):
        return set(f)
    return None


def _is_open(mode: str) -> Extractor:
    def get(e: dict[str, Any]) -> Any:
        if e.get("evt.type") not in OPEN_TYPES or e.get("evt.dir") == ">":
            return False  # libsinsp: false on every event but an open's exit
        fl = _flags(e)
        if fl is None:
            return None
        if mode == "read":
            return "O_RDONLY" in fl or "O_RDWR" in fl or not (fl & {"O_WRONLY", "O_RDWR"})
        if mode == "write":
            return "O_WRONLY" in fl or "O_RDWR" in fl
        if mode == "create":
            return "O_CREAT" in fl
        return "O_EXEC" in fl or "__O_FMODE_EXEC" in fl or "FMODE_EXEC" in fl

    return get


#: syscalls whose return value is a descriptor, a count or a pid rather than 0 on success
_RETURNS_VALUE = (
    frozenset(
        {
            "dup",
            "dup2",
            "dup3",
            "socket",
            "accept",
            "accept4",
            "read",
            "write",
            "readv",
            "writev",
            "pread",
            "pwrite",
            "preadv",
            "pwritev",
            "recvfrom",
            "sendto",
            "recvmsg",
            "sendmsg",
            "fcntl",
            "memfd_create",
            "eventfd",
            "eventfd2",
            "signalfd",
            "signalfd4",
            "timerfd_create",
            "inotify_init",
            "inotify_init1",
            "epoll_create",
            "epoll_create1",
            "pidfd_open",
            "bpf",
            "clone",
            "clone3",
            "fork",
            "vfork",
            "pipe",
            "pipe2",
            "userfaultfd",
            "io_uring_setup",
            "socketpair",
        }
    )
    | OPEN_TYPES
)


def _evt_rawres(e: dict[str, Any]) -> Any:
    r = e.get("evt.res")
    if isinstance(r, int):
        return r
    t = e.get("evt.type")
    if t in NO_RESULT_TYPES:
        return None  # libsinsp: the event has no return value (procexit, signaldeliver, switch, ...)
    if (r == "SUCCESS" or (r is None and t is not None and e.get("evt.dir", "<") == "<")) and (
        t not in _RETURNS_VALUE or t in OPEN_TYPES
    ):
        # A recorded exit event that gives no result records a call that succeeded. Calls that
        # return a descriptor or a count have no such default (their value is unknown), except the
        # opens, whose success Falco's macros test with fd.num >= 0.
        return 0
    if isinstance(r, str) and r.startswith("E"):
        return -1
    return None


def _evt_res(e: dict[str, Any]) -> Any:
    r = e.get("evt.rawres")
    if r is None and e.get("evt.res") is None:
        r = _evt_rawres(e)
    if isinstance(r, int):
        return "SUCCESS" if r >= 0 else str(r)
    return None


def _evt_failed(e: dict[str, Any]) -> Any:
    """libsinsp: whether the call returned an error; missing on events without a result."""
    r = e.get("evt.rawres")
    if r is None:
        r = _evt_rawres(e)
    return r < 0 if isinstance(r, int) else None


def _container_name(e: dict[str, Any]) -> Any:
    if e.get("container.id") == "host":
        return "host"
    return None


def _container_image(e: dict[str, Any]) -> Any:
    repo = e.get("container.image.repository")
    if isinstance(repo, str):
        tag = e.get("container.image.tag")
        return f"{repo}:{tag}" if tag else repo
    return None


def _container_repo(e: dict[str, Any]) -> Any:
    return (
        split_image(e.get("container.image") or None)[0]
        if isinstance(e.get("container.image"), str)
        else None
    )


def _container_tag(e: dict[str, Any]) -> Any:
    return (
        split_image(e.get("container.image") or None)[1]
        if isinstance(e.get("container.image"), str)
        else None
    )


def _evt_dir(e: dict[str, Any]) -> Any:
    # Recordings hold exit events unless they say otherwise ("<" is what Falco's rules match).
    return "<" if e.get("evt.type") is not None else None


def _both_ends(port: bool) -> Extractor:
    """fd.ip / fd.port / fd.net: either end of the connection (a list: 'any of' semantics)."""
    c, s = (
        (_tuple_part(1, True), _tuple_part(3, True))
        if port
        else (_tuple_part(0, False), _tuple_part(2, False))
    )

    def get(e: dict[str, Any]) -> Any:
        vals = [
            e.get("fd.cport" if port else "fd.cip") or c(e),
            e.get("fd.sport" if port else "fd.sip") or s(e),
        ]
        vals = [v for v in vals if v is not None]
        return vals or None

    return get


def _alias(key: str, fallback: Extractor) -> Extractor:
    def get(e: dict[str, Any]) -> Any:
        v = e.get(key)
        return fallback(e) if v is None else v

    return get


def _keyed_list(key: str, sub: str) -> Callable[[str | None], Extractor]:
    """container.mount.dest[/path] / [N]: `container.mounts` is a list of mount dicts."""

    def make(arg: str | None) -> Extractor:
        flat = f"{key}[{arg}]" if arg is not None else key

        def get(e: dict[str, Any]) -> Any:
            v = e.get(flat)
            if v is not None:
                return v
            mounts = e.get("container.mounts")
            if not isinstance(mounts, list):
                return None
            if arg is None:
                return [m.get(sub) for m in mounts if isinstance(m, dict) and sub in m] or None
            if arg.isdigit():
                i = int(arg)
                m = mounts[i] if i < len(mounts) else None
                return m.get(sub) if isinstance(m, dict) else None
            for m in mounts:
                if isinstance(m, dict) and m.get("dest") == arg:
                    return m.get(sub)
            return None

        return get

    return make


#: where the next variable of a rendered environment starts: a space, then NAME=
_ENV_NEXT = re.compile(r" (?=[A-Za-z_][A-Za-z0-9_]*=)")


def _env_var(arg: str | None) -> Extractor:
    """``proc.env[NAME]``: the value of one variable of ``proc.env`` (the environment as Falco renders
    it, ``NAME=value`` entries joined by a space; a list of entries is read the same)."""
    flat = f"proc.env[{arg}]"
    prefix = f"{arg}="
    inner = f" {prefix}"  # a space before NAME= always starts an entry (_ENV_NEXT)

    def get(e: dict[str, Any]) -> Any:
        v = e.get(flat)
        if v is not None or not arg:
            return v
        env = e.get("proc.env")
        if isinstance(env, str):
            # found in place, not split: every exec event's rules read a few variables
            if env.startswith(prefix):
                start = len(prefix)
            else:
                at = env.find(inner)
                if at < 0:
                    return None
                start = at + len(inner)
            end = _ENV_NEXT.search(env, start)
            return env[start : end.start() if end else len(env)]
        for entry in env if isinstance(env, list) else ():
            if isinstance(entry, str) and entry.startswith(prefix):
                return entry[len(prefix) :]
        return None

    return get


def _labels(prefix: str) -> Callable[[str | None], Extractor]:
    def make(arg: str | None) -> Extractor:
        flat = f"{prefix}.label[{arg}]"
        dict_key = f"{prefix}.labels"

        def get(e: dict[str, Any]) -> Any:
            v = e.get(flat)
            if v is not None:
                return v
            labels = e.get(dict_key)
            if isinstance(labels, dict):
                return labels.get(arg)
            return None

        return get

    return make


def _derived(fn: Extractor, key: str) -> Callable[[str | None], Extractor]:
    """Read `key` from the event; if absent, derive it with `fn`."""

    def make(_arg: str | None) -> Extractor:
        def get(e: dict[str, Any]) -> Any:
            v = e.get(key)
            return fn(e) if v is None else v

        get.__name__ = f"get_{key}"
        return get

    return make


_DERIVATIONS: dict[str, Extractor] = {
    "proc.exe": _proc_exe,
    "proc.name": _proc_name,
    "proc.args": _proc_args,
    "proc.cmdline": _proc_cmdline,
    "proc.pname": _parent("name"),
    "proc.pexepath": _parent("exepath"),
    "proc.pexe": _parent("exe"),
    "proc.pcmdline": _parent("cmdline"),
    "proc.ppid": _parent("pid"),
    "fd.directory": _fd_directory,
    "fd.filename": _fd_filename,
    "fd.nameraw": lambda e: e.get("fd.name"),
    "fd.type": _fd_type,
    "fd.typechar": _fd_typechar,
    "fd.num": _fd_num,
    "fd.cip": _tuple_part(0, False),
    "fd.cport": _tuple_part(1, True),
    "fd.sip": _tuple_part(2, False),
    "fd.sport": _tuple_part(3, True),
    "fd.lip": _local_remote(True, False),
    "fd.rip": _local_remote(False, False),
    "fd.lport": _local_remote(True, True),
    "fd.rport": _local_remote(False, True),
    "evt.is_open_read": _is_open("read"),
    "evt.is_open_write": _is_open("write"),
    "evt.is_open_exec": _is_open("exec"),
    "evt.is_open_create": _is_open("create"),
    "evt.rawres": _evt_rawres,
    "evt.res": _evt_res,
    "evt.failed": _evt_failed,
    "evt.rawtime": event_time_ns,
    "evt.dir": _evt_dir,
    "fd.ip": _both_ends(False),
    "fd.port": _both_ends(True),
    "fd.net": _both_ends(False),
    "fd.cnet": _alias("fd.cip", _tuple_part(0, False)),
    "fd.snet": _alias("fd.sip", _tuple_part(2, False)),
    "fd.lnet": _alias("fd.lip", _local_remote(True, False)),
    "fd.rnet": _alias("fd.rip", _local_remote(False, False)),
    "evt.time": event_time_ns,
    "container.name": _container_name,
    "container.image": _container_image,
    "container.image.repository": _container_repo,
    "container.image.tag": _container_tag,
    "user.loginname": lambda e: e.get("user.name") if e.get("user.loginuid") == e.get("user.uid") else None,
}


#: fields whose value, when the event lacks them, is another field's value
FIELD_ALIASES = {"fd.nameraw": "fd.name"}


def derivation(name: str) -> Extractor | None:
    """How a syscall field missing from an event is derived from others (None: it is not)."""
    return _DERIVATIONS.get(name)


def _syscall_get(e: dict[str, Any], name: str) -> Any:
    v = e.get(name)
    if v is None:
        d = _DERIVATIONS.get(name)
        if d is not None:
            return d(e)
    return v


_ARG_FIELDS: dict[str, tuple[ArgKind, bool, Callable[[str | None], Extractor] | None, bool]] = {
    # name: (arg kind, arg required, extractor factory, list-valued without arg)
    "proc.aname": (ArgKind.INDEX, False, _ancestor_extractor("name", "proc.name"), True),
    "proc.apid": (ArgKind.INDEX, False, _ancestor_extractor("pid", "proc.pid"), True),
    "proc.aexe": (ArgKind.INDEX, False, _ancestor_extractor("exe", "proc.exe"), True),
    "proc.aexepath": (ArgKind.INDEX, False, _ancestor_extractor("exepath", "proc.exepath"), True),
    "proc.acmdline": (ArgKind.INDEX, False, _ancestor_extractor("cmdline", "proc.cmdline"), True),
    "fd.types": (ArgKind.INDEX, False, None, True),
    "evt.arg": (ArgKind.INDEX_OR_KEY, True, None, False),
    "evt.rawarg": (ArgKind.INDEX_OR_KEY, True, None, False),
    "evt.type.is": (ArgKind.KEY, False, None, False),
    "proc.env": (ArgKind.KEY, False, _env_var, False),
    "thread.cgroup": (ArgKind.KEY, True, None, False),
    "container.mount": (ArgKind.INDEX_OR_KEY, True, _keyed_list("container.mount", "spec"), False),
    "container.mount.source": (
        ArgKind.INDEX_OR_KEY,
        True,
        _keyed_list("container.mount.source", "source"),
        False,
    ),
    "container.mount.dest": (ArgKind.INDEX_OR_KEY, True, _keyed_list("container.mount.dest", "dest"), False),
    "container.mount.mode": (ArgKind.INDEX_OR_KEY, True, _keyed_list("container.mount.mode", "mode"), False),
    "container.mount.rdwr": (ArgKind.INDEX_OR_KEY, True, _keyed_list("container.mount.rdwr", "rdwr"), False),
    "container.mount.propagation": (
        ArgKind.INDEX_OR_KEY,
        True,
        _keyed_list("container.mount.propagation", "propagation"),
        False,
    ),
    "container.label": (ArgKind.KEY, True, _labels("container"), False),
}
for _kind in ("pod", "rc", "svc", "ns", "rs", "deployment"):
    _ARG_FIELDS[f"k8s.{_kind}.label"] = (ArgKind.KEY, True, _labels(f"k8s.{_kind}"), False)


def _register_syscall_fields() -> None:
    for name, tname in SYSCALL_FIELD_TYPES.items():
        ftype = FieldType(tname)
        if name in _ARG_FIELDS:
            kind, required, factory, is_list = _ARG_FIELDS[name]
            register(FieldSpec(name, ftype, SYSCALL, kind, required, is_list, make_extractor=factory))
            continue
        deriv = _DERIVATIONS.get(name)
        factory = _derived(deriv, name) if deriv is not None else None
        desc = SYSCALL_FIELD_DESCRIPTIONS.get(name, "")
        register(FieldSpec(name, ftype, SYSCALL, description=desc, make_extractor=factory))


_register_syscall_fields()
register_k8s_audit_fields()


def syscall_value(event: dict[str, Any], name: str, arg: str | None = None) -> Any:
    """Reference extraction of a syscall field (used by outputs and the reference interpreter)."""
    spec = lookup(name)
    if spec is None:
        return event.get(name if arg is None else f"{name}[{arg}]")
    return spec.extractor(arg)(event)
