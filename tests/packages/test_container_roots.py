"""A running podman container's packages: its root through /proc/<pid>/root, its image's layers
apart from what it changed (stockade.inventory.roots)."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from containers import PodmanFactory
from helpers import need
from stockade.errors import UsageError
from stockade.inventory.roots import catalog_container, image_view, process_root
from stockade.packages.walk import catalog_tree

pytestmark = [pytest.mark.root, pytest.mark.containers]

#: how many of the Debian tree's packages the image's status file keeps
KEEP = 12


@pytest.fixture(scope="module")
def dpkg_image(
    busybox_rootfs: Path,
    debian_rootfs: Path,
    podman_conf: Path,  # noqa: ARG001 (CONTAINERS_CONF for the session)
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """A podman image: the busybox tree with Debian's os-release and the first :data:`KEEP` stanzas of
    the minbase tree's dpkg status (a real one); removed at the end of the module."""
    podman = need(shutil.which("podman"), "needs podman")
    root = tmp_path_factory.mktemp("dpkg-image") / "rootfs"
    shutil.copytree(busybox_rootfs, root, symlinks=True)
    (root / "var/lib/dpkg").mkdir(parents=True)
    shutil.copy(debian_rootfs / "etc/os-release", root / "etc/os-release")
    stanzas = (debian_rootfs / "var/lib/dpkg/status").read_text().split("\n\n")
    (root / "var/lib/dpkg/status").write_text("\n\n".join(stanzas[:KEEP]) + "\n")
    tar = root.parent / "image.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(root, arcname=".")
    name = f"localhost/stockade-test-dpkg-{secrets.token_hex(4)}:latest"
    r = subprocess.run([podman, "import", str(tar), name], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    try:
        yield name
    finally:
        subprocess.run([podman, "rmi", "-f", name], capture_output=True, timeout=120)


@pytest.fixture
def dpkg_container(dpkg_image: str) -> Iterator[PodmanFactory]:
    """Podman containers of :func:`dpkg_image`, removed at the end of the test."""
    factory = PodmanFactory(shutil.which("podman") or "podman", dpkg_image)
    try:
        yield factory
    finally:
        factory.cleanup()


def test_running_container_packages_and_what_it_added(dpkg_container: PodmanFactory) -> None:
    c = dpkg_container()
    got = catalog_container(c.pid)
    assert got.image is not None, got.reason
    assert len(got.running.packages) == KEEP and got.added() == [] and got.removed() == []
    assert {p.key for p in got.image.packages} == {p.key for p in got.running.packages}
    # the container "installs" a package and removes one: dpkg's status file is copied up
    first = got.running.packages[0].name
    script = (
        "printf '\\nPackage: stk-added\\nStatus: install ok installed\\nArchitecture: all\\nVersion: 1.0-1\\n'"
        f" >> /var/lib/dpkg/status && sed -i '/^Package: {first}$/,/^$/s/^Status: .*/Status: deinstall ok "
        "config-files/' /var/lib/dpkg/status"
    )
    r = c.exec(["sh", "-c", script])
    assert r.returncode == 0, r.stderr
    after = catalog_container(c.pid)
    assert after.image is not None and after.layers is not None and after.layers.upper
    assert [(p.name, p.version) for p in after.added()] == [("stk-added", "1.0-1")]
    removed = after.removed()
    assert [p.name for p in removed] == [first], [p.name for p in removed]
    assert all(p.ecosystem == "Debian" and p.distro == "12" for p in after.running.packages)
    # the same packages as a walk of the process's root
    assert {p.key for p in catalog_tree(process_root(c.pid)).packages} == {
        p.key for p in after.running.packages
    }


def test_no_such_process_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no such process"):
        process_root(2**22 + 7)


def test_image_view_stacks_several_layers(tmp_path: Path) -> None:
    """Several lower layers are seen as the container sees them: the top one's files win."""
    top, base = tmp_path / "top", tmp_path / "base"
    for layer, pkg in ((top, "new"), (base, "old")):
        (layer / "var/lib/dpkg").mkdir(parents=True)
        (layer / "var/lib/dpkg/status").write_text(
            f"Package: {pkg}\nStatus: install ok installed\nVersion: 1\n"
        )
    (base / "etc").mkdir()
    (base / "etc/os-release").write_text("ID=debian\nVERSION_ID=12\n")
    with image_view((str(top), str(base))) as view:
        assert view not in (top, base)
        pkgs = catalog_tree(view).packages
    assert [(p.name, p.distro) for p in pkgs] == [("new", "12")]
    assert not view.exists()  # unmounted and removed afterwards
