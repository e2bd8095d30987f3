"""Who signs a decision form: optional in the form, filled by the gateway, and checked by the run without it."""

import time

from prefect.flow_runs import resume_flow_run
from prefect.input import RunInput

from flows.forms import FORMS, build_form
from models.enums import ActorKind, Status
from tests.flows import driver as d
from tests.flows.test_recovery import _wait_for
from tests.gateway.test_gateway_browser import _event, _status, waiting_for_review

CONTEXT = {"version": 3, "number": "ZZ20210315-000001", "item_type": "complaint", "category": "-", "due": "-",
           "unit": "-", "units": ["urban_management"], "suggested_code": None, "return_count": 1, "reason": "-",
           "evidence": "", "evidence_files": 0, "extension_id": 1, "requested_due": "-", "contacted": True,
           "solved": True, "reply": "-", "case_id": 1, "unit_code": None, "buck_passing": False, "case_kind": "-",
           "level": 1, "opened": "-", "reasons": ""}


def _logs(server, run_id) -> list[str]:
    with server.client() as client:
        found = client.post("/api/logs/filter", json={"logs": {"flow_run_id": {"any_": [str(run_id)]}}}).json()
    return [row["message"] for row in found]


def test_every_form_leaves_the_name_to_the_gateway():
    for form in FORMS:
        model: type[RunInput] = build_form(form, CONTEXT)[0]
        schema = model.model_json_schema()
        assert "decided_by" in schema["properties"] and "decided_by" not in schema.get("required", []), form
        assert "gateway" in schema["properties"]["decided_by"]["description"]


def test_without_the_gateway_the_run_refuses_an_unsigned_form_and_asks_again(authed_worker, authed_prefect):
    order_id = waiting_for_review()
    run_id, version = d.run_id(order_id), d.version(order_id)

    _resume(run_id, {"decision": "approve", "order_version": version})
    # The same form, offered again under a new key.
    _wait_for(order_id, lambda s: s.is_paused() and s.state_details.pause_key == f"reply-review-v{version}-1")
    assert _status(order_id) == Status.REPLIED and d.events(order_id)[-1] == "reply_submitted"
    deadline = time.monotonic() + 30
    while not any("refused" in line for line in _logs(authed_prefect, run_id)) and time.monotonic() < deadline:
        time.sleep(0.5)  # the log reaches the server a moment after the run suspends
    refusal = next(line for line in _logs(authed_prefect, run_id) if "refused" in line)
    assert refusal.startswith("Decision from an unsigned form refused: the form was submitted without a name in "
                              "'Decided By': type your name in it, or submit it through the Duban gateway")

    _resume(run_id, {"decision": "approve", "order_version": version, "decided_by": "李督办"})
    approved = _event(order_id, "reply_approved")
    assert (approved.actor_kind, approved.actor_id) == (ActorKind.SUPERVISOR, "李督办")


def _resume(run_id, values: dict, timeout: float = 60) -> None:
    """Submit the form once the run has stored it: a run shows Paused a moment before its form's schema is in."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return resume_flow_run(run_id, run_input=values)
        except RuntimeError as exc:
            if "schema not found" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
