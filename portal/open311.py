"""Open311 GeoReport v2 on /open311/v2: services, service definitions, requests, tokens; JSON and XML."""

import re
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from xml.etree import ElementTree

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from duban.errors import Forbidden
from duban.settings import get_settings
from portal import schemas
from portal.intake import bounded_route
from portal.writer import one_writer
from tasks import open311 as service
from tasks.channels import ChannelIdentity, authenticate
from tasks.intake import Receipt, register_item
from tasks.intake_item import IntakeItem, ItemInvalid, parse_item

SPEC = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-30T00:00:00+08:00"  # when this endpoint's behaviour last changed, for discovery
FORMATS = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
# Plural XML containers and the element each of their entries gets.
_ENTRY = {"services": "service", "service_requests": "request", "attributes": "attribute", "values": "value",
          "errors": "error", "endpoints": "endpoint", "formats": "format"}
_NOT_XML = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
MAX_SPAN = timedelta(days=90)
MAX_RESULTS = 1000


class Open311Error(Exception):
    """An error the spec's way: an HTTP status and a description, answered in the request's format."""

    def __init__(self, code: int, description: str) -> None:
        self.code, self.description = code, description
        super().__init__(description)


def _fmt(path: str) -> str:
    return "xml" if path.endswith(".xml") else "json"


def _xml_value(parent: ElementTree.Element, tag: str, value: Any) -> None:
    node = ElementTree.SubElement(parent, tag)
    if isinstance(value, dict):
        for key, inner in value.items():
            _xml_value(node, key, inner)
    elif isinstance(value, list):
        for inner in value:
            _xml_value(node, _ENTRY.get(tag, "item"), inner)
    elif isinstance(value, bool):
        node.text = "true" if value else "false"
    elif value is not None:
        node.text = _NOT_XML.sub("", str(value))


def render(fmt: str, root: str, body: Any, status: int = 200) -> Response:
    """The body as JSON, or as XML under `root` with the spec's element names."""
    if fmt == "json":
        return JSONResponse(body, status_code=status, media_type=FORMATS["json"])
    tree = ElementTree.Element(root)
    entries = body if isinstance(body, list) else [body]
    for entry in entries:
        target = ElementTree.SubElement(tree, _ENTRY[root]) if isinstance(body, list) else tree
        for key, value in entry.items():
            _xml_value(target, key, value)
    text = '<?xml version="1.0" encoding="utf-8"?>\n' + ElementTree.tostring(tree, encoding="unicode")
    return Response(text, status_code=status, media_type=FORMATS["xml"])


def error(code: int, description: str, path: str) -> Response:
    """The spec's error list, with the HTTP status it names."""
    return render(_fmt(path), "errors", [{"code": code, "description": description}], status=code)


def _check(fmt: str, jurisdiction_id: str | None) -> None:
    if fmt not in FORMATS:
        raise Open311Error(404, f"format {fmt!r} is not offered; use json or xml")
    if jurisdiction_id is not None and jurisdiction_id != get_settings().open311_jurisdiction_id:
        raise Open311Error(404, f"jurisdiction_id {jurisdiction_id!r} was not found; this server is "
                                f"{get_settings().open311_jurisdiction_id}")


