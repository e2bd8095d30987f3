"""`duban demo`: a simulated stream of items and simulated units and supervisors, on the real system."""

import base64
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

import httpx
from prefect.client.schemas.responses import SetStateStatus
from prefect.exceptions import PrefectHTTPStatusError
from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings
from rich.console import Console
from sqlalchemy import func, select

from duban.db import session_scope
from duban.demo_items import feed
from duban.errors import DubanError
from duban.orchestrator import ensure_server, prefect_env, server_healthy
from duban.processes import die_with_parent, stop_child
from duban.settings import ROOT
from models.enums import FINAL_STATUSES
from models.records import Event, RunCursor
from models.work_order import WorkOrder
from tasks import actions
from tasks.orders import active_lead
from tasks.runs import wake_order_runs
from tasks.transitions import Actor

console = Console()
ESCALATIONS = ("deadline_warned", "deadline_missed", "case_opened", "unit_put_on_notice")


@dataclass
class Tally:
    """What the simulated people did, for the summary."""

    fed: Counter = field(default_factory=Counter)
    acts: Counter = field(default_factory=Counter)
    decisions: Counter = field(default_factory=Counter)
    refused: int = 0
    postponed: int = 0


class Party:
    """Simulated units, supervisors and hotline staff, each order with its own seeded temperament."""

    def __init__(self, seed: int, tally: Tally, slow_s: float, client, ui: httpx.Client) -> None:
        self.seed, self.tally, self.slow_s = seed, tally, slow_s
        self.client = client  # one Prefect client for every click: opening one costs more than the click
        # Forms are submitted as the UI's Resume button does, with no retry: Prefect's client sleeps
        # after a 503 even when told not to retry, and a busy SQLite server answers many.
        self.ui = ui
        self.first_seen: dict[tuple[int, str], float] = {}
        self.asked_extension: set[int] = set()
        self.returned: set[int] = set()
        self.visited_unhappy: set[int] = set()
        self.dawdling: dict[int, float] = {}  # order -> when the one step its unit dawdles on was first seen

    def rng(self, order_id: int, what: str) -> random.Random:
        return random.Random(f"{self.seed}-{order_id}-{what}")

    def act(self, order_id: int, run_id: UUID, key: str) -> None:
        """Do what the person the run waits for would do now."""
        kind, _, rest = key.rpartition("-v")
        waited_on = rest.split("-")[0]
        if waited_on.isdigit() and int(waited_on) != _version(order_id):
            # The order moved on since the run began to wait, and the busy server refused its wake-up:
            # wake it now rather than leave it to the reconciler's next pass.
            self._wake(order_id)
            return
        seen = self.first_seen.setdefault((order_id, key), time.monotonic())
        try:
            if kind in {"unit-sign", "unit-reply"}:
                self._unit(order_id, kind, seen)
            elif kind in {"return-decision", "extension-decision", "reply-review", "return-visit", "case-decision"}:
                self._decide(order_id, run_id, kind)
        except DubanError as exc:
            self.tally.refused += 1
            console.print(f"[yellow]{order_id}: {kind} refused: {exc}[/yellow]")
        except (httpx.HTTPError, PrefectHTTPStatusError):
            # A busy Prefect server (SQLite under load answers 503): the person tries again next round.
            self.tally.postponed += 1

    def _wake(self, order_id: int) -> None:
        wake_order_runs(order_ids=[order_id], client=lambda: self.client)

    def _unit(self, order_id: int, kind: str, seen: float) -> None:
        rng = self.rng(order_id, kind)
        # About one unit in eight dawdles until the escalation ladder has had its say, once an order:
        # after that, the supervisor's case on it has their attention.
        if rng.random() < 0.12 and self.dawdling.setdefault(order_id, seen) == seen:
            if time.monotonic() - seen < self.slow_s:
                return
        # The action commits, then the run is woken over the party's own client, as the portal does.
        with session_scope() as session:
            self._unit_acts(order_id, kind, rng, session)
        self._wake(order_id)

    def _unit_acts(self, order_id: int, kind: str, rng: random.Random, session) -> None:
        actor = _lead(order_id)
        if kind == "unit-sign":
            if order_id not in self.returned and rng.random() < 0.12:
                self.returned.add(order_id)
                evidence = "已到现场核实，不属我单位职责" if rng.random() < 0.5 else ""
                outcome = actions.request_return(order_id=order_id, actor=actor, reason="不属于本单位职责范围",
                                                 evidence_note=evidence, session=session)
                self.tally.acts["auto-rejected return" if outcome.auto_rejected else "return requested"] += 1
            else:
                actions.sign(order_id=order_id, actor=actor, session=session)
                self.tally.acts["signed"] += 1
        elif order_id not in self.asked_extension and rng.random() < 0.08:
            self.asked_extension.add(order_id)
            actions.request_extension(order_id=order_id, actor=actor, reason="需多部门协调",
                                      new_due_at=datetime.now(UTC) + timedelta(minutes=10), session=session)
            self.tally.acts["extension requested"] += 1
        else:
            actions.reply(order_id=order_id, actor=actor, text="已安排人员到现场处理，问题已解决。",
                          contacted=True, solved=True, session=session)
            self.tally.acts["replied"] += 1

    def _decide(self, order_id: int, run_id: UUID, kind: str) -> None:
        rng = self.rng(order_id, f"{kind}-{_version(order_id)}")
        values: dict = {"decided_by": "督办员（模拟）" if kind != "return-visit" else "话务员（模拟）",
                        "order_version": _version(order_id)}
        if kind == "return-decision":
            values |= {"decision": "approve", "new_unit": _another_unit(order_id)} if rng.random() < 0.5 else {
                "decision": "reject", "reason": "请先到现场核实"}
        elif kind == "extension-decision":
            values |= {"decision": "approve"} if rng.random() < 0.7 else {"decision": "reject", "reason": "理由不充分"}
        elif kind == "case-decision":
            from tasks.lifecycle import read_snapshot

            with session_scope(readonly=True) as session:
                number = session.get(WorkOrder, order_id).number
            context = read_snapshot(number=number).step.context
            values |= ({"decision": "close", "unit": context.get("unit_code") or None,
                        "finding": "指定首接负责单位，不得再退单"} if context.get("buck_passing")
                       else {"decision": "acknowledge"})
        elif kind == "reply-review":
            values |= {"decision": "approve"} if rng.random() < 0.85 else {"decision": "send_back",
                                                                          "reason": "回复过于简单"}
        else:
            unhappy = order_id not in self.visited_unhappy and rng.random() < 0.1
            if unhappy:
                self.visited_unhappy.add(order_id)
            values |= {"contacted": True, "resolved": not unhappy,
                       "satisfaction": "unsatisfied" if unhappy else "satisfied"}
        answer = self.ui.post(f"flow_runs/{run_id}/resume", json={"run_input": values})
        answer.raise_for_status()
        result = answer.json()
        if result["status"] != SetStateStatus.ACCEPT.value:
            reason = (result.get("details") or {}).get("reason") or ""
            # A unit's action woke the run a moment ago (the form comes back if still needed), or the
            # form is a moment from being stored: next round. Anything else is a form the server refused.
            if "not paused" in reason or "schema not found" in reason:
                return
            raise DubanError(f"the server refused the {kind} form: {reason}")
        self.tally.decisions[f"{kind}: {values.get('decision', values.get('satisfaction'))}"] += 1


