"""The link between an order and its lifecycle flow run on Prefect."""

import logging
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import select

from duban.db import session_scope
from models.work_order import WorkOrder

log = logging.getLogger(__name__)


def wake_order_run(order_id: int) -> bool:
    """Reschedule the order's suspended run so it re-reads the database; never fails the caller's action.

    The action is already committed when this runs: if Prefect is unreachable the reconciler wakes
    the run later, so a unit's action never waits on the orchestrator.
    """
    with session_scope(readonly=True) as session:
        run_id = session.scalar(select(WorkOrder.flow_run_id).where(WorkOrder.id == order_id))
    if not run_id:
        return False
    try:
        return wake_run(UUID(run_id))
    except Exception as exc:  # noqa: BLE001 - the orchestrator being down must not undo a committed action
        log.warning("could not wake flow run %s of order %s (%s); the reconciler will", run_id, order_id, exc)
        return False


def wake_run(run_id: UUID) -> bool:
    """Move a suspended run to Scheduled("Resuming"), as a resume does, without a form's input."""
    from prefect.client.orchestration import get_client
    from prefect.states import Scheduled

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
        if run.state is None or not run.state.is_paused():
            return False
        client.set_flow_run_state(run_id, Scheduled(name="Resuming", scheduled_time=datetime.now(UTC)), force=True)
        return True
