"""The people around a running Duban: channels submit items over the intake API, units act from the links in
their mail over HTTP, supervisors and hotline staff decide in the gateway. Each order follows a scenario."""

import itertools
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
from prefect.exceptions import PrefectHTTPStatusError
from sqlalchemy import func, select

from duban.db import session_scope
from duban.mailsink import MailServer
from models.directory import Unit
from models.enums import FINAL_STATUSES
from models.lifecycle import TRANSITIONS
from models.records import Event, Notification, RunCursor
from models.work_order import WorkOrder
from tasks.orders import active_lead
from tests.scale.cluster import DECIDER, DECIDER_PASSWORD, Deployment

LOCAL = ZoneInfo("Asia/Shanghai")
NEW_UNIT = "urban_management"  # where an approved return goes; no category below is routed there first
# (category, district): routed to eight different lead units; none is an on-site category.
PLACES = [("city_appearance_life_services.noise", "tianyuan"), ("hr_social_security", "lusong"),
          ("transportation.traffic_order", "hetang"), ("housing_land.housing_fund", "shifeng"),
          ("finance_commerce.consumer_rights", "lukou"), ("resources_environment.greening", "tianyuan"),
          ("city_appearance_life_services.property_management", "lusong"),
          ("science_education_culture_health.medical_services", "hetang")]
STREETS = ["建设路", "红旗路", "长江北路", "新华西路", "车站路", "人民中路", "株洲大道", "栗雨路", "湘水路", "太子路"]
CJK = "".join(chr(c) for c in range(0x4E00, 0x4E00 + 3000))
PATH_EVENTS = {rule.event for rule in TRANSITIONS.values()} | {"extension_requested", "extension_approved"}
_D, _S, _R, _A, _C = ("work_order_dispatched", "work_order_signed", "reply_submitted", "reply_approved",
                      "work_order_closed")
# What each scenario's people do, and the transitions its order must go through, each once, in this order.
SCENARIOS: dict[str, list[str]] = {
    "plain": [_D, _S, _R, _A, _C],
    "send_back": [_D, _S, _R, "reply_sent_back", _R, _A, _C],
    "redo": [_D, _S, _R, _A, "work_order_reopened", _R, _A, _C],
    "returned": [_D, "return_requested", "return_approved", _S, _R, _A, _C],
    "extension": [_D, _S, "extension_requested", "extension_approved", _R, _A, _C],
}
MIX = ["plain", "plain", "send_back", "redo", "returned", "extension"]
_LINK = re.compile(r'href="[^"]*/u/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)"')


class Mailbox:
    """An SMTP server's handler: the newest order link each recipient got per order, and every Message-ID."""

    def __init__(self) -> None:
        self.links: dict[tuple[str, str], str] = {}
        self.message_ids: Counter = Counter()
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        number = message.get("X-Duban-Order", "")
        html = message.get_body(("html",))
        link = _LINK.search(html.get_content()) if html is not None and number else None
        with self.lock:
            self.message_ids[message.get("Message-ID", "")] += 1
            if link:
                for rcpt in envelope.rcpt_tos:
                    self.links[(number, rcpt.lower())] = link.group(1)
        return "250 OK"

    def link(self, number: str, email: str) -> str | None:
        with self.lock:
            return self.links.get((number, email.lower()))


@dataclass
class Script:
    """One order's scenario and what its people did so far."""

    scenario: str
    number: str = ""
    done: set[str] = field(default_factory=set)


