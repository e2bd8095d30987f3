"""Headless Chromium for the browser tests, and how a supervisor finds a run in the Prefect UI's list."""

from uuid import UUID

from playwright.sync_api import Locator, Page

CHROMIUM = "/usr/bin/chromium"  # Debian's chromium, installed by `make chromium`
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def search_runs(page: Page, number: str, run_id: UUID) -> Locator:
    """Type an order number in the runs page's search and return the link to that run once it is listed.

    The list renders only the rows in view, and the session's server holds every earlier test's runs, so a run
    is looked for by name, as a supervisor does, rather than in the unfiltered list.
    """
    page.get_by_placeholder("Search by flow run name").filter(visible=True).first.fill(number)
    link = page.locator(f"a[href$='/runs/flow-run/{run_id}']").first
    link.wait_for(timeout=60_000)
    return link
