"""The node's container images, read from containers-storage (podman's, CRI-O's and buildah's
image store) without starting a container engine.

``podman images --format json`` and ``podman image inspect`` compute every image's size and
usage: with a few hundred images on a busy node they take seconds per call. The store they read is
plain JSON: ``overlay-images/images.json`` (id, names, manifest digest, top layer, created),
each image's config blob (``overlay-images/<id>/=<base64 of its digest>``: diff_ids, entrypoint,
cmd, user, env, exposed ports, labels) and ``overlay-layers/layers.json`` (each layer's size and
parent). :class:`ImageReader` reads them when ``images.json`` changes and keeps the parsed configs
by id (an image id is the digest of its config: it never changes).

Environment variables are listed by name only (their values may be secrets). Docker's and
containerd's stores are not read (yet).
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["DEFAULT_GRAPHROOT", "ImageReader", "graphroot", "image_record"]

DEFAULT_GRAPHROOT = "/var/lib/containers/storage"


def graphroot(conf: str = "/etc/containers/storage.conf") -> str:
    """The store's root: ``graphroot`` of storage.conf (``[storage]``), else the default."""
    try:
        with open(conf, encoding="utf-8") as f:
            for line in f:
                k, sep, v = line.partition("=")
                if sep and k.strip() == "graphroot":
                    return v.split("#", 1)[0].strip().strip('"').strip("'") or DEFAULT_GRAPHROOT
    except OSError:
        pass
    return DEFAULT_GRAPHROOT


def _load(path: str) -> Any:
    with open(path, "rb") as f:
        return orjson.loads(f.read())


def _big_data_name(key: str) -> str:
    return "=" + base64.b64encode(key.encode()).decode()


def image_record(meta: dict[str, Any], config: dict[str, Any] | None, size: int | None) -> dict[str, Any]:
    """One image as the inventory shows it, from its images.json entry and its config blob."""
    cfg = (config or {}).get("config") or {}
    rootfs = (config or {}).get("rootfs") or {}
    env = [str(e).split("=", 1)[0] for e in cfg.get("Env") or []]
    labels = cfg.get("Labels") or {}
    names = [str(n) for n in meta.get("names") or []]
    return {
        "id": str(meta["id"]),
        "digest": meta.get("digest"),
        "repo_tags": names,
        "repo_digests": sorted(
            {f"{n.rsplit(':', 1)[0] if ':' in n.rsplit('/', 1)[-1] else n}@{meta['digest']}" for n in names}
        )
        if meta.get("digest")
        else [],
        "created": (config or {}).get("created") or meta.get("created"),
        "size": size,
        "architecture": (config or {}).get("architecture"),
        "os": (config or {}).get("os"),
        "layers": [str(d) for d in rootfs.get("diff_ids") or []],
        "config": {
            "env": env,
            "entrypoint": cfg.get("Entrypoint"),
            "cmd": cfg.get("Cmd"),
            "user": cfg.get("User") or None,
            "working_dir": cfg.get("WorkingDir") or None,
            "exposed_ports": sorted((cfg.get("ExposedPorts") or {}).keys()),
            "labels": {str(k): str(v) for k, v in labels.items()},
        },
    }


@dataclass
class ImageReader:
    """The images of one containers-storage root (module docstring)."""

    root: str = field(default_factory=graphroot)
    driver: str = "overlay"
    #: id -> parsed config blob (None: unreadable)
    _configs: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    _stamp: tuple[int, int] = (0, 0)
    _images: list[dict[str, Any]] = field(default_factory=list)
    #: images whose config could not be read, with why (the latest read)
    problems: list[str] = field(default_factory=list)

    @property
    def available(self) -> bool:
        """Whether the store exists here."""
        return os.path.isfile(self._index())

    def _index(self) -> str:
        return os.path.join(self.root, f"{self.driver}-images", "images.json")

    def _stamps(self) -> tuple[int, int]:
        out = []
        for p in (self._index(), os.path.join(self.root, f"{self.driver}-layers", "layers.json")):
            try:
                out.append(os.stat(p).st_mtime_ns)
            except OSError:
                out.append(0)
        return out[0], out[1]

    def images(self) -> list[dict[str, Any]]:
        """Every image (cached until the store's index changes); [] where there is no store."""
        stamp = self._stamps()
        if stamp == self._stamp:
            return self._images
        try:
            metas = _load(self._index())
        except (OSError, orjson.JSONDecodeError) as e:
            self.problems = [f"{self._index()}: {e}"]
            return []
        sizes = self._layer_sizes()
        problems: list[str] = []
        out = []
        seen: set[str] = set()
        for meta in metas if isinstance(metas, list) else []:
            iid = meta.get("id") if isinstance(meta, dict) else None
            if not isinstance(iid, str):
                continue
            seen.add(iid)
            if iid not in self._configs:
                self._configs[iid] = self._config(iid, problems)
            out.append(image_record(meta, self._configs[iid], sizes.get(str(meta.get("layer") or ""))))
        self._configs = {k: v for k, v in self._configs.items() if k in seen}
        self._images, self._stamp, self.problems = out, stamp, problems
        return out

    def _config(self, iid: str, problems: list[str]) -> dict[str, Any] | None:
        path = os.path.join(self.root, f"{self.driver}-images", iid, _big_data_name(f"sha256:{iid}"))
        try:
            data = _load(path)
        except (OSError, orjson.JSONDecodeError) as e:
            problems.append(f"image {iid[:12]}: config {path}: {e}")
            return None
        return data if isinstance(data, dict) else None

    def _layer_sizes(self) -> dict[str, int]:
        """Top layer id -> the size of the chain down to the base."""
        try:
            layers = _load(os.path.join(self.root, f"{self.driver}-layers", "layers.json"))
        except (OSError, orjson.JSONDecodeError):
            return {}
        by_id = {str(x.get("id")): x for x in layers if isinstance(x, dict)}
        memo: dict[str, int] = {}

        def size(lid: str, depth: int = 0) -> int:
            if lid in memo:
                return memo[lid]
            x = by_id.get(lid)
            if x is None or depth > 500:
                return 0
            own = x.get("diff-size") or x.get("compressed-size") or 0
            memo[lid] = int(own) + (size(str(x["parent"]), depth + 1) if x.get("parent") else 0)
            return memo[lid]

        return {lid: size(lid) for lid in by_id}