class Party:
    """Feeds `orders` items and plays everyone until each order is final; `verify` checks where they ended."""

    def __init__(self, deployment: Deployment, channel_key: str, mailbox: Mailbox, *, seed: int = 8) -> None:
        self.d, self.key, self.mailbox = deployment, channel_key, mailbox
        self.rng = random.Random(seed)
        self.http = httpx.Client(timeout=60)
        self.staff = httpx.Client(timeout=60)
        self.scripts: dict[str, Script] = {}
        self.successor: dict[tuple[str, str], str] = {}
        self.acted: set[tuple[UUID, str]] = set()
        self.acts: Counter = Counter()
        self.portal = itertools.cycle(deployment.portals)
        self.csrf = ""
        self.emails: dict[int, str] = {}
        self.first_fed = self.last_closed = 0.0
        self.last_worker: Counter = Counter()
        self.lock = threading.Lock()

    # Channels and intake.
    def feed(self, count: int) -> None:
        for _ in range(count):
            category, district = self.rng.choice(PLACES)
            scenario = MIX[len(self.scripts) % len(MIX)]
            words = "".join(self.rng.choice(CJK) for _ in range(30))
            body = {"content": f"市民反映：{words}。请尽快核实处理。", "item_type": "complaint", "category": category,
                    "district": district, "address": f"{self.rng.choice(STREETS)}{self.rng.randint(1, 999)}号"
                    f"{self.rng.randint(1, 30)}栋{self.rng.randint(101, 2999)}室", "citizen_name": "张某",
                    "citizen_phone": f"138{self.rng.randint(10_000_000, 99_999_999)}",
                    "channel_ref": f"scale-{len(self.scripts)}-{self.rng.getrandbits(32):08x}"}
            answer = self.http.post(f"{next(self.portal)}/api/v1/items", json=body, headers={"X-API-Key": self.key})
            assert answer.status_code == 201, answer.text
            number = answer.json()["number"]
            self.scripts[number] = Script(scenario, number)
        self.first_fed = self.first_fed or time.monotonic()

    def trigger_intake(self, client) -> None:
        """Hotline staff start an intake batch now instead of waiting for the minute's schedule."""
        deployment = client.read_deployment_by_name("intake-items/intake")
        client.create_flow_run_from_deployment(deployment.id, parameters={"limit": 500})

    # Supervisors and staff, through the gateway.
    def sign_in(self) -> None:
        gateway = self.d.gateways[0]
        page = self.staff.get(f"{gateway}/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        signed = self.staff.post(f"{gateway}/login", data={"csrf": csrf, "next": "/", "name": DECIDER,
                                                            "password": DECIDER_PASSWORD})
        assert signed.status_code in (200, 303), signed.text
        self.csrf = self.staff.get(f"{gateway}/api/csrf-token", params={"client": "scale"}).json()["token"]

    def decide(self, run_id: UUID, values: dict) -> bool:
        gateway = self.d.gateways[hash(run_id) % len(self.d.gateways)]
        answer = self.staff.post(f"{gateway}/api/flow_runs/{run_id}/resume", json={"run_input": values},
                                 headers={"Prefect-Csrf-Token": self.csrf})
        if answer.status_code == 503:
            return False  # a Prefect server on SQLite answers so when its database is locked: next round
        assert answer.status_code in (200, 201), f"{answer.status_code}: {answer.text}"
        result = answer.json()
        if result["status"] == "ACCEPT":
            return True
        reason = (result.get("details") or {}).get("reason", "")
        assert "schema not found" in reason or "not paused" in reason, result
        return False  # the form is a moment from being stored, or a unit's action woke the run: next round

    # Units, through the portal.
    def unit_acts(self, number: str, order_id: int, action: str, data: dict) -> bool:
        email = self._lead_email(order_id)
        token = self.successor.get((number, email)) or self.mailbox.link(number, email)
        if token is None:
            return False  # the dispatch notice has not arrived yet
        portal = self.d.portals[hash(number) % len(self.d.portals)]
        form = self.http.get(f"{portal}/u/{token}/orders/{number}/{action}")
        assert form.status_code == 200, f"{number} {action} form: {form.status_code} {form.text[:300]}"
        done = self.http.post(f"{portal}/u/{token}/orders/{number}/{action}", data=data)
        assert done.status_code == 303, f"{number} {action}: {done.status_code} {done.text[:500]}"
        self.successor[(number, email)] = done.headers["location"].split("/")[2]
        return True

    def _lead_email(self, order_id: int) -> str:
        with session_scope(readonly=True, url=self.d.db_url) as session:
            unit_id = active_lead(session, session.get(WorkOrder, order_id)).unit_id
            if unit_id not in self.emails:
                self.emails[unit_id] = session.get(Unit, unit_id).email
            return self.emails[unit_id]

    def act(self, run_id: UUID, number: str, key: str) -> None:
        """Do what the person this run waits for would do in the order's scenario."""
        script = self.scripts[number]
        with session_scope(readonly=True, url=self.d.db_url) as session:
            order_id, version = session.execute(select(WorkOrder.id, WorkOrder.version)
                                                .where(WorkOrder.number == number)).one()
        if f"-v{version}-" not in key:
            return  # the order moved on since the run went to sleep; it wakes and waits again
        wait, s = key.rsplit("-v", 1)[0], script.scenario
        decision = {"decided_by": DECIDER, "order_version": version}
        if wait == "unit-sign" and s == "returned" and "return" not in script.done:
            ok, step = self.unit_acts(number, order_id, "return", {"reason": "不属于本单位职责范围",
                                                                   "evidence_note": "已到现场核实",
                                                                   "suggested_unit": NEW_UNIT}), "return"
        elif wait == "unit-sign":
            ok, step = self.unit_acts(number, order_id, "sign", {}), "sign"
        elif wait == "unit-reply" and s == "extension" and "extension" not in script.done:
            due = (datetime.now(LOCAL) + timedelta(days=12)).strftime("%Y-%m-%dT%H:%M")
            ok, step = self.unit_acts(number, order_id, "extension", {"reason": "需协调多个部门",
                                                                      "new_due_at": due}), "extension"
        elif wait == "unit-reply":
            ok, step = self.unit_acts(number, order_id, "reply", {"text": "已到现场处理，问题已解决。",
                                                                  "contacted": "yes", "solved": "yes"}), "reply"
        elif wait == "return-decision":
            ok, step = self.decide(run_id, decision | {"decision": "approve", "new_unit": NEW_UNIT}), "approve-return"
        elif wait == "extension-decision":
            ok, step = self.decide(run_id, decision | {"decision": "approve"}), "approve-extension"
        elif wait == "reply-review" and s == "send_back" and "send_back" not in script.done:
            ok, step = self.decide(run_id, decision | {"decision": "send_back", "reason": "请补充处理结果"}), "send_back"
        elif wait == "reply-review":
            ok, step = self.decide(run_id, decision | {"decision": "approve"}), "approve-reply"
        elif wait == "return-visit" and s == "redo" and "redo" not in script.done:
            ok, step = self.decide(run_id, decision | {"contacted": True, "resolved": False,
                                                       "satisfaction": "unsatisfied", "comment": "没人来过"}), "redo"
        elif wait == "return-visit":
            ok, step = self.decide(run_id, decision | {"contacted": True, "resolved": True,
                                                       "satisfaction": "satisfied"}), "visit"
        else:
            raise AssertionError(f"{number} ({s}) waits for {key}, which no scenario expects")
        if ok:
            with self.lock:
                script.done.add(step)
                self.acted.add((run_id, key))
                self.acts[step] += 1

    # The loop.
    def play(self, orders: int, *, in_flight: int = 100, timeout: float = 3600) -> None:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import (DeploymentFilter, DeploymentFilterId, FlowRunFilter,
                                                    FlowRunFilterState, FlowRunFilterStateType)
        from prefect.client.schemas.objects import StateType

        self.sign_in()
        deadline, last_intake = time.monotonic() + timeout, 0.0
        with get_client(sync_client=True) as client, ThreadPoolExecutor(8) as people:
            lifecycle = client.read_deployment_by_name("run-order-lifecycle/lifecycle").id
            paused = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])))
            only = DeploymentFilter(id=DeploymentFilterId(any_=[lifecycle]))
            while True:
                received, open_, final = self.counts()
                if final == orders:
                    break
                assert time.monotonic() < deadline, f"{orders - final} orders not final after {timeout:.0f} s"
                room = min(orders - len(self.scripts), in_flight - open_ - received, 25)
                if room > 0:
                    self.feed(room)
                    received += room
                if received and time.monotonic() - last_intake > 3:
                    try:
                        self.trigger_intake(client)
                    except PrefectHTTPStatusError:
                        pass  # a busy server (SQLite under load answers 503): the intake's schedule runs each minute
                    last_intake = time.monotonic()
                runs, page = [], None
                while page is None or len(page) == 200:
                    page = client.read_flow_runs(flow_run_filter=paused, deployment_filter=only, limit=200,
                                                 offset=len(runs))
                    runs += page
                todo = []
                for run in runs:
                    key = run.state.state_details.pause_key or ""
                    if run.name in self.scripts and (run.id, key) not in self.acted:
                        todo.append((run.id, run.name, key))
                # Each order's people act on their own, all at once: an order is in one wait at a time.
                list(people.map(lambda waiting: self.act(*waiting), todo))
                time.sleep(0.5)
        self.last_closed = time.monotonic()

    def counts(self) -> tuple[int, int, int]:
        """Our items still received, dispatched and open, and final."""
        with session_scope(readonly=True, url=self.d.db_url) as session:
            rows = dict(session.execute(select(WorkOrder.status, func.count()).group_by(WorkOrder.status)).all())
        final = sum(n for status, n in rows.items() if status in {s.value for s in FINAL_STATUSES})
        received = rows.get("received", 0)
        return received, sum(rows.values()) - final - received, final

    def verify(self) -> dict[str, int]:
        """Every order ended where its scenario says, by its scenario's path, each transition once; every
        notice reached the mail server; every lifecycle run completed."""
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        with session_scope(readonly=True, url=self.d.db_url) as session:
            orders = {o.number: o for o in session.scalars(select(WorkOrder))}
            assert set(orders) == set(self.scripts)
            paths: dict[int, list[str]] = {}
            for order_id, name in session.execute(select(Event.work_order_id, Event.name)
                                                  .where(Event.name.in_(PATH_EVENTS)).order_by(Event.id)):
                paths.setdefault(order_id, []).append(name)
            for number, script in self.scripts.items():
                order = orders[number]
                assert order.status == "closed", f"{number} ({script.scenario}) ended {order.status}"
                assert paths[order.id] == SCENARIOS[script.scenario], (number, script.scenario, paths[order.id])
                lead = session.get(Unit, active_lead(session, order).unit_id).code
                assert (lead == NEW_UNIT) == (script.scenario == "returned"), (number, script.scenario, lead)
            runs = [UUID(r) for r in session.scalars(select(RunCursor.flow_run_id))]
            notices = session.scalars(select(Notification.message_id)).all()
            unsent = session.scalar(select(func.count()).select_from(Notification)
                                    .where(Notification.send_state != "sent"))
        assert len(runs) == len(self.scripts)
        deadline = time.monotonic() + 120
        with get_client(sync_client=True) as client:
            while True:  # a run closes its order, then publishes the timeline and ends
                read = [run for start in range(0, len(runs), 200) for run in client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=runs[start:start + 200])), limit=200)]
                states = Counter(run.state.type.value for run in read)
                if states == {"COMPLETED": len(runs)} or time.monotonic() > deadline:
                    break
                time.sleep(1)
        assert states == {"COMPLETED": len(runs)}, states
        assert unsent == 0
        missing = set(notices) - set(self.mailbox.message_ids)
        assert not missing, f"{len(missing)} notices never reached the mail server"
        self.last_worker = Counter(run.labels.get("duban.worker") for run in read)
        return {"orders": len(orders), "lifecycle_runs": len(runs), "notices": len(notices),
                "mails": sum(self.mailbox.message_ids.values()),
                "duplicate_mails": sum(n - 1 for n in self.mailbox.message_ids.values())}

    def wait_mail_sent(self, timeout: float = 60) -> None:
        """Let the relays send the last notices (closing an order tells its unit)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with session_scope(readonly=True, url=self.d.db_url) as session:
                if not session.scalar(select(func.count()).select_from(Notification)
                                      .where(Notification.send_state != "sent")):
                    return
            time.sleep(0.5)


def mail_server() -> tuple[MailServer, Mailbox]:
    """A real SMTP server on a free port, keeping what the party needs of each mail."""
    mailbox = Mailbox()
    return MailServer(mailbox).start(), mailbox


@contextmanager
def talking_to(deployment: Deployment) -> Iterator[None]:
    """This process's Prefect client pointed at the deployment's server, with its login."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: deployment.api, PREFECT_API_AUTH_STRING: deployment.auth or None}):
        yield
