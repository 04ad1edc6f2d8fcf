"""Incidents: alerts grouped per workload and attack chain, their alerts and timelines.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the incidents, incident_alerts and incident_timeline tables."""
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("workload", sa.String(255), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("alert_count", sa.Integer, nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("first_ns", sa.BigInteger, nullable=False),
        sa.Column("last_ns", sa.BigInteger, nullable=False),
        sa.Column("updated_ns", sa.BigInteger, nullable=False),
        sa.Column("body", _JSON, nullable=False),
    )
    op.create_index("ix_incidents_status_score", "incidents", ["status", "score"])
    op.create_index("ix_incidents_workload", "incidents", ["workload"])
    op.create_index("ix_incidents_last_ns", "incidents", ["last_ns"])
    op.create_table(
        "incident_alerts",
        sa.Column("alert_id", sa.String(64), primary_key=True),
        sa.Column("incident_id", sa.String(64), nullable=False),
        sa.Column("time_ns", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_incident_alerts_incident_id_time_ns", "incident_alerts", ["incident_id", "time_ns"])
    op.create_table(
        "incident_timeline",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.String(64), nullable=False),
        sa.Column("time_ns", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("data", _JSON, nullable=False),
    )
    op.create_index(
        "ix_incident_timeline_incident_id_time_ns", "incident_timeline", ["incident_id", "time_ns"]
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("incident_timeline")
    op.drop_table("incident_alerts")
    op.drop_table("incidents")
