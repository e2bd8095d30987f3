"""Every page of the Prefect UI, both its versions, through the gateway: each API route they use is classified."""

from playwright.sync_api import Page

from tasks.accounts import add_user
from tests.gateway.helpers import PASSWORD, suspended_run
from tests.prefect_fixtures import production_database

SECTIONS = ("dashboard", "runs", "flows", "deployments", "work-pools", "blocks", "variables", "automations", "events",
            "concurrency-limits", "artifacts", "settings")


def _visit_every_page(page: Page, gateway: str, name: str, run_id: str) -> list[str]:
    """Sign in, open every section and a run's page in both UIs; the API calls that failed."""
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.request.method} {r.url.removeprefix(gateway)}")
            if "/api/" in r.url and r.status >= 400 else None)
    page.goto(f"{gateway}/login")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    for ui in ("", "/v2"):
        for path in (*SECTIONS, f"runs/flow-run/{run_id}"):
            page.goto(f"{gateway}{ui}/{path}", wait_until="networkidle")
            assert page.url.startswith(f"{gateway}{ui}/{path.split('/')[0]}"), page.url
    return failed


@production_database
def test_an_admin_uses_every_page_and_a_viewer_every_page_but_blocks(gateway, authed_prefect, chromium):
    run_id, _ = suspended_run(authed_prefect, name="ZZ-PAGES-000001")
    add_user(name="admin-he", role="admin", password=PASSWORD)
    add_user(name="viewer-lu", role="viewer", password=PASSWORD)
    admin = chromium.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    assert _visit_every_page(admin, gateway, "admin-he", run_id) == []

    viewer = chromium.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    refused = _visit_every_page(viewer, gateway, "viewer-lu", run_id)
    # Block documents may hold credentials: only admins read them.
    assert refused and {line.split("?")[0] for line in refused} == {
        "403 POST /api/block_documents/count", "403 POST /api/block_documents/filter"}
