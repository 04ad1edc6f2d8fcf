"""Resources: per-container resource samples (CPU, memory, pids, open files, network) and the
learned baseline of each workload.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the resource_samples and resource_baselines tables."""
    op.create_table(
        "resource_samples",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("time_ns", sa.BigInteger, nullable=False),
        sa.Column("container_id", sa.String(255), nullable=False),
        sa.Column("container_name", sa.String(255), nullable=True),
        sa.Column("workload", sa.String(255), nullable=True),
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
        sa.Column("missing", _JSON, nullable=True),
    )
    op.create_index(
        "ix_resource_samples_container_id_time_ns", "resource_samples", ["container_id", "time_ns"]
    )
    op.create_index("ix_resource_samples_workload_time_ns", "resource_samples", ["workload", "time_ns"])
    op.create_index("ix_resource_samples_time_ns", "resource_samples", ["time_ns"])

    op.create_table(
        "resource_baselines",
        sa.Column("workload", sa.String(255), primary_key=True),
        sa.Column("first_ns", sa.BigInteger, nullable=False),
        sa.Column("ready_ns", sa.BigInteger, nullable=False),
        sa.Column("samples", sa.Integer, nullable=False),
        sa.Column("body", _JSON, nullable=False),
    )


def downgrade() -> None:
    """Drop the resources tables."""
    op.drop_table("resource_baselines")
    op.drop_table("resource_samples")
