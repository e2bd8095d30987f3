"""transition() cost per call: on its own, many in one caller's session, and held by a batch (tasks.held).

    .venv/bin/python -m bench.bench_transition [--orders 2000] [--db-url URL]

Each mode drives the same orders through dispatch, sign, reply, approve_reply and close (five
transitions each, with a return visit), and reports wall and CPU time per transition. Only
foundation APIs are used for the first two modes, so the script measures older code too.
"""

import argparse
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2021, 3, 15, 1, 0, tzinfo=UTC)


def _setup(url: str, orders: int) -> list[int]:
    os.environ["DUBAN_DATABASE_URL"] = url
    import models
    from duban.db import get_engine, reset_engines, session_scope
    from tasks.directory import load_directory
    from tasks.orders import create_order

    reset_engines()
    engine = get_engine(url)
    models.Base.metadata.drop_all(engine)
    models.Base.metadata.create_all(engine)
    with session_scope() as session:
        load_directory(session=session, path=ROOT / "duban" / "data" / "directory.yaml")
    ids = []
    with session_scope() as session:
        for i in range(orders):
            order = create_order(session=session, channel="hotline", item_type="complaint", content="噪音扰民",
                                 category_code="city_appearance_life_services.noise", at=T0 + timedelta(seconds=i))
            ids.append(order.id)
    return ids


def _steps(unit_id: int):
    from models.enums import ActorKind
    from tasks.transitions import Actor

    unit = Actor(ActorKind.UNIT, "ecology_environment", unit_id)
    staff, supervisor = Actor(ActorKind.STAFF, "desk-01"), Actor(ActorKind.SUPERVISOR, "office-1")
    return [
        ("dispatch", staff, {"unit_code": "ecology_environment"}),
        ("sign", unit, {}),
        ("reply", unit, {"text": "已处理", "contacted": True, "solved": True}),
        ("approve_reply", supervisor, {}),
        ("close", staff, {"satisfaction": "satisfied", "contacted": True, "resolved": True}),
    ]


def run(mode: str, url: str, orders: int) -> dict[str, float]:
    """Time the five transitions of every order in one mode."""
    ids = _setup(url, orders)
    from sqlalchemy import select

    from duban.db import session_scope
    from models.directory import Unit
    from tasks.transitions import transition

    with session_scope() as session:
        unit_id = session.scalar(select(Unit.id).where(Unit.code == "ecology_environment"))
    steps = _steps(unit_id)
    wall, cpu = time.perf_counter(), time.process_time()
    if mode == "single":
        for k, (action, actor, payload) in enumerate(steps):
            for i, order_id in enumerate(ids):
                transition(order_id=order_id, action=action, actor=actor, payload=payload,
                           at=T0 + timedelta(hours=k + 1, seconds=i))
    else:
        with session_scope() as session:
            if mode == "held":
                from tasks import held

                held.hold_orders(session, ids)
            for k, (action, actor, payload) in enumerate(steps):
                for i, order_id in enumerate(ids):
                    transition(order_id=order_id, action=action, actor=actor, payload=payload,
                               at=T0 + timedelta(hours=k + 1, seconds=i), session=session)
                if mode == "held":
                    held.flush(session)
    n = len(ids) * len(steps)
    return {"transitions": n, "wall_us": (time.perf_counter() - wall) / n * 1e6,
            "cpu_us": (time.process_time() - cpu) / n * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--db-url", default=None, help="default: a fresh SQLite file in a temporary directory")
    parser.add_argument("--modes", default="single,session,held")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db_url or f"sqlite:///{tmp}/bench.db"
        print(f"database {url.split('@')[-1]}, {args.orders} orders x 5 transitions, load {os.getloadavg()[0]:.1f}")
        for mode in args.modes.split(","):
            try:
                result = run(mode, url, args.orders)
            except ModuleNotFoundError as exc:
                print(f"{mode:8s} not available in this code ({exc.name})")
                continue
            print(f"{mode:8s} {result['transitions']:7d} transitions  {result['wall_us']:7.0f} us wall  "
                  f"{result['cpu_us']:7.0f} us CPU per transition")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
