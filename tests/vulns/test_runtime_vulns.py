"""Runtime-aware vulnerabilities end to end, in a real `stockade up` with the eBPF sensor.

Two podman containers of one image (Debian's python3 with a real old ``certifi`` from PyPI, from
the ``old_venv`` fixture) both listen on a port; one process imports ``certifi`` once at its start, the
other does not. The first container's certifi findings rank above the second's (loaded: the sensor saw
the module's ``.py`` files opened by the import); the emergency question finds certifi in the image, both containers and the
"host" (``vulnerabilities.host_root`` pointed at the venv), loaded only in the first; the reaction
alerts for the first container only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from containers import PodmanFactory
from helpers import SHARED_DATA, need, wait_until
from trees import debian_python

pytestmark = [pytest.mark.root, pytest.mark.containers, pytest.mark.ebpf, pytest.mark.slow]

RULE = "Vulnerable package loaded and exposed"
SERVE = "import socket, time; s = socket.socket(); s.bind(('0.0.0.0', 8080)); s.listen(); "
#: imports certifi once, then only serves (the module's files are opened at import, never again)
LOADED = SERVE + "import certifi\ntime.sleep(900)"
UNLOADED = SERVE + "time.sleep(900)"


def _site(venv: Path) -> Path:
    return next(venv.glob("lib/python3*/site-packages"))


@pytest.fixture(scope="module")
def certifi_image(old_venv: Path, podman_conf: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``localhost/stockade-test-pycertifi:<key>``: Debian python3 with certifi 2022.9.24 installed
    in /usr/local/lib/python3.11/dist-packages (kept: an import takes a while)."""
    podman = need(shutil.which("podman"), "needs podman")
    tree = debian_python()
    site = _site(old_venv)
    dist = next(site.glob("certifi-*.dist-info"))
    key = hashlib.sha256(f"{tree}|{dist.name}".encode()).hexdigest()[:12]
    ref = f"localhost/stockade-test-pycertifi:{key}"
    env = {**os.environ, "CONTAINERS_CONF": str(podman_conf)}
    if subprocess.run([podman, "image", "exists", ref], env=env, check=False).returncode == 0:
        return ref
    tar = tmp_path_factory.mktemp("pycertifi") / "image.tar"
    dest = "usr/local/lib/python3.11/dist-packages"
    with tarfile.open(tar, "w") as tf:
        tf.add(tree, arcname=".")
        tf.add(site / "certifi", arcname=f"{dest}/certifi", filter=_no_pycache)
        tf.add(dist, arcname=f"{dest}/{dist.name}")
    r = subprocess.run(
        [podman, "import", str(tar), ref], env=env, capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stderr
    return ref


def _no_pycache(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if "__pycache__" in info.name else info


def _import_advisories(data: Path) -> None:
    from stockade.config import StockadeConfig
    from stockade.storage.advisories import AdvisoryStore
    from stockade.storage.store import Store
    from stockade.vulns.dbimport import import_paths

    store = Store.from_config(StockadeConfig(data_dir=str(data)))
    try:
        rep = import_paths(AdvisoryStore(store), [SHARED_DATA / "osv/pypa/certifi"])
        assert sum(s.records for s in rep.sources) >= 2
    finally:
        store.close()


def _certifi(items: list[dict[str, Any]], cid: str) -> list[dict[str, Any]]:
    return [i for i in items if i["package"] == "certifi" and i["asset"] == f"container:{cid}"]


def test_an_imported_module_ranks_above_the_same_unloaded(
    stockade_up: Any, certifi_image: str, old_venv: Path
) -> None:
    up = stockade_up(
        {
            "vulnerabilities": {
                "watch": True,
                "interval_s": 1,
                "host_root": str(old_venv),
                "react": {"severity": "UNKNOWN", "require_loaded": True, "require_exposed": True},
            }
        }
    )
    up.data.mkdir(parents=True, exist_ok=True)
    _import_advisories(up.data)
    up.start()
    pods = PodmanFactory(shutil.which("podman") or "podman", certifi_image)
    try:
        hot, cold = pods.many([{"args": ["python3", "-c", LOADED]}, {"args": ["python3", "-c", UNLOADED]}])

        def ranked() -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = up.api("/vulnerabilities")["items"]
            return items

        def settled() -> bool:
            items = ranked()
            h, c = _certifi(items, hot.id), _certifi(items, cold.id)
            return bool(h and c and all(i["loaded"] for i in h) and all(i["exposed"] for i in h + c))

        if not wait_until(settled, timeout=300, step=0.5):
            status = up.api("/status")["runtime"]["vulnerabilities"]
            seen = [(i["asset"][:22], i["id"], i["loaded"], i["exposed"]) for i in ranked()]
            pytest.fail(
                f"not ranked: {seen}\nstatus: {json.dumps(status)}\n{(hot.id, cold.id)}\n{up.log()[-2000:]}"
            )
        items = ranked()
        h, c = _certifi(items, hot.id), _certifi(items, cold.id)
        assert {i["id"] for i in h} == {i["id"] for i in c} and "PYSEC-2022-42986" in {i["id"] for i in h}
        assert not any(i["loaded"] for i in c)
        assert min(i["score"] for i in h) > max(i["score"] for i in c)
        by_id = {i["id"]: i for i in c}
        for i in h:
            assert i["score"] == by_id[i["id"]]["score"] + 25
            who = {(ld["comm"], ld["via"]) for ld in i["loaded_by"]}
            assert any("/certifi/" in ld["file"] and ld["file"].endswith(".py") for ld in i["loaded_by"]), i[
                "loaded_by"
            ]
            assert ("python3", "open") in who, i["loaded_by"]
            assert i["exposed_by"] == ["tcp/8080 listening"]
        # one ranked list per workload
        per = up.api("/vulnerabilities", workload=hot.name)
        assert per["items"] and {i["asset"] for i in per["items"]} == {f"container:{hot.id}"}

        # the emergency question, across an image, the containers and the "host"
        def find() -> list[dict[str, Any]]:
            r = up.cli("inventory", "find", "certifi", "--version", "<2022.12.7", "--output", "json")
            assert r.returncode == 0, r.stderr
            return [json.loads(line) for line in r.stdout.splitlines()]

        # the images are cataloged in their own thread (a few new ones a round)
        assert wait_until(lambda: any(f["kind"] == "image" for f in find()), timeout=300, step=3)
        found = find()
        kinds = {(f["kind"], f["name"]): f for f in found}
        assert kinds[("container", hot.name)]["loaded"] is True
        assert kinds[("container", cold.name)]["loaded"] is False
        assert ("image", certifi_image) in kinds
        host = [f for f in found if f["kind"] == "host"]
        assert host and host[0]["version"] == "2022.9.24" and host[0]["path"].endswith("METADATA")
        assert all(f["version"] == "2022.9.24" for f in found)
        none = up.api("/inventory/find", package="certifi", version=">=2022.12.7")
        assert none["total"] == 0
        r = up.cli("inventory", "find", "certifi", "--version", "<<1")
        assert r.returncode != 0 and "--version" in r.stderr + r.stdout and "Traceback" not in r.stderr

        # the reaction: an alert for the loaded and exposed container only
        assert wait_until(lambda: bool(up.alerts(RULE)), timeout=30)
        alerts = up.alerts(RULE)
        assert {a["output_fields"]["container.full_id"] for a in alerts} == {hot.id}
        r = up.cli("vulns", "--workload", hot.name)
        assert r.returncode == 0 and "certifi 2022.9.24" in r.stdout, r.stderr
    finally:
        pods.cleanup()
    up.stop()
