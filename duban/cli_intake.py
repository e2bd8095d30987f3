"""Intake on the command line: channels and their keys, file intake, the knowledge base."""

import csv
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from duban.cli import app, console, err, fail
from duban.errors import DubanError

channel_app = typer.Typer(help="Intake channels and their API keys.", no_args_is_help=True)
kb_app = typer.Typer(help="The knowledge base: import, search, review.", no_args_is_help=True)
app.add_typer(channel_app, name="channel")
app.add_typer(kb_app, name="kb")
ERRORS_SHOWN = 20


@channel_app.command("add")
def channel_add(name: str = typer.Argument(..., help="the channel's name, e.g. weibo or liling_platform"),
                channel: str = typer.Option(None, help="its kind when the name is not one (e.g. county_platform)")
                ) -> None:
    """Create a channel (or renew a revoked one); its new API key is the last line printed, shown only once."""
    from duban.db import session_scope
    from tasks.channels import add_channel

    try:
        with session_scope() as session:
            identity, key = add_channel(session=session, name=name, channel=channel)
    except DubanError as exc:
        fail(str(exc))
    console.print(f"channel {identity.name} ({identity.channel.value}) created; keep its key, it is not shown again:")
    print(key)


@channel_app.command("revoke")
def channel_revoke(name: str = typer.Argument(..., help="the channel's name")) -> None:
    """Revoke a channel's key at once; its items stay."""
    from duban.db import session_scope
    from tasks.channels import revoke_channel

    try:
        with session_scope() as session:
            info = revoke_channel(session=session, name=name)
    except DubanError as exc:
        fail(str(exc))
    console.print(f"channel {info.name}: key revoked at {info.revoked_at:%Y-%m-%d %H:%M} UTC")


@channel_app.command("list")
def channel_list() -> None:
    """Every channel, live and revoked."""
    from duban.db import session_scope
    from tasks.channels import list_channels

    with session_scope(readonly=True) as session:
        channels = list_channels(session=session)
    for info in channels:
        state = f"revoked {info.revoked_at:%Y-%m-%d}" if info.revoked_at else "live"
        console.print(f"{info.name}\t{info.channel}\t{state}\tsince {info.created_at:%Y-%m-%d}")
    if not channels:
        console.print("no channels yet; add one with `duban channel add NAME`")


@app.command("intake")
def intake(file: Path = typer.Argument(..., help="JSON Lines (.jsonl) or CSV file, one item per line"),
           channel: str = typer.Option(..., help="the registered channel the file comes from"),
           errors: Path = typer.Option(None, help="also write every refused line to this CSV file")) -> None:
    """Register a channel's file of items; refused lines are reported by number and field, the rest registered."""
    from duban.db import session_scope
    from tasks.channels import channel_by_name
    from tasks.intake import intake_file

    try:
        with session_scope(readonly=True) as session:
            identity = channel_by_name(session=session, name=channel)
        total = sum(1 for line in file.open(encoding="utf-8-sig") if line.strip()) if file.is_file() else 0
        if file.suffix.lower() == ".csv":
            total = max(total - 1, 0)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=err, transient=True) as progress:
            task = progress.add_task(file.name, total=total)
            report = intake_file(path=file, channel=identity, progress=lambda n: progress.advance(task, n))
    except DubanError as exc:
        fail(str(exc))
    refused = sorted({e.line for e in report.errors})
    console.print(f"{file.name}: {report.lines} lines, {report.created} registered, {report.existing} already "
                  f"registered, {len(refused)} refused")
    for problem in report.errors[:ERRORS_SHOWN]:
        err.print(f"line {problem.line}: {problem.field}: {problem.message}", markup=False, highlight=False)
    if len(report.errors) > ERRORS_SHOWN:
        err.print(f"... {len(report.errors) - ERRORS_SHOWN} more problems" +
                  (f"; all are in {errors}" if errors else "; use --errors FILE for all of them"))
    if errors:
        with errors.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["line", "field", "message"])
            writer.writerows((e.line, e.field, e.message) for e in report.errors)
    if refused:
        raise typer.Exit(1)


@kb_app.command("import")
def kb_import(file: Path = typer.Argument(..., help="YAML, JSON Lines or CSV file of articles")) -> None:
    """Insert or update articles by code; a bad record refuses the whole file."""
    from duban.db import session_scope
    from tasks.kb import import_articles

    try:
        with session_scope() as session:
            summary = import_articles(session=session, path=file)
    except DubanError as exc:
        fail(str(exc))
    console.print(f"{file.name}: {summary.created} created, {summary.updated} updated, {summary.unchanged} unchanged")


@kb_app.command("search")
def kb_search(text: str = typer.Argument(..., help="the question, in Chinese or English"),
              limit: int = typer.Option(5, min=1, max=50, help="how many articles to show")) -> None:
    """Articles answering a question, best first, with their score (0 to 1)."""
    from duban.db import session_scope
    from tasks.kb import search_articles

    with session_scope(readonly=True) as session:
        hits = search_articles(session=session, question=text, limit=limit)
    if not hits:
        console.print("no article matches; the question is a gap for the knowledge base")
    for hit in hits:
        console.print(f"{hit.score:.2f}  {hit.code}  {hit.title}  (review by {hit.review_by})", markup=False,
                      highlight=False)
        console.print(f"      {hit.snippet}", markup=False, highlight=False)


@kb_app.command("review")
def kb_review(code: str = typer.Argument(..., help="the article's code"),
              by: str = typer.Option(..., help="who confirmed it is current")) -> None:
    """Record that an article was reviewed and is current; prints its next review-by date."""
    from duban.db import session_scope
    from tasks.kb import review_article

    try:
        with session_scope() as session:
            due = review_article(session=session, code=code, reviewed_by=by)
    except DubanError as exc:
        fail(str(exc))
    console.print(f"{code}: reviewed; next review by {due}")
