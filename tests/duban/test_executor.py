"""The in-process executor against a real Prefect server: a run another worker took first is left alone."""

import asyncio
import inspect

import prefect.flow_engine

from prefect.client.orchestration import get_client
from prefect.states import Paused, Running

from duban.executor import Executor, _not_observed


def test_a_run_another_worker_already_took_and_suspended_is_skipped_not_fatal(prefect_client_env):
    async def scenario() -> tuple[int, list[str]]:
        executor = Executor(limit=4, name="worker-test")
        await executor.register({"reconcile"})
        [deployment_id] = executor.flows
        async with get_client() as client:
            runs = [await client.create_flow_run_from_deployment(deployment_id) for _ in range(2)]
            listed = await client.get_scheduled_flow_runs_for_deployments(deployment_ids=[deployment_id], limit=10)
            assert {r.id for r in listed} >= {r.id for r in runs}
            # Only these two: runs the deployment's own schedule created meanwhile are not this test's.
            listed = [r for r in listed if r.id in {run.id for run in runs}]
            # Between this worker's listing and its claim, another worker took both: one is running,
            # the other already ran to its first wait.
            await client.set_flow_run_state(runs[0].id, Running(), force=True)
            await client.set_flow_run_state(runs[1].id, Paused(pause_key="unit-sign-v1-0"), force=True)

            async def stale(**_kwargs):
                return listed

            client.get_scheduled_flow_runs_for_deployments = stale
            await executor._claim(client, 4)
            states = [(await client.read_flow_run(r.id)).state.type.value for r in runs]
        return len(executor.in_flight), states

    in_flight, states = asyncio.run(scenario())
    assert in_flight == 0
    assert states == ["RUNNING", "PAUSED"]


def test_the_executor_keeps_prefects_per_run_suspension_observer_off_its_shared_loop():
    # The engine looks the observer up in its module when a run starts, so the executor's stand-in is the
    # one used; a Prefect upgrade that moves it fails here rather than silently blocking the loop again.
    setup = inspect.getsource(prefect.flow_engine.BaseFlowRunEngine.setup_flow_run_suspension_request)
    assert "observe_flow_run_suspension(" in setup
    Executor(limit=1, name="worker-test")
    assert prefect.flow_engine.observe_flow_run_suspension is _not_observed
