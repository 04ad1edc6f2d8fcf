"""Initial schema: alerts and the event log.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_EVENT_COLUMNS = (
    "evt_type",
    "proc_name",
    "container_id",
    "k8s_ns_name",
    "k8s_pod_name",
    "ka_verb",
    "ka_user_name",
    "ka_target_resource",
    "ka_target_namespace",
)


def upgrade() -> None:
    """Create the alerts and events tables and their indexes."""
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("time_ns", sa.BigInteger, nullable=False),
        sa.Column("rule", sa.String(255), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("priority_rank", sa.SmallInteger, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("container_id", sa.String(255), nullable=True),
        sa.Column("workload", sa.String(255), nullable=True),
        sa.Column("output", sa.Text, nullable=False),
        sa.Column("body", _JSON, nullable=False),
    )
    op.create_index("ix_alerts_time_ns", "alerts", ["time_ns"])
    op.create_index("ix_alerts_rule", "alerts", ["rule"])
    op.create_index("ix_alerts_priority_rank", "alerts", ["priority_rank"])
    op.create_index("ix_alerts_container_id", "alerts", ["container_id"])

    op.create_table(
        "events",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("time_ns", sa.BigInteger, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("origin", sa.Text, nullable=True),
        *(sa.Column(c, sa.String(255), nullable=True) for c in _EVENT_COLUMNS),
        sa.Column("data", _JSON, nullable=False),
        sa.Column("meta", _JSON, nullable=True),
    )
    op.create_index("ix_events_id", "events", ["id"], unique=True)
    op.create_index("ix_events_time_ns", "events", ["time_ns"])
    op.create_index("ix_events_source", "events", ["source"])
    for c in _EVENT_COLUMNS:
        op.create_index(f"ix_events_{c}", "events", [c])


def downgrade() -> None:
    """Drop the events and alerts tables."""
    op.drop_table("events")
    op.drop_table("alerts")
