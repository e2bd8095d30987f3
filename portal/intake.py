"""The intake API: channels submit items with their API key; anyone reads an item's public status by number."""

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response, Security
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader

from duban.errors import Forbidden, NotFound
from duban.settings import get_settings
from models.enums import Status, label
from portal import schemas
from portal.writer import one_writer
from tasks.channels import ChannelIdentity, authenticate
from tasks.intake import public_status, register_item
from tasks.intake_item import ItemInvalid

NUMBER = r"^[A-Z]{2,4}\d{8}-\d{6}$"
ITEMS = "/api/v1/items"


def _json_error(status: int, message: str, path: str) -> Response:
    return JSONResponse({"detail": message}, status_code=status)


def bounded_route(error: Callable[[int, str, str], Response]) -> type[APIRoute]:
    """A route class that refuses a body over the configured size before anything parses it."""

    class BoundedRoute(APIRoute):
        def get_route_handler(self) -> Callable:
            handler = super().get_route_handler()

            async def bounded(request: Request) -> Response:
                limit = get_settings().intake_max_body_bytes
                too_large = f"the request body is larger than {limit} bytes; send a shorter item"
                declared = request.headers.get("content-length")
                if declared is not None and (not declared.isdigit() or int(declared) > limit):
                    return error(413, too_large, request.url.path)
                received = bytearray()
                # A client may send no length, or lie about it: count what actually arrives.
                async for chunk in request.stream():
                    received += chunk
                    if len(received) > limit:
                        return error(413, too_large, request.url.path)
                request._body = bytes(received)
                return await handler(request)

            return bounded

    return BoundedRoute


router = APIRouter(prefix=ITEMS, tags=["intake"], route_class=bounded_route(_json_error))
api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="the channel's API key")


# The intake handlers are coroutines that call the service layer directly: its few short statements cost less
# than two hand-offs to the thread pool, which under load wait for the interpreter lock (measured: 3x the time).
async def channel_of(key: Annotated[str | None, Security(api_key)]) -> ChannelIdentity:
    """The channel whose key came with the request; 401 without a key, 403 for a wrong or revoked one."""
    try:
        return authenticate(key=key)
    except Forbidden as exc:
        raise HTTPException(401 if not key else 403, str(exc)) from None


def refused(exc: ItemInvalid) -> JSONResponse:
    """An item refused for what the directory does not know, in the same shape as any validation error."""
    return JSONResponse(status_code=422, content={"detail": [
        {"loc": ["body", *field.split(".")], "msg": message, "type": "value_error"} for field, message in exc.problems
    ]})


@router.post(
    "",
    status_code=201,
    response_model=schemas.Receipt,
    summary="Submit an item",
    responses={
        200: {"model": schemas.Receipt, "description": "the channel reference was seen before: the same item"},
        400: {"model": schemas.Message, "description": "the body could not be read as text (e.g. not UTF-8)"},
        401: {"model": schemas.Message, "description": "no API key"},
        403: {"model": schemas.Message, "description": "the API key is wrong or revoked"},
        413: {"model": schemas.Message, "description": "the body is larger than the limit"},
        422: {"model": schemas.ValidationProblems, "description": "the item is invalid; nothing was written"},
    },
)
async def submit_item(item: schemas.ItemRequest,
                      channel: Annotated[ChannelIdentity, Security(channel_of)]) -> JSONResponse:
    """Register an item from the channel the key belongs to; resubmitting its channel_ref returns the same item."""
    try:
        with one_writer():
            receipt = register_item(channel=channel, item=item)
    except ItemInvalid as exc:
        return refused(exc)
    status_url = f"{ITEMS}/{receipt.number}"
    body = schemas.Receipt(number=receipt.number, status=receipt.status, status_label=label(Status(receipt.status)),
                           received_at=receipt.received_at, created=receipt.created, status_url=status_url)
    # Answered directly: the response model above only documents the body, already built to fit it.
    return JSONResponse(body.model_dump(mode="json"), status_code=201 if receipt.created else 200,
                        headers={"Location": status_url})


@router.get(
    "/{number}",
    response_model=schemas.PublicStatus,
    summary="Read an item's public status and history",
    responses={404: {"model": schemas.Message, "description": "no item has this number"}},
)
async def read_status(number: Annotated[str, Path(pattern=NUMBER, examples=["ZZ20210315-000123"])]
                      ) -> schemas.PublicStatus:
    """The item's status and its history, without content, address or anything about the citizen."""
    try:
        found = public_status(number=number)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    return schemas.PublicStatus.model_validate(found, from_attributes=True)
