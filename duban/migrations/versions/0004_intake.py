"""intake: merge links, Open311 tokens, knowledge-base upkeep and gaps, hot-spot alerts, article search

Revision ID: 0004_intake
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import models.base
from models.intake import SEARCH_DDL, SEARCH_DROP

revision = "0004_intake"
down_revision = "0001"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool) -> sa.Column:
    return sa.Column(name, models.base.UTCDateTime(timezone=True), nullable=nullable)


def _fk(column: str, table: str, owner: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{table}.id"], name=op.f(f"fk_{owner}_{column}_{table}"))


def upgrade() -> None:
    op.create_table(
        "merge_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("work_order_id", sa.Integer(), nullable=False),
        sa.Column("master_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        _ts("merged_at", False),
        sa.Column("merged_by", sa.String(length=100), nullable=False),
        _ts("told_at", True),
        _ts("split_at", True),
        sa.Column("split_by", sa.String(length=100), nullable=True),
        sa.Column("split_reason", sa.Text(), nullable=False),
        sa.Column("split_order_id", sa.Integer(), nullable=True),
        _fk("work_order_id", "work_orders", "merge_links"),
        _fk("master_id", "work_orders", "merge_links"),
        _fk("split_order_id", "work_orders", "merge_links"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merge_links")),
        sa.UniqueConstraint("work_order_id", name=op.f("uq_merge_links_work_order_id")),
    )
    op.create_index(op.f("ix_merge_links_master_id"), "merge_links", ["master_id"], unique=False)

    op.create_table(
        "intake_tokens",
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("work_order_id", sa.Integer(), nullable=False),
        _ts("created_at", False),
        _fk("work_order_id", "work_orders", "intake_tokens"),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_intake_tokens")),
    )
    op.create_index(op.f("ix_intake_tokens_work_order_id"), "intake_tokens", ["work_order_id"], unique=False)

    op.create_table(
        "kb_gaps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("work_order_id", sa.Integer(), nullable=True),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column("owner_unit_id", sa.Integer(), nullable=True),
        sa.Column("article_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=21), nullable=False),
        _ts("asked_at", False),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        _ts("listed_at", True),
        sa.CheckConstraint("reason IN ('no_article', 'stale_article', 'staff')", name=op.f("ck_kb_gaps_reason_valid")),
        _fk("work_order_id", "work_orders", "kb_gaps"),
        _fk("category_id", "categories", "kb_gaps"),
        _fk("owner_unit_id", "units", "kb_gaps"),
        _fk("article_id", "kb_articles", "kb_gaps"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_gaps")),
    )
    op.create_index("ix_kb_gaps_owner_listed", "kb_gaps", ["owner_unit_id", "listed_at"], unique=False)
    op.create_index(op.f("ix_kb_gaps_work_order_id"), "kb_gaps", ["work_order_id"], unique=False)

    op.create_table(
        "kb_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        _ts("reviewed_at", False),
        sa.Column("was_due", sa.Date(), nullable=False),
        sa.Column("next_due", sa.Date(), nullable=False),
        sa.Column("reviewed_by", sa.String(length=100), nullable=False),
        _fk("article_id", "kb_articles", "kb_reviews"),
        _fk("unit_id", "units", "kb_reviews"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_reviews")),
    )
    op.create_index(op.f("ix_kb_reviews_article_id"), "kb_reviews", ["article_id"], unique=False)
    op.create_index(op.f("ix_kb_reviews_unit_id"), "kb_reviews", ["unit_id"], unique=False)

    op.create_table(
        "kb_reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("review_by", sa.Date(), nullable=False),
        sa.Column("rung", sa.String(length=16), nullable=False),
        _ts("sent_at", False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        _fk("article_id", "kb_articles", "kb_reminders"),
        _fk("unit_id", "units", "kb_reminders"),
        _fk("case_id", "supervision_cases", "kb_reminders"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_reminders")),
        sa.UniqueConstraint("article_id", "review_by", "rung", name="uq_kb_reminders_article_rung"),
    )
    op.create_index(op.f("ix_kb_reminders_unit_id"), "kb_reminders", ["unit_id"], unique=False)

    op.create_table(
        "hot_spot_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=True),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("expected", sa.Double(), nullable=False),
        sa.Column("order_ids", sa.JSON(), nullable=False),
        _ts("raised_at", False),
        sa.CheckConstraint("level IN ('topic', 'category')", name=op.f("ck_hot_spot_alerts_level_valid")),
        _fk("category_id", "categories", "hot_spot_alerts"),
        _fk("district_id", "districts", "hot_spot_alerts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hot_spot_alerts")),
        sa.UniqueConstraint("category_id", "scope", "day", name="uq_hot_spot_alerts_scope_day"),
    )
    op.create_index(op.f("ix_hot_spot_alerts_day"), "hot_spot_alerts", ["day"], unique=False)

    for statement in SEARCH_DDL.get(op.get_bind().dialect.name, []):
        op.execute(statement)


def downgrade() -> None:
    for statement in SEARCH_DROP.get(op.get_bind().dialect.name, []):
        op.execute(statement)
    for table in ("hot_spot_alerts", "kb_reminders", "kb_reviews", "kb_gaps", "intake_tokens", "merge_links"):
        op.drop_table(table)
