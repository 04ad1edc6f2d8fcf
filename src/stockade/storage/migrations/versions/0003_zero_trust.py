"""Zero trust: workloads, their behaviour profiles, mode changes and policies.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the workloads, profiles, mode_changes and policies tables."""
    op.create_table(
        "workloads",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("namespace", sa.String(255), nullable=True),
        sa.Column("owner_kind", sa.String(16), nullable=True),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("mode_since_ns", sa.BigInteger, nullable=False),
        sa.Column("image_digest", sa.String(255), nullable=True),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("last_seen_ns", sa.BigInteger, nullable=False),
        sa.Column("labels", _JSON, nullable=True),
    )
    op.create_index("ix_workloads_namespace", "workloads", ["namespace"])

    op.create_table(
        "profiles",
        sa.Column("workload", sa.String(255), primary_key=True),
        sa.Column("image_digest", sa.String(255), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("body", _JSON, nullable=False),
        sa.Column("updated_ns", sa.BigInteger, nullable=False),
    )

    op.create_table(
        "mode_changes",
        sa.Column("id", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("workload", sa.String(255), nullable=False),
        sa.Column("old", sa.String(16), nullable=True),
        sa.Column("new", sa.String(16), nullable=False),
        sa.Column("who", sa.String(255), nullable=False),
        sa.Column("why", sa.Text, nullable=False),
        sa.Column("time_ns", sa.BigInteger, nullable=False),
        sa.Column("forced", sa.Boolean, nullable=False),
    )
    op.create_index("ix_mode_changes_workload_time_ns", "mode_changes", ["workload", "time_ns"])

    op.create_table(
        "policies",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("workload", sa.String(255), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("applied_ns", sa.BigInteger, nullable=False),
        sa.Column("applied_by", sa.String(255), nullable=True),
    )
    op.create_index("ix_policies_workload", "policies", ["workload"])


def downgrade() -> None:
    """Drop the zero-trust tables."""
    op.drop_table("policies")
    op.drop_table("mode_changes")
    op.drop_table("profiles")
    op.drop_table("workloads")
