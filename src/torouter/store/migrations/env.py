"""Alembic environment: always run with a connection handed in by `torouter.store.db.migrate`."""

from __future__ import annotations

from alembic import context

from torouter.store.schema import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through torouter (torouter serve, or torouter.store.db.migrate)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
