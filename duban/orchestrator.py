"""The Prefect side of `duban serve`: a local server when none is running, and the served deployments."""

import importlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import yaml

from duban.errors import DubanError
from duban.processes import die_with_parent
from duban.settings import ROOT, get_settings


def prefect_env(api_url: str | None = None) -> dict[str, str]:
    """Environment every Prefect process of Duban shares: the API URL, a home under var/, quiet analytics."""
    api_url = api_url or os.environ.get("PREFECT_API_URL") or get_settings().prefect_api_url
    auth = get_settings().prefect_auth_string.get_secret_value()
    # One setting protects the server Duban starts and lets each of Duban's processes through; people go
    # through the gateway.
    protected = {"PREFECT_SERVER_API_AUTH_STRING": auth, "PREFECT_API_AUTH_STRING": auth} if auth else {}
    return {
        **protected,
        "PREFECT_API_URL": api_url,
        "PREFECT_HOME": os.environ.get("PREFECT_HOME", str(ROOT / "var" / "prefect")),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": os.environ.get("PREFECT_UI_ENABLED", "true"),
        # Suspended runs have no timeout; checking them every 5 s costs a third of a core at 5,000 waiting orders.
        "PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_LOOP_SECONDS": "300",
        # A woken lifecycle run waits its turn at a worker; marking it Late changes nothing for Duban, and on
        # SQLite that service's read-then-write transactions failed with "database is locked" thousands of
        # times in a 200-item demo, holding up resumes and forms (503s) behind them.
        "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
        "PREFECT_RUNNER_POLL_FREQUENCY": os.environ.get("PREFECT_RUNNER_POLL_FREQUENCY", "2"),
        "DUBAN_PROJECT_DIR": str(ROOT),
    }


def server_healthy(api_url: str, timeout: float = 2.0) -> bool:
    """Whether a Prefect server answers at this API URL."""
    try:
        return httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def ensure_server(api_url: str | None = None, *, wait_s: float = 90) -> subprocess.Popen | None:
    """Start a local Prefect server on the API URL's port unless one answers; None when one was running."""
    api_url = api_url or os.environ.get("PREFECT_API_URL") or get_settings().prefect_api_url
    if server_healthy(api_url):
        return None
    parsed = urlparse(api_url)
    if parsed.hostname not in {"127.0.0.1", "localhost"}:
        raise DubanError(f"no Prefect server answers at {api_url}, and Duban starts one only on this machine")
    env = {**os.environ, **prefect_env(api_url)}
    Path(env["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    log = open(Path(env["PREFECT_HOME"]) / "server.log", "ab")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", parsed.hostname, "--port", str(parsed.port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DubanError(f"the Prefect server exited at start (code {process.returncode}); see {log.name}")
        if server_healthy(api_url):
            return process
        time.sleep(0.5)
    process.terminate()
    raise DubanError(f"the Prefect server did not answer at {api_url} within {wait_s:.0f} s; see {log.name}")


def read_deployments(path: Path = ROOT / "prefect.yaml") -> list[dict[str, Any]]:
    """The deployments declared in prefect.yaml, with their schedules resolved."""
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DubanError(f"{path}: cannot read it: {exc}") from None
    return list(spec.get("deployments") or [])


def load_entrypoint(entrypoint: str):
    """Import `flows/x.py:function` as a flow object."""
    module_path, _, name = entrypoint.partition(":")
    module = importlib.import_module(module_path.removesuffix(".py").replace("/", "."))
    return getattr(module, name)


async def runner_deployments(names: set[str] | None = None, path: Path = ROOT / "prefect.yaml") -> list[tuple[Any, Any]]:
    """prefect.yaml's deployments, each with its flow, as deployments this process serves itself."""
    from prefect.schedules import Cron, Interval

    out = []
    for spec in read_deployments(path):
        if names and spec["name"] not in names:
            continue
        schedules = []
        for s in spec.get("schedules") or []:
            if "cron" in s:
                schedules.append(Cron(s["cron"], timezone=s.get("timezone", "Asia/Shanghai")))
            elif "interval" in s:
                schedules.append(Interval(s["interval"], timezone=s.get("timezone", "Asia/Shanghai")))
        flow = load_entrypoint(spec["entrypoint"])
        out.append((flow, await flow.ato_deployment(
            name=spec["name"], description=spec.get("description"), tags=spec.get("tags") or [],
            parameters=spec.get("parameters") or {}, schedules=schedules)))
    return out


async def serve_deployments(names: set[str] | None = None, *, limit: int | None = None) -> None:
    """Serve prefect.yaml's deployments from this process until stopped."""
    from prefect import aserve

    await aserve(*[d for _, d in await runner_deployments(names)], limit=limit, print_starting_message=False)
