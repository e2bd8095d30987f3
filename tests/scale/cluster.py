"""docs/deploy.md's deployment on this machine (its settings and commands, local ports, databases of its own),
and the embedded default beside it; each process's CPU read from /proc."""

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import create_engine, make_url, text

from tests.prefect_fixtures import free_port

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "deploy.md"
BIN = Path(sys.executable).parent
TICK = os.sysconf("SC_CLK_TCK")
PG_ADMIN = os.environ.get("DUBAN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DUBAN_ENV, PREFECT_ENV = "/etc/duban/duban.env", "/etc/prefect/prefect.env"
# What differs on this machine from the document's example: addresses, ports, secrets, databases,
# plain HTTP (so no Secure cookies), and smaller pools (the local PostgreSQL is shared with other work).
LOCAL = {
    DUBAN_ENV: {"DUBAN_DATABASE_URL", "PREFECT_API_URL", "PREFECT_API_AUTH_STRING", "DUBAN_PREFECT_AUTH_STRING",
                "PREFECT_HOME", "DUBAN_SECRET_KEY", "DUBAN_PORTAL_BASE_URL", "DUBAN_PORTAL_HOST", "DUBAN_PORTAL_PORT",
                "DUBAN_GATEWAY_HOST", "DUBAN_GATEWAY_PORT", "DUBAN_GATEWAY_SECURE_COOKIES", "DUBAN_UPLOAD_DIR",
                "DUBAN_SMTP_HOST", "DUBAN_SMTP_PORT", "DUBAN_SMTP_USER", "DUBAN_SMTP_PASSWORD", "DUBAN_SMTP_STARTTLS",
                "DUBAN_DB_POOL_SIZE", "DUBAN_DB_MAX_OVERFLOW"},
    PREFECT_ENV: {"PREFECT_API_DATABASE_CONNECTION_URL", "PREFECT_SERVER_API_HOST", "PREFECT_SERVER_API_PORT",
                  "PREFECT_API_URL", "PREFECT_SERVER_API_AUTH_STRING", "PREFECT_HOME"},
}
DECIDER, DECIDER_PASSWORD = "wang.fang", "scale-test-password"


def doc_blocks() -> list[tuple[str, str]]:
    """(info string, body) of every fenced block of docs/deploy.md."""
    return [(m[1].strip(), m[2]) for m in re.finditer(r"^```([^\n]*)\n(.*?)^```", DOC.read_text(encoding="utf-8"),
                                                      re.M | re.S)]


def doc_env(title: str) -> dict[str, str]:
    """The KEY=value lines of the settings block titled `title`."""
    [body] = [body for info, body in doc_blocks() if f'title="{title}"' in info]
    return dict(line.split("=", 1) for line in body.splitlines() if line and not line.startswith("#"))


def doc_commands() -> set[str]:
    """Every command line of the document's shell blocks, without its comment."""
    return {line.split("  #")[0].strip() for info, body in doc_blocks() if info.split(" ")[0] == "sh"
            for line in body.splitlines() if line.strip() and not line.startswith("#")}


def tree_cpu(pid: int) -> float:
    """User and system CPU seconds of a process and all its descendants (and the children they reaped)."""
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
    family, total, changed = {pid}, 0, True
    while changed:
        changed = False
        for p, fields in stats.items():
            if p not in family and int(fields[1]) in family:
                family.add(p)
                changed = True
    for p in family & stats.keys():
        total += sum(int(v) for v in stats[p][11:15])
    return total / TICK


class PostgresCpu:
    """CPU of the PostgreSQL backends serving some databases, sampled while they live (a backend's CPU
    is gone from /proc once it exits, so short-lived ones are missed: a lower bound)."""

    def __init__(self, databases: list[str]) -> None:
        self.databases, self.seen, self.base = databases, {}, {}
        self.engine = create_engine(PG_ADMIN)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        with self.engine.connect() as conn:
            pids = conn.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = ANY(:names)"),
                                {"names": self.databases}).all()
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            self.seen[pid] = sum(int(v) for v in fields[11:13]) / TICK

    def _loop(self) -> None:
        while not self.stopped.wait(1.0):
            self._sample()

    def start(self) -> None:
        self._sample()
        self.base = dict(self.seen)
        self.thread.start()

    def total(self) -> float:
        self._sample()
        return sum(v - self.base.get(pid, 0) for pid, v in self.seen.items())

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        self.engine.dispose()


