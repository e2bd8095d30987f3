"""The knowledge base: articles, their import and review, and full-text search that works for Chinese."""

import csv
import json
import logging
import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from duban.errors import CalendarNotCovered, NotFound, ValidationFailed
from models.base import utcnow
from models.calendar import add_working_time
from models.directory import Category, Unit
from models.intake import SEARCH_DDL, SEARCH_DOCUMENT_PG, KbReview
from models.privacy import scrub
from models.supervision import Article
from tasks.policy_store import current_policy

# Words that say how someone asks, not what about; they would match every article.
_STOP = frozenset(
    "请问 你好 您好 怎么 怎样 如何 什么 哪里 哪些 哪个 可以 需要 是否 能否 能不能 一下 我们 我的 你们 他们 这个 那个 "
    "现在 咨询 问题 情况 谢谢 麻烦 想问 知道 时候 为什么 还是 或者 以及 一个 没有 已经 应该 告诉 出来 要带 "
    "什么样 怎么办 多少 多久 这样 那样 一些 有关 关于 相关 不能 是不是 有没有 可不可以".split()
)
_MEANINGFUL = re.compile(r"[\u3400-\u9fffA-Za-z]")
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_TERMS = 24
CANDIDATES = 200
# How much a query term counts when found in each part of an article.
_FIELD_WEIGHT = {"keywords": 1.0, "title": 0.9, "body": 0.6}


def ensure_search_index(engine: Engine) -> None:
    """Create the article search index for the engine's database (FTS5 trigram, or pg_trgm); idempotent."""
    statements = SEARCH_DDL.get(engine.dialect.name, [])
    with engine.begin() as connection:
        for statement in statements:
            connection.exec_driver_sql(statement)


@lru_cache(maxsize=1)
def _jieba() -> Any:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba


def query_terms(question: str, *, for_search: bool = False) -> list[str]:
    """The words of a question worth looking for, minus question words and numbers.

    jieba's precise mode gives the words a question is scored by; its search mode adds the shorter
    words inside long ones, which finds more candidate articles through the index.
    """
    text = scrub(question).lower()[:2000]
    words = _jieba().lcut_for_search(text) if for_search else _jieba().lcut(text)
    terms = dict.fromkeys(w.strip() for w in words)
    return [t for t in terms if len(t) >= 2 and t not in _STOP and not t.isdigit() and _MEANINGFUL.search(t)][
        :MAX_TERMS]


@dataclass(frozen=True)
class KbHit:
    article_id: int
    code: str
    title: str
    score: float
    review_by: date
    owner_unit_id: int | None
    category_id: int | None
    snippet: str


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _candidate_ids(session: Session, terms: list[str], question: str) -> set[int]:
    """Articles containing any term, best first as the database's own index ranks them."""
    if session.get_bind().dialect.name == "sqlite":
        found: set[int] = set()
        long_terms = [t for t in terms if len(t) >= 3]
        if long_terms:
            # FTS5 trigram matches terms of three characters or more through the index, ranked by bm25.
            match = " OR ".join('"' + t.replace('"', '""') + '"' for t in long_terms)
            found |= set(session.scalars(text("SELECT rowid FROM kb_articles_fts WHERE kb_articles_fts MATCH :m "
                                              f"ORDER BY rank LIMIT {CANDIDATES}"), {"m": match}))
        short = {f"p{i}": _like(t) for i, t in enumerate(t for t in terms if len(t) < 3)}
        if short:
            where = " OR ".join(f"title LIKE :{p} ESCAPE '\\' OR keywords LIKE :{p} ESCAPE '\\' "
                                f"OR body LIKE :{p} ESCAPE '\\'" for p in short)
            found |= set(session.scalars(text(f"SELECT rowid FROM kb_articles_fts WHERE {where} "
                                              f"LIMIT {CANDIDATES}"), short))
        return found
    params = {f"p{i}": _like(term) for i, term in enumerate(terms)} | {"q": question}
    document = " OR ".join(f"{SEARCH_DOCUMENT_PG} ILIKE :p{i}" for i in range(len(terms)))
    keywords = " OR ".join(f"k ILIKE :p{i}" for i in range(len(terms)))
    sql = (f"SELECT id FROM kb_articles WHERE active AND (({document}) OR EXISTS ("
           f"SELECT 1 FROM json_array_elements_text(kb_articles.keywords) AS kw(k) WHERE {keywords})) "
           f"ORDER BY word_similarity(:q, {SEARCH_DOCUMENT_PG}) DESC LIMIT {CANDIDATES}")
    return set(session.scalars(text(sql), params))


