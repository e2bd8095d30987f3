"""The Zhuzhou 2021 year: generation, replay, the floor (bulk executemany of the same final rows), report.

    .venv/bin/python -m bench.bench_year [--scale 1] [--seed 1] [--pg-url URL] [--no-sweep]

Each phase runs in its own process, so its peak memory is its own. The replay goes through
Duban's intake, transition() and the supervision sweep hour by hour; the floor then copies every
row the replay left into an empty database of the same schema with one executemany per 20,000
rows and table, timing only the inserts and the commit: what the database itself can do with
those rows. Prints one markdown table (and the raw figures as JSON) to paste into bench/RESULTS.md.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _child(phase: str, *flags: str, **args: object) -> dict:
    command = [sys.executable, "-m", "bench.bench_year", "--phase", phase, *flags]
    for key, value in args.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=os.environ)
    if done.returncode:
        raise SystemExit(f"{phase} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measured(result: dict, started: float, cpu: float) -> None:
    result |= {"seconds": round(time.perf_counter() - started, 1), "cpu_seconds": round(time.process_time() - cpu, 1),
               "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
               "load_after": round(os.getloadavg()[0], 1)}
    print(json.dumps(result, default=str))


def _fresh(url: str) -> None:
    """An empty database at `url`: a new SQLite file, or a PostgreSQL database dropped and created."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(parsed.database + suffix).unlink(missing_ok=True)
        return
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def phase_generate(args: argparse.Namespace) -> None:
    from tasks.simulate import simulate_year
    from tasks.simulate_profile import load_profile

    started, cpu = time.perf_counter(), time.process_time()
    summary = simulate_year(profile=load_profile("zhuzhou", year=2021, scale=args.scale), seed=args.seed,
                            out=Path(args.file))
    _measured({"orders": summary.orders, "calls": summary.calls, "actions": summary.actions,
               "bytes": Path(args.file).stat().st_size}, started, cpu)


def phase_replay(args: argparse.Namespace) -> None:
    _fresh(args.db_url)
    os.environ["DUBAN_DATABASE_URL"] = args.db_url
    from duban.db import session_scope
    from duban.schema import migrate
    from tasks.directory import load_directory
    from tasks.replay import replay, supervision_sweep

    migrate(args.db_url)
    with session_scope() as session:
        load_directory(session=session, path=ROOT / "duban" / "data" / "directory.yaml")
    started, cpu = time.perf_counter(), time.process_time()
    summary = replay(path=Path(args.file), sweep=None if args.no_sweep else supervision_sweep)
    _measured({"orders": summary.orders, "transitions": summary.transitions, "calls": summary.calls,
               "hours": summary.hours, "sweeps": summary.sweeps, "rungs": summary.rungs,
               "sweep_seconds": round(summary.sweep_seconds, 1)}, started, cpu)


def phase_report(args: argparse.Namespace) -> None:
    os.environ["DUBAN_DATABASE_URL"] = args.db_url
    from datetime import date

    from duban.db import session_scope
    from tasks.report import build_report
    from tasks.report_check import check_report
    from tasks.report_render import paragraph_zh, render_json, render_markdown

    started, cpu = time.perf_counter(), time.process_time()
    with session_scope(readonly=True) as session:
        figures = build_report(session, date_from=date(2021, 1, 1), date_to=date(2021, 12, 31))
    markdown = render_markdown(figures)
    render_json(figures)
    result = {"valid_items": figures["valid_items_accepted"], "calls": figures["calls_connected"],
              "markdown_bytes": len(markdown)}
    _measured(result, started, cpu)  # prints the timing line; the checks below are not timed
    published = json.loads((ROOT / "duban" / "data" / "profiles" / "zhuzhou-2021.json").read_text())
    checks = check_report(figures, published, scale=args.scale)
    result["checks"] = [[c.figure, c.ours, c.published, c.ok] for c in checks]
    result["paragraph"] = paragraph_zh(figures)
    print(json.dumps(result, default=str, ensure_ascii=False))


