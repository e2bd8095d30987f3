"""The demo's local SMTP sink: aiosmtpd storing each mail in a maildir, and portal pages to read them."""

import asyncio
import mailbox
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from email import message_from_binary_file, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from duban.settings import get_settings
from portal.pages import render


class MailServer:
    """An aiosmtpd server on its own thread and event loop; port 0 binds a free port."""

    def __init__(self, handler: Any, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler, self.host, self.port = handler, host, port
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="duban-smtp", daemon=True)

    def start(self) -> "MailServer":
        """Bind and serve; returns once the port accepts connections."""
        self._thread.start()
        create = self._loop.create_server(
            lambda: SMTP(self.handler, hostname="duban-sink", loop=self._loop, enable_SMTPUTF8=True),
            self.host, self.port)
        self._server = asyncio.run_coroutine_threadsafe(create, self._loop).result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        """Close the listening socket and every open session, then end the thread."""
        if self._server is not None:
            async def _close() -> None:
                self._server.close()
                for task in asyncio.all_tasks():
                    if task is not asyncio.current_task():
                        task.cancel()

            asyncio.run_coroutine_threadsafe(_close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> "MailServer":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class MaildirSink:
    """Keeps each mail byte for byte as it arrived, with the envelope in front, one file per mail."""

    def __init__(self, directory: Path) -> None:
        for part in ("tmp", "new", "cur"):
            (directory / part).mkdir(parents=True, exist_ok=True)
        self.box = mailbox.Maildir(directory, create=False)

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        # Stored as received rather than parsed and written again: the sink then costs the relay
        # it serves almost nothing, and the file is exactly what the server was sent.
        envelope_lines = (f"X-Peer: {session.peer[0] if session.peer else ''}\r\n"
                          f"X-MailFrom: {envelope.mail_from}\r\nX-RcptTo: {', '.join(envelope.rcpt_tos)}\r\n")
        self.box.add(envelope_lines.encode() + envelope.original_content)
        return "250 OK"


def run_sink(*, host: str, port: int, directory: Path) -> None:
    """Serve the sink until interrupted, storing every mail in `directory` as a maildir."""
    server = MailServer(MaildirSink(directory), host=host, port=port).start()
    try:
        # Not one long wait: Ctrl-C may be delivered to the server's thread, and Python raises it in the
        # main thread only when that thread next runs, which a wait without a timeout never does.
        while True:
            time.sleep(0.5)
    finally:
        server.stop()


@dataclass(frozen=True)
class StoredMail:
    """One received mail as the sink page shows it."""

    key: str
    subject: str
    sender: str
    to: str
    date: datetime | None
    message_id: str
    text: str
    html: str


def read_maildir(directory: Path) -> list[StoredMail]:
    """Every mail in the sink, newest first."""
    if not directory.exists():
        return []
    box = mailbox.Maildir(directory, create=False)
    mails = [_stored(key, box) for key in box.iterkeys()]
    return sorted(mails, key=lambda m: (m.date is not None, m.date or datetime.min), reverse=True)


def read_mail(directory: Path, key: str) -> StoredMail:
    """One mail by its maildir key; KeyError when there is none."""
    box = mailbox.Maildir(directory, create=False)
    return _stored(key, box)


def _stored(key: str, box: mailbox.Maildir) -> StoredMail:
    with box.get_file(key) as handle:
        message: EmailMessage = message_from_binary_file(handle, policy=policy.default)
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    try:
        date = parsedate_to_datetime(message["Date"]) if message["Date"] else None
    except (TypeError, ValueError):
        date = None
    return StoredMail(
        key=key, subject=str(message["Subject"] or ""), sender=str(message["From"] or ""),
        to=str(message["To"] or ""), date=date, message_id=str(message["Message-ID"] or ""),
        text=text.get_content() if text else "", html=html.get_content() if html else "",
    )


router = APIRouter(prefix="/mail", tags=["demo mail sink"], include_in_schema=False)


@router.get("", response_class=HTMLResponse)
def mail_list(request: Request) -> HTMLResponse:
    """The sink's inbox: every mail received, newest first."""
    mails = read_maildir(get_settings().mail_sink_dir)
    return render(request, "mail_list.html", mails=mails, directory=get_settings().mail_sink_dir)


@router.get("/{key}", response_class=HTMLResponse)
def mail_read(request: Request, key: str) -> HTMLResponse:
    """One received mail: its headers, text and HTML parts."""
    try:
        mail = read_mail(get_settings().mail_sink_dir, key)
    except (KeyError, FileNotFoundError):
        raise HTTPException(status_code=404, detail=f"no mail {key!r} in the sink") from None
    return render(request, "mail_read.html", mail=mail)
