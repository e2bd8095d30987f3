"""Channel keys on a running portal: required, and revoked from the command line, for the intake API and Open311."""

import subprocess
import sys
import time

import httpx
import pytest
from sqlalchemy import func, select

from duban.db import session_scope
from models.work_order import WorkOrder
from tasks.channels import KEY_MEMORY_S, add_channel
from tests.faults.processes import ROOT, Portal, terminate

ITEM = {"content": "小区门口井盖缺失，夜里有人差点掉下去", "item_type": "report", "citizen_name": "李四",
        "category": "city_appearance_life_services.manhole_covers", "citizen_phone": "13912345678"}
REQUEST = {"service_code": ITEM["category"], "description": ITEM["content"], "address_string": "荷塘区新华西路8号"}


@pytest.fixture
def portal(directory, tmp_path, monkeypatch):
    served = Portal(tmp_path, monkeypatch)
    served.start()
    yield served
    terminate(served.process)


def _orders() -> int:
    with session_scope(readonly=True) as session:
        return session.scalar(select(func.count()).select_from(WorkOrder))


def _duban(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "duban", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_keys_are_required_and_a_key_revoked_from_the_command_line_stops_working_in_a_running_portal(portal):
    with session_scope() as session:
        _, weibo = add_channel(session=session, name="weibo")
        _, open311 = add_channel(session=session, name="open311")
    http = httpx.Client(base_url=portal.base, timeout=30)

    def intake(key: str | None) -> httpx.Response:
        return http.post("/api/v1/items", json=ITEM, headers={"X-API-Key": key} if key else {})

    def georeport(key: str | None) -> httpx.Response:
        return http.post("/open311/v2/requests.json", data={**REQUEST, **({"api_key": key} if key else {})})

    assert intake(weibo).status_code == 201 and georeport(open311).status_code == 200
    for send in (intake, georeport):
        assert send(None).status_code in {401, 403}
        assert send("dbk_" + "x" * 43).status_code == 403
    before = _orders()

    _duban("channel", "revoke", "weibo")
    _duban("channel", "revoke", "open311")
    revoked_at = time.monotonic()
    # Another process's revocation reaches this portal's memory of good keys within KEY_MEMORY_S.
    accepted = 0
    while True:
        answers = intake(weibo), georeport(open311)
        if all(a.status_code == 403 for a in answers):
            break
        accepted += sum(a.status_code in {200, 201} for a in answers)
        assert time.monotonic() - revoked_at < KEY_MEMORY_S + 2, [a.text for a in answers]
        time.sleep(0.2)
    intake_refusal, open311_refusal = answers
    assert "revoked" in intake_refusal.json()["detail"]
    assert open311_refusal.json()[0] == {"code": 403, "description": open311_refusal.json()[0]["description"]}
    assert "revoked" in open311_refusal.json()[0]["description"]
    assert _orders() == before + accepted

    renewed = _duban("channel", "add", "weibo").strip().splitlines()[-1].strip()
    assert renewed.startswith("dbk_") and renewed != weibo
    assert intake(renewed).status_code == 201 and intake(weibo).status_code == 403
    http.close()
