"""Images unpacked into one tree: podman's three save formats agree; whiteouts; hostile archives."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
import stat
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from image_archives import Entry, docker_archive, layer, oci_layout, sha256
from stockade.errors import UsageError
from stockade.packages.image import is_image_path, unpacked


def snapshot(root: Path) -> dict[str, tuple[str, ...]]:
    """Every path under `root`: its kind, whether it is executable, and its content or link target."""
    out: dict[str, tuple[str, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            host = Path(dirpath) / name
            inner = "/" + str(host.relative_to(root))
            st = os.lstat(host)
            if stat.S_ISLNK(st.st_mode):
                out[inner] = ("link", os.readlink(host))
            elif stat.S_ISDIR(st.st_mode):
                out[inner] = ("dir",)
            else:
                digest = hashlib.sha256(host.read_bytes()).hexdigest()
                out[inner] = ("file", str(bool(st.st_mode & 0o100)), digest)
    return out


# -- hand-made archives: exact layers, hostile members -----------------------------------------

BASE = layer(
    [
        Entry("etc/", "dir", mode=0o755),
        Entry("etc/a.conf", data=b"a"),
        Entry("etc/keep.conf", data=b"keep"),
        Entry("bin/", "dir", mode=0o755),
        Entry("bin/tool", data=b"#!/bin/sh\n", mode=0o4755),
        Entry("bin/alias", "hardlink", link="bin/tool"),
        Entry("app/", "dir", mode=0o755),
        Entry("app/old.txt", data=b"old"),
        Entry("app/dir/", "dir", mode=0o755),
        Entry("app/dir/inner.txt", data=b"inner"),
        # hostile: out of the root, through links that point out of it, outside hardlinks, devices
        Entry("../escape.txt", data=b"x"),
        Entry("out", "symlink", link="/"),
        Entry("up", "symlink", link="../../../../.."),
        Entry("out/through-abs.txt", data=b"abs"),
        Entry("up/through-rel.txt", data=b"rel"),
        Entry("steal", "hardlink", link="../../../../etc/passwd"),
        Entry("dev/", "dir", mode=0o755),
        Entry("dev/null", "chardev", mode=0o666),
        Entry("dev/fifo", "fifo"),
    ]
)
UPPER = layer(
    [
        Entry("app/.wh.old.txt"),
        Entry("app/dir/", "dir", mode=0o755),
        Entry("app/dir/.wh..wh..opq"),
        Entry("app/dir/new.txt", data=b"new"),
        Entry("etc/.wh.a.conf"),
        Entry("etc/a.conf", data=b"again"),  # whited out below, written again in the same layer
        Entry("bin/.wh.alias"),
        Entry(".wh..."),  # a whiteout of the root's parent: refused
        Entry("app/.wh.."),
    ]
)


def check_hand_made(tree_root: Path, layer_of: dict[str, str | None], outside: Path) -> None:
    snap = snapshot(tree_root)
    assert "/app/old.txt" not in snap  # whiteout
    assert "/app/dir/inner.txt" not in snap  # opaque directory
    assert snap["/app/dir/new.txt"][0] == "file"
    assert (tree_root / "etc/a.conf").read_bytes() == b"again"
    assert "/bin/alias" not in snap
    assert (tree_root / "etc/keep.conf").read_bytes() == b"keep"
    # links through which members were written: resolved inside the tree, never on the host
    assert os.readlink(tree_root / "out") == "/"
    assert (tree_root / "through-abs.txt").read_bytes() == b"abs"
    assert (tree_root / "through-rel.txt").read_bytes() == b"rel"
    assert not (outside / "escape.txt").exists() and not (outside.parent / "escape.txt").exists()
    assert "/steal" not in snap and "/escape.txt" not in snap
    assert "/dev/null" not in snap and "/dev/fifo" not in snap
    mode = os.stat(tree_root / "bin/tool").st_mode
    assert mode & 0o111 and not mode & (stat.S_ISUID | stat.S_ISGID)
    assert layer_of == {
        "/etc/keep.conf": sha256(BASE),
        "/etc/a.conf": sha256(UPPER),
        "/app/dir/new.txt": sha256(UPPER),
        "/app/old.txt": None,
        "/app/dir/inner.txt": None,
    }


@pytest.mark.parametrize("kind", ["docker-archive", "oci-gzip", "oci-zstd", "oci-plain"])
def test_a_hand_made_image_unpacks_safely(tmp_path: Path, kind: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    if kind == "docker-archive":
        path = tmp_path / "image.tar"
        docker_archive(path, [BASE, UPPER])
    else:
        path = tmp_path / "layout"
        oci_layout(path, [BASE, UPPER], compression=kind.removeprefix("oci-"))
    with unpacked(path, workdir=work) as image:
        paths = ("/etc/keep.conf", "/etc/a.conf", "/app/dir/new.txt", "/app/old.txt", "/app/dir/inner.txt")
        check_hand_made(image.root, {p: image.layer_of(p) for p in paths}, work)
        assert image.layers == [sha256(BASE), sha256(UPPER)]
        assert image.config["config"]["ExposedPorts"] == {"8080/tcp": {}}
        assert image.skipped == 2  # the device node and the FIFO
        errors = dict(image.errors)
        assert "../escape.txt" in errors and "steal" in errors and "/.wh..." in errors, image.errors
        assert (image.root / "app/dir/new.txt").exists()
        root = image.root
    assert not root.exists()
    assert list(work.iterdir()) == []  # all removed, nothing written beside


def test_what_is_not_an_image_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(os.urandom(2048))
    with pytest.raises(UsageError, match=re.escape(f"{junk}: not an image archive")), unpacked(junk):
        pass
    plain = tmp_path / "plain.tar"
    with tarfile.open(plain, "w") as tf:
        tf.add(junk, arcname="junk.bin")
    with pytest.raises(UsageError, match=r"no manifest\.json"), unpacked(plain):
        pass
    layout = tmp_path / "layout"
    oci_layout(layout, [BASE])
    index = json.loads((layout / "index.json").read_text())
    index["manifests"].append(
        dict(index["manifests"][0], annotations={"org.opencontainers.image.ref.name": "2"})
    )
    (layout / "index.json").write_text(json.dumps(index))
    with pytest.raises(UsageError, match=r"2 images in one OCI index \(1, 2\)"), unpacked(layout):
        pass


# -- a real image built by podman, saved in its three formats --------------------------------------

CONTAINERFILE = """\
FROM {base}
RUN rm /bin/wget && rm -r /etc/group && mkdir -p /app/sub && echo t > /app/sub/t.txt && ln -s /app/sub/t.txt /app/link
COPY new.txt /app/new.txt
COPY run.sh /app/run.sh
"""


@dataclass
class Built:
    ref: str
    saves: dict[str, Path]
    image_id: str


def _podman(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def built_image(podman_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """An image of four layers (the busybox base, a RUN that deletes, two COPYs), saved three ways."""
    ctx = tmp_path_factory.mktemp("image-ctx")
    (ctx / "Containerfile").write_text(CONTAINERFILE.format(base=podman_image))
    (ctx / "new.txt").write_text("new\n")
    (ctx / "run.sh").write_text("#!/bin/sh\necho run\n")
    os.chmod(ctx / "run.sh", 0o755)
    ref = f"localhost/stockade-test-layers-{secrets.token_hex(4)}:1"
    r = _podman("build", "-q", "-t", ref, str(ctx))
    assert r.returncode == 0, r.stderr
    try:
        out = tmp_path_factory.mktemp("image-saves")
        saves = {"docker-archive": out / "d.tar", "oci-archive": out / "o.tar", "oci-dir": out / "dir"}
        for fmt, dest in saves.items():
            r = _podman("image", "save", "-q", "--format", fmt, "-o", str(dest), ref)
            assert r.returncode == 0, r.stderr
        image_id = _podman("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()
        yield Built(ref=ref, saves=saves, image_id=image_id)
    finally:
        _podman("rmi", "-f", ref)


@pytest.mark.root
@pytest.mark.containers
def test_podman_saves_unpack_to_one_tree(built_image: Built, busybox_rootfs: Path) -> None:
    trees = {}
    for fmt, path in [*built_image.saves.items(), ("reference", Path(built_image.ref))]:
        with unpacked(path if fmt != "reference" else built_image.ref) as image:
            snap = snapshot(image.root)
            assert image.errors == [] and image.skipped == 0, (fmt, image.errors)
            assert image.id == f"sha256:{built_image.image_id}", fmt
            assert image.repo_tags == [built_image.ref], fmt
            assert len(image.layers) == 4
            base, run, copy, copy_script = image.layers
            assert image.layer_of("/bin/busybox") == base
            assert image.layer_of("/app/sub/t.txt") == run
            assert image.layer_of("/app/link") == run
            assert image.layer_of("/app/new.txt") == copy
            assert image.layer_of("/app/run.sh") == copy_script
            assert image.layer_of("/bin/wget") is None
            assert image.config["config"]["Env"]
            trees[fmt] = (snap, image.layers)
    first = trees["docker-archive"]
    for fmt, other in trees.items():
        assert other == first, fmt
    snap = first[0]
    assert "/bin/wget" not in snap and "/etc/group" not in snap  # deleted in the RUN layer
    assert "/bin/cat" in snap and "/etc/passwd" in snap
    assert snap["/app/run.sh"][1] == "True"  # executable kept
    assert snap["/bin/busybox"] == (
        "file",
        "True",
        hashlib.sha256((busybox_rootfs / "bin/busybox").read_bytes()).hexdigest(),
    )
    assert snap["/app/link"] == ("link", "/app/sub/t.txt")


@pytest.mark.root
@pytest.mark.containers
@pytest.mark.usefixtures("podman_conf")
def test_an_unknown_reference_is_a_clear_error() -> None:
    ref = "localhost/no-such-image-here:1"
    with pytest.raises(UsageError, match=f"{ref}: not a file, a directory or a podman image"), unpacked(ref):
        pass


def test_layers_named_through_links_and_a_web_manifest(tmp_path: Path) -> None:
    # an older docker-archive: the manifest names <id>/layer.tar, a link to the layer's blob
    cfg = b'{"os": "linux", "rootfs": {"type": "layers", "diff_ids": ["%s"]}}' % sha256(UPPER).encode()
    archive = tmp_path / "linked.tar"
    with tarfile.open(archive, "w") as tf:
        for name, data in (("blob.tar", UPPER), ("cfg.json", cfg)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("abc/layer.tar")
        link.type, link.linkname = tarfile.SYMTYPE, "../blob.tar"
        tf.addfile(link)
        manifest = json.dumps(
            [{"Config": "cfg.json", "RepoTags": None, "Layers": ["abc/layer.tar"]}]
        ).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tf.addfile(info, io.BytesIO(manifest))
    with unpacked(archive) as image:
        assert (image.root / "app/dir/new.txt").read_bytes() == b"new"
        assert image.repo_tags == [] and image.layers == [sha256(UPPER)]
    # a project with a web app's manifest.json is a directory to catalog, not an image
    project = tmp_path / "project"
    project.mkdir()
    (project / "manifest.json").write_text('{"name": "app", "icons": []}')
    assert not is_image_path(project)
    (project / "manifest.json").write_text('[{"Config": "c.json", "Layers": []}]')
    assert is_image_path(project)


@pytest.mark.root
@pytest.mark.containers
def test_stockade_sbom_of_a_podman_reference(built_image: Built) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKADE_")}
    stockade = str(Path(sys.executable).parent / "stockade")
    r = subprocess.run(
        [stockade, "sbom", built_image.ref], capture_output=True, text=True, timeout=300, env=env, check=False
    )
    assert r.returncode == 0, r.stderr
    meta = json.loads(r.stdout)["metadata"]["component"]
    assert (meta["type"], meta["name"], meta["version"]) == (
        "container",
        built_image.ref,
        f"sha256:{built_image.image_id}",
    )
    layers = [p["value"] for p in meta["properties"] if p["name"] == "stockade:image:layer"]
    assert len(layers) == 4
