"""ContainerResolver: cgroup path (and mount namespace) -> ContainerInfo, resolved on first sight.

The first event of a container already carries its metadata: a container seen for the first time is
described synchronously by its runtime (``podman inspect``, runc's state.json and bundle, the CRI
bundle or ``crictl``, docker's files) and the answer is cached by id. When no runtime can describe
it (yet), the id from the cgroup path is still given, and the runtime is asked again after
at most ``negative_ttl_s`` (sooner at first: 0.1, 0.2, 0.4 ... s, as a container being created is
described within moments). Host processes resolve to ``None`` (``container.id`` ``host``).
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from collections.abc import Callable

from stockade.sensor.containers.cgroup import CgroupMatch, parse_cgroup_path
from stockade.sensor.containers.cri import CriClient
from stockade.sensor.containers.docker import DOCKER_ROOT, docker_info
from stockade.sensor.containers.info import ContainerInfo
from stockade.sensor.containers.podman import PodmanClient, info_from_inspect
from stockade.sensor.containers.runc import DEFAULT_RUNC_ROOTS, RuncIndex, info_from_state

__all__ = ["ContainerResolver"]

_NO_MATCH = CgroupMatch("", "")


def manager_of(annotations: dict[str, str]) -> str | None:
    """The runtime that made an OCI bundle, from the annotations it leaves there."""
    if annotations.get("io.container.manager") == "libpod":
        return "podman"
    if "io.kubernetes.cri.container-type" in annotations:
        return "containerd"
    if "io.kubernetes.cri-o.ContainerType" in annotations:
        return "cri-o"
    return None


class ContainerResolver:
    """Which container a process is in, and what its runtime says about it (cached by id)."""

    def __init__(
        self,
        *,
        runc_roots: tuple[str, ...] = DEFAULT_RUNC_ROOTS,
        podman: PodmanClient | None = None,
        cri: CriClient | None = None,
        docker_root: str = DOCKER_ROOT,
        negative_ttl_s: float = 2.0,
        max_entries: int = 4096,
    ) -> None:
        self.runc = RuncIndex(roots=runc_roots)
        self.podman = podman if podman is not None else PodmanClient()
        self.cri = cri if cri is not None else CriClient()
        self.docker_root = docker_root
        self.negative_ttl_s = negative_ttl_s
        self.max_entries = max_entries
        #: full id -> (what is known, when to ask again if incomplete, how many times asked)
        self._by_id: OrderedDict[str, tuple[ContainerInfo, float, int]] = OrderedDict()
        self._paths: OrderedDict[str, CgroupMatch] = OrderedDict()
        #: lookups, containers, host, described (runtime answered), undescribed, runtime_calls
        self.stats: Counter[str] = Counter()

    # -- lookups ---------------------------------------------------------------------------

    def resolve(self, cgroup_path: str | None, mntns: int | None = None) -> ContainerInfo | None:
        """The container of a process with this cgroup path / mount namespace; None for the host."""
        self.stats["lookups"] += 1
        match = self._parse(cgroup_path) if cgroup_path else None
        if match is not None:
            info = self.by_id(match.container_id, match.runtime, match.pod_uid)
        else:
            cid = self.runc.lookup(cgroup_path, mntns)
            if cid is None:
                self.stats["host"] += 1
                return None
            info = self.by_id(cid, "runc")
        self.stats["containers"] += 1
        return info

    def _parse(self, path: str) -> CgroupMatch | None:
        m = self._paths.get(path)
        if m is None:
            m = parse_cgroup_path(path) or _NO_MATCH
            self._paths[path] = m
            if len(self._paths) > self.max_entries * 2:
                self._paths.popitem(last=False)
        return None if m is _NO_MATCH else m

    def by_id(self, cid: str, runtime: str, pod_uid: str | None = None) -> ContainerInfo:
        """Metadata of a container by its full id (cached; an undescribed one is asked again later)."""
        hit = self._by_id.get(cid)
        now = time.monotonic()
        if hit is not None and (hit[0].complete or now < hit[1]):
            self._by_id.move_to_end(cid)
            return hit[0]
        info = self._describe(cid, runtime)
        if info is None:
            self.stats["undescribed"] += 1
            info = ContainerInfo(full_id=cid, runtime=runtime)
        else:
            self.stats["described"] += 1
        if pod_uid and not info.k8s_pod_uid:
            info.k8s_pod_uid = pod_uid
        # a container not yet described is usually being created: ask again soon, then back off
        # (0.1, 0.2, 0.4 ... s up to negative_ttl_s)
        asked = hit[2] + 1 if hit is not None else 1
        retry = min(self.negative_ttl_s, 0.05 * 2 ** min(asked, 16))
        self._by_id[cid] = (info, now + retry, asked)
        self._by_id.move_to_end(cid)
        while len(self._by_id) > self.max_entries:
            self._by_id.popitem(last=False)
        return info

    def cached(self, cid: str) -> ContainerInfo | None:
        """What is known of a container already resolved (no runtime call), or None."""
        hit = self._by_id.get(cid)
        return hit[0] if hit is not None else None

    def forget(self, cid: str) -> None:
        """Drop a container's cached metadata (it was removed, or it changed)."""
        self._by_id.pop(cid, None)

    # -- asking the runtimes ---------------------------------------------------------------

    def _runc_state(self, cid: str, runtime: str) -> ContainerInfo | None:
        st = self.runc.state(cid)
        return info_from_state(st, runtime) if st is not None else None

    def _podman(self, cid: str, runtime: str) -> ContainerInfo | None:
        if not self.podman.available:
            return None
        self.stats["runtime_calls"] += 1
        d = self.podman.inspect(cid)
        if d is None or d.get("Id") != cid:
            return None
        info = info_from_inspect(d)
        info.runtime = runtime if runtime not in ("unknown", "runc") else "podman"
        return info

    def _cri(self, cid: str, runtime: str) -> ContainerInfo | None:
        self.stats["runtime_calls"] += 1
        return self.cri.resolve(cid, runtime)

    def _docker(self, cid: str, runtime: str) -> ContainerInfo | None:
        del runtime  # docker names its containers whatever the cgroup path said
        return docker_info(cid, self.docker_root)

    def _describe(self, cid: str, runtime: str) -> ContainerInfo | None:
        order: list[Callable[[str, str], ContainerInfo | None]]
        if runtime == "podman":
            order = [self._podman, self._runc_state]
        elif runtime == "docker":
            order = [self._docker, self._runc_state]
        elif runtime in ("containerd", "cri-o", "cri"):
            order = [self._cri, self._docker, self._runc_state]
        elif runtime == "runc":
            order = [self._runc_state, self._podman]
        else:
            order = [self._podman, self._cri, self._docker, self._runc_state]
        for ask in order:
            info = ask(cid, runtime)
            if info is not None:
                if info.runtime in ("unknown", "cri") and runtime not in ("unknown", "cri"):
                    info.runtime = runtime
                if ask == self._runc_state:
                    return self._from_manager(info)
                return info
        return None

    def _from_manager(self, info: ContainerInfo) -> ContainerInfo:
        """A container found through runc's state (e.g. by mount namespace, before its cgroup path
        named it) whose bundle says another runtime manages it: that runtime has the image, so ask
        it; until it answers, the runc description is not complete (asked again later)."""
        manager = manager_of(info.labels)
        if manager is None or manager == info.runtime:
            return info
        better = (
            self._podman(info.full_id, manager) if manager == "podman" else self._cri(info.full_id, manager)
        )
        if better is not None:
            return better
        info.runtime = manager
        info.complete = False
        return info
