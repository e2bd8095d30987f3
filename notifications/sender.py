"""Sending rendered notices over SMTP with yagmail, and saying exactly how each attempt ended."""

import smtplib
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from email.utils import format_datetime, formataddr
from typing import Literal

import yagmail

from duban.settings import Settings, get_settings
from models.base import utcnow
from notifications.mime import alternative
from notifications.render import SYSTEM_NAME

Outcome = Literal["sent", "retry", "failed"]


@dataclass(frozen=True)
class OutgoingMail:
    """One notice as it goes on the wire; the Message-ID is the notice's own, stable across resends."""

    message_id: str
    recipients: tuple[str, ...]
    subject: str
    text: str
    html: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivery:
    """How one send ended: who accepted it, who refused it and why, or what broke."""

    accepted: tuple[str, ...] = ()
    refused: Mapping[str, str] = field(default_factory=dict)
    error: str = ""
    permanent: bool = False

    @property
    def outcome(self) -> Outcome:
        """sent only when nothing was refused and nothing broke; failed on a 5xx; else retry."""
        if self.permanent:
            return "failed"
        return "retry" if self.refused or self.error else "sent"

    @property
    def reason(self) -> str:
        """The error and every refusal, for the notice's last_error."""
        parts = [self.error] if self.error else []
        parts += [f"{address} refused: {reply}" for address, reply in self.refused.items()]
        return "; ".join(parts)


class MailSender:
    """One SMTP session for a batch of notices, reopened after any failure that broke it."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        s = self.settings
        password = s.smtp_password.get_secret_value()
        self._yag = yagmail.SMTP(
            user=s.smtp_user, password=password or None, host=s.smtp_host, port=s.smtp_port,
            smtp_ssl=s.smtp_ssl, smtp_starttls=s.smtp_starttls, smtp_skip_login=not password,
            timeout=s.smtp_timeout_s,
        )
        self._open = False

    @property
    def redirect_to(self) -> str | None:
        """The one inbox all mail goes to outside production, if set."""
        if self.settings.environment == "production":
            return None
        return self.settings.mail_redirect_to or None

    def send(self, mail: OutgoingMail) -> Delivery:
        """Send one mail; never raises for an SMTP or network failure, it says so in the Delivery."""
        if not mail.recipients:
            return Delivery(error="the notice has no recipient address", permanent=True)
        envelope = [self.redirect_to] if self.redirect_to else list(mail.recipients)
        data = self._message(mail, envelope)
        try:
            if not self._open:
                self._yag.login()
                self._open = True
            # yagmail's send() logs in again for every mail and, on a dropped connection, re-sends
            # up to three times with 3-9 s sleeps before keeping the mail in memory and returning
            # False. The outbox owns retries (backoff in its query, an incident after the last
            # attempt) and must know which recipients were refused, so the relay uses yagmail's
            # connection and login and runs the one SMTP transaction on the smtplib client it holds.
            refused = self._yag.smtp.sendmail(self._yag.user, envelope, data)
        except smtplib.SMTPRecipientsRefused as exc:
            return self._refusals(mail, envelope, exc.recipients)
        except smtplib.SMTPResponseException as exc:
            self._drop_if_closed(exc.smtp_code)
            reply = f"{exc.smtp_code} {_text(exc.smtp_error)}"
            return Delivery(error=f"server replied {reply}", permanent=500 <= exc.smtp_code < 600)
        except (OSError, smtplib.SMTPException) as exc:
            # A dropped connection after DATA may or may not have delivered: retry, the
            # Message-ID makes a second copy recognisable.
            self.close()
            return Delivery(error=f"{type(exc).__name__}: {exc}".strip(": "))
        return self._refusals(mail, envelope, refused)

    def _refusals(self, mail: OutgoingMail, envelope: list[str],
                  refused: Mapping[str, tuple[int, bytes | str]]) -> Delivery:
        if self.redirect_to:
            accepted = () if refused else mail.recipients
        else:
            accepted = tuple(r for r in mail.recipients if r not in refused)
        replies = {address: f"{code} {_text(text)}" for address, (code, text) in refused.items()}
        permanent = any(500 <= code < 600 for code, _ in refused.values())
        return Delivery(accepted=accepted, refused=replies, permanent=permanent)

    def _drop_if_closed(self, code: int) -> None:
        # smtplib closes the socket itself after a 421; everything else leaves the session usable.
        if code == 421:
            self.close()

    def _message(self, mail: OutgoingMail, envelope: list[str]) -> bytes:
        # Built here rather than by yagmail, whose builder copies the HTML markup into the text/plain
        # alternative; text-only mail clients are common in government offices.
        headers = {"From": self._from, "To": ", ".join(envelope), "Date": format_datetime(utcnow()),
                   "Message-ID": mail.message_id, "Auto-Submitted": "auto-generated"}
        if self.redirect_to:
            headers["X-Duban-Original-To"] = ", ".join(mail.recipients)
        return alternative(subject=mail.subject, headers=headers | dict(mail.headers), text=mail.text, html=mail.html)

    @property
    def _from(self) -> str:
        return formataddr((SYSTEM_NAME[0], self._yag.user), charset="utf-8")

    def close(self) -> None:
        """End the SMTP session if one is open."""
        if self._open:
            with suppress(OSError, smtplib.SMTPException):
                self._yag.close()
            self._open = False

    def __enter__(self) -> "MailSender":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
