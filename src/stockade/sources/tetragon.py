"""Tetragon's JSON export (``tetra getevents -o json``, the export file) as syscall-source events.

One ``GetEventsResponse`` object per line. ``process_exec``, ``process_exit``, ``process_kprobe``,
``process_tracepoint`` and ``process_lsm`` become events keyed by Falco field names (mapping in
docs/events.md); other kinds (``process_loader``, ``process_throttle``, ``rate_limit_info``, ...)
are counted in :attr:`TetragonSource.skipped`, not as malformed.

Ancestry: Tetragon gives the immediate ``parent`` and, with ``--enable-ancestors``, ``ancestors``
(the parent's parent first). When ``ancestors`` is absent, the source walks its own table of the
processes it has seen (by ``exec_id`` / ``parent_exec_id``), as Tetragon's process cache does.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any, BinaryIO, ClassVar

from stockade.model.event import SYSCALL, Event
from stockade.model.images import split_image
from stockade.model.openflags import open_flags_str
from stockade.model.timeutil import parse_time_ns
from stockade.sources.base import InputSource, iter_records
from stockade.sources.detect import foreign
from stockade.sources.interface import PathOrStream

__all__ = [
    "EVENT_KINDS",
    "MAPPED_KINDS",
    "TEST_KIND",
    "UNSUPPORTED_KINDS",
    "TetragonMapper",
    "TetragonSource",
    "split_image",
]

# The one list of Tetragon's event kinds (the keys of a GetEventsResponse), used by detection too.
#: kinds mapped to events
MAPPED_KINDS = ("process_exec", "process_exit", "process_kprobe", "process_tracepoint", "process_lsm")
#: kinds Tetragon emits that carry no syscall-like event here (counted as skipped)
UNSUPPORTED_KINDS = (
    "process_loader",
    "process_uprobe",
    "process_usdt",
    "process_throttle",
    "rate_limit_info",
)
#: every kind that tells a Tetragon export
EVENT_KINDS = MAPPED_KINDS + UNSUPPORTED_KINDS
#: Tetragon's self-test event: skipped too, but too common a key to tell a Tetragon export by
TEST_KIND = "test"
_READ_KINDS = (*EVENT_KINDS, TEST_KIND)
#: a kind as a key, in one JSON document too long to decode within the detection peek
_DOC_KEY = re.compile(rb'"(?:' + b"|".join(k.encode() for k in EVENT_KINDS) + rb')"\s*:')

#: Linux truncates a task's comm (Falco's proc.name) to 15 characters
COMM_LEN = 15
#: deepest ancestry walked through the process table
MAX_ANCESTORS = 20
#: processes remembered for ancestry (oldest forgotten first)
PROCESS_TABLE_SIZE = 65536
#: audit uid meaning "not set"
AUID_UNSET = 4294967295

_SYSCALL_PREFIXES = (
    "__x64_sys_",
    "__ia32_sys_",
    "__arm64_sys_",
    "__se_sys_",
    "__do_sys_",
    "__sys_",
    "ksys_",
    "sys_",
)
_OPEN_SYSCALLS = frozenset({"open", "openat", "openat2", "creat"})

#: kernel function (kprobe / LSM hook) -> Falco event type
_KERNEL_FUNCTIONS = {
    "tcp_connect": "connect",
    "tcp_v4_connect": "connect",
    "tcp_v6_connect": "connect",
    "ip4_datagram_connect": "connect",
    "inet_csk_accept": "accept",
    "tcp_close": "close",
    "tcp_sendmsg": "sendmsg",
    "udp_sendmsg": "sendmsg",
    "tcp_recvmsg": "recvmsg",
    "udp_recvmsg": "recvmsg",
    "security_file_permission": "openat",
    "file_permission": "openat",
    "security_file_open": "openat",
    "file_open": "openat",
    "fd_install": "openat",
    "do_filp_open": "openat",
    "security_mmap_file": "mmap",
    "mmap_file": "mmap",
    "security_path_truncate": "truncate",
    "path_truncate": "truncate",
    "security_path_unlink": "unlinkat",
    "security_inode_unlink": "unlinkat",
    "path_unlink": "unlinkat",
    "security_path_rename": "renameat2",
    "security_path_mkdir": "mkdirat",
    "security_path_chmod": "fchmodat",
    "security_path_chown": "fchownat",
}
_SERVER_SIDE = frozenset({"accept"})

# kernel MAY_* access mask of security_file_permission
MAY_EXEC, MAY_WRITE, MAY_READ, MAY_APPEND = 1, 2, 4, 8
# mmap prot
PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4


def _comm(binary: str) -> str:
    return posixpath.basename(binary)[:COMM_LEN]


def _int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            return None
    return None


def _short_container_id(cid: str) -> tuple[str, str, str | None]:
    """``containerd://<64hex>`` -> (12-char id, full id, runtime or None)."""
    runtime = None
    if "://" in cid:
        runtime, cid = cid.split("://", 1)
    return cid[:12], cid, runtime


