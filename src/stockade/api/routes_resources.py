"""Resources: the latest sample of every running container with its workload and risk columns, and
one container's stored history (docs/resources.md).

Served where resources are sampled (`stockade up`); elsewhere 409 (no-resources).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from stockade.api.deps import RuntimeDep
from stockade.api.params import STRICT_QUERY, parse_time_param
from stockade.api.problem import problem_responses
from stockade.model import apipaths as paths

router = APIRouter(tags=["resources"])

MAX_LIMIT = 10_000


class SampleItem(BaseModel):
    """A container's resource use at one time. Counters are cumulative since it started, rates over
    the interval before the sample (None on its first); None where a value could not be read
    (``missing`` says why)."""

    time: str
    container_id: str
    container_name: str | None = None
    workload: str | None = None
    cpu_cores: float | None = Field(None, description="CPU over the interval, in cores")
    cpu_usage_ns: int | None = None
    memory_bytes: int | None = Field(None, description="Working set: usage less inactive file cache")
    memory_limit_bytes: int | None = None
    pids: int | None = Field(None, description="Tasks (processes and threads)")
    pids_limit: int | None = None
    open_files: int | None = Field(None, description="File descriptors its processes hold")
    rx_bytes: int | None = None
    tx_bytes: int | None = None
    rx_packets: int | None = None
    tx_packets: int | None = None
    rx_bps: float | None = Field(None, description="Bytes received per second (ingress)")
    tx_bps: float | None = Field(None, description="Bytes sent per second (egress)")
    missing: list[str] = []


class MetricBaseline(BaseModel):
    """One metric's learned baseline: median, high percentile, the limit above which a value
    deviates, and how many values it holds."""

    p50: float
    high: float
    limit: float
    samples: int


class WorkloadBaseline(BaseModel):
    """A workload's baseline: learning, or ready (frozen, alerting) since when; from how many samples."""

    state: str
    samples: int
    since: str
    ready: str | None = None
    metrics: dict[str, MetricBaseline]


class Relearned(BaseModel):
    """A workload whose baseline was forgotten: it learns again from its next sample."""

    workload: str
    state: str


class ResourceRow(SampleItem):
    """The latest sample of a running container and its risk columns."""

    baseline: WorkloadBaseline | None = None
    risk: dict[str, float | None] = Field(
        default_factory=dict, description="Per metric, the value over its limit (1.0: at the limit)"
    )
    deviating: list[str] = Field(default_factory=list, description="Metrics in a sustained deviation")
    alerts: int = Field(0, description="Resource alerts raised for this container since start")


class ResourceList(BaseModel):
    """Every running container, by workload then name."""

    items: list[ResourceRow]
    total: int


class ResourceHistory(BaseModel):
    """One container's samples in a time range, oldest first."""

    container_id: str
    items: list[SampleItem]
    total: int


@router.get(
    paths.RESOURCES,
    response_model=ResourceList,
    summary="The latest resource sample of every running container, with workload and risk columns",
    responses=problem_responses(409),
)
def list_resources(runtime: RuntimeDep) -> dict[str, Any]:
    """CPU, memory, pids, open files and network of each container, its workload's baseline, the
    value of each metric over its limit, the metrics in a sustained deviation and the alerts raised."""
    items = runtime.resources().latest()
    return {"items": items, "total": len(items)}


@router.get(
    paths.RESOURCE,
    response_model=ResourceHistory,
    summary="One container's resource samples over a time range",
    responses=problem_responses(404, 409, 422),
    dependencies=[STRICT_QUERY],
)
def container_history(
    container_id: str,
    runtime: RuntimeDep,
    since: Annotated[str | None, Query(description="A duration ago (15m, 1h), RFC 3339, or epoch")] = None,
    until: Annotated[str | None, Query(description="Same forms as since")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="The latest this many")] = 1000,
) -> dict[str, Any]:
    """`container_id`: its full id, a unique prefix (6+ characters) or its name. Oldest first; the
    latest `limit` samples of the range."""
    return runtime.resources().history(
        container_id,
        since_ns=parse_time_param("since", since),
        until_ns=parse_time_param("until", until),
        limit=limit,
    )


@router.delete(
    paths.RESOURCE_BASELINE.replace("{workload_id}", "{workload_id:path}"),
    response_model=Relearned,
    summary="Forget a workload's learned resource baseline: it learns again",
    responses=problem_responses(404, 409),
)
def relearn(workload_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    """After a legitimate change of a workload's resource use (a new version, more load): its
    baseline is learned again (`resources.learn_s`), and nothing alerts for it meanwhile. The
    workload id may hold slashes, sent as they are or as ``%2F``."""
    return runtime.resources().relearn(workload_id)
