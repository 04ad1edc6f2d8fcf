"""Mutes: rules silenced for a workload (or everywhere) until an expiry.

Revision ID: 0002
Revises: 0001
Create Date: 2025-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the mutes table."""
    op.create_table(
        "mutes",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("rule", sa.String(255), nullable=False),
        sa.Column("workload", sa.String(255), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("expires_ns", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=True),
    )
    op.create_index("ix_mutes_expires_ns", "mutes", ["expires_ns"])


def downgrade() -> None:
    """Drop the mutes table."""
    op.drop_table("mutes")