class Deployment:
    """Processes started from commands, each with its own log; stopped with SIGTERM, as systemd would."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.processes: dict[str, subprocess.Popen] = {}
        self.env: dict[str, str] = {}
        self.portals: list[str] = []
        self.gateways: list[str] = []
        self.api = ""
        self.db_url = ""
        self.pg_cpu: PostgresCpu | None = None
        self.began = time.monotonic()
        self.milestones: dict[str, float] = {}

    def reached(self, milestone: str) -> None:
        """Remember when a step of the start-up ended (seconds since the deployment began)."""
        self.milestones[milestone] = round(time.monotonic() - self.began, 1)

    def command(self, line: str) -> list[str]:
        argv = shlex.split(line)
        return [str(BIN / argv[0]), *argv[1:]]

    def run(self, line: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(self.command(line), cwd=ROOT, env={**os.environ, **(env or self.env)},
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"{line!r} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def start(self, name: str, line: str, env: dict[str, str] | None = None) -> None:
        with open(self.log_path(name), "wb") as log:
            self.processes[name] = subprocess.Popen(
                self.command(line), cwd=ROOT, env={**os.environ, **self.env, **(env or {})}, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)

    def log_path(self, name: str) -> Path:
        return self.work / f"{name}.log"

    def log(self, name: str) -> str:
        return self.log_path(name).read_text(encoding="utf-8", errors="replace")

    def wait(self, predicate, what: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [n for n, p in self.processes.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} exited while waiting for {what}:\n" +
                                   "\n".join(self.log(n)[-3000:] for n in dead))
            if predicate():
                return
            time.sleep(0.3)
        raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each process with its children; PostgreSQL's backends as one more."""
        out = {name: tree_cpu(p.pid) for name, p in self.processes.items()}
        if self.pg_cpu is not None:
            out["postgresql"] = self.pg_cpu.total()
        return out

    def stop(self) -> None:
        family = {name: self._descendants(p.pid) for name, p in self.processes.items()}
        # Duban's processes first, the Prefect server (started first) last: they log to it while stopping.
        order = list(reversed(self.processes.items()))
        for _, process in order[:-1]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for i, (name, process) in enumerate(order):
            if i == len(order) - 1 and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(90)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
            self.reached(f"{name} stopped")
            for pid in family[name]:  # children `duban serve` started in sessions of their own
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.pg_cpu is not None:
            self.pg_cpu.stop()

    @staticmethod
    def _descendants(pid: int) -> set[int]:
        out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
        parent = {int(a): int(b) for a, b in (line.split() for line in out.splitlines())}
        family, changed = {pid}, True
        while changed:
            changed = False
            for child, up in parent.items():
                if up in family and child not in family:
                    family.add(child)
                    changed = True
        return family - {pid}

    def _healthy(self, url: str) -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_web(self) -> None:
        self.wait(lambda: all(self._healthy(f"{p}/healthz") for p in self.portals), "the portals answering")
        self.wait(lambda: all(self._healthy(f"{g}/login") for g in self.gateways), "the gateways answering")

    def wait_deployments(self) -> None:
        self.wait(lambda: "executing" in "".join(self.log(n) for n in self.processes if "worker" in n or n == "all"),
                  "the workers registering the deployments")

    def add_people(self) -> str:
        """The supervisor's account and the intake channel; returns the channel's API key."""
        self.run(f"duban user add {DECIDER} --role decider --password {DECIDER_PASSWORD}")
        return self.run("duban channel add hotline").strip().splitlines()[-1]