class _Proc:
    """What the process table keeps of one exec."""

    __slots__ = ("cmdline", "exepath", "name", "parent_exec_id", "pid")

    def __init__(self, p: dict[str, Any]) -> None:
        binary = p.get("binary")
        self.exepath = binary if isinstance(binary, str) else None
        self.name = _comm(binary) if isinstance(binary, str) and binary else None
        args = p.get("arguments")
        self.cmdline = f"{self.name} {args}" if self.name and args else self.name
        self.pid = _int(p.get("pid"))
        pe = p.get("parent_exec_id")
        self.parent_exec_id = pe if isinstance(pe, str) else None


class TetragonMapper:
    """Turns Tetragon events (decoded JSON objects) into Falco-keyed event dicts.

    Keeps a bounded process table so ancestry can be filled in when Tetragon did not send it.
    """

    def __init__(self) -> None:
        self._procs: dict[str, _Proc] = {}

    # -- process table ---------------------------------------------------------------------

    def _remember(self, p: Any) -> _Proc | None:
        if not isinstance(p, dict):
            return None
        eid = p.get("exec_id")
        info = _Proc(p)
        if isinstance(eid, str) and eid:
            procs = self._procs
            old = procs.get(eid)
            if old is not None and info.name is None:
                return old  # a sparse record (flags "unknown") must not erase what we knew
            procs[eid] = info
            if len(procs) > PROCESS_TABLE_SIZE:
                del procs[next(iter(procs))]
        return info

    def _ancestors(self, body: dict[str, Any], parent: _Proc | None) -> list[_Proc]:
        """Ancestors beyond the parent, the parent's parent first."""
        given = body.get("ancestors")
        if isinstance(given, list) and given:
            out = [a for a in (self._remember(x) for x in given) if a is not None]
            if out:
                return out
        out = []
        seen: set[str] = set()
        eid = parent.parent_exec_id if parent else None
        while eid and eid not in seen and len(out) < MAX_ANCESTORS:
            seen.add(eid)
            a = self._procs.get(eid)
            if a is None:
                break
            out.append(a)
            eid = a.parent_exec_id
        return out

    # -- mapping ---------------------------------------------------------------------------

    def map(self, obj: dict[str, Any]) -> tuple[str, dict[str, Any] | None, dict[str, Any]]:
        """(kind, Falco-keyed data or None if the kind is not mapped, tetragon metadata)."""
        kind = next((k for k in _READ_KINDS if k in obj), None)
        if kind is None:
            raise ValueError("not a Tetragon event: none of " + ", ".join(MAPPED_KINDS))
        body = obj[kind]
        if kind not in MAPPED_KINDS:
            return kind, None, {}
        if not isinstance(body, dict):
            raise ValueError(f"{kind} is not an object")
        proc_raw = body.get("process")
        if not isinstance(proc_raw, dict):
            raise ValueError(f"{kind} has no process")
        data: dict[str, Any] = {}
        self._process_fields(data, proc_raw, body)
        _time_fields(data, obj, kind, body, proc_raw)
        node = obj.get("node_name")
        if isinstance(node, str) and node:
            data["evt.hostname"] = node
        if kind == "process_exec":
            data["evt.type"] = "execve"
            data["evt.dir"] = "<"
            data["evt.rawres"] = 0
            data["evt.res"] = "SUCCESS"
        elif kind == "process_exit":
            _exit_fields(data, body)
        elif kind == "process_tracepoint":
            self._tracepoint(data, body)
        else:
            self._kprobe(data, body)
        return kind, data, _meta(kind, body, proc_raw)

    def _process_fields(self, data: dict[str, Any], p: dict[str, Any], body: dict[str, Any]) -> None:
        me = self._remember(p)
        _exe_fields(data, p)
        _id_fields(data, p)
        _container_fields(data, p)
        parent_raw = body.get("parent")
        parent = self._remember(parent_raw) if isinstance(parent_raw, dict) else None
        if parent is None and me is not None and me.parent_exec_id:
            parent = self._procs.get(me.parent_exec_id)
        if parent is not None:
            _parent_fields(data, [parent, *self._ancestors(body, parent)])

    # -- kprobes, LSM hooks, tracepoints ---------------------------------------------------

    def _kprobe(self, data: dict[str, Any], body: dict[str, Any]) -> None:
        fn = body.get("function_name")
        fn = fn if isinstance(fn, str) else ""
        args = _arg_values(body.get("args"))
        for i, (_, v) in enumerate(args):
            data[f"evt.arg[{i}]"] = v
        _return_fields(data, body.get("return"))
        evt_type = _KERNEL_FUNCTIONS.get(fn)
        if evt_type is None and fn.startswith("security_"):
            evt_type = _KERNEL_FUNCTIONS.get(fn[len("security_") :])
        if evt_type is None:
            syscall = _syscall_name(fn)
            evt_type = syscall or fn or "unknown"
            data["evt.type"] = evt_type
            data["evt.dir"] = "<"
            if syscall is not None:
                self._syscall_args(data, syscall, args)
            return
        data["evt.type"] = evt_type
        data["evt.dir"] = "<"
        if evt_type in ("connect", "accept", "close", "sendmsg", "recvmsg"):
            for kind, v in args:
                if kind in ("sock_arg", "skb_arg") and isinstance(v, dict):
                    _socket_fields(data, v, server=evt_type in _SERVER_SIDE)
                    break
            return
        path, mask = _path_and_int(args)
        if path is not None:
            data["fd.name"] = path
            data["fs.path.name"] = path
            data["evt.arg.name"] = path
        if evt_type == "openat":
            _open_hook_fields(data, fn, mask)
        elif evt_type == "mmap" and mask is not None:
            data["evt.arg.prot"] = (
                "|".join(
                    n
                    for b, n in (
                        (PROT_READ, "PROT_READ"),
                        (PROT_WRITE, "PROT_WRITE"),
                        (PROT_EXEC, "PROT_EXEC"),
                    )
                    if mask & b
                )
                or "PROT_NONE"
            )

    @staticmethod
    def _syscall_args(data: dict[str, Any], syscall: str, args: list[tuple[str, Any]]) -> None:
        if syscall in _OPEN_SYSCALLS:
            ints = [v for k, v in args if k == "int_arg" and isinstance(v, int)]
            path, _ = _path_and_int(args)
            if path is not None:
                data["fd.name"] = path
                data["evt.arg.name"] = path
                data["fd.type"] = "file"
                data["fd.typechar"] = "f"
            # openat(dfd, name, flags, mode): flags is the int after the path
            flags = ints[1] if len(ints) >= 2 and syscall != "open" else ints[0] if ints else None
            if flags is not None:
                data["evt.arg.flags"] = open_flags_str(flags)
            return
        for kind, v in args:
            if kind in ("file_arg", "path_arg") and isinstance(v, str):
                data["fd.name"] = v
                break
            if kind == "sock_arg" and isinstance(v, dict):
                _socket_fields(data, v, server=syscall in ("accept", "accept4"))
                break
            if kind == "sockaddr_arg" and isinstance(v, dict) and "addr" in v:
                data["fd.sip"] = v.get("addr")
                port = _int(v.get("port"))
                if port is not None:
                    data["fd.sport"] = port
                break
        for kind, v in args:
            if kind == "bytes_arg" and isinstance(v, str):
                data["evt.arg.data"] = v
            elif kind == "size_arg" and isinstance(v, int):
                data["evt.arg.size"] = v

    def _tracepoint(self, data: dict[str, Any], body: dict[str, Any]) -> None:
        subsys = body.get("subsys")
        subsys = subsys if isinstance(subsys, str) else ""
        event = body.get("event")
        event = event if isinstance(event, str) else ""
        args = _arg_values(body.get("args"))
        for i, (_, v) in enumerate(args):
            data[f"evt.arg[{i}]"] = v
        evt_type, direction = event or subsys or "unknown", "<"
        if subsys == "syscalls" and event.startswith(("sys_enter_", "sys_exit_")):
            direction = ">" if event.startswith("sys_enter_") else "<"
            evt_type = event.split("_", 2)[2]
            self._syscall_args(data, evt_type, args)
        data["evt.type"] = evt_type
        data["evt.dir"] = direction
        data["evt.arg.subsys"] = subsys


