"""interworking: SMS threads with numbers not on Wanglai (placeholder users), opt-outs, the
daily SMS quota and the SMS state of chat messages (texts and fallbacks)

Revision ID: 0006_interworking
Revises: 0005_usage
Create Date: 2026-11-29 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_interworking"
down_revision = "0005_usage"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # ADD COLUMN with a constant default: no table rebuild on SQLite (the users table keeps
    # its rows and indexes as they are).
    op.add_column(
        "users", sa.Column("placeholder", sa.Integer(), server_default="0", nullable=False)
    )
    op.create_table(
        "sms_threads",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("sender_id", sa.BigInteger(), nullable=False),
        sa.Column("conv_id", sa.BigInteger(), nullable=False),
        sa.Column("msisdn", sa.String(length=20), nullable=False),
        sa.Column("last_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "sender_id"),
    )
    op.create_index("ix_sms_threads_msisdn", "sms_threads", ["msisdn", "last_ms"], unique=False)
    op.create_table(
        "sms_optouts",
        sa.Column("msisdn", sa.String(length=20), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("msisdn"),
    )
    op.create_table(
        "sms_quota",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "day"),
    )
    op.create_table(
        "sms_messages",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("conv_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("sender_id", sa.BigInteger(), nullable=False),
        sa.Column("recipient_id", sa.BigInteger(), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("due_ms", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("conv_id", "seq", name="uq_sms_messages_conv_seq"),
    )
    op.create_index("ix_sms_messages_due", "sms_messages", ["state", "due_ms"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_sms_messages_due", table_name="sms_messages")
    op.drop_table("sms_messages")
    op.drop_table("sms_quota")
    op.drop_table("sms_optouts")
    op.drop_index("ix_sms_threads_msisdn", table_name="sms_threads")
    op.drop_table("sms_threads")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("placeholder")
