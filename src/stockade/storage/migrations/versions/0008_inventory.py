"""Inventory: hosts, containers, images, listening ports and the network graph of observed flows.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the inventory tables."""
    op.create_table(
        "inventory_hosts",
        sa.Column("hostname", sa.String(255), primary_key=True),
        sa.Column("updated_ns", sa.BigInteger, nullable=False),
        sa.Column("body", _JSON, nullable=False),
    )
    op.create_table(
        "inventory_containers",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("workload", sa.String(255), nullable=True),
        sa.Column("image_id", sa.String(128), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_ns", sa.BigInteger, nullable=True),
        sa.Column("stopped_ns", sa.BigInteger, nullable=True),
        sa.Column("updated_ns", sa.BigInteger, nullable=False),
        sa.Column("body", _JSON, nullable=False),
    )
    op.create_index("ix_inventory_containers_state", "inventory_containers", ["state"])
    op.create_index("ix_inventory_containers_workload", "inventory_containers", ["workload"])
    op.create_table(
        "inventory_images",
        sa.Column("hostname", sa.String(255), primary_key=True),
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("updated_ns", sa.BigInteger, nullable=False),
        sa.Column("body", _JSON, nullable=False),
    )
    op.create_table(
        "inventory_ports",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("protocol", sa.String(8), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.Column("process", sa.String(255), nullable=True),
        sa.Column("container_id", sa.String(128), nullable=True),
        sa.Column("workload", sa.String(255), nullable=True),
        sa.Column("updated_ns", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_inventory_ports_hostname", "inventory_ports", ["hostname"])
    op.create_table(
        "inventory_edges",
        sa.Column("hostname", sa.String(255), primary_key=True),
        sa.Column("source", sa.String(255), primary_key=True),
        sa.Column("destination", sa.String(255), primary_key=True),
        sa.Column("port", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("protocol", sa.String(8), primary_key=True),
        sa.Column("source_kind", sa.String(16), nullable=False),
        sa.Column("destination_kind", sa.String(16), nullable=False),
        sa.Column("connects", sa.BigInteger, nullable=False),
        sa.Column("accepts", sa.BigInteger, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=True),
        sa.Column("first_ns", sa.BigInteger, nullable=False),
        sa.Column("last_ns", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_inventory_edges_last_ns", "inventory_edges", ["last_ns"])


def downgrade() -> None:
    """Drop the inventory tables."""
    for name in ("inventory_edges", "inventory_ports", "inventory_images", "inventory_containers"):
        op.drop_table(name)
    op.drop_table("inventory_hosts")
