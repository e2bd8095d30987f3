"""A supervisor in headless Chromium: the gateway's login, the runs page, and a resume form through the gateway."""

import json
import time
import uuid
from datetime import timedelta

import pytest
from playwright.sync_api import sync_playwright

from models.base import utcnow
from tasks.accounts import add_user, audit_trail
from tests.gateway.helpers import PASSWORD, suspended_run

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def page():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        yield page
        browser.close()


def _wait_for_input(server, run_id: str, key: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with server.client() as client:
        while client.get(f"/api/flow_runs/{run_id}/input/{key}").status_code != 200:
            if time.monotonic() > deadline:
                raise TimeoutError("the resume form's input never reached the server")
            time.sleep(0.3)


def test_a_supervisor_signs_in_finds_the_run_and_the_decision_carries_their_name(gateway, authed_prefect, page,
                                                                                 tmp_path):
    name = f"ZZ-UI-{uuid.uuid4().hex[:6]}"
    run_id, response_key = suspended_run(authed_prefect, name=name)
    add_user(name="supervisor-lin", role="decider", password=PASSWORD)
    failed_api_calls: list[str] = []
    page.on("response", lambda r: failed_api_calls.append(f"{r.status} {r.url}")
            if "/api/" in r.url and r.status >= 400 else None)

    page.goto(f"{gateway}/runs")
    assert page.url.startswith(f"{gateway}/login?next=/runs")
    page.fill("#name", "supervisor-lin")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.get_by_text(name).first.wait_for(timeout=60_000)
    page.screenshot(path=str(tmp_path / "runs.png"), full_page=True)
    assert page.url.startswith(gateway)
    assert page.locator("input[type=password]").count() == 0  # the Prefect UI's own login never shows

    page.get_by_text(name).first.click()
    page.get_by_text("Suspended").first.wait_for(timeout=60_000)
    page.locator("button:has-text('Resume')").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Decided By").first.wait_for(timeout=30_000)
    dialog.locator("textarea").first.fill("typed-by-someone")
    page.screenshot(path=str(tmp_path / "form.png"), full_page=True)
    dialog.locator("button.p-button--default").first.click()
    _wait_for_input(authed_prefect, run_id, response_key)

    with authed_prefect.client() as client:
        stored = client.get(f"/api/flow_runs/{run_id}/input/{response_key}").json()
    value = json.loads(stored) if isinstance(stored, str) else stored
    assert value["decided_by"] == "supervisor-lin"
    now = utcnow()
    decision = next(row for row in audit_trail(start=now - timedelta(hours=1), end=now, user="supervisor-lin")
                    if row.action == "decision")
    assert decision.outcome == 201 and decision.details["typed_name"] == "typed-by-someone"
    assert failed_api_calls == []
