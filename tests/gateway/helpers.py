"""Signing in through the real login form, and a suspended run with a decision form on the real server."""

import json
import re
import time
import uuid

import httpx
from prefect._internal.pydantic.v2_schema import create_v2_schema

from flows.forms import build_form
from tasks.accounts import add_user

PASSWORD = "a-long-enough-password"
# The lifecycle's real reply-review form, as a suspended run stores it.
_REVIEW = {"version": 4, "number": "-", "item_type": "complaint", "category": "-", "due": "-", "unit": "-",
           "contacted": True, "solved": True, "reply": "已到现场处理完毕"}
SCHEMA = create_v2_schema("ReplyReview", model_base=build_form("reply-review", _REVIEW)[0])


class Browser(httpx.Client):
    """A client holding the gateway's cookies; once signed in, it sends the CSRF header the Prefect UI sends."""


def login_form(client: httpx.Client) -> str:
    """Open the login page; the hidden CSRF field's value."""
    page = client.get("/login")
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def sign_in(base: str, name: str, role: str, *, create: bool = True) -> Browser:
    """A person with this role, signed in through the form, holding the session's CSRF token."""
    if create:
        add_user(name=name, role=role, password=PASSWORD)
    browser = Browser(base_url=base, timeout=30)
    csrf = login_form(browser)
    answer = browser.post("/login", data={"name": name, "password": PASSWORD, "csrf": csrf, "next": "/runs"})
    assert answer.status_code == 303, answer.text
    browser.headers["Prefect-Csrf-Token"] = browser.get("/api/csrf-token", params={"client": "test"}).json()["token"]
    return browser


def suspended_run(server, *, name: str) -> tuple[str, str]:
    """A flow run named like an order, suspended on a decision form; its id and the form's response key."""
    key = f"reply-review-v4-{uuid.uuid4().hex[:6]}"
    keyset = {"description": f"suspended-{key}-description", "response": f"suspended-{key}-response",
              "schema": f"suspended-{key}-schema"}
    with server.client() as client:
        flow = _post(client, "/api/flows/", {"name": "run-order-lifecycle"})
        # A suspended run resumes into Scheduled, which the server allows only for a deployment's runs.
        deployment = _post(client, "/api/deployments/", {"name": "lifecycle", "flow_id": flow["id"]})
        run = _post(client, "/api/flow_runs/", {
            "flow_id": flow["id"], "deployment_id": deployment["id"], "name": name,
            "state": {"type": "PAUSED", "name": "Suspended", "state_details": {
                "pause_reschedule": True, "pause_key": key, "run_input_keyset": keyset}}})
        for key_name, value in (("schema", SCHEMA), ("description", f"### 回复审核 Reply review of {name}")):
            _post(client, f"/api/flow_runs/{run['id']}/input", {"key": keyset[key_name], "value": json.dumps(value)})
    return run["id"], keyset["response"]


def _post(client: httpx.Client, path: str, body: dict) -> dict:
    """POST to the server as Prefect's own client does: a 503 (its SQLite database busy) is sent again."""
    for delay in (0.25, 0.5, 1, 2, 4):
        answer = client.post(path, json=body)
        if answer.status_code != 503:
            break
        time.sleep(delay)
    else:
        answer = client.post(path, json=body)
    assert answer.status_code in (200, 201), f"{path}: {answer.status_code} {answer.text}"
    return answer.json()
