"""Configuration: a YAML file, then environment variables, then command-line flags (last wins).

File: ``--config PATH``, else ``$STOCKADE_CONFIG``, else ``/etc/stockade/stockade.yaml`` if present.
Environment: ``STOCKADE_<SECTION>__<KEY>=value`` (e.g. ``STOCKADE_API__PORT=9000``,
``STOCKADE_ENGINE__RULE_MATCHING=all``); values are parsed as YAML scalars.
Every error names the offending key and where its value came from: the file, the environment
variable (``STOCKADE_API__PORT=abc``) or the flag (``--port 99999``); ``cfg.origin(key)`` tells the
same for a valid value (None: the default), so later errors (a busy port) can blame it too.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from stockade.errors import ConfigError, Location
from stockade.model.alert import PRIORITIES, normalize_priority
from stockade.model.allowlist import checked_allow
from stockade.model.choices import OutputFormat, RuleMatching
from stockade.sinks.registry import SINKS

DEFAULT_CONFIG_PATH = Path("/etc/stockade/stockade.yaml")
#: where the database and the spools live unless `data_dir` (or --data-dir) says otherwise
DEFAULT_DATA_DIR = "/var/lib/stockade"
ENV_PREFIX = "STOCKADE_"


class _Strict(BaseModel):
    """A configuration section: an unknown key is an error."""

    model_config = ConfigDict(extra="forbid")


class AppendOutputMatch(_Strict):
    """Which rules an append_output entry applies to: all the given conditions must hold."""

    source: str | None = None
    tags: list[str] = Field(default_factory=list)
    rule: str | None = None


class AppendOutputConfig(_Strict):
    """Falco's `append_output` entry: extra text and fields for the rules `match` selects."""

    match: AppendOutputMatch = Field(default_factory=AppendOutputMatch)
    extra_output: str = ""
    #: Stockade: leave out the words of extra_output whose fields are missing or already shown
    compact: bool = False
    #: field names, or one-key mappings {name: constant}
    extra_fields: list[str | dict[str, str]] = Field(default_factory=list)


#: what syscall alerts carry beyond their rule's output: the container and pod in the text (Falco's
#: default append_output, compact), the process's ancestry and the image in output_fields
DEFAULT_APPEND_OUTPUT = [
    AppendOutputConfig(
        match=AppendOutputMatch(source="syscall"),
        extra_output=(
            "container_id=%container.id container_name=%container.name "
            "container_image_repository=%container.image.repository "
            "container_image_tag=%container.image.tag k8s_pod_name=%k8s.pod.name k8s_ns_name=%k8s.ns.name"
        ),
        compact=True,
        extra_fields=[
            "proc.pid",
            "proc.ppid",
            "proc.pname",
            "proc.aname[2]",
            "proc.aname[3]",
            "proc.aname[4]",
            "container.id",
            "container.image.repository",
            "container.image.tag",
        ],
    )
]


class EngineConfig(_Strict):
    """The `engine` section: which rules are loaded and how they match (reloadable)."""

    #: extra rules files/directories, loaded after the built-in pack (in order)
    rules_files: list[str] = Field(default_factory=list)
    #: load Stockade's built-in rule pack
    builtin_rules: bool = True
    #: the pack watches containers; hosts_and_containers extends every pack rule to host processes
    pack_scope: Literal["containers", "hosts_and_containers"] = "containers"
    #: also load Falco's stable rules from these paths when they exist
    falco_rules_paths: list[str] = Field(
        default_factory=lambda: [
            "/etc/falco/falco_rules.yaml",
            "/etc/falco/falco_rules.local.yaml",
            "/etc/falco/k8s_audit_rules.yaml",
        ]
    )
    rule_matching: RuleMatching = "first"
    #: only rules at or above this priority are loaded (Falco's `priority` option)
    min_priority: str = "Debug"
    #: identical alerts (same rule and output) within this window are aggregated into one with a count
    aggregate_window_s: float = Field(default=10.0, ge=0, allow_inf_nan=False)
    #: rules (by name) and tags not to load; a name no loaded rule has is an error (check_tuning)
    disabled_rules: list[str] = Field(default_factory=list)
    disabled_tags: list[str] = Field(default_factory=list)
    #: Falco's append_output (replaces the default: ancestry and image on syscall alerts)
    append_output: list[AppendOutputConfig] = Field(default_factory=lambda: list(DEFAULT_APPEND_OUTPUT))
    #: where `stockade up` and the agent keep their compiled rules, so that a restart reads them
    #: instead of compiling again (a changed rule file, option or Stockade is a new entry); unset:
    #: DATA_DIR/cache/rules; "" turns the cache off
    rules_cache_dir: str | None = None

    @field_validator("min_priority")
    @classmethod
    def _priority(cls, v: str) -> str:
        p = normalize_priority(v)
        if p is None:
            one_of = ", ".join(x.lower() for x in PRIORITIES)
            raise PydanticCustomError(
                "priority", "unknown priority '{v}' (one of {one_of})", {"v": v, "one_of": one_of}
            )
        return p


