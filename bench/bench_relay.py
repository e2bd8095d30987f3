"""Relay benchmark: notices per second from the outbox to the local SMTP sink (`duban mailsink`).

    .venv/bin/python -m bench.bench_relay [--notices 3000] [--batch 200] [--db-url URL]

A fresh SQLite database in a temporary directory (or the PostgreSQL database given, which is emptied
first) gets dispatched orders through the real transition path; their dispatch notice is then cloned
into `--notices` outbox rows, each with its own Message-ID. The relay, in this process, renders each
notice with its two signed links and sends it to the sink, a separate process that writes every mail
to a maildir. Timed: from the first claim to the last row marked sent, in wall-clock time and in the
relay process's and the sink's CPU time (figures that depend little on what else the machine runs), with
the load average before and after. Counted: the mails in the maildir.
"""

import argparse
import json
import mailbox
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _cpu(pid: int) -> float:
    """CPU seconds (user and system) used so far by one process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _prepare(url: str, notices: int, orders: int) -> None:
    """Migrate, load the demo directory, dispatch `orders` orders, and fill the outbox with `notices` rows."""
    from sqlalchemy import insert, select, text

    from duban.db import get_engine, reset_engines, session_scope
    from duban.schema import migrate
    from models import Notification
    from models.enums import ActorKind
    from models.lifecycle import Action
    from tasks.directory import load_directory
    from tasks.orders import create_order
    from tasks.transitions import Actor, transition

    os.environ["DUBAN_DATABASE_URL"] = url
    reset_engines()
    if url.startswith("postgresql"):
        with get_engine().begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    migrate()
    with session_scope() as session:
        load_directory(session=session, path=ROOT / "duban" / "data" / "directory.yaml")
        for n in range(orders):
            order = create_order(session=session, channel="hotline", item_type="complaint",
                                 content=f"夜间施工噪音扰民，第{n}号",
                                 category_code="city_appearance_life_services.noise",
                                 citizen_name="张三", citizen_phone="13812341234")
            transition(order_id=order.id, action=Action.DISPATCH, actor=Actor(ActorKind.STAFF, "bench"),
                       session=session)
    with session_scope() as session:
        templates = list(session.scalars(select(Notification).where(Notification.kind == "dispatch")))
        session.execute(Notification.__table__.update().values(send_state="sent"))
        rows = []
        for i in range(notices):
            t = templates[i % len(templates)]
            rows.append({"kind": t.kind, "work_order_id": t.work_order_id, "unit_id": t.unit_id,
                         "recipients": t.recipients, "context": t.context, "delivered_to": [],
                         "message_id": f"<bench.{i}.{t.message_id.strip('<>')}>", "created_at": t.created_at,
                         "send_state": "pending", "attempts": 0, "next_attempt_at": t.created_at, "last_error": ""})
        session.execute(insert(Notification), rows)


def bench_relay(notices: int, batch: int, url: str | None) -> dict:
    """Notices per second from claim to sent, through yagmail's SMTP connection, into the maildir sink."""
    folder = Path(tempfile.mkdtemp(prefix="duban-bench-relay-"))
    url = url or f"sqlite:///{folder / 'bench.db'}"
    port = _free_port()
    os.environ.update({"DUBAN_SMTP_PORT": str(port), "DUBAN_MAIL_SINK_DIR": str(folder / "mail"),
                       "DUBAN_RELAY_BATCH_SIZE": str(batch)})
    _prepare(url, notices, orders=min(200, notices))
    sink = subprocess.Popen([sys.executable, "-m", "duban", "mailsink", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not _listening(port):
            if time.monotonic() > deadline:
                raise TimeoutError("the mail sink did not start")
            time.sleep(0.1)
        from tasks.relay import relay_once

        sent = failed = passes = 0
        load_before = _load_average()
        started, cpu_started, sink_started = time.perf_counter(), time.process_time(), _cpu(sink.pid)
        while (report := relay_once(limit=batch)).claimed:
            sent, failed, passes = sent + report.sent, failed + report.failed + report.retried, passes + 1
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        sink_cpu = _cpu(sink.pid) - sink_started
        deadline = time.monotonic() + 30
        while len(mailbox.Maildir(folder / "mail")) < sent and time.monotonic() < deadline:
            time.sleep(0.1)
        stored = len(mailbox.Maildir(folder / "mail"))
    finally:
        os.killpg(sink.pid, signal.SIGTERM)
        sink.wait(30)
    return {"database": url.split(":", 1)[0], "notices": notices, "batch": batch, "passes": passes, "sent": sent,
            "not_sent": failed, "stored_by_sink": stored, "seconds": round(elapsed, 2),
            "notices_per_s": round(sent / elapsed, 1), "relay_cpu_seconds": round(cpu, 2),
            "relay_cpu_ms_per_notice": round(cpu / sent * 1000, 2), "notices_per_relay_cpu_s": round(sent / cpu, 1),
            "sink_cpu_seconds": round(sink_cpu, 2), "sink_cpu_ms_per_notice": round(sink_cpu / sent * 1000, 2),
            "load_average_before": load_before, "load_average_after": _load_average()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notices", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--db-url", help="a PostgreSQL database to use (emptied first); default: a temporary SQLite")
    args = parser.parse_args()
    print(json.dumps(bench_relay(args.notices, args.batch, args.db_url), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
