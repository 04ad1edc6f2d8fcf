"""Alembic environment: runs on the connection the Store hands over (config.attributes["connection"]).

There is no alembic.ini: :func:`stockade.storage.store.alembic_config` builds the configuration.
"""

from __future__ import annotations

from alembic import context

from stockade.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when someone runs the alembic CLI by hand
    raise RuntimeError("run Stockade migrations through stockade.storage.store.Store")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