def _lead(order_id: int) -> Actor:
    from models.directory import Unit

    with session_scope(readonly=True) as session:
        lead = active_lead(session, session.get(WorkOrder, order_id))
        unit = session.get(Unit, lead.unit_id)
        return Actor.unit(unit.id, unit.code)


def _version(order_id: int) -> int:
    with session_scope(readonly=True) as session:
        return session.get(WorkOrder, order_id).version


def _another_unit(order_id: int) -> str:
    from models.directory import Unit

    with session_scope(readonly=True) as session:
        lead = active_lead(session, session.get(WorkOrder, order_id))
        return session.scalars(select(Unit.code).where(Unit.id != lead.unit_id, Unit.kind == "bureau")
                               .order_by(Unit.code)).first()


def _waiting_runs(client) -> list[tuple[int, UUID, str]]:
    """(order id, run id, pause key) of every order whose run waits now."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with session_scope(readonly=True) as session:
        rows = session.execute(select(RunCursor.work_order_id, RunCursor.flow_run_id)
                               .join(WorkOrder, WorkOrder.id == RunCursor.work_order_id)
                               .where(WorkOrder.status.not_in([s.value for s in FINAL_STATUSES]))).all()
    by_run = {UUID(run_id): order_id for order_id, run_id in rows if run_id}
    waiting, ids = [], list(by_run)
    for start in range(0, len(ids), 200):
        for run in client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids[start:start + 200])),
                                         limit=200):
            if run.state and run.state.is_paused():
                waiting.append((by_run[run.id], run.id, run.state.state_details.pause_key or ""))
    return waiting


def _trigger_intake(client) -> None:
    """Ask for an intake batch now rather than at the next minute."""
    deployment = client.read_deployment_by_name("intake-items/intake")
    client.create_flow_run_from_deployment(deployment.id, parameters={"limit": 500})


def _last_event() -> int | None:
    """The newest event's id: it changes whenever any order moves."""
    with session_scope(readonly=True) as session:
        return session.scalar(select(func.max(Event.id)))


