"""Runtime-aware vulnerabilities: the ranked findings of what runs here (overall and per workload),
and the emergency question: which images, containers and hosts hold a package, of which version,
where, and whether a process uses it (docs/runtime-vulnerabilities.md).

Served where the sensor runs (`stockade up` with vulnerabilities.watch); elsewhere 409.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from stockade.api.deps import RuntimeDep
from stockade.api.params import STRICT_QUERY
from stockade.api.problem import problem_responses
from stockade.model import apipaths as paths

router = APIRouter(tags=["vulnerabilities"])


@router.get(
    paths.VULNERABILITIES,
    summary="Ranked vulnerability findings of running containers, images and the host",
    responses=problem_responses(409, 422),
    dependencies=[STRICT_QUERY],
)
def list_vulnerabilities(
    runtime: RuntimeDep,
    workload: Annotated[
        str | None, Query(description="Only this workload (its id, container name or asset id)")
    ] = None,
) -> dict[str, Any]:
    """Every finding with its score and the score's parts (severity, loaded, exposed, fix, KEV,
    EPSS), highest first (``items``), and one ranked list per workload (``workloads``)."""
    return runtime.vulnerabilities().vulnerabilities(workload)


@router.get(
    paths.INVENTORY_FIND,
    summary="Which images, running containers and hosts hold a package (in a version range)",
    responses=problem_responses(409, 422),
    dependencies=[STRICT_QUERY],
)
def find_package(
    runtime: RuntimeDep,
    package: Annotated[str, Query(description="A package name (any ecosystem) or a purl prefix")],
    version: Annotated[
        str | None, Query(description="A range: <2.17, >=1.0,<2.0, introduced:2.0,fixed:2.17")
    ] = None,
) -> dict[str, Any]:
    """Each match: the asset, the package's version, ecosystem, purl, path, and (running containers)
    whether it is loaded and by which processes."""
    return runtime.vulnerabilities().find(package, version)
