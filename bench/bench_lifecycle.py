"""CPU and wall time one dispatched order costs across all its flow runs, on a local Prefect server.

    .venv/bin/python -m bench.bench_lifecycle --orders 50

Starts its own Prefect server (SQLite) and `duban serve --role worker`, dispatches N complaints
and plays their units, supervisors and staff through the whole lifecycle (sign, reply, human
review, return visit: five runs of the order's flow each), then reports CPU-seconds per order
for the server, the executor and the party that acts, measured from /proc.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pgid: int) -> float:
    """User+system CPU of a process group, including children it has reaped."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += sum(int(v) for v in fields[11:15])
    return total / TICK


def own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=50)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="duban-bench-"))
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(work / "prefect"), "PREFECT_API_URL": api,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DUBAN_DATABASE_URL": f"sqlite:///{work / 'duban.db'}",
           "PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_LOOP_SECONDS": "300", "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    os.environ.update(env)
    subprocess.run([sys.executable, "-m", "duban", "init"], env=env, check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "duban", "directory", "load"], env=env, check=True, capture_output=True)
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    worker = None
    try:
        from duban.orchestrator import server_healthy

        while not server_healthy(api):
            time.sleep(0.5)
        worker = subprocess.Popen([sys.executable, "-m", "duban", "serve", "--role", "worker", "--no-server"],
                                  env=env, cwd=ROOT, stdout=open(work / "worker.log", "wb"),
                                  stderr=subprocess.STDOUT, start_new_session=True)
        from bench.lifecycle_party import dispatch, play, wait_registered

        wait_registered()
        time.sleep(3)  # let start-up settle before measuring
        before = (cpu_seconds(server.pid), cpu_seconds(worker.pid), own_cpu(), time.monotonic())
        ids = dispatch(args.orders)
        runs = play(ids)
        after = (cpu_seconds(server.pid), cpu_seconds(worker.pid), own_cpu(), time.monotonic())
    finally:
        for process in (worker, server):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(60)
    n = args.orders
    server_s, worker_s, party_s, wall = (a - b for a, b in zip(after, before))
    print(f"orders: {n}, lifecycle flow runs (starts and resumes): {runs}, wall {wall:.1f} s")
    print(f"CPU per dispatched order: {(server_s + worker_s) / n:.2f} s orchestration "
          f"(Prefect server {server_s / n:.2f} s, Duban executor {worker_s / n:.2f} s), "
          f"plus {party_s / n:.2f} s for the simulated people acting through Duban's service functions")
    print(f"throughput: {n / wall * 3600:.0f} orders/hour end to end on this machine")


if __name__ == "__main__":
    main()
