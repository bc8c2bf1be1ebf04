"""spine: accounts, contacts, conversations, messages, events

Revision ID: 0001_spine
Revises:
Create Date: 2026-11-28 03:29:52.981196
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0001_spine"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blocks",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("blocked_id", sa.BigInteger(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "blocked_id"),
    )
    op.create_table(
        "conversations",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("direct_key", sa.String(length=48), nullable=True),
        sa.Column("title", sa.String(length=64), server_default="", nullable=False),
        sa.Column("announcement", sa.String(length=2000), server_default="", nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=True),
        sa.Column("approval_required", sa.Integer(), server_default="0", nullable=False),
        sa.Column("seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("direct_key"),
    )
    op.create_table(
        "devices",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), server_default="", nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_ms", sa.BigInteger(), nullable=False),
        sa.Column("cursor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("revoked_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_devices_user_id"), ["user_id"], unique=False)

    op.create_table(
        "events",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("conv_id", sa.BigInteger(), nullable=True),
        sa.Column("ref", sa.BigInteger(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "seq"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "friend_requests",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("from_id", sa.BigInteger(), nullable=False),
        sa.Column("to_id", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.String(length=200), server_default="", nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("friend_requests", schema=None) as batch_op:
        batch_op.create_index("ix_friend_requests_pair", ["from_id", "to_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_friend_requests_to_id"), ["to_id"], unique=False)

    op.create_table(
        "friendships",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("friend_id", sa.BigInteger(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "friend_id"),
    )
    op.create_table(
        "join_requests",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("conv_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("inviter_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("join_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_join_requests_conv_id"), ["conv_id"], unique=False)

    op.create_table(
        "login_codes",
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("code_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("tries", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("phone"),
    )
    op.create_table(
        "media",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mime", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("hash"),
    )
    op.create_table(
        "media_refs",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("conv_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("hash", "conv_id"),
    )
    op.create_table(
        "media_uploads",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("hash", "user_id"),
    )
    op.create_table(
        "members",
        sa.Column("conv_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("joined_ms", sa.BigInteger(), nullable=False),
        sa.Column("from_seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("read_seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("delivered_seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("muted", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("conv_id", "user_id"),
    )
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.create_index("ix_members_user", ["user_id"], unique=False)

    op.create_table(
        "messages",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("conv_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("sender_id", sa.BigInteger(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("search_text", sa.Text(), server_default="", nullable=False),
        sa.Column("reply_to", sa.BigInteger(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("edited_ms", sa.BigInteger(), nullable=True),
        sa.Column("recalled_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("conv_id", "seq", name="uq_messages_conv_seq"),
        sa.UniqueConstraint("sender_id", "client_id", name="uq_messages_sender_client"),
    )
    op.create_table(
        "rate_hits",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("bucket", sa.String(length=80), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rate_hits", schema=None) as batch_op:
        batch_op.create_index("ix_rate_hits_bucket_at", ["bucket", "at_ms"], unique=False)
        batch_op.create_index("ix_rate_hits_at", ["at_ms"], unique=False)

    op.create_table(
        "users",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=64), server_default="", nullable=False),
        sa.Column("about", sa.String(length=280), server_default="", nullable=False),
        sa.Column("dm_policy", sa.String(length=16), server_default="friends", nullable=False),
        sa.Column("seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("phone"),
    )
    # Last: the search triggers and index refer to `messages`.
    create_message_search()


# Full-text search over messages.search_text (see store/messages.py: search). SQLite: an FTS5
# index with the trigram tokenizer (substring matches, Chinese included), external content so the
# text is stored once. New messages are indexed in bulk by a background job
# (store/messages.py: index_search) that records how far it got in messages_fts_progress: indexing
# row by row in a trigger cost six times as much and sat on every send's commit. Recalls and edits
# rewrite search_text, so the update trigger swaps old text for new in rows already indexed.
# Rebuilding `messages` (Alembic batch mode) drops these triggers: a later migration that does so
# must recreate them. PostgreSQL: a pg_trgm GIN index that serves the ILIKE query as it is;
# without the extension, ILIKE scans.
SQLITE_SEARCH = (
    "CREATE VIRTUAL TABLE messages_fts USING fts5(search_text, content='messages',"
    " content_rowid='id', tokenize='trigram')",
    "CREATE TABLE messages_fts_progress (id INTEGER PRIMARY KEY CHECK (id = 1),"
    " indexed_id INTEGER NOT NULL)",
    "INSERT INTO messages_fts_progress (id, indexed_id) VALUES (1, 0)",
    "CREATE TRIGGER messages_fts_au AFTER UPDATE OF search_text ON messages"
    " WHEN old.id <= (SELECT indexed_id FROM messages_fts_progress) BEGIN"
    " INSERT INTO messages_fts (messages_fts, rowid, search_text)"
    " VALUES ('delete', old.id, old.search_text);"
    " INSERT INTO messages_fts (rowid, search_text) VALUES (new.id, new.search_text); END",
    "CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages"
    " WHEN old.id <= (SELECT indexed_id FROM messages_fts_progress) BEGIN"
    " INSERT INTO messages_fts (messages_fts, rowid, search_text)"
    " VALUES ('delete', old.id, old.search_text); END",
)


def create_message_search() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for statement in SQLITE_SEARCH:
            bind.exec_driver_sql(statement)
    elif bind.dialect.name == "postgresql":
        try:
            with bind.begin_nested():  # a savepoint: a refusal must not abort the migration
                bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except sa.exc.DBAPIError as exc:
            logging.getLogger("alembic.runtime.migration").warning(
                "pg_trgm is not available (%s); message search will scan with ILIKE. Run"
                " CREATE EXTENSION pg_trgm as a superuser and create ix_messages_search_trgm.",
                exc.orig,
            )
            return
        bind.exec_driver_sql(
            "CREATE INDEX ix_messages_search_trgm ON messages USING gin (search_text gin_trgm_ops)"
        )


def drop_message_search() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in ("messages_fts_au", "messages_fts_ad"):
            bind.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
        bind.exec_driver_sql("DROP TABLE IF EXISTS messages_fts_progress")
        bind.exec_driver_sql("DROP TABLE IF EXISTS messages_fts")
    elif bind.dialect.name == "postgresql":
        bind.exec_driver_sql("DROP INDEX IF EXISTS ix_messages_search_trgm")


def downgrade() -> None:
    drop_message_search()
    op.drop_table("users")
    with op.batch_alter_table("rate_hits", schema=None) as batch_op:
        batch_op.drop_index("ix_rate_hits_at")
        batch_op.drop_index("ix_rate_hits_bucket_at")

    op.drop_table("rate_hits")
    op.drop_table("messages")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_index("ix_members_user")

    op.drop_table("members")
    op.drop_table("media_uploads")
    op.drop_table("media_refs")
    op.drop_table("media")
    op.drop_table("login_codes")
    with op.batch_alter_table("join_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_join_requests_conv_id"))

    op.drop_table("join_requests")
    op.drop_table("friendships")
    with op.batch_alter_table("friend_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_friend_requests_to_id"))
        batch_op.drop_index("ix_friend_requests_pair")

    op.drop_table("friend_requests")
    op.drop_table("events")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_devices_user_id"))

    op.drop_table("devices")
    op.drop_table("conversations")
    op.drop_table("blocks")
