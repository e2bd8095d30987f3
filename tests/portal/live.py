"""The portal served by a real uvicorn on a free port, in a thread of the test process, against the test database."""

import socket
import threading
import time
from collections.abc import Iterator

import uvicorn

from portal.app import create_app
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
