"""Packages: the package set of each asset (running container, image, host) as last cataloged.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """Create the package_sets table."""
    op.create_table(
        "package_sets",
        sa.Column("asset", sa.String(255), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("image", sa.String(255), nullable=True),
        sa.Column("workload", sa.String(255), nullable=True),
        sa.Column("scan_key", sa.String(255), nullable=False),
        sa.Column("scanned_ns", sa.BigInteger, nullable=False),
        sa.Column("running", sa.Boolean, nullable=False),
        sa.Column("packages", _JSON, nullable=False),
        sa.Column("errors", _JSON, nullable=False),
    )
    op.create_index("ix_package_sets_kind", "package_sets", ["kind"])


def downgrade() -> None:
    """Drop the package_sets table."""
    op.drop_table("package_sets")
