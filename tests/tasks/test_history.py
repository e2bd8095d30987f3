"""History import and export: per-line errors naming line and field, all or nothing, idempotent, exact."""

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from duban.db import get_engine, session_scope
from models.history import Call, PublishedTotals
from models.records import Event, Notification
from models.requests import ReturnVisit, Review
from models.work_order import Assignment, WorkOrder
from tasks.history import export_history, import_history
from tasks.history_format import HistoryError
from tasks.simulate import simulate_year
from tasks.simulate_profile import load_profile
from tests.conftest import ROOT, _empty
from tests.tasks.history_kit import at, call, ev, full_lifecycle, order, write
from tests.tasks.test_report import march_2021

NOISE = "city_appearance_life_services.noise"
TABLES = (WorkOrder, Event, Assignment, Notification, Review, ReturnVisit, Call, PublishedTotals)


def counts() -> dict[str, int]:
    with session_scope(readonly=True) as session:
        return {m.__tablename__: session.scalar(select(func.count()).select_from(m)) for m in TABLES}


def reset(url: str) -> None:
    """An empty database again, with the demo directory (a second city's database, as it were)."""
    from tasks.directory import load_directory

    _empty(get_engine(url))
    with session_scope() as session:
        load_directory(session=session, path=ROOT / "duban" / "data" / "directory.yaml")


def test_export_then_import_round_trips_exactly(directory, tmp_path):
    generated = tmp_path / "year.jsonl"
    simulate_year(profile=load_profile("zhuzhou", year=2021, scale=0.001), seed=3, out=generated)
    summary = import_history(path=generated)
    with session_scope(readonly=True) as session:
        versions = session.scalar(select(func.sum(WorkOrder.version)))
    # Each order's version is 1 at intake and moved by exactly one per transition, batched or not.
    assert versions == summary.orders_added + summary.transitions
    first = tmp_path / "first.jsonl"
    export_history(path=first, date_from=date(2021, 1, 1), date_to=date(2021, 12, 31))
    # The generator writes the canonical lines export writes: only the header's source differs.
    assert first.read_text().splitlines()[1:] == generated.read_text().splitlines()[1:]
    before = counts()
    reset(directory)
    import_history(path=first)
    assert counts() == before
    second = tmp_path / "second.jsonl"
    export_history(path=second, date_from=date(2021, 1, 1), date_to=date(2021, 12, 31))
    assert second.read_bytes() == first.read_bytes()


def test_reimporting_the_same_file_changes_nothing(directory, tmp_path):
    path = write(tmp_path / "march.jsonl", march_2021())
    first = import_history(path=path)
    assert (first.orders_added, first.calls_added, first.totals_added) == (11, 4, 1)
    before = counts()
    again = import_history(path=path)
    assert not again.changed
    assert (again.orders_unchanged, again.calls_unchanged, again.totals_unchanged) == (11, 4, 1)
    assert counts() == before


def test_a_broken_line_is_named_by_line_and_field_and_nothing_is_written(directory, tmp_path):
    good = full_lifecycle("ZZ20210302-000001", "2021-03-02", "ecology_environment", NOISE)
    bad = full_lifecycle("ZZ20210302-000002", "2021-03-02", "ecology_environment", NOISE)
    bad["events"][1]["action"] = "sing"
    bad["channel"] = "fax"
    path = write(tmp_path / "broken.jsonl", [good, call("C1", at("2021-03-02")), bad, "{not json"])
    with pytest.raises(HistoryError) as caught:
        import_history(path=path)
    message = str(caught.value)
    assert "line 4: channel: \"fax\" is not allowed" in message
    assert "line 4: events[1].action: \"sing\" is not allowed" in message
    assert "line 5: not valid JSON" in message
    assert counts()["work_orders"] == 0 and counts()["calls"] == 0


def test_an_action_duban_refuses_names_its_line_and_nothing_is_written(directory, tmp_path):
    wrong_unit = order("ZZ20210303-000001", at("2021-03-03"), category=NOISE, events=[
        ev(at("2021-03-03", "09:10"), "dispatch", "staff:desk-01", unit="ecology_environment"),
        ev(at("2021-03-03", "09:30"), "sign", "unit:housing")])
    path = write(tmp_path / "refused.jsonl", [
        full_lifecycle("ZZ20210302-000001", "2021-03-02", "ecology_environment", NOISE), wrong_unit])
    with pytest.raises(HistoryError, match=r"line 3: events\[1\] \(sign\): .*unit housing holds no assignment"):
        import_history(path=path)
    assert counts()["work_orders"] == 0 and counts()["events"] == 0


