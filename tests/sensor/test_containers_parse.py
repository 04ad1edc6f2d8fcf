"""Container attribution without a runtime: cgroup paths, image references, CRI/docker/runc files."""

from __future__ import annotations

import itertools
import json
import os
import stat
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from helpers import need
from stockade.model.fields import lookup
from stockade.sensor.containers.cgroup import CgroupMatch, parse_cgroup_path
from stockade.sensor.containers.cri import CriClient, info_from_crictl
from stockade.sensor.containers.docker import docker_info
from stockade.sensor.containers.drift import exe_upper_layer
from stockade.sensor.containers.info import ContainerInfo, parse_rfc3339_ns, split_image
from stockade.sensor.containers.resolver import ContainerResolver
from stockade.sensor.containers.runc import RuncIndex, _cgroup_mounts

ID = "0fa6506ae9bc4d7daac10551f34a58e7777b4f170d924548c1e69bdf41061b02"
UID = "8f2b1c3d-4e5f-4a6b-9c7d-0e1f2a3b4c5d"


@pytest.mark.parametrize(
    ("path", "expect"),
    [
        (f"/machine.slice/libpod-{ID}.scope", CgroupMatch("podman", ID)),
        (f"/libpod_parent/libpod-{ID}", CgroupMatch("podman", ID)),
        (f"/libpod_parent/libpod-{ID}/init.scope", CgroupMatch("podman", ID)),
        (f"/machine.slice/libpod-conmon-{ID}.scope", None),
        (f"/docker/{ID}", CgroupMatch("docker", ID)),
        (f"/system.slice/docker-{ID}.scope", CgroupMatch("docker", ID)),
        (f"/kubepods/burstable/pod{UID}/{ID}", CgroupMatch("cri", ID, UID)),
        (f"/kubepods/pod{UID}/{ID}", CgroupMatch("cri", ID, UID)),
        (
            f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID.replace('-', '_')}.slice/"
            f"cri-containerd-{ID}.scope",
            CgroupMatch("containerd", ID, UID),
        ),
        (
            f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID.replace('-', '_')}.slice/crio-{ID}.scope",
            CgroupMatch("cri-o", ID, UID),
        ),
        (f"/kubepods.slice/kubepods-pod{UID.replace('-', '_')}.slice/crio-conmon-{ID}.scope", None),
        (f"/some/other/{ID}", CgroupMatch("unknown", ID)),
        ("/", None),
        ("", None),
        (None, None),
        ("/user.slice/user-1000.slice/session-3.scope", None),
        ("/system.slice/sshd.service", None),
        ("/process_api/577dc23284fe81d537761b2bd0ebf911", None),  # 32 hex: not a container id
        ("/tst1", None),  # a runc container with its own cgroupsPath: only runc's state tells
    ],
)
def test_parse_cgroup_path(path: str | None, expect: CgroupMatch | None) -> None:
    assert parse_cgroup_path(path) == expect


@pytest.mark.parametrize(
    ("ref", "expect"),
    [
        ("docker.io/library/nginx:1.25", ("docker.io/library/nginx", "1.25", None)),
        ("registry:5000/team/app", ("registry:5000/team/app", None, None)),
        ("registry:5000/team/app:v2@sha256:abc", ("registry:5000/team/app", "v2", "sha256:abc")),
        ("busybox", ("busybox", None, None)),
        ("", (None, None, None)),
    ],
)
def test_split_image(ref: str, expect: tuple[str | None, str | None, str | None]) -> None:
    assert split_image(ref) == expect


def test_rfc3339() -> None:
    assert parse_rfc3339_ns("1970-01-01T00:00:01.5Z") == 1_500_000_000
    assert parse_rfc3339_ns("1970-01-01T01:00:01+01:00") == 1_000_000_000
    ns = parse_rfc3339_ns("2026-11-23T08:23:13.188262341Z")
    assert ns is not None and ns % 1_000_000_000 == 188262341
    assert parse_rfc3339_ns("0001-01-01T00:00:00Z") is None
    assert parse_rfc3339_ns("yesterday") is None


def _field(ev: dict[str, Any], name: str, arg: str | None = None) -> Any:
    spec = lookup(name)
    assert spec is not None
    return spec.extractor(arg)(ev)


def _spec(annotations: dict[str, str], privileged: bool = False) -> dict[str, Any]:
    return {
        "root": {"path": "/run/x/rootfs"},
        "process": {"capabilities": {"bounding": ["CAP_SYS_ADMIN" if privileged else "CAP_KILL"]}},
        "linux": {"resources": {"devices": [{"allow": privileged, "access": "rwm"}]}},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/var/run/docker.sock",
                "type": "bind",
                "source": "/run/docker.sock",
                "options": ["rbind", "rprivate", "rw"],
            },
            {"destination": "/etc/cfg", "type": "bind", "source": "/srv/cfg", "options": ["rbind", "ro"]},
        ],
        "annotations": annotations,
    }


