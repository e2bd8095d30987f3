"""docs/deploy.md's deployment on this machine carries orders through their whole lifecycle, shared by two workers.

Prefect on PostgreSQL with its auth string and CSRF protection on, Duban on PostgreSQL, two workers, two
web processes (portal and gateway), two relays, an active clock and a stand-by, each a process started
with the document's command and settings. Items arrive over the intake API; units act from the links in
the mail the relays delivered to a real SMTP server; supervisors and staff decide in the gateway.
DUBAN_SCALE_ORDERS sets the number of orders (bench/bench_scale.py runs thousands).
"""

import os

from tests.scale.cluster import Scaled
from tests.scale.party import SCENARIOS, Party, mail_server, talking_to

ORDERS = int(os.environ.get("DUBAN_SCALE_ORDERS", "15"))


def test_the_documented_deployment_takes_every_order_where_its_scenario_says(tmp_path):
    smtp, mailbox = mail_server()
    deployment = Scaled(tmp_path, smtp_port=smtp.port)
    try:
        deployment.up()
        key = deployment.add_people()
        with talking_to(deployment):
            party = Party(deployment, key, mailbox)
            party.play(ORDERS, timeout=600)
            deployment.reached("orders final")
            party.wait_mail_sent()
            summary = party.verify()
        shared, relays = deployment.runs_per_worker(), deployment.sent_per_relay()
        cpu = sum(deployment.cpu().values()) + sum(os.times()[:2])
        clocks = deployment.log("clock-a"), deployment.log("clock-b")
    finally:
        deployment.down()
        smtp.stop()
    print(f"\n{summary}; flow runs per worker: {shared}; notices per relay: {relays}; acts: {dict(party.acts)}; "
          f"at: {deployment.milestones}; CPU of every process and this one: {cpu:.0f} s")
    assert summary["orders"] == ORDERS
    assert {s.scenario for s in party.scripts.values()} == set(SCENARIOS) or ORDERS < len(SCENARIOS)
    assert sorted(shared) == ["worker-1", "worker-2"] and all(n > 0 for n in shared.values()), shared
    assert sum(shared.values()) >= summary["lifecycle_runs"]
    # Each notice is sent once, by one of the relays (or by the `relay` deployment's run every five minutes).
    assert 0 < sum(relays.values()) <= summary["notices"] and summary["duplicate_mails"] == 0, relays
    assert set(party.last_worker) <= {"worker-1", "worker-2"}, party.last_worker  # the label each run carries
    assert "clock active" in clocks[0] and "clock active" not in clocks[1] and "clock standing by" in clocks[1]
