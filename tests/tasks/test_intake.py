"""Bulk intake from JSON Lines and CSV files: per-line errors, nothing half-written, reruns add nothing."""

import json

import pytest
from sqlalchemy import func, select

from duban.db import session_scope
from duban.errors import ValidationFailed
from models.records import Event
from models.work_order import WorkOrder
from tasks.intake import intake_file
from tests.intake_helpers import ITEM, channel


def _counts() -> tuple[int, int]:
    with session_scope(readonly=True) as session:
        return (session.scalar(select(func.count()).select_from(WorkOrder)),
                session.scalar(select(func.count()).select_from(Event)))


def test_files_are_registered_and_bad_lines_reported_by_number_and_field(directory, tmp_path):
    identity, _ = channel("liling", "county_platform")
    lines = [
        json.dumps({**ITEM, "channel_ref": "L-1", "received_at": "2021-03-15T09:00:00+08:00"}, ensure_ascii=False),
        "{not json",
        "[1, 2, 3]",
        json.dumps({**ITEM}, ensure_ascii=False),
        json.dumps({**ITEM, "channel_ref": "L-2", "category": "no_such_category", "citizen_phone": "12"}),
        "",
        json.dumps({**ITEM, "channel_ref": "L-3", "received_at": "2021-03-16T10:00:00+08:00"}, ensure_ascii=False),
        json.dumps({**ITEM, "channel_ref": "L-3", "content": "同一编号再来一次"}, ensure_ascii=False),
    ]
    path = tmp_path / "county.jsonl"
    path.write_bytes("\n".join(lines).encode("utf-8") + b"\n\xff\xfe{}\n")
    seen = []
    report = intake_file(path=path, channel=identity, progress=seen.append)
    assert (report.lines, report.created, report.existing) == (8, 2, 1)
    assert sum(seen) == 8
    problems = {(e.line, e.field) for e in report.errors}
    assert {(2, "line"), (3, "item"), (4, "channel_ref"), (5, "citizen_phone"), (9, "line")} <= problems
    assert all(line != 5 or field != "category" for line, field in problems)  # shape errors first, then codes
    assert sorted(report.numbers) == ["ZZ20210315-000001", "ZZ20210316-000001"]
    assert _counts() == (2, 2)
    with session_scope(readonly=True) as session:
        stored = session.scalar(select(WorkOrder).where(WorkOrder.channel_ref == "liling:L-1"))
        assert stored.channel == "county_platform" and stored.citizen_phone == "13812345678"
        assert stored.status == "received" and stored.version == 1
    again = intake_file(path=path, channel=identity)
    assert (again.created, again.existing) == (0, 3) and _counts() == (2, 2)
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("channel_ref,content,item_type\nX-1,caf\xe9,complaint\n".encode("latin-1"))
    with pytest.raises(ValidationFailed, match="not UTF-8"):
        intake_file(path=latin1, channel=identity)
    _csv_files_take_the_same_fields(tmp_path)


def _csv_files_take_the_same_fields(tmp_path) -> None:
    identity, _ = channel("mayor-mailbox", "mayor_mailbox")
    path = tmp_path / "mailbox.csv"
    path.write_text(
        "channel_ref,content,item_type,category,district,citizen_phone,confidential\n"
        "M-1,小区垃圾站臭味很大，夏天苍蝇成群,complaint,city_appearance_life_services.garbage_station_odour,"
        "shifeng,0731-22334455,是\n"
        "M-2,建议增加公交线路,suggestion,,,,否\n"
        "M-3,缺一列,complaint,,,,否,多余\n"
        "M-4,,complaint,,,,\n"
        "M-5,路灯坏了,help,,atlantis,,\n",
        encoding="utf-8",
    )
    report = intake_file(path=path, channel=identity)
    assert report.created == 2
    problems = {(e.line, e.field) for e in report.errors}
    assert {(4, "line"), (5, "content"), (6, "item_type")} <= problems
    with session_scope(readonly=True) as session:
        first = session.scalar(select(WorkOrder).where(WorkOrder.channel_ref == "mayor-mailbox:M-1"))
        assert first.confidential is True and first.citizen_phone == "073122334455" and first.district_id
    spreadsheet = tmp_path / "items.xlsx"
    spreadsheet.write_bytes(b"PK")
    with pytest.raises(ValidationFailed, match="unknown file type"):
        intake_file(path=spreadsheet, channel=identity)
    with pytest.raises(ValidationFailed, match="no such file"):
        intake_file(path=tmp_path / "missing.jsonl", channel=identity)