# -- the fields of one event, by part ---------------------------------------------------------


def _time_fields(
    data: dict[str, Any], obj: dict[str, Any], kind: str, body: dict[str, Any], proc: dict[str, Any]
) -> None:
    """evt.time (the event's time, else the exit's or the exec's start) and proc.duration."""
    t = obj.get("time")
    ns = parse_time_ns(t) if isinstance(t, str) else None
    if ns is None and kind == "process_exit" and isinstance(body.get("time"), str):
        ns = parse_time_ns(body["time"])
    if ns is None and kind == "process_exec" and isinstance(proc.get("start_time"), str):
        ns = parse_time_ns(proc["start_time"])
    if ns is not None:
        data["evt.time"] = ns
        start = proc.get("start_time")
        start_ns = parse_time_ns(start) if isinstance(start, str) else None
        if start_ns is not None and ns >= start_ns:
            data["proc.duration"] = ns - start_ns


def _exit_fields(data: dict[str, Any], body: dict[str, Any]) -> None:
    data["evt.type"] = "procexit"
    data["evt.dir"] = "<"
    status = _int(body.get("status"))
    data["evt.arg.status"] = status if status is not None else 0
    sig = body.get("signal")
    if isinstance(sig, str) and sig:
        data["evt.arg.sig"] = sig


