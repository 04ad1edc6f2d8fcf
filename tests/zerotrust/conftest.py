"""Zero-trust integration fixtures: the test service's images,
and `stockade up` as a real process that a test can stop and start again.

* ``svc_images`` (session): ``localhost/stockade-test-svc:v1`` (busybox + ``/usr/bin/stk-svc``, a
  static HTTP service: tools/stk_svc.c, + ``/usr/bin/stk-report`` + ``/srv/index.html``) and
  ``:v2`` (the same plus ``/usr/bin/stk-extra``: another image digest with one extra binary).
* the tests take their bridge network from ``podman_network`` (tests/containers.py).
* ``stockade_up`` (tests/upctl.py): ``stockade up`` as a real process.
"""

from __future__ import annotations

import os
import shutil
import sys
import tarfile
from pathlib import Path

import pytest

from containers import _run
from helpers import need

STOCKADE = str(Path(sys.executable).parent / "stockade")
TOOLS = Path(__file__).parent / "tools"
SVC_IMAGE = "localhost/stockade-test-svc"
SVC_CMD = '["/usr/bin/stk-svc", "8080"]'


def _build_svc(out: Path) -> Path:
    cc = need(shutil.which("clang") or shutil.which("cc"), "needs clang (scripts/install.sh)")
    r = _run([cc, "-static", "-O2", "-o", str(out), str(TOOLS / "stk_svc.c")])
    assert r.returncode == 0, r.stderr
    return out


def _image(podman: str, root: Path, tag: str, tmp: Path) -> str:
    tar = tmp / f"{tag}.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(root, arcname=".")
    name = f"{SVC_IMAGE}:{tag}"
    r = _run([podman, "import", "--change", f"CMD {SVC_CMD}", str(tar), name], timeout=180)
    assert r.returncode == 0, r.stderr
    return name


@pytest.fixture(scope="session")
def svc_images(
    busybox_rootfs: Path, podman_conf: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The v1 and v2 images of the test service (module docstring), made with `podman_conf`."""
    assert podman_conf.is_file()
    need(os.geteuid() == 0, "needs root")
    podman = need(shutil.which("podman"), "needs podman (apt-get install podman)")
    tmp = tmp_path_factory.mktemp("svc-image")
    svc = _build_svc(tmp / "stk-svc")
    root = tmp / "root"
    shutil.copytree(busybox_rootfs, root, symlinks=True)
    (root / "usr" / "bin").mkdir(parents=True, exist_ok=True)
    for name in ("stk-svc", "stk-report"):
        shutil.copy2(svc, root / "usr" / "bin" / name)
    (root / "srv").mkdir(exist_ok=True)
    (root / "srv" / "index.html").write_text("hello from stk-svc\n")
    (root / "etc" / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    os.chmod(root / "etc" / "shadow", 0o640)
    v1 = _image(podman, root, "v1", tmp)
    shutil.copy2(svc, root / "usr" / "bin" / "stk-extra")
    v2 = _image(podman, root, "v2", tmp)
    return {"v1": v1, "v2": v2}
