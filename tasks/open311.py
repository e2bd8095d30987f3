"""Open311 GeoReport v2 as Duban sees it: categories as services, spec fields mapped to an intake item."""

import re
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from duban.db import session_scope
from models.directory import Category, District, Unit
from models.enums import FINAL_STATUSES, ItemType, Status, Urgency, label
from models.intake import IntakeToken, MergeLink
from models.privacy import scrub
from models.supervision import Article
from models.work_order import Assignment, WorkOrder
from tasks.intake_item import ItemInvalid
from tasks.numbers import LOCAL

ATTRIBUTES = ("item_type", "urgency", "district", "confidential")
DEFAULT_ITEM_TYPE = ItemType.HELP_REQUEST  # what an Open311 report usually is: "please fix this"
_TOP_FIELDS = ("api_key", "jurisdiction_id", "service_code", "lat", "long", "address_string", "address_id", "email",
               "device_id", "account_id", "first_name", "last_name", "phone", "description", "media_url")
_ALLOWED = frozenset(_TOP_FIELDS) | {f"attribute[{code}]" for code in ATTRIBUTES}
_SPEC_NAME = {"content": "description", "category": "service_code", "district": "address_id",
              "address": "address_string", "citizen_phone": "phone", "citizen_email": "email",
              "citizen_name": "first_name/last_name", "item_type": "attribute[item_type]",
              "urgency": "attribute[urgency]", "confidential": "attribute[confidential]",
              "channel_ref": "Idempotency-Key header"}
_URL = re.compile(r"https?://[^\s<>\"]{1,490}")
_OPAQUE = re.compile(r"[\x21-\x7e]{1,64}")
_TOKEN = re.compile(r"[0-9a-f]{32}")
# Items whose text and place stay out of the public feed whatever the citizen asked: whistleblowing reports.
_WITHHELD_TYPES = frozenset({ItemType.REPORT})


def spec_name(field: str) -> str:
    """The GeoReport v2 name of an intake item's field, for error messages."""
    return _SPEC_NAME.get(field, field)


def _leaves(session: Session) -> tuple[list[Category], dict[int, Category]]:
    categories = list(session.scalars(select(Category).order_by(Category.code)))
    parents = {c.parent_id for c in categories if c.parent_id}
    by_id = {c.id: c for c in categories}
    return [c for c in categories if c.id not in parents], by_id


def services() -> list[dict[str, Any]]:
    """Every leaf category of the directory as a realtime service, grouped by its top-level category."""
    with session_scope(readonly=True) as session:
        leaves, by_id = _leaves(session)
        return [{
            "service_code": c.code, "service_name": c.name_zh, "description": c.name_en or c.name_zh,
            "metadata": True, "type": "realtime", "keywords": ", ".join(c.keywords or []),
            "group": by_id[c.parent_id].name_zh if c.parent_id else c.name_zh,
        } for c in leaves]


def definition(service_code: str) -> dict[str, Any] | None:
    """The attributes a request may carry, or None for an unknown service."""
    with session_scope(readonly=True) as session:
        leaves, _ = _leaves(session)
        if service_code not in {c.code for c in leaves}:
            return None
        districts = session.execute(select(District.code, District.name_zh).order_by(District.code)).all()

    def attribute(order: int, code: str, description: str, values: list[tuple[str, str]]) -> dict[str, Any]:
        return {"variable": True, "code": code, "datatype": "singlevaluelist", "required": False,
                "datatype_description": "one of the listed keys", "order": order, "description": description,
                "values": [{"key": key, "name": name} for key, name in values]}

    return {"service_code": service_code, "attributes": [
        attribute(1, "item_type", f"诉求类型（默认 {DEFAULT_ITEM_TYPE.value}）",
                  [(t.value, label(t)) for t in ItemType]),
        attribute(2, "urgency", "紧急程度（默认 normal）", [(u.value, label(u)) for u in Urgency]),
        attribute(3, "district", "所在区县或街道", [(code, name) for code, name in districts]),
        attribute(4, "confidential", "是否要求保密（不向承办单位透露姓名）", [("true", "是"), ("false", "否")]),
    ]}


def _float(name: str, value: str, problems: list[tuple[str, str]]) -> float | None:
    try:
        return float(value)
    except ValueError:
        problems.append((name, f"{value[:30]!r} is not a number"))
        return None


