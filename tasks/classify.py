"""Category suggestion from an item's text: the directory's keywords plus what past routing teaches.

Chinese needs no word segmentation here: character unigrams and bigrams carry the meaning, and a
multinomial naive Bayes over them learns from every routed order. Each category's own keywords are
also added as small training documents and count as strong evidence when they appear verbatim.
"""

import math
import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.directory import Category
from models.enums import Status
from models.privacy import scrub
from models.work_order import WorkOrder

_CJK_RUN = re.compile(r"[\u3400-\u9fff]+")
_LATIN = re.compile(r"[a-z]{2,}")
KEYWORD_WEIGHT = 3  # a keyword counts as this many training documents of its category
# Tuned on the synthetic set (bench/intake_data.py): strong keyword evidence and smoothing that keeps
# n-grams seen once in training from deciding alone make the confidence mean something on new phrasings.
KEYWORD_BONUS = 8.0  # log-odds added per keyword of the category found verbatim in the text
PARENT_BONUS = 1.0  # the same for a keyword of the parent category
ALPHA = 1.0  # additive smoothing
TRAINING_LIMIT = 20_000
REFRESH_SECONDS = 900
# Orders whose category a person or the routing catalogue has stood behind.
ROUTED = (Status.DISPATCHED, Status.RETURN_REQUESTED, Status.HANDLING, Status.REPLIED, Status.VISITING,
          Status.CLOSED, Status.ANSWERED)


def features(text: str) -> Counter[str]:
    """Character unigrams and bigrams of the Chinese runs, and Latin words; numbers carry no meaning here."""
    lowered = scrub(text).lower()
    counts: Counter[str] = Counter()
    for run in _CJK_RUN.findall(lowered):
        counts.update(run)
        counts.update(run[i:i + 2] for i in range(len(run) - 1))
    counts.update(_LATIN.findall(lowered))
    return counts


@dataclass(frozen=True)
class Suggestion:
    """The suggested category code with its confidence (0 to 1), and the runners-up."""

    code: str | None
    confidence: float
    alternatives: tuple[tuple[str, float], ...] = ()


@dataclass
class Classifier:
    """Multinomial naive Bayes over character n-grams, with keyword evidence on top."""

    keywords: dict[str, list[str]]
    parent_keywords: dict[str, list[str]]
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    documents: Counter[str] = field(default_factory=Counter)
    vocabulary: set[str] = field(default_factory=set)
    trained_on: int = 0
    log_prior: dict[str, float] = field(default_factory=dict)
    log_likelihood: dict[str, dict[str, float]] = field(default_factory=dict)
    log_unseen: dict[str, float] = field(default_factory=dict)

    @classmethod
    def build(cls, *, keywords: dict[str, list[str]], parent_keywords: dict[str, list[str]],
              samples: Iterable[tuple[str, str]] = ()) -> "Classifier":
        """Train from the categories' keywords and (text, category code) samples of past routing."""
        model = cls(keywords=keywords, parent_keywords=parent_keywords)
        for code in keywords:
            for word in keywords[code]:
                model._learn(code, features(word), KEYWORD_WEIGHT)
            for word in parent_keywords.get(code, []):
                model._learn(code, features(word), 1)
        for text, code in samples:
            if code in keywords:
                model._learn(code, features(text), 1)
                model.trained_on += 1
        model._freeze()
        return model

    def _freeze(self) -> None:
        """Turn counts into log probabilities once, so that suggesting is a dictionary walk."""
        all_documents = sum(self.documents.values())
        size = len(self.vocabulary) or 1
        for code, counts in self.counts.items():
            denominator = math.log(self.totals[code] + ALPHA * size)
            self.log_prior[code] = math.log(self.documents[code] / all_documents)
            self.log_likelihood[code] = {g: math.log(n + ALPHA) - denominator for g, n in counts.items()}
            self.log_unseen[code] = math.log(ALPHA) - denominator

    def _learn(self, code: str, grams: Counter[str], weight: int) -> None:
        counts = self.counts.setdefault(code, Counter())
        for gram, n in grams.items():
            counts[gram] += n * weight
        self.totals[code] = self.totals.get(code, 0) + sum(grams.values()) * weight
        self.documents[code] += weight
        self.vocabulary.update(grams)

    def scores(self, text: str) -> dict[str, float]:
        """Log-odds per category (higher is likelier)."""
        known = {g: n for g, n in features(text).items() if g in self.vocabulary}
        lowered = text.lower()
        result = {}
        for code, likelihood in self.log_likelihood.items():
            unseen = self.log_unseen[code]
            score = self.log_prior[code] + sum(n * likelihood.get(g, unseen) for g, n in known.items())
            score += KEYWORD_BONUS * sum(1 for k in self.keywords[code] if k.lower() in lowered)
            score += PARENT_BONUS * sum(1 for k in self.parent_keywords.get(code, []) if k.lower() in lowered)
            result[code] = score
        return result

    def suggest(self, text: str, alternatives: int = 3) -> Suggestion:
        """The likeliest category and a confidence from the scores, tempered for the text's length."""
        scores = self.scores(text)
        if not scores or not any(g in self.vocabulary for g in features(text)):
            return Suggestion(None, 0.0)
        # Naive Bayes adds one term per n-gram and is overconfident on long texts: temper by length.
        temper = max(1.0, math.sqrt(sum(features(text).values())) / 2)
        top = max(scores.values())
        weights = {code: math.exp((s - top) / temper) for code, s in scores.items()}
        total = sum(weights.values())
        ranked = sorted(((code, w / total) for code, w in weights.items()), key=lambda cw: -cw[1])
        best, confidence = ranked[0]
        return Suggestion(best, round(confidence, 4), tuple((c, round(p, 4)) for c, p in ranked[1:1 + alternatives]))


def directory_keywords(session: Session) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Leaf categories with their own keywords, and the keywords of their parents."""
    rows = session.execute(select(Category.id, Category.code, Category.parent_id, Category.keywords)).all()
    parents = {parent for _, _, parent, _ in rows if parent}
    by_id = {row.id: row for row in rows}
    leaves = {code: list(words or []) for cid, code, _, words in rows if cid not in parents}
    inherited = {code: list(by_id[parent].keywords or []) if parent else []
                 for cid, code, parent, _ in rows if cid not in parents}
    return leaves, inherited


def past_routing(session: Session, limit: int = TRAINING_LIMIT) -> list[tuple[str, str]]:
    """(text, category code) of the most recent routed orders."""
    return list(session.execute(
        select(WorkOrder.content, Category.code).join(Category, Category.id == WorkOrder.category_id)
        .where(WorkOrder.status.in_([s.value for s in ROUTED])).order_by(WorkOrder.id.desc()).limit(limit)
    ).all())


_CACHE: dict[str, tuple[float, Classifier]] = {}


def classifier(session: Session) -> Classifier:
    """The process's classifier for this database, retrained from past routing every REFRESH_SECONDS."""
    url = session.get_bind().url.render_as_string(hide_password=True)
    cached = _CACHE.get(url)
    if cached and time.monotonic() - cached[0] < REFRESH_SECONDS:
        return cached[1]
    leaves, inherited = directory_keywords(session)
    model = Classifier.build(keywords=leaves, parent_keywords=inherited, samples=past_routing(session))
    _CACHE[url] = (time.monotonic(), model)
    return model


def forget_classifier() -> None:
    """Drop trained classifiers (tests, and after the directory changed)."""
    _CACHE.clear()


def suggest_category(*, session: Session, text: str) -> Suggestion:
    """The suggested category for an item's text."""
    return classifier(session).suggest(text)

