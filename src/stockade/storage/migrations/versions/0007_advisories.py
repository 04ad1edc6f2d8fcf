"""Advisories: OSV records, the packages they affect, aliases, KEV, EPSS and import sources.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

JsonType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """Create the advisory tables."""
    op.create_table(
        "advisories",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("modified_ns", sa.BigInteger, nullable=False),
        sa.Column("withdrawn", sa.Boolean, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("cvss_score", sa.Float, nullable=True),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("body", JsonType, nullable=False),
    )
    op.create_table(
        "advisory_packages",
        sa.Column("advisory_id", sa.String(255), primary_key=True),
        sa.Column("ecosystem", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("distro", sa.String(64), primary_key=True),
    )
    op.create_index("ix_advisory_packages_ecosystem_name", "advisory_packages", ["ecosystem", "name"])
    op.create_table(
        "advisory_aliases",
        sa.Column("advisory_id", sa.String(255), primary_key=True),
        sa.Column("alias", sa.String(255), primary_key=True),
    )
    op.create_index("ix_advisory_aliases_alias", "advisory_aliases", ["alias"])
    op.create_table(
        "kev",
        sa.Column("cve", sa.String(64), primary_key=True),
        sa.Column("date_added", sa.String(32), nullable=False),
        sa.Column("body", JsonType, nullable=False),
    )
    op.create_table(
        "epss",
        sa.Column("cve", sa.String(64), primary_key=True),
        sa.Column("epss", sa.Float, nullable=False),
        sa.Column("percentile", sa.Float, nullable=False),
    )
    op.create_table(
        "advisory_sources",
        sa.Column("source", sa.String(1024), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("imported_ns", sa.BigInteger, nullable=False),
        sa.Column("records", sa.BigInteger, nullable=False),
        sa.Column("changed", sa.BigInteger, nullable=False),
        sa.Column("problems", sa.BigInteger, nullable=False),
        sa.Column("feed_date", sa.String(64), nullable=True),
        sa.Column("detail", JsonType, nullable=False),
    )


def downgrade() -> None:
    """Drop the advisory tables."""
    for t in ("advisory_sources", "epss", "kev", "advisory_aliases", "advisory_packages", "advisories"):
        op.drop_table(t)
