"""history: the call log and published totals of past periods

Revision ID: 0005_history
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0005_history"
down_revision = "0001"
branch_labels = None
depends_on = None

_CHANNELS = "'hotline', 'mayor_mailbox', 'weibo', 'wechat', 'online_post', 'police_110', 'county_platform', 'open311'"
_OUTCOMES = "'dropped', 'progress_query', 'repeat', 'outside_remit', 'transferred', 'harassment'"


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=23), nullable=False),
        sa.Column("outcome", sa.String(length=22), nullable=False),
        sa.Column("order_number", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.CheckConstraint(f"channel IN ({_CHANNELS})", name=op.f("ck_calls_channel_valid")),
        sa.CheckConstraint(f"outcome IN ({_OUTCOMES})", name=op.f("ck_calls_outcome_valid")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
        sa.UniqueConstraint("ref", name=op.f("uq_calls_ref")),
    )
    op.create_index("ix_calls_at", "calls", ["at"], unique=False)
    op.create_table(
        "published_totals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("period_from", sa.Date(), nullable=False),
        sa.Column("period_to", sa.Date(), nullable=False),
        sa.Column("calls_connected", sa.Integer(), nullable=True),
        sa.Column("calls_from_county_platforms", sa.Integer(), nullable=True),
        sa.Column("valid_items", sa.Integer(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_published_totals")),
        sa.UniqueConstraint("period_from", "period_to", name="uq_published_totals_period"),
    )


def downgrade() -> None:
    op.drop_table("published_totals")
    op.drop_index("ix_calls_at", table_name="calls")
    op.drop_table("calls")
