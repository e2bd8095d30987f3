"""Accounts without the gateway: the commands, disabling, password resets, and the audit listing."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from duban.cli import app
from duban.db import session_scope
from duban.errors import ValidationFailed
from models.accounts import User
from models.base import utcnow
from tasks.accounts import (LoginRefused, SessionInvalid, add_user, audit_trail, disable_user, login,
                            record_audit, reset_password, session_user)

PASSWORD = "a-long-enough-password"


def duban(*args: str, stdin: str = ""):
    """The command line in this process: the same app the `duban` script runs."""
    return CliRunner().invoke(app, list(args), input=stdin)


def test_user_commands_and_the_audit_listing(db_url):
    added = duban("user", "add", "wang.fang", "--role", "decider", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert added.exit_code == 0, added.output
    assert "user wang.fang added with role decider" in added.output
    bad = duban("user", "add", "li", "--role", "boss", "--password", PASSWORD)
    assert bad.exit_code == 1 and "role 'boss' is unknown: use one of viewer, decider, admin" in bad.output

    login(name="wang.fang", password=PASSWORD)
    record_audit(user="wang.fang", action="decision", target="flow run ZZ20210315-000001 (x)", outcome=201)
    today = utcnow().astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()
    listed = duban("audit", "--from", today, "--to", today, "--user", "wang.fang")
    assert listed.exit_code == 0, listed.output
    lines = listed.output.strip().splitlines()
    assert [line.split("\t")[2] for line in lines[:-1]] == ["login", "decision"]
    assert "flow run ZZ20210315-000001 (x)" in lines[1] and lines[-1] == "2 actions"
    wrong = duban("audit", "--from", "yesterday", "--to", today)
    assert wrong.exit_code == 2 and "--from 'yesterday' is not a date" in wrong.output


def test_passwords_are_stored_as_argon2id_hashes_only(db_url):
    add_user(name="qian", role="viewer", password=PASSWORD)
    with session_scope(readonly=True) as session:
        stored = session.scalar(select(User.password_hash).where(User.name == "qian"))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_a_person_who_acts_for_a_unit_is_recorded_and_shown(directory):
    added = duban("user", "add", "li.wei", "--role", "decider", "--unit", "ecology_environment", "--password", PASSWORD)
    assert added.exit_code == 0
    assert "user li.wei added with role decider, acting for ecology_environment" in added.output
    unknown = duban("user", "add", "zhou", "--role", "decider", "--unit", "no_such_unit", "--password", PASSWORD)
    assert unknown.exit_code == 1 and "unit 'no_such_unit' is not in the directory" in unknown.output
    assert duban("user", "list").output.splitlines() == ["li.wei\tdecider\tactive\tecology_environment"]

    assert duban("user", "set-unit", "li.wei").output.strip() == "user li.wei acts for no unit"
    assert duban("user", "set-unit", "li.wei", "urban_management").exit_code == 0
    refused = duban("user", "set-unit", "li.wei", "nowhere")
    assert refused.exit_code == 1 and "unit 'nowhere' is not in the directory" in refused.output
    assert duban("user", "list").output.splitlines() == ["li.wei\tdecider\tactive\turban_management"]


def test_bad_names_and_short_passwords_write_nothing(db_url):
    with pytest.raises(ValidationFailed, match="at least 10 characters"):
        add_user(name="zhao", role="viewer", password="short")
    with pytest.raises(ValidationFailed, match="no spaces"):
        add_user(name="zhao qian", role="viewer", password=PASSWORD)
    with pytest.raises(LoginRefused):
        login(name="zhao", password="short")


def test_disabling_ends_sessions_and_a_reset_lifts_the_lock(db_url, monkeypatch):
    add_user(name="sun", role="admin", password=PASSWORD)
    opened = login(name="sun", password=PASSWORD)
    assert session_user(token=opened.token).name == "sun"
    later = opened.expires_at + timedelta(seconds=1)
    with pytest.raises(SessionInvalid, match="expired"):
        session_user(token=opened.token, at=later)

    for _ in range(5):
        with pytest.raises(LoginRefused, match="wrong name or password"):
            login(name="sun", password="not-the-password")
    with pytest.raises(LoginRefused, match="locked"):
        login(name="sun", password=PASSWORD)
    reset_password(name="sun", password="a-new-long-password")
    with pytest.raises(SessionInvalid, match="not known"):
        session_user(token=opened.token)
    fresh = login(name="sun", password="a-new-long-password")

    disable_user(name="sun")
    with pytest.raises(SessionInvalid, match="not known"):
        session_user(token=fresh.token)
    with pytest.raises(LoginRefused):
        login(name="sun", password="a-new-long-password")
    now = utcnow()
    actions = [row.action for row in audit_trail(start=now - timedelta(hours=1), end=now + timedelta(minutes=1))]
    assert actions == ["login"] + ["login_failed"] * 5 + ["login_refused", "login", "login_failed"]
