"""`cci model ...` through the command line: show, list, export, import, train."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from linkage.demo import write_delivery
from linkage.pseudonymise import LinkageKey, pseudonymise_file
from linkage.store import bulk, make_engine
from linkage.store.lookup_indexes import missing_lookup_indexes


def test_model_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "DEFER_MIN_ROWS", 100)  # the ingest is a large load
    url = f"sqlite:///{tmp_path / 'r.db'}"
    runner = CliRunner()
    assert runner.invoke(app, ["model", "show", "--database-url", url]).exit_code == 2
    write_delivery(300, tmp_path / "raw", seed=2)
    pseudonymise_file(
        LinkageKey(secret=bytes(32)), tmp_path / "raw" / "records.csv", tmp_path / "p.csv"
    )
    linked = runner.invoke(
        app,
        [
            "link",
            "-i",
            str(tmp_path / "p.csv"),
            "--database-url",
            url,
            "-o",
            str(tmp_path / "a.csv"),
        ],
    )
    assert linked.exit_code == 0, linked.output
    assert "default model shipped with the package" in linked.output
    # A first load: the ingest built the look-up indexes while the run scored its records.
    assert "ingested" in linked.output and "new records" in linked.output
    engine = make_engine(url)
    with engine.connect() as connection:
        assert missing_lookup_indexes(connection) == []
    engine.dispose()
    assert (tmp_path / "a.csv").read_text().startswith("source_system,record_id,cci\n")

    shown = runner.invoke(app, ["model", "show", "--database-url", url])
    assert shown.exit_code == 0 and "given_name" in shown.output and "m=" in shown.output
    exported = tmp_path / "model.json"
    assert (
        runner.invoke(
            app, ["model", "export", "-o", str(exported), "--database-url", url]
        ).exit_code
        == 0
    )
    assert json.loads(exported.read_text())["link_type"] == "dedupe_only"
    imported = runner.invoke(app, ["model", "import", str(exported), "--database-url", url])
    assert imported.exit_code == 0 and "v2" in imported.output
    trained = runner.invoke(app, ["model", "train", "--database-url", url])
    assert trained.exit_code == 0 and "model v3" in trained.output
    listing = runner.invoke(app, ["model", "list", "--database-url", url])
    assert "v3 (active)" in listing.output
    broken = tmp_path / "broken.json"
    broken.write_text("{}")
    assert (
        runner.invoke(app, ["model", "import", str(broken), "--database-url", url]).exit_code == 2
    )
