"""The Prefect UI as a supervisor sees it, in headless Chromium: runs named by order, a waiting run's form."""

import pytest
from playwright.sync_api import sync_playwright

from tests.browser import CHROMIUM, CHROMIUM_ARGS, search_runs
from tests.flows import driver as d
from tests.flows.test_lifecycle import dispatched_orders
from tests.flows.test_recovery import _wait_for
from tests.prefect_fixtures import production_database


@pytest.fixture
def page():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        yield page
        browser.close()


@production_database
def test_supervisor_finds_the_run_by_order_number_and_opens_its_form(worker, page, tmp_path):
    order_id, other = dispatched_orders(2)
    _wait_for(order_id, lambda s: s.is_paused() and s.state_details.pause_key.startswith("unit-sign"))
    d.ask_return(order_id)
    _wait_for(order_id, lambda s: s.is_paused() and s.state_details.pause_key.startswith("return-decision"))
    _wait_for(other, lambda s: s.is_paused())
    ui = worker.api.removesuffix("/api")

    page.goto(f"{ui}/runs", wait_until="networkidle")
    for order, not_this in ((other, order_id), (order_id, other)):
        link = search_runs(page, d.number(order), d.run_id(order))
        page.locator(f"a[href$='/runs/flow-run/{d.run_id(not_this)}']").first.wait_for(state="detached",
                                                                                       timeout=60_000)
    page.screenshot(path=str(tmp_path / "runs.png"), full_page=True)

    link.click()
    page.get_by_text("Suspended").first.wait_for(timeout=60_000)
    page.locator("button:has-text('Resume')").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("退单审核").wait_for(timeout=30_000)
    page.screenshot(path=str(tmp_path / "form.png"), full_page=True)
    text = dialog.inner_text()
    for field in ("Decision", "New Unit", "Designate Lead", "Decided By", "Order Version"):
        assert field in text
    assert "不属于本单位职责" in text  # the unit's reason, from the form's description