class StorageConfig(_Strict):
    """The `storage` section: the database, retention and which events are kept."""

    #: SQLAlchemy URL; default: SQLite in the data dir
    url: str | None = None
    #: events older than this are deleted; alerts are kept longer
    event_retention_s: float = Field(default=7 * 86400, gt=0)
    alert_retention_s: float = Field(default=90 * 86400, gt=0)
    #: at most this many events are kept (oldest deleted first)
    max_events: int = Field(default=1_000_000, ge=1)
    #: which events go to the event log: none, those that raised an alert (evidence), or all
    record_events: Literal["none", "alerts", "all"] = "alerts"


#: which sensor backends run (stockade.runtime.sensing.plan): auto: eBPF where it works, else the
#: fallbacks; ebpf / fallback: only that; none: no sensor
SensorChoice = Literal["auto", "ebpf", "fallback", "none"]


class SensorConfig(_Strict):
    """The ``sensor:`` section: which backends run and their settings."""

    backend: SensorChoice = "auto"
    #: fallback backend: where fanotify watches opens and file changes (plus container root filesystems)
    watch_paths: list[str] = Field(
        default_factory=lambda: [
            "/etc",
            "/root",
            "/usr/bin",
            "/usr/sbin",
            "/bin",
            "/sbin",
            "/tmp",
            "/dev/shm",
        ]
    )
    #: fallback backend: turn on connection tracking in this network namespace (adds an inert iptables chain)
    conntrack_enable_tracking: bool = False
    #: eBPF backend: drop in the kernel the failed calls of the syscalls no loaded rule can match when
    #: they fail (derived from the rules: stockade.rules.prefilter); counted as `filtered`, not lost
    kernel_prefilter: bool = True
    #: eBPF backend: drop in the kernel the opens and other path syscalls whose path no loaded rule
    #: cares about (derived from the rules: stockade.rules.interest); counted as `filtered`, not lost
    kernel_interest_filter: bool = True
    #: events read from the backends and not yet evaluated, at most (bounds the agent's memory: a
    #: reader that finds the queue full waits, then the kernel's buffer fills; both count losses)
    queue_events: int = Field(default=65536, ge=1024)


class ResourceMetricConfig(_Strict):
    """One metric of ``resources.metrics``: whether it alerts, and how far above the workload's
    baseline (its ``resources.percentile``, "high") a value is a deviation: above
    ``max(high * factor, high + floor)`` (floor in the metric's unit)."""

    alert: bool = True
    factor: float = Field(default=2.0, ge=1.0, allow_inf_nan=False)
    floor: float = Field(default=0.0, ge=0, allow_inf_nan=False)


def _metric(alert: bool, factor: float, floor: float) -> Any:
    return Field(default_factory=lambda: ResourceMetricConfig(alert=alert, factor=factor, floor=floor))


class ResourceMetricsConfig(_Strict):
    """``resources.metrics``: per metric (units: cores, bytes, processes, descriptors, bytes/s)."""

    cpu: ResourceMetricConfig = _metric(True, 2.0, 0.5)
    memory: ResourceMetricConfig = _metric(True, 2.0, 256 * 2**20)
    pids: ResourceMetricConfig = _metric(True, 2.0, 50)
    open_files: ResourceMetricConfig = _metric(True, 2.0, 512)
    rx_bps: ResourceMetricConfig = _metric(False, 4.0, 10 * 2**20)
    tx_bps: ResourceMetricConfig = _metric(True, 4.0, 2**20)


