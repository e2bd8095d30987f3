"""`duban sweep`, `duban scorecard` and `duban case` as a supervisor types them."""

import csv
import io
import json

from typer.testing import CliRunner

from duban.cli import app
from tests.tasks.supervision_kit import dispatched, local, order

runner = CliRunner()


def test_sweep_scorecard_and_case_commands(directory):
    order_id = dispatched(local(2021, 3, 1, 9, 0))
    bad = runner.invoke(app, ["sweep", "--now", "2021-03-05T10:00"])
    assert bad.exit_code == 1 and "no time zone" in bad.output
    swept = runner.invoke(app, ["sweep", "--now", "2021-03-05T10:00+08:00"])
    assert swept.exit_code == 0, swept.output
    assert "'warning': 1" in swept.output and "'notice': 1" in swept.output

    as_json = runner.invoke(app, ["scorecard", "--period", "2021-03", "--format", "json",
                                  "--as-of", "2021-03-05T10:00+08:00"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["period"] == "2021-03"
    [housing] = data["units"]
    assert (housing["unit_code"], housing["dispatched"], housing["response_rate"], housing["cases_opened"]) == (
        "housing", 1, 0.0, 1)
    as_csv = runner.invoke(app, ["scorecard", "--period", "2021-03", "--format", "csv",
                                 "--as-of", "2021-03-05T10:00+08:00"])
    rows = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert rows[0]["unit_code"] == "housing" and rows[0]["buck_passing_index"] == "0.05"
    assert runner.invoke(app, ["scorecard", "--period", "2021-3x"]).exit_code == 1
    assert "housing" in runner.invoke(app, ["scorecard", "--period", "2021-03", "--as-of",
                                            "2021-03-05T10:00+08:00"]).output

    listed = runner.invoke(app, ["case", "list", "--order", order(order_id).number])
    assert listed.exit_code == 0 and "housing" in listed.output
    refused = runner.invoke(app, ["case", "decide", "1", "--decision", "close", "--actor", "wang"])
    assert refused.exit_code == 1 and "finding" in refused.output
    closed = runner.invoke(app, ["case", "decide", "1", "--decision", "close", "--actor", "wang",
                                 "--finding", "已约谈单位负责人"])
    assert closed.exit_code == 0, closed.output
    assert json.loads(closed.output)["status"] == "closed"
