"""Each role against the real Prefect server through the gateway; the server itself trusts only the gateway."""

import json
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from duban.db import session_scope
from models.accounts import GatewaySession
from models.base import utcnow
from models.enums import Status
from models.work_order import WorkOrder
from tasks.accounts import audit_trail
from tests.factories import lead_actor, order_in
from tests.gateway.helpers import PASSWORD, Browser, login_form, sign_in, suspended_run


def _state(server, run_id: str) -> str:
    with server.client() as client:
        return client.get(f"/api/flow_runs/{run_id}").json()["state"]["type"]


def _trail(user: str | None = None):
    now = utcnow()
    return audit_trail(start=now - timedelta(hours=1), end=now + timedelta(minutes=1), user=user)


def test_the_server_refuses_anyone_without_the_gateways_auth_string(authed_prefect):
    answer = httpx.post(f"{authed_prefect.api}/flow_runs/filter", json={})
    assert answer.status_code == 401


def test_a_viewer_reads_runs_but_cannot_resume_cancel_or_delete(gateway, authed_prefect):
    name = f"ZZ-VIEW-{uuid.uuid4().hex[:6]}"
    run_id, _ = suspended_run(authed_prefect, name=name)
    viewer = sign_in(gateway, "viewer-zhao", "viewer")

    runs = viewer.post("/api/flow_runs/filter", json={"flow_runs": {"name": {"any_": [name]}}})
    assert runs.status_code == 200 and [r["id"] for r in runs.json()] == [run_id]
    assert viewer.get("/runs", headers={"accept": "text/html"}).status_code == 200
    assert viewer.post(f"/api/flow_runs/{run_id}/input/filter", json={"prefix": "suspended"}).status_code == 200

    resumed = viewer.post(f"/api/flow_runs/{run_id}/resume", json={"run_input": {}})
    assert resumed.status_code == 403
    assert resumed.json()["detail"] == (f"your role (viewer) may not POST /api/flow_runs/{run_id}/resume; "
                                        "it needs the decider role")
    cancelled = viewer.post(f"/api/flow_runs/{run_id}/set_state",
                             json={"state": {"type": "CANCELLING"}, "force": True})
    assert cancelled.status_code == 403
    assert viewer.delete(f"/api/flow_runs/{run_id}").status_code == 403
    assert _state(authed_prefect, run_id) == "PAUSED"
    refused = {row.action for row in _trail("viewer-zhao") if row.outcome == 403}
    assert refused == {"decision", "flow_run_state_set", "flow_run_deleted"}


def test_a_decider_resumes_under_their_own_name_but_cannot_change_deployments(gateway, authed_prefect):
    name = f"ZZ-DECIDE-{uuid.uuid4().hex[:6]}"
    run_id, response_key = suspended_run(authed_prefect, name=name)
    decider = sign_in(gateway, "decider-qian", "decider")

    resumed = decider.post(f"/api/flow_runs/{run_id}/resume",
                            json={"run_input": {"decision": "approve", "decided_by": "somebody-else"}})
    assert resumed.status_code == 201 and resumed.json()["status"] == "ACCEPT", resumed.text
    with authed_prefect.client() as client:
        stored = client.get(f"/api/flow_runs/{run_id}/input/{response_key}").json()
    value = json.loads(stored) if isinstance(stored, str) else stored
    assert value == {"decision": "approve", "decided_by": "decider-qian"}
    assert _state(authed_prefect, run_id) == "SCHEDULED"

    with authed_prefect.client() as client:
        flow_id = client.post("/api/flows/", json={"name": "run-order-lifecycle"}).json()["id"]
    created = decider.post("/api/deployments/", json={"name": "sneaky", "flow_id": flow_id})
    assert created.status_code == 403 and "needs the admin role" in created.json()["detail"]
    pool = decider.post("/api/work_pools/", json={"name": "sneaky-pool", "type": "process"})
    assert pool.status_code == 403 and "needs the admin role" in pool.json()["detail"]
    cancelled = decider.post(f"/api/flow_runs/{run_id}/set_state", json={"state": {"type": "CANCELLED"}, "force": True})
    assert cancelled.status_code == 403 and _state(authed_prefect, run_id) == "SCHEDULED"

    decision = next(row for row in _trail("decider-qian") if row.action == "decision")
    assert decision.target == f"flow run {name} ({run_id})" and decision.outcome == 201
    assert decision.details == {"decision": "approve", "typed_name": "somebody-else"}


