"""runc containers: found in runc's state directories, described by state.json and the bundle.

runc keeps one directory per container under its root (``/run/runc`` by default; containerd's shim
uses ``/run/containerd/runc/<namespace>``; podman with runc shares ``/run/runc``), holding
``state.json``: the id, the init pid, ``created``, the cgroup paths of every controller and the
libcontainer config (rootfs, mounts, capabilities, devices, labels such as ``bundle=<dir>``). The
bundle's ``config.json`` (the OCI spec) gives mounts, annotations and capabilities in OCI terms.

A runc container started with a cgroupsPath of its own (``/<id>`` by default) cannot be told from a
host cgroup by its path: :class:`RuncIndex` maps every cgroup path (and the mount namespace of the
init process) of every container in the state directories to its id.
"""

from __future__ import annotations

import glob
import os
import time
from dataclasses import dataclass, field
from typing import Any

from stockade.sensor.containers.info import ContainerInfo, mount_dict, parse_rfc3339_ns, read_json_object

__all__ = ["DEFAULT_RUNC_ROOTS", "RuncIndex", "RuncState", "info_from_state", "read_state"]

DEFAULT_RUNC_ROOTS = ("/run/runc", "/run/containerd/runc/*", "/run/docker/runtime-runc/*")
_PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")
_MS_RDONLY = 1
_MS_BIND = 4096
#: the capabilities a container gets by default; holding CAP_SYS_ADMIN with no device cgroup
#: restriction is what a privileged container has
_PRIV_CAP = "CAP_SYS_ADMIN"


@dataclass(slots=True)
class RuncState:
    """One container's runc state.json: its id, where the file is, and its contents."""

    id: str
    path: str
    data: dict[str, Any]


def read_state(path: str) -> RuncState | None:
    """A state.json, or None if it cannot be read (a container being created or deleted)."""
    data = read_json_object(path)
    if data is None or not isinstance(data.get("id"), str):
        return None
    return RuncState(data["id"], path, data)


def _cgroup_mounts() -> list[tuple[str, str]]:
    """(mount point, root) of every cgroup hierarchy mounted here, longest mount point first."""
    out: list[tuple[str, str]] = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                pre, _, post = line.partition(" - ")
                fstype = post.split(" ", 1)[0]
                if fstype not in ("cgroup", "cgroup2"):
                    continue
                parts = pre.split(" ")
                if len(parts) >= 5:
                    out.append((parts[4], parts[3]))
    except OSError:
        pass
    out.sort(key=lambda m: len(m[0]), reverse=True)
    return out


def _relative_cgroup(abs_path: str, mounts: list[tuple[str, str]]) -> str | None:
    for mp, root in mounts:
        if abs_path == mp or abs_path.startswith(mp + "/"):
            rel = abs_path[len(mp) :] or "/"
            return (root.rstrip("/") + rel) if root != "/" else rel
    return None


