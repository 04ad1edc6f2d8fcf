"""Container images unpacked into a flattened root filesystem, layer by layer, with whiteouts applied.

:func:`unpacked` reads

* a ``docker save`` / ``podman image save`` tarball (docker-archive: ``manifest.json``, a config
  and one tar per layer; the whole tarball may be gzip-compressed),
* an OCI archive (``podman image save --format oci-archive``) or an OCI layout directory
  (``--format oci-dir``: ``oci-layout``, ``index.json``, ``blobs/sha256/...``),
* a local podman image by reference (``localhost/app:1.0``), through ``podman image save`` to a
  temporary file,

and unpacks the layers, bottom first, into a temporary directory removed on exit. Layers may be
plain, gzip or zstd tars. Whiteouts are applied as the OCI image spec says: ``.wh.NAME`` deletes
``NAME`` from the layers below, ``.wh..wh..opq`` empties its directory of what the layers below
put there.

Extraction is safe against hostile archives: member paths are taken relative to the tree's root,
``..`` never leaves it, a symlink is never followed out of the tree (a parent directory that is a
symlink is resolved inside the tree, like a container runtime does), hardlinks must point inside
the tree, device nodes and FIFOs are not made (counted in :attr:`ImageTree.skipped`), setuid and
setgid bits are dropped, ownership is not kept; the permission bits are, so executables stay
executable. A member that cannot be written is recorded in :attr:`ImageTree.errors` and the
unpacking goes on.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import platform
import posixpath
import shutil
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol, cast

from stockade.errors import Location, UsageError
from stockade.packages.cataloger import Tree, UnreadableFile

__all__ = ["ImageTree", "is_image_path", "unpacked"]

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
#: how long `podman image save` may take
SAVE_TIMEOUT_S = 600
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le"}


@dataclass(slots=True)
class ImageTree:
    """An unpacked image: its flattened filesystem at :attr:`root`, and what the image says of itself."""

    #: the flattened filesystem (removed when :func:`unpacked` exits)
    root: Path
    #: ``sha256:...``: the manifest's digest where the archive has one (OCI), else the config's
    digest: str
    #: ``sha256:...`` of the image config: the image id podman and docker show
    id: str
    #: ``repo:tag`` names the archive gives the image (``localhost/app:1.0``)
    repo_tags: list[str]
    #: the layers' diff_ids (digests of the uncompressed layer tars), bottom first
    layers: list[str]
    #: the image config document (OCI image config: ``architecture``, ``os``, ``created``,
    #: ``config`` with ``Env``, ``Entrypoint``, ``Cmd``, ``User``, ``ExposedPorts``, ``Labels``,
    #: ``WorkingDir``; ``rootfs``; ``history``)
    config: dict[str, Any]
    #: what the image was read from (a file, a directory or a podman reference)
    source: str = ""
    #: (member path inside the layer, reason) of what could not be unpacked
    errors: list[tuple[str, str]] = field(default_factory=list)
    #: device nodes, FIFOs and sockets not made
    skipped: int = 0
    _owner: dict[str, str] = field(default_factory=dict, repr=False)

    def layer_of(self, inner_path: str) -> str | None:
        """The diff_id of the layer that last wrote `inner_path` (``/``-rooted), or None when the
        flattened image has no such path."""
        return self._owner.get(_norm(inner_path))


# -- where the image's files are: an archive or a directory -------------------------------------


class _Source(Protocol):
    """A docker-archive or OCI layout, read from a tarball or a directory."""

    def exists(self, name: str) -> bool: ...

    def open(self, name: str) -> IO[bytes]: ...


class _DirSource:
    def __init__(self, base: Path) -> None:
        self.base = base

    def _path(self, name: str) -> Path:
        parts = [p for p in name.split("/") if p and p != "."]
        if ".." in parts:
            raise UsageError(f"{name!r}: a path that leaves the image", Location(file=str(self.base)))
        return self.base.joinpath(*parts)

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def open(self, name: str) -> IO[bytes]:
        try:
            return open(self._path(name), "rb")
        except OSError as e:
            raise UsageError(f"{name}: {e.strerror or e}", Location(file=str(self.base))) from e


class _TarSource:
    def __init__(self, tf: tarfile.TarFile, path: Path) -> None:
        self.tf = tf
        self.path = path
        members = tf.getmembers()
        self.members = {m.name.removeprefix("./"): m for m in members if m.isfile()}
        # a layer named through a symlink (old docker-archives: ``<id>/layer.tar -> ../<digest>.tar``)
        for m in members:
            if m.issym():
                target = posixpath.normpath(posixpath.join(posixpath.dirname(m.name), m.linkname))
                if (found := self.members.get(target.removeprefix("./"))) is not None:
                    self.members.setdefault(m.name.removeprefix("./"), found)

    def exists(self, name: str) -> bool:
        return name.removeprefix("./") in self.members

    def open(self, name: str) -> IO[bytes]:
        m = self.members.get(name.removeprefix("./"))
        f = self.tf.extractfile(m) if m is not None else None
        if f is None:
            raise UsageError(f"{name}: not in the archive", Location(file=str(self.path)))
        return f


def _read_json(src: _Source, name: str, where: str) -> Any:
    with src.open(name) as f:
        data = f.read()
    try:
        return json.loads(data)
    except ValueError as e:
        raise UsageError(f"{name}: not JSON ({e})", Location(file=where)) from e


def _blob(digest: str) -> str:
    alg, _, hexa = digest.partition(":")
    if not alg or not hexa or "/" in alg or "/" in hexa or ".." in hexa:
        raise UsageError(f"{digest!r}: not a digest")
    return f"blobs/{alg}/{hexa}"


# -- the image's layers, config and names --------------------------------------------------------


@dataclass(slots=True)
class _Image:
    digest: str
    id: str
    repo_tags: list[str]
    config: dict[str, Any]
    #: names of the layer blobs in the source, bottom first
    layer_files: list[str]


def _sha256_of(src: _Source, name: str) -> str:
    h = hashlib.sha256()
    with src.open(name) as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def _pick(entries: list[Any], names: list[list[str]], where: str, what: str) -> int:
    """Index of the one image in `entries` (a file holding several is an error naming them)."""
    if len(entries) == 1:
        return 0
    if not entries:
        raise UsageError(f"no image in the {what}", Location(file=where))
    listed = ", ".join(" ".join(n) or "(unnamed)" for n in names)
    raise UsageError(
        f"{len(entries)} images in one {what} ({listed}); save one image per file", Location(file=where)
    )


def _docker_image(src: _Source, where: str) -> _Image:
    manifest = _read_json(src, "manifest.json", where)
    if not isinstance(manifest, list) or not all(isinstance(m, dict) for m in manifest):
        raise UsageError("manifest.json: not a list of images", Location(file=where, item="manifest.json"))
    i = _pick(manifest, [list(m.get("RepoTags") or []) for m in manifest], where, "docker archive")
    entry = manifest[i]
    config_name, layers = entry.get("Config"), entry.get("Layers")
    if not isinstance(config_name, str) or not isinstance(layers, list):
        raise UsageError(
            "an image without Config or Layers", Location(file=where, item=f"manifest.json[{i}]")
        )
    config = _read_json(src, config_name, where)
    image_id = _sha256_of(src, config_name)
    return _Image(
        digest=image_id,
        id=image_id,
        repo_tags=[str(t) for t in entry.get("RepoTags") or []],
        config=config if isinstance(config, dict) else {},
        layer_files=[str(x) for x in layers],
    )


def _platform_ok(desc: dict[str, Any]) -> bool:
    plat = desc.get("platform")
    if not isinstance(plat, dict):
        return True
    arch = _ARCHES.get(platform.machine(), platform.machine())
    return bool(plat.get("os", "linux") == "linux" and plat.get("architecture", arch) == arch)


def _oci_image(src: _Source, where: str) -> _Image:
    index = _read_json(src, "index.json", where)
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list):
        raise UsageError("index.json: no manifests", Location(file=where, item="index.json"))
    descs = [m for m in manifests if isinstance(m, dict)]

    def names(d: dict[str, Any]) -> list[str]:
        ann = d.get("annotations") or {}
        return [
            str(v)
            for k, v in ann.items()
            if k in ("io.containerd.image.name", "org.opencontainers.image.ref.name")
        ]

    desc = descs[_pick(descs, [names(d) for d in descs], where, "OCI index")]
    tags = names(desc)
    manifest = _read_json(src, _blob(str(desc.get("digest"))), where)
    # an index of per-platform manifests (nested once or more): the one for this machine
    for _ in range(4):
        if not isinstance(manifest, dict) or "manifests" not in manifest:
            break
        subs = [m for m in manifest.get("manifests") or [] if isinstance(m, dict) and _platform_ok(m)]
        if not subs:
            raise UsageError("no manifest for this machine's platform", Location(file=where))
        desc = subs[0]
        manifest = _read_json(src, _blob(str(desc.get("digest"))), where)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("config"), dict):
        raise UsageError(
            "an image manifest without a config", Location(file=where, item=str(desc.get("digest")))
        )
    config_digest = str(manifest["config"].get("digest"))
    config = _read_json(src, _blob(config_digest), where)
    layers = [str(layer.get("digest")) for layer in manifest.get("layers") or [] if isinstance(layer, dict)]
    # the short names of a tag (``org.opencontainers.image.ref.name`` is often only the tag)
    if src.exists("manifest.json"):
        with contextlib.suppress(UsageError):
            tags = _docker_image(src, where).repo_tags or tags
    return _Image(
        digest=str(desc.get("digest")),
        id=config_digest,
        repo_tags=tags,
        config=config if isinstance(config, dict) else {},
        layer_files=[_blob(d) for d in layers],
    )


# -- unpacking -----------------------------------------------------------------------------------


def _norm(inner: str) -> str:
    parts = [p for p in inner.split("/") if p and p != "."]
    return "/" + "/".join(parts) if parts else "/"


def _decompressed(f: IO[bytes]) -> IO[bytes]:
    """`f` (a layer blob) as a plain tar stream, whatever its compression (sniffed, not trusted
    from the media type)."""
    raw = f if isinstance(f, io.BufferedReader) else io.BufferedReader(cast(io.RawIOBase, f))
    head = raw.peek(4)[:4]
    if head.startswith(_GZIP_MAGIC):
        return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
    if head == _ZSTD_MAGIC:
        import zstandard

        return cast(IO[bytes], zstandard.ZstdDecompressor().stream_reader(raw))
    return cast(IO[bytes], raw)


class _Unpacker:
    """Applies layers onto `root`, recording which layer owns each path."""

    def __init__(self, image: ImageTree) -> None:
        self.image = image
        self.root = image.root
        self.tree = Tree(image.root)
        #: paths written by the layer being applied (its own files are not whited out by it)
        self.this_layer: set[str] = set()
        #: parent directory (inside) -> its host path, resolved once; forgotten when a link is
        #: made or anything removed (either can change how a path resolves)
        self._parents: dict[str, Path] = {}
        self._prefix = str(self.root) + os.sep

    def _host(self, inner: str) -> Path | None:
        """The host path of `inner`: its parent resolved inside the tree, its last part not followed."""
        parent, _, name = inner.rpartition("/")
        if name in ("", ".", ".."):
            return None  # never the root itself or a directory above it
        base = self._parents.get(parent)
        if base is None:
            try:
                base = self.tree.host_path(parent or "/")
            except UnreadableFile:
                return None
            # the resolution never leaves the root; say so, in case of a bug there
            if base != self.root and not str(base).startswith(self._prefix):
                return None
            self._parents[parent] = base
        return base / name

    def _remove(self, host: Path, inner: str) -> None:
        """Delete what is at `host` (a file, link or a whole directory), forgetting its owners."""
        self._parents.clear()
        try:
            st = os.lstat(host)
        except OSError:
            return
        if stat.S_ISDIR(st.st_mode):
            for dirpath, dirnames, filenames in os.walk(host):
                rel = os.path.relpath(dirpath, host)
                base = inner if rel == "." else f"{inner}/{rel}"
                for n in dirnames + filenames:
                    self.image._owner.pop(f"{base}/{n}", None)
            shutil.rmtree(host, ignore_errors=True)
        else:
            host.unlink(missing_ok=True)
        self.image._owner.pop(inner, None)

    def _whiteout(self, inner: str, name: str) -> None:
        parent = inner.rpartition("/")[0] or "/"
        if name == OPAQUE:
            try:
                host_dir = self.tree.host_path(parent)
            except UnreadableFile:
                return
            if not host_dir.is_dir() or not str(host_dir).startswith(str(self.root)):
                return
            for child in os.listdir(host_dir):
                child_inner = f"{parent.rstrip('/')}/{child}"
                if child_inner not in self.this_layer:
                    self._remove(host_dir / child, child_inner)
            return
        if name.startswith(WHITEOUT + WHITEOUT):
            return  # aufs's own bookkeeping (.wh..wh.plnk and the like)
        target = f"{parent.rstrip('/')}/{name[len(WHITEOUT) :]}"
        if target in self.this_layer:
            return
        host = self._host(target)
        if host is None:
            self.image.errors.append((inner, "a whiteout of nothing the image can hold"))
            return
        self._remove(host, target)

    def apply(self, stream: IO[bytes], diff_id: str) -> None:
        self.this_layer = set()
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tf:
                for m in tf:
                    self._member(tf, m, diff_id)
        except (tarfile.TarError, OSError, EOFError) as e:
            self.image.errors.append((diff_id, f"layer not read to its end: {e}"))

    def _member(self, tf: tarfile.TarFile, m: tarfile.TarInfo, diff_id: str) -> None:
        inner = _norm(m.name)
        if inner == "/" or ".." in inner.split("/"):
            if inner != "/":
                self.image.errors.append((m.name, "a path outside the image's root"))
            return
        name = inner.rpartition("/")[2]
        if name.startswith(WHITEOUT):
            self._whiteout(inner, name)
            return
        if not (m.isdir() or m.isreg() or m.issym() or m.islnk()):
            self.image.skipped += 1
            return
        host = self._host(inner)
        if host is None:
            self.image.errors.append((m.name, "its directory is not in the image"))
            return
        try:
            self._write(tf, m, inner, host)
        except OSError as e:
            self.image.errors.append((m.name, e.strerror or str(e)))
            return
        self.this_layer.add(inner)
        self.image._owner[inner] = diff_id

    def _write(self, tf: tarfile.TarFile, m: tarfile.TarInfo, inner: str, host: Path) -> None:
        if not host.parent.is_dir():
            # a parent the layer does not list (allowed by tar): made as a plain directory
            host.parent.mkdir(parents=True, exist_ok=True)
        try:
            existing = os.lstat(host)
        except FileNotFoundError:
            existing = None
        mode = m.mode & 0o1777  # setuid and setgid dropped
        if m.isdir():
            if existing is not None and not stat.S_ISDIR(existing.st_mode):
                self._remove(host, inner)
                existing = None
            if existing is None:
                os.mkdir(host)
            # the owner may always enter and change it (the tree is removed at the end)
            os.chmod(host, mode | 0o700)
            return
        if existing is not None:
            self._remove(host, inner)
        if m.issym():
            os.symlink(m.linkname, host)
            self._parents.clear()
            return
        if m.islnk():
            target = self._host(_norm(m.linkname))
            if target is None or not os.path.lexists(target):
                raise OSError(0, f"hardlink to {m.linkname!r}, which is not in the image")
            os.link(target, host, follow_symlinks=False)
            return
        src = tf.extractfile(m)
        fd = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            if src is not None:
                shutil.copyfileobj(src, out, 1 << 20)
        os.chmod(host, mode | 0o600)


def _unpack(src: _Source, image: _Image, dest: Path, where: str) -> ImageTree:
    diff_ids = (image.config.get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != len(image.layer_files):
        diff_ids = []
    tree = ImageTree(
        root=dest,
        digest=image.digest,
        id=image.id,
        repo_tags=image.repo_tags,
        layers=[],
        config=image.config,
        source=where,
    )
    unpacker = _Unpacker(tree)
    for i, name in enumerate(image.layer_files):
        if not src.exists(name):
            raise UsageError(f"layer {name} is missing", Location(file=where))
        diff_id = str(diff_ids[i]) if diff_ids else _sha256_of(src, name)
        tree.layers.append(diff_id)
        with src.open(name) as f:
            unpacker.apply(_decompressed(f), diff_id)
    return tree


def _docker_manifest(path: Path) -> bool:
    """Whether `path` is a docker-archive ``manifest.json`` (a list of images with ``Layers``),
    not some project's web manifest."""
    try:
        if path.stat().st_size > 16 * 2**20:
            return False
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(doc, list) and bool(doc) and all(isinstance(m, dict) and "Layers" in m for m in doc)


