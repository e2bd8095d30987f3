"""A notice's MIME message as bytes: multipart/alternative, plain text and HTML, UTF-8 in base64.

Written directly rather than through the email package, whose generator folds and re-encodes every
header on each message: the bytes are the same shape a mail client reads from MIMEMultipart, at a
fraction of the cost per notice.
"""

import base64
import secrets
from collections.abc import Mapping

CRLF = "\r\n"
# Header lines are kept to 78 characters; an encoded word spends 12 of them on "=?utf-8?b?" and "?=".
_LINE = 78


def _word_bytes(room: int) -> int:
    """How many UTF-8 bytes fit in an encoded word of at most `room` characters (base64: 4 per 3)."""
    return (room - 12) // 4 * 3


def encoded_words(value: str, *, used: int = 0) -> str:
    """An RFC 2047 header value: plain ASCII as is, anything else as UTF-8 base64 words, one per folded line.

    `used` is what the header's name already takes of the first line.
    """
    if value.isascii() and "\r" not in value and "\n" not in value:
        return value
    words, chunk, size, limit = [], [], 0, _word_bytes(_LINE - used)
    for char in value:
        width = len(char.encode())
        if size + width > limit and chunk:
            words.append("".join(chunk))
            chunk, size, limit = [], 0, _word_bytes(_LINE - 1)
        chunk.append(char)
        size += width
    words.append("".join(chunk))
    return f"{CRLF} ".join(f"=?utf-8?b?{base64.b64encode(w.encode()).decode()}?=" for w in words)


def _part(subtype: str, body: str) -> str:
    encoded = base64.encodebytes(body.encode()).decode().replace("\n", CRLF)
    return (f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}MIME-Version: 1.0{CRLF}'
            f"Content-Transfer-Encoding: base64{CRLF}{CRLF}{encoded}")


def _address_list(value: str) -> str:
    # Folded after each comma, so a long recipient list never makes an overlong header line.
    return value.replace(", ", f",{CRLF} ") if len(value) > 70 else value


def alternative(*, subject: str, headers: Mapping[str, str], text: str, html: str) -> bytes:
    """The whole message, CRLF line ends, ready for SMTP DATA."""
    boundary = f"=_duban_{secrets.token_hex(12)}"
    lines = [f'Content-Type: multipart/alternative;{CRLF} boundary="{boundary}"', "MIME-Version: 1.0",
             f"Subject: {encoded_words(subject, used=len('Subject: '))}"]
    for name, value in headers.items():
        value = (_address_list(value) if name in {"To", "X-Duban-Original-To"}
                 else encoded_words(value, used=len(name) + 2))
        lines.append(f"{name}: {value}")
    return CRLF.join([*lines, "", f"--{boundary}", _part("plain", text), f"--{boundary}", _part("html", html),
                      f"--{boundary}--", ""]).encode()
