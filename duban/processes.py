"""Child processes of Duban's long-running commands: started so they end with their parent, stopped in order."""

import ctypes
import os
import signal
import subprocess

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child, before exec: take SIGINT and SIGTERM again (serve blocks them for its sigwait, and a
    blocked mask is inherited), and get SIGTERM when the process that started it dies, even by SIGKILL."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (AttributeError, OSError):
        pass  # no prctl here: serve's own shutdown still stops its children


def stop_child(process: subprocess.Popen, grace_s: float = 60) -> None:
    """SIGTERM a child's process group, and SIGKILL it if it has not ended within the grace period."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
