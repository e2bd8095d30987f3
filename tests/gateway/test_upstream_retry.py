"""A busy Prefect server answers 503 (its database locked, the request rolled back); the UI does not retry,
so the gateway does, and a supervisor's decision arrives once the server takes it."""

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from aiohttp import web

import gateway.upstream
from duban.settings import get_settings
from tests.gateway.helpers import sign_in
from tests.prefect_fixtures import free_port

RUN_ID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


class BusyServer:
    """Stands in for a Prefect server whose database is locked for the first `busy` resume requests, and
    that drops the connection without an answer for the first `dropped` of them."""

    def __init__(self, busy: int, dropped: int = 0) -> None:
        self.busy, self.dropped, self.resumes, self.port = busy, dropped, [], free_port()

    async def _resume(self, request: web.Request) -> web.StreamResponse:
        self.resumes.append(await request.json())
        if len(self.resumes) <= self.dropped:
            request.transport.close()  # as a keep-alive connection closed just as the request arrived
            return web.Response()
        if len(self.resumes) <= self.busy:
            return web.json_response({"exception_message": "Service Unavailable"}, status=503)
        return web.json_response({"status": "ACCEPT", "details": {}}, status=201)

    def run(self, started: threading.Event, stop: threading.Event) -> None:
        async def serve() -> None:
            app = web.Application()
            app.router.add_get("/api/csrf-token", lambda _: web.json_response({"detail": "off"}, status=422))
            app.router.add_get(f"/api/flow_runs/{RUN_ID}", lambda _: web.json_response({"name": "not-an-order"}))
            app.router.add_post(f"/api/flow_runs/{RUN_ID}/resume", self._resume)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            started.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)
            await runner.cleanup()

        asyncio.run(serve())


@pytest.fixture
def busy_gateway(db_url, request, monkeypatch) -> Iterator[tuple[str, BusyServer]]:
    """The gateway in front of a server that stays busy for `request.param` resume requests (or, given
    (busy, dropped), also drops the connection of the first `dropped`)."""
    from gateway.app import create_app

    monkeypatch.setattr(gateway.upstream, "RETRY_DELAYS", (0.05, 0.1, 0.2, 0.4, 0.8))
    busy, dropped = request.param if isinstance(request.param, tuple) else (request.param, 0)
    server, started, stop = BusyServer(busy, dropped), threading.Event(), threading.Event()
    threading.Thread(target=server.run, args=(started, stop), daemon=True).start()
    assert started.wait(10)
    get_settings.cache_clear()
    app = uvicorn.Server(uvicorn.Config(create_app(upstream_api=f"http://127.0.0.1:{server.port}/api"),
                                        host="127.0.0.1", port=free_port(), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=app.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not app.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the gateway did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{app.config.port}", server
    app.should_exit = True
    thread.join(10)
    stop.set()


@pytest.mark.parametrize("busy_gateway", [2], indirect=True)
def test_a_decision_the_busy_server_refused_twice_is_sent_again_and_taken(busy_gateway):
    base, server = busy_gateway
    decider = sign_in(base, "decider-sun", "decider")
    answer = decider.post(f"/api/flow_runs/{RUN_ID}/resume", json={"run_input": {"decision": "approve"}})
    assert answer.status_code == 201 and answer.json()["status"] == "ACCEPT"
    assert server.resumes == [{"run_input": {"decision": "approve", "decided_by": "decider-sun"}}] * 3


@pytest.mark.parametrize("busy_gateway", [100], indirect=True)
def test_a_server_that_stays_busy_is_answered_with_its_503_after_the_retries(busy_gateway):
    base, server = busy_gateway
    decider = sign_in(base, "decider-zhou", "decider")
    answer = decider.post(f"/api/flow_runs/{RUN_ID}/resume", json={"run_input": {"decision": "approve"}})
    assert answer.status_code == 503 and answer.json() == {"exception_message": "Service Unavailable"}
    assert len(server.resumes) == len(gateway.upstream.RETRY_DELAYS) + 1


@pytest.mark.parametrize("busy_gateway", [(0, 1)], indirect=True)
def test_a_decision_whose_connection_the_server_dropped_is_sent_again_on_a_new_one(busy_gateway):
    base, server = busy_gateway
    decider = sign_in(base, "decider-qian", "decider")
    answer = decider.post(f"/api/flow_runs/{RUN_ID}/resume", json={"run_input": {"decision": "approve"}})
    assert answer.status_code == 201 and answer.json()["status"] == "ACCEPT"
    assert server.resumes == [{"run_input": {"decision": "approve", "decided_by": "decider-qian"}}] * 2
