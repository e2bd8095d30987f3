"""The demo's SMTP sink: `duban mailsink` keeps each mail in a maildir, and the portal lists and shows it."""

import mailbox
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from markupsafe import escape

from duban.mailsink import read_maildir
from notifications.sender import MailSender, OutgoingMail
from tests.notifications.smtp import use_settings
from tests.portal.live import running_portal

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def sink(tmp_path, monkeypatch):
    """`duban mailsink` on a free port, storing under tmp_path; settings point the sender and portal at it."""
    port = _free_port()
    use_settings(monkeypatch, mail_sink_dir=str(tmp_path / "mail"), smtp_port=str(port))
    process = subprocess.Popen([sys.executable, "-m", "duban", "mailsink", "--port", str(port)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not _listening(port):
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read().decode()
            time.sleep(0.1)
        yield tmp_path / "mail"
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            _, stderr = process.communicate()
            raise AssertionError(f"the sink did not stop within 60 s of Ctrl-C: {stderr.decode()[-2000:]}") from None
        assert process.returncode == 0, stderr.decode()[-2000:]


@pytest.fixture
def portal(sink, monkeypatch, tmp_path):
    yield from running_portal(monkeypatch, tmp_path)


def test_the_sink_keeps_each_mail_and_the_portal_lists_and_shows_it(sink, portal):
    mails = [OutgoingMail(message_id=f"<ZZ1.dispatch.{i}@duban>", recipients=("12345@cgj.example.gov.cn",),
                          subject=f"【12345热线督办】派单通知 {i}", text="派单", html=f"<p>派单 <b>{i}</b></p>")
             for i in (1, 2)]
    with MailSender() as sender:
        assert [sender.send(mail).outcome for mail in mails] == ["sent", "sent"]
    deadline = time.monotonic() + 10
    while len(mailbox.Maildir(sink)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    stored = read_maildir(sink)
    assert sorted(m.message_id for m in stored) == ["<ZZ1.dispatch.1@duban>", "<ZZ1.dispatch.2@duban>"]
    assert stored[0].subject.startswith("【12345热线督办】派单通知")
    with httpx.Client(base_url=portal, timeout=30) as http:
        listing = http.get("/mail")
        assert listing.status_code == 200 and all(m.key in listing.text for m in stored)
        page = http.get(f"/mail/{stored[0].key}")
        assert page.status_code == 200 and str(escape(stored[0].message_id)) in page.text
        assert "sandbox=" in page.text and "srcdoc=" in page.text and "<b>" not in page.text
        assert http.get("/mail/no-such-mail").status_code == 404