def _start_ticks(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
        return int(raw[raw.rfind(b")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None


@dataclass(slots=True)
class RuncIndex:
    """Which runc container a cgroup path or a mount namespace belongs to, from the state dirs."""

    roots: tuple[str, ...] = DEFAULT_RUNC_ROOTS
    #: how often the root globs are expanded again (a new namespace directory of containerd)
    glob_every_s: float = 1.0
    by_cgroup: dict[str, str] = field(default_factory=dict)
    by_mntns: dict[int, str] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)
    scans: int = 0
    _signature: tuple[Any, ...] = ()
    _scanned: bool = False
    #: container directories that had no state.json yet at the last scan
    _incomplete: list[str] = field(default_factory=list)
    _dirs: list[str] = field(default_factory=list)
    _globbed_at: float = -1e9
    #: (cgroup path, mount namespace) pairs that matched nothing after a scan made for them
    _missed: set[tuple[str | None, int | None]] = field(default_factory=set)

    def _root_dirs(self) -> list[str]:
        now = time.monotonic()
        if now - self._globbed_at < self.glob_every_s:
            return self._dirs
        self._globbed_at = now
        dirs: list[str] = []
        for r in self.roots:
            dirs.extend(sorted(glob.glob(r)) if any(c in r for c in "*?[") else [r])
        self._dirs = [d for d in dirs if os.path.isdir(d)]
        return self._dirs

    def _current_signature(self, dirs: list[str]) -> tuple[Any, ...]:
        sig: list[Any] = []
        for d in dirs:
            try:
                sig.append((d, os.stat(d).st_mtime_ns))
            except OSError:
                continue
        return tuple(sig)

    def stale(self) -> bool:
        """Could a rescan find something new? (Cheap: a stat of each root directory.)

        A container's directory appears (the root's mtime changes) before its state.json; such a
        directory is looked at again on every miss until it has one."""
        if not self._scanned:
            return True
        for d in self._incomplete:
            if os.path.exists(os.path.join(d, "state.json")) or not os.path.isdir(d):
                return True
        return self._current_signature(self._root_dirs()) != self._signature

    def refresh(self) -> None:
        """Rescan the state directories."""
        self.scans += 1
        self._globbed_at = -1e9
        dirs = self._root_dirs()
        mounts = _cgroup_mounts()
        by_cgroup: dict[str, str] = {}
        by_mntns: dict[int, str] = {}
        states: dict[str, str] = {}
        incomplete: list[str] = []
        for d in dirs:
            try:
                names = os.listdir(d)
            except OSError:
                continue
            for name in names:
                path = os.path.join(d, name, "state.json")
                st = read_state(path)
                if st is None:
                    if os.path.isdir(os.path.join(d, name)):
                        incomplete.append(os.path.join(d, name))
                    continue
                states[st.id] = path
                for abs_path in (st.data.get("cgroup_paths") or {}).values():
                    if isinstance(abs_path, str):
                        rel = _relative_cgroup(abs_path, mounts)
                        if rel and rel != "/":
                            by_cgroup[rel] = st.id
                pid = st.data.get("init_process_pid")
                if (
                    isinstance(pid, int)
                    and pid > 0
                    and _start_ticks(pid) == st.data.get("init_process_start")
                ):
                    try:
                        by_mntns[os.stat(f"/proc/{pid}/ns/mnt").st_ino] = st.id
                    except OSError:
                        pass
        self.by_cgroup, self.by_mntns, self.states = by_cgroup, by_mntns, states
        self._incomplete = incomplete
        self._signature = self._current_signature(dirs)
        self._scanned = True

    def lookup(self, cgroup_path: str | None, mntns: int | None = None) -> str | None:
        """The id of the runc container with this cgroup path or mount namespace, or None."""
        for attempt in (0, 1):
            if cgroup_path is not None:
                cid = self.by_cgroup.get(cgroup_path)
                if cid is not None:
                    return cid
            if mntns is not None:
                cid = self.by_mntns.get(mntns)
                if cid is not None:
                    return cid
            if attempt == 0:
                # a cgroup or namespace not seen since the last scan may be a container whose
                # state.json the scan missed (the root directory's mtime does not change when a
                # container's state is rewritten): look once more rather than call it the host's
                key = (cgroup_path, mntns)
                if key in self._missed and not self.stale():
                    return None
                self.refresh()
                if len(self._missed) >= 4096:
                    self._missed.clear()
                self._missed.add(key)
        return None

    def state(self, cid: str) -> RuncState | None:
        """The state of container `cid` (looked up again once if not indexed yet), or None."""
        path = self.states.get(cid)
        if path is None:
            self.refresh()
            path = self.states.get(cid)
        if path is None:
            for d in self._root_dirs():
                cand = os.path.join(d, cid, "state.json")
                if os.path.exists(cand):
                    path = cand
                    break
        return read_state(path) if path else None


def _labels(config: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in config.get("labels") or []:
        if isinstance(item, str) and "=" in item:
            k, v = item.split("=", 1)
            out[k] = v
    return out


def oci_mounts(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The bind mounts (volumes) of an OCI spec, as ``container.mounts`` entries."""
    out: list[dict[str, Any]] = []
    for m in spec.get("mounts") or []:
        if not isinstance(m, dict):
            continue
        opts = [o for o in m.get("options") or [] if isinstance(o, str)]
        if m.get("type") != "bind" and "bind" not in opts and "rbind" not in opts:
            continue
        prop = next((o for o in opts if o in _PROPAGATIONS), "")
        out.append(
            mount_dict(str(m.get("source", "")), str(m.get("destination", "")), "ro" not in opts, prop)
        )
    return out


def oci_privileged(spec: dict[str, Any]) -> bool:
    """A privileged container: CAP_SYS_ADMIN in its bounding set and every device allowed."""
    proc = spec.get("process") or {}
    caps = (proc.get("capabilities") or {}).get("bounding") or []
    linux = spec.get("linux") or {}
    devices = (linux.get("resources") or {}).get("devices")
    all_devices = devices is None or any(
        isinstance(d, dict) and d.get("allow") and d.get("type") not in ("b", "c") and d.get("major") is None
        for d in devices
    )
    return _PRIV_CAP in caps and all_devices


def _state_mounts(config: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in config.get("mounts") or []:
        if not isinstance(m, dict) or m.get("device") != "bind":
            continue
        flags = m.get("flags") or 0
        prop = ""
        for pf in m.get("propagation_flags") or []:
            prop = {0x4000 | 0x40000: "rprivate", 0x40000: "private", 0x4000 | 0x100000: "rshared"}.get(
                pf, prop
            )
        out.append(
            mount_dict(str(m.get("source", "")), str(m.get("destination", "")), not flags & _MS_RDONLY, prop)
        )
    return out


def _state_privileged(config: dict[str, Any]) -> bool:
    caps = (config.get("capabilities") or {}).get("Bounding") or []
    devices = (config.get("cgroups") or {}).get("devices") or []
    all_devices = any(isinstance(d, dict) and d.get("type") == 97 and d.get("allow") for d in devices)
    return _PRIV_CAP in caps and all_devices


def info_from_state(st: RuncState, runtime: str = "runc") -> ContainerInfo:
    """Metadata of a runc container from its state.json and its bundle's config.json."""
    data = st.data
    config = data.get("config") or {}
    labels = _labels(config)
    bundle = labels.get("bundle")
    spec = read_json_object(os.path.join(bundle, "config.json")) if bundle else None
    info = ContainerInfo(full_id=st.id, runtime=runtime, name=st.id, origin="runc state", complete=True)
    info.start_ns = parse_rfc3339_ns(data.get("created"))
    pid = data.get("init_process_pid")
    info.init_pid = pid if isinstance(pid, int) else None
    info.rootfs = config.get("rootfs") if isinstance(config.get("rootfs"), str) else None
    if spec is not None:
        info.mounts = oci_mounts(spec)
        info.privileged = oci_privileged(spec)
        ann = spec.get("annotations") or {}
        info.labels = {str(k): str(v) for k, v in ann.items()} if isinstance(ann, dict) else {}
    else:
        info.mounts = _state_mounts(config)
        info.privileged = _state_privileged(config)
        info.labels = {k: v for k, v in labels.items() if k != "bundle"}
    return info
