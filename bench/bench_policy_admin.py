"""Cost of an admin's policy change over the orders in flight, and of turning events into Prefect events.

1. N dispatched orders (half signed for): `policy diff` (the preview) and `policy apply --in-flight migrate`
   (recomputed deadlines and one event per order, one transaction).
2. Building the Prefect events for every row of the events table (what the publisher does before sending).

Run: .venv/bin/python -m bench.bench_policy_admin [--orders 1000]
SQLite in a temporary directory.
"""

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2021, 3, 15, 1, 0, tzinfo=UTC)
CATEGORIES = ["city_appearance_life_services.noise", "hr_social_security", "transportation.traffic_order",
              "housing_land.housing_fund", "emergency_management.fire_hazards"]
RULE = "    - when: {item_type: complaint}\n      handling: 3 working_days\n"
ANCHOR = "    - when: {item_type: praise}         # passing thanks on to a unit\n      handling: 10 working_days\n"


def _orders(n: int) -> None:
    from duban.db import session_scope
    from models.enums import ActorKind
    from models.lifecycle import Action
    from tasks.orders import create_order, active_lead
    from tasks.transitions import Actor, transition

    staff = Actor(ActorKind.STAFF, "bench")
    with session_scope() as session:
        for i in range(n):
            at = T0 + timedelta(minutes=i % 600)
            order = create_order(session=session, channel="hotline", item_type="complaint", content="bench",
                                 category_code=CATEGORIES[i % len(CATEGORIES)], district_code=None, at=at)
            session.flush()
            transition(order_id=order.id, action=Action.DISPATCH, actor=staff, at=at, session=session)
            if i % 2:
                lead = active_lead(session, order)
                transition(order_id=order.id, action=Action.SIGN, actor=Actor(ActorKind.UNIT, "u", lead.unit_id),
                           at=at + timedelta(minutes=5), session=session)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DUBAN_DATABASE_URL"] = f"sqlite:///{tmp}/bench.db"
        import models
        from duban.db import get_engine, session_scope
        from tasks.directory import load_directory
        from tasks.policy_admin import apply_policy, diff_policy
        from tasks.prefect_events import pending_events

        models.Base.metadata.create_all(get_engine())
        with session_scope() as session:
            load_directory(session=session, path=ROOT / "duban" / "data" / "directory.yaml")
        start = time.perf_counter()
        _orders(args.orders)
        print(f"created {args.orders} in-flight orders in {time.perf_counter() - start:.1f} s")
        text = (ROOT / "policy.yaml").read_text(encoding="utf-8").replace(ANCHOR, ANCHOR + RULE)
        at = T0 + timedelta(days=1)
        start = time.perf_counter()
        with session_scope(readonly=True) as session:
            diff = diff_policy(session=session, text=text, source="bench.yaml", at=at)
        print(f"diff: {time.perf_counter() - start:.2f} s for {diff.in_flight} orders, "
              f"{len(diff.moved)} deadlines moved")
        start = time.perf_counter()
        with session_scope() as session:
            applied = apply_policy(session=session, text=text, source="bench.yaml", reason="bench", by="bench",
                                   in_flight="migrate", at=at)
        print(f"apply --in-flight migrate: {time.perf_counter() - start:.2f} s for {applied.migrated} orders")
        start = time.perf_counter()
        events = pending_events(limit=1_000_000).events
        elapsed = time.perf_counter() - start
        print(f"prefect events built: {len(events)} in {elapsed:.2f} s ({len(events) / elapsed:,.0f}/s)")


if __name__ == "__main__":
    main()