class Scaled(Deployment):
    """docs/deploy.md on one machine: Prefect on PostgreSQL with auth and CSRF, n workers, webs, relays, 2 clocks."""

    def __init__(self, work: Path, *, smtp_port: int, workers: int = 2, webs: int = 2, relays: int = 2,
                 pool: tuple[int, int] = (2, 3)) -> None:
        super().__init__(work)
        self.counts = {"worker": workers, "web": webs, "relay": relays, "clock": 2}
        tag = f"scale_{uuid.uuid4().hex[:8]}"
        self.databases = [f"{tag}_duban", f"{tag}_prefect"]
        admin = make_url(PG_ADMIN)
        self.db_url = admin.set(database=self.databases[0]).render_as_string(hide_password=False)
        prefect_db = admin.set(drivername="postgresql+asyncpg", database=self.databases[1])
        port, auth = free_port(), f"duban:{uuid.uuid4().hex}"
        self.api = f"http://127.0.0.1:{port}/api"
        self.auth = auth
        self.ports = [(free_port(), free_port()) for _ in range(webs)]
        self.portals = [f"http://127.0.0.1:{p}" for p, _ in self.ports]
        self.gateways = [f"http://127.0.0.1:{g}" for _, g in self.ports]
        local_prefect = {
            "PREFECT_API_DATABASE_CONNECTION_URL": prefect_db.render_as_string(hide_password=False),
            "PREFECT_SERVER_API_HOST": "127.0.0.1", "PREFECT_SERVER_API_PORT": str(port), "PREFECT_API_URL": self.api,
            "PREFECT_SERVER_API_AUTH_STRING": auth, "PREFECT_HOME": str(work / "prefect-server")}
        local_duban = {
            "DUBAN_DATABASE_URL": self.db_url, "PREFECT_API_URL": self.api, "PREFECT_API_AUTH_STRING": auth,
            "DUBAN_PREFECT_AUTH_STRING": auth, "PREFECT_HOME": str(work / "prefect-client"),
            "DUBAN_SECRET_KEY": uuid.uuid4().hex, "DUBAN_PORTAL_BASE_URL": self.portals[0],
            "DUBAN_PORTAL_HOST": "127.0.0.1", "DUBAN_PORTAL_PORT": str(self.ports[0][0]),
            "DUBAN_GATEWAY_HOST": "127.0.0.1", "DUBAN_GATEWAY_PORT": str(self.ports[0][1]),
            "DUBAN_GATEWAY_SECURE_COOKIES": "false", "DUBAN_UPLOAD_DIR": str(work / "uploads"),
            "DUBAN_SMTP_HOST": "127.0.0.1", "DUBAN_SMTP_PORT": str(smtp_port),
            "DUBAN_SMTP_USER": "duban@example.gov.cn", "DUBAN_SMTP_PASSWORD": "", "DUBAN_SMTP_STARTTLS": "false",
            "DUBAN_DB_POOL_SIZE": str(pool[0]), "DUBAN_DB_MAX_OVERFLOW": str(pool[1])}
        self.prefect_env = self._settings(PREFECT_ENV, local_prefect)
        self.env = self._settings(DUBAN_ENV, local_duban)

    @staticmethod
    def _settings(title: str, local: dict[str, str]) -> dict[str, str]:
        documented = doc_env(title)
        missing = LOCAL[title] - documented.keys()
        assert not missing, f"docs/deploy.md's {title} does not give {sorted(missing)}"
        assert set(local) == LOCAL[title]
        return {**documented, **local}

    def command(self, line: str) -> list[str]:
        assert line in doc_commands() or line.startswith("duban user add"), f"docs/deploy.md does not give {line!r}"
        return super().command(line)

    def up(self) -> None:
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in self.databases:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        self.pg_cpu = PostgresCpu(self.databases)
        self.start("prefect-server", "prefect server start", self.prefect_env)
        self.wait(lambda: self._healthy(f"{self.api}/health"), "the Prefect server answering")
        self.reached("prefect server")
        for line in ("duban init", "duban directory load", "duban policy check"):
            self.run(line)
        self.reached("setup")
        assert f"duban user add {DECIDER} --role decider" in doc_commands()
        for i in range(1, self.counts["worker"] + 1):
            self.start(f"worker-{i}", "duban serve --role worker", {"DUBAN_WORKER_NAME": f"worker-{i}"})
        for i, (portal, gateway) in enumerate(self.ports, 1):
            self.start(f"web-{i}", "duban serve --role web",
                       {"DUBAN_PORTAL_PORT": str(portal), "DUBAN_GATEWAY_PORT": str(gateway)})
        for i in range(1, self.counts["relay"] + 1):
            self.start(f"relay-{i}", "duban serve --role relay")
        self.start("clock-a", "duban serve --role clock")
        self.wait(lambda: "clock active" in self.log("clock-a"), "the first clock taking the clock lock")
        self.start("clock-b", "duban serve --role clock")
        self.wait_deployments()
        self.wait_web()
        self.wait(lambda: "clock standing by" in self.log("clock-b"), "the second clock standing by")
        self.reached("every process ready")
        self.pg_cpu.start()

    def down(self) -> None:
        try:
            self.stop()
        finally:
            admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                for name in self.databases:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

    def sent_per_relay(self) -> dict[str, int]:
        """Notices each relay sent, from the lines `duban relay` prints per pass."""
        return {name: sum(int(n) for n in re.findall(r"relay: (\d+) sent", self.log(name)))
                for name in self.processes if name.startswith("relay-")}

    def runs_per_worker(self) -> dict[str, int]:
        """Flow runs each worker took (started or resumed), from its log."""
        return {name: len(re.findall(rf"worker {name} took flow run", self.log(name)))
                for name in self.processes if name.startswith("worker-")}