def _counts() -> tuple[int, int, Counter, Counter]:
    with session_scope(readonly=True) as session:
        total = session.scalar(select(func.count()).select_from(WorkOrder))
        open_ = session.scalar(select(func.count()).select_from(WorkOrder)
                               .where(WorkOrder.status.not_in([s.value for s in FINAL_STATUSES])))
        by = Counter({(c, s): n for c, s, n in session.execute(
            select(WorkOrder.channel, WorkOrder.status, func.count()).group_by(WorkOrder.channel, WorkOrder.status))})
        rungs = Counter(dict(session.execute(select(Event.name, func.count()).where(Event.name.in_(ESCALATIONS))
                                             .group_by(Event.name)).all()))
        return total, open_, by, rungs


def _start_services(started: list[subprocess.Popen]) -> None:
    """Start the Prefect server and `duban serve` unless they run already."""
    os.environ.update(prefect_env())
    if not server_healthy(os.environ["PREFECT_API_URL"]):
        server = ensure_server()
        if server is not None:
            started.append(server)
        console.print(f"Prefect server started: UI at {os.environ['PREFECT_API_URL'].removesuffix('/api')}")
    log_dir = ROOT / "var" / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / "serve.log", "ab")  # noqa: SIM115 - open as long as the child runs
    started.append(subprocess.Popen([sys.executable, "-m", "duban", "serve", "--no-server"], stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent))
    console.print(f"duban serve started; its log: {log.name}")
    _wait_for_deployment()


def _wait_for_deployment(timeout: float = 120) -> None:
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with get_client(sync_client=True) as client:
                client.read_deployment_by_name("run-order-lifecycle/lifecycle")
                client.read_deployment_by_name("intake-items/intake")
                return
        except Exception:  # noqa: BLE001 - not registered yet
            time.sleep(1)
    raise DubanError("duban serve did not register the deployments in time; see its output above")