def _meta(kind: str, body: dict[str, Any], proc: dict[str, Any]) -> dict[str, Any]:
    """What Tetragon says of the event beyond Falco's fields (policy, action, workload)."""
    meta: dict[str, Any] = {"kind": kind, "exec_id": proc.get("exec_id")}
    for k in ("policy_name", "action", "message", "tags"):
        v = body.get(k)
        if v:
            meta[k] = v
    pod = proc.get("pod")
    if isinstance(pod, dict) and pod.get("workload"):
        meta["workload"] = pod.get("workload")
        meta["workload_kind"] = pod.get("workload_kind")
    return meta


def _exe_fields(data: dict[str, Any], p: dict[str, Any]) -> None:
    binary = p.get("binary")
    if isinstance(binary, str) and binary:
        data["proc.exepath"] = binary
        data["proc.exe"] = binary
        data["proc.name"] = _comm(binary)
        args = p.get("arguments")
        args = args if isinstance(args, str) else ""
        data["proc.args"] = args
        data["proc.cmdline"] = f"{data['proc.name']} {args}" if args else data["proc.name"]
        data["proc.exeline"] = f"{binary} {args}" if args else binary
    cwd = p.get("cwd")
    if isinstance(cwd, str) and cwd:
        data["proc.cwd"] = cwd
    tty = p.get("tty")
    if isinstance(tty, int):
        data["proc.tty"] = tty