def test_containerd_bundle(tmp_path: Path) -> None:
    d = tmp_path / "k8s.io" / ID
    d.mkdir(parents=True)
    (d / "config.json").write_text(
        json.dumps(
            _spec(
                {
                    "io.kubernetes.cri.container-type": "container",
                    "io.kubernetes.cri.container-name": "web",
                    "io.kubernetes.cri.image-name": "docker.io/library/nginx:1.25",
                    "io.kubernetes.cri.sandbox-name": "web-7d4b9c5f6d-x2x9q",
                    "io.kubernetes.cri.sandbox-namespace": "shop",
                    "io.kubernetes.cri.sandbox-uid": UID,
                },
                privileged=True,
            )
        )
    )
    cri = CriClient(sockets=(), bundle_globs=(str(tmp_path / "*" / "{id}" / "config.json"),))
    resolver = ContainerResolver(runc_roots=(), cri=cri, docker_root=str(tmp_path / "none"))
    path = f"/kubepods/besteffort/pod{UID}/{ID}"
    info = resolver.resolve(path)
    assert info is not None and info.complete
    ev = info.fields()
    assert ev["container.type"] == "containerd"
    assert ev["container.name"] == "web"
    assert ev["k8s.pod.name"] == "web-7d4b9c5f6d-x2x9q" and ev["k8s.ns.name"] == "shop"
    assert ev["k8s.pod.uid"] == UID
    assert (
        ev["container.image.repository"] == "docker.io/library/nginx" and ev["container.image.tag"] == "1.25"
    )
    assert ev["container.privileged"] is True
    assert _field(ev, "container.mount.dest", "/var/run/docker.sock") == "/var/run/docker.sock"
    assert _field(ev, "container.mount.rdwr", "/etc/cfg") is False
    assert _field(ev, "container.mount.dest", "/proc") is None  # not a volume
    assert resolver.resolve(path) is info  # cached


def test_crio_bundle(tmp_path: Path) -> None:
    d = tmp_path / ID / "userdata"
    d.mkdir(parents=True)
    (d / "config.json").write_text(
        json.dumps(
            _spec(
                {
                    "io.kubernetes.cri-o.ContainerType": "container",
                    "io.kubernetes.container.name": "api",
                    "io.kubernetes.pod.name": "api-0",
                    "io.kubernetes.pod.namespace": "prod",
                    "io.kubernetes.cri-o.ImageName": "quay.io/org/api:v3",
                    "io.kubernetes.cri-o.Labels": json.dumps(
                        {"app": "api", "io.kubernetes.pod.name": "api-0"}
                    ),
                    "io.kubernetes.cri-o.Created": "2026-01-01T00:00:00Z",
                }
            )
        )
    )
    cri = CriClient(sockets=(), bundle_globs=(str(tmp_path / "{id}" / "userdata" / "config.json"),))
    info = ContainerResolver(runc_roots=(), cri=cri).resolve(f"/kubepods.slice/crio-{ID}.scope")
    assert info is not None
    ev = info.fields()
    assert ev["container.type"] == "cri-o" and ev["container.name"] == "api"
    assert ev["k8s.pod.name"] == "api-0" and ev["k8s.ns.name"] == "prod"
    assert _field(ev, "container.label", "app") == "api"
    assert ev["container.privileged"] is False
    assert ev["container.start_ts"] == parse_rfc3339_ns("2026-01-01T00:00:00Z")


def test_crictl_inspect_shape() -> None:
    info = info_from_crictl(
        {
            "status": {
                "id": ID,
                "metadata": {"name": "web"},
                "image": {"image": "docker.io/library/nginx:1.25"},
                "imageRef": "docker.io/library/nginx@sha256:feed",
                "labels": {"io.kubernetes.pod.name": "web-1", "io.kubernetes.pod.namespace": "shop"},
                "mounts": [
                    {
                        "containerPath": "/data",
                        "hostPath": "/srv/data",
                        "readonly": True,
                        "propagation": "PROPAGATION_PRIVATE",
                    }
                ],
                "startedAt": "2026-01-01T00:00:00Z",
            },
            "info": {"pid": 42, "config": {"linux": {"security_context": {"privileged": True}}}},
        },
        "containerd",
    )
    assert info is not None
    ev = info.fields()
    assert ev["k8s.pod.name"] == "web-1" and ev["k8s.ns.name"] == "shop"
    assert ev["container.image.digest"] == "sha256:feed" and ev["container.privileged"] is True
    assert _field(ev, "container.mount.propagation", "/data") == "private"


def test_docker_files(tmp_path: Path) -> None:
    d = tmp_path / ID
    d.mkdir()
    (d / "config.v2.json").write_text(
        json.dumps(
            {
                "Name": "/db",
                "Image": "sha256:" + "ab" * 32,
                "Config": {"Image": "postgres:16", "Labels": {"tier": "data"}},
                "State": {"StartedAt": "2026-01-01T00:00:00Z", "Pid": 7},
                "MountPoints": {
                    "/var/lib/postgresql/data": {
                        "Source": "/srv/pg",
                        "Destination": "/var/lib/postgresql/data",
                        "RW": True,
                        "Propagation": "rprivate",
                    }
                },
            }
        )
    )
    (d / "hostconfig.json").write_text(json.dumps({"Privileged": True}))
    assert docker_info("f" * 64, str(tmp_path)) is None
    info = ContainerResolver(runc_roots=(), docker_root=str(tmp_path)).resolve(
        f"/system.slice/docker-{ID}.scope"
    )
    assert info is not None
    ev = info.fields()
    assert ev["container.name"] == "db" and ev["container.image"] == "postgres:16"
    assert ev["container.privileged"] is True and ev["container.id"] == ID[:12]
    assert _field(ev, "container.mount.source", "/var/lib/postgresql/data") == "/srv/pg"


