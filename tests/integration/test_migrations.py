"""The migration builds exactly the schema the code declares, on both databases."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
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


def test_a_child_process_migrates_and_the_caller_never_imports_alembic(db_url: str) -> None:
    """``begin_apart`` (what ``wanglai serve`` runs first) leaves Alembic and SQLAlchemy
    out of the server's memory, whether it has anything to do or not."""
    code = (
        "import sys; from wanglai.store import migrate;"
        " migrate.begin_apart(sys.argv[1], sys.argv[2]).wait();"
        " print(migrate.current(sys.argv[1]), 'alembic' in sys.modules,"
        " 'sqlalchemy' in sys.modules)"
    )
    for _ in range(2):  # the second time the database is already at the head
        done = subprocess.run(
            [sys.executable, "-c", code, db_url, SCHEMA_HEAD],
            capture_output=True,
            text=True,
            check=True,
        )
        assert done.stdout.split() == [SCHEMA_HEAD, "False", "False"]
    assert migrate.current(db_url) == SCHEMA_HEAD


def test_a_failed_migration_in_the_child_is_an_error_naming_the_database(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be")
    url = f"sqlite:///{blocker}/wanglai.db"
    with pytest.raises(RuntimeError, match=r"migrating sqlite:///.*failed"):
        migrate.begin_apart(url, SCHEMA_HEAD).wait()
    assert blocker.read_text() == "a file where the data directory should be"


def test_an_empty_database_has_no_revision(db_url: str) -> None:
    assert migrate.current(db_url) is None
    migrate.upgrade(db_url, SCHEMA_HEAD)
    assert migrate.current(db_url) == SCHEMA_HEAD


def test_an_unsupported_database_url_is_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsupported database URL"):
        migrate.begin_apart(f"mysql://{tmp_path}/x").wait()
    assert list(tmp_path.iterdir()) == []
