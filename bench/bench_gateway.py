"""What the gateway adds to a proxied request: the same requests, interleaved, directly and through the gateway.

    .venv/bin/python -m bench.bench_gateway

Reports the median and 95th percentile of both, and the gateway process's CPU per proxied request
(from /proc: the gateway is idle while the direct requests run).
"""

import base64
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.bench_lifecycle import cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
AUTH = "bench:auth-string"
ROUNDS = 400


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], env: dict[str, str], url: str, log: Path) -> subprocess.Popen:
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return process
        except httpx.HTTPError:
            time.sleep(0.3)
    raise TimeoutError(f"{args[2:4]} did not start; see {log}")


def _stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(30)


def _timed(client: httpx.Client, path: str, body: dict) -> float:
    start = time.perf_counter()
    response = client.post(path, json=body)
    elapsed = time.perf_counter() - start
    response.raise_for_status()
    return elapsed * 1000


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    prefect_port, gateway_port = _port(), _port()
    api = f"http://127.0.0.1:{prefect_port}/api"
    env = {**os.environ, "PREFECT_HOME": str(work / "prefect"), "PREFECT_API_URL": api,
           "PREFECT_SERVER_API_AUTH_STRING": AUTH, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "DUBAN_DATABASE_URL": f"sqlite:///{work / 'duban.db'}", "DUBAN_PREFECT_AUTH_STRING": AUTH}
    os.environ.update({"DUBAN_DATABASE_URL": env["DUBAN_DATABASE_URL"]})
    subprocess.run([sys.executable, "-m", "duban", "init"], cwd=ROOT, env=env, check=True, capture_output=True)
    from tasks.accounts import add_user

    add_user(name="bench-viewer", role="viewer", password="bench-password-1")
    server = _start([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                     str(prefect_port)], env, f"{api}/health", work / "server.log")
    gateway = _start([sys.executable, "-m", "duban", "gateway", "--port", str(gateway_port)], env,
                     f"http://127.0.0.1:{gateway_port}/login", work / "gateway.log")
    try:
        token = base64.b64encode(AUTH.encode()).decode()
        direct = httpx.Client(base_url=f"http://127.0.0.1:{prefect_port}", headers={"Authorization": f"Basic {token}"})
        proxied = httpx.Client(base_url=f"http://127.0.0.1:{gateway_port}")
        page = proxied.get("/login").text
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        proxied.post("/login", data={"name": "bench-viewer", "password": "bench-password-1", "csrf": csrf})
        proxied.headers["Prefect-Csrf-Token"] = proxied.get("/api/csrf-token", params={"client": "b"}).json()["token"]
        body = {"limit": 10, "sort": "START_TIME_DESC"}
        for _ in range(20):  # warm both paths
            _timed(direct, "/api/flow_runs/filter", body)
            _timed(proxied, "/api/flow_runs/filter", body)
        direct_ms, proxied_ms = [], []
        cpu_before, server_before = cpu_seconds(gateway.pid), cpu_seconds(server.pid)
        for _ in range(ROUNDS):
            direct_ms.append(_timed(direct, "/api/flow_runs/filter", body))
            proxied_ms.append(_timed(proxied, "/api/flow_runs/filter", body))
        gateway_cpu = (cpu_seconds(gateway.pid) - cpu_before) / ROUNDS * 1000
        server_cpu = (cpu_seconds(server.pid) - server_before) / (2 * ROUNDS) * 1000
        d, p = statistics.median(direct_ms), statistics.median(proxied_ms)
        q = lambda xs: statistics.quantiles(xs, n=20)[18]  # noqa: E731 - the 95th percentile
        print(f"POST /api/flow_runs/filter, {ROUNDS} interleaved pairs, one client, keep-alive")
        print(f"direct:  median {d:.2f} ms, p95 {q(direct_ms):.2f} ms")
        print(f"gateway: median {p:.2f} ms, p95 {q(proxied_ms):.2f} ms")
        print(f"added by the gateway: median {p - d:.2f} ms (target < 5 ms)")
        print(f"CPU per request: gateway {gateway_cpu:.2f} ms per proxied request; "
              f"Prefect server {server_cpu:.2f} ms per request")
        print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    finally:
        _stop(gateway)
        _stop(server)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