class ResourcesConfig(_Strict):
    """The ``resources:`` section: per-container resource samples, their retention, the learned
    baseline per workload and the alerts on sustained deviations (docs/resources.md)."""

    enabled: bool = True
    #: how often every running container is sampled
    interval_s: float = Field(default=10.0, ge=0.1, allow_inf_nan=False)
    #: samples older than this are deleted from the store
    retention_s: float = Field(default=86400.0, gt=0, allow_inf_nan=False)
    #: a deviation must hold this long (min_fraction of the samples in the window) to alert
    window_s: float = Field(default=60.0, gt=0, allow_inf_nan=False)
    min_fraction: float = Field(default=0.8, gt=0, le=1)
    #: a workload's baseline is learned for this long and at least min_samples samples before it alerts
    learn_s: float = Field(default=600.0, ge=0, allow_inf_nan=False)
    min_samples: int = Field(default=30, ge=1)
    #: the baseline keeps this many of the latest normal values per metric (deviations are not learned)
    baseline_samples: int = Field(default=720, ge=8)
    #: the baseline's "high" value: this percentile of the learned values
    percentile: float = Field(default=99.0, gt=0, le=100)
    metrics: ResourceMetricsConfig = Field(default_factory=ResourceMetricsConfig)


class CertsConfig(_Strict):
    """The ``certs:`` section: TLS certificates found on disk (host and containers) and served on
    the node's listening ports, and the alerts ahead of their expiry (docs/certificates.md)."""

    enabled: bool = True
    #: how often the node's certificates are scanned again
    interval_s: float = Field(default=3600.0, ge=0.5, allow_inf_nan=False)
    #: alert this many days ahead of a certificate's expiry (and for expired ones)
    warn_days: float = Field(default=30.0, ge=0, allow_inf_nan=False)
    #: directories (globs allowed) looked in under the host's and each container's root
    locations: list[str] = Field(
        default_factory=lambda: [
            "/etc",
            "/usr/local/share/ca-certificates",
            "/usr/share/ca-certificates",
            "/usr/local/etc",
            "/opt",
            "/srv",
            "/app",
            "/home",
            "/root",
            "/var/lib/*/certs",
            "/var/lib/*/ssl",
        ]
    )
    #: files not read (globs on the path inside the root): language runtimes' test data
    exclude: list[str] = Field(
        default_factory=lambda: ["*/test/*", "*/tests/*", "*/testdata/*", "*/test_data/*", "*/testing/*"]
    )
    #: scan files on disk; handshake the listening ports over loopback
    disk: bool = True
    served: bool = True
    #: scan the host as well as the running containers
    host: bool = True
    max_depth: int = Field(default=8, ge=1)
    max_entries: int = Field(default=200_000, ge=1)
    max_file_bytes: int = Field(default=4 * 2**20, ge=1024)
    handshake_timeout_s: float = Field(default=2.0, gt=0, le=30, allow_inf_nan=False)


class DriftConfig(_Strict):
    """The ``drift:`` section: files added, changed and deleted in running containers against their
    image, and the watched paths whose change is an alert (docs/drift.md)."""

    enabled: bool = True
    #: how often the running containers' upper layers are checked against the watch list
    interval_s: float = Field(default=60.0, ge=0.5, allow_inf_nan=False)
    #: paths (globs; a directory covers everything below it) whose addition, change or loss alerts
    watch: list[str] = Field(
        default_factory=lambda: [
            "/etc/passwd",
            "/etc/shadow",
            "/etc/group",
            "/etc/gshadow",
            "/etc/sudoers",
            "/etc/sudoers.d",
            "/etc/ssh",
            "/root/.ssh",
            "/etc/cron*",
            "/var/spool/cron",
            "/etc/ld.so.preload",
            "/etc/ld.so.conf*",
            "/usr/bin",
            "/usr/sbin",
            "/bin",
            "/sbin",
            "/lib*",
            "/usr/lib*",
        ]
    )


#: a workload's mode: learn (discover), alert on deviations (monitor), deny them (protect)
Mode = Literal["discover", "monitor", "protect"]