def _coverage(term: str, field: str) -> float:
    """1 when the field holds the term; for a long term, the share of its character pairs it holds."""
    if term in field:
        return 1.0
    if len(term) < 3:
        return 0.0
    pairs = [term[i:i + 2] for i in range(len(term) - 1)]
    return sum(1 for pair in pairs if pair in field) / len(pairs)


def score_article(terms: list[str], *, title: str, keywords: list[str], body: str) -> float:
    """The share of the question's words (longer words weigh more) an article covers, 0 to 1."""
    if not terms:
        return 0.0
    fields = {"keywords": " ".join(keywords).lower(), "title": title.lower(), "body": body.lower()}
    total = found = 0.0
    for term in terms:
        weight = min(len(term), 4)
        total += weight
        found += weight * max(w * _coverage(term, fields[name]) for name, w in _FIELD_WEIGHT.items())
    return round(found / total, 4)


def _snippet(body: str, terms: list[str]) -> str:
    positions = [body.find(t) for t in terms if t in body]
    start = max(min(positions) - 20, 0) if positions else 0
    return body[start:start + 100]


def search_articles(*, session: Session, question: str, limit: int = 5) -> list[KbHit]:
    """Active articles best answering a question, best first; the score is comparable across databases."""
    terms = query_terms(question)
    if not terms:
        return []
    ids = _candidate_ids(session, query_terms(question, for_search=True), question[:2000])
    if not ids:
        return []
    articles = session.scalars(select(Article).where(Article.id.in_(ids), Article.active.is_(True)))
    hits = [
        KbHit(a.id, a.code, a.title, score_article(terms, title=a.title, keywords=list(a.keywords), body=a.body),
              a.review_by, a.owner_unit_id, a.category_id, _snippet(a.body, terms))
        for a in articles
    ]
    hits = [h for h in hits if h.score > 0]
    hits.sort(key=lambda h: (-h.score, h.code))
    return hits[:limit]


@dataclass(frozen=True)
class ImportSummary:
    created: int
    updated: int
    unchanged: int


def next_review(session: Session, at: datetime) -> date:
    """The review-by date of an article reviewed at `at`: policy knowledge_base.review_every later."""
    policy = current_policy(session).policy
    due = add_working_time(at, policy.knowledge_base.review_every, policy.work_calendar())
    return due.astimezone(policy.work_calendar().tz).date()