class Open311Route(bounded_route(error)):
    """Every Open311 failure, including an unexpected one in validation, answered in the spec's error format."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def spec_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except Open311Error as exc:
                return error(exc.code, exc.description, request.url.path)
            except RequestValidationError as exc:
                problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors())
                return error(400, problems, request.url.path)

        return spec_errors


router = APIRouter(prefix="/open311", tags=["Open311 GeoReport v2"], route_class=Open311Route)
Jurisdiction = Annotated[str | None, Query(description="this server's jurisdiction_id (optional)")]
_DOCS = {"content": {"text/xml": {}}}
_ERRORS = {code: {"model": list[schemas.Open311Error], "content": {"text/xml": {}}, "description": description}
           for code, description in ((400, "invalid request"), (403, "api_key missing or invalid"),
                                     (404, "not found (service, request, token, jurisdiction or format)"),
                                     (413, "body too large"))}


@router.get("/discovery.{fmt}", response_model=schemas.Open311Discovery, responses={200: _DOCS, **_ERRORS})
def discovery(fmt: str, request: Request) -> Response:
    """Service discovery: where GeoReport v2 lives on this server."""
    _check(fmt, None)
    return render(fmt, "discovery", {
        "changeset": CHANGESET, "contact": "12345 热线办", "key_service": "向热线办申请渠道 api_key",
        "endpoints": [{"specification": SPEC, "url": str(request.base_url).rstrip("/") + "/open311/v2",
                       "changeset": CHANGESET, "type": "production", "formats": ["text/xml", "application/json"]}],
    })


@router.get("/v2/services.{fmt}", response_model=list[schemas.Open311Service], responses={200: _DOCS, **_ERRORS})
async def list_services(fmt: str, jurisdiction_id: Jurisdiction = None) -> Response:
    """Every service (a category of the directory) with its group, keywords and type."""
    _check(fmt, jurisdiction_id)
    return render(fmt, "services", await run_in_threadpool(service.services))


@router.get("/v2/services/{service_code}.{fmt}", response_model=schemas.Open311ServiceDefinition,
            responses={200: _DOCS, **_ERRORS})
async def service_definition(service_code: str, fmt: str, jurisdiction_id: Jurisdiction = None) -> Response:
    """The attributes a request for this service may carry (item type, urgency, district, confidentiality)."""
    _check(fmt, jurisdiction_id)
    definition = await run_in_threadpool(service.definition, service_code)
    if definition is None:
        raise Open311Error(404, f"service_code {service_code!r} was not found; GET services.{fmt} lists them")
    return render(fmt, "service_definition", definition)


_POST_FIELDS = {
    "api_key": "the channel's key", "jurisdiction_id": "optional", "service_code": "required",
    "lat": "WGS-84 latitude (with long)", "long": "WGS-84 longitude (with lat)", "address_string": "the address",
    "address_id": "a district or street code of the directory", "email": "the citizen's email",
    "device_id": "the submitting device", "account_id": "the citizen's account", "first_name": "given name",
    "last_name": "family name", "phone": "the citizen's phone", "description": "what is wrong (required)",
    "media_url": "a photo or video",
    **{f"attribute[{code}]": "see the service definition" for code in service.ATTRIBUTES},
}
_POST_SCHEMA = {"requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
    "type": "object", "required": ["api_key", "service_code", "description"],
    "properties": {name: {"type": "string", "description": text} for name, text in _POST_FIELDS.items()},
}}}}}


@router.post("/v2/requests.{fmt}", response_model=list[schemas.Open311Created], openapi_extra=_POST_SCHEMA,
             responses={200: _DOCS, **_ERRORS})
async def create_request(fmt: str, request: Request) -> Response:
    """Create a service request; an Idempotency-Key header makes a retry return the same request."""
    _check(fmt, None)
    try:
        form = await request.form()
    except Exception as exc:  # noqa: BLE001 - any undecodable body is the client's error
        raise Open311Error(400, f"the body could not be read as a form: {exc}") from None
    fields: dict[str, str] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):
            raise Open311Error(400, f"{key}: files are not accepted; send media_url instead")
        if key in fields:
            raise Open311Error(400, f"{key}: sent more than once")
        fields[key] = value
    _check(fmt, fields.get("jurisdiction_id"))
    try:
        channel = await run_in_threadpool(authenticate, key=fields.get("api_key"))
    except Forbidden as exc:
        raise Open311Error(403, str(exc)) from None
    try:
        raw, extra = service.item_fields(fields, request.headers.get("idempotency-key"))
        item = parse_item(raw)
        receipt = await run_in_threadpool(_register, channel, item, extra)
    except ItemInvalid as exc:
        raise Open311Error(400, "; ".join(f"{service.spec_name(f)}: {m}" for f, m in exc.problems)) from None
    return render(fmt, "service_requests", [{
        "service_request_id": receipt.number, "token": receipt.token,
        "service_notice": "已受理，热线办将按时限要求派单办理（received; it will be dispatched within the time "
                          "limits）",
        "account_id": fields.get("account_id"),
    }])


def _register(channel: ChannelIdentity, item: IntakeItem, extra: dict[str, Any]) -> Receipt:
    with one_writer():
        return register_item(channel=channel, item=item, extra=extra, with_token=True)


@router.get("/v2/requests.{fmt}", response_model=list[schemas.Open311Request], responses={200: _DOCS, **_ERRORS})
async def list_requests(
    fmt: str,
    jurisdiction_id: Jurisdiction = None,
    service_request_id: Annotated[str | None, Query(description="comma-separated ids; overrides the others")] = None,
    service_code: Annotated[str | None, Query(description="comma-separated service codes")] = None,
    start_date: Annotated[str | None, Query(description="W3C date-time, earliest requested_datetime")] = None,
    end_date: Annotated[str | None, Query(description="W3C date-time, latest requested_datetime")] = None,
    status: Annotated[str | None, Query(description="open, closed or both, comma-separated")] = None,
    extensions: Annotated[bool, Query(description="add extended_attributes with Duban's own status")] = False,
) -> Response:
    """Requests by ids, or filtered by service, date range (at most 90 days, default the last 90) and status."""
    _check(fmt, jurisdiction_id)
    if service_request_id is not None:
        ids = [part.strip() for part in service_request_id.split(",") if part.strip()]
        found = await run_in_threadpool(service.requests_by_id, ids, extensions)
        return render(fmt, "service_requests", found)
    start, end = _moment("start_date", start_date), _moment("end_date", end_date)
    # One date given: the 90 days from it or up to it; none: the last 90 days.
    end = end or (start + MAX_SPAN if start else datetime.now(UTC))
    start = start or end - MAX_SPAN
    if start > end:
        raise Open311Error(400, "start_date is after end_date")
    if end - start > MAX_SPAN:
        raise Open311Error(400, "start_date and end_date may not span more than 90 days")
    statuses = {part.strip() for part in (status or "open,closed").split(",") if part.strip()}
    if not statuses or not statuses <= {"open", "closed"}:
        raise Open311Error(400, f"status {status!r} is not allowed; use open, closed or open,closed")
    codes = [part.strip() for part in service_code.split(",") if part.strip()] if service_code else None
    found = await run_in_threadpool(lambda: service.search_requests(
        start=start, end=end, statuses=statuses, codes=codes, limit=MAX_RESULTS, extensions=extensions))
    return render(fmt, "service_requests", found)


def _moment(name: str, value: str | None) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name} {value!r} is not a W3C date-time; write e.g. 2021-03-15T09:00:00+08:00") \
            from None
    if moment.tzinfo is None:
        raise Open311Error(400, f"{name} needs a time zone; write e.g. 2021-03-15T09:00:00+08:00")
    return moment.astimezone(UTC)


@router.get("/v2/requests/{service_request_id}.{fmt}", response_model=list[schemas.Open311Request],
            responses={200: _DOCS, **_ERRORS})
async def get_request(service_request_id: str, fmt: str, jurisdiction_id: Jurisdiction = None,
                      extensions: bool = False) -> Response:
    """One request, as a list of one, as the spec has it."""
    _check(fmt, jurisdiction_id)
    found = await run_in_threadpool(service.requests_by_id, [service_request_id], extensions)
    if not found:
        raise Open311Error(404, f"service_request_id {service_request_id!r} was not found")
    return render(fmt, "service_requests", found)


@router.get("/v2/tokens/{token}.{fmt}", response_model=list[schemas.Open311Token], responses={200: _DOCS, **_ERRORS})
async def get_token(token: str, fmt: str, jurisdiction_id: Jurisdiction = None) -> Response:
    """The service_request_id a token stands for."""
    _check(fmt, jurisdiction_id)
    number = await run_in_threadpool(service.number_for_token, token)
    if number is None:
        raise Open311Error(404, f"token {token!r} was not found")
    return render(fmt, "service_requests", [{"service_request_id": number, "token": token}])