class PromotionConfig(_Strict):
    """``zero_trust.promotion``: when a learning workload is promoted on its own."""

    #: the mode a stable profile is promoted to (``off``: only by `stockade mode set`)
    to: Literal["off", "monitor", "protect"] = "monitor"
    #: stable = nothing new learned for this long ...
    quiet_s: float = Field(default=86400.0, gt=0, allow_inf_nan=False)
    #: ... after at least this many observed operations
    min_observations: int = Field(default=1000, ge=1)


class EnforcementConfig(_Strict):
    """``zero_trust.enforcement``: which mechanisms Protect uses and how they fail."""

    #: exec and open: fanotify permission events (fail open: if the agent dies, the kernel allows)
    files: bool = True
    #: what denies exec: ``fanotify`` (EPERM), ``kill`` (the exec killer: SIGKILL at exec from eBPF,
    #: the program never runs but execve() succeeds; opens are then only audited), ``auto``
    #: (fanotify, else the killer on nodes without fanotify permission events)
    exec_enforcer: Literal["auto", "fanotify", "kill"] = "auto"
    #: connect, sendmsg, bind, raw sockets: cgroup BPF programs
    network: bool = True
    #: network programs stay attached (pinned) while the agent is down: deny what the policy denies
    #: (true), or go with the agent (false: fail open)
    network_fail_closed: bool = True
    #: where the pinned network programs and maps live
    pin_dir: str = "/sys/fs/bpf/stockade"


class AnomalyConfig(_Strict):
    """The ``anomaly:`` section: per-workload sequence models, learned online (docs/anomaly.md)."""

    #: learn each workload's behaviour tokens in Discover and score them in Monitor and Protect
    enabled: bool = True
    #: the longest n-gram of the model (tokens)
    order: int = Field(default=3, ge=2, le=6)
    #: tokens per scored window
    window: int = Field(default=4, ge=1, le=64)
    #: the threshold: this quantile of the held-out normal windows' scores ...
    quantile: float = Field(default=0.99, gt=0, lt=1)
    #: ... never below this many bits per token
    min_threshold_bits: float = Field(default=3.0, ge=0)
    #: n-grams a workload's model keeps at most
    max_ngrams: int = Field(default=20_000, ge=100)
    #: tokens a workload's model must have learned before it scores anything
    min_tokens: int = Field(default=20, ge=1)
    #: an anomalous window holds a token at least this unlikely in its context (bits; 10: 1 in 1,024)
    rare_bits: float = Field(default=10.0, ge=0)


class ZeroTrustConfig(_Strict):
    """The ``zero_trust:`` section: workloads, learned profiles, modes and their enforcement."""

    enabled: bool = True
    #: the mode of a workload seen for the first time (and of every workload no mode was set for)
    default_mode: Mode = "discover"
    #: modes by workload id pattern (``k8s/shop/*``, ``container/localhost/web/*``): groups and
    #: namespaces; `stockade mode set` on one workload wins over these
    modes: dict[str, Mode] = Field(default_factory=dict)
    promotion: PromotionConfig = Field(default_factory=PromotionConfig)
    enforcement: EnforcementConfig = Field(default_factory=EnforcementConfig)
    #: learn and hold host processes (outside containers) to a profile too: the host does far more
    #: than a container; off by default (the host workload is listed, in the default mode, unlearned)
    learn_host: bool = False
    #: entries a profile keeps per section (more are generalised, then counted as overflow)
    profile_max_entries: int = Field(default=2000, ge=16)
    #: operations kept per workload for the dry run that gates promotion to Protect
    recent_events: int = Field(default=5000, ge=0)
    #: how often profiles are saved to the store
    save_every_s: float = Field(default=30.0, gt=0, allow_inf_nan=False)


class InventoryConfig(_Strict):
    """The ``inventory:`` section: the live inventory of the node (host, containers, images,
    listening ports) and the network graph of observed flows (docs/inventory.md)."""

    enabled: bool = True
    #: a full refresh (images and ports included) at least this often
    interval_s: float = Field(default=60.0, ge=1.0, allow_inf_nan=False)
    #: how often the running containers are compared with the last refresh (a start or a stop
    #: triggers a refresh at once)
    watch_s: float = Field(default=1.0, ge=0.1, allow_inf_nan=False)
    #: containers gone, images unused and graph edges quiet for longer than this are deleted
    retention_s: float = Field(default=7 * 86400.0, gt=0, allow_inf_nan=False)
    #: list images through the container engine (``podman images``)
    images: bool = True
    #: graph edges kept at most (the quietest are dropped beyond: counted)
    max_edges: int = Field(default=20_000, ge=16)


