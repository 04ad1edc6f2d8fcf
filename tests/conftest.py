"""Shared test fixtures and capability markers.

Markers (pyproject.toml): root, postgres, ebpf, containers, slow. A test that needs a capability
the machine lacks is skipped with the reason; in CI (CI=true, root) they all run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    """../shared/data next to the checkout; a clone elsewhere (CI) finds the workplace's copy."""
    for cand in (REPO.parent / "shared" / "data", Path("/work/shared/data")):
        if cand.is_dir():
            return cand
    return REPO.parent / "shared" / "data"


SHARED_DATA = _shared_data()
#: for test modules that compute data paths at import (they read this variable)
os.environ.setdefault("STOCKADE_TEST_SHARED_DATA", str(SHARED_DATA))
FALCO_RULES = SHARED_DATA / "falco-rules" / "falco_rules.yaml"
K8S_AUDIT_RULES = SHARED_DATA / "falco-rules" / "k8s_audit_rules.yaml"
TEST_DATA = REPO / "tests" / "data"


def _skip_reason(marker: str) -> str | None:
    if marker == "root" and os.geteuid() != 0:
        return "needs root"
    if marker == "postgres" and not Path("/usr/lib/postgresql").exists():
        return "needs PostgreSQL server binaries (apt-get install postgresql)"
    if marker == "containers" and (os.geteuid() != 0 or not (shutil.which("runc") or shutil.which("podman"))):
        return "needs root and runc or podman"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for m in ("root", "postgres", "containers", "ebpf"):
            if item.get_closest_marker(m) is not None:
                reason = _skip_reason(m)
                # In CI (CI=true) every capability must be present: run the test and let it fail
                # rather than hide the gap behind a skip.
                if reason and os.environ.get("CI") != "true":
                    item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def falco_rules_path() -> Path:
    if not FALCO_RULES.exists():
        pytest.skip(f"{FALCO_RULES} not present")
    return FALCO_RULES


@pytest.fixture(scope="session")
def k8s_audit_rules_path() -> Path:
    if not K8S_AUDIT_RULES.exists():
        pytest.skip(f"{K8S_AUDIT_RULES} not present")
    return K8S_AUDIT_RULES
