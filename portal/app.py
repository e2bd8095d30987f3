"""The portal: the unit action pages and the intake API, in one FastAPI application."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from duban import __version__, mailsink
from duban.settings import get_settings
from portal import intake, open311, units
from portal.pages import STATIC, render
from portal.wakeups import WAKER

log = logging.getLogger(__name__)
UNAVAILABLE = ("数据库暂时无法访问（可能正在重启或繁忙），本次提交未保存，请稍后重新提交。"
               "The database did not answer (it may be restarting or busy); nothing of this request was saved. "
               "Send it again in a moment.")


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    yield
    # Runs still to be woken get a few seconds on the way out; the reconciler wakes whatever is left.
    await run_in_threadpool(WAKER.settle, 5)


def create_app() -> FastAPI:
    """Build the portal application with every router mounted."""
    app = FastAPI(title="Duban portal", version=__version__, lifespan=_lifespan,
                  description="Unit action pages and the intake API of the Duban 12345 hotline system.")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    _mount_unit_pages(app)
    app.include_router(intake.router)
    app.include_router(open311.router)
    app.add_exception_handler(OperationalError, _database_unavailable)
    return app


async def _database_unavailable(request: Request, exc: OperationalError) -> Response:
    """A database restarting, or locked past the busy timeout: 503 and Retry-After, in each part's own format."""
    log.warning("%s %s: the database did not answer: %s", request.method, request.url.path, exc.orig or exc)
    headers = {"Retry-After": "1"}
    path = request.url.path
    if path.startswith("/open311"):
        response = open311.error(503, UNAVAILABLE, path)
    elif path.startswith("/api"):
        response = JSONResponse({"detail": UNAVAILABLE}, status_code=503)
    else:
        response = render(request, "unavailable.html", status_code=503, message=UNAVAILABLE)
    response.headers.update(headers)
    return response


def _mount_unit_pages(app: FastAPI) -> None:
    """The unit action pages, their stylesheet, and outside production the demo mail sink's pages."""
    app.include_router(units.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if get_settings().environment != "production":
        app.include_router(mailsink.router)