def is_image_path(path: str | Path) -> bool:
    """Whether `path` is an image archive or an image layout directory (not a root filesystem)."""
    p = Path(path)
    if p.is_dir():
        oci = (p / "index.json").is_file() and (p / "oci-layout").is_file()
        return oci or _docker_manifest(p / "manifest.json")
    return p.is_file()


@contextlib.contextmanager
def _from_file(path: Path, dest: Path) -> Iterator[ImageTree]:
    where = str(path)
    try:
        tf = tarfile.open(path, "r:*")  # noqa: SIM115 (closed by the with below; errors said first)
    except (tarfile.TarError, OSError) as e:
        raise UsageError(f"not an image archive (a tar file): {e}", Location(file=where)) from e
    with tf:
        src = _TarSource(tf, path)
        if src.exists("index.json"):
            image = _oci_image(src, where)
        elif src.exists("manifest.json"):
            image = _docker_image(src, where)
        else:
            raise UsageError(
                "not an image archive: no manifest.json (docker-archive) or index.json (OCI)",
                Location(file=where),
            )
        yield _unpack(src, image, dest, where)


@contextlib.contextmanager
def _from_dir(path: Path, dest: Path) -> Iterator[ImageTree]:
    where = str(path)
    src = _DirSource(path)
    if src.exists("index.json"):
        image = _oci_image(src, where)
    elif src.exists("manifest.json"):
        image = _docker_image(src, where)
    else:
        raise UsageError("not an image layout: no index.json (OCI) or manifest.json", Location(file=where))
    yield _unpack(src, image, dest, where)


