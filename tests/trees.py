"""Real trees for the package, SBOM and vulnerability tests, built once and cached across runs.

* :func:`debian_minbase`: ``debootstrap --variant=minbase bookworm`` from the machine's Debian
  mirror (a minute or two the first time).
* :func:`old_pypi_venv`: a venv with real old releases from PyPI (pure Python, ``--no-deps``) of
  packages that have advisories in ../shared/data/osv: :data:`OLD_PYPI`.

Each tree is built into ``/var/tmp/stockade-test-cache/<name>-<key>`` (the key is a hash of what
builds it), under a lock, renamed into place only when complete: parallel test sessions on the
machine share one build, and a half-built tree is never used. conftest.py turns them into
session fixtures (``debian_rootfs``, ``old_venv``).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final

from helpers import need

CACHE: Final = Path(os.environ.get("STOCKADE_TEST_CACHE", "/var/tmp/stockade-test-cache"))

#: (name, version) of old pure-Python releases with advisories in ../shared/data/osv/pypa
OLD_PYPI: Final = (
    ("django", "3.2"),
    ("flask", "0.12.2"),
    ("bleach", "3.1.0"),
    ("certifi", "2022.9.24"),
    ("future", "0.18.2"),
    ("cookiecutter", "2.1.0"),
    ("bottle", "0.12.18"),
    ("babel", "2.9.0"),
)


def cached_tree(name: str, recipe: str, build: Callable[[Path], None]) -> Path:
    """The cached directory for `name` built by `build(dest)` (`recipe` names what it builds: a
    change to it builds anew)."""
    key = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    final = CACHE / f"{name}-{key}"
    if final.is_dir():
        return final
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.is_dir():
            return final
        work = CACHE / f"{name}-{key}.part"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        try:
            build(work)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        work.rename(final)
    return final


def _run(args: list[str], what: str, timeout: float = 900) -> None:
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError(f"{what} failed ({r.returncode}): {(r.stderr or r.stdout)[-2000:]}")


def debian_minbase() -> Path:
    """A Debian bookworm minbase root filesystem (root needed; debootstrap from DEBS)."""
    need(os.geteuid() == 0, "debootstrap needs root")
    need(shutil.which("debootstrap"), "debootstrap is not installed (scripts/install.sh installs it)")
    mirror = os.environ.get("STOCKADE_DEBIAN_MIRROR", "http://deb.debian.org/debian")

    def build(dest: Path) -> None:
        root = dest / "rootfs"
        _run(["debootstrap", "--variant=minbase", "bookworm", str(root), mirror], "debootstrap")
        # the apt caches are not part of what a scanner should see
        shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)

    return cached_tree("debian-minbase", f"bookworm minbase {mirror}", build) / "rootfs"


def old_pypi_venv() -> Path:
    """A venv holding :data:`OLD_PYPI` (real wheels and sdists from PyPI, no dependencies)."""
    specs = [f"{n}=={v}" for n, v in OLD_PYPI]

    def build(dest: Path) -> None:
        venv = dest / "venv"
        _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], "venv")
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                str(venv / "bin/python"),
                "install",
                "-q",
                "--no-deps",
                "--disable-pip-version-check",
                *specs,
            ],
            "pip install of old releases",
        )

    return cached_tree("old-pypi-venv", " ".join(specs) + sys.version, build) / "venv"
