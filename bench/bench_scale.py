"""Dispatched orders per hour through their whole lifecycle, and CPU seconds per order, on this machine:
docs/deploy.md's deployment against the embedded default, one after the other in one run.

    .venv/bin/python -m bench.bench_scale --orders 100

`scaled`: Prefect server on PostgreSQL (auth string, CSRF on), Duban on PostgreSQL, two workers, two web
processes (portal and gateway), two relays, an active clock and a stand-by, each its own process, started
with the document's commands and settings (tests/scale/cluster.py). `embedded`: SQLite and one
`duban serve`, which starts its own Prefect server on SQLite. Both get the same stream of complaints
over the intake API and the same people (tests/scale/party.py): units act from the links in their mail,
supervisors and staff decide through the gateway, in five scenarios (plain, sent back, redone, returned
and re-dispatched, extended), at most --in-flight orders open at a time. CPU is read from /proc for
each process and its children, and for the PostgreSQL backends of the scaled run's two databases.
"""

import argparse
import os
import signal
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from tests.scale.cluster import Embedded, Scaled
from tests.scale.party import Party, mail_server, talking_to


def own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def group(name: str) -> str:
    """The kind of process: worker-1 and worker-2 are both workers."""
    return name.rsplit("-", 1)[0] if name[-1].isdigit() or name.endswith(("-a", "-b")) else name


def measure(mode: str, orders: int, in_flight: int, timeout: float) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"duban-bench-scale-{mode}-"))
    smtp, mailbox = mail_server()
    deployment = Scaled(work, smtp_port=smtp.port) if mode == "scaled" else Embedded(work, smtp_port=smtp.port)
    try:
        deployment.up()
        key = deployment.add_people()
        with talking_to(deployment):
            party = Party(deployment, key, mailbox)
            time.sleep(5)  # let start-up settle before measuring
            before, party_before, started = deployment.cpu(), own_cpu(), time.monotonic()
            party.play(orders, in_flight=in_flight, timeout=timeout)
            after, party_after, wall = deployment.cpu(), own_cpu(), time.monotonic() - started
            deployment.reached("orders final")
            party.wait_mail_sent()
            deployment.reached("mail sent")
            summary = party.verify()
            deployment.reached("verified")
        per_worker = deployment.runs_per_worker() if mode == "scaled" else {}
        per_relay = deployment.sent_per_relay() if mode == "scaled" else {}
    finally:
        deployment.down()
        smtp.stop()
    cpu: dict[str, float] = defaultdict(float)
    for name, seconds in after.items():
        cpu[group(name)] += seconds - before.get(name, 0)
    return {"mode": mode, "orders": orders, "wall": wall, "cpu": dict(cpu), "party": party_after - party_before,
            "per_worker": per_worker, "per_relay": per_relay, "summary": summary, "startup": deployment.milestones}


def report(result: dict) -> None:
    n, cpu = result["orders"], result["cpu"]
    total = sum(cpu.values())
    parts = ", ".join(f"{name} {seconds / n:.2f}" for name, seconds in sorted(cpu.items()))
    print(f"{result['mode']}: {n} orders in {result['wall']:.0f} s = {n / result['wall'] * 3600:,.0f} dispatched "
          f"orders/hour through the whole lifecycle; CPU per order {total / n:.2f} s ({parts}); "
          f"the simulated people {result['party'] / n:.2f} s")
    print(f"  {result['summary']}; flow runs per worker {result['per_worker'] or '-'}; "
          f"notices per relay {result['per_relay'] or '-'}; start-up {result['startup']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100, help="orders per mode")
    parser.add_argument("--in-flight", type=int, default=100, help="orders open at most at a time")
    parser.add_argument("--modes", default="scaled,embedded", help="scaled, embedded or both (comma-separated)")
    parser.add_argument("--timeout", type=float, default=6 * 3600, help="give up on a mode after this many seconds")
    args = parser.parse_args()
    # `kill` stops it as Ctrl-C does: every process it started is stopped, its databases dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM"))
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
    for mode in args.modes.split(","):
        report(measure(mode.strip(), args.orders, args.in_flight, args.timeout))
        print(f"load average {os.getloadavg()[0]:.1f} after {mode}", flush=True)


if __name__ == "__main__":
    main()
