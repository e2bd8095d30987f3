"""The portal served by a real uvicorn on a free port against the test database: in a thread, or in its own process."""

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import uvicorn

from portal.app import create_app
from tests.prefect_fixtures import ROOT, free_port, stop
from tests.notifications.smtp import use_settings


def running_portal(monkeypatch, tmp_path) -> Iterator[str]:
    """Serve the portal; links in mails point at it and uploads go under tmp_path. Yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    use_settings(monkeypatch, portal_base_url=base, upload_dir=str(tmp_path / "uploads"))
    server = uvicorn.Server(uvicorn.Config(create_app(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the portal did not start")
        time.sleep(0.02)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def portal_process(monkeypatch, tmp_path) -> Iterator[str]:
    """`duban portal` in its own process, as deployed: its own Prefect settings and its own run waker."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    use_settings(monkeypatch, portal_base_url=base, upload_dir=str(tmp_path / "uploads"))
    log = open(tmp_path / "portal.log", "wb")  # noqa: SIM115
    process = subprocess.Popen([sys.executable, "-m", "duban", "portal", "--host", "127.0.0.1", "--port", str(port)],
                               cwd=ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"the portal did not start; see {tmp_path / 'portal.log'}")
            time.sleep(0.2)
        yield base
    finally:
        stop(process)
        log.close()
