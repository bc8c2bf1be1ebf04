"""The migration builds exactly the schema the code declares, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from wanglai.app import SCHEMA_HEAD
from wanglai.store import migrate
from wanglai.store.schema import metadata


def test_head_constant_matches_the_version_files() -> None:
    assert migrate.head() == SCHEMA_HEAD


def test_migrated_database_matches_the_declared_schema(db_url: str) -> None:
    migrate.upgrade(db_url)
    migrate.upgrade(db_url)  # a second run is a no-op
    engine = create_engine(migrate._sqlalchemy_url(db_url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn)
            assert context.get_current_revision() == SCHEMA_HEAD
            diff = [
                d
                for d in compare_metadata(context, metadata)
                # search helpers (FTS tables, trigram indexes) are created by raw DDL on purpose
                if "fts" not in repr(d) and "trgm" not in repr(d)
            ]
    finally:
        engine.dispose()
    assert diff == []
