"""A Prefect server with an auth string only the gateway (and Duban's worker) knows, the gateway on a free port,
and a worker running lifecycle runs against that server."""

import base64
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from duban.settings import get_settings
from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.prefect_fixtures import Worker, _wait, free_port, prefect_server

AUTH_STRING = "gateway:only-the-gateway-knows-this"
# Each test numbers its orders under its own city code: runs on the shared server never share a name.
_CITY_CODES = iter(f"G{a}{b}" for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True)
class Server:
    """The Prefect server: its API URL and a client that talks to it directly, with the auth string."""

    api: str

    def client(self) -> httpx.Client:
        token = base64.b64encode(AUTH_STRING.encode()).decode()
        return httpx.Client(base_url=self.api.removesuffix("/api"), headers={"Authorization": f"Basic {token}"},
                            timeout=30)


@pytest.fixture(autouse=True)
def settings_read_afresh() -> Iterator[None]:
    """Set up before, and so torn down after, the environment a test changes: no later test sees its settings."""
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def authed_prefect(tmp_path_factory) -> Iterator[Server]:
    """A Prefect server that refuses every request without its auth string."""
    with prefect_server(tmp_path_factory.mktemp("prefect-gateway-home"),
                        PREFECT_SERVER_API_AUTH_STRING=AUTH_STRING) as api:
        yield Server(api)


@pytest.fixture
def gateway(db_url, authed_prefect, monkeypatch) -> Iterator[str]:
    """The gateway in this process (uvicorn in a thread), on a free port; its base URL."""
    from gateway.app import create_app

    monkeypatch.setenv("DUBAN_PREFECT_AUTH_STRING", AUTH_STRING)
    # The tests change sessions in the database and expect the very next request to see it.
    monkeypatch.setenv("DUBAN_GATEWAY_SESSION_RECHECK_S", "0")
    get_settings.cache_clear()
    port = free_port()
    config = uvicorn.Config(create_app(upstream_api=authed_prefect.api), host="127.0.0.1", port=port,
                            log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise TimeoutError("the gateway did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def authed_worker(directory, authed_prefect, monkeypatch, tmp_path) -> Iterator[Worker]:
    """`duban serve --role worker` given the server's auth string as Duban's one setting; this process talks to
    that server too."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    for name, value in (("PREFECT_API_URL", authed_prefect.api), ("DUBAN_PREFECT_AUTH_STRING", AUTH_STRING),
                        ("DUBAN_CITY_CODE", next(_CITY_CODES))):
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    worker = Worker(authed_prefect.api, directory, tmp_path)
    with temporary_settings({PREFECT_API_URL: authed_prefect.api, PREFECT_API_AUTH_STRING: AUTH_STRING}):
        worker.start()
        try:
            with authed_prefect.client() as client:
                _wait(lambda: client.get("/api/deployments/name/run-order-lifecycle/lifecycle").status_code == 200,
                      90, "serving the deployments")
            yield worker
        finally:
            worker.stop()


@pytest.fixture
def chromium():
    """Headless Chromium; each person opens their own context, so their cookies stay apart."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