class IncidentsConfig(_Strict):
    """The ``incidents:`` section: how alerts are grouped into incidents (docs/incidents.md)."""

    enabled: bool = True
    #: an alert joins an incident of its workload, container or process tree whose alerts came
    #: within this long of it; after a longer quiet, a new incident opens
    window_s: float = Field(default=1800.0, gt=0, allow_inf_nan=False)
    #: alerts below this priority join an open incident but never open one
    open_priority: str = "Notice"
    #: the notification clock shown on every incident (e.g. 259200: 72 hours for a regulator); 0: none
    notify_within_s: float = Field(default=259200.0, ge=0, allow_inf_nan=False)

    @field_validator("open_priority")
    @classmethod
    def _priority(cls, v: str) -> str:
        p = normalize_priority(v)
        if p is None:
            raise ValueError(
                f"{v!r} is not a priority (Emergency, Alert, Critical, Error, Warning, Notice, Informational, Debug)"
            )
        return p


class ResponseConfig(_Strict):
    """The ``response:`` section: playbooks and the defaults of response actions (docs/response.md)."""

    #: ResponsePlaybook files or directories
    playbooks: list[str] = Field(default_factory=list)
    #: what an isolated container may still reach (CIDRs, ``CIDR:PORT[-PORT]``): the forensics hosts
    forensics_allow: list[str] = Field(default_factory=list)

    @field_validator("forensics_allow")
    @classmethod
    def _allow(cls, v: list[str]) -> list[str]:
        checked_allow(v)
        return v


class VulnReactConfig(_Strict):
    """``vulnerabilities.react``: what a running workload with a finding at or above ``severity``
    (loaded and exposed, as required) gets (docs/runtime-vulnerabilities.md)."""

    #: raise the alert (rule "Vulnerable package loaded and exposed")
    enabled: bool = True
    #: the least severity reacted to (UNKNOWN: any finding, also those without a severity)
    severity: Literal["UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"] = "CRITICAL"
    #: only a finding whose package a running process uses
    require_loaded: bool = True
    #: only a workload that listens on a port
    require_exposed: bool = True
    #: besides the alert: ``isolate`` quarantines the container (response's isolate) until a
    #: rescan finds it fixed; ``alert`` does nothing more
    action: Literal["alert", "isolate"] = "alert"
    #: what an isolated container may still reach (as response.forensics_allow)
    allow: list[str] = Field(default_factory=list)

    @field_validator("allow")
    @classmethod
    def _allow(cls, v: list[str]) -> list[str]:
        checked_allow(v)
        return v


class VulnerabilitiesConfig(_Strict):
    """The ``vulnerabilities:`` section, runtime part: the packages of what runs here, which are
    loaded and exposed, the ranked findings, the reaction (docs/runtime-vulnerabilities.md)."""

    #: catalog and rank what runs here (where the sensor runs)
    watch: bool = True
    #: how often running containers (and new images) are looked at; an unchanged one is not walked again
    interval_s: float = Field(default=300.0, ge=0.5, allow_inf_nan=False)
    #: catalog the named local images too (podman)
    images: bool = True
    #: new image walks a round at most (the others wait for the next rounds)
    image_walks_per_round: int = Field(default=4, ge=1)
    host: bool = True
    host_interval_s: float = Field(default=21600.0, ge=1.0, allow_inf_nan=False)
    #: the host's root filesystem as this process sees it (``/host`` for an agent in a container
    #: with the node's root mounted there)
    host_root: str = "/"
    #: directories of the host not walked (other roots: container storage; volatile ones)
    host_skip: list[str] = Field(
        default_factory=lambda: [
            "/var/lib/containers",
            "/var/lib/docker",
            "/var/lib/containerd",
            "/run",
            "/tmp",
            "/var/tmp",
            "/var/cache",
            "/var/log",
            "/mnt",
            "/media",
        ]
    )
    #: keep the code files the sensor sees opened (the kernel filter keeps those opens)
    track_opens: bool = True
    react: VulnReactConfig = Field(default_factory=VulnReactConfig)


