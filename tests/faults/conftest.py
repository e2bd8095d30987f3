"""Fault injection: each test says what it injected and which invariants held, with the counts before and after."""

from collections.abc import Iterator

import pytest

from tests.faults.invariants import Counts
from tests.notifications.smtp import ScriptedHandler, running_smtp

REPORTS: list["FaultReport"] = []


class FaultReport:
    """The lines a fault test prints as it goes (visible with -s) and in the session's summary."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lines: list[str] = []

    def say(self, kind: str, text: object) -> None:
        line = f"{kind + ':':10}{text}"
        self.lines.append(line)
        print(f"  {line}", flush=True)

    def injected(self, what: str) -> None:
        self.say("injected", what)

    def before(self, counts: Counts) -> None:
        self.say("before", counts)

    def after(self, counts: Counts) -> None:
        self.say("after", counts)

    def checked(self, *invariants: str) -> None:
        for invariant in invariants:
            self.say("checked", invariant)


@pytest.fixture
def fault(request) -> Iterator[FaultReport]:
    report = FaultReport(request.node.name)
    print(f"\n[fault] {report.name}", flush=True)
    yield report
    REPORTS.append(report)


def pytest_terminal_summary(terminalreporter) -> None:
    if not REPORTS:
        return
    terminalreporter.write_sep("=", "faults injected and invariants checked")
    for report in REPORTS:
        terminalreporter.write_line(report.name)
        for line in report.lines:
            terminalreporter.write_line(f"    {line}")


@pytest.fixture(autouse=True)
def _numbered(own_order_numbers) -> None:
    """Each fault test numbers its orders under a city code of its own (runs on the shared server)."""


@pytest.fixture
def smtp(directory, monkeypatch) -> Iterator[ScriptedHandler]:
    yield from running_smtp(monkeypatch)