def test_an_admin_changes_deployments_automations_and_work_pools_and_cancels_and_deletes_runs(gateway,
                                                                                               authed_prefect):
    run_id, _ = suspended_run(authed_prefect, name=f"ZZ-ADMIN-{uuid.uuid4().hex[:6]}")
    admin = sign_in(gateway, "admin-sun", "admin")
    with authed_prefect.client() as client:
        flow_id = client.post("/api/flows/", json={"name": "run-order-lifecycle"}).json()["id"]

    created = admin.post("/api/deployments/", json={"name": f"d-{uuid.uuid4().hex[:6]}", "flow_id": flow_id})
    assert created.status_code == 201, created.text
    assert admin.delete(f"/api/deployments/{created.json()['id']}").status_code == 204
    automation = admin.post("/api/automations/", json={
        "name": f"a-{uuid.uuid4().hex[:6]}", "actions": [{"type": "do-nothing"}],
        "trigger": {"type": "event", "posture": "Reactive", "expect": ["duban.test"], "threshold": 1, "within": 0}})
    assert automation.status_code == 201, automation.text
    pool = admin.post("/api/work_pools/", json={"name": f"p-{uuid.uuid4().hex[:6]}", "type": "process"})
    assert pool.status_code == 201, pool.text
    assert admin.delete(f"/api/work_pools/{pool.json()['name']}").status_code == 204
    cancelled = admin.post(f"/api/flow_runs/{run_id}/set_state",
                            json={"state": {"type": "CANCELLED"}, "force": True})
    assert cancelled.status_code == 201 and _state(authed_prefect, run_id) == "CANCELLED"
    assert admin.delete(f"/api/flow_runs/{run_id}").status_code == 204
    with authed_prefect.client() as client:
        assert client.get(f"/api/flow_runs/{run_id}").status_code == 404

    actions = [(row.action, row.outcome) for row in _trail("admin-sun")]
    assert actions == [("login", 200), ("deployment_changed", 201), ("deployment_changed", 204),
                       ("automation_changed", 201), ("work_pool_changed", 201), ("work_pool_changed", 204),
                       ("flow_run_state_set", 201), ("flow_run_deleted", 204)]


def test_unclassified_routes_are_refused_by_default(gateway):
    admin = sign_in(gateway, "admin-li", "admin")
    refused = admin.post("/api/task_runs/subscriptions/scheduled", json={})
    assert refused.status_code == 403
    assert refused.json()["detail"] == ("the gateway refuses POST /api/task_runs/subscriptions/scheduled: this route "
                                        "is not classified for any role (see gateway/routes.py)")
    assert admin.post("/runs").status_code == 403
    cookie = f"duban_session={admin.cookies['duban_session']}"
    with pytest.raises(InvalidStatus):
        connect(gateway.replace("http", "ws") + "/api/events/in", additional_headers={"Cookie": cookie},
                subprotocols=["prefect"]).close()


def test_the_ui_live_feed_passes_through_with_the_servers_auth(gateway):
    viewer = sign_in(gateway, "viewer-wu", "viewer")
    cookie = f"duban_session={viewer.cookies['duban_session']}"
    with connect(gateway.replace("http", "ws") + "/api/events/out", additional_headers={"Cookie": cookie},
                 subprotocols=["prefect"]) as socket:
        socket.send(json.dumps({"type": "auth", "token": None}))
        assert json.loads(socket.recv(timeout=10)) == {"type": "auth_success"}
    with pytest.raises(InvalidStatus):
        connect(gateway.replace("http", "ws") + "/api/events/out", subprotocols=["prefect"]).close()