def _podman_save(ref: str, dest: Path) -> Path:
    podman = shutil.which("podman")
    if podman is None:
        raise UsageError(
            f"{ref}: no such file or directory (and podman, to save it as an image, is not installed)"
        )
    out = dest / "image.tar"
    try:
        r = subprocess.run(
            [podman, "image", "save", "--format", "docker-archive", "-o", str(out), ref],
            capture_output=True,
            text=True,
            timeout=SAVE_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise UsageError(f"{ref}: podman image save took more than {SAVE_TIMEOUT_S} s") from e
    if r.returncode != 0:
        why = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[-1]
        raise UsageError(f"{ref}: not a file, a directory or a podman image ({why})")
    return out


#: memory-backed, much faster than a disk for the many small files of an image (when roomy)
SHM = Path("/dev/shm")
#: the part of /dev/shm's free space an unpacked image may take
SHM_SHARE = 0.25


def _default_workdir(path: str | Path) -> str | None:
    """``$STOCKADE_TMPDIR``; else /dev/shm when the image (estimated at 3x its archive's size)
    takes at most a quarter of its free space; else the system's temporary directory (None)."""
    if env := os.environ.get("STOCKADE_TMPDIR"):
        return env
    p = Path(path)
    try:
        size = p.stat().st_size if p.is_file() else sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
        free = shutil.disk_usage(SHM).free
    except OSError:
        return None
    if size and os.access(SHM, os.W_OK) and 3 * size <= SHM_SHARE * free:
        return str(SHM)
    return None


@contextlib.contextmanager
def unpacked(path: str | Path, *, workdir: str | Path | None = None) -> Iterator[ImageTree]:
    """The image at `path` (an archive, an OCI layout directory or a podman image reference)
    unpacked into a temporary directory (under `workdir`, else :func:`_default_workdir`'s choice),
    removed when the block exits."""
    if workdir is None:
        workdir = _default_workdir(path)
    tmp = Path(tempfile.mkdtemp(prefix="stockade-image-", dir=workdir))
    try:
        root = tmp / "rootfs"
        root.mkdir()
        p = Path(path)
        if p.is_dir():
            with _from_dir(p, root) as tree:
                yield tree
        elif p.exists():
            with _from_file(p, root) as tree:
                yield tree
        else:
            saved = _podman_save(str(path), tmp)
            with _from_file(saved, root) as tree:
                tree.source = str(path)
                yield tree
    finally:
        _rmtree(tmp)


def _rmtree(path: Path) -> None:
    def fix(func: Any, p: str, _exc: Any) -> None:
        # a directory made read-only by the image: writable again, then removed
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o700)
            func(p)

    shutil.rmtree(path, onerror=fix)
