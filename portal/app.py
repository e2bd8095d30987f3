"""The portal: the unit action pages and the intake API, in one FastAPI application."""

from fastapi import FastAPI

from duban import __version__


def create_app() -> FastAPI:
    """Build the portal application with every router mounted."""
    app = FastAPI(title="Duban portal", version=__version__,
                  description="Unit action pages and the intake API of the Duban 12345 hotline system.")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
