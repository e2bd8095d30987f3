"""The link between an order and its lifecycle flow run on Prefect: start, wake, reconcile."""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import select

from duban.db import session_scope
from duban.settings import get_settings
from models.enums import OPEN_DISPATCHED
from models.records import RunCursor
from models.work_order import WorkOrder
from tasks.orders import order_tags

log = logging.getLogger(__name__)

LIFECYCLE_DEPLOYMENT = "run-order-lifecycle/lifecycle"


def _client():
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def wake_order_run(order_id: int) -> bool:
    """Reschedule the order's suspended run so it re-reads the database; never fails the caller's action.

    The action is already committed when this runs: if Prefect is unreachable the reconciler wakes
    the run later, so a unit's action never waits on the orchestrator.
    """
    with session_scope(readonly=True) as session:
        run_id = session.scalar(select(RunCursor.flow_run_id).where(RunCursor.work_order_id == order_id))
    if not run_id:
        return False
    try:
        with _client() as client:
            return _wake(client, UUID(run_id))
    except Exception as exc:  # noqa: BLE001 - the orchestrator being down must not undo a committed action
        log.warning("could not wake flow run %s of order %s (%s); the reconciler will", run_id, order_id, exc)
        return False


def wake_order_runs(*, order_ids: Iterable[int], client: Callable[[], Any]) -> list[int]:
    """wake_order_run for many orders: their runs read in one call over one client, asked for only if needed.

    Returns the ids of the orders whose run was woken; a run that cannot be woken is left to the reconciler.
    """
    with session_scope(readonly=True) as session:
        runs = {UUID(run_id): order_id for order_id, run_id in session.execute(
            select(RunCursor.work_order_id, RunCursor.flow_run_id)
            .where(RunCursor.work_order_id.in_(list(order_ids)), RunCursor.flow_run_id.is_not(None)))}
    if not runs:
        return []
    # Imported once there is a run to wake: a portal whose orders have none never loads Prefect (1.5 s of CPU).
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    woken, ids = [], list(runs)
    # The API returns at most 200 runs per call.
    found = [run for start in range(0, len(ids), 200) for run in client().read_flow_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids[start:start + 200])), limit=200)]
    for run in found:
        if run.state is None or not run.state.is_paused():
            continue
        try:
            _resuming(client(), run.id)
            woken.append(runs[run.id])
        except Exception as exc:  # noqa: BLE001 - the reconciler wakes what could not be woken here
            log.warning("could not wake flow run %s of order %s (%s); the reconciler will", run.id, runs[run.id], exc)
    return woken


def _wake(client, run_id: UUID) -> bool:
    """Move a suspended run to Scheduled("Resuming"), as a resume does, without a form's input."""
    run = client.read_flow_run(run_id)
    if run.state is None or not run.state.is_paused():
        return False
    _resuming(client, run_id)
    return True


def _resuming(client, run_id: UUID) -> None:
    from prefect.states import Scheduled

    client.set_flow_run_state(run_id, Scheduled(name="Resuming", scheduled_time=datetime.now(UTC)), force=True)


def start_order_runs(*, order_ids: list[int], replacing: dict[int, UUID] | None = None) -> list[str]:
    """Create one lifecycle run per order, named by its number and tagged by unit, category and district.

    A run `replacing` a lost one takes over the forms submitted to it: a decision sent to a run whose
    process died before applying it is applied by the new run (once: applied inputs are recorded).
    """
    if not order_ids:
        return []
    with session_scope(readonly=True) as session:
        orders = [(o.id, o.number, order_tags(session, o))
                  for o in session.scalars(select(WorkOrder).where(WorkOrder.id.in_(order_ids)))]
    started = []
    with _client() as client:
        deployment = client.read_deployment_by_name(LIFECYCLE_DEPLOYMENT)
        for order_id, number, tags in orders:
            forms = _submitted_forms(client, (replacing or {}).get(order_id))
            run = client.create_flow_run_from_deployment(deployment.id, parameters={"order_number": number},
                                                         name=number, tags=tags, state=_held() if forms else None)
            if forms:
                _hand_over(client, run.id, forms)
            with session_scope() as session:
                cursor = session.get(RunCursor, order_id) or RunCursor(work_order_id=order_id, narrated_event_id=0,
                                                                       applied_inputs=[])
                cursor.flow_run_id, cursor.started_at = str(run.id), datetime.now(UTC)
                session.add(cursor)
            started.append(number)
    return started