def run_demo(*, items: int, exit_at_end: bool, seed: int, feed_s: float, slow_s: float, timeout_s: float,
             stall_s: float = 600) -> int:
    """Feed items, play every party, and (with exit_at_end) stop when every order is final; return the exit code."""
    tally = Tally()
    signal.signal(signal.SIGTERM, _stop_requested)  # a SIGTERM stops what the demo started, as Ctrl-C does
    started: list[subprocess.Popen] = []
    try:
        _start_services(started)
        # Everyone is played in one loop over one client: a click the busy server refuses (Prefect on
        # SQLite answers 503 when two writes collide) is tried again next round, not after the client's
        # back-off sleep, which would hold up every other person meanwhile. A unit's action is committed
        # either way, and a run not woken at once is woken by the reconciler.
        from prefect.client.orchestration import get_client

        with temporary_settings({PREFECT_CLIENT_MAX_RETRIES: 0}), get_client(sync_client=True) as client, \
                _ui_client() as ui:
            elapsed = _play(random.Random(seed), Party(seed, tally, slow_s, client, ui), items=items,
                            exit_at_end=exit_at_end, feed_s=feed_s, timeout_s=timeout_s, stall_s=stall_s)
        return _summary(tally, elapsed)
    except KeyboardInterrupt:
        return _summary(tally, 0)
    finally:
        for process in reversed(started):
            stop_child(process)


def _ui_client() -> httpx.Client:
    """An HTTP client to the Prefect API as the UI's Resume button uses it (with the auth string, if one is set)."""
    auth = os.environ.get("PREFECT_API_AUTH_STRING")
    headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}
    return httpx.Client(base_url=os.environ["PREFECT_API_URL"].rstrip("/") + "/", headers=headers, timeout=30)


def _play(rng: random.Random, party: Party, *, items: int, exit_at_end: bool, feed_s: float,
          timeout_s: float, stall_s: float) -> float:
    """Feed the items over feed_s and play every waiting person each second; the seconds it ran.

    With exit_at_end it returns once every order is final, or when the orders are stuck: no event on any
    order for stall_s, or timeout_s in all.
    """
    start = last_move = time.monotonic()
    fed, last_event = 0, None
    while True:
        due = items if feed_s <= 0 else min(items, int(items * (time.monotonic() - start) / feed_s) + 1)
        if due > fed:
            feed(rng, due - fed, party.tally.fed)
            fed = due
            try:
                _trigger_intake(party.client)
            except (httpx.HTTPError, PrefectHTTPStatusError):
                pass  # the intake deployment's own schedule picks the items up within a minute
        try:
            waiting = _waiting_runs(party.client)
        except (httpx.HTTPError, PrefectHTTPStatusError):
            waiting = []  # the server is busy; look again next round
        for order_id, run_id, key in waiting:
            party.act(order_id, run_id, key)
        total, open_, _, _ = _counts()
        if fed >= items and open_ == 0 and exit_at_end:
            return time.monotonic() - start
        now, event = time.monotonic(), _last_event()
        if event != last_event:
            last_move, last_event = now, event
        if exit_at_end and (now - last_move > stall_s or now - start > timeout_s):
            why = f"nothing moved for {now - last_move:.0f} s" if now - last_move > stall_s else \
                f"the demo ran {timeout_s:.0f} s"
            console.print(f"[red]{open_} orders are still open: {why}[/red]")
            return now - start
        time.sleep(1)


def _stop_requested(_signum, _frame) -> None:
    raise KeyboardInterrupt


def _summary(tally: Tally, elapsed: float) -> int:
    total, open_, by, rungs = _counts()
    console.print(f"\n[bold]Demo summary[/bold] ({total} items, {elapsed:.0f} s)")
    channels = sorted({c for c, _ in by})
    for channel in channels:
        statuses = ", ".join(f"{s} {n}" for (c, s), n in sorted(by.items()) if c == channel)
        console.print(f"  {channel:16} {statuses}")
    console.print("Units: " + (", ".join(f"{k} {v}" for k, v in tally.acts.most_common()) or "-"))
    # A form counts when the server accepts it; one gone stale meanwhile is refused by the run and offered again.
    console.print("Forms submitted: " + (", ".join(f"{k} {v}" for k, v in sorted(tally.decisions.items())) or "-"))
    console.print(f"Clicks refused as no longer valid: {tally.refused}; tried again after a busy server's 503: "
                  f"{tally.postponed}")
    console.print("Escalations: " + (", ".join(f"{k} {v}" for k, v in sorted(rungs.items())) or "none"))
    if open_:
        console.print(f"[red]{open_} orders did not reach a final status[/red]")
        return 1
    console.print("Every order reached a final status.")
    return 0
