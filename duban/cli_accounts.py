"""Commands for supervisors' accounts, the gateway in front of the Prefect UI, and the audit trail."""

from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import typer

from duban.cli import app, console, err
from duban.errors import DubanError
from duban.serve import SERVICES, Role, child

user_app = typer.Typer(help="Supervisors' personal accounts for the Prefect UI (through the gateway).",
                       no_args_is_help=True)
app.add_typer(user_app, name="user")
_LOCAL = ZoneInfo("Asia/Shanghai")
_UNIT_HELP = "code of a unit the person also acts for: they may not decide on orders that unit acted on"


def _fail(exc: DubanError) -> None:
    err.print(f"[red]error:[/red] {exc}", highlight=False)
    raise typer.Exit(1)


@user_app.command("add")
def user_add(name: str = typer.Argument(..., help="login name, also the name on decisions"),
             role: str = typer.Option(..., "--role", help="viewer, decider or admin"),
             unit: str = typer.Option(None, "--unit", help=_UNIT_HELP),
             password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                          help="at least 10 characters (asked for when not given)")) -> None:
    """Create a personal account with a role."""
    from tasks.accounts import add_user

    try:
        add_user(name=name, role=role, password=password, unit=unit)
    except DubanError as exc:
        _fail(exc)
    console.print(f"user {name} added with role {role}" + (f", acting for {unit}" if unit else ""), highlight=False)


@user_app.command("set-unit")
def user_set_unit(name: str = typer.Argument(..., help="login name"),
                  unit: str = typer.Argument(None, help=_UNIT_HELP + "; leave out to clear")) -> None:
    """Record the unit a person also acts for, or clear it."""
    from tasks.accounts import set_unit

    try:
        set_unit(name=name, unit=unit)
    except DubanError as exc:
        _fail(exc)
    console.print(f"user {name} acts for {unit}" if unit else f"user {name} acts for no unit", highlight=False)


@user_app.command("disable")
def user_disable(name: str = typer.Argument(..., help="login name")) -> None:
    """Disable an account; its sessions end at once."""
    from tasks.accounts import disable_user

    try:
        disable_user(name=name)
    except DubanError as exc:
        _fail(exc)
    console.print(f"user {name} disabled", highlight=False)


@user_app.command("reset-password")
def user_reset_password(name: str = typer.Argument(..., help="login name"),
                        password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                                     help="the new password (asked for when not given)")) -> None:
    """Set a new password, lift a lock-out, end the account's sessions."""
    from tasks.accounts import reset_password

    try:
        reset_password(name=name, password=password)
    except DubanError as exc:
        _fail(exc)
    console.print(f"password of {name} reset", highlight=False)


@user_app.command("list")
def user_list() -> None:
    """Every account with its role."""
    from tasks.accounts import list_users

    for name, role, disabled, unit in list_users():
        state = "disabled" if disabled else "active"
        typer.echo(f"{name}\t{role}\t{state}\t{unit or '-'}")


def _when(value: str, option: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        err.print(f"[red]error:[/red] {option} {value!r} is not a date (2026-11-30) or time (2026-11-30T09:00)",
                  highlight=False)
        raise typer.Exit(2) from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=_LOCAL)


@app.command()
def audit(start: str = typer.Option(..., "--from", help="first day or time (Asia/Shanghai), e.g. 2026-11-01"),
          end: str = typer.Option(..., "--to", help="last day (inclusive) or time (exclusive), Asia/Shanghai"),
          user: str = typer.Option(None, "--user", help="only this person's actions")) -> None:
    """Every supervisor action through the gateway: logins, decisions, cancellations, configuration changes."""
    from tasks.accounts import audit_trail

    until = _when(end, "--to")
    if len(end) == 10:
        until += timedelta(days=1)  # a date given as --to includes that whole day
    try:
        rows = audit_trail(start=_when(start, "--from"), end=until, user=user)
    except DubanError as exc:
        _fail(exc)
    for row in rows:
        refused = f"\t{row.details['refused']}" if "refused" in row.details else ""
        # Plain tab-separated lines, so the trail can be filtered and pasted into a spreadsheet.
        typer.echo(f"{row.at.astimezone(_LOCAL):%Y-%m-%d %H:%M:%S}\t{row.user}\t{row.action}\t{row.target}\t"
                   f"{row.outcome}{refused}")
    typer.echo(f"{len(rows)} actions")


@app.command()
def gateway(host: str = typer.Option(None, help="bind address (default: DUBAN_GATEWAY_HOST)"),
            port: int = typer.Option(None, help="port (default: DUBAN_GATEWAY_PORT)")) -> None:
    """Serve the Prefect UI behind personal logins and roles."""
    import uvicorn

    from duban.settings import get_settings

    settings = get_settings()
    uvicorn.run("gateway.app:create_app", factory=True, host=host or settings.gateway_host,
                port=port or settings.gateway_port, log_level="info", access_log=False)


def _start_gateway(stack: ExitStack) -> None:
    child(stack, "gateway")


# `duban serve` runs the gateway with the web role, beside the portal.
SERVICES[Role.WEB].append(_start_gateway)