def phase_floor(args: argparse.Namespace) -> None:
    """Copy every row of the replayed database into an empty one, timing the executemany inserts only."""
    from sqlalchemy import create_engine, insert, select

    import models

    _fresh(args.floor_url)
    source, target = create_engine(args.db_url), create_engine(args.floor_url)
    models.Base.metadata.create_all(target)
    inserting, rows = 0.0, 0
    started, cpu = time.perf_counter(), time.process_time()
    with source.connect() as read, target.begin() as write:
        for table in models.Base.metadata.sorted_tables:
            result = read.execution_options(yield_per=20_000).execute(select(table).order_by(*table.primary_key))
            for batch in result.partitions():
                values = [dict(row._mapping) for row in batch]
                began = time.perf_counter()
                write.execute(insert(table), values)
                inserting += time.perf_counter() - began
                rows += len(values)
        began = time.perf_counter()
    inserting += time.perf_counter() - began
    _measured({"rows": rows, "insert_seconds": round(inserting, 1)}, started, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", default="all", choices=["all", "generate", "replay", "report", "floor"])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--file", default=None)
    parser.add_argument("--db-url", default=None)
    parser.add_argument("--floor-url", default=None)
    parser.add_argument("--pg-url", default=None, help="also run on PostgreSQL: a server URL whose databases "
                        "duban_bench_year and duban_bench_floor are dropped and recreated")
    parser.add_argument("--no-sweep", action="store_true")
    parser.add_argument("--workdir", default=None, help="where the year file and SQLite databases go")
    args = parser.parse_args()
    if args.phase != "all":
        {"generate": phase_generate, "replay": phase_replay, "report": phase_report, "floor": phase_floor}[
            args.phase](args)
        return
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-year-"))
    work.mkdir(parents=True, exist_ok=True)
    year = work / f"zhuzhou-2021-x{args.scale:g}.jsonl"
    print(f"work in {work}; load average {os.getloadavg()[0]:.1f}", file=sys.stderr)
    results = {"load_before": round(os.getloadavg()[0], 1),
               "generate": _child("generate", scale=args.scale, seed=args.seed, file=year)}
    targets = [("SQLite", f"sqlite:///{work}/year.db", f"sqlite:///{work}/floor.db")]
    if args.pg_url:
        base = args.pg_url.rsplit("/", 1)[0]
        targets.append(("PostgreSQL", f"{base}/duban_bench_year", f"{base}/duban_bench_floor"))
    for name, url, floor in targets:
        replayed = _child("replay", *(["--no-sweep"] if args.no_sweep else []), file=year, db_url=url)
        reported = _child("report", db_url=url, scale=args.scale)
        floored = _child("floor", db_url=url, floor_url=floor)
        results[name] = {"replay": replayed, "report": reported, "floor": floored,
                         "ratio": round(replayed["seconds"] / floored["insert_seconds"], 1)}
        print(f"{name}: {json.dumps(results[name], ensure_ascii=False)}", file=sys.stderr)
    print(_markdown(results, args))
    print(json.dumps(results, ensure_ascii=False))


def _markdown(results: dict, args: argparse.Namespace) -> str:
    g = results["generate"]
    lines = [f"Generation: {g['orders']:,} orders, {g['calls']:,} call-log rows, {g['actions']:,} actions, "
             f"{g['bytes'] / 1e6:.0f} MB: {g['seconds']} s wall, {g['cpu_seconds']} s CPU, "
             f"peak {g['peak_mb']} MB.",
             f"Load average (1 min) {results['load_before']} before the run, {g['load_after']} after generation.",
             "", "| database | replay wall | replay CPU | peak memory | transitions | sweeps (rungs) | sweep time "
             "| floor inserts | floor rows | replay / floor | report | load after replay |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in ("SQLite", "PostgreSQL"):
        if name not in results:
            continue
        r, f, p = results[name]["replay"], results[name]["floor"], results[name]["report"]
        lines.append(f"| {name} | {r['seconds']} s | {r['cpu_seconds']} s | {r['peak_mb']} MB | {r['transitions']:,} "
                     f"| {r['sweeps']:,} ({r['rungs']:,}) | {r['sweep_seconds']} s | {f['insert_seconds']} s | "
                     f"{f['rows']:,} | {results[name]['ratio']} | {p['seconds']} s ({p['cpu_seconds']} s CPU) "
                     f"| {r['load_after']} |")
    for name in ("SQLite", "PostgreSQL"):
        if name in results:
            checks = results[name]["report"]["checks"]
            differ = [c[0] for c in checks if not c[3]]
            lines += ["", f"{name} report against the published figures: {len(checks) - len(differ)} of {len(checks)} "
                      "agree" + (f"; differ: {', '.join(differ)}" if differ else "") + ".", "",
                      "| figure | Duban | published |", "|---|---|---|"]
            lines += [f"| {c[0]} | {_shown(c[1], c[3])} | {_shown(c[2], c[3])} |" for c in checks]
            lines += ["", results[name]["report"]["paragraph"]]
    return "\n".join(lines)


def _shown(value: object, ok: bool) -> str:
    if isinstance(value, list):
        return f"{len(value)}, in the published order" if ok else ", ".join(map(str, value))
    return f"{value:,}" if isinstance(value, int) else str(value)


if __name__ == "__main__":
    main()
