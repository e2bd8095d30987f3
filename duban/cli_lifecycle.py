"""Commands for the lifecycle on Prefect: serve, reconcile, intake, the demo."""

import typer

from duban.cli import app, console
from duban.serve import Role


@app.command()
def serve(role: Role = typer.Option(Role.ALL, help="which part of Duban this process runs"),
          no_server: bool = typer.Option(False, "--no-server", help="never start a local Prefect server")) -> None:
    """Run Duban: the Prefect server if none runs, the served flows, and Duban's own services."""
    from duban.serve import serve as run

    run(role, start_server=not no_server)


@app.command()
def reconcile() -> None:
    """Start lost lifecycle runs, cancel duplicates, wake runs whose order moved on (one pass)."""
    from tasks.runs import reconcile_runs

    result = reconcile_runs()
    console.print(f"checked {result.checked}; started {len(result.started)}, restarted {len(result.restarted)}, "
                  f"cancelled {len(result.cancelled)}, woken {len(result.woken)}")


@app.command()
def demo(items: int = typer.Option(200, min=1, max=100_000, help="how many items to feed"),
         exit_: bool = typer.Option(False, "--exit", help="stop when every order is final; exit 1 if any is stuck"),
         seed: int = typer.Option(12345, help="seed of the simulated people"),
         feed_s: float = typer.Option(60, min=0, help="spread the items over this many seconds"),
         slow_s: float = typer.Option(150, min=0, help="how long a dawdling unit waits before acting"),
         stall_s: float = typer.Option(600, min=10, help="with --exit, call the orders stuck when none has moved "
                                                         "for this many seconds"),
         timeout_s: float = typer.Option(7200, min=10, help="with --exit, give up after this many seconds")) -> None:
    """Feed simulated items from every channel and play units, supervisors and staff on the real system."""
    from duban.demo import run_demo

    raise typer.Exit(run_demo(items=items, exit_at_end=exit_, seed=seed, feed_s=feed_s, slow_s=slow_s,
                              timeout_s=timeout_s, stall_s=stall_s))
