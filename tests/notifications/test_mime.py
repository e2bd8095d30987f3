"""The notice's MIME bytes as a mail client parses them: headers, both alternatives, line lengths."""

from email import message_from_bytes, policy

from notifications.mime import alternative, encoded_words

SUBJECT = "【12345热线督办】知识库逾期未复核 Knowledge base review overdue · 株洲市天元区住房和城乡建设局" * 2
TEXT = "贵单位有一件工单即将超期。\nA work order is close to its deadline.\n" * 40
HTML = "<p>贵单位有一件工单即将超期。</p>" * 40


def _parsed(**headers: str):
    raw = alternative(subject=SUBJECT, headers={"Message-ID": "<ZZ1.dispatch.1@duban>", **headers}, text=TEXT,
                      html=HTML)
    return raw, message_from_bytes(raw, policy=policy.default)


def test_a_notice_parses_back_to_what_was_rendered_with_short_lines():
    to = ", ".join(f"unit{n}@example.gov.cn" for n in range(12))
    raw, message = _parsed(To=to, **{"X-Duban-Kind": "kb_stale_overdue"})
    assert message["Subject"] == SUBJECT
    assert message["Message-ID"] == "<ZZ1.dispatch.1@duban>"
    assert [a.addr_spec for a in message["To"].addresses] == to.split(", ")
    assert message["X-Duban-Kind"] == "kb_stale_overdue"
    assert message.get_content_type() == "multipart/alternative"
    assert message.get_body(("plain",)).get_content() == TEXT
    assert message.get_body(("html",)).get_content() == HTML
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78


def test_a_header_value_with_a_line_break_cannot_add_a_header():
    _, message = _parsed(**{"X-Duban-Order": "ZZ1\r\nBcc: someone@example.com"})
    assert message["Bcc"] is None
    assert message["X-Duban-Order"] == "ZZ1\r\nBcc: someone@example.com"
    assert encoded_words("ZZ20210315-000001") == "ZZ20210315-000001"
