"""Image archives written by hand, for tests that need exact (or hostile) layer contents.

:func:`layer` makes a layer tar from :class:`Entry` rows; :func:`docker_archive` and
:func:`oci_layout` put layers and a config together as ``docker save`` and an OCI image layout
do (layers plain, gzip or zstd). No registry or container engine is involved.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zstandard


@dataclass(frozen=True)
class Entry:
    """One tar member: ``kind`` is file, dir, symlink, hardlink, chardev or fifo."""

    name: str
    kind: str = "file"
    data: bytes = b""
    mode: int = 0o644
    link: str = ""


def layer(entries: Sequence[Entry]) -> bytes:
    """An uncompressed layer tar of `entries`, in order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.mode = e.mode
            info.mtime = 1_700_000_000
            if e.kind == "file":
                info.size = len(e.data)
                tf.addfile(info, io.BytesIO(e.data))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "symlink": tarfile.SYMTYPE,
                "hardlink": tarfile.LNKTYPE,
                "chardev": tarfile.CHRTYPE,
                "fifo": tarfile.FIFOTYPE,
            }[e.kind]
            info.linkname = e.link
            tf.addfile(info)
    return buf.getvalue()


def sha256(data: bytes) -> str:
    """``sha256:<hex>`` of `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def config(layers: Sequence[bytes], **extra: Any) -> bytes:
    """An image config for `layers` (uncompressed tars): linux/amd64, their diff_ids, `extra` keys."""
    doc = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2026-01-01T00:00:00Z",
        "config": {
            "Env": ["PATH=/bin"],
            "Cmd": ["/bin/sh"],
            "User": "1000",
            "ExposedPorts": {"8080/tcp": {}},
        },
        "rootfs": {"type": "layers", "diff_ids": [sha256(x) for x in layers]},
        **extra,
    }
    return json.dumps(doc).encode()


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def docker_archive(dest: Path, layers: Sequence[bytes], tags: Sequence[str] = ("localhost/hand:1",)) -> str:
    """A docker-archive tarball at `dest` of `layers` (bottom first); returns the config's digest."""
    cfg = config(layers)
    cfg_digest = sha256(cfg)
    names = [f"{sha256(x)[7:]}/layer.tar" for x in layers]
    manifest = [{"Config": f"{cfg_digest[7:]}.json", "RepoTags": list(tags), "Layers": names}]
    with tarfile.open(dest, "w") as tf:
        for name, data in zip(names, layers, strict=True):
            _add(tf, name, data)
        _add(tf, f"{cfg_digest[7:]}.json", cfg)
        _add(tf, "manifest.json", json.dumps(manifest).encode())
    return cfg_digest


def _compress(data: bytes, compression: str) -> tuple[bytes, str]:
    base = "application/vnd.oci.image.layer.v1.tar"
    if compression == "gzip":
        return gzip.compress(data), base + "+gzip"
    if compression == "zstd":
        return zstandard.ZstdCompressor().compress(data), base + "+zstd"
    return data, base


def oci_layout(dest: Path, layers: Sequence[bytes], compression: str = "gzip", ref: str = "1") -> str:
    """An OCI image layout directory at `dest` of `layers`; returns the manifest's digest."""
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> str:
        digest = sha256(data)
        (blobs / digest[7:]).write_bytes(data)
        return digest

    cfg = config(layers)
    descs = []
    for x in layers:
        blob, media = _compress(x, compression)
        descs.append({"mediaType": media, "digest": put(blob), "size": len(blob)})
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": put(cfg),
                "size": len(cfg),
            },
            "layers": descs,
        }
    ).encode()
    mdigest = put(manifest)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": mdigest,
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": ref},
            }
        ],
    }
    (dest / "index.json").write_text(json.dumps(index))
    (dest / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return mdigest