def _id_fields(data: dict[str, Any], p: dict[str, Any]) -> None:
    """Process, thread and user ids."""
    pid = _int(p.get("pid"))
    if pid is not None:
        data["proc.pid"] = pid
    tid = _int(p.get("tid"))
    data["thread.tid"] = tid if tid is not None else pid
    uid = _int(p.get("uid"))
    if uid is not None:
        data["user.uid"] = uid
    user = p.get("user")
    if isinstance(user, dict) and isinstance(user.get("name"), str):
        data["user.name"] = user["name"]
    elif uid == 0:
        data["user.name"] = "root"
    auid = _int(p.get("auid"))
    if auid is not None:
        data["user.loginuid"] = -1 if auid == AUID_UNSET else auid
    creds = p.get("process_credentials")
    if isinstance(creds, dict):
        for src, dst in (("gid", "group.gid"), ("euid", "user.uid")):
            v = _int(creds.get(src))
            if v is not None:
                data[dst] = v


def _parent_fields(data: dict[str, Any], chain: list[_Proc]) -> None:
    """The parent's fields and, when every ancestor's name is known, the ancestry lists."""
    parent = chain[0]
    if parent.pid is not None:
        data["proc.ppid"] = parent.pid
    if parent.name:
        data["proc.pname"] = parent.name
        data["proc.pexepath"] = parent.exepath
        data["proc.pexe"] = parent.exepath
        data["proc.pcmdline"] = parent.cmdline
    names = [a.name for a in chain]
    if all(n is not None for n in names):
        data["proc.aname"] = names
        data["proc.apid"] = [a.pid for a in chain]
        data["proc.aexepath"] = [a.exepath for a in chain]
        data["proc.acmdline"] = [a.cmdline for a in chain]
        for i, n in enumerate(names, 1):
            data[f"proc.aname[{i}]"] = n
        for i, a in enumerate(chain, 1):
            if a.pid is not None:
                data[f"proc.apid[{i}]"] = a.pid


def _container_fields(data: dict[str, Any], p: dict[str, Any]) -> None:
    pod = p.get("pod")
    container = pod.get("container") if isinstance(pod, dict) else None
    cid_raw = container.get("id") if isinstance(container, dict) else None
    if isinstance(cid_raw, str) and cid_raw:
        short, full, runtime = _short_container_id(cid_raw)
        data["container.id"] = short
        data["container.full_id"] = full
        if runtime:
            data["container.type"] = "cri-o" if runtime == "cri-o" else runtime
    elif isinstance(p.get("docker"), str) and p["docker"]:
        data["container.id"] = p["docker"][:12]
    else:
        data["container.id"] = "host"
        data["container.name"] = "host"
    if isinstance(container, dict):
        _container_details(data, container)
    if isinstance(pod, dict):
        _pod_fields(data, pod)


def _container_details(data: dict[str, Any], container: dict[str, Any]) -> None:
    name = container.get("name")
    if isinstance(name, str) and name:
        data["container.name"] = name
    image = container.get("image")
    if isinstance(image, dict):
        _image_fields(data, image)
    cstart = container.get("start_time")
    if isinstance(cstart, str):
        ns = parse_time_ns(cstart)
        if ns is not None:
            data["container.start_ts"] = ns
    vpid = _int(container.get("pid"))
    if vpid is not None:
        data["proc.vpid"] = vpid


def _image_fields(data: dict[str, Any], image: dict[str, Any]) -> None:
    iname = image.get("name")
    if isinstance(iname, str) and iname:
        repo, tag, digest = split_image(iname)
        data["container.image"] = iname
        data["container.image.repository"] = repo
        if tag:
            data["container.image.tag"] = tag
        if digest:
            data["container.image.digest"] = digest
    iid = image.get("id")
    if isinstance(iid, str) and "@" in iid and "container.image.digest" not in data:
        data["container.image.digest"] = iid.split("@", 1)[1]


