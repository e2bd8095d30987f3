"""Commands for admins: preview, apply and roll back policy versions."""

import getpass
import json
from enum import StrEnum
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from duban.cli import app, console, fail, policy_app
from duban.errors import DubanError


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"


class InFlight(StrEnum):
    KEEP = "keep"
    MIGRATE = "migrate"


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{file}: cannot read the policy file: {exc}")
        raise


@policy_app.command("diff")
def policy_diff(file: Path = typer.Argument(..., help="the new policy file"),
                format_: Format = typer.Option(Format.TABLE, "--format",
                                               help="table for people, json for tools")) -> None:
    """Preview a new policy: what it changes, and what it would do to the orders in flight now."""
    from duban.db import session_scope
    from models.base import utcnow
    from tasks.policy_admin import diff_policy
    from tasks.policy_inflight import distribution

    text = _read(file)
    try:
        with session_scope(readonly=True) as session:
            diff = diff_policy(session=session, text=text, source=str(file), at=utcnow())
    except DubanError as exc:
        fail(str(exc))
    if format_ == Format.JSON:
        console.print_json(json.dumps(diff.as_json(), ensure_ascii=False))
        return
    changes = Table("kind", "key", "in force", "new", title=f"changes against policy version {diff.from_version}")
    for change in diff.changes:
        changes.add_row(*_cells(change.kind, change.key, str(change.old), str(change.new)))
    console.print(changes if diff.changes else "no value changes")
    console.print(f"orders in flight: {diff.in_flight}; deadlines that would move with --in-flight migrate: "
                  f"{len(diff.moved)}")
    if diff.moved:
        spread = Table("moved by", "deadlines", title="how far deadlines move")
        for label, count in distribution(diff.moved).items():
            spread.add_row(*_cells(label, str(count)))
        console.print(spread)
        moved = Table("order", "deadline", "now", "new", "shift (h)", title="moved deadlines")
        for item in diff.moved:
            moved.add_row(*_cells(item.number, item.field, f"{item.old:%Y-%m-%d %H:%M}",
                                  f"{item.new:%Y-%m-%d %H:%M}", f"{item.hours:+.1f}"))
        console.print(moved)
    if diff.rerouted:
        rerouted = Table("order", "category", "district", "lead now", "new lead",
                         title="open orders the new routing would send elsewhere (on re-dispatch)")
        for r in diff.rerouted:
            rerouted.add_row(*_cells(r.number, r.category or "", r.district or "", r.old_lead, r.new_lead))
        console.print(rerouted)
    console.print(f"overdue at once: {', '.join(diff.overdue_at_once) or 'none'}")
    console.print(f"escalate at once: {', '.join(diff.escalate_at_once) or 'none'}")


@policy_app.command("apply")
def policy_apply(file: Path = typer.Argument(..., help="the new policy file"),
                 reason: str = typer.Option(..., help="why the policy changes (kept with the version)"),
                 in_flight: InFlight = typer.Option(InFlight.KEEP, help="keep: orders in flight keep their version; "
                                                    "migrate: they move to the new one with recomputed deadlines"),
                 by: str = typer.Option(None, help="who applies it (default: the login name)")) -> None:
    """Validate a policy and make it the current version."""
    from duban.db import session_scope
    from models.base import utcnow
    from tasks.policy_admin import apply_policy

    text = _read(file)
    try:
        with session_scope() as session:
            applied = apply_policy(session=session, text=text, source=str(file), reason=reason,
                                   by=by or getpass.getuser(), in_flight=in_flight.value, at=utcnow())
    except DubanError as exc:
        fail(str(exc))
    _report(applied)


@policy_app.command("history")
def policy_history() -> None:
    """List the policy versions: who applied each, when, why, and which is current."""
    from duban.db import session_scope
    from tasks.policy_admin import history

    with session_scope(readonly=True) as session:
        listed = history(session=session)
    # One line per version, never truncated to the terminal's width: admins grep and paste these.
    console.print("version  current  applied at        by  in flight  hash  reason", highlight=False)
    for v in listed:
        applied_at = f"{v.created_at:%Y-%m-%d %H:%M}" if v.created_at else "-"
        console.print("  ".join(_cells(str(v.number), "*" if v.current else "-", applied_at, v.created_by or "-",
                                       v.in_flight or "-", v.content_hash[:12], v.reason or "-")),
                      markup=False, highlight=False)


@policy_app.command("rollback")
def policy_rollback(number: int = typer.Argument(..., min=0, help="the version to return to"),
                    reason: str = typer.Option(..., help="why (kept with the new version)"),
                    in_flight: InFlight = typer.Option(None, help="default: the choice version N was applied with"),
                    by: str = typer.Option(None, help="who rolls back (default: the login name)")) -> None:
    """Apply a new version equal to version N."""
    from duban.db import session_scope
    from models.base import utcnow
    from tasks.policy_admin import rollback_policy

    try:
        with session_scope() as session:
            applied = rollback_policy(session=session, number=number, reason=reason, by=by or getpass.getuser(),
                                      in_flight=in_flight.value if in_flight else None, at=utcnow())
    except DubanError as exc:
        fail(str(exc))
    _report(applied)


def _cells(*values: str) -> list[str]:
    """Table cells shown as written: keys such as rules[item_type=complaint] are not markup."""
    return [escape(value) for value in values]


def _report(applied) -> None:
    console.print(f"policy version {applied.number} is current (hash {applied.content_hash[:12]}, "
                  f"in flight: {applied.in_flight}); orders migrated: {applied.migrated}, "
                  f"deadlines moved: {len(applied.moved)}")


automations_app = typer.Typer(help="Prefect automations on Duban's events.", no_args_is_help=True)
app.add_typer(automations_app, name="automations")


@automations_app.command("apply")
def automations_apply(file: Path = typer.Argument(Path("automations/return-twice.yaml"),
                                                  help="automation YAML")) -> None:
    """Create an automation on the Prefect server, replacing one of the same name."""
    import asyncio

    from tasks.automations import apply_automation

    try:
        name, automation_id = asyncio.run(apply_automation(text=_read(file), source=str(file)))
    except DubanError as exc:
        fail(str(exc))
    console.print(f"automation {name!r} is active (id {automation_id})")
