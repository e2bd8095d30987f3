"""No citizen's phone number or name leaves the database: a scan over everything a demo run produced."""

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime

import httpx
from sqlalchemy import select

from duban.db import session_scope
from models.enums import FINAL_STATUSES
from models.work_order import WorkOrder
from tests.faults.processes import ROOT
from tests.notifications.smtp import use_settings
from tests.prefect_fixtures import free_port, production_database

ITEMS = 20
MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
# What a unit may see of a citizen who is not confidential: the surname as 张先生/女士 (so the demo's 张先生 is in it).
LABEL = re.compile(r"\w先生/女士")


def _pages(api: str, path: str, body: dict, limit: int = 200) -> list[dict]:
    """Every object a Prefect filter endpoint returns, page by page."""
    found: list[dict] = []
    while True:
        page = httpx.post(f"{api}{path}", json={**body, "limit": limit, "offset": len(found)}, timeout=60)
        page.raise_for_status()
        found += page.json()
        if len(page.json()) < limit:
            return found


def _citizens() -> tuple[set[str], set[str], set[str]]:
    """Every phone number the database holds for citizens (their own, and any typed in their text), their full
    names, and the numbers of confidential citizens' orders."""
    with session_scope(readonly=True) as session:
        orders = session.execute(select(WorkOrder.number, WorkOrder.status, WorkOrder.citizen_phone,
                                        WorkOrder.citizen_name, WorkOrder.confidential,
                                        WorkOrder.content, WorkOrder.title, WorkOrder.address)).all()
    assert len(orders) == ITEMS and all(o.status in FINAL_STATUSES for o in orders)
    phones = {o.citizen_phone for o in orders if o.citizen_phone}
    phones |= {m for o in orders for m in MOBILE.findall(f"{o.title} {o.content} {o.address}")}
    return phones, {o.citizen_name for o in orders if o.citizen_name}, {o.number for o in orders if o.confidential}


@production_database
def test_no_citizen_phone_or_name_appears_in_logs_artifacts_parameters_mail_or_output_of_a_demo_run(
        directory, prefect_client_env, smtp, tmp_path, monkeypatch):
    use_settings(monkeypatch, portal_port=str(free_port()), gateway_port=str(free_port()),
                 policy_file=str(ROOT / "policy.demo.yaml"))
    since = datetime.now(UTC).isoformat()
    serve_log = ROOT / "var" / "log" / "serve.log"
    offset = serve_log.stat().st_size if serve_log.exists() else 0
    demo = subprocess.run([sys.executable, "-m", "duban", "demo", "--items", str(ITEMS), "--exit", "--feed-s", "0",
                           "--slow-s", "0", "--timeout-s", "420"], cwd=ROOT, capture_output=True, text=True,
                          timeout=540, env={**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")})
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    phones, names, confidential = _citizens()

    api = prefect_client_env
    window = {"start_time": {"after_": since}}
    runs = _pages(api, "/flow_runs/filter", {"flow_runs": window})
    logs = _pages(api, "/logs/filter", {"logs": {"timestamp": {"after_": since}}})
    artifacts = _pages(api, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [r["id"] for r in runs]}}})
    with open(serve_log, encoding="utf-8", errors="replace") as log:
        log.seek(offset)
        output = demo.stdout + demo.stderr + log.read()
    mails = [m.raw for m in smtp.received]
    sources = {
        "flow run names, tags and parameters": [json.dumps([r["name"], r["tags"], r["parameters"]], ensure_ascii=False)
                                                for r in runs],
        "logs": [entry["message"] for entry in logs],
        "artifacts": [json.dumps([a["description"], a["data"]], ensure_ascii=False) for a in artifacts],
        "mail": mails,
        "process output": [output],
    }
    assert len(runs) > ITEMS and logs and artifacts and len(mails) >= ITEMS, {k: len(v) for k, v in sources.items()}
    for where, texts in sources.items():
        for text in texts:
            leaked = {p for p in phones if p in text} | {n for n in names if n in LABEL.sub("", text)}
            assert not leaked, f"{sorted(leaked)} in {where}: {text[:300]}"
    # A confidential citizen is not even named by surname in the mail about their order.
    about_confidential = [m for m in smtp.received if m.message["X-Duban-Order"] in confidential]
    assert all("先生/女士" not in m.raw for m in about_confidential)
    masked = sum("****" in m.raw for m in smtp.received)
    assert masked > 0, "the scan looked at mail that shows citizens (masked)"
