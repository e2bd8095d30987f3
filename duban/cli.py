"""The `duban` command line."""

from datetime import date
from pathlib import Path

import typer
from rich.console import Console

from duban import __version__
from duban.errors import DubanError

app = typer.Typer(help="Duban: work-order supervision for 12345 hotlines.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
directory_app = typer.Typer(help="The city's districts, categories and units.", no_args_is_help=True)
policy_app = typer.Typer(help="policy.yaml: time limits, routing, escalation, stages.", no_args_is_help=True)
app.add_typer(directory_app, name="directory")
app.add_typer(policy_app, name="policy")
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DEMO_DIRECTORY = Path(__file__).resolve().parent / "data" / "directory.yaml"


def fail(message: str, code: int = 1) -> None:
    """Print an error a person can act on and exit non-zero."""
    err.print(f"[red]error:[/red] {message}", highlight=False, markup=True)
    raise typer.Exit(code)


@app.command()
def version() -> None:
    """Print Duban's version."""
    console.print(f"duban {__version__}")


@app.command()
def init() -> None:
    """Create or migrate the database (idempotent)."""
    from duban.schema import migrate
    from duban.settings import get_settings

    migrate()
    console.print(f"database ready: {_safe_url(get_settings().database_url)}")


@directory_app.command("load")
def directory_load(file: Path = typer.Argument(DEMO_DIRECTORY, help="YAML or CSV directory file")) -> None:
    """Load districts, categories and units; loading the same file again changes nothing."""
    from duban.db import session_scope
    from tasks.directory import load_directory

    try:
        with session_scope() as session:
            summary = load_directory(session=session, path=file)
    except DubanError as exc:
        fail(str(exc))
    console.print(f"{file.name}: {summary.districts} districts and streets, {summary.categories} categories, "
                  f"{summary.units} units ({summary.changed} changes)")


@policy_app.command("check")
def policy_check(file: Path = typer.Argument(None, help="policy file (default: the one in force)"),
                 today: str = typer.Option(None, help="check as of this date (YYYY-MM-DD)")) -> None:
    """Validate a policy file as `policy apply` would; exit non-zero with every problem named by key and line."""
    from duban.settings import get_settings
    from models.policy import load_policy, policy_warnings
    from models.policy_checks import consistency_problems

    path = file or get_settings().policy_file
    try:
        policy = load_policy(path)
    except DubanError as exc:
        fail(str(exc))
    problems = consistency_problems(policy) + _reference_problems(policy)
    if problems:
        count = f"{len(problems)} problem" + ("s" if len(problems) > 1 else "")
        fail(f"{path}: refused, {count}:\n  " + "\n  ".join(problems))
    for warning in policy_warnings(policy, date.fromisoformat(today) if today else date.today()):
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    console.print(f"{path}: ok ({policy.name})")


def _reference_problems(policy) -> list[str]:
    """Unknown unit, category or district codes, once a directory is in the database."""
    from sqlalchemy import inspect, make_url, select
    from sqlalchemy.exc import OperationalError

    from duban.db import get_engine, session_scope
    from duban.settings import get_settings
    from models.directory import Category, District, Unit
    from models.policy import check_references

    url = make_url(get_settings().database_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        return []  # no database yet, so no directory to check against (and none is created by looking)
    try:
        if not inspect(get_engine()).has_table("units"):
            return []
    except OperationalError as exc:
        err.print(f"[yellow]warning:[/yellow] codes not checked against the directory: {exc.orig}",
                  highlight=False)
        return []
    with session_scope(readonly=True) as session:
        units = set(session.scalars(select(Unit.code)))
        if not units:
            return []
        return check_references(policy, units=units, categories=set(session.scalars(select(Category.code))),
                                districts=set(session.scalars(select(District.code))))


@policy_app.command("show")
def policy_show(number: int = typer.Option(None, "--version", min=0,
                                           help="an applied version (default: current)")) -> None:
    """Print the policy in force (or version N) and its version."""
    from duban.db import session_scope
    from tasks.policy_store import current_policy

    if number is not None:
        from tasks.policy_admin import version_text

        try:
            with session_scope(readonly=True) as session:
                console.print(version_text(session=session, number=number), markup=False, highlight=False,
                              soft_wrap=True)
        except DubanError as exc:
            fail(str(exc))
        return
    with session_scope(readonly=True) as session:
        in_force = current_policy(session)
    console.print(f"# policy version {in_force.version} ({in_force.policy.name}), "
                  f"hash {in_force.policy.content_hash()[:12]}")
    console.print(in_force.policy.source_text, markup=False, highlight=False, soft_wrap=True)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    """The `duban` command: Prefect's settings first, then the command.

    Prefect reads its settings once, when it is first imported, and a process without PREFECT_API_URL
    then starts a throwaway in-process server of its own. Every command therefore gets Duban's
    Prefect environment (API URL, home) before any of them imports Prefect; what the caller set wins.
    """
    import os

    from duban.orchestrator import prefect_env

    for key, value in prefect_env().items():
        os.environ.setdefault(key, value)
    app()


@app.command()
def summary() -> None:
    """Print what the database holds: directory, orders by status, notices, cases."""
    from sqlalchemy import func, select

    from duban.db import session_scope
    from models import Category, District, Notification, SupervisionCase, Unit, WorkOrder

    with session_scope(readonly=True) as session:
        count = lambda model: session.scalar(select(func.count()).select_from(model))  # noqa: E731
        console.print(f"directory: {count(District)} districts and streets, {count(Category)} categories, "
                      f"{count(Unit)} units")
        by_status = session.execute(select(WorkOrder.status, func.count()).group_by(WorkOrder.status)).all()
        console.print("work orders: " + (", ".join(f"{s} {n}" for s, n in sorted(by_status)) or "none yet"))
        console.print(f"notices: {count(Notification)}; supervision cases: {count(SupervisionCase)}")
    console.print(f"Prefect API: {_prefect_api()}")


def _prefect_api() -> str:
    """The API URL Prefect's own client uses in this process, and whether a server answers there."""
    from prefect.client.orchestration import get_client

    from duban.orchestrator import server_healthy

    url = str(get_client().api_url).rstrip("/")
    return f"{url} ({'answering' if server_healthy(url) else 'not answering'})"
import duban.cli_lifecycle  # noqa: E402,F401
import duban.cli_supervision  # noqa: E402,F401
import duban.cli_notify  # noqa: E402,F401
import duban.cli_intake  # noqa: E402,F401
import duban.cli_admin  # noqa: E402,F401
import duban.cli_accounts  # noqa: E402,F401
import duban.cli_history  # noqa: E402,F401
