"""Commands for units in the loop: the portal, the notification relay, the demo mail sink, unit digests."""

import socket
import time
from contextlib import ExitStack

import typer

from duban.cli import app, console, err
from duban.serve import SERVICES, Role, child


@app.command()
def portal(host: str = typer.Option(None, help="bind address (default: DUBAN_PORTAL_HOST)"),
           port: int = typer.Option(None, help="port (default: DUBAN_PORTAL_PORT)"),
           workers: int = typer.Option(1, min=1, max=16, help="worker processes")) -> None:
    """Serve the unit pages (and every router of the portal) alone."""
    import uvicorn

    from duban.settings import get_settings

    settings = get_settings()
    uvicorn.run("portal.app:create_app", factory=True, host=host or settings.portal_host,
                port=port or settings.portal_port, workers=workers, log_level="info")


@app.command()
def relay(once: bool = typer.Option(False, "--once", help="one pass, then exit"),
          limit: int = typer.Option(None, min=1, help="notices per pass (default: DUBAN_RELAY_BATCH_SIZE)")) -> None:
    """Send due notices from the outbox; without --once, keep going until interrupted."""
    from duban.settings import get_settings
    from tasks.relay import relay_once

    pause = get_settings().relay_interval_s
    try:
        while True:
            report = relay_once(limit=limit)
            if report.claimed or once:
                console.print(f"relay: {report.sent} sent, {report.retried} to retry, {report.failed} incidents",
                              highlight=False)
            if once:
                raise typer.Exit(1 if report.failed else 0)
            # A full batch means more may be waiting: go again at once.
            if report.claimed < (limit or get_settings().relay_batch_size):
                time.sleep(pause)
    except KeyboardInterrupt:
        pass


@app.command()
def mailsink(port: int = typer.Option(None, help="port (default: DUBAN_SMTP_PORT)"),
             host: str = typer.Option("127.0.0.1", help="bind address")) -> None:
    """Run the demo's local SMTP sink; every mail is kept in DUBAN_MAIL_SINK_DIR and shown at /mail."""
    from duban.mailsink import run_sink
    from duban.settings import get_settings

    settings = get_settings()
    port = port or settings.smtp_port
    console.print(f"mail sink on {host}:{port}, storing mail in {settings.mail_sink_dir}", highlight=False)
    try:
        run_sink(host=host, port=port, directory=settings.mail_sink_dir)
    except OSError as exc:
        err.print(f"[red]error:[/red] cannot listen on {host}:{port}: {exc}", highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass


@app.command()
def digest() -> None:
    """Queue the digest of open orders for every unit that has some (the relay sends them)."""
    from tasks.digest import enqueue_digests

    console.print(f"digests queued for {enqueue_digests()} units", highlight=False)


def _start_portal(stack: ExitStack) -> None:
    child(stack, "portal")


def _start_relay(stack: ExitStack) -> None:
    child(stack, "relay")


def _start_sink(stack: ExitStack) -> None:
    """The demo's sink, only outside production, for a local SMTP address nothing listens on yet."""
    from duban.settings import get_settings

    settings = get_settings()
    if settings.environment == "production" or settings.smtp_host not in {"127.0.0.1", "localhost"}:
        return
    with socket.socket() as probe:
        if probe.connect_ex((settings.smtp_host, settings.smtp_port)) == 0:
            return
    child(stack, "mailsink")


# `duban serve` starts these: the portal with the web role, the relay with the relay role, the sink in the demo.
SERVICES[Role.WEB].append(_start_portal)
SERVICES[Role.RELAY].append(_start_relay)
SERVICES[Role.ALL].append(_start_sink)
