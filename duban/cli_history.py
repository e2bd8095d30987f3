"""`duban import`, `duban export`, `duban simulate year`, `duban replay`, `duban report`: history and evaluation."""

from datetime import date
from pathlib import Path

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from duban.cli import app, console, err, fail
from duban.errors import DubanError

simulate_app = typer.Typer(help="Synthetic history for benchmarks and demos.", no_args_is_help=True)
app.add_typer(simulate_app, name="simulate")


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r} is not a date; write e.g. 2021-01-01")
        raise


def _bar(description: str, total: int) -> Progress:
    return Progress(TextColumn(description), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                    console=console, transient=True, disable=total == 0)


@app.command("import")
def import_(file: Path = typer.Argument(..., help="history file (.jsonl, or a call-log .csv)")) -> None:
    """Import a history file: every line checked first, then all of it in one transaction (or nothing)."""
    from tasks.history import import_history

    size = file.stat().st_size if file.is_file() else 0
    try:
        with _bar(f"importing {file.name}", 2 * size) as bar:
            task = bar.add_task("import", total=2 * size)
            summary = import_history(path=file, progress=lambda n: bar.advance(task, n))
    except DubanError as exc:
        fail(str(exc))
    console.print(f"{file.name}: {summary.orders_added} orders added ({summary.transitions} actions), "
                  f"{summary.orders_unchanged} already there; {summary.calls_added} calls added, "
                  f"{summary.calls_unchanged} already there; {summary.totals_added} published totals added"
                  + ("" if summary.changed else "; nothing changed"))


@app.command("export")
def export(date_from: str = typer.Option(..., "--from", help="first local day, e.g. 2021-01-01"),
           date_to: str = typer.Option(..., "--to", help="last local day, e.g. 2021-12-31"),
           out: Path = typer.Option(None, "--out",
                                    help="file to write (.jsonl; .csv writes the call log only)")) -> None:
    """Export the calls and the orders received in a period, in the import format."""
    from tasks.history import export_history

    start, end = _day(date_from, "--from"), _day(date_to, "--to")
    out = out or Path(f"history-{start}-{end}.jsonl")
    try:
        summary = export_history(path=out, date_from=start, date_to=end)
    except DubanError as exc:
        fail(str(exc))
    console.print(f"{out}: {summary.orders} orders, {summary.calls} calls, {summary.totals} published totals")


@simulate_app.command("year")
def simulate_year(year: int = typer.Option(2021, help="the year to generate (2004 to 2026)"),
                  profile: str = typer.Option("zhuzhou", help="zhuzhou, or a profile JSON file"),
                  seed: int = typer.Option(1, help="random seed: the same seed gives the same file"),
                  scale: float = typer.Option(1.0, help="multiply every count, e.g. 10 for a city ten times larger"),
                  out: Path = typer.Option(None, "--out",
                                           help="file to write (default year-YEAR-PROFILE.jsonl)")) -> None:
    """Generate a year of calls, items and their histories following a profile's published figures."""
    from tasks.simulate import simulate_year as generate
    from tasks.simulate_profile import load_profile

    out = out or Path(f"year-{year}-{Path(profile).stem}.jsonl")
    try:
        loaded = load_profile(profile, year=year, scale=scale)
        summary = generate(profile=loaded, seed=seed, out=out)
    except DubanError as exc:
        fail(str(exc))
    console.print(f"{out}: {summary.calls} calls not valid, {summary.orders} orders ({summary.valid_items} valid, "
                  f"{summary.handed_to_units} handed to units, {summary.open_at_year_end} open at the year's end), "
                  f"{summary.actions} actions; misbehaving units: {summary.units}")


@app.command()
def replay(file: Path = typer.Argument(..., help="history file to replay, e.g. from duban simulate year"),
           sweep: bool = typer.Option(True, help="run the supervision sweep after each simulated hour")) -> None:
    """Run a year through Duban's intake, transitions and supervision sweep in simulated time."""
    from tasks.replay import replay as run
    from tasks.replay import supervision_sweep

    size = file.stat().st_size if file.is_file() else 0
    if not size:
        fail(f"{file}: no such file")
    try:
        with _bar(f"replaying {file.name}", size) as bar:
            task = bar.add_task("replay", total=size)
            summary = run(path=file, sweep=supervision_sweep if sweep else None,
                          progress=lambda n: bar.advance(task, n))
    except DubanError as exc:
        fail(str(exc))
    console.print(f"{file.name}: {summary.orders} orders, {summary.transitions} transitions, {summary.calls} calls "
                  f"in {summary.seconds:.1f} s; {summary.hours} simulated hours, {summary.sweeps} sweeps fired "
                  f"{summary.rungs} rungs {summary.rung_counts}")


@app.command()
def report(date_from: str = typer.Option(..., "--from", help="first local day, e.g. 2021-01-01"),
           date_to: str = typer.Option(..., "--to", help="last local day, e.g. 2021-12-31"),
           format: str = typer.Option("markdown", "--format", help="markdown, json or html"),
           compare_previous: bool = typer.Option(False, "--compare-previous",
                                                 help="every figure beside the same period a year before"),
           out: Path = typer.Option(None, "--out", help="write to this file instead of the terminal"),
           check: Path = typer.Option(None, "--check", help="published figures (JSON) to check the report against; "
                                      "exits 1 when one disagrees")) -> None:
    """The hotline's report for a period: calls, channels, categories, handling, visits, supervision."""
    from duban.db import session_scope
    from tasks.report import build_report
    from tasks.report_render import render_html, render_json, render_markdown

    renderers = {"markdown": render_markdown, "json": render_json, "html": render_html}
    if format not in renderers:
        fail(f"--format {format!r} is not one of markdown, json, html")
    start, end = _day(date_from, "--from"), _day(date_to, "--to")
    try:
        with session_scope(readonly=True) as session:
            figures = build_report(session, date_from=start, date_to=end, compare_previous=compare_previous)
    except DubanError as exc:
        fail(str(exc))
    text = renderers[format](figures)
    if out:
        out.write_text(text, encoding="utf-8")
        console.print(f"{out}: {format} report {start} to {end}")
    else:
        print(text)
    if check:
        _check(figures, check)


def _check(figures: dict, path: Path) -> None:
    import json

    from rich.table import Table

    from tasks.report_check import check_report

    try:
        published = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"--check {path}: not a readable JSON file of published figures ({exc})")
    checks = check_report(figures, published)
    table = Table("figure", "Duban", "published", "within", "")
    for c in checks:
        table.add_row(c.figure, str(c.ours), str(c.published), c.tolerance, "ok" if c.ok else "[red]differs[/red]")
    err.print(table)
    wrong = [c.figure for c in checks if not c.ok]
    if wrong:
        fail(f"{len(wrong)} of {len(checks)} figures differ from {path.name}: {', '.join(wrong)}")
    err.print(f"all {len(checks)} figures agree with {path.name}")
