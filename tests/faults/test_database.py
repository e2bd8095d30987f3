"""The database restarting under load (PostgreSQL) or locked by another writer (SQLite), behind a running portal."""

import sqlite3
import threading
import time
from collections import Counter

import httpx
import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from duban.db import session_scope
from models.records import Event
from models.work_order import WorkOrder
from tasks.channels import add_channel
from tests.faults import invariants as inv
from tests.faults.processes import Portal, terminate
from tests.faults.test_portal_kill import _link, _signed, _status
from tests.notifications.smtp import use_settings
from tests.tasks.supervision_kit import dispatched, local

CLIENTS, ITEMS_EACH, SIGNS, OPEN311 = 4, 12, 8, 6
ITEM = {"content": "芦淞区建宁路某小区楼下烧烤店油烟很大，每晚熏得开不了窗", "item_type": "complaint",
        "category": "city_appearance_life_services.cooking_fumes", "citizen_name": "张三",
        "citizen_phone": "13812345678"}


class Outages(threading.Thread):
    """Takes the database away again and again until stopped: connections cut and refused, or the write lock held."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.done, self.count = url, threading.Event(), 0
        self.taken = threading.Event()  # set while the first outage is in place: the load starts into it

    def run(self) -> None:
        while not self.done.is_set():
            if self.url.startswith("sqlite"):
                holder = sqlite3.connect(make_url(self.url).database, isolation_level=None)
                holder.execute("BEGIN IMMEDIATE")
                self.taken.set()
                time.sleep(0.8)  # longer than the portal's busy timeout
                holder.execute("ROLLBACK")
                holder.close()
            else:
                # As a restart does: every open connection cut, new ones refused for half a second.
                # Cutting connections alone is missed by a load whose requests fall between the cuts:
                # the pool replaces an idle connection it finds dead before using it.
                name = make_url(self.url).database
                admin = create_engine(make_url(self.url).set(database="postgres"), isolation_level="AUTOCOMMIT")
                with admin.connect() as conn:
                    conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                    try:
                        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                                     {"name": name})
                        self.taken.set()
                        time.sleep(0.5)
                    finally:
                        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
                admin.dispose()
            self.count += 1
            self.taken.set()
            self.done.wait(0.4)


@pytest.fixture
def portal(directory, tmp_path, monkeypatch):
    use_settings(monkeypatch, sqlite_busy_timeout_ms="200")
    served = Portal(tmp_path, monkeypatch)
    served.start()
    yield served
    terminate(served.process)


def _until_done(send, accept) -> list[str]:
    """Send until accepted; the refusals met on the way (status and what they said)."""
    refusals = []
    for _ in range(200):
        try:
            answer = send()
        except httpx.HTTPError as exc:
            refusals.append(type(exc).__name__)
        else:
            if accept(answer):
                return refusals
            kind = answer.headers.get("content-type", "").split(";")[0]
            refusals.append(f"{answer.status_code} Retry-After {answer.headers.get('retry-after', '-')} {kind}")
        time.sleep(0.05)
    raise AssertionError(f"never accepted: {refusals[-3:]}")


def test_database_restarting_or_locked_under_load_gives_clear_retries_and_loses_or_doubles_nothing(
        db_url, portal, fault):
    with session_scope() as session:
        _, key = add_channel(session=session, name="weibo")
        _, open311_key = add_channel(session=session, name="open311")
    orders = [dispatched(local(2021, 3, 15, 9, 0)) for _ in range(SIGNS)]
    links = [_link(o) for o in orders]
    before, numbers = inv.counts(), inv.numbers()
    fault.before(before)
    refusals: list[str] = []

    def channel(n: int) -> None:
        with httpx.Client(base_url=portal.base, timeout=30, headers={"X-API-Key": key}) as http:
            for i in range(ITEMS_EACH):
                body = {**ITEM, "channel_ref": f"C{n}-{i}"}
                refusals.extend(_until_done(lambda: http.post("/api/v1/items", json=body),
                                            lambda a: a.status_code in {200, 201}))

    def unit(order_id: int, token: str, number: str) -> None:
        with httpx.Client(base_url=portal.base, timeout=30) as http:
            refusals.extend(_until_done(lambda: http.post(f"/u/{token}/orders/{number}/sign"),
                                        lambda a: a.status_code == 303 or (a.status_code == 410
                                                                           and _status(order_id) == "handling")))

    def open311_client() -> None:
        with httpx.Client(base_url=portal.base, timeout=30) as http:
            for i in range(OPEN311):
                form = {"api_key": open311_key, "service_code": ITEM["category"], "description": ITEM["content"],
                        "address_string": "芦淞区建宁路88号"}
                refusals.extend(_until_done(
                    lambda: http.post("/open311/v2/requests.json", data=form, headers={"Idempotency-Key": f"O-{i}"}),
                    lambda a: a.status_code == 200))

    outages = Outages(db_url)
    workers = [threading.Thread(target=channel, args=(n,)) for n in range(CLIENTS)]
    workers.append(threading.Thread(target=open311_client))
    workers += [threading.Thread(target=unit, args=(o, *link)) for o, link in zip(orders, links, strict=True)]
    outages.start()
    assert outages.taken.wait(10), "the first outage did not take hold"
    for w in workers:
        w.start()
    for w in workers:
        w.join(300)
    outages.done.set()
    outages.join(10)
    what = ("connections cut and refused for 0.5 s" if db_url.startswith("postgresql")
            else "write lock held 0.8 s by another writer")
    fault.injected(f"{outages.count} database outages under load ({what}) while {CLIENTS} channels submitted "
                   f"{CLIENTS * ITEMS_EACH} items, an Open311 client {OPEN311} requests, and {SIGNS} units signed")
    fault.say("refused", ", ".join(f"{n} x {r}" for r, n in Counter(refusals).most_common()))
    assert outages.count >= 1 and refusals, "the database was taken away while requests were under way"
    unclear = [r for r in refusals if not r.startswith("503 Retry-After 1 ")]
    assert not unclear, f"refusals that are not a clear 503 with Retry-After: {unclear[:3]}"

    after = inv.counts()
    fault.after(after)
    with session_scope(readonly=True) as session:
        refs = Counter(session.scalars(select(WorkOrder.channel_ref).where(WorkOrder.channel_ref.is_not(None))))
        received = session.scalar(select(func.count()).select_from(Event).where(Event.name == "work_order_received"))
    expected = [f"weibo:C{n}-{i}" for n in range(CLIENTS) for i in range(ITEMS_EACH)]
    assert Counter({r: n for r, n in refs.items() if r.startswith("weibo:")}) == Counter(expected)
    assert sum(n for r, n in refs.items() if r.startswith("open311:")) == OPEN311
    items = CLIENTS * ITEMS_EACH + OPEN311
    assert after.orders == before.orders + items == received, "every order with its first event"
    assert all(_signed(o) == 1 for o in orders)
    fault.checked(inv.no_order_lost(numbers), inv.no_transition_twice(),
                  f"no lost or doubled update: {items} items each registered once with its event, "
                  f"{after.orders} distinct numbers, {SIGNS} orders signed once each")
