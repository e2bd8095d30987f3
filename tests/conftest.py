"""Shared fixtures: a fresh database per test on SQLite and, when configured, PostgreSQL."""

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import models
from duban.db import get_engine, reset_engines, session_scope
from tasks.kb import ensure_search_index
from tasks.policy_store import forget_policies

ROOT = Path(__file__).resolve().parent.parent
# The session's Prefect server and the worker fixture, shared by every package that runs flows.
pytest_plugins = ["tests.prefect_fixtures"]
PG_URL = os.environ.get("DUBAN_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
# The longest tests (a minute or more each: a whole deployment, a demo run, every page of the UI, every
# lifecycle scenario) go first, so that `-n 2` shares them between its workers instead of leaving one to
# finish the last of them alone while the other has nothing left to do.
SLOW_FIRST = ("tests/scale/", "tests/security/test_pii.py", "tests/gateway/test_gateway_pages.py",
              "tests/flows/test_lifecycle.py", "tests/gateway/test_gateway_browser.py", "tests/faults/test_worker_kill.py",
              "tests/faults/test_prefect_down.py", "tests/flows/test_recovery.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return next((i for i, prefix in enumerate(SLOW_FIRST) if item.nodeid.startswith(prefix)), len(SLOW_FIRST))

    items.sort(key=rank)  # stable: each module's tests stay together and in their order


def _calendar_for_the_real_clock() -> None:
    """Run the suite on policy.yaml with this year and next entered where chinese-calendar stops short.

    Much of the suite acts on the real clock, and its deadlines run weeks ahead (in December, into next
    year). The library knows the State Council's arrangement only up to its release's last year; past it,
    policy.yaml must name the year, as an admin does once the arrangement is published. The suite enters
    only the days off fixed by date in law (New Year's Day, 1-2 May, 1-3 October): a test calendar, not the
    year's arrangement. Set here, before any test module reads its settings, for every process it starts.
    """
    from models.policy_values import library_covers

    missing = [year for year in (date.today().year, date.today().year + 1) if not library_covers(year)]
    if not missing:
        return
    days_off = [f"{year}-{day}" for year in missing for day in ("01-01", "05-01", "05-02", "10-01", "10-02", "10-03")]
    text = (ROOT / "policy.yaml").read_text(encoding="utf-8")
    empty = "\n  holidays: []\n  workdays: []\n  years: []\n"
    assert text.count(empty) == 1, "policy.yaml's calendar has entries of its own now: merge the suite's with them"
    folder = tempfile.mkdtemp(prefix="duban-tests-")
    atexit.register(shutil.rmtree, folder, True)
    path = Path(folder) / "policy.yaml"
    path.write_text(text.replace(empty, f"\n  holidays: [{', '.join(days_off)}]\n  workdays: []\n"
                                        f"  years: {missing}\n"), encoding="utf-8")
    os.environ["DUBAN_POLICY_FILE"] = str(path)


_calendar_for_the_real_clock()

# One database per test process: concurrent pytest runs on one server never share tables.
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID", "")[:8] or str(os.getpid())
_PG_DATABASES: list[str] = []


def _worker_pg_url(purpose: str = "") -> str:
    """This process's PostgreSQL database (one per purpose), created on first use, dropped at the session's end."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    url = make_url(PG_URL)
    name = f"{url.database}_duban_{_RUN}_{worker}{purpose}"
    if name not in _PG_DATABASES:
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        _PG_DATABASES.append(name)
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session", autouse=True)
def _drop_pg_databases() -> Iterator[None]:
    yield
    if not _PG_DATABASES:
        return
    reset_engines()
    admin = create_engine(make_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in _PG_DATABASES:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


_SCHEMA_READY: set[str] = set()


def _empty(engine) -> None:
    """Fresh tables: created once per database, then truncated (much faster on PostgreSQL)."""
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name != "postgresql" or url not in _SCHEMA_READY:
        models.Base.metadata.drop_all(engine)
        models.Base.metadata.create_all(engine)
        ensure_search_index(engine)
        _SCHEMA_READY.add(url)
        return
    tables = ", ".join(f'"{t.name}"' for t in models.Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path, monkeypatch) -> Iterator[str]:
    """A migrated, empty database; DUBAN_DATABASE_URL points at it for the test and its subprocesses."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'duban.db'}"
    else:
        url = _worker_pg_url()
    monkeypatch.setenv("DUBAN_DATABASE_URL", url)
    reset_engines()
    forget_policies()
    _empty(get_engine(url))
    yield url
    reset_engines()
    forget_policies()


@pytest.fixture
def directory(db_url) -> str:
    """The demo directory loaded into the test database."""
    _load_directory()
    return db_url


def _load_directory() -> None:
    from tasks.directory import load_directory

    with session_scope() as session:
        load_directory(session=session, path=ROOT / "duban" / "data" / "directory.yaml")


@pytest.fixture(scope="module", params=BACKENDS)
def shared_directory(request, tmp_path_factory) -> Iterator[str]:
    """One database with the demo directory for a whole module whose tests each make their own orders and look
    only at those (the transition matrix's ~300 cases, which would otherwise each empty a database and load
    the directory: a third of a second apiece). It is a database of its own, apart from db_url's."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('shared') / 'duban.db'}"
    else:
        url = _worker_pg_url("_shared")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DUBAN_DATABASE_URL", url)
        reset_engines()
        forget_policies()
        _empty(get_engine(url))
        _load_directory()
        yield url
        reset_engines()
        forget_policies()


@pytest.fixture
def pg_admin_url() -> Iterator[str]:
    """A brand-new, empty PostgreSQL database for tests of migrations (skipped only without PostgreSQL)."""
    if not PG_URL:
        pytest.skip("DUBAN_TEST_POSTGRES_URL is not set; .ci/run sets it")
    url = make_url(PG_URL)
    name = f"{url.database}_migrate_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
