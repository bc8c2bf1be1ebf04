"""wallet: ledger, wallets, transfers, red packets, funding, merchants

Revision ID: 0002_wallet
Revises: 0001_spine
Create Date: 2026-11-28 05:32:37.259901
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_wallet"
down_revision = "0001_spine"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chat_transfers",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("sender_id", sa.BigInteger(), nullable=False),
        sa.Column("receiver_id", sa.BigInteger(), nullable=False),
        sa.Column("conv_id", sa.BigInteger(), nullable=False),
        sa.Column("msg_seq", sa.BigInteger(), nullable=False),
        sa.Column("pending_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("note", sa.String(length=140), server_default="", nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("resolved_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pending_id"),
    )
    with op.batch_alter_table("chat_transfers", schema=None) as batch_op:
        batch_op.create_index("ix_chat_transfers_open", ["state", "expires_ms"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_chat_transfers_receiver_id"), ["receiver_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_chat_transfers_sender_id"), ["sender_id"], unique=False
        )

    op.create_table(
        "funding_orders",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("instrument", sa.String(length=64), server_default="", nullable=False),
        sa.Column("partner_ref", sa.String(length=64), nullable=True),
        sa.Column("pending_id", sa.BigInteger(), nullable=True),
        sa.Column("transfer_id", sa.BigInteger(), nullable=True),
        sa.Column("failure", sa.String(length=64), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("partner_ref"),
    )
    with op.batch_alter_table("funding_orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_funding_orders_user_id"), ["user_id"], unique=False)
        batch_op.create_index(
            "ix_funding_orders_user_month", ["user_id", "channel", "month"], unique=False
        )

    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "key"),
    )
    op.create_table(
        "ledger_accounts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("owner_kind", sa.String(length=12), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("flags", sa.Integer(), server_default="0", nullable=False),
        sa.Column("debits_pending", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("debits_posted", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("credits_pending", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("credits_posted", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "owner_kind", "owner_id", "name", "currency", name="uq_ledger_accounts_owner"
        ),
    )
    op.create_table(
        "ledger_counters",
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "ledger_pending",
        sa.Column(
            "transfer_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=True),
        sa.Column("resolved_by", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("transfer_id"),
    )
    with op.batch_alter_table("ledger_pending", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_pending_open", ["state", "expires_ms"], unique=False)

    op.create_table(
        "ledger_transfers",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("debit_id", sa.BigInteger(), nullable=False),
        sa.Column("credit_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("flags", sa.Integer(), nullable=False),
        sa.Column("pending_id", sa.BigInteger(), nullable=True),
        sa.Column("expires_ms", sa.BigInteger(), nullable=True),
        sa.Column("ref", sa.String(length=64), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pending_id"),
    )
    with op.batch_alter_table("ledger_transfers", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_transfers_credit", ["credit_id", "id"], unique=False)
        batch_op.create_index("ix_ledger_transfers_debit", ["debit_id", "id"], unique=False)

    op.create_table(
        "merchant_payments",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("merchant_id", sa.BigInteger(), nullable=False),
        sa.Column("payer_id", sa.BigInteger(), nullable=False),
        sa.Column("code_id", sa.BigInteger(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("refunded", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("transfer_id", sa.BigInteger(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("merchant_payments", schema=None) as batch_op:
        batch_op.create_index("ix_merchant_payments_merchant", ["merchant_id", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_merchant_payments_payer_id"), ["payer_id"], unique=False
        )

    op.create_table(
        "merchant_refunds",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("payment_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("fee_returned", sa.BigInteger(), nullable=False),
        sa.Column("transfer_id", sa.BigInteger(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("merchant_refunds", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_merchant_refunds_payment_id"), ["payment_id"], unique=False
        )

    op.create_table(
        "merchants",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("fee_ppm", sa.Integer(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id"),
    )
    with op.batch_alter_table("merchants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_merchants_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "payment_codes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("token", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("description", sa.String(length=140), server_default="", nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=True),
        sa.Column("paid_id", sa.BigInteger(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token"),
    )
    with op.batch_alter_table("payment_codes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_payment_codes_merchant_id"), ["merchant_id"], unique=False
        )

    op.create_table(
        "red_packet_claims",
        sa.Column("packet_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("share_index", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("transfer_id", sa.BigInteger(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("packet_id", "user_id"),
    )
    op.create_table(
        "red_packets",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("sender_id", sa.BigInteger(), nullable=False),
        sa.Column("conv_id", sa.BigInteger(), nullable=False),
        sa.Column("msg_seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("shares", sa.Integer(), nullable=False),
        sa.Column("splits", sa.Text(), nullable=False),
        sa.Column("claimed_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("claimed_amount", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("greeting", sa.String(length=64), server_default="", nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("refund_transfer_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("red_packets", schema=None) as batch_op:
        batch_op.create_index("ix_red_packets_open", ["state", "expires_ms"], unique=False)
        batch_op.create_index(batch_op.f("ix_red_packets_sender_id"), ["sender_id"], unique=False)

    op.create_table(
        "wallet_spend",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "day"),
    )
    op.create_table(
        "wallets",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("pin_hash", sa.String(length=128), nullable=True),
        sa.Column("pin_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until_ms", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("verified", sa.Integer(), server_default="0", nullable=False),
        sa.Column("strangers", sa.Integer(), server_default="0", nullable=False),
        sa.Column("pin_free_limit", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
        sa.UniqueConstraint("account_id"),
    )


def downgrade() -> None:
    op.drop_table("wallets")
    op.drop_table("wallet_spend")
    with op.batch_alter_table("red_packets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_red_packets_sender_id"))
        batch_op.drop_index("ix_red_packets_open")

    op.drop_table("red_packets")
    op.drop_table("red_packet_claims")
    with op.batch_alter_table("payment_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_codes_merchant_id"))

    op.drop_table("payment_codes")
    with op.batch_alter_table("merchants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_merchants_owner_id"))

    op.drop_table("merchants")
    with op.batch_alter_table("merchant_refunds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_merchant_refunds_payment_id"))

    op.drop_table("merchant_refunds")
    with op.batch_alter_table("merchant_payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_merchant_payments_payer_id"))
        batch_op.drop_index("ix_merchant_payments_merchant")

    op.drop_table("merchant_payments")
    with op.batch_alter_table("ledger_transfers", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_transfers_debit")
        batch_op.drop_index("ix_ledger_transfers_credit")

    op.drop_table("ledger_transfers")
    with op.batch_alter_table("ledger_pending", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_pending_open")

    op.drop_table("ledger_pending")
    op.drop_table("ledger_counters")
    op.drop_table("ledger_accounts")
    op.drop_table("idempotency_keys")
    with op.batch_alter_table("funding_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_funding_orders_user_month")
        batch_op.drop_index(batch_op.f("ix_funding_orders_user_id"))

    op.drop_table("funding_orders")
    with op.batch_alter_table("chat_transfers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chat_transfers_sender_id"))
        batch_op.drop_index(batch_op.f("ix_chat_transfers_receiver_id"))
        batch_op.drop_index("ix_chat_transfers_open")

    op.drop_table("chat_transfers")
