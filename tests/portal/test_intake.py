"""The intake API as channels use it: every channel with its key, every validation error, resubmission, status."""

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from duban.db import session_scope
from models.enums import Channel
from models.records import Event
from models.work_order import WorkOrder
from tasks.channels import revoke_channel
from tasks.transitions import Actor, transition
from tests.intake_helpers import ITEM, channel, client


def _orders() -> int:
    with session_scope(readonly=True) as session:
        return session.scalar(select(func.count()).select_from(WorkOrder))


def test_each_channel_submits_with_its_own_key_and_phones_are_normalised(directory):
    api = client()
    for kind in Channel:
        identity, key = channel(f"{kind.value.replace('_', '-')}-1", kind.value)
        response = api.post("/api/v1/items", json={**ITEM, "channel_ref": "A-1"}, headers={"X-API-Key": key})
        assert response.status_code == 201, (kind, response.text)
        body = response.json()
        assert body["created"] is True and body["status"] == "received" and body["status_label"] == "已受理"
        assert response.headers["location"] == f"/api/v1/items/{body['number']}"
        with session_scope(readonly=True) as session:
            order = session.scalar(select(WorkOrder).where(WorkOrder.number == body["number"]))
            event = session.scalar(select(Event).where(Event.work_order_id == order.id))
            assert order.channel == kind.value and order.channel_ref == f"{identity.name}:A-1"
            assert order.citizen_phone == "13812345678" and order.content == ITEM["content"]
            assert event.name == "work_order_received" and event.actor_id == identity.name
    assert _orders() == len(Channel)
    _phone_numbers_are_stored_normalised(api)


def test_resubmission_returns_the_same_item_and_bad_keys_are_refused(directory):
    _, weibo = channel("weibo")
    _, county = channel("liling", "county_platform")
    api = client()
    first = api.post("/api/v1/items", json={**ITEM, "channel_ref": "WB-7"}, headers={"X-API-Key": weibo})
    again = api.post("/api/v1/items", json={**ITEM, "channel_ref": "WB-7", "content": "换了说法的同一条"},
                     headers={"X-API-Key": weibo})
    other = api.post("/api/v1/items", json={**ITEM, "channel_ref": "WB-7"}, headers={"X-API-Key": county})
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 201)
    assert again.json()["number"] == first.json()["number"] and again.json()["created"] is False
    assert other.json()["number"] != first.json()["number"]
    unreferenced = {api.post("/api/v1/items", json=ITEM, headers={"X-API-Key": weibo}).json()["number"]
                    for _ in range(2)}
    assert len(unreferenced) == 2
    assert _orders() == 4
    _, key = channel("hotline")
    assert api.post("/api/v1/items", json=ITEM).status_code == 401
    wrong = api.post("/api/v1/items", json=ITEM, headers={"X-API-Key": key + "x"})
    assert wrong.status_code == 403 and "not valid" in wrong.json()["detail"]
    assert api.post("/api/v1/items", json=ITEM, headers={"X-API-Key": key}).status_code == 201
    with session_scope() as session:
        revoke_channel(session=session, name="hotline")
    revoked = api.post("/api/v1/items", json=ITEM, headers={"X-API-Key": key})
    assert revoked.status_code == 403 and "revoked" in revoked.json()["detail"]
    assert _orders() == 5


FUTURE = (datetime.now(UTC) + timedelta(days=1)).isoformat()
INVALID = [
    ({"content": ""}, "content", "empty"),
    ({"content": "   "}, "content", "empty"),
    ({"content": "噪" * 4001}, "content", "4000"),
    ({"content": "夜里\x00施工"}, "content", "U+0000"),
    ({"item_type": "gossip"}, "item_type", "consultation"),
    ({"urgency": "now"}, "urgency", "very_urgent"),
    ({"title": "标" * 201}, "title", "200"),
    ({"category": "no_such_category"}, "category", "unknown category"),
    ({"category": "Bad Code"}, "category", "not a directory code"),
    ({"district": "atlantis"}, "district", "unknown district"),
    ({"address": "路" * 301}, "address", "300"),
    ({"citizen_name": "名" * 101}, "citizen_name", "100"),
    ({"citizen_phone": "12345"}, "citizen_phone", "not a phone number"),
    ({"citizen_phone": "1381234567890"}, "citizen_phone", "not a phone number"),
    ({"citizen_email": "not-an-email"}, "citizen_email", "not an email"),
    ({"confidential": "perhaps"}, "confidential", "boolean"),
    ({"channel_ref": "has space"}, "channel_ref", "letters, digits"),
    ({"channel_ref": "R" * 61}, "channel_ref", "60"),
    ({"received_at": "2021-03-15T09:00:00"}, "received_at", "time zone"),
    ({"received_at": FUTURE}, "received_at", "future"),
    ({"received_at": "1999-12-31T00:00:00+08:00"}, "received_at", "before 2000"),
    ({"lat": 27.8}, "body", "lat and long go together"),
    ({"lat": 91, "long": 113.1}, "lat", "90"),
    ({"long": "east", "lat": 27.8}, "long", "number"),
    ({"priority": "high"}, "priority", "not permitted"),
]