def test_a_lifecycle_the_table_forbids_is_caught_before_anything_is_written(directory, tmp_path):
    skipped = order("ZZ20210303-000001", at("2021-03-03"), category=NOISE,
                    events=[ev(at("2021-03-03", "09:10"), "sign", "unit:housing"),
                            ev(at("2021-03-03", "09:00"), "close", "staff:desk-01")])
    with pytest.raises(HistoryError) as caught:
        import_history(path=write(tmp_path / "forbidden.jsonl", [skipped]))
    assert "line 2: events[0].action: sign is not allowed when the order is received" in str(caught.value)
    assert "line 2: events[1].at: 2021-03-03T09:00:00+08:00 is earlier than the event before it" in str(caught.value)
    assert counts()["work_orders"] == 0


def test_the_same_number_with_other_content_is_refused_naming_the_field(directory, tmp_path):
    original = full_lifecycle("ZZ20210302-000001", "2021-03-02", "ecology_environment", NOISE)
    import_history(path=write(tmp_path / "first.jsonl", [original]))
    changed = dict(original, content="另一件事")
    with pytest.raises(HistoryError, match="line 2: order ZZ20210302-000001 is already in the database with "
                                           "different content \\(content\\)"):
        import_history(path=write(tmp_path / "second.jsonl", [changed, call("C9", at("2021-03-03"))]))
    assert counts()["calls"] == 0


def test_the_call_log_round_trips_as_csv(directory, tmp_path):
    import_history(path=write(tmp_path / "calls.jsonl", [call("C1", at("2021-03-02")),
                                                          call("C2", at("2021-03-03"), "wechat", "progress_query",
                                                               order="ZZ20210301-000001", note="催问进度")]))
    exported = tmp_path / "calls.csv"
    export_history(path=exported, date_from=date(2021, 3, 1), date_to=date(2021, 3, 31))
    lines = exported.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "ref,at,channel,outcome,order,note"
    assert lines[2] == "C2,2021-03-03T09:00:00+08:00,wechat,progress_query,ZZ20210301-000001,催问进度"
    reset(directory)
    assert import_history(path=exported).calls_added == 2
    again = tmp_path / "again.csv"
    export_history(path=again, date_from=date(2021, 3, 1), date_to=date(2021, 3, 31))
    assert again.read_bytes() == exported.read_bytes()


def test_a_file_without_its_header_or_with_an_unknown_version_is_refused(directory, tmp_path):
    headless = tmp_path / "headless.jsonl"
    headless.write_text('{"type":"call","ref":"C1","at":"2021-03-02T09:00:00+08:00","channel":"hotline",'
                        '"outcome":"dropped"}\n', encoding="utf-8")
    with pytest.raises(HistoryError, match="line 1: the file must start with a header line"):
        import_history(path=headless)
    future = write(tmp_path / "v2.jsonl", [], header={"type": "header", "format": "duban-history", "version": 2,
                                                       "city": "ZZ"})
    with pytest.raises(HistoryError, match="line 1: version: 2 is not supported"):
        import_history(path=future)
    with pytest.raises(HistoryError, match="no such file"):
        import_history(path=Path(tmp_path / "missing.jsonl"))


def test_the_documented_example_imports_and_exports_as_written(directory, tmp_path):
    text = (ROOT / "docs" / "history-format.md").read_text(encoding="utf-8")
    example = text.split("## Example", 1)[1].split("```json\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "example.jsonl"
    path.write_text(example, encoding="utf-8")
    summary = import_history(path=path)
    assert (summary.totals_added, summary.calls_added, summary.orders_added) == (1, 2, 2)
    exported = tmp_path / "exported.jsonl"
    export_history(path=exported, date_from=date(2021, 3, 1), date_to=date(2021, 3, 31))
    assert exported.read_text(encoding="utf-8") == example


def test_a_unit_named_twice_on_a_dispatch_gets_both_assignments(directory, tmp_path):
    twice = order("ZZ20210302-000009", at("2021-03-02"), category=NOISE, events=[
        ev(at("2021-03-02", "09:10"), "dispatch", "staff:desk-01", unit="ecology_environment",
           assist=["public_security", "public_security"]),
        ev(at("2021-03-02", "09:40"), "sign", "unit:ecology_environment")])
    import_history(path=write(tmp_path / "twice.jsonl", [twice]))
    with session_scope(readonly=True) as session:
        roles = sorted(session.execute(select(Assignment.role, Assignment.signed_at.is_not(None))).all())
    assert roles == [("assist", False), ("assist", False), ("lead", True)]
