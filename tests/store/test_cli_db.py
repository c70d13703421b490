"""`cci db`, `cci ingest` and `cci sources` through the real command line app."""

from __future__ import annotations

import random
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from tests.store.pseudo_rows import pseudo_row, write_pseudo_csv

runner = CliRunner()


def test_db_upgrade_current_downgrade(sqlite_url: str) -> None:
    result = runner.invoke(app, ["db", "current", "--database-url", sqlite_url])
    assert result.exit_code == 0 and "empty" in result.output
    result = runner.invoke(app, ["db", "upgrade", "--database-url", sqlite_url])
    assert result.exit_code == 0 and "0001" in result.output
    result = runner.invoke(app, ["db", "current", "--database-url", sqlite_url])
    assert result.output.strip() == "0001"
    result = runner.invoke(app, ["db", "downgrade", "base", "--database-url", sqlite_url])
    assert result.exit_code == 0 and "base" in result.output


def test_ingest_refuses_a_foreign_key_id_with_exit_2(sqlite_url: str, tmp_path: Path) -> None:
    rng = random.Random(4)
    ours = write_pseudo_csv(tmp_path / "a.csv", [pseudo_row(rng, "health", "H1")])
    theirs = write_pseudo_csv(
        tmp_path / "b.csv", [pseudo_row(rng, "health", "H2", key_id="kforeign00000000")]
    )
    assert runner.invoke(app, ["ingest", str(ours), "--database-url", sqlite_url]).exit_code == 0
    result = runner.invoke(app, ["ingest", str(theirs), "--database-url", sqlite_url])
    assert result.exit_code == 2
    assert "kforeign00000000" in result.output and "Traceback" not in result.output
    listing = runner.invoke(app, ["sources", "list", "--database-url", sqlite_url])
    assert "1 records" in listing.output


def test_sources_add_and_list(sqlite_url: str) -> None:
    result = runner.invoke(
        app, ["sources", "add", "mis_leeds", "--kind", "education", "--database-url", sqlite_url]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["sources", "add", "x", "--kind", "police", "--database-url", sqlite_url]
    )
    assert result.exit_code == 2 and "police" in result.output
    listing = runner.invoke(app, ["sources", "list", "--database-url", sqlite_url])
    assert "mis_leeds" in listing.output and "education" in listing.output
    assert "x " not in listing.output


def test_every_command_has_help() -> None:
    for command in (["db", "upgrade"], ["db", "downgrade"], ["db", "current"], ["ingest"],
                    ["sources", "add"], ["sources", "list"]):  # fmt: skip
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0 and "--database-url" in result.output
