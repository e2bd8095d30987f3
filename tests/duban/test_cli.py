"""The command line as an admin uses it: init, directory load, policy check."""

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

from models.directory import Category, District, Unit

ROOT = Path(__file__).resolve().parents[2]
DUBAN = [sys.executable, "-m", "duban"]


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*DUBAN, *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def _snapshot(url: str) -> list:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = [conn.execute(select(model.__table__).order_by(model.__table__.c.id)).all()
                for model in (District, Category, Unit)]
        rows.append(conn.execute(text("SELECT version_num FROM alembic_version")).all())
    engine.dispose()
    return rows


def test_init_and_directory_load_twice_leave_the_same_data(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    env = {"DUBAN_DATABASE_URL": url}
    for _ in range(2):
        assert run("init", env=env).returncode == 0
        loaded = run("directory", "load", env=env)
        assert loaded.returncode == 0, loaded.stderr
    first = _snapshot(url)
    assert run("init", env=env).returncode == 0
    again = run("directory", "load", env=env)
    assert "(0 changes)" in again.stdout
    assert _snapshot(url) == first
    assert len(first[2]) >= 35 and len(first[1]) >= 40


def test_init_migrates_postgresql_idempotently(pg_admin_url):
    env = {"DUBAN_DATABASE_URL": pg_admin_url}
    for _ in range(2):
        assert run("init", env=env).returncode == 0
        assert run("directory", "load", env=env).returncode == 0
    engine = create_engine(pg_admin_url)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Unit.__table__)) >= 35
    engine.dispose()


def test_policy_check_accepts_the_shipped_policies(tmp_path):
    # A fresh checkout has no database yet: the file is checked on its own, and nothing is created.
    absent = tmp_path / "var" / "duban.db"
    for name in ("policy.yaml", "policy.demo.yaml"):
        result = run("policy", "check", name, "--today", "2026-06-01",
                     env={"DUBAN_DATABASE_URL": f"sqlite:///{absent}"})
        assert result.returncode == 0, result.stderr
        assert "ok" in result.stdout
    assert not absent.parent.exists()


def test_policy_check_names_key_and_line_of_a_broken_policy(tmp_path):
    text_ = (ROOT / "policy.yaml").read_text(encoding="utf-8")
    lines = text_.splitlines()
    index = next(i for i, line in enumerate(lines) if line.strip().startswith("handling:"))
    indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
    lines[index] = f"{indent}handling: 5 workdays"
    broken = tmp_path / "policy.yaml"
    broken.write_text("\n".join(lines), encoding="utf-8")
    result = run("policy", "check", str(broken))
    assert result.returncode != 0
    assert f":{index + 1}:" in result.stderr and "handling" in result.stderr and "working_days" in result.stderr


def test_policy_check_refuses_what_apply_would_refuse(tmp_path):
    # A narrower routing rule after the broader one that already matches all its orders: apply refuses it.
    text_ = (ROOT / "policy.yaml").read_text(encoding="utf-8")
    narrow = ("    - {category: hr_social_security.remote_medical_settlement, lead: medical_security, "
              "assist: [hrss]}\n")
    broad = "    - {category: hr_social_security, lead: hrss}\n"
    assert narrow in text_ and broad in text_
    shadowed = tmp_path / "policy.yaml"
    shadowed.write_text(text_.replace(narrow, "").replace(broad, broad + narrow), encoding="utf-8")
    result = run("policy", "check", str(shadowed), "--today", "2026-06-01",
                 env={"DUBAN_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'duban.db'}"})
    assert result.returncode == 1
    assert "refused, 1 problem" in result.stderr and "routing.rules[5]: never used" in result.stderr


def test_policy_check_warns_in_november_when_next_year_is_missing(tmp_path):
    result = run("policy", "check", "policy.yaml", "--today", "2026-11-30",
                 env={"DUBAN_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'duban.db'}"})
    assert result.returncode == 0
    assert "2027" in result.stderr


def test_directory_load_refuses_a_bad_file_and_writes_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    env = {"DUBAN_DATABASE_URL": url}
    assert run("init", env=env).returncode == 0
    bad = tmp_path / "dir.yaml"
    bad.write_text("districts:\n  - {code: a, name_zh: 甲}\nunits:\n  - {code: u1, name_zh: 单位, kind: planet, email: x@y}\n",
                   encoding="utf-8")
    result = run("directory", "load", str(bad), env=env)
    assert result.returncode == 1 and "kind must be one of" in result.stderr
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(District.__table__)) == 0
    engine.dispose()


def test_every_command_talks_to_dubans_prefect_server_not_a_throwaway_one(tmp_path):
    # Without PREFECT_API_URL, Prefect imported first would start an in-process server of its own.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env |= {"DUBAN_DATABASE_URL": f"sqlite:///{tmp_path / 'd.db'}", "DUBAN_PREFECT_API_URL": "http://127.0.0.1:9/api"}
    assert subprocess.run([*DUBAN, "init"], cwd=ROOT, env=env, capture_output=True, timeout=120).returncode == 0
    result = subprocess.run([*DUBAN, "summary"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Prefect API: http://127.0.0.1:9/api (not answering)" in result.stdout