def item_fields(fields: dict[str, str], idempotency_key: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The intake item (raw, to be validated) and the extra Open311 data of a POST requests form."""
    problems = [(key[:60], "unknown field; see the service definition for the attributes")
                for key in fields if key not in _ALLOWED]
    get = {key: value.strip() for key, value in fields.items()}.get
    if not get("service_code"):
        problems.append(("service_code", "is required"))
    lat, long = get("lat"), get("long")
    if not ((lat and long) or get("address_string") or get("address_id")):
        problems.append(("location", "is required: send lat and long, address_string or address_id"))
    district, address_id = get("attribute[district]"), get("address_id")
    if district and address_id and district != address_id:
        problems.append(("address_id", "names another district than attribute[district]"))
    raw: dict[str, Any] = {"content": get("description") or "", "category": get("service_code") or None,
                           "item_type": get("attribute[item_type]") or DEFAULT_ITEM_TYPE.value}
    name = f"{get('last_name') or ''}{get('first_name') or ''}"
    optional = {"urgency": get("attribute[urgency]"), "district": district or address_id,
                "address": get("address_string"), "citizen_phone": get("phone"), "citizen_email": get("email"),
                "citizen_name": name, "confidential": get("attribute[confidential]"), "channel_ref": idempotency_key}
    raw |= {key: value for key, value in optional.items() if value}
    if lat or long:
        raw["lat"] = _float("lat", lat or "", problems) if lat else None
        raw["long"] = _float("long", long or "", problems) if long else None
    media_url = get("media_url")
    if media_url and not _URL.fullmatch(media_url):
        problems.append(("media_url", "is not an http(s) URL of at most 500 characters"))
    for key in ("device_id", "account_id"):
        value = get(key)
        if value and not _OPAQUE.fullmatch(value):
            problems.append((key, "may hold only up to 64 printable ASCII characters"))
    extra = {key: get(key) for key in ("media_url", "device_id", "account_id", "address_id") if get(key)}
    if problems:
        raise ItemInvalid(problems)
    return raw, {"open311": extra} if extra else {}


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(LOCAL).isoformat(timespec="seconds") if moment else None


def _requests(session: Session, orders: list[WorkOrder], extensions: bool) -> list[dict[str, Any]]:
    """The spec's request records, with text and place withheld where the citizen or the item type asks."""
    ids = [o.id for o in orders]
    categories = {c.id: c for c in session.scalars(select(Category))}
    districts = dict(session.execute(select(District.id, District.code)).all())
    leads = dict(session.execute(
        select(Assignment.work_order_id, Unit.name_zh).join(Unit, Unit.id == Assignment.unit_id)
        .where(Assignment.work_order_id.in_(ids), Assignment.role == "lead").order_by(Assignment.id)).all())
    masters = dict(session.execute(select(MergeLink.work_order_id, WorkOrder.number)
                                   .join(WorkOrder, WorkOrder.id == MergeLink.master_id)
                                   .where(MergeLink.work_order_id.in_(ids), MergeLink.split_at.is_(None))).all())
    articles = dict(session.execute(select(Article.id, Article.code).where(
        Article.id.in_({o.answer_article_id for o in orders if o.answer_article_id}))).all())
    found = []
    for order in orders:
        status = Status(order.status)
        category = categories.get(order.category_id)
        public = not order.confidential and order.item_type not in _WITHHELD_TYPES
        notes = f"{label(status)}（{label(status, 'en')}）"
        if order.id in masters:
            notes += f"：已并入 {masters[order.id]}"
        if order.answer_article_id:
            notes += f"：依据知识库条目 {articles.get(order.answer_article_id)} 答复"
        open311 = order.extra.get("open311", {})
        record = {
            "service_request_id": order.number, "status": "closed" if status in FINAL_STATUSES else "open",
            "status_notes": notes, "service_name": category.name_zh if category else "",
            "service_code": category.code if category else "", "description": scrub(order.content) if public else "",
            "agency_responsible": leads.get(order.id, ""),
            "service_notice": f"办理时限至 {_iso(order.due_at)}" if order.due_at else "",
            "requested_datetime": _iso(order.received_at), "updated_datetime": _iso(order.updated_at),
            "expected_datetime": _iso(order.due_at), "address": order.address if public else "",
            "address_id": districts.get(order.district_id, ""), "zipcode": "",
            "lat": order.extra.get("lat") if public else None, "long": order.extra.get("long") if public else None,
            "media_url": open311.get("media_url", "") if public else "",
        }
        if extensions:
            record["extended_attributes"] = {
                "duban_status": status.value, "duban_status_label": label(status), "channel": order.channel,
                "merged_into": masters.get(order.id), "answer_article": articles.get(order.answer_article_id)}
        found.append(record)
    return found


def _open311_orders() -> Select[tuple[WorkOrder]]:
    """Orders that came in through Open311 (each has its token); other channels' items are not published."""
    return select(WorkOrder).join(IntakeToken, IntakeToken.work_order_id == WorkOrder.id)


def requests_by_id(numbers: list[str], extensions: bool) -> list[dict[str, Any]]:
    """The Open311 requests with these numbers, in the order asked; unknown ones are left out."""
    with session_scope(readonly=True) as session:
        orders = {o.number: o for o in session.scalars(_open311_orders().where(WorkOrder.number.in_(numbers[:1000])))}
        return _requests(session, [orders[n] for n in dict.fromkeys(numbers) if n in orders], extensions)


def search_requests(*, start: datetime, end: datetime, statuses: set[str], codes: list[str] | None, limit: int,
                    extensions: bool) -> list[dict[str, Any]]:
    """Open311 requests received in [start, end], newest first, by status (open/closed) and service code."""
    query = _open311_orders().where(WorkOrder.received_at >= start, WorkOrder.received_at <= end)
    final = [s.value for s in FINAL_STATUSES]
    if statuses == {"open"}:
        query = query.where(WorkOrder.status.not_in(final))
    elif statuses == {"closed"}:
        query = query.where(WorkOrder.status.in_(final))
    if codes is not None:
        query = query.join(Category, Category.id == WorkOrder.category_id).where(Category.code.in_(codes))
    with session_scope(readonly=True) as session:
        orders = list(session.scalars(query.order_by(WorkOrder.received_at.desc(), WorkOrder.id.desc()).limit(limit)))
        return _requests(session, orders, extensions)


def number_for_token(token: str) -> str | None:
    """The request number a token stands for."""
    if not _TOKEN.fullmatch(token):
        return None
    with session_scope(readonly=True) as session:
        return session.scalar(select(WorkOrder.number).join(IntakeToken, IntakeToken.work_order_id == WorkOrder.id)
                              .where(IntakeToken.token == token))
