"""The admin's policy commands, run as an admin runs them: diff, apply, history, show, rollback."""

import json

from sqlalchemy import select
from typer.testing import CliRunner

from duban.cli import app
from duban.db import session_scope
from models.enums import Status
from models.records import Event
from models.work_order import WorkOrder
from tests.factories import order_in
from tests.tasks.test_policy_admin import with_complaint_handling



def duban(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def test_an_admin_previews_applies_with_migrate_and_rolls_back(directory, tmp_path):
    order_id = order_in(Status.HANDLING)
    with session_scope(readonly=True) as session:
        before = session.get(WorkOrder, order_id).stage_due_at
    new = tmp_path / "faster.yaml"
    new.write_text(with_complaint_handling("3 working_days"), encoding="utf-8")

    preview = duban("policy", "diff", str(new), "--format", "json")
    assert preview.exit_code == 0, preview.output
    shown = json.loads(preview.stdout)
    assert shown["in_flight"] == 1 and len(shown["moved_deadlines"]) == 4
    assert shown["changes"] == [{"kind": "time limits", "key": "time_limits.rules[item_type=complaint].handling",
                                 "old": None, "new": "3 working_days"}]
    table = duban("policy", "diff", str(new))
    assert "moved deadlines" in table.stdout and "stage_due_at" in table.stdout

    applied = duban("policy", "apply", str(new), "--reason", "国务院意见: faster complaints", "--in-flight", "migrate",
                    "--by", "admin-zhao")
    assert applied.exit_code == 0, applied.output
    assert "policy version 1 is current" in applied.stdout and "orders migrated: 1" in applied.stdout
    with session_scope(readonly=True) as session:
        order = session.get(WorkOrder, order_id)
        event = session.scalar(select(Event).where(Event.work_order_id == order_id, Event.name == "policy_migrated"))
        assert order.stage_due_at < before and order.policy_version == 1
        assert event.actor_id == "admin-zhao" and event.payload["moved"]["stage_due_at"]["from"] == before.isoformat()

    listed = duban("policy", "history")
    assert "admin-zhao" in listed.stdout and "faster complaints" in listed.stdout
    assert "3 working_days" in duban("policy", "show", "--version", "1").stdout

    back = duban("policy", "rollback", "0", "--reason", "withdrawn", "--in-flight", "migrate")
    assert back.exit_code == 0, back.output
    assert "policy version 2 is current" in back.stdout
    with session_scope(readonly=True) as session:
        assert session.get(WorkOrder, order_id).stage_due_at == before


def test_apply_refuses_a_file_naming_an_unknown_unit(directory, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(with_complaint_handling("3 working_days").replace("lead: hrss}", "lead: hrsss}"), encoding="utf-8")
    refused = duban("policy", "apply", str(bad), "--reason", "typo")
    assert refused.exit_code == 1
    assert 'routing.rules[5].lead: unknown unit "hrsss"' in refused.output
    assert "policy version 0" in duban("policy", "show").stdout