def test_an_invalid_or_oversized_item_is_refused_whole_naming_the_field(directory):
    _, key = channel("online_post")
    api = client()
    for change, field, phrase in INVALID:
        response = api.post("/api/v1/items", json={**ITEM, **change}, headers={"X-API-Key": key})
        assert response.status_code == 422, (change, response.text)
        problems = response.json()["detail"]
        assert any(p["loc"][-1] == field or (field == "body" and p["loc"] == ["body"]) for p in problems), problems
        assert any(phrase in p["msg"] for p in problems), (change, problems)
    for body in (b"[1, 2]", b"{\"content\": ", b"\xff\xfe", b"null"):
        response = api.post("/api/v1/items", content=body, headers={"X-API-Key": key,
                                                                   "Content-Type": "application/json"})
        assert response.status_code == 422, body
    several = api.post("/api/v1/items", headers={"X-API-Key": key},
                       json={**ITEM, "content": "", "citizen_phone": "110", "urgency": "asap"})
    assert {"content", "citizen_phone", "urgency"} <= {p["loc"][-1] for p in several.json()["detail"]}
    _oversized_bodies_are_refused_before_they_are_read(api, key)
    assert _orders() == 0


def _phone_numbers_are_stored_normalised(api) -> None:
    _, key = channel("hotline")
    for given, stored in (("+86 138-1234-5678", "13812345678"), ("8613812345678", "13812345678"),
                          ("0731-22334455", "073122334455"), ("(0731) 2233 4455", "073122334455")):
        number = api.post("/api/v1/items", json={**ITEM, "citizen_phone": given},
                          headers={"X-API-Key": key}).json()["number"]
        with session_scope(readonly=True) as session:
            assert session.scalar(select(WorkOrder.citizen_phone).where(WorkOrder.number == number)) == stored


def _oversized_bodies_are_refused_before_they_are_read(api, key: str) -> None:
    huge = json.dumps({**ITEM, "content": "很长" * 40_000}).encode()
    declared = api.post("/api/v1/items", content=huge, headers={"X-API-Key": key, "Content-Type": "application/json"})
    assert declared.status_code == 413 and "larger than" in declared.json()["detail"]

    def chunks():
        for start in range(0, len(huge), 4096):
            yield huge[start:start + 4096]

    streamed = api.post("/api/v1/items", content=chunks(), headers={"X-API-Key": key,
                                                                     "Content-Type": "application/json"})
    assert streamed.status_code == 413


def test_public_status_shows_history_and_no_personal_data(directory):
    _, key = channel("hotline")
    api = client()
    item = {**ITEM, "citizen_name": "王小明", "citizen_phone": "13912348765", "citizen_email": "wxm@example.com",
            "address": "荷塘区月塘街道幸福小区5栋", "content": "我是王小明，电话13912348765，楼下烧烤油烟太大"}
    number = api.post("/api/v1/items", json=item, headers={"X-API-Key": key}).json()["number"]
    with session_scope(readonly=True) as session:
        order_id = session.scalar(select(WorkOrder.id).where(WorkOrder.number == number))
    transition(order_id=order_id, action="dispatch", actor=Actor.system())
    response = api.get(f"/api/v1/items/{number}")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "dispatched" and body["status_label"] == "已派单" and body["final"] is False
    assert body["category"] == "餐饮油烟" and body["unit"]
    assert [e["event"] for e in body["history"]] == ["work_order_received", "work_order_dispatched"]
    for private in ("王小明", "13912348765", "1391234", "8765", "wxm@example.com", "幸福小区", "楼下烧烤油烟"):
        assert private not in response.text
    assert api.get("/api/v1/items/ZZ20210315-999999").status_code == 404
    assert api.get("/api/v1/items/not-a-number").status_code == 422


def test_the_openapi_description_documents_the_intake_api():
    spec = client().get("/openapi.json").json()
    post = spec["paths"]["/api/v1/items"]["post"]
    assert {"201", "200", "401", "403", "413", "422"} <= set(post["responses"])
    assert any("APIKeyHeader" in s for s in (list(r)[0] for r in post["security"]))
    schema_ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    fields = spec["components"]["schemas"][schema_ref]["properties"]
    assert {"content", "item_type", "category", "district", "citizen_phone", "channel_ref"} <= set(fields)
    assert fields["content"]["maxLength"] == 4000
    assert "/api/v1/items/{number}" in spec["paths"]
