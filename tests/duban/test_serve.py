"""`duban serve` and the processes it starts."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_serve_killed_outright_takes_its_child_processes_with_it(tmp_path):
    env = {**os.environ, "DUBAN_DATABASE_URL": f"sqlite:///{tmp_path / 'd.db'}",
           "PREFECT_API_URL": "http://127.0.0.1:9/api", "DUBAN_SMTP_PORT": "9"}
    assert subprocess.run([sys.executable, "-m", "duban", "init"], env=env, cwd=ROOT, capture_output=True,
                          timeout=120).returncode == 0
    serve = subprocess.Popen([sys.executable, "-m", "duban", "serve", "--role", "relay", "--no-server"], env=env,
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (children := _children(serve.pid)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert children, "serve --role relay started no relay process"
        serve.send_signal(signal.SIGKILL)
        serve.wait(10)
        deadline = time.monotonic() + 20
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(pid) for pid in children), "the relay outlived the serve that started it"
    finally:
        serve.kill()
        for pid in _children(serve.pid):
            os.kill(pid, signal.SIGKILL)