def test_unknown_runtime_keeps_the_id_and_asks_again(tmp_path: Path) -> None:
    cri = CriClient(sockets=(), bundle_globs=(str(tmp_path / "{id}.json"),))
    resolver = ContainerResolver(runc_roots=(), cri=cri, docker_root=str(tmp_path), negative_ttl_s=0.0)
    path = f"/kubepods/pod{UID}/{ID}"
    info = resolver.resolve(path)
    assert info is not None and not info.complete
    ev = info.fields()
    assert ev["container.id"] == ID[:12] and ev["k8s.pod.uid"] == UID
    assert "container.name" not in ev and "container.mounts" not in ev  # missing, never "<NA>"
    # the runtime learns about it: the next lookup (after the negative TTL) describes it
    (tmp_path / f"{ID}.json").write_text(json.dumps(_spec({"io.kubernetes.cri.container-name": "late"})))
    info2 = resolver.resolve(path)
    assert info2 is not None and info2.complete and info2.name == "late"


def test_runc_index_picks_up_new_state_dirs(tmp_path: Path) -> None:
    root = tmp_path / "runc"
    root.mkdir()
    index = RuncIndex(roots=(str(root),))
    assert index.lookup("/mybox") is None
    (root / "mybox").mkdir()
    assert index.lookup("/mybox") is None  # created, no state yet
    mounts = need(_cgroup_mounts(), "no cgroup hierarchy mounted")
    mp, croot = mounts[-1]
    expect = (croot.rstrip("/") if croot != "/" else "") + "/mybox"
    (root / "mybox" / "state.json").write_text(
        json.dumps(
            {
                "id": "mybox",
                "init_process_pid": 0,
                "created": "2026-01-01T00:00:00Z",
                "cgroup_paths": {"pids": f"{mp}/mybox"},
                "config": {"rootfs": str(tmp_path), "labels": ["bundle=/nonexistent"]},
            }
        )
    )
    os.utime(root)  # as mkdir would
    time.sleep(0.03)
    assert index.lookup(expect) == "mybox"
    assert index.scans >= 2


def test_drift_overlay_dir(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "usr" / "bin").mkdir(parents=True)
    (upper / "usr" / "bin" / "xmrig").write_bytes(b"\x7fELF")
    if os.geteuid() == 0:
        os.mknod(upper / "usr" / "bin" / "deleted", 0o600 | stat.S_IFCHR, os.makedev(0, 0))
    info = ContainerInfo(full_id=ID, runtime="podman", upperdir=str(upper))
    assert exe_upper_layer(info, "/usr/bin/xmrig").upper is True
    assert exe_upper_layer(info, "/usr/bin/ls").upper is False
    if os.geteuid() == 0:
        assert exe_upper_layer(info, "/usr/bin/deleted").upper is False  # a whiteout
    assert exe_upper_layer(info, None).method == "unknown"


def test_an_undescribed_container_is_asked_again_soon_then_less_often(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A container being created is described within moments: ask again after 0.1 s, 0.2 s, 0.4 s
    ... up to negative_ttl_s, not once every negative_ttl_s."""
    import stockade.sensor.containers.resolver as resolver_module

    now = [1000.0]
    monkeypatch.setattr(resolver_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    cri = CriClient(sockets=(), bundle_globs=(str(tmp_path / "{id}.json"),))
    resolver = ContainerResolver(runc_roots=(), cri=cri, docker_root=str(tmp_path), negative_ttl_s=2.0)
    path = f"/kubepods/pod{UID}/{ID}"
    asked_at: list[float] = []
    real = resolver._describe

    def counting(cid: str, runtime: str) -> Any:
        asked_at.append(now[0])
        return real(cid, runtime)

    resolver._describe = counting  # type: ignore[method-assign]
    while now[0] < 1006.0:
        resolver.resolve(path)
        now[0] += 0.01
    gaps = [round(b - a, 1) for a, b in itertools.pairwise(asked_at)]  # steps of 0.01 s
    assert gaps[:5] == [0.1, 0.2, 0.4, 0.8, 1.6]
    assert set(gaps[5:]) == {2.0}
    # hours later (thousands of asks) the schedule still holds (2**asked must not overflow)
    while now[0] < 1006.0 + 3 * 3600:
        resolver.resolve(path)
        now[0] += 0.5
    assert len(asked_at) > 5000
    assert round(asked_at[-1] - asked_at[-2], 1) == 2.0
