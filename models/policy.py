"""policy.yaml: loading it with every problem named by key and line, and the rules it answers."""

import difflib
import hashlib
import json
import re
from datetime import date
from pathlib import Path
from typing import Any, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from duban.errors import PolicyError
from models.calendar import Amount, TimeUnit, WorkCalendar
from models.policy_schema import (
    CalendarPolicy,
    Escalation,
    Extensions,
    HotSpots,
    KnowledgeBase,
    Recipients,
    Routing,
    Scorecard,
    Section,
    Stages,
    StagesPolicy,
    TimeLimits,
)
from models.policy_values import STAGE_NAMES, KeyPath, problems, shown

__all__ = ["Policy", "check_references", "load_policy", "parse_policy", "policy_warnings"]

_DATE = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_BOUNDS = {
    "greater_than": (">", "gt"),
    "greater_than_equal": (">=", "ge"),
    "less_than": ("<", "lt"),
    "less_than_equal": ("<=", "le"),
}


class Policy(Section):
    """The whole of policy.yaml: time limits, routing, escalation, optional stages and the rest."""

    name: str = Field(min_length=1)
    timezone: str = "Asia/Shanghai"
    calendar: CalendarPolicy
    time_limits: TimeLimits
    routing: Routing
    escalation: Escalation
    stages: StagesPolicy
    extensions: Extensions
    scorecard: Scorecard
    hot_spots: HotSpots
    knowledge_base: KnowledgeBase
    recipients: Recipients

    _source: str = PrivateAttr("policy.yaml")
    _text: str = PrivateAttr("")
    _tree: Any = PrivateAttr(None)
    _work_calendar: WorkCalendar | None = PrivateAttr(None)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            problems([((), f'"{name}" is not a time zone; write e.g. "Asia/Shanghai"')])
        return name

    @model_validator(mode="after")
    def _ladder_delays_grow(self) -> "Policy":
        # Delays in different units are compared through this calendar's working day, so
        # "1 working_days" and "7 working_hours" count as equal on a seven-hour day.
        per_minute = {
            TimeUnit.MINUTES: 1.0,
            TimeUnit.HOURS: 60.0,
            TimeUnit.WORKING_HOURS: 60.0,
            TimeUnit.WORKING_DAYS: self.calendar.day_minutes(),
        }
        found: list[tuple[KeyPath, str]] = []
        longest: tuple[str, Amount, float] | None = None
        for i, step in enumerate(self.escalation.ladder):
            if step.after is None:
                continue
            minutes = step.after.value * per_minute[step.after.unit]
            if longest and minutes < longest[2]:
                found.append((
                    ("escalation", "ladder", i, "after"),
                    f'"{step.after}" is shorter than the {longest[0]} rung\'s "{longest[1]}"; '
                    "later rungs may not fire earlier",
                ))
            else:
                longest = (step.rung, step.after, minutes)
        problems(found)
        return self

    @property
    def source(self) -> str:
        """Where the policy was read from, as used in messages."""
        return self._source

    @property
    def source_text(self) -> str:
        """The text the policy was parsed from, comments included, for storing a version."""
        return self._text

    def work_calendar(self) -> WorkCalendar:
        """The working calendar: chinese-calendar plus the local entries under `calendar`."""
        if self._work_calendar is None:
            self._work_calendar = WorkCalendar(
                tz=ZoneInfo(self.timezone),
                periods=tuple(self.calendar.working_periods),
                extra_holidays=frozenset(self.calendar.holidays),
                extra_workdays=frozenset(self.calendar.workdays),
                extra_years=frozenset(self.calendar.years),
            )
        return self._work_calendar

    def time_limit(self, stage: str, *, item_type: str, urgency: str, category: str | None = None) -> Amount:
        """The limit of `stage`: the first rule that matches and sets it, else the default."""
        if stage not in STAGE_NAMES:
            raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGE_NAMES)}")
        for rule in self.time_limits.rules:
            amount = getattr(rule, stage)
            if amount is not None and rule.when.matches(item_type=item_type, urgency=urgency, category=category):
                return amount
        return getattr(self.time_limits.default, stage)

    def route(self, category: str, district: str | None) -> tuple[str, list[str]]:
        """Lead and assisting units of the first matching routing rule, else the fallback unit alone."""
        for rule in self.routing.rules:
            if rule.matches(category, district):
                return rule.lead, list(rule.assist)
        return self.routing.fallback, []

    def stages_for(self, item_type: str) -> Stages:
        """The optional stages of an item type."""
        return self.stages.by_item_type.get(item_type, self.stages.default)

    def content_hash(self) -> str:
        """sha256 of the canonical JSON of the values; comments and layout do not change it."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def where(self, path: KeyPath) -> str:
        """`source:line: dotted.path` for a message about the key at `path`."""
        return _where(self._source, self._tree, path)


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the policy file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{path}: the policy file is not UTF-8 text ({exc.reason}); save it as UTF-8") from None
    return parse_policy(text, source=str(path))


def parse_policy(text: str, source: str = "policy.yaml") -> Policy:
    """Validate policy text; raise one PolicyError listing every problem with its key and line."""
    try:
        tree = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        what = ", ".join(part for part in (exc.context, exc.problem) if part)
        raise PolicyError(f"{source}:{line}: YAML syntax error: {what}") from None
    except ValueError as exc:
        raise PolicyError(_bad_date(text, source, exc)) from None
    except YAMLError as exc:
        raise PolicyError(f"{source}: YAML error: {exc}") from None
    if not isinstance(tree, dict):
        shape = "empty" if tree is None else "a list" if isinstance(tree, list) else f"the single value {tree!r}"
        sections = ", ".join(Policy.model_fields)
        raise PolicyError(f"{source}:1: expected a mapping of sections ({sections}); the file is {shape}")
    try:
        policy = Policy.model_validate(_plain(tree))
    except ValidationError as exc:
        found = sorted(
            (
                (_line(tree, path), _dotted(path), message)
                for error in exc.errors()
                for path, message in _describe(error)
            ),
            key=lambda problem: problem[0],
        )
        count = f"{len(found)} problem" + ("s" if len(found) > 1 else "")
        listed = "\n".join(f"{source}:{line}: {dotted}: {message}" for line, dotted, message in found)
        raise PolicyError(f"{source}: {count}:\n{listed}") from None
    policy._source, policy._text, policy._tree = source, text, tree
    return policy


def policy_warnings(policy: Policy, today: date) -> list[str]:
    """Things to fix before they bite: a year the working calendar does not know yet."""
    calendar = policy.work_calendar()
    years = [today.year] + ([today.year + 1] if today.month >= 11 else [])
    return [
        f"{policy.where(('calendar', 'years'))}: {year} is not covered: the installed chinese-calendar does not "
        f"know it and calendar.years does not list it, so deadlines reaching {year} will fail. Once the State "
        f"Council publishes the {year} holiday arrangement, enter its holidays under calendar.holidays, its "
        f"make-up working days under calendar.workdays, and add {year} to calendar.years"
        for year in years
        if not calendar.covers(year)
    ]


def check_references(policy: Policy, *, units: set[str], categories: set[str], districts: set[str]) -> list[str]:
    """Messages for codes in the policy that the directory does not know."""
    checks: list[tuple[KeyPath, str | None, set[str], str]] = []
    for i, rule in enumerate(policy.routing.rules):
        at: KeyPath = ("routing", "rules", i)
        checks.append((at + ("category",), rule.category, categories, "category"))
        checks.append((at + ("district",), rule.district, districts, "district"))
        checks.append((at + ("lead",), rule.lead, units, "unit"))
        checks += [(at + ("assist", j), unit, units, "unit") for j, unit in enumerate(rule.assist)]
    checks.append((("routing", "fallback"), policy.routing.fallback, units, "unit"))
    checks += [
        (("escalation", "buck_passing", "on_site_categories", i), code, categories, "category")
        for i, code in enumerate(policy.escalation.buck_passing.on_site_categories)
    ]
    checks += [
        (("time_limits", "rules", i, "when", "category"), rule.when.category, categories, "category")
        for i, rule in enumerate(policy.time_limits.rules)
    ]
    return [
        f'{policy.where(path)}: unknown {kind} "{code}"; it is not in the directory{_suggest(code, known)}'
        for path, code, known, kind in checks
        if code is not None and code not in known
    ]


def _plain(node: Any) -> Any:
    """The YAML tree as plain Python values (ruamel's scalar subclasses would leak into the model)."""
    if isinstance(node, dict):
        return {_plain(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(item) for item in node]
    if isinstance(node, bool | date) or node is None:
        return node
    for kind in (str, int, float):
        if isinstance(node, kind):
            return kind(node)
    return node


def _bad_date(text: str, source: str, exc: ValueError) -> str:
    """Locate a date the YAML reader refused (it reports no line for those)."""
    for number, line in enumerate(text.splitlines(), start=1):
        for year, month, day in _DATE.findall(line.split("#", 1)[0]):
            try:
                date(int(year), int(month), int(day))
            except ValueError:
                return f"{source}:{number}: {year}-{month}-{day} is not a date ({exc}); write e.g. 2027-01-01"
    return f"{source}: YAML error: {exc}"


def _describe(error: ErrorDetails) -> list[tuple[KeyPath, str]]:
    """(path, message) for each problem in a pydantic error."""
    loc = tuple(part for part in error["loc"] if part != "[key]")
    ctx = error.get("ctx") or {}
    if "problems" in ctx:
        return [(loc + tuple(sub), message) for sub, message in ctx["problems"]]
    return [(loc, _message(error, loc))]


def _where(source: str, tree: Any, path: KeyPath) -> str:
    return f"{source}:{_line(tree, path)}: {_dotted(path)}"


def _line(tree: Any, path: KeyPath) -> int:
    """Line of the deepest key of `path` present in the file (a missing key: its parent's line)."""
    line, node = 1, tree
    for part in path:
        lc = getattr(node, "lc", None)
        if lc is None:
            break
        if isinstance(node, dict) and part in node:
            line, node = lc.key(part)[0] + 1, node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            line, node = lc.item(part)[0] + 1, node[part]
        else:
            break
    return line


def _dotted(path: KeyPath) -> str:
    dotted = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path).lstrip(".")
    return dotted or "(top level)"


def _message(error: ErrorDetails, loc: KeyPath) -> str:
    kind, ctx, quoted = error["type"], error.get("ctx") or {}, shown(error.get("input"))
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        allowed = list(model.model_fields) if model else []
        return f"unknown key{_suggest(str(loc[-1]), set(allowed))}; expected one of {', '.join(allowed)}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "expected a mapping of keys (indented key: value lines)"
    if kind == "list_type":
        return 'expected a list (lines starting with "- ", or [a, b])'
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"{quoted} is not a whole number"
    if kind in ("float_type", "float_parsing", "finite_number"):
        return f"{quoted} is not a number"
    if kind in ("bool_type", "bool_parsing"):
        return f"{quoted} is not true or false"
    if kind in ("string_type", "string_too_short"):
        return "expected some text"
    if kind.startswith("date_"):
        return f"{quoted} is not a date; write e.g. 2027-01-01"
    if kind in _BOUNDS:
        sign, key = _BOUNDS[kind]
        return f"{quoted} is out of range; expected a number {sign} {ctx.get(key)}"
    if kind == "too_short":
        return f"expected at least {ctx.get('min_length')} entry"
    if kind == "literal_error":
        return f"{quoted} is not allowed; expected one of {ctx.get('expected')}"
    if kind == "value_error":
        return error["msg"].removeprefix("Value error, ")
    return error["msg"]


def _model_at(loc: KeyPath) -> type[BaseModel] | None:
    """The section model found at `loc`, for listing the keys it allows."""
    model: type[BaseModel] = Policy
    parts = iter(loc)
    for part in parts:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None
        annotation = field.annotation
        if get_origin(annotation) in (list, dict):
            annotation = get_args(annotation)[-1]
            next(parts, None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _suggest(word: str, known: set[str]) -> str:
    close = difflib.get_close_matches(word, sorted(known), n=1)
    return f' (did you mean "{close[0]}"?)' if close else ""
