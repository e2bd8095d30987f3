"""The intake commands as an admin runs them, on a database `duban init` migrated: channels, files, the KB."""

import json
import subprocess
import sys

import yaml
from sqlalchemy import create_engine, inspect
from typer.testing import CliRunner

from duban.cli import app
from duban.db import reset_engines, session_scope
from tasks.directory import load_directory
from tests.intake_helpers import ARTICLES, ITEM, ROOT, client


def test_channel_file_and_knowledge_base_commands_on_a_fresh_database(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("DUBAN_DATABASE_URL", url)
    init = subprocess.run([sys.executable, "-m", "duban", "init"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert init.returncode == 0, init.stderr
    engine = create_engine(url)
    tables = set(inspect(engine).get_table_names())
    assert {"merge_links", "kb_gaps", "kb_reviews", "kb_reminders", "hot_spot_alerts", "intake_tokens",
            "kb_articles_fts"} <= tables
    engine.dispose()
    reset_engines()
    with session_scope() as session:
        load_directory(session=session, path=ROOT / "duban" / "data" / "directory.yaml")
    cli = CliRunner()

    added = cli.invoke(app, ["channel", "add", "weibo"])
    assert added.exit_code == 0, added.output
    key = added.output.strip().splitlines()[-1]
    assert key.startswith("dbk_") and len(key) > 40
    assert client().post("/api/v1/items", json=ITEM, headers={"X-API-Key": key}).status_code == 201
    assert cli.invoke(app, ["channel", "add", "weibo"]).exit_code == 1
    unknown_kind = cli.invoke(app, ["channel", "add", "tianyuan-app"])
    assert unknown_kind.exit_code == 1 and "--channel" in unknown_kind.output
    assert cli.invoke(app, ["channel", "list"]).output.split()[:3] == ["weibo", "weibo", "live"]

    items = tmp_path / "weibo.jsonl"
    items.write_text("\n".join([json.dumps({**ITEM, "channel_ref": "W-1"}, ensure_ascii=False),
                                json.dumps({**ITEM, "channel_ref": "W-2", "citizen_phone": "12"}),
                                json.dumps({**ITEM, "channel_ref": "W-3"}, ensure_ascii=False)]), encoding="utf-8")
    errors = tmp_path / "errors.csv"
    first = cli.invoke(app, ["intake", str(items), "--channel", "weibo", "--errors", str(errors)])
    assert first.exit_code == 1
    assert "3 lines, 2 registered, 0 already registered, 1 refused" in first.output
    assert "line 2: citizen_phone:" in first.output
    assert errors.read_text(encoding="utf-8").splitlines()[1].startswith("2,citizen_phone,")
    again = cli.invoke(app, ["intake", str(items), "--channel", "weibo"])
    assert "0 registered, 2 already registered" in again.output

    articles = tmp_path / "kb.yaml"
    articles.write_text(yaml.safe_dump({"articles": [{**a, "review_by": "2021-12-31"} for a in ARTICLES]},
                                       allow_unicode=True), encoding="utf-8")
    imported = cli.invoke(app, ["kb", "import", str(articles)])
    assert imported.exit_code == 0 and "4 created" in imported.output, imported.output
    found = cli.invoke(app, ["kb", "search", "请问社保卡丢了怎么补办"])
    assert found.output.splitlines()[0].split()[1] == "KB-HR-001"
    unknown = cli.invoke(app, ["kb", "review", "KB-NOPE", "--by", "hrss-zhang"])
    assert unknown.exit_code == 1 and "no knowledge-base article 'KB-NOPE'" in unknown.output

    assert cli.invoke(app, ["channel", "revoke", "weibo"]).exit_code == 0
    assert client().post("/api/v1/items", json=ITEM, headers={"X-API-Key": key}).status_code == 403
    assert cli.invoke(app, ["intake", str(items), "--channel", "weibo"]).exit_code == 1

