"""Unit portal benchmark: order pages (GET) and sign-for submissions (POST) per second, with latency.

    .venv/bin/python -m bench.bench_portal [--orders 1000] [--gets 3000] [--concurrency 8] [--workers 2]
                                           [--shared-socket] [--db-url URL] [--prefect-api URL]

A fresh SQLite database in a temporary directory (or the PostgreSQL database given, which is emptied
first) gets `--orders` orders dispatched through the real transition path and one signed link per order.
The portal runs as `--workers` web processes, each on its own port, as docs/deploy.md runs them behind
the proxy; this process is the load generator, on loopback, with a fixed number of requests and a fixed
number in flight, so the load is bounded in both. It spreads its connections over the processes in turn,
as the proxy's upstream does. With `--shared-socket` the processes are instead uvicorn's `--workers`
sharing one listening socket, where the kernel hands each keep-alive connection to whichever process
accepts first: a few long-lived connections then often land unevenly, one process busy and one idle.
GET: the order page of each order in turn. POST: the sign-for form of each order once (each link is
single-use, so every POST is a real sign-for: link used up, transition, event, a fresh link, a 303).
Besides rate and latency, the server's own CPU time per request is read from /proc for its process
processes: on a machine others load too, that is the figure that says what two free cores would carry.

With `--prefect-api` (a running Prefect server), each order also gets a flow run suspended as its
lifecycle run waits for the unit, so every sign-for wakes a real run, as in production: the portal
does that after answering, and the figures include its CPU. The time from the last POST until every
run was woken is reported too.
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


def _prepare(url: str, orders: int) -> list[tuple[str, str, int]]:
    """Migrate, load the directory, dispatch the orders; returns (token, order number, order id) per order."""
    from sqlalchemy import select, text

    from duban.db import get_engine, reset_engines, session_scope
    from duban.schema import migrate
    from models.base import utcnow
    from models.enums import ActorKind
    from models.lifecycle import Action
    from models.work_order import Assignment
    from tasks.directory import load_directory
    from tasks.orders import create_order
    from tasks.tokens import ORDER, TokenRequest, issue_tokens
    from tasks.transitions import Actor, transition

    os.environ["DUBAN_DATABASE_URL"] = url
    reset_engines()
    if url.startswith("postgresql"):
        with get_engine().begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    migrate()
    with session_scope() as session:
        load_directory(session=session, path=ROOT / "duban" / "data" / "directory.yaml")
    staff = Actor(ActorKind.STAFF, "bench")
    dispatched: list[tuple[int, str]] = []
    for start in range(0, orders, 100):
        with session_scope() as session:
            for n in range(start, min(start + 100, orders)):
                order = create_order(session=session, channel="hotline", item_type="complaint",
                                     content=f"夜间施工噪音扰民，第{n}号",
                                     category_code="city_appearance_life_services.noise",
                                     citizen_name="张三", citizen_phone="13812341234")
                transition(order_id=order.id, action=Action.DISPATCH, actor=staff, session=session)
                dispatched.append((order.id, order.number))
    with session_scope() as session:
        leads = dict(session.execute(select(Assignment.work_order_id, Assignment.unit_id)
                                     .where(Assignment.role == "lead")).all())
        issued = issue_tokens(session=session, at=utcnow(),
                              requests=[TokenRequest(leads[order_id], order_id, ORDER) for order_id, _ in dispatched])
    return [(token, number, order_id) for (token, _), (order_id, number) in zip(issued, dispatched, strict=True)]


def _suspended_runs(links: list[tuple[str, str, int]]) -> list:
    """A flow run per order, suspended as a lifecycle run waiting for the unit to sign; returns their ids."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Suspended

    from duban.db import session_scope
    from models.base import utcnow
    from models.records import RunCursor

    @flow(name="bench-order-lifecycle")
    def waiting() -> None:
        """Stands for the lifecycle flow: only its runs' states matter here."""

    with get_client(sync_client=True) as client:
        runs = [client.create_flow_run(waiting, name=number, state=Suspended(pause_key="unit-sign-v2-0")).id
                for _, number, _ in links]
    with session_scope() as session:
        session.add_all(RunCursor(work_order_id=order_id, flow_run_id=str(run), started_at=utcnow(),
                                  narrated_event_id=0, applied_inputs=[])
                        for (_, _, order_id), run in zip(links, runs, strict=True))
    return runs


def _woken(runs: list, timeout: float) -> tuple[int, float]:
    """How many of the runs left their suspended state, waiting up to `timeout`; and the seconds it took."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    started = time.perf_counter()
    with get_client(sync_client=True) as client:
        while True:
            woken = 0
            for offset in range(0, len(runs), 200):
                page = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(
                    any_=runs[offset:offset + 200])), limit=200)
                woken += sum(1 for run in page if not run.state.is_paused())
            if woken == len(runs) or time.perf_counter() - started > timeout:
                return woken, time.perf_counter() - started
            time.sleep(0.5)


async def _load(ports: list[int], requests: list[tuple[str, str]], concurrency: int
                ) -> tuple[list[float], float, dict]:
    """Send (method, path) requests over `concurrency` keep-alive connections, spread over the ports in turn;
    a lean client that costs little."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = iter(requests)

    async def connection(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for method, path in queue:
                body = b"" if method == "GET" else b"x=1"
                head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                if method == "POST":
                    head += f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
                started = time.perf_counter()
                writer.write(f"{head}\r\n".encode() + body)
                status = int((await reader.readline()).split()[1])
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(connection(ports[n % len(ports)]) for n in range(concurrency))),
                           timeout=600)
    return latencies, time.perf_counter() - started, statuses


