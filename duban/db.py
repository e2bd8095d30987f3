"""The database engine and the one way to open a unit of work."""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from duban.settings import get_settings


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    """WAL, a busy timeout, and BEGIN IMMEDIATE for writes: pysqlite's own mode loses concurrent updates."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # let the begin hook below issue BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        # Readers ask for a deferred transaction so they never queue behind writers.
        if conn.get_execution_options().get("duban_readonly"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


_ENGINES: dict[str, Engine] = {}


def get_engine(url: str | None = None) -> Engine:
    """One engine per database URL per process."""
    settings = get_settings()
    url = url or settings.database_url
    if url not in _ENGINES:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": settings.sqlite_busy_timeout_ms / 1000})
            _configure_sqlite(engine, settings.sqlite_busy_timeout_ms)
        else:
            # pre_ping: a connection the database dropped (a restart, a failover) is replaced, not handed out.
            engine = create_engine(url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow,
                                   pool_timeout=settings.db_pool_timeout_s, pool_recycle=settings.db_pool_recycle_s,
                                   pool_pre_ping=True)
        _ENGINES[url] = engine
    return _ENGINES[url]


@lru_cache(maxsize=8)
def _sessionmaker(url: str | None, readonly: bool) -> sessionmaker[Session]:
    engine = get_engine(url)
    if readonly:
        engine = engine.execution_options(duban_readonly=True)
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(*, readonly: bool = False, url: str | None = None) -> Iterator[Session]:
    """Open a session; commit on success, roll back on error, always close."""
    session = _sessionmaker(url, readonly)()
    try:
        yield session
        if readonly:
            session.rollback()
        else:
            session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def reset_engines() -> None:
    """Forget cached engines and settings (tests, and after DUBAN_DATABASE_URL changes)."""
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()
    _sessionmaker.cache_clear()
    get_settings.cache_clear()
