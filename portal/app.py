"""The portal: the unit action pages and the intake API, in one FastAPI application."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from duban import __version__, mailsink
from duban.settings import get_settings
from portal import intake, open311, units
from portal.pages import STATIC
from portal.wakeups import WAKER


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
    return app


def _mount_unit_pages(app: FastAPI) -> None:
    """The unit action pages, their stylesheet, and outside production the demo mail sink's pages."""
    app.include_router(units.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if get_settings().environment != "production":
        app.include_router(mailsink.router)
