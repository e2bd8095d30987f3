"""One run per dispatched order: read the database, take the automatic step, or wait for a person."""

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import get_run_context
from prefect.flow_runs import suspend_flow_run
from prefect.input import afilter_flow_run_input
from pydantic import ValidationError

from duban.errors import DubanError
from flows.forms import FORMS, build_form
from tasks import lifecycle

WAIT_NOTE = ("This run now waits, suspended, with no process kept alive. "
             "The 'Finished in state Suspended' line that follows is this normal wait, not an error.")

# Only the steps that change an order are task runs: reads cost the server a task run each for nothing.
apply_form = task(lifecycle.apply_form, name="apply-decision", cache_policy=NO_CACHE)
apply_automatic = task(lifecycle.apply_automatic, name="automatic-step", cache_policy=NO_CACHE)
read_snapshot, mark_told, timeline = lifecycle.read_snapshot, lifecycle.mark_told, lifecycle.timeline


@flow(name="run-order-lifecycle", description="The lifecycle of one dispatched work order, named by its number.")
async def run_order_lifecycle(order_number: str) -> str:
    """Drive one order until it reaches a final status; safe to restart at any point."""
    logger = get_run_logger()
    run_id = get_run_context().flow_run.id
    last_wait, attempt = "", 0
    # Forms arrive only while the run is suspended, so they are looked for once, as it starts.
    await _apply_submitted_forms(run_id, read_snapshot(number=order_number).order_id)
    while True:
        snap = read_snapshot(number=order_number)
        for line in snap.story:
            logger.info(line)
        if snap.story:
            mark_told(order_id=snap.order_id, last_event_id=snap.last_event_id)
        step = snap.step
        # The timeline artifact is for a person reading it: refreshed when a decision is asked for and at the end.
        if snap.story and step.kind in {"done", "form"}:
            await _publish_timeline(order_number)
        if step.kind == "done":
            logger.info("Work order %s finished: %s.", order_number, step.name)
            return str(step.name)
        if step.kind == "auto":
            try:
                logger.info(apply_automatic(order_id=snap.order_id, action=step.name, version=snap.version))
            except DubanError as exc:
                logger.warning("Automatic step %s not taken: %s", step.name, exc)
            continue
        wait = f"{step.name}-v{snap.version}"
        attempt = attempt + 1 if wait == last_wait else 0
        last_wait = wait
        await _wait(step, key=f"{wait}-{attempt}", logger=logger)


async def _wait(step: lifecycle.Step, *, key: str, logger) -> None:
    """Suspend until a unit acts or a form is submitted; returns only when this key was used before."""
    ctx = step.context
    if step.kind == "wait":
        who = ctx.get("unit") or "the hotline"
        doing = {"unit-sign": "to sign for it", "unit-reply": "to reply", "intake": "to finish intake"}[step.name]
        logger.info("Waiting for %s %s; stage due %s. %s", who, doing, ctx.get("due", "-"), WAIT_NOTE)
        await suspend_flow_run(key=key)
        return
    form, description, _ = build_form(step.name, ctx)
    logger.info("Waiting for a decision: %s (form in the ⋮ menu: Resume). %s", step.name, WAIT_NOTE)
    try:
        await suspend_flow_run(wait_for_input=form.with_initial_data(description=description), key=key)
    except ValidationError:
        # Woken without this form's input (a unit acted meanwhile): the loop reads the database again.
        return


async def _apply_submitted_forms(run_id, order_id: int) -> bool:
    """Apply every form submitted to this run and not applied yet, oldest first; True if any was."""
    logger = get_run_logger()
    inputs = await afilter_flow_run_input(key_prefix="suspended-", limit=500, flow_run_id=run_id)
    fresh = [i for i in inputs if i.key.endswith("-response") and not lifecycle.was_applied(order_id=order_id, key=i.key)]
    for item in sorted(fresh, key=lambda i: i.created or 0):
        form = next((f for f in FORMS if item.key.startswith(f"suspended-{f}-v")), None)
        if form is None:
            continue
        values = item.decoded_value
        by = str(values.get("decided_by") or "").strip()
        try:
            logger.info(apply_form(order_id=order_id, form=form, key=item.key, values=values, by=by))
        except DubanError as exc:
            logger.warning("Decision from %s refused: %s. The form is offered again if still needed.",
                           by or "an unsigned form", exc)
    return bool(fresh)


async def _publish_timeline(order_number: str) -> None:
    rows = timeline(number=order_number)
    await acreate_table_artifact(key=f"order-{order_number.lower()}", table=rows,
                                 description=f"Timeline of work order {order_number}")