def _pod_fields(data: dict[str, Any], pod: dict[str, Any]) -> None:
    for src, dst in (("name", "k8s.pod.name"), ("namespace", "k8s.ns.name"), ("uid", "k8s.pod.uid")):
        v = pod.get(src)
        if isinstance(v, str) and v:
            data[dst] = v
    labels = pod.get("pod_labels")
    if isinstance(labels, dict) and labels:
        data["k8s.pod.labels"] = labels
        for k, v in labels.items():
            data[f"k8s.pod.label[{k}]"] = v
    if pod.get("workload_kind") == "Deployment" and isinstance(pod.get("workload"), str):
        data["k8s.deployment.name"] = pod["workload"]


def _return_fields(data: dict[str, Any], ret: object) -> None:
    ret_v = _arg_value(ret)[1] if isinstance(ret, dict) else None
    if isinstance(ret_v, int):
        data["evt.rawres"] = ret_v
        data["evt.res"] = "SUCCESS" if ret_v >= 0 else str(ret_v)


def _open_hook_fields(data: dict[str, Any], fn: str, mask: int | None) -> None:
    """An open seen by a kernel hook: the fd, and the access mode from security_file_permission."""
    data["fd.type"] = "file"
    data["fd.typechar"] = "f"
    if fn == "fd_install" and mask is not None:
        data["fd.num"] = mask  # fd_install(fd, file)
    if "evt.rawres" not in data:
        data["evt.rawres"] = data.get("fd.num", 0)
        data["evt.res"] = "SUCCESS"
    if fn.endswith("file_permission") and mask is not None:
        write = bool(mask & (MAY_WRITE | MAY_APPEND))
        read = bool(mask & MAY_READ)
        data["evt.is_open_read"] = read
        data["evt.is_open_write"] = write
        data["evt.is_open_exec"] = bool(mask & MAY_EXEC)
        data["evt.arg.flags"] = "O_RDWR" if read and write else "O_WRONLY" if write else "O_RDONLY"


def _syscall_name(fn: str) -> str | None:
    for prefix in _SYSCALL_PREFIXES:
        if fn.startswith(prefix) and len(fn) > len(prefix):
            return fn[len(prefix) :]
    return None


def _arg_value(arg: dict[str, Any]) -> tuple[str, Any]:
    """(kind, value) of one KprobeArgument: ``{"file_arg": {"path": ...}}`` -> ("file_arg", path)."""
    for kind, v in arg.items():
        if kind == "label":
            continue
        if kind in ("file_arg", "path_arg", "linux_binprm_arg") and isinstance(v, dict):
            path = v.get("path")
            if isinstance(path, str) and path and not path.startswith("/"):
                path = "/" + path  # Tetragon may drop the leading slash of a path on the root mount
            return kind, path
        if kind in ("size_arg", "long_arg", "int_arg", "uint_arg"):
            iv = _int(v)
            return kind, iv if iv is not None else v
        if kind == "bytes_arg" and isinstance(v, str):
            return kind, _b64_text(v)
        if kind == "truncated_bytes_arg" and isinstance(v, dict):
            return kind, _b64_text(v.get("bytes_arg") or "")
        if kind in ("capability_arg", "module_arg", "net_dev_arg") and isinstance(v, dict):
            return kind, v.get("name", v)
        return kind, v
    return "", None


def _arg_values(args: Any) -> list[tuple[str, Any]]:
    if not isinstance(args, list):
        return []
    return [_arg_value(a) if isinstance(a, dict) else ("", a) for a in args]


def _b64_text(v: str) -> str:
    try:
        raw = base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        return v
    return raw.decode("utf-8", "backslashreplace")


