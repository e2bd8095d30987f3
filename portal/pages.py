"""The portal's HTML pages: one Jinja2 environment, its filters, and the labels pages show."""

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from models.enums import label

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")

# Event names as a unit reads them in an order's history.
EVENT_LABELS: dict[str, tuple[str, str]] = {
    "work_order_received": ("受理", "received"),
    "work_order_dispatched": ("派单", "dispatched"),
    "work_order_redispatched": ("改派", "re-dispatched"),
    "work_order_signed": ("签收", "signed for"),
    "return_requested": ("申请退单", "return requested"),
    "return_approved": ("退单通过", "return approved"),
    "return_rejected": ("退单驳回", "return rejected"),
    "reply_submitted": ("办结回复", "reply submitted"),
    "reply_approved": ("回复审核通过", "reply approved"),
    "reply_sent_back": ("回复退回", "reply sent back"),
    "work_order_closed": ("办结", "closed"),
    "work_order_reopened": ("重办", "reopened for redo"),
    "extension_requested": ("申请延期", "extension requested"),
    "extension_approved": ("延期批准", "extension approved"),
    "extension_rejected": ("延期驳回", "extension rejected"),
    "notification_failed": ("通知发送失败", "notice could not be sent"),
}

ACTION_LABELS: dict[str, tuple[str, str]] = {
    "sign": ("签收", "Sign for"),
    "reply": ("办结回复", "Reply"),
    "return": ("申请退单", "Request a return"),
    "extension": ("申请延期", "Request an extension"),
}


def local(value: datetime | None, zone: str = "Asia/Shanghai") -> str:
    """An aware time as local wall-clock time."""
    if value is None:
        return "—"
    return value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def event_label(name: str) -> str:
    zh, en = EVENT_LABELS.get(name, (name, name.replace("_", " ")))
    return f"{zh} {en}"


templates.env.filters["local"] = local
templates.env.filters["label"] = label
templates.env.filters["event_label"] = event_label
templates.env.globals["ACTION_LABELS"] = ACTION_LABELS


def render(request: Request, name: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page from portal/templates, with the request in its context."""
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    # The pages carry single-use links in their addresses and forms: no shared cache may keep them.
    response.headers["Cache-Control"] = "no-store"
    return response