def _submitted_forms(client, run_id: UUID | None) -> list:
    """The form inputs a run received (applied or not; the new run skips those already applied)."""
    if run_id is None:
        return []
    inputs = client.filter_flow_run_input(flow_run_id=run_id, key_prefix="suspended-", limit=500, exclude_keys=set())
    return [i for i in inputs if i.key.endswith("-response")]


def _held():
    """A new run's first state while the forms are handed over: no executor takes it before it is released."""
    from prefect.states import Scheduled

    return Scheduled(scheduled_time=datetime.now(UTC) + timedelta(seconds=30))


def _hand_over(client, run_id: UUID, forms: list) -> None:
    """Give the new run the lost run's forms, then release it at once (or, failing that, when the hold ends)."""
    from prefect.states import Scheduled

    for form in forms:
        client.create_flow_run_input(flow_run_id=run_id, key=form.key, value=form.value, sender=form.sender)
    client.set_flow_run_state(run_id, Scheduled(scheduled_time=datetime.now(UTC)), force=True)


@dataclass
class Reconciled:
    """What one reconciliation pass found and did."""

    checked: int = 0
    started: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    woken: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)


def reconcile_runs(*, now: datetime | None = None) -> Reconciled:
    """Exactly one live lifecycle run per open dispatched order: start lost ones, cancel duplicates, wake stale waits."""
    from prefect.client.schemas.filters import (
        DeploymentFilter, DeploymentFilterId, FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType)
    from prefect.client.schemas.objects import StateType
    from prefect.states import Cancelled

    now = now or datetime.now(UTC)
    # Lifecycle steps take seconds: a run "running" for longer than this lost its process.
    lost_after = timedelta(seconds=get_settings().lost_run_after_s)
    result = Reconciled()
    with session_scope(readonly=True) as session:
        rows = session.execute(
            select(WorkOrder.id, WorkOrder.number, WorkOrder.version, RunCursor.flow_run_id)
            .outerjoin(RunCursor, RunCursor.work_order_id == WorkOrder.id)
            .where(WorkOrder.status.in_([s.value for s in OPEN_DISPATCHED]))
        ).all()
    result.checked = len(rows)
    live_types = [StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.PAUSED, StateType.CANCELLING]
    with _client() as client:
        deployment = client.read_deployment_by_name(LIFECYCLE_DEPLOYMENT)
        live, page = [], None
        while page is None or len(page) == 200:
            page = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=live_types))),
                limit=200, offset=len(live))
            live += page
        by_name: dict[str, list] = {}
        for run in live:
            by_name.setdefault(run.name, []).append(run)
        to_start: list[int] = []
        lost: dict[int, UUID] = {}
        for order_id, number, version, run_id in rows:
            runs = by_name.pop(number, [])
            keep = next((r for r in runs if str(r.id) == run_id), None) or (runs[0] if runs else None)
            for extra in runs:
                if extra is not keep:
                    client.set_flow_run_state(extra.id, Cancelled(message="duplicate lifecycle run"), force=True)
                    result.cancelled.append(number)
            if keep is not None and (keep.state.is_running() or keep.state.is_pending()) \
                    and now - keep.state.timestamp > lost_after:
                client.set_flow_run_state(keep.id, Cancelled(message="lost its process; restarted"), force=True)
                lost[order_id] = keep.id
                keep = None
            if keep is None:
                to_start.append(order_id)
                (result.restarted if run_id else result.started).append(number)
                continue
            if str(keep.id) != run_id:
                _remember(order_id, keep.id)
            pause_key = keep.state.state_details.pause_key or ""
            if keep.state.is_paused() and f"-v{version}-" not in pause_key and _wake(client, keep.id):
                result.woken.append(number)
        prefix = get_settings().city_code
        for number, runs in by_name.items():
            for run in runs:
                if not run.state.is_paused() or not number.startswith(prefix):
                    continue
                # A waiting run of an order that is no longer open: let it finish by reading the database.
                _wake(client, run.id)
                result.woken.append(number)
    start_order_runs(order_ids=to_start, replacing=lost)
    return result


def _remember(order_id: int, run_id: UUID) -> None:
    with session_scope() as session:
        cursor = session.get(RunCursor, order_id) or RunCursor(work_order_id=order_id, narrated_event_id=0,
                                                               applied_inputs=[])
        cursor.flow_run_id = str(run_id)
        session.add(cursor)