def _server_cpu(groups: list[int]) -> float:
    """CPU seconds used so far by every process of the servers' process groups (uvicorn and any workers)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in groups:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _measured(name: str, groups: list[int], ports: list[int], requests: list[tuple[str, str]],
              concurrency: int) -> dict:
    """Run one load and summarise it: rate, latency, and the servers' CPU per request."""
    cpu = _server_cpu(groups)
    latencies, elapsed, statuses = asyncio.run(_load(ports, requests, concurrency))
    cpu = _server_cpu(groups) - cpu
    latencies = sorted(latencies)
    return {"what": name, "requests": len(latencies), "statuses": statuses,
            "requests_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(latencies[max(int(len(latencies) * 0.99) - 1, 0)] * 1000, 1),
            "server_cpu_ms_per_request": round(cpu / len(latencies) * 1000, 2),
            "requests_per_server_cpu_s": round(len(latencies) / cpu, 1) if cpu else None}


WARM_UP_POSTS = 10  # per web process, on orders of their own, so the first sign-fors' imports are not measured


def _start(workers: int, shared_socket: bool, env: dict[str, str]) -> tuple[list[subprocess.Popen], list[int]]:
    """The web processes, each in its own process group; returns them and the ports they listen on."""
    command = [sys.executable, "-m", "uvicorn", "portal.app:create_app", "--factory", "--host", "127.0.0.1",
               "--log-level", "warning", "--no-access-log"]
    ports = [_free_port() for _ in range(1 if shared_socket else workers)]
    extra = ["--workers", str(workers)] if shared_socket else []
    servers = [subprocess.Popen([*command, "--port", str(port), *extra], cwd=ROOT, env=env, start_new_session=True)
               for port in ports]
    for port in ports:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
    return servers, ports


def bench_portal(orders: int, gets: int, concurrency: int, workers: int, url: str | None,
                 prefect_api: str | None = None, shared_socket: bool = False) -> dict:
    """Order page GETs and sign-for POSTs per second against the portal's web processes under uvicorn."""
    folder = Path(tempfile.mkdtemp(prefix="duban-bench-portal-"))
    url = url or f"sqlite:///{folder / 'bench.db'}"
    if prefect_api:
        os.environ["PREFECT_API_URL"] = prefect_api
    warm_up = WARM_UP_POSTS * workers
    links = _prepare(url, orders + warm_up)
    runs = _suspended_runs(links) if prefect_api else []
    env = {**os.environ, "DUBAN_DATABASE_URL": url, "DUBAN_UPLOAD_DIR": str(folder / "uploads")}
    servers, ports = _start(workers, shared_socket, env)
    groups = [server.pid for server in servers]
    try:
        load_average = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        pages = [("GET", f"/u/{token}/orders/{number}") for token, number, _ in links[warm_up:]]
        signs = [("POST", f"/u/{token}/orders/{number}/sign") for token, number, _ in links]
        asyncio.run(_load(ports, pages[:200] + signs[:warm_up], concurrency))  # warm up every process
        get = _measured("order page GET", groups, ports, (pages * (gets // len(pages) + 1))[:gets], concurrency)
        post = _measured("sign-for POST", groups, ports, signs[warm_up:], concurrency)
        if runs:
            # Wake-ups still running after the last answer are charged to the POSTs too.
            cpu = _server_cpu(groups)
            post["runs_woken"], waited = _woken(runs, timeout=120)
            post["all_runs_woken_after_s"] = round(waited, 1)
            per_request = post["server_cpu_ms_per_request"] + (_server_cpu(groups) - cpu) / orders * 1000
            post["server_cpu_ms_per_request"] = round(per_request, 2)
            post["requests_per_server_cpu_s"] = round(1000 / per_request, 1)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(30)
    return {"database": url.split(":", 1)[0], "workers": workers,
            "layout": "shared socket" if shared_socket else "a port per process", "concurrency": concurrency,
            "prefect": bool(prefect_api), "load_average_at_start": load_average,
            "load_average_at_end": " ".join(Path("/proc/loadavg").read_text().split()[:3]), "get": get, "post": post}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--gets", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="web processes")
    parser.add_argument("--shared-socket", action="store_true",
                        help="uvicorn --workers on one listening socket instead of a port per process")
    parser.add_argument("--db-url", help="a PostgreSQL database to use (emptied first); default: a temporary SQLite")
    parser.add_argument("--prefect-api", help="a Prefect server's API URL: every order gets a suspended run to wake")
    args = parser.parse_args()
    print(json.dumps(bench_portal(args.orders, args.gets, args.concurrency, args.workers, args.db_url,
                                  args.prefect_api, args.shared_socket), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
