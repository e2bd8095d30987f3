"""Several processes migrating one fresh database at once (DUBAN_MIGRATE_ON_START) take turns; all succeed."""

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

from duban.schema import MIGRATIONS
from models.directory import Unit

ROOT = Path(__file__).resolve().parents[2]
MIGRATE = "from duban.schema import migrate; migrate()"


def _migrate_together(url: str, processes: int = 3) -> list[subprocess.CompletedProcess]:
    env = {**os.environ, "DUBAN_DATABASE_URL": url}
    started = [subprocess.Popen([sys.executable, "-c", MIGRATE], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(processes)]
    return [subprocess.CompletedProcess(p.args, p.wait(240), *p.communicate()) for p in started]


def _newest_revision() -> str:
    revisions = [path.name.split("_", 1)[0] for path in (MIGRATIONS / "versions").glob("0*.py")]
    return max(revisions)


def _check(url: str) -> None:
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT version_num FROM alembic_version")).startswith(_newest_revision())
        assert conn.scalar(select(func.count()).select_from(Unit.__table__)) == 0
    engine.dispose()


def test_three_processes_migrate_a_fresh_postgresql_database_one_after_the_other(pg_admin_url):
    results = _migrate_together(pg_admin_url)
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr[-2000:] for r in results]
    _check(pg_admin_url)


def test_three_processes_migrate_a_fresh_sqlite_file_one_after_the_other(tmp_path):
    url = f"sqlite:///{tmp_path / 'duban.db'}"
    results = _migrate_together(url)
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr[-2000:] for r in results]
    _check(url)