def read_articles(path: Path) -> list[dict[str, Any]]:
    """Raw article records from YAML (a list, or `articles:`), JSON Lines or CSV (keywords split on |)."""
    if not path.is_file():
        raise ValidationFailed(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with path.open(encoding="utf-8-sig", newline="") as fh:
                return [{k: v for k, v in row.items() if v not in (None, "")} for row in csv.DictReader(fh)]
        if suffix in (".jsonl", ".ndjson"):
            with path.open(encoding="utf-8") as fh:
                return [json.loads(line) for line in fh if line.strip()]
        if suffix in (".yaml", ".yml"):
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            return data.get("articles", []) if isinstance(data, dict) else data or []
    except (ValueError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValidationFailed(f"{path}: cannot be read: {exc}") from None
    raise ValidationFailed(f"{path}: unknown file type {suffix!r}; use .yaml, .jsonl or .csv")


def _keywords(value: Any) -> list[str] | None:
    if isinstance(value, str):
        value = value.split("|")
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        return None
    return [k.strip() for k in value if k.strip()]


def _check_article(record: Any, categories: dict[str, int], units: dict[str, int]) -> tuple[dict[str, Any], list[str]]:
    if not isinstance(record, dict):
        return {}, ["expected a mapping of fields"]
    problems, values = [], {}
    allowed = {"code", "title", "body", "keywords", "category", "owner_unit", "review_by", "active"}
    problems += [f"{key}: unknown field; expected one of {', '.join(sorted(allowed))}" for key in record
                 if key not in allowed]
    for key, limit in (("code", 64), ("title", 200), ("body", 20_000)):
        value = record.get(key)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{key}: is required")
        elif len(value) > limit:
            problems.append(f"{key}: is longer than {limit} characters")
        else:
            values[key] = value.strip()
    if "code" in values and not _CODE.fullmatch(values["code"]):
        problems.append("code: use letters, digits, '.', '_' or '-'")
    keywords = _keywords(record.get("keywords", []))
    if keywords is None:
        problems.append("keywords: expected a list of words (CSV: separated by |)")
    values["keywords"] = keywords or []
    for key, known, column in (("category", categories, "category_id"), ("owner_unit", units, "owner_unit_id")):
        code = record.get(key)
        if code is None:
            if key == "owner_unit":
                problems.append(f"{key}: is required; the unit that keeps the article current")
        elif code not in known:
            problems.append(f"{key}: unknown code {code!r}; see `duban directory load`")
        else:
            values[column] = known[code]
    review_by = record.get("review_by")
    if review_by is not None:
        try:
            values["review_by"] = review_by if isinstance(review_by, date) else date.fromisoformat(str(review_by))
        except ValueError:
            problems.append(f"review_by: {review_by!r} is not a date; write e.g. 2021-06-30")
    active = record.get("active", True)
    if isinstance(active, str):
        active = active.strip().lower() not in ("false", "0", "no", "否")
    values["active"] = bool(active)
    return values, problems


def import_articles(*, session: Session, path: Path, at: datetime | None = None) -> ImportSummary:
    """Insert or update articles by code; any bad record refuses the whole file, naming record and field."""
    at = at or utcnow()
    records = read_articles(path)
    categories = dict(session.execute(select(Category.code, Category.id)).all())
    units = dict(session.execute(select(Unit.code, Unit.id)).all())
    checked, problems = [], []
    for i, record in enumerate(records, start=1):
        values, found = _check_article(record, categories, units)
        problems += [f"record {i} ({values.get('code', '?')}): {p}" for p in found]
        checked.append(values)
    codes = [v.get("code") for v in checked]
    problems += [f"code {c!r} appears more than once" for c in sorted({c for c in codes if c and codes.count(c) > 1})]
    if problems:
        raise ValidationFailed(f"{path}: nothing was imported:\n  " + "\n  ".join(problems))
    if any("review_by" not in values for values in checked):
        try:
            default_review = next_review(session, at)
        except CalendarNotCovered as exc:
            raise ValidationFailed(f"{path}: articles without review_by are due one knowledge_base.review_every "
                                   f"from now, but {exc}; or give each article its review_by") from None
    existing = {a.code: a for a in session.scalars(select(Article).where(Article.code.in_(codes)))}
    created = updated = 0
    for values in checked:
        if "review_by" not in values:
            values["review_by"] = default_review
        values.setdefault("category_id", None)
        article = existing.get(values["code"])
        if article is None:
            session.add(Article(**values, updated_at=at))
            created += 1
        elif any(getattr(article, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(article, key, value)
            article.updated_at = at
            updated += 1
    session.flush()
    return ImportSummary(created, updated, len(checked) - created - updated)


def review_article(*, session: Session, code: str, reviewed_by: str, at: datetime | None = None) -> date:
    """The owner unit confirms an article is current: its next review-by date, recorded for the scorecard."""
    at = at or utcnow()
    article = session.scalar(select(Article).where(Article.code == code))
    if article is None:
        raise NotFound(f"no knowledge-base article {code!r}")
    due = next_review(session, at)
    session.add(KbReview(article_id=article.id, unit_id=article.owner_unit_id, reviewed_at=at,
                         was_due=article.review_by, next_due=due, reviewed_by=reviewed_by))
    article.review_by, article.updated_at = due, at
    session.flush()
    return due


def article_by_code(*, session: Session, code: str) -> Article:
    """An article by its code, or NotFound."""
    article = session.scalar(select(Article).where(Article.code == code))
    if article is None:
        raise NotFound(f"no knowledge-base article {code!r}")
    return article

