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
    # 1: a number someone texted that has not joined (migration 0006); the first login with
    # the number's code makes it the real account, conversations and all (store/interworking)
    Column("placeholder", Integer, nullable=False, server_default="0"),
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

# ---------------------------------------------------------------- wallet (migration 0002)

# The double-entry ledger (domain/ledger.py). Transfers are never updated or deleted.
ledger_accounts = Table(
    "ledger_accounts",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("owner_kind", String(12), nullable=False),  # user, merchant, system
    Column("owner_id", BigInteger, nullable=False),  # 0 for system accounts
    Column("name", String(32), nullable=False),  # wallet, or the system account's name
    Column("currency", String(3), nullable=False),
    Column("flags", Integer, nullable=False, server_default="0"),
    Column("debits_pending", BigInteger, nullable=False, server_default="0"),
    Column("debits_posted", BigInteger, nullable=False, server_default="0"),
    Column("credits_pending", BigInteger, nullable=False, server_default="0"),
    Column("credits_posted", BigInteger, nullable=False, server_default="0"),
    Column("created_ms", BigInteger, nullable=False),
    UniqueConstraint("owner_kind", "owner_id", "name", "currency", name="uq_ledger_accounts_owner"),
)

ledger_transfers = Table(
    "ledger_transfers",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=False),
    Column("debit_id", BigInteger, nullable=False),
    Column("credit_id", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("flags", Integer, nullable=False),
    # a post or void names its pending transfer; the unique index makes "exactly once" a fact
    # of the database, not only of the code
    Column("pending_id", BigInteger, nullable=True, unique=True),
    Column("expires_ms", BigInteger, nullable=True),
    Column("ref", String(64), nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    Index("ix_ledger_transfers_debit", "debit_id", "id"),
    Index("ix_ledger_transfers_credit", "credit_id", "id"),
)

# Pending transfers still open (state 'pending') or how they ended, for the timeout sweep and
# the checker. One row per pending transfer, made with it.
ledger_pending = Table(
    "ledger_pending",
    metadata,
    Column("transfer_id", ID, primary_key=True, autoincrement=False),
    Column("state", String(8), nullable=False),
    Column("expires_ms", BigInteger, nullable=True),
    Column("resolved_by", BigInteger, nullable=True),
    Index("ix_ledger_pending_open", "state", "expires_ms"),
)

ledger_counters = Table(
    "ledger_counters",
    metadata,
    Column("name", String(16), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

wallets = Table(
    "wallets",
    metadata,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("account_id", BigInteger, nullable=False, unique=True),
    Column("pin_hash", String(128), nullable=True),
    Column("pin_failures", Integer, nullable=False, server_default="0"),
    Column("locked_until_ms", BigInteger, nullable=False, server_default="0"),
    Column("verified", Integer, nullable=False, server_default="0"),  # real name, set by an admin
    Column("strangers", Integer, nullable=False, server_default="0"),  # accept from non-friends
    Column("pin_free_limit", BigInteger, nullable=False, server_default="0"),
    Column("created_ms", BigInteger, nullable=False),
)

# Outgoing money per wallet and day (UTC+8 day number), for the daily cap.
wallet_spend = Table(
    "wallet_spend",
    metadata,
    Column("user_id", BigInteger, primary_key=True),
    Column("day", Integer, primary_key=True),
    Column("amount", BigInteger, nullable=False),
)

# Stripe-style idempotency: the first response to a key is kept and replayed.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("user_id", BigInteger, primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("response", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

# A transfer to a friend in a chat: a pending ledger transfer plus the card in the conversation.
chat_transfers = Table(
    "chat_transfers",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("sender_id", BigInteger, nullable=False, index=True),
    Column("receiver_id", BigInteger, nullable=False, index=True),
    Column("conv_id", BigInteger, nullable=False),
    Column("msg_seq", BigInteger, nullable=False),
    Column("pending_id", BigInteger, nullable=False, unique=True),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("note", String(140), nullable=False, server_default=""),
    Column("state", String(10), nullable=False),  # pending, accepted, declined, returned
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("resolved_ms", BigInteger, nullable=True),
    Index("ix_chat_transfers_open", "state", "expires_ms"),
)

red_packets = Table(
    "red_packets",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("sender_id", BigInteger, nullable=False, index=True),
    Column("conv_id", BigInteger, nullable=False),
    Column("msg_seq", BigInteger, nullable=False),
    Column("kind", String(8), nullable=False),  # single, lucky, equal
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("shares", Integer, nullable=False),
    Column("splits", Text, nullable=False),  # JSON list of the shares in claim order
    Column("claimed_count", Integer, nullable=False, server_default="0"),
    Column("claimed_amount", BigInteger, nullable=False, server_default="0"),
    Column("greeting", String(64), nullable=False, server_default=""),
    Column("state", String(8), nullable=False),  # open, finished, expired
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("refund_transfer_id", BigInteger, nullable=True),
    Index("ix_red_packets_open", "state", "expires_ms"),
)

red_packet_claims = Table(
    "red_packet_claims",
    metadata,
    Column("packet_id", BigInteger, primary_key=True),
    Column("user_id", BigInteger, primary_key=True),
    Column("share_index", Integer, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("transfer_id", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

# Money in from the phone bill or a bank card, money out to a bank account.
funding_orders = Table(
    "funding_orders",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, nullable=False, index=True),
    Column("direction", String(8), nullable=False),  # topup, withdraw
    Column("channel", String(8), nullable=False),  # carrier, bank
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("state", String(10), nullable=False),  # pending, succeeded, failed
    Column("month", Integer, nullable=False),  # yyyymm, for the monthly carrier cap
    Column("instrument", String(64), nullable=False, server_default=""),  # masked card/account
    Column("partner_ref", String(64), nullable=True, unique=True),
    Column("pending_id", BigInteger, nullable=True),  # withdrawals reserve funds
    Column("transfer_id", BigInteger, nullable=True),
    Column("failure", String(64), nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Index("ix_funding_orders_user_month", "user_id", "channel", "month"),
)

merchants = Table(
    "merchants",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("owner_id", BigInteger, nullable=False, index=True),
    Column("name", String(64), nullable=False),
    Column("account_id", BigInteger, nullable=False, unique=True),
    Column("fee_ppm", Integer, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

payment_codes = Table(
    "payment_codes",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("token", String(40), nullable=False, unique=True),
    Column("merchant_id", BigInteger, nullable=False, index=True),
    Column("amount", BigInteger, nullable=True),  # null: a static code, the payer enters it
    Column("currency", String(3), nullable=False),
    Column("description", String(140), nullable=False, server_default=""),
    Column("expires_ms", BigInteger, nullable=True),
    Column("paid_id", BigInteger, nullable=True),  # a dynamic code is paid once
    Column("created_ms", BigInteger, nullable=False),
)

merchant_payments = Table(
    "merchant_payments",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("merchant_id", BigInteger, nullable=False),
    Column("payer_id", BigInteger, nullable=False, index=True),
    Column("code_id", BigInteger, nullable=True),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("fee", BigInteger, nullable=False),
    Column("refunded", BigInteger, nullable=False, server_default="0"),
    Column("transfer_id", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Index("ix_merchant_payments_merchant", "merchant_id", "id"),
)

merchant_refunds = Table(
    "merchant_refunds",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("payment_id", BigInteger, nullable=False, index=True),
    Column("amount", BigInteger, nullable=False),
    Column("fee_returned", BigInteger, nullable=False),
    Column("transfer_id", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

# Bytes and signalling per subscriber device and China-time day, for sponsored-data records
# (domain/usage.py). Rows are only ever added to (additive upserts); no foreign keys, so a
# record outlives a revoked device.
usage_daily = Table(
    "usage_daily",
    metadata,
    Column("day", Integer, primary_key=True),
    Column("user_id", BigInteger, primary_key=True),
    Column("device_id", BigInteger, primary_key=True),
    Column("uplink_bytes", BigInteger, nullable=False),
    Column("downlink_bytes", BigInteger, nullable=False),
    Column("connects", BigInteger, nullable=False),
    Column("heartbeats", BigInteger, nullable=False),
    Column("pushes", BigInteger, nullable=False),
    Column("requests", BigInteger, nullable=False),
    Column("first_ms", BigInteger, nullable=False),
    Column("last_ms", BigInteger, nullable=False),
)

# Full-text search over messages.search_text lives in the migration only, because SQLAlchemy Core
# cannot declare it: on SQLite the FTS5 table ``messages_fts`` (trigram tokenizer, external content
# = messages, rowid = messages.id) with the triggers ``messages_fts_ai/_au/_ad`` that keep it in
# sync; on PostgreSQL the pg_trgm GIN index ``ix_messages_search_trgm``. Rebuilding ``messages``
# (e.g. Alembic batch mode on SQLite) drops those triggers: recreate them in the same migration.

# The SMS outbox: every SMS is stored here before it is handed to the channel (store/sms.py).
sms_outbox = Table(
    "sms_outbox",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("msisdn", String(20), nullable=False),
    Column("text", Text, nullable=False),
    Column("purpose", String(16), nullable=False),  # code, chat, fallback, ...
    Column("ref", BigInteger, nullable=True),  # what the purpose refers to (a message id, ...)
    Column("sender_id", BigInteger, nullable=True),
    # queued, sending, submitted, delivered, failed, rejected (domain/sms_state.py)
    Column("state", String(10), nullable=False),
    Column("smsc_id", String(64), nullable=True, index=True),  # the first part's id at the SMSC
    Column("parts", Integer, nullable=False, server_default="1"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_ms", BigInteger, nullable=False),  # queued: not before; sending: lease end
    Column("created_ms", BigInteger, nullable=False),
    Column("submitted_ms", BigInteger, nullable=True),
    Column("done_ms", BigInteger, nullable=True),
    Column("error", String(64), nullable=True),
    Index("ix_sms_outbox_due", "state", "next_ms"),
)

# One row per submitted part: the SMSC's message id, to match delivery receipts (days later).
sms_parts = Table(
    "sms_parts",
    metadata,
    Column("outbox_id", BigInteger, primary_key=True),
    Column("part", Integer, primary_key=True),
    Column("smsc_id", String(64), nullable=False, index=True),
    Column("state", String(10), nullable=False),  # submitted, delivered, failed
)

# ---------------------------------------------------------------- SMS interworking (0006)

# A Wanglai user's SMS thread with a number not on Wanglai (its placeholder user): where texts
# from that number go (the most recently texted thread) and what keeps the pair able to write.
sms_threads = Table(
    "sms_threads",
    metadata,
    Column("user_id", BigInteger, primary_key=True),  # the number's (placeholder) user
    Column("sender_id", BigInteger, primary_key=True),  # the Wanglai user who texted it
    Column("conv_id", BigInteger, nullable=False),
    Column("msisdn", String(20), nullable=False),
    Column("last_ms", BigInteger, nullable=False),  # the last SMS from this thread
    Index("ix_sms_threads_msisdn", "msisdn", "last_ms"),
)

# Numbers that replied STOP: no more texts from Wanglai users until START.
sms_optouts = Table(
    "sms_optouts",
    metadata,
    Column("msisdn", String(20), primary_key=True),
    Column("created_ms", BigInteger, nullable=False),
)

# SMS each sender used per day (China time), against the free daily quota.
sms_quota = Table(
    "sms_quota",
    metadata,
    Column("user_id", BigInteger, primary_key=True),
    Column("day", Integer, primary_key=True),
    Column("used", Integer, nullable=False),
)

# Chat messages that go (or may go) out as SMS: to a number not on Wanglai, or a fallback to an
# offline user (written only when the sender asked for it). domain/interworking.py: states.
sms_messages = Table(
    "sms_messages",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("conv_id", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("sender_id", BigInteger, nullable=False),
    Column("recipient_id", BigInteger, nullable=False),
    Column("mode", String(8), nullable=False),  # sms, fallback
    Column("state", String(10), nullable=False),
    Column("due_ms", BigInteger, nullable=True),  # a waiting fallback: when it is texted
    Column("reason", String(32), nullable=True),
    Column("updated_ms", BigInteger, nullable=False),
    UniqueConstraint("conv_id", "seq", name="uq_sms_messages_conv_seq"),
    Index("ix_sms_messages_due", "state", "due_ms"),
)