class Embedded(Deployment):
    """The embedded default: SQLite, one `duban serve` that starts its own Prefect server on SQLite."""

    def __init__(self, work: Path, *, smtp_port: int) -> None:
        super().__init__(work)
        portal, gateway, prefect = free_port(), free_port(), free_port()
        self.api = f"http://127.0.0.1:{prefect}/api"
        self.auth = ""
        self.db_url = f"sqlite:///{work / 'duban.db'}"
        self.portals, self.gateways = [f"http://127.0.0.1:{portal}"], [f"http://127.0.0.1:{gateway}"]
        self.env = {"DUBAN_DATABASE_URL": self.db_url, "PREFECT_API_URL": self.api,
                    "PREFECT_HOME": str(work / "prefect"), "DUBAN_PORTAL_BASE_URL": self.portals[0],
                    "DUBAN_PORTAL_PORT": str(portal), "DUBAN_GATEWAY_PORT": str(gateway),
                    "DUBAN_SMTP_HOST": "127.0.0.1", "DUBAN_SMTP_PORT": str(smtp_port),
                    "DUBAN_UPLOAD_DIR": str(work / "uploads")}

    def up(self) -> None:
        for line in ("duban init", "duban directory load"):
            self.run(line)
        self.start("all", "duban serve")
        self.wait_deployments()
        self.wait_web()
        self.reached("every process ready")

    def cpu(self) -> dict[str, float]:
        """The Prefect server `duban serve` started apart from the rest of it."""
        total = tree_cpu(self.processes["all"].pid)
        server = [pid for pid in self._descendants(self.processes["all"].pid)
                  if b"prefect\x00server\x00start" in _cmdline(pid)]
        prefect = sum(tree_cpu(pid) for pid in server)
        return {"prefect-server": prefect, "all": total - prefect}

    def down(self) -> None:
        self.stop()


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