def _path_and_int(args: list[tuple[str, Any]]) -> tuple[str | None, int | None]:
    """The first path-like argument and the first integer argument."""
    path = None
    num = None
    for kind, v in args:
        if path is None and isinstance(v, str) and v.startswith("/"):
            path = v
        elif num is None and kind in ("int_arg", "uint_arg", "size_arg", "long_arg") and isinstance(v, int):
            num = v
    return path, num


def _socket_fields(data: dict[str, Any], s: dict[str, Any], *, server: bool) -> None:
    """Falco's tuple for a socket: fd.name ``cip:cport->sip:sport`` (client first)."""
    saddr, daddr = s.get("saddr"), s.get("daddr")
    sport, dport = _int(s.get("sport")), _int(s.get("dport"))
    family = s.get("family")
    if saddr is None or daddr is None:
        return
    if server:  # accept: the local end is the server
        cip, cport, sip, sport_ = daddr, dport, saddr, sport
    else:
        cip, cport, sip, sport_ = saddr, sport, daddr, dport
    data["fd.name"] = f"{cip}:{cport}->{sip}:{sport_}"
    data["fd.cip"], data["fd.cport"], data["fd.sip"], data["fd.sport"] = cip, cport, sip, sport_
    data["fd.is_server"] = server
    v6 = family == "AF_INET6" or ":" in str(saddr)
    data["fd.type"] = "ipv6" if v6 else "ipv4"
    data["fd.typechar"] = "6" if v6 else "4"
    proto = s.get("protocol") or s.get("type")
    if isinstance(proto, str):
        p = proto.upper()
        data["fd.l4proto"] = (
            "tcp"
            if "TCP" in p or p == "SOCK_STREAM"
            else "udp"
            if "UDP" in p or p == "SOCK_DGRAM"
            else p.lower()
        )
    elif isinstance(proto, int):
        data["fd.l4proto"] = {6: "tcp", 17: "udp", 1: "icmp"}.get(proto, str(proto))


class TetragonSource(InputSource):
    """Syscall-source events from Tetragon's JSON export (a file, ``-`` for stdin, or a stream)."""

    name = "tetragon"
    record: ClassVar[str] = "a Tetragon event"
    detect_order: ClassVar[int] = 30

    @classmethod
    def classify(cls, obj: object) -> bool:
        """An export line: it has one of :data:`EVENT_KINDS` as a key."""
        return isinstance(obj, dict) and any(k in obj for k in EVENT_KINDS)

    @classmethod
    def sniff(cls, text: bytes) -> bool:
        """A document with one of :data:`EVENT_KINDS` as a key."""
        return _DOC_KEY.search(text) is not None

    def __init__(self, path_or_stream: PathOrStream, *, name_hint: str | None = None) -> None:
        super().__init__(path_or_stream, name_hint=name_hint)
        #: events of kinds this source does not map, by kind
        self.skipped: Counter[str] = Counter()
        #: events Tetragon itself reported as dropped (rate_limit_info)
        self.dropped_upstream = 0
        self.mapper = TetragonMapper()

    def _events(self, stream: BinaryIO) -> Iterator[Event]:
        where = self.where
        mapper = self.mapper
        for lineno, obj in iter_records(stream, where, self.stats):
            loc = f"{where}:{lineno}"
            if not isinstance(obj, dict):
                self.stats.bad(loc, "expected a Tetragon event object")
                continue
            try:
                kind, data, meta = mapper.map(obj)
            except (ValueError, TypeError, AttributeError) as e:
                why = str(e) if isinstance(e, ValueError) else f"unexpected shape: {e}"
                self.stats.bad(loc, foreign(obj, self.name) or why)
                continue
            if data is None:
                self.skipped[kind] += 1
                if kind == "rate_limit_info" and isinstance(obj[kind], dict):
                    self.dropped_upstream += _int(obj[kind].get("number_of_dropped_process_events")) or 0
                continue
            self.stats.events += 1
            yield Event(SYSCALL, data, loc, meta={"tetragon": meta})
