"""Supervision on the command line: scorecards, the sweep, the clock, and supervision cases."""

import json
from datetime import datetime

import typer
from rich.console import Console
from rich.table import Table

from duban.cli import app, console, fail
from duban.errors import DubanError
from duban.serve import SERVICES, Role

case_app = typer.Typer(help="Supervision cases (督办): list them, decide them.", no_args_is_help=True)
app.add_typer(case_app, name="case")
FORMATS = ("table", "json", "csv")


def _moment(text: str | None, what: str) -> datetime | None:
    """An ISO date-time from the command line, aware (a time without a zone is refused)."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{what} {text!r} is not an ISO date-time; write e.g. 2021-03-15T09:00+08:00")
    if moment.tzinfo is None:
        fail(f"{what} {text!r} has no time zone; add one, e.g. 2021-03-15T09:00+08:00")
    return moment


@app.command()
def scorecard(
    period: str = typer.Option(None, help="a month (2021-03) or a date range (2021-03-01..2021-03-15); "
                                          "default: last month"),
    format: str = typer.Option("table", "--format", help="table, json or csv"),
    as_of: str = typer.Option(None, "--as-of", help="count outcomes known at this ISO date-time (default: now)"),
) -> None:
    """Print unit scorecards for a period, ranked by buck-passing index."""
    from tasks.scorecard import build_scorecards
    from tasks.scorecard_report import RANKING, table_rows, to_csv, to_json

    if format not in FORMATS:
        fail(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    try:
        result = build_scorecards(period=period, as_of=_moment(as_of, "--as-of"), trend_months=1)
    except DubanError as exc:
        fail(str(exc))
    if format == "json":
        console.print_json(to_json(result.scores, result.period))
    elif format == "csv":
        typer.echo(to_csv(result.scores), nl=False)
    else:
        table = Table(title=f"单位考评 {result.period.label}")
        for _, header in (("rank", "#"), *RANKING):
            table.add_column(header)
        for row in table_rows(result.scores):
            table.add_row(*(_shown(key, row[key]) for key in ("rank", *(k for k, _ in RANKING))))
        # Sixteen columns: never squeeze them into an 80-column terminal, let long lines wrap instead.
        Console(width=max(console.width, 180)).print(table)


def _shown(key: str, value) -> str:
    if value is None:
        return "–"
    if key == "buck_passing_index":
        return f"{value:.3f}"
    if key.endswith("_rate"):
        return f"{value:.1%}"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


@app.command()
def sweep(now: str = typer.Option(None, help="sweep as of this ISO date-time (default: now)")) -> None:
    """Fire every escalation rung due now (or at --now), once."""
    from tasks.sweep import sweep as run

    report = run(now=_moment(now, "--now"))
    console.print(f"swept {report.processed} due orders at {report.now.isoformat()}: "
                  f"{report.counts() or 'no rung fired'}; {report.skipped} skipped")
    for order_id, error in report.failed.items():
        console.print(f"[red]order id {order_id} failed:[/red] {error}", markup=True, highlight=False)
    if report.failed:
        raise typer.Exit(1)


@app.command()
def clock() -> None:
    """Run the SLA clock alone in the foreground (`duban serve` runs it too); Ctrl-C stops it."""
    from duban.clock import run_clock

    # Whether it leads or stands by behind another clock, its log says (it may change while it runs).
    console.print("clock started: it runs the sweep while it holds the clock lock and stands by while another "
                  "clock does; Ctrl-C stops it")
    run_clock()


@case_app.command("list")
def case_list(order: str = typer.Option(None, help="only cases on this order number"),
              unit: str = typer.Option(None, help="only cases against this unit code"),
              all_: bool = typer.Option(False, "--all", help="closed cases too")) -> None:
    """List supervision cases, oldest first."""
    from duban.db import session_scope
    from tasks.cases import list_cases
    from tasks.orders import order_by_number

    try:
        order_id = None
        if order:
            with session_scope(readonly=True) as session:
                order_id = order_by_number(session, order).id
        cases = list_cases(order_id=order_id, unit_code=unit, status=None if all_ else "open")
    except DubanError as exc:
        fail(str(exc))
    table = Table(title="督办案件 supervision cases")
    for column in ("id", "kind", "status", "order", "unit", "opened", "version", "decision"):
        table.add_column(column)
    for c in cases:
        table.add_row(str(c.id), c.kind_label, c.status, c.order_number or "–", c.unit_code or "–",
                      c.opened_at.strftime("%Y-%m-%d %H:%M"), str(c.version), c.decision or "–")
    console.print(table)


@case_app.command("decide")
def case_decide(
    case_id: int = typer.Argument(..., help="the case id (see `duban case list`)"),
    decision: str = typer.Option(..., help="acknowledge, set_deadline, designate_lead or close"),
    actor: str = typer.Option(..., help="the deciding supervisor's name"),
    due: str = typer.Option(None, help="new deadline for set_deadline (ISO date-time with zone)"),
    unit: str = typer.Option(None, help="lead unit code for designate_lead (or with close)"),
    finding: str = typer.Option("", help="what was found (required to close)"),
    version: int = typer.Option(None, help="the version you saw; a different one is refused"),
) -> None:
    """Decide a supervision case as a supervisor."""
    from models.enums import ActorKind
    from tasks.cases import decide_case
    from tasks.transitions import Actor

    try:
        view = decide_case(case_id=case_id, actor=Actor(ActorKind.SUPERVISOR, actor), decision=decision,
                           new_due_at=_moment(due, "--due"), unit_code=unit, finding=finding,
                           expected_version=version)
    except DubanError as exc:
        fail(str(exc))
    console.print(json.dumps({"case": view.id, "status": view.status, "decision": view.decision,
                              "designated": view.designated_unit_code, "version": view.version}, ensure_ascii=False))


def _start_clock(stack) -> None:
    from duban.clock import serve_clock

    serve_clock(stack)


SERVICES[Role.CLOCK].append(_start_clock)
