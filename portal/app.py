"""The portal: the unit action pages and the intake API, in one FastAPI application."""

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from duban import __version__, mailsink
from duban.settings import get_settings
from portal import intake, open311, units
from portal.pages import STATIC


def create_app() -> FastAPI:
    """Build the portal application with every router mounted."""
    app = FastAPI(title="Duban portal", version=__version__,
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
