"""Creating and migrating Duban's database with Alembic."""

import fcntl
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from duban.db import get_engine
from duban.leader import LOCK_CLASS, MIGRATION_LOCK

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration for Duban's migrations, without an alembic.ini file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str | None = None) -> None:
    """Bring the database to the newest revision; running it again does nothing."""
    engine = get_engine(url)
    if engine.url.get_backend_name() == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)
        # Alembic's DDL does not hold SQLite's write lock from the version check to the last table, so
        # processes started at once take turns on a file lock beside the database.
        with open(f"{engine.url.database}.migrate.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            _upgrade(engine, url)
        return
    _upgrade(engine, url)


def _upgrade(engine, url: str | None) -> None:
    with engine.connect() as connection:
        if engine.url.get_backend_name() == "postgresql":
            # Several processes started at once (`DUBAN_MIGRATE_ON_START`) migrate one after the other; the
            # lock ends with the transaction.
            connection.execute(text("SELECT pg_advisory_xact_lock(:cls, :key)"),
                               {"cls": LOCK_CLASS, "key": MIGRATION_LOCK})
        config = alembic_config(url)
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")
        connection.commit()
