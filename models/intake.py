"""Intake's own records: merge links, Open311 tokens, knowledge-base upkeep and gaps, hot-spot alerts."""

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, code_column, enum_check, utcnow


class GapReason(StrEnum):
    NO_ARTICLE = "no_article"
    STALE_ARTICLE = "stale_article"
    STAFF = "staff"


class HotSpotLevel(StrEnum):
    TOPIC = "topic"  # a leaf category such as noise or cooking fumes
    CATEGORY = "category"  # a top-level category


class MergeLink(Base):
    """A duplicate appeal merged under a master order; a supervisor's split ends the link."""

    __tablename__ = "merge_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), unique=True)
    master_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    score: Mapped[float]
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    merged_at: Mapped[datetime]
    merged_by: Mapped[str] = mapped_column(String(100))
    # The citizen of the merged item was told the master's outcome.
    told_at: Mapped[datetime | None]
    split_at: Mapped[datetime | None]
    split_by: Mapped[str | None] = mapped_column(String(100))
    split_reason: Mapped[str] = mapped_column(Text, default="")
    split_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"))


class IntakeToken(Base):
    """An Open311 token handed to a client with its request, resolvable with GET tokens/{id}."""

    __tablename__ = "intake_tokens"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class KbGap(Base):
    """A consultation the knowledge base could not answer, listed to the unit that should write the article."""

    __tablename__ = "kb_gaps"
    __table_args__ = (
        enum_check("reason", GapReason),
        Index("ix_kb_gaps_owner_listed", "owner_unit_id", "listed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    question: Mapped[str] = mapped_column(Text)
    work_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"), index=True)
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))
    owner_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    article_id: Mapped[int | None] = mapped_column(ForeignKey("kb_articles.id"))
    reason: Mapped[str] = mapped_column(code_column(GapReason))
    asked_at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(String(100))
    listed_at: Mapped[datetime | None]


class KbReview(Base):
    """An owner unit confirmed an article is current; the next review falls due `next_due`."""

    __tablename__ = "kb_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    reviewed_at: Mapped[datetime]
    was_due: Mapped[date]
    next_due: Mapped[date]
    reviewed_by: Mapped[str] = mapped_column(String(100))


class KbReminder(Base):
    """One rung of the staleness ladder fired for one article and review-by date; never twice."""

    __tablename__ = "kb_reminders"
    __table_args__ = (UniqueConstraint("article_id", "review_by", "rung", name="uq_kb_reminders_article_rung"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    review_by: Mapped[date]
    rung: Mapped[str] = mapped_column(String(16))
    sent_at: Mapped[datetime]
    case_id: Mapped[int | None] = mapped_column(ForeignKey("supervision_cases.id"))


class HotSpotAlert(Base):
    """A category (or topic) in a district surging over its rolling baseline, with the orders behind it."""

    __tablename__ = "hot_spot_alerts"
    __table_args__ = (
        enum_check("level", HotSpotLevel),
        UniqueConstraint("category_id", "scope", "day", name="uq_hot_spot_alerts_scope_day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    district_id: Mapped[int | None] = mapped_column(ForeignKey("districts.id"))
    # The district code, or "city" for items without one; part of the uniqueness key.
    scope: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(code_column(HotSpotLevel))
    day: Mapped[date] = mapped_column(index=True)
    window_days: Mapped[int]
    count: Mapped[int]
    expected: Mapped[float]
    order_ids: Mapped[list[Any]] = mapped_column(default=list)
    raised_at: Mapped[datetime]


# Full-text search over kb_articles: SQLite FTS5 with the trigram tokenizer (works for Chinese, which has no
# spaces), kept in step by triggers; on PostgreSQL a pg_trgm GIN index on the searched text.
SEARCH_DOCUMENT_PG = "(title || ' ' || body)"
_SQLITE_FTS_ROW = "(SELECT group_concat(value, ' ') FROM json_each({row}.keywords))"
SEARCH_DDL: dict[str, list[str]] = {
    "sqlite": [
        "CREATE VIRTUAL TABLE IF NOT EXISTS kb_articles_fts USING fts5(title, keywords, body, tokenize='trigram')",
        "CREATE TRIGGER IF NOT EXISTS kb_articles_fts_insert AFTER INSERT ON kb_articles BEGIN "
        "INSERT INTO kb_articles_fts(rowid, title, keywords, body) "
        f"VALUES (new.id, new.title, {_SQLITE_FTS_ROW.format(row='new')}, new.body); END",
        "CREATE TRIGGER IF NOT EXISTS kb_articles_fts_update AFTER UPDATE ON kb_articles BEGIN "
        "DELETE FROM kb_articles_fts WHERE rowid = old.id; "
        "INSERT INTO kb_articles_fts(rowid, title, keywords, body) "
        f"VALUES (new.id, new.title, {_SQLITE_FTS_ROW.format(row='new')}, new.body); END",
        "CREATE TRIGGER IF NOT EXISTS kb_articles_fts_delete AFTER DELETE ON kb_articles BEGIN "
        "DELETE FROM kb_articles_fts WHERE rowid = old.id; END",
        # Articles written before the index existed.
        "INSERT INTO kb_articles_fts(rowid, title, keywords, body) "
        f"SELECT id, title, {_SQLITE_FTS_ROW.format(row='kb_articles')}, body FROM kb_articles "
        "WHERE id NOT IN (SELECT rowid FROM kb_articles_fts)",
    ],
    "postgresql": [
        "CREATE EXTENSION IF NOT EXISTS pg_trgm",
        "CREATE INDEX IF NOT EXISTS ix_kb_articles_search_trgm ON kb_articles "
        f"USING gin ({SEARCH_DOCUMENT_PG} gin_trgm_ops)",
    ],
}
SEARCH_DROP: dict[str, list[str]] = {
    "sqlite": [
        "DROP TRIGGER IF EXISTS kb_articles_fts_insert",
        "DROP TRIGGER IF EXISTS kb_articles_fts_update",
        "DROP TRIGGER IF EXISTS kb_articles_fts_delete",
        "DROP TABLE IF EXISTS kb_articles_fts",
    ],
    "postgresql": ["DROP INDEX IF EXISTS ix_kb_articles_search_trgm"],
}
