"""Rendering a notice from its kind and context: subject, HTML and plain text, Chinese first."""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from html import unescape
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError, select_autoescape

from duban.errors import NotificationError
from models.enums import label
from models.privacy import scrub

TEMPLATES = Path(__file__).resolve().parent / "templates"
SYSTEM_NAME = ("12345热线督办", "12345 hotline supervision")
# Context keys that may carry a citizen's identity; a notice never shows them, whoever filled the context.
_PRIVATE_KEYS = frozenset({"citizen_name", "citizen_phone", "citizen_email"})


@dataclass(frozen=True)
class Kind:
    """What a kind of notice is called, whether its recipient unit gets action links, and which context
    values follow the title in the subject of a notice that concerns no single order."""

    template: str
    title_zh: str
    title_en: str
    links: bool
    subject_keys: tuple[str, ...] = ()


KINDS: dict[str, Kind] = {
    "dispatch": Kind("dispatch", "派单通知", "New work order", True),
    "dispatch_assist": Kind("dispatch_assist", "协办通知", "Assisting on a work order", True),
    "sign_reminder": Kind("sign_reminder", "签收提醒", "Please sign for the work order", True),
    "deadline_warning": Kind("deadline_warning", "催办通知", "Deadline approaching", True),
    "overdue_notice": Kind("overdue_notice", "超期通知", "Work order overdue", True),
    "return_decision": Kind("return_decision", "退单审核结果", "Return request decided", True),
    "extension_decision": Kind("extension_decision", "延期审核结果", "Extension request decided", True),
    "reply_sent_back": Kind("reply_sent_back", "回复退回", "Reply sent back", True),
    "redo": Kind("redo", "重办通知", "Redo after an unsatisfied return visit", True),
    "supervision_case": Kind("supervision_case", "督办案件", "Supervision case", False),
    "circulated_notice": Kind("circulated_notice", "通报", "Circulated notice", False),
    "digest": Kind("digest", "待办工单汇总", "Your open work orders", True),
    "action_link": Kind("action_link", "新的办理链接", "A fresh action link", True),
    "hot_spot_alert": Kind("hot_spot_alert", "热点预警", "Hot spot alert", False, ("district", "category", "day")),
    "kb_gap_list": Kind("kb_gap_list", "知识库待补问题", "Questions the knowledge base could not answer", False,
                        ("unit_name",)),
    "kb_stale_warning": Kind("kb_stale_warning", "知识库复核提醒", "Knowledge base review due soon", False,
                             ("unit_name",)),
    "kb_stale_overdue": Kind("kb_stale_overdue", "知识库逾期未复核", "Knowledge base review overdue", False,
                             ("unit_name",)),
    "kb_stale_case": Kind("kb_stale_case", "知识库逾期督办", "Stale knowledge base: supervision case", False,
                          ("unit_name",)),
    "kb_stale_notice": Kind("kb_stale_notice", "知识库逾期通报", "Stale knowledge base: circulated notice", False,
                            ("unit_name",)),
    "merged_into": Kind("merged_into", "诉求合并办理告知", "Your request joins an earlier order", False),
    "merged_outcome": Kind("merged_outcome", "办理结果告知", "The outcome of your request", False),
    "merge_split": Kind("merge_split", "诉求单独办理告知", "Your request now has its own order", False),
    "kb_answer": Kind("kb_answer", "咨询答复", "The answer to your question", False),
    "report": Kind("report", "热线运行报告", "Hotline report", False, ("period_label",)),
}


@dataclass(frozen=True)
class RenderedMail:
    """A notice ready to send: subject, plain text and HTML."""

    subject: str
    text: str
    html: str


def kind_of(kind: str, context: Mapping[str, Any]) -> Kind:
    """The kind's definition; the warning rung on an order not yet signed for is the sign-for reminder."""
    if kind == "deadline_warning" and context.get("status") == "dispatched":
        kind = "sign_reminder"
    try:
        return KINDS[kind]
    except KeyError:
        raise NotificationError(
            f"no template for notice kind {kind!r}; known kinds: {', '.join(sorted(KINDS))}. "
            f"Add notifications/templates/{kind}.html.j2 and an entry in notifications.render.KINDS"
        ) from None