class AuditConfig(_Strict):
    """The ``audit:`` section: the tamper-evident audit log and its signed checkpoints (docs/audit.md)."""

    #: record alerts, API changes, mode, policy, rules and mute changes in the hash chain
    enabled: bool = True
    #: sign a checkpoint this often when records were added since the last one ...
    checkpoint_interval_s: float = Field(default=60.0, gt=0, allow_inf_nan=False)
    #: ... and after this many records
    checkpoint_every: int = Field(default=1000, ge=1)
    #: where each checkpoint is also written (None: DATA_DIR/audit/checkpoints.jsonl; "": nowhere)
    checkpoint_file: str | None = None


class ApiConfig(_Strict):
    """The `api` section: where the manager API listens and its bearer token."""

    host: str = "127.0.0.1"
    port: int = Field(default=8720, ge=1, le=65535)
    #: bearer token required on /api (None: no auth, loopback only by default)
    token: str | None = None


class SinkConfig(_Strict):
    """One entry of ``sinks:`` (docs/sinks.md); its ``options`` are checked by the sink's own model."""

    #: a sink registered in stockade.sinks.registry.SINKS (stdout, file, syslog, webhook, splunk_hec, ...)
    type: str
    #: the sink's name in status and logs, and its spool directory (default: type, or type-INDEX)
    name: str | None = None
    #: stdout: text|json; file: path; syslog: address; webhook: url
    format: OutputFormat = "json"
    path: str | None = None
    address: str | None = None
    url: str | None = None
    min_priority: str = "Debug"
    #: filters (docs/sinks.md "Filters"): names or globs; an alert must match one of each given list
    rules: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    #: Kubernetes namespaces (k8s.ns.name)
    namespaces: list[str] = Field(default_factory=list)
    #: ... and none of these
    exclude_rules: list[str] = Field(default_factory=list)
    exclude_tags: list[str] = Field(default_factory=list)
    exclude_namespaces: list[str] = Field(default_factory=list)
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _registered(cls, v: str) -> str:
        if v not in SINKS:
            raise PydanticCustomError("sink_type", "{message}", {"message": SINKS.unknown(v).message})
        return v


