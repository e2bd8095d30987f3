"""Open311 GeoReport v2 conformance, written from the specification: paths, field names, formats, errors, filters."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from duban.db import session_scope
from models.enums import ItemType
from models.work_order import WorkOrder
from tasks.channels import ChannelIdentity
from tasks.intake import register_item
from tasks.intake_item import parse_item
from tasks.transitions import Actor, transition
from tests.conftest import BACKENDS
from tests.intake_helpers import ITEM, channel, client, shared_directory

BASE = "/open311/v2"
NOISE = "city_appearance_life_services.noise"
SERVICE_FIELDS = ["service_code", "service_name", "description", "metadata", "type", "keywords", "group"]
REQUEST_FIELDS = ["service_request_id", "status", "status_notes", "service_name", "service_code", "description",
                  "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
                  "expected_datetime", "address", "address_id", "zipcode", "lat", "long", "media_url"]
W3C = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$"


@dataclass
class Server:
    api: TestClient
    key: str
    identity: ChannelIdentity


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, tmp_path_factory):
    with shared_directory(request.param, tmp_path_factory.mktemp("open311")):
        identity, key = channel("open311")
        yield Server(client(), key, identity)


def form(server: Server, **changes: str | None) -> dict[str, str]:
    fields = {"api_key": server.key, "service_code": NOISE, "description": "楼上装修噪音，周末早上七点就开始电钻",
              "lat": "27.83", "long": "113.15", "address_string": "天元区嵩山路1号", "first_name": "三",
              "last_name": "张", "phone": "13812345678", "email": "zhang@example.com",
              "attribute[item_type]": "complaint"}
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not None}


def post(server: Server, fmt: str = "json", headers: dict | None = None, **changes: str | None):
    return server.api.post(f"{BASE}/requests.{fmt}", data=form(server, **changes), headers=headers or {})


def orders() -> int:
    with session_scope(readonly=True) as session:
        return session.scalar(select(func.count()).select_from(WorkOrder))


def xml(response) -> ElementTree.Element:
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text.startswith('<?xml version="1.0" encoding="utf-8"?>')
    return ElementTree.fromstring(response.content)


def assert_error(response, code: int, phrase: str) -> None:
    assert response.status_code == code, response.text
    if response.headers["content-type"].startswith("text/xml"):
        root = xml(response)
        assert root.tag == "errors" and root[0].tag == "error"
        assert root.findtext("error/code") == str(code) and phrase in root.findtext("error/description")
    else:
        body = response.json()
        assert isinstance(body, list) and set(body[0]) == {"code", "description"}
        assert body[0]["code"] == code and phrase in body[0]["description"], body


def test_services_list_in_json_and_xml(server):
    response = server.api.get(f"{BASE}/services.json")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    services = response.json()
    assert len(services) >= 50 and all(list(s) == SERVICE_FIELDS for s in services)
    noise = next(s for s in services if s["service_code"] == NOISE)
    assert noise["service_name"] == "噪音扰民" and noise["group"] == "城市管理市容和生活服务"
    assert noise["type"] == "realtime" and noise["metadata"] is True and "噪音" in noise["keywords"]
    root = xml(server.api.get(f"{BASE}/services.xml"))
    assert root.tag == "services" and {child.tag for child in root} == {"service"}
    assert [child.tag for child in root[0]] == SERVICE_FIELDS
    assert root[0].findtext("metadata") == "true"


def test_service_definition_lists_typed_attributes(server):
    definition = server.api.get(f"{BASE}/services/{NOISE}.json").json()
    assert definition["service_code"] == NOISE
    attributes = {a["code"]: a for a in definition["attributes"]}
    assert set(attributes) == {"item_type", "urgency", "district", "confidential"}
    for attribute in attributes.values():
        assert set(attribute) == {"variable", "code", "datatype", "required", "datatype_description", "order",
                                  "description", "values"}
        assert attribute["datatype"] == "singlevaluelist" and attribute["values"]
        assert all(set(v) == {"key", "name"} for v in attribute["values"])
    assert {v["key"] for v in attributes["item_type"]["values"]} == {t.value for t in ItemType}
    assert sorted(a["order"] for a in attributes.values()) == [1, 2, 3, 4]
    root = xml(server.api.get(f"{BASE}/services/{NOISE}.xml"))
    assert root.tag == "service_definition" and root.findtext("service_code") == NOISE
    assert root.find("attributes/attribute/values/value/key") is not None


def test_unknown_service_format_and_jurisdiction_are_404(server):
    assert_error(server.api.get(f"{BASE}/services/no_such_service.json"), 404, "service_code")
    assert_error(server.api.get(f"{BASE}/services/no_such_service.xml"), 404, "service_code")
    assert_error(server.api.get(f"{BASE}/services.html"), 404, "format")
    assert_error(server.api.get(f"{BASE}/services.json", params={"jurisdiction_id": "elsewhere.gov"}), 404,
                 "jurisdiction_id")
    assert server.api.get(f"{BASE}/services.json", params={"jurisdiction_id": "zz12345.example.gov.cn"}).is_success


def test_post_request_creates_an_order_from_the_spec_fields(server):
    response = post(server, address_id="tianyuan.songshan_road", **{"attribute[urgency]": "urgent",
                                                                    "media_url": "https://example.com/p/1.jpg"})
    assert response.status_code == 200, response.text
    [created] = response.json()
    assert set(created) == {"service_request_id", "token", "service_notice", "account_id"}
    with session_scope(readonly=True) as session:
        order = session.scalar(select(WorkOrder).where(WorkOrder.number == created["service_request_id"]))
        assert order.channel == "open311" and order.item_type == "complaint" and order.urgency == "urgent"
        assert order.citizen_name == "张三" and order.citizen_phone == "13812345678"
        assert order.address == "天元区嵩山路1号" and order.extra["lat"] == 27.83
        assert order.extra["open311"]["media_url"] == "https://example.com/p/1.jpg"
    root = xml(post(server, "xml"))
    assert root.tag == "service_requests" and root.find("request/service_request_id").text.startswith("ZZ")
    assert root.find("request/account_id") is not None


def test_post_request_errors_in_the_spec_format_and_nothing_written(server):
    before = orders()
    assert_error(post(server, api_key=None), 403, "no API key")
    assert_error(post(server, "xml", api_key="dbk_wrong"), 403, "not valid")
    assert_error(post(server, service_code=None), 400, "service_code: is required")
    assert_error(post(server, service_code="no_such_service"), 400, "service_code: unknown category")
    assert_error(post(server, lat=None, long=None, address_string=None), 400, "location")
    assert_error(post(server, long=None, address_string=None), 400, "location")
    assert_error(post(server, long=None), 400, "lat and long go together")
    assert_error(post(server, lat="north"), 400, "lat")
    assert_error(post(server, description=None), 400, "description")
    assert_error(post(server, description="x" * 4001), 400, "description")
    assert_error(post(server, phone="12345"), 400, "phone")
    assert_error(post(server, email="nobody"), 400, "email")
    assert_error(post(server, **{"attribute[item_type]": "gossip"}), 400, "attribute[item_type]")
    assert_error(post(server, **{"attribute[colour]": "red"}), 400, "attribute[colour]: unknown field")
    assert_error(post(server, address_id="atlantis"), 400, "address_id")
    assert_error(post(server, media_url="javascript:alert(1)"), 400, "media_url")
    assert_error(post(server, jurisdiction_id="elsewhere.gov"), 404, "jurisdiction_id")
    assert_error(post(server, "xml", description="很长" * 40_000), 413, "larger than")
    assert orders() == before


def test_idempotency_key_returns_the_same_request(server):
    first = post(server, headers={"Idempotency-Key": "app-42"}).json()[0]
    again = post(server, headers={"Idempotency-Key": "app-42"}, description="重复提交").json()[0]
    assert again["service_request_id"] == first["service_request_id"] and again["token"] == first["token"]


def test_token_resolves_to_the_request_id(server):
    [created] = post(server).json()
    [resolved] = server.api.get(f"{BASE}/tokens/{created['token']}.json").json()
    assert resolved == {"service_request_id": created["service_request_id"], "token": created["token"]}
    root = xml(server.api.get(f"{BASE}/tokens/{created['token']}.xml"))
    assert root.findtext("request/service_request_id") == created["service_request_id"]
    assert_error(server.api.get(f"{BASE}/tokens/{'0' * 32}.json"), 404, "token")
    assert_error(server.api.get(f"{BASE}/tokens/not-a-token.xml"), 404, "token")


def test_get_request_has_every_spec_field_and_open_closed_status(server):
    number = post(server).json()[0]["service_request_id"]
    [request] = server.api.get(f"{BASE}/requests/{number}.json").json()
    assert list(request) == REQUEST_FIELDS
    assert request["status"] == "open" and request["service_code"] == NOISE and request["service_name"] == "噪音扰民"
    assert request["lat"] == 27.83 and request["address"] == "天元区嵩山路1号" and "已受理" in request["status_notes"]
    assert request["requested_datetime"].endswith("+08:00")
    for moment in ("requested_datetime", "updated_datetime"):
        datetime.fromisoformat(request[moment])
    with session_scope(readonly=True) as session:
        order_id = session.scalar(select(WorkOrder.id).where(WorkOrder.number == number))
    transition(order_id=order_id, action="screen_out", actor=Actor.system(), payload={"reason": "test"})
    [closed] = server.api.get(f"{BASE}/requests/{number}.json", params={"extensions": "true"}).json()
    assert closed["status"] == "closed" and "无效" in closed["status_notes"]
    assert closed["extended_attributes"]["duban_status"] == "invalid"
    root = xml(server.api.get(f"{BASE}/requests/{number}.xml"))
    assert [child.tag for child in root.find("request")] == REQUEST_FIELDS
    assert_error(server.api.get(f"{BASE}/requests/ZZ20990101-000001.json"), 404, "service_request_id")


def test_items_from_other_channels_and_private_details_are_not_published(server):
    other, key = channel("wechat-mini", "wechat")
    native = server.api.post("/api/v1/items", json=ITEM, headers={"X-API-Key": key}).json()["number"]
    assert_error(server.api.get(f"{BASE}/requests/{native}.json"), 404, "not found")
    confidential = post(server, **{"attribute[confidential]": "true"}).json()[0]["service_request_id"]
    report = post(server, **{"attribute[item_type]": "report"}).json()[0]["service_request_id"]
    typed = post(server, description="我的电话13912345678，楼上噪音").json()[0]["service_request_id"]
    found = {r["service_request_id"]: r for r in server.api.get(
        f"{BASE}/requests.json", params={"service_request_id": f"{confidential},{report},{typed}"}).json()}
    for number in (confidential, report):
        assert found[number]["description"] == "" and found[number]["address"] == "" and found[number]["lat"] is None
    assert "13912345678" not in found[typed]["description"] and "139****5678" in found[typed]["description"]


def test_get_requests_filters(server):
    water = post(server, service_code="urban_rural_planning_construction.water_supply_drainage",
                 description="家里水龙头出来的是黄水").json()[0]["service_request_id"]
    noise = post(server).json()[0]["service_request_id"]
    with session_scope(readonly=True) as session:
        noise_id = session.scalar(select(WorkOrder.id).where(WorkOrder.number == noise))
    transition(order_id=noise_id, action="screen_out", actor=Actor.system(), payload={"reason": "test"})
    old = register_item(channel=server.identity, with_token=True, item=parse_item(
        {**ITEM, "received_at": (datetime.now(UTC) - timedelta(days=120)).isoformat()})).number

    def numbers(**params) -> list[str]:
        response = server.api.get(f"{BASE}/requests.json", params=params)
        assert response.status_code == 200, response.text
        return [r["service_request_id"] for r in response.json()]

    everything = numbers()
    assert water in everything and noise in everything and old not in everything
    assert everything == sorted(everything, reverse=True)
    by_code = numbers(service_code="urban_rural_planning_construction.water_supply_drainage")
    assert water in by_code and noise not in by_code
    assert noise not in numbers(status="open") and water in numbers(status="open")
    assert noise in numbers(status="closed") and water not in numbers(status="closed")
    assert {water, noise} <= set(numbers(status="open,closed"))
    now = datetime.now(UTC)
    assert water in numbers(start_date=(now - timedelta(hours=1)).isoformat(), end_date=(now + timedelta(minutes=1))
                            .isoformat().replace("+00:00", "Z"))
    assert water not in numbers(start_date=(now + timedelta(minutes=2)).isoformat().replace("+00:00", "Z"))
    assert old in numbers(end_date=(now - timedelta(days=100)).isoformat())
    assert numbers(service_request_id=f"{old},{water}", status="open") == [old, water]
    assert_error(server.api.get(f"{BASE}/requests.json", params={"start_date": "2021-01-01T00:00:00Z",
                                                               "end_date": "2021-06-01T00:00:00Z"}), 400, "90 days")
    assert_error(server.api.get(f"{BASE}/requests.json", params={"start_date": "yesterday"}), 400, "W3C")
    assert_error(server.api.get(f"{BASE}/requests.json", params={"end_date": "2021-01-01T00:00:00"}), 400,
                 "time zone")
    assert_error(server.api.get(f"{BASE}/requests.xml", params={"status": "pending"}), 400, "status")
    assert_error(server.api.get(f"{BASE}/requests.json", params={"extensions": "maybe"}), 400, "extensions")
    root = xml(server.api.get(f"{BASE}/requests.xml", params={"service_request_id": water}))
    assert root.tag == "service_requests" and root.findtext("request/service_request_id") == water


def test_discovery_points_at_georeport_v2(server):
    discovery = server.api.get("/open311/discovery.json").json()
    [endpoint] = discovery["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2") and "application/json" in endpoint["formats"]
    assert xml(server.api.get("/open311/discovery.xml")).tag == "discovery"
