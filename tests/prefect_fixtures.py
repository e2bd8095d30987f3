"""A real Prefect server for the session and a real `duban serve --role worker`, for every package that needs them."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import BACKENDS

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")


def _healthy(api: str) -> bool:
    try:
        return httpx.get(f"{api}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


@contextmanager
def prefect_server(home: Path, **env: str) -> Iterator[str]:
    """A Prefect server configured as the one Duban starts (`duban.orchestrator.prefect_env`), on its own SQLite
    database under `home` and a free port, until the block ends; its API URL. `env` adds to its environment."""
    from duban.orchestrator import prefect_env

    api = f"http://127.0.0.1:{free_port()}/api"
    port = api.rsplit(":", 1)[1].removesuffix("/api")
    env = {**os.environ, **prefect_env(api), "PREFECT_HOME": str(home), "PREFECT_UI_ENABLED": "true", **env}
    log = open(home / "server.log", "wb")  # noqa: SIM115
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", port], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait(lambda: _healthy(api), 120, "the Prefect server start")
        yield api
    finally:
        stop(server)
        log.close()


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory) -> Iterator[str]:
    """A Prefect server for the whole session."""
    with prefect_server(tmp_path_factory.mktemp("prefect-home")) as api:
        yield api


@pytest.fixture
def prefect_client_env(prefect_api, monkeypatch) -> Iterator[str]:
    """This test process talks to the test server."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    with temporary_settings({PREFECT_API_URL: prefect_api}):
        yield prefect_api


class Worker:
    """`duban serve --role worker` in its own process group, restartable, killable."""

    def __init__(self, api: str, db_url: str, log_dir: Path) -> None:
        self.api, self.db_url, self.log_dir = api, db_url, log_dir
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        env = {**os.environ, "PREFECT_API_URL": self.api, "DUBAN_DATABASE_URL": self.db_url,
               "PREFECT_RUNNER_POLL_FREQUENCY": "1", "PREFECT_HOME": str(self.log_dir / "home")}
        self.starts += 1
        log = open(self.log_dir / f"worker-{self.starts}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen([sys.executable, "-m", "duban", "serve", "--role", "worker", "--no-server"],
                                        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)

    def flow_run_processes(self) -> list[int]:
        """Pids of the flow-run children the runner started."""
        out = subprocess.run(["pgrep", "-g", str(self.process.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split() if int(p) != self.process.pid]


# Tests that drive lifecycle runs end to end, or walk the Prefect UI in Chromium, may run on one database, the
# production one (PostgreSQL) when it is configured: each costs tens of seconds to minutes, tests/flows runs
# the lifecycle on both, and what the UI shows does not depend on Duban's database.
production_database = pytest.mark.parametrize("db_url", BACKENDS[-1:], indirect=True)


def deployed() -> bool:
    """Whether the lifecycle deployment is registered on the server this process talks to."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name("run-order-lifecycle/lifecycle")
            return True
        except Exception:  # noqa: BLE001 - not there yet
            return False


@pytest.fixture
def worker(directory, prefect_client_env, tmp_path) -> Iterator[Worker]:
    """Duban's deployments served against the test database and server."""
    w = Worker(prefect_client_env, directory, tmp_path)
    w.start()
    try:
        _wait(deployed, 90, "serving the deployments")
        yield w
    finally:
        w.stop()


_CODES = iter(f"{a}{b}" for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


@pytest.fixture
def own_order_numbers(monkeypatch) -> None:
    """The test numbers its orders under its own city code, so runs on the shared server never share a name."""
    from duban.settings import get_settings

    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    monkeypatch.setenv("DUBAN_CITY_CODE", "T" + "ABCDEFGHIJ"[int(worker) % 10] + next(_CODES))
    get_settings.cache_clear()
