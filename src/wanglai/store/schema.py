"""The schema, as SQLAlchemy Core tables; Alembic migrations are generated from it."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite needs INTEGER for rowid aliasing

users = Table(
    "users",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("phone", String(20), nullable=False, unique=True),
    Column("name", String(64), nullable=False, server_default=""),
    Column("about", String(280), nullable=False, server_default=""),
    Column("dm_policy", String(16), nullable=False, server_default="friends"),
    Column("seq", BigInteger, nullable=False, server_default="0"),
    Column("created_ms", BigInteger, nullable=False),
)

devices = Table(
    "devices",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, nullable=False, index=True),
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column("name", String(64), nullable=False, server_default=""),
    Column("created_ms", BigInteger, nullable=False),
    Column("last_seen_ms", BigInteger, nullable=False),
    Column("cursor", BigInteger, nullable=False, server_default="0"),
    Column("revoked_ms", BigInteger, nullable=True),
)

login_codes = Table(
    "login_codes",
    metadata,
    Column("phone", String(20), primary_key=True),
    Column("code_hash", LargeBinary(32), nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("tries", Integer, nullable=False, server_default="0"),
)

rate_hits = Table(
    "rate_hits",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("bucket", String(80), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Index("ix_rate_hits_bucket_at", "bucket", "at_ms"),
    Index("ix_rate_hits_at", "at_ms"),
)

friendships = Table(
    "friendships",
    metadata,
    Column("user_id", BigInteger, primary_key=True),
    Column("friend_id", BigInteger, primary_key=True),
    Column("created_ms", BigInteger, nullable=False),
)

friend_requests = Table(
    "friend_requests",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("from_id", BigInteger, nullable=False),
    Column("to_id", BigInteger, nullable=False, index=True),
    Column("note", String(200), nullable=False, server_default=""),
    Column("state", String(12), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Index("ix_friend_requests_pair", "from_id", "to_id"),
)

blocks = Table(
    "blocks",
    metadata,
    Column("user_id", BigInteger, primary_key=True),
    Column("blocked_id", BigInteger, primary_key=True),
    Column("created_ms", BigInteger, nullable=False),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),
    Column("direct_key", String(48), nullable=True, unique=True),
    Column("title", String(64), nullable=False, server_default=""),
    Column("announcement", String(2000), nullable=False, server_default=""),
    Column("owner_id", BigInteger, nullable=True),
    Column("approval_required", Integer, nullable=False, server_default="0"),
    Column("seq", BigInteger, nullable=False, server_default="0"),
    Column("created_ms", BigInteger, nullable=False),
)

members = Table(
    "members",
    metadata,
    Column("conv_id", BigInteger, primary_key=True),
    Column("user_id", BigInteger, primary_key=True),
    Column("role", String(8), nullable=False),
    Column("joined_ms", BigInteger, nullable=False),
    Column("from_seq", BigInteger, nullable=False, server_default="0"),
    Column("read_seq", BigInteger, nullable=False, server_default="0"),
    Column("delivered_seq", BigInteger, nullable=False, server_default="0"),
    Column("muted", Integer, nullable=False, server_default="0"),
    Index("ix_members_user", "user_id"),
)

join_requests = Table(
    "join_requests",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("conv_id", BigInteger, nullable=False, index=True),
    Column("user_id", BigInteger, nullable=False),
    Column("inviter_id", BigInteger, nullable=False),
    Column("state", String(12), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

messages = Table(
    "messages",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("conv_id", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("sender_id", BigInteger, nullable=False),
    Column("client_id", String(64), nullable=False),
    Column("kind", String(12), nullable=False),
    Column("body", Text, nullable=False),
    Column("search_text", Text, nullable=False, server_default=""),
    Column("reply_to", BigInteger, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("edited_ms", BigInteger, nullable=True),
    Column("recalled_ms", BigInteger, nullable=True),
    UniqueConstraint("conv_id", "seq", name="uq_messages_conv_seq"),
    UniqueConstraint("sender_id", "client_id", name="uq_messages_sender_client"),
)

events = Table(
    "events",
    metadata,
    Column("user_id", BigInteger, primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("kind", String(24), nullable=False),
    Column("conv_id", BigInteger, nullable=True),
    Column("ref", BigInteger, nullable=True),
    Column("payload", Text, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    sqlite_with_rowid=False,  # the log is read by its key only: one b-tree, not two
)

media = Table(
    "media",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("mime", String(64), nullable=False),
    Column("owner_id", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

media_refs = Table(
    "media_refs",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("conv_id", BigInteger, primary_key=True),
    Column("seq", BigInteger, nullable=False, server_default="0"),
    # the newest message that sent it there: members who joined after it cannot see the blob
)

# Everyone who uploaded a blob (media.owner_id is only the first): each may fetch and send it.
media_uploads = Table(
    "media_uploads",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("user_id", BigInteger, primary_key=True),
    Column("created_ms", BigInteger, nullable=False),
)

# Full-text search over messages.search_text lives in the migration only, because SQLAlchemy Core
# cannot declare it: on SQLite the FTS5 table ``messages_fts`` (trigram tokenizer, external content
# = messages, rowid = messages.id) with the triggers ``messages_fts_ai/_au/_ad`` that keep it in
# sync; on PostgreSQL the pg_trgm GIN index ``ix_messages_search_trgm``. Rebuilding ``messages``
# (e.g. Alembic batch mode on SQLite) drops those triggers: recreate them in the same migration.
