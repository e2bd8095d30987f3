"""A real aiosmtpd server for tests, whose replies a test scripts, and which keeps every mail it stored."""

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from duban.mailsink import MailServer
from duban.settings import get_settings


@dataclass
class Received:
    """One mail as it arrived: the envelope recipients and the parsed message."""

    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def html(self) -> str:
        return self.message.get_body(("html",)).get_content()

    @property
    def text(self) -> str:
        return self.message.get_body(("plain",)).get_content()

    @property
    def raw(self) -> str:
        """Every header and both parts, decoded: what a reader of the mail could see anywhere in it."""
        headers = "\n".join(f"{name}: {value}" for name, value in self.message.items())
        return f"{headers}\n{self.text}\n{self.html}"


class ScriptedHandler:
    """Replies to DATA as scripted, one step per mail: accept, drop (store, then hang up), hold, store_hold, or a reply."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: list[str] = []
        self.refuse: dict[str, str] = {}
        self.release = threading.Event()
        self.holding = threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        step = self.script.pop(0) if self.script else "accept"
        if step in {"hold", "store_hold"}:
            # Like a server that has the whole message but never answers: the client waits. With
            # store_hold the mail is already stored, as when the reply is lost on the way back.
            if step == "store_hold":
                self.received.append(self._received(envelope))
            self.holding.set()
            while not self.release.is_set():
                await asyncio.sleep(0.02)
            return "451 4.3.0 held by the test"
        if step in {"accept", "drop"}:
            self.received.append(self._received(envelope))
            if step == "drop":
                server.transport.close()
            return "250 OK"
        return step

    @staticmethod
    def _received(envelope) -> Received:
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        return Received(list(envelope.rcpt_tos), message)

    def wait_for(self, count: int, timeout: float = 10) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.received


def running_smtp(monkeypatch) -> Iterator[ScriptedHandler]:
    """Start the server on a free port and point Duban's settings (and subprocesses) at it."""
    handler = ScriptedHandler()
    server = MailServer(handler).start()
    monkeypatch.setenv("DUBAN_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("DUBAN_SMTP_PORT", str(server.port))
    monkeypatch.setenv("DUBAN_SMTP_TIMEOUT_S", "5")
    get_settings.cache_clear()
    try:
        yield handler
    finally:
        handler.release.set()
        server.stop()
        get_settings.cache_clear()


def use_settings(monkeypatch, **values: str) -> None:
    """Set DUBAN_* variables for this test and its subprocesses, and re-read the settings."""
    for name, value in values.items():
        monkeypatch.setenv(f"DUBAN_{name.upper()}", value)
    get_settings.cache_clear()