class StockadeConfig(_Strict):
    """The whole configuration, and where each of its values came from."""

    hostname: str = Field(default_factory=socket.gethostname)
    data_dir: str = DEFAULT_DATA_DIR
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    engine: EngineConfig = Field(default_factory=EngineConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    sensor: SensorConfig = Field(default_factory=SensorConfig)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    certs: CertsConfig = Field(default_factory=CertsConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    sinks: list[SinkConfig] = Field(default_factory=list)
    zero_trust: ZeroTrustConfig = Field(default_factory=ZeroTrustConfig)
    anomaly: AnomalyConfig = Field(default_factory=AnomalyConfig)
    incidents: IncidentsConfig = Field(default_factory=IncidentsConfig)
    inventory: InventoryConfig = Field(default_factory=InventoryConfig)
    response: ResponseConfig = Field(default_factory=ResponseConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    vulnerabilities: VulnerabilitiesConfig = Field(default_factory=VulnerabilitiesConfig)
    #: where running instances leave their runtime file (default: /run/stockade as root, else
    #: $XDG_RUNTIME_DIR/stockade, else /tmp/stockade-<uid>): docs/operations.md
    runtime_dir: str | None = None

    #: dotted key -> where its value came from (file, environment variable, flag)
    _origins: dict[str, str] = PrivateAttr(default_factory=dict)

    def origin(self, key: str) -> str | None:
        """Where the value of the dotted `key` (or of the nearest section above it) was set:
        ``--port 8721``, ``STOCKADE_API__PORT=8721``, ``/etc/stockade/stockade.yaml (key 'api.port')``;
        None when it is the default."""
        return _origin_of(self._origins, key)

    def describe(self, key: str) -> str:
        """`origin(key)`, or ``key (default)`` for a default value: what an error should blame."""
        return self.origin(key) or f"{key} (default)"

    def db_url(self) -> str:
        """The database URL: storage.url, else SQLite's stockade.db in the data directory."""
        if self.storage.url:
            return self.storage.url
        return f"sqlite:///{Path(self.data_dir) / 'stockade.db'}"


def _set_path(d: dict[str, Any], path: list[str], value: Any) -> None:
    for p in path[:-1]:
        nxt = d.get(p)
        if not isinstance(nxt, dict):
            nxt = {}
            d[p] = nxt
        d = nxt
    d[path[-1]] = value


def _env_sources(environ: dict[str, str]) -> dict[str, tuple[list[str], str]]:
    """The configuration variables in `environ`: name -> (key path, raw value)."""
    out: dict[str, tuple[list[str], str]] = {}
    for k, v in environ.items():
        if not k.startswith(ENV_PREFIX) or k == "STOCKADE_CONFIG" or k.startswith("STOCKADE_TEST"):
            continue
        path = [p.lower() for p in k[len(ENV_PREFIX) :].split("__") if p]
        if path:
            out[k] = (path, v)
    return out


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, v in _env_sources(environ).values():
        try:
            val = yaml.safe_load(v) if v != "" else ""
        except yaml.YAMLError:
            val = v
        _set_path(out, path, val)
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _leaves(d: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted keys of the values in a nested mapping (a list counts as one value)."""
    out: list[str] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.extend(_leaves(v, key + "."))
        else:
            out.append(key)
    return out


def _origin_of(origins: dict[str, str], key: str) -> str | None:
    parts = key.split(".")
    for n in range(len(parts), 0, -1):
        found = origins.get(".".join(parts[:n]))
        if found is not None:
            return found
    return None


def load_config(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
    override_origins: dict[str, str] | None = None,
) -> StockadeConfig:
    """File, then environment, then `overrides` (from flags, as a nested dict).

    `override_origins` names the flag behind each dotted key of `overrides` (``{"api.port":
    "--port 8721"}``) for errors; a key without one is blamed on "the command line".
    """
    env = dict(os.environ if environ is None else environ)
    origin = "<defaults>"
    origins: dict[str, str] = {}
    data: dict[str, Any] = {}
    cfg_path = Path(path) if path else (Path(env["STOCKADE_CONFIG"]) if env.get("STOCKADE_CONFIG") else None)
    if cfg_path is None and DEFAULT_CONFIG_PATH.is_file():
        cfg_path = DEFAULT_CONFIG_PATH
    if cfg_path is not None:
        origin = str(cfg_path)
        try:
            text = cfg_path.read_text()
        except OSError as e:
            raise ConfigError(f"cannot read config file: {e.strerror}", Location(origin)) from e
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            loc = Location(origin, mark.line + 1, mark.column + 1) if mark else Location(origin)
            raise ConfigError(f"invalid YAML: {getattr(e, 'problem', e)}", loc) from e
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError("the config file must be a mapping of keys to values", Location(origin))
        data = loaded
        origins.update({k: f"{origin} (key '{k}')" for k in _leaves(data)})
    for var, (path_, raw) in _env_sources(env).items():
        origins[".".join(path_)] = f"{var}={raw}"
    data = _merge(data, _env_overrides(env))
    if overrides:
        data = _merge(data, overrides)
        named = override_origins or {}
        origins.update(
            {k: named.get(k) or _origin_of(named, k) or "the command line" for k in _leaves(overrides)}
        )
    try:
        cfg = StockadeConfig.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "<root>"
        more = f" (and {len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
        blame = _origin_of(origins, key) if key != "<root>" else None
        if blame is not None and not blame.startswith(f"{origin} (key "):
            # an environment variable or a flag: name it (the file is named as before)
            raise ConfigError(f"key '{key}': {first['msg']}{more}", Location(blame)) from e
        raise ConfigError(f"key '{key}': {first['msg']}{more}", Location(origin)) from e
    cfg._origins = origins
    return cfg


def unknown_names(key: str, given: list[str], known: set[str], what: str) -> list[str]:
    """A message for each name in `given` (the value of the dotted config `key`) that is not in
    `known`, naming the closest known names; [] when all are known."""
    import difflib

    out = []
    for name in given:
        if name in known:
            continue
        close = difflib.get_close_matches(name, sorted(known), n=2, cutoff=0.6)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        out.append(f"key '{key}': no loaded {what} is named {name!r}{hint}")
    return out
