"""Intake benchmarks: items per second over HTTP (with p99 latency), bulk file intake, category suggestion.

    .venv/bin/python -m bench.bench_intake [--requests 3000] [--concurrency 16] [--workers 2] [--bulk 50000]

Everything runs on loopback against a fresh SQLite database in a temporary directory; the load generator
sends a fixed number of requests with a fixed number in flight, so it is bounded in both.
"""

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare(url: str) -> str:
    """Migrate, load the demo directory, register a channel; returns its key."""
    os.environ["DUBAN_DATABASE_URL"] = url
    from duban.db import reset_engines, session_scope
    from duban.schema import migrate
    from tasks.channels import add_channel
    from tasks.directory import load_directory

    reset_engines()
    migrate()
    with session_scope() as session:
        load_directory(session=session, path=ROOT / "duban" / "data" / "directory.yaml")
        _, key = add_channel(session=session, name="bench", channel="online_post")
    return key


def _items(count: int, seed: int = 1) -> list[dict]:
    from bench.intake_data import labelled_items

    per_category = count // 56 + 1
    rows = []
    for n, (text, code) in enumerate(labelled_items({}, per_category=per_category, seed=seed)):
        rows.append({"content": text, "item_type": "complaint", "category": code, "district": "lusong.jianning",
                     "citizen_name": "张三", "citizen_phone": f"138{n % 100000000:08d}",
                     "channel_ref": f"B-{seed}-{n}"})
    return rows[:count]


async def _load(port: int, key: str, items: list[dict], concurrency: int) -> tuple[list[float], float, int]:
    """Post every item over `concurrency` keep-alive connections; a lean client, so it takes little CPU."""
    latencies: list[float] = []
    failures = 0
    bodies = iter(json.dumps(item, ensure_ascii=False).encode() for item in items)

    async def connection() -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for body in bodies:
                head = (f"POST /api/v1/items HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\n"
                        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
                started = time.perf_counter()
                writer.write(head + body)
                status = int((await reader.readline()).split()[1])
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                failures += status != 201
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(connection() for _ in range(concurrency))), timeout=600)
    return latencies, time.perf_counter() - started, failures


def _cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process and its children (uvicorn's workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for task in [pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                        text=True).stdout.split()]:
        fields = Path(f"/proc/{task}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def bench_http(requests: int, concurrency: int, workers: int) -> dict:
    """Items per second through the intake API served by uvicorn, with latency percentiles."""
    from duban.db import reset_engines

    with tempfile.TemporaryDirectory(prefix="duban-bench-intake-") as folder:
        try:
            return _bench_http(Path(folder), requests, concurrency, workers)
        finally:
            reset_engines()


def _bench_http(folder: Path, requests: int, concurrency: int, workers: int) -> dict:
    url = f"sqlite:///{folder / 'bench.db'}"
    key = _prepare(url)
    port = _free_port()
    env = {**os.environ, "DUBAN_DATABASE_URL": url}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "portal.app:create_app", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        asyncio.run(_load(port, key, _items(200, seed=0), concurrency))  # warm up every worker
        load_average = _load_average()
        cpu_before = _cpu_seconds(server.pid)
        latencies, elapsed, failures = asyncio.run(_load(port, key, _items(requests), concurrency))
        cpu = _cpu_seconds(server.pid) - cpu_before
    finally:
        server.terminate()
        server.wait(30)
    latencies.sort()
    return {"requests": requests, "concurrency": concurrency, "workers": workers, "failures": failures,
            "items_per_s": round(requests / elapsed, 1), "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
            "server_cpu_ms_per_item": round(cpu / requests * 1000, 2), "load_average_at_start": load_average,
            "load_average_at_end": _load_average()}


def bench_bulk(count: int) -> dict:
    """Items per second registered from a JSON Lines file."""
    from duban.db import reset_engines

    with tempfile.TemporaryDirectory(prefix="duban-bench-intake-") as folder:
        try:
            return _bench_bulk(Path(folder), count)
        finally:
            reset_engines()


def _bench_bulk(folder: Path, count: int) -> dict:
    _prepare(f"sqlite:///{folder / 'bulk.db'}")
    from duban.db import session_scope
    from tasks.channels import channel_by_name
    from tasks.intake import intake_file

    path = folder / "items.jsonl"
    path.write_text("\n".join(json.dumps(i, ensure_ascii=False) for i in _items(count, seed=2)), encoding="utf-8")
    with session_scope(readonly=True) as session:
        channel = channel_by_name(session=session, name="bench")
    started, cpu = time.perf_counter(), time.process_time()
    report = intake_file(path=path, channel=channel)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert report.created == count and not report.errors, report.errors[:3]
    return {"items": count, "seconds": round(elapsed, 2), "items_per_s": round(count / elapsed),
            "cpu_seconds": round(cpu, 2), "items_per_cpu_s": round(count / cpu)}


def bench_classify() -> dict:
    """Top-1 accuracy of the category suggestion, keywords only and with past routing, on held-out items."""
    import yaml

    from bench.intake_data import accuracy, labelled_items, split
    from tasks.classify import Classifier

    data = yaml.safe_load((ROOT / "duban" / "data" / "directory.yaml").read_text(encoding="utf-8"))
    leaves = {c["code"]: c.get("keywords_zh", []) for top in data["categories"] for c in top.get("children", [])}
    parents = {c["code"]: top.get("keywords_zh", []) for top in data["categories"] for c in top.get("children", [])}
    keywords_only = Classifier.build(keywords=leaves, parent_keywords=parents)
    training, held_out = split(list(labelled_items(leaves, per_category=100)))
    trained = Classifier.build(keywords=leaves, parent_keywords=parents, samples=training)
    unseen_training = list(labelled_items(leaves, per_category=80, first_situation=False))
    unseen = list(labelled_items(leaves, per_category=20, first_situation=True, seed=99))
    trained_unseen = Classifier.build(keywords=leaves, parent_keywords=parents, samples=unseen_training)

    def measured(model, items) -> dict:
        top1, _ = accuracy(model, items)
        precision, coverage = accuracy(model, items, min_confidence=0.5)
        return {"top1": round(top1, 3), "precision_at_0.5": round(precision, 3), "coverage_at_0.5": round(coverage, 3)}

    return {"categories": len(leaves), "held_out_items": len(held_out), "training_items": len(training),
            "keywords_only": measured(keywords_only, held_out), "with_routing": measured(trained, held_out),
            "unseen_phrasings_items": len(unseen), "unseen_keywords_only": measured(keywords_only, unseen),
            "unseen_with_routing": measured(trained_unseen, unseen)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--bulk", type=int, default=50_000)
    parser.add_argument("--only", choices=["http", "bulk", "classify"], help="run one benchmark")
    args = parser.parse_args()
    runs = {"http": lambda: bench_http(args.requests, args.concurrency, args.workers),
            "bulk": lambda: bench_bulk(args.bulk), "classify": bench_classify}
    results = {name: run() for name, run in runs.items() if args.only in (None, name)}
    print(json.dumps(results, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