def test_ui_settings_point_the_ui_at_the_gateway_without_its_own_login(gateway):
    viewer = sign_in(gateway, "viewer-zheng", "viewer")
    settings = viewer.get("/ui-settings").json()
    assert settings["api_url"] == f"{gateway}/api" and settings["auth"] is None and settings["csrf_enabled"] is True


def test_a_decider_who_acted_for_the_unit_may_not_decide_the_order(directory, gateway, authed_prefect):
    order_id = order_in(Status.RETURN_REQUESTED)
    unit_code = lead_actor(order_id).id
    with session_scope(readonly=True) as session:
        number = session.get(WorkOrder, order_id).number
    run_id, _ = suspended_run(authed_prefect, name=number)
    decider = sign_in(gateway, unit_code, "decider")

    refused = decider.post(f"/api/flow_runs/{run_id}/resume",
                            json={"run_input": {"decision": "approve", "decided_by": unit_code}})
    assert refused.status_code == 403
    assert refused.json()["detail"].startswith(f"{unit_code} acted on work order {number} for the unit")
    assert _state(authed_prefect, run_id) == "PAUSED"
    assert [row.outcome for row in _trail(unit_code) if row.action == "decision"] == [403]


def test_missing_forged_and_expired_sessions_are_refused_with_clear_messages(gateway):
    anonymous = Browser(base_url=gateway)
    assert anonymous.post("/api/flow_runs/filter", json={}).json() == {
        "detail": "not signed in: sign in to the gateway at /login"}
    page = anonymous.get("/runs", headers={"accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/runs"

    forged = Browser(base_url=gateway, cookies={"duban_session": "made-up-token"})
    answer = forged.post("/api/flow_runs/filter", json={})
    assert answer.status_code == 401 and "not known" in answer.json()["detail"]

    user = sign_in(gateway, "decider-feng", "decider")
    with session_scope() as session:
        session.execute(update(GatewaySession).values(expires_at=utcnow() - timedelta(seconds=1)))
    expired = user.post("/api/flow_runs/filter", json={})
    assert expired.status_code == 401 and expired.json()["detail"] == "this session has expired; log in again"
    again = user.get("/runs", headers={"accept": "text/html"})
    assert again.headers["location"] == "/login?next=/runs&why=expired"
    assert "登录已过期" in user.get(again.headers["location"]).text


def test_writes_without_the_csrf_token_are_refused(gateway, authed_prefect):
    run_id, _ = suspended_run(authed_prefect, name=f"ZZ-CSRF-{uuid.uuid4().hex[:6]}")
    decider = sign_in(gateway, "decider-chu", "decider")
    forged = decider.post(f"/api/flow_runs/{run_id}/resume", json={"run_input": {"decision": "approve"}},
                          headers={"Prefect-Csrf-Token": ""})
    assert forged.status_code == 403 and "CSRF" in forged.json()["detail"]
    assert _state(authed_prefect, run_id) == "PAUSED"

    stranger = Browser(base_url=gateway)
    login_form(stranger)
    no_token = stranger.post("/login", data={"name": "decider-chu", "password": PASSWORD})
    assert no_token.status_code == 403 and "CSRF" in no_token.text


def test_repeated_wrong_passwords_lock_the_account(gateway, monkeypatch):
    from duban.settings import get_settings

    sign_in(gateway, "viewer-jiang", "viewer")
    browser = Browser(base_url=gateway)
    for _ in range(get_settings().gateway_max_failed_logins):
        wrong = browser.post("/login", data={"name": "viewer-jiang", "password": "wrong-password!",
                                             "csrf": login_form(browser)})
        assert wrong.status_code == 401 and "wrong name or password" in wrong.text
    locked = browser.post("/login", data={"name": "viewer-jiang", "password": PASSWORD, "csrf": login_form(browser)})
    assert locked.status_code == 401 and "this account is locked after 5 wrong passwords" in locked.text
    assert [row.action for row in _trail("viewer-jiang")][-2:] == ["login_failed", "login_refused"]
