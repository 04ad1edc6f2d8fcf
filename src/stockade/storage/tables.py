"""The SQL schema (SQLAlchemy Core): alerts and the event log.

The migrations in ``stockade/storage/migrations`` create exactly these tables; a test compares
the two. Change both together (a new migration, never an edited one).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()

#: JSON stored as JSONB on PostgreSQL, as text (queried with json_extract) on SQLite
JsonType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
#: 64-bit on PostgreSQL; SQLite wants INTEGER for an auto-incrementing rowid alias
SeqType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

#: longest value kept in an indexed text column (longer values are truncated there)
INDEXED_LEN = 255

#: event fields copied into indexed columns: Falco field name -> column name
EVENT_INDEXED_FIELDS: dict[str, str] = {
    "evt.type": "evt_type",
    "proc.name": "proc_name",
    "container.id": "container_id",
    "k8s.ns.name": "k8s_ns_name",
    "k8s.pod.name": "k8s_pod_name",
    "ka.verb": "ka_verb",
    "ka.user.name": "ka_user_name",
    "ka.target.resource": "ka_target_resource",
    "ka.target.namespace": "ka_target_namespace",
}

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("time_ns", sa.BigInteger, nullable=False),
    sa.Column("rule", sa.String(INDEXED_LEN), nullable=False),
    sa.Column("priority", sa.String(16), nullable=False),
    sa.Column("priority_rank", sa.SmallInteger, nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("hostname", sa.String(INDEXED_LEN), nullable=False),
    sa.Column("container_id", sa.String(INDEXED_LEN), nullable=True),
    sa.Column("workload", sa.String(INDEXED_LEN), nullable=True),
    sa.Column("output", sa.Text, nullable=False),
    #: the full Falco JSON alert (Alert.to_falco_json()), returned as stored
    sa.Column("body", JsonType, nullable=False),
    sa.Index("ix_alerts_time_ns", "time_ns"),
    sa.Index("ix_alerts_rule", "rule"),
    sa.Index("ix_alerts_priority_rank", "priority_rank"),
    sa.Index("ix_alerts_container_id", "container_id"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False),
    sa.Column("time_ns", sa.BigInteger, nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("origin", sa.Text, nullable=True),
    *(sa.Column(col, sa.String(INDEXED_LEN), nullable=True) for col in EVENT_INDEXED_FIELDS.values()),
    sa.Column("data", JsonType, nullable=False),
    sa.Column("meta", JsonType, nullable=True),
    sa.Index("ix_events_id", "id", unique=True),
    sa.Index("ix_events_time_ns", "time_ns"),
    sa.Index("ix_events_source", "source"),
    *(sa.Index(f"ix_events_{col}", col) for col in EVENT_INDEXED_FIELDS.values()),
)

#: rules silenced for a workload (or everywhere) until an expiry (stockade.model.mute)
mutes = sa.Table(
    "mutes",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("rule", sa.String(INDEXED_LEN), nullable=False),
    sa.Column("workload", sa.String(INDEXED_LEN), nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_ns", sa.BigInteger, nullable=False),
    sa.Column("expires_ns", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(INDEXED_LEN), nullable=True),
    sa.Index("ix_mutes_expires_ns", "expires_ns"),
)

# -- zero trust (issue 13): workloads, their profiles, mode changes, policies ----------------------

#: one row per workload (stockade.behavior.workload): its identity, mode and what it runs
workloads = sa.Table(
    "workloads",
    metadata,
    sa.Column("id", sa.String(INDEXED_LEN), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("namespace", sa.String(INDEXED_LEN), nullable=True),
    sa.Column("owner_kind", sa.String(16), nullable=True),
    sa.Column("owner", sa.String(INDEXED_LEN), nullable=True),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("mode_since_ns", sa.BigInteger, nullable=False),
    sa.Column("image_digest", sa.String(INDEXED_LEN), nullable=True),
    sa.Column("created_ns", sa.BigInteger, nullable=False),
    sa.Column("last_seen_ns", sa.BigInteger, nullable=False),
    sa.Column("labels", JsonType, nullable=True),
    sa.Index("ix_workloads_namespace", "namespace"),
)

#: a workload's behaviour profile per image digest (body: stockade.behavior.model.Profile.to_dict())
profiles = sa.Table(
    "profiles",
    metadata,
    sa.Column("workload", sa.String(INDEXED_LEN), primary_key=True),
    sa.Column("image_digest", sa.String(INDEXED_LEN), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("body", JsonType, nullable=False),
    sa.Column("updated_ns", sa.BigInteger, nullable=False),
)

#: every change of a workload's mode (discover, monitor, protect): who, why, when
mode_changes = sa.Table(
    "mode_changes",
    metadata,
    sa.Column("id", SeqType, primary_key=True, autoincrement=True),
    sa.Column("workload", sa.String(INDEXED_LEN), nullable=False),
    sa.Column("old", sa.String(16), nullable=True),
    sa.Column("new", sa.String(16), nullable=False),
    sa.Column("who", sa.String(INDEXED_LEN), nullable=False),
    sa.Column("why", sa.Text, nullable=False),
    sa.Column("time_ns", sa.BigInteger, nullable=False),
    sa.Column("forced", sa.Boolean, nullable=False),
    sa.Index("ix_mode_changes_workload_time_ns", "workload", "time_ns"),
)

#: WorkloadPolicy documents as applied (body: the YAML text)
policies = sa.Table(
    "policies",
    metadata,
    sa.Column("name", sa.String(INDEXED_LEN), primary_key=True),
    sa.Column("workload", sa.String(INDEXED_LEN), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("applied_ns", sa.BigInteger, nullable=False),
    sa.Column("applied_by", sa.String(INDEXED_LEN), nullable=True),
    sa.Index("ix_policies_workload", "workload"),
)

# -- resources (issue 14): per-container resource samples -----------------------------------------

#: one row per container per sampling interval (stockade.storage.resources.ResourceSample);
#: counters are cumulative since the container started, rates over the interval before the sample
resource_samples = sa.Table(
    "resource_samples",
    metadata,
    sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
    sa.Column("time_ns", sa.BigInteger, nullable=False),
    sa.Column("container_id", sa.String(INDEXED_LEN), nullable=False),
    sa.Column("container_name", sa.String(INDEXED_LEN), nullable=True),
    sa.Column("workload", sa.String(INDEXED_LEN), nullable=True),
    sa.Column("cpu_cores", sa.Float, nullable=True),
    sa.Column("cpu_usage_ns", sa.BigInteger, nullable=True),
    sa.Column("memory_bytes", sa.BigInteger, nullable=True),
    sa.Column("memory_limit_bytes", sa.BigInteger, nullable=True),
    sa.Column("pids", sa.Integer, nullable=True),
    sa.Column("pids_limit", sa.Integer, nullable=True),
    sa.Column("open_files", sa.Integer, nullable=True),
    sa.Column("rx_bytes", sa.BigInteger, nullable=True),
    sa.Column("tx_bytes", sa.BigInteger, nullable=True),
    sa.Column("rx_packets", sa.BigInteger, nullable=True),
    sa.Column("tx_packets", sa.BigInteger, nullable=True),
    sa.Column("rx_bps", sa.Float, nullable=True),
    sa.Column("tx_bps", sa.Float, nullable=True),
    #: what could not be read for this sample, and why
    sa.Column("missing", JsonType, nullable=True),
    sa.Index("ix_resource_samples_container_id_time_ns", "container_id", "time_ns"),
    sa.Index("ix_resource_samples_workload_time_ns", "workload", "time_ns"),
    sa.Index("ix_resource_samples_time_ns", "time_ns"),
)

#: a workload's resource baseline once learned (stockade.resources.baseline): frozen, kept across
#: restarts; body: {metric: {"p50", "high", "samples"}}
resource_baselines = sa.Table(
    "resource_baselines",
    metadata,
    sa.Column("workload", sa.String(INDEXED_LEN), primary_key=True),
    sa.Column("first_ns", sa.BigInteger, nullable=False),
    sa.Column("ready_ns", sa.BigInteger, nullable=False),
    sa.Column("samples", sa.Integer, nullable=False),
    sa.Column("body", JsonType, nullable=False),
)

# -- incidents (issue 15): alerts grouped per workload and attack chain ---------------------------

#: one row per incident (stockade.model.incident.Incident); body: containers, rules, tactics,
#: techniques, pids, notes, pending actions (JSON)
incidents = sa.Table(
    "incidents",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(INDEXED_LEN), nullable=False),
    sa.Column("hostname", sa.String(INDEXED_LEN), nullable=False),
    sa.Column("workload", sa.String(INDEXED_LEN), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(INDEXED_LEN), nullable=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("priority", sa.String(16), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("alert_count", sa.Integer, nullable=False),
    sa.Column("created_ns", sa.BigInteger, nullable=False),
    sa.Column("first_ns", sa.BigInteger, nullable=False),
    sa.Column("last_ns", sa.BigInteger, nullable=False),
    sa.Column("updated_ns", sa.BigInteger, nullable=False),
    sa.Column("body", JsonType, nullable=False),
    sa.Index("ix_incidents_status_score", "status", "score"),
    sa.Index("ix_incidents_workload", "workload"),
    sa.Index("ix_incidents_last_ns", "last_ns"),
)

#: which alerts an incident holds (an alert belongs to one incident)
incident_alerts = sa.Table(
    "incident_alerts",
    metadata,
    sa.Column("alert_id", sa.String(64), primary_key=True),
    sa.Column("incident_id", sa.String(64), nullable=False),
    sa.Column("time_ns", sa.BigInteger, nullable=False),
    sa.Index("ix_incident_alerts_incident_id_time_ns", "incident_id", "time_ns"),
)

#: each incident's timeline: alerts, actions, evidence, state changes, notes
incident_timeline = sa.Table(
    "incident_timeline",
    metadata,
    sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.String(64), nullable=False),
    sa.Column("time_ns", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(INDEXED_LEN), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("data", JsonType, nullable=False),
    sa.Index("ix_incident_timeline_incident_id_time_ns", "incident_id", "time_ns"),
)

# -- the audit log (issue 15): a hash chain and its signed checkpoints (stockade.audit) ---------------

#: one row per audited action; ``seq`` is contiguous from 1, ``hash`` = sha256 over the canonical
#: JSON of {seq, time_ns, kind, actor, subject, data, prev} (stockade.audit.chain); never trimmed
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("time_ns", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(INDEXED_LEN), nullable=False),
    sa.Column("subject", sa.String(INDEXED_LEN), nullable=False),
    #: canonical JSON text (hashed as it is: never re-encoded by the database)
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("ix_audit_log_time_ns", "time_ns"),
    sa.Index("ix_audit_log_kind", "kind"),
)

#: the node key's signature over (head_seq, head_hash, time_ns, key_id) of the chain at a time
audit_checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("time_ns", sa.BigInteger, nullable=False),
    sa.Column("head_seq", sa.BigInteger, nullable=False),
    sa.Column("head_hash", sa.String(64), nullable=False),
    sa.Column("key_id", sa.String(64), nullable=False),
    sa.Column("signature", sa.Text, nullable=False),
)

#: vulnerability advisories (OSV records): ``body`` is Advisory.as_dict(); a newer ``modified_ns``
#: replaces an older import of one id (stockade.storage.advisories)
advisories = sa.Table(
    "advisories",
    metadata,
    sa.Column("id", sa.String(INDEXED_LEN), primary_key=True),
    sa.Column("modified_ns", sa.BigInteger, nullable=False),
    sa.Column("withdrawn", sa.Boolean, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("cvss_score", sa.Float, nullable=True),
    sa.Column("source", sa.String(INDEXED_LEN), nullable=False),
    sa.Column("body", JsonType, nullable=False),
)

#: the packages an advisory affects, by (ecosystem, normalised name); distro "" for any release
advisory_packages = sa.Table(
    "advisory_packages",
    metadata,
    sa.Column("advisory_id", sa.String(INDEXED_LEN), primary_key=True),
    sa.Column("ecosystem", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(INDEXED_LEN), primary_key=True),
    sa.Column("distro", sa.String(64), primary_key=True),
    sa.Index("ix_advisory_packages_ecosystem_name", "ecosystem", "name"),
)

#: the other ids an advisory is known by (CVE, GHSA, PYSEC, ...)
advisory_aliases = sa.Table(
    "advisory_aliases",
    metadata,
    sa.Column("advisory_id", sa.String(INDEXED_LEN), primary_key=True),
    sa.Column("alias", sa.String(INDEXED_LEN), primary_key=True),
    sa.Index("ix_advisory_aliases_alias", "alias"),
)

#: CISA's Known Exploited Vulnerabilities, one row per CVE
kev = sa.Table(
    "kev",
    metadata,
    sa.Column("cve", sa.String(64), primary_key=True),
    sa.Column("date_added", sa.String(32), nullable=False),
    sa.Column("body", JsonType, nullable=False),
)

#: FIRST's EPSS scores, one row per CVE
epss = sa.Table(
    "epss",
    metadata,
    sa.Column("cve", sa.String(64), primary_key=True),
    sa.Column("epss", sa.Float, nullable=False),
    sa.Column("percentile", sa.Float, nullable=False),
)

#: what was imported from where and when, for `stockade db status`; kind is osv, kev or epss
advisory_sources = sa.Table(
    "advisory_sources",
    metadata,
    sa.Column("source", sa.String(1024), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("imported_ns", sa.BigInteger, nullable=False),
    sa.Column("records", sa.BigInteger, nullable=False),
    sa.Column("changed", sa.BigInteger, nullable=False),
    sa.Column("problems", sa.BigInteger, nullable=False),
    #: the feed's own date (KEV release, EPSS score date), where it says
    sa.Column("feed_date", sa.String(64), nullable=True),
    sa.Column("detail", JsonType, nullable=False),
)

# -- inventory (issue 16): hosts, containers, images, listening ports, the network graph -----------

#: one row per node: its facts (stockade.inventory.host), refreshed
inventory_hosts = sa.Table(
    "inventory_hosts",
    metadata,
    sa.Column("hostname", sa.String(INDEXED_LEN), primary_key=True),
    sa.Column("updated_ns", sa.BigInteger, nullable=False),
    sa.Column("body", JsonType, nullable=False),
)

#: one row per container seen running; state "running" or "gone" (with its stop time); body: the
#: rest of stockade.inventory.containers.ContainerRecord
inventory_containers = sa.Table(
    "inventory_containers",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("hostname", sa.String(INDEXED_LEN), nullable=False),
    sa.Column("name", sa.String(INDEXED_LEN), nullable=True),
    sa.Column("workload", sa.String(INDEXED_LEN), nullable=True),
    sa.Column("image_id", sa.String(128), nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("started_ns", sa.BigInteger, nullable=True),
    sa.Column("stopped_ns", sa.BigInteger, nullable=True),
    sa.Column("updated_ns", sa.BigInteger, nullable=False),
    sa.Column("body", JsonType, nullable=False),
    sa.Index("ix_inventory_containers_state", "state"),
    sa.Index("ix_inventory_containers_workload", "workload"),
)

#: one row per image per node (stockade.inventory.images); body: digest, tags, layers, config
inventory_images = sa.Table(
    "inventory_images",
    metadata,
    sa.Column("hostname", sa.String(INDEXED_LEN), primary_key=True),
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("updated_ns", sa.BigInteger, nullable=False),
    sa.Column("body", JsonType, nullable=False),
)

#: the listening sockets of a node at its last refresh (replaced whole each time)
inventory_ports = sa.Table(
    "inventory_ports",
    metadata,
    sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
    sa.Column("hostname", sa.String(INDEXED_LEN), nullable=False),
    sa.Column("protocol", sa.String(8), nullable=False),
    sa.Column("address", sa.String(64), nullable=False),
    sa.Column("port", sa.Integer, nullable=False),
    sa.Column("pid", sa.Integer, nullable=True),
    sa.Column("process", sa.String(INDEXED_LEN), nullable=True),
    sa.Column("container_id", sa.String(128), nullable=True),
    sa.Column("workload", sa.String(INDEXED_LEN), nullable=True),
    sa.Column("updated_ns", sa.BigInteger, nullable=False),
    sa.Index("ix_inventory_ports_hostname", "hostname"),
)

#: the network graph: observed flows aggregated per (source, destination, port, protocol)
inventory_edges = sa.Table(
    "inventory_edges",
    metadata,
    sa.Column("hostname", sa.String(INDEXED_LEN), primary_key=True),
    sa.Column("source", sa.String(INDEXED_LEN), primary_key=True),
    sa.Column("destination", sa.String(INDEXED_LEN), primary_key=True),
    sa.Column("port", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("protocol", sa.String(8), primary_key=True),
    sa.Column("source_kind", sa.String(16), nullable=False),
    sa.Column("destination_kind", sa.String(16), nullable=False),
    sa.Column("connects", sa.BigInteger, nullable=False),
    sa.Column("accepts", sa.BigInteger, nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=True),
    sa.Column("first_ns", sa.BigInteger, nullable=False),
    sa.Column("last_ns", sa.BigInteger, nullable=False),
    sa.Index("ix_inventory_edges_last_ns", "last_ns"),
)

#: the packages of one asset (a running container, an image, the host) as last cataloged
#: (stockade.inventory.assets): packages is a list of Package.as_dict(), errors [[path, reason]]
package_sets = sa.Table(
    "package_sets",
    metadata,
    sa.Column("asset", sa.String(INDEXED_LEN), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("name", sa.String(INDEXED_LEN), nullable=False),
    sa.Column("image", sa.String(INDEXED_LEN), nullable=True),
    sa.Column("workload", sa.String(INDEXED_LEN), nullable=True),
    sa.Column("scan_key", sa.String(INDEXED_LEN), nullable=False),
    sa.Column("scanned_ns", sa.BigInteger, nullable=False),
    sa.Column("running", sa.Boolean, nullable=False),
    sa.Column("packages", JsonType, nullable=False),
    sa.Column("errors", JsonType, nullable=False),
    sa.Index("ix_package_sets_kind", "kind"),
)
