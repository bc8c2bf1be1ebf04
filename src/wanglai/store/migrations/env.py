"""Alembic environment: runs migrations on the connection ``store.migrate`` hands it."""

from __future__ import annotations

from alembic import context

from wanglai.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `wanglai.store.migrate.upgrade`")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