def render_notice(*, kind: str, context: Mapping[str, Any], links: Mapping[str, str] | None = None,
                  timezone: str = "Asia/Shanghai") -> RenderedMail:
    """Render one notice; an unknown kind, a missing context value or an empty body is a NotificationError."""
    definition = kind_of(kind, context)
    values = {k: _masked(v) for k, v in context.items() if k not in _PRIVATE_KEYS}
    values["links"] = dict(links or {}) if definition.links else {}
    values["kind"] = definition
    values["zone"] = timezone
    order = f" · {values['order_number']}" if values.get("order_number") else ""
    order += "".join(f" · {values[key]}" for key in definition.subject_keys if values.get(key))
    subject = f"【{SYSTEM_NAME[0]}】{definition.title_zh} {definition.title_en}{order}"
    values["subject"] = subject
    try:
        html = _env().get_template(f"{definition.template}.html.j2").render(values)
    except TemplateError as exc:
        raise NotificationError(f"notice kind {kind!r} could not be rendered: {exc}") from exc
    text = html_to_text(html)
    if len(text) < len(subject):
        raise NotificationError(f"notice kind {kind!r} rendered an empty body; refusing to send it")
    return RenderedMail(subject=subject, text=text, html=html)


def _masked(value: Any) -> Any:
    """Mobile numbers typed into any free text leave the database masked."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {k: _masked(v) for k, v in value.items() if k not in _PRIVATE_KEYS}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value


_ENV: Environment | None = None


def _env() -> Environment:
    global _ENV
    if _ENV is None:
        env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["j2", "html"]),
                          undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        env.filters["local"] = local_time
        env.filters["label"] = label
        _ENV = env
    return _ENV


def local_time(value: str | datetime | None, zone: str = "Asia/Shanghai") -> str:
    """An ISO timestamp or aware datetime as local wall-clock time, e.g. 2021-03-15 17:00."""
    if not value:
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        raise NotificationError(f"naive time {value!r} in a notice context; pass aware UTC times")
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


_SPACES = re.compile(r"\s+")
_BLOCKS = frozenset({"p", "div", "h1", "h2", "h3", "ul", "ol", "table", "section"})
_SKIP = frozenset({"head", "style", "script", "title"})
# Markup as the notices' templates write it: comments and declarations, tags with quoted attributes, text.
_TOKENS = re.compile(r"<!--.*?-->|<![^>]*>|<(/?)([a-zA-Z][a-zA-Z0-9]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>|([^<]+|<)",
                     re.S)
_HREF = re.compile(r"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)


class _TextWriter:
    """The plain-text alternative: block elements become lines, links show their address."""

    def __init__(self) -> None:
        self.lines: list[str] = [""]
        self.href: list[str | None] = []
        self.skip = 0

    def _break(self) -> None:
        if self.lines[-1].strip():
            self.lines.append("")

    def feed(self, html: str) -> None:
        # One regular expression over the markup: a tenth of what html.parser costs per notice.
        for match in _TOKENS.finditer(html):
            closing, tag, attrs, data = match.groups()
            if data is not None:
                self.data(unescape(data))
            elif tag is not None:
                tag = tag.lower()
                if closing:
                    self.end(tag)
                    continue
                self.start(tag, attrs)
                if attrs.rstrip().endswith("/"):
                    self.end(tag)

    def start(self, tag: str, attrs: str) -> None:
        if tag in _SKIP:
            self.skip += 1
        elif tag in _BLOCKS or tag in {"tr", "br"}:
            self._break()
        elif tag == "li":
            self._break()
            self.lines[-1] = "- "
        elif tag in {"td", "th"} and self.lines[-1].strip():
            self.lines[-1] += "  "
        if tag == "a":
            href = _HREF.search(attrs)
            self.href.append(unescape(next(v for v in href.groups() if v is not None)) if href else None)

    def end(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip -= 1
        elif tag == "a" and self.href:
            href = self.href.pop()
            if href and href not in self.lines[-1]:
                self.lines[-1] += f" <{href}>"
        elif tag in _BLOCKS:
            self._break()
            if tag in {"p", "h1", "h2", "table", "ul"}:
                self.lines.append("")

    def data(self, data: str) -> None:
        if not self.skip:
            text = _SPACES.sub(" ", data)
            if self.lines[-1].strip():
                self.lines[-1] += text
            else:
                self.lines[-1] = text.lstrip()

    def text(self) -> str:
        out: list[str] = []
        for line in (line.rstrip() for line in self.lines):
            if line or (out and out[-1]):
                out.append(line)
        return "\n".join(out).strip() + "\n"


def html_to_text(html: str) -> str:
    """A readable plain-text version of a rendered notice."""
    writer = _TextWriter()
    writer.feed(html)
    return writer.text()
