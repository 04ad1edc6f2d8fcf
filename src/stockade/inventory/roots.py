"""The packages of a running container: its whole root, and its image's layers against what it changed.

A running container's root is read through ``/proc/<pid>/root`` (the kernel's view of the
process's root in its own mount namespace: no runtime needed, and the same for podman, docker,
containerd, CRI-O and runc). Where the root is an overlay (read from the process's mountinfo, as
the drift check does), the image's layers (``lowerdir``) are catalogued on their own too: the
packages the container added, removed or upgraded since it started are the difference. Several
lower layers are stacked the way the container sees them by a read-only overlay mount of just
those layers in a private directory (unmounted afterwards); one lower layer is read directly.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from stockade.errors import UsageError
from stockade.evidence.fschanges import OverlayLayers
from stockade.model.package import Package
from stockade.packages.walk import Catalog, catalog_tree
from stockade.sensor.containers.drift import root_mount

__all__ = ["ContainerPackages", "catalog_container", "image_view", "overlay_layers", "process_root"]


def process_root(pid: int, proc: str = "/proc") -> Path:
    """The root filesystem of process `pid` as this host sees it (``/proc/<pid>/root``)."""
    root = Path(proc) / str(pid) / "root"
    try:
        os.scandir(root).close()
    except FileNotFoundError as e:
        raise UsageError(f"process {pid}: no such process") from e
    except OSError as e:
        raise UsageError(f"process {pid}: its root {root} cannot be read: {e.strerror or e}") from e
    return root


def overlay_layers(pid: int) -> OverlayLayers | None:
    """The overlay of process `pid`'s root (upper and lower directories), None when it is not one."""
    rm = root_mount(pid)
    if rm is None or rm[0] != "overlay" or not rm[1].get("lowerdir"):
        return None
    opts = rm[1]
    lowers = tuple(x for x in opts["lowerdir"].split(":") if x)
    return OverlayLayers(opts.get("upperdir", ""), lowers)


@contextmanager
def image_view(lowers: tuple[str, ...]) -> Iterator[Path]:
    """A directory showing the stacked `lowers` (top first) as the container's image: the one
    layer itself, or a read-only overlay of them mounted for the block (root needed)."""
    if len(lowers) == 1:
        yield Path(lowers[0])
        return
    with tempfile.TemporaryDirectory(prefix="stockade-image-") as tmp:
        opts = "lowerdir=" + ":".join(lowers)
        r = subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", opts, tmp],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        if r.returncode != 0:
            raise OSError(f"mounting the image's {len(lowers)} layers failed: {r.stderr.strip()}")
        try:
            yield Path(tmp)
        finally:
            subprocess.run(["umount", tmp], capture_output=True, timeout=60, stdin=subprocess.DEVNULL)


@dataclass(slots=True)
class ContainerPackages:
    """What a running container holds (``running``), and what its image held (``image``)."""

    pid: int
    running: Catalog
    #: the image's layers catalogued on their own; None when the root is not an overlay (``reason``)
    image: Catalog | None = None
    reason: str = ""
    layers: OverlayLayers | None = field(default=None)

    def added(self) -> list[Package]:
        """Packages in the running container its image did not have (installed or upgraded since)."""
        if self.image is None:
            return []
        before = {p.key for p in self.image.packages}
        return [p for p in self.running.packages if p.key not in before]

    def removed(self) -> list[Package]:
        """Packages of the image the running container no longer has (removed or upgraded since)."""
        if self.image is None:
            return []
        now = {p.key for p in self.running.packages}
        return [p for p in self.image.packages if p.key not in now]


def catalog_container(pid: int, proc: str = "/proc") -> ContainerPackages:
    """The packages of the container process `pid` runs in, and of its image where it can tell."""
    running = catalog_tree(process_root(pid, proc))
    running.root = f"/proc/{pid}/root"
    layers = overlay_layers(pid)
    if layers is None:
        return ContainerPackages(
            pid, running, reason="the root is not an overlay: no image layers to tell apart"
        )
    try:
        with image_view(layers.lowers) as view:
            image = catalog_tree(view)
    except (OSError, subprocess.SubprocessError, UsageError) as e:
        return ContainerPackages(
            pid, running, reason=f"the image's layers could not be read: {e}", layers=layers
        )
    image.root = "image:" + ":".join(layers.lowers)
    return ContainerPackages(pid, running, image=image, layers=layers)
