"""usage: per-device daily byte and signalling counts for sponsored-data records

Revision ID: 0005_usage
Revises: 0003_sms
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_usage"
down_revision = "0003_sms"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_daily",
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("device_id", sa.BigInteger(), nullable=False),
        sa.Column("uplink_bytes", sa.BigInteger(), nullable=False),
        sa.Column("downlink_bytes", sa.BigInteger(), nullable=False),
        sa.Column("connects", sa.BigInteger(), nullable=False),
        sa.Column("heartbeats", sa.BigInteger(), nullable=False),
        sa.Column("pushes", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("first_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "user_id", "device_id"),
    )


def downgrade() -> None:
    op.drop_table("usage_daily")
