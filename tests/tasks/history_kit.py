"""Hand-made history files: lines of the format built from a few words each."""

import json
from pathlib import Path
from typing import Any

HEADER = {"type": "header", "format": "duban-history", "version": 1, "city": "ZZ"}


def at(day: str, clock: str = "09:00") -> str:
    """A local time in the format: at("2021-03-08", "10:30")."""
    return f"{day}T{clock}:00+08:00"


def ev(when: str, action: str, actor: str, **payload: Any) -> dict[str, Any]:
    return {"at": when, "action": action, "actor": actor, **({"payload": payload} if payload else {})}


def order(number: str, received: str, *, channel: str = "hotline", item_type: str = "complaint",
          category: str | None = None, district: str | None = None, events: list[dict] | None = None,
          **extra: Any) -> dict[str, Any]:
    line: dict[str, Any] = {"type": "order", "number": number, "received_at": received, "channel": channel,
                            "item_type": item_type}
    if category:
        line["category"] = category
    if district:
        line["district"] = district
    return line | {"content": extra.pop("content", "来电反映问题")} | extra | {"events": events or []}


def call(ref: str, when: str, channel: str = "hotline", outcome: str = "dropped", **extra: Any) -> dict[str, Any]:
    return {"type": "call", "ref": ref, "at": when, "channel": channel, "outcome": outcome, **extra}


def write(path: Path, lines: list[dict[str, Any] | str], header: dict[str, Any] | None = None) -> Path:
    """A history file: the header, then each line (a dict as JSON, a str as it is)."""
    text = [json.dumps(header or HEADER, ensure_ascii=False)]
    text += [line if isinstance(line, str) else json.dumps(line, ensure_ascii=False) for line in lines]
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return path


def full_lifecycle(number: str, day: str, unit: str, category: str, *, visit: str | None = "satisfied",
                   **extra: Any) -> dict[str, Any]:
    """A complaint dispatched, signed, replied, approved and closed the same day."""
    events = [
        ev(at(day, "09:10"), "dispatch", "staff:desk-01", unit=unit),
        ev(at(day, "09:40"), "sign", f"unit:{unit}"),
        ev(at(day, "15:00"), "reply", f"unit:{unit}", text="已到现场处理", contacted=True, solved=True),
        ev(at(day, "16:00"), "approve_reply", "supervisor:office-1"),
    ]
    if visit:
        events.append(ev(at(day, "17:00"), "close", "staff:desk-02", satisfaction=visit, contacted=True,
                         resolved=True))
    else:
        events.append(ev(at(day, "16:01"), "close", "system"))
    return order(number, at(day, "09:00"), category=category, events=events, **extra)
