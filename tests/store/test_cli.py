"""`cci db`, `cci ingest` and `cci sources` end to end through the command line."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from linkage.store import head_revision
from tests.store.pseudo_rows import pseudo_row, write_pseudo_csv

runner = CliRunner()


def cci(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_db_upgrade_current_downgrade(db_url: str) -> None:
    assert cci("db", "current", "--database-url", db_url) == (0, "empty (no schema)\n")
    code, output = cci("db", "upgrade", "--database-url", db_url)
    assert code == 0 and f"revision {head_revision()}" in output
    assert cci("db", "current", "--database-url", db_url) == (0, f"{head_revision()}\n")
    code, output = cci("db", "downgrade", "base", "--database-url", db_url)
    assert code == 0 and "base" in output
    assert cci("db", "current", "--database-url", db_url) == (0, "empty (no schema)\n")


def test_database_url_comes_from_the_environment(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from linkage.settings import store_settings

    monkeypatch.setenv("CCI_DATABASE_URL", sqlite_url)
    store_settings.cache_clear()
    try:
        assert cci("db", "upgrade")[0] == 0
        assert Path(sqlite_url.removeprefix("sqlite:///")).exists()
    finally:
        store_settings.cache_clear()


def test_sources_add_and_list(sqlite_url: str) -> None:
    code, output = cci(
        "sources", "add", "gp_leeds", "--kind", "health", "--database-url", sqlite_url
    )
    assert code == 0 and "added gp_leeds (health)" in output
    code, output = cci(
        "sources", "add", "gp_leeds", "--kind", "other", "--database-url", sqlite_url
    )
    assert code == 0 and "updated gp_leeds (other)" in output
    code, output = cci("sources", "add", "x", "--kind", "police", "--database-url", sqlite_url)
    assert code == 2 and "unknown kind" in output
    code, output = cci("sources", "list", "--database-url", sqlite_url)
    assert code == 0 and output.split() == ["gp_leeds", "other", "0", "records"]


def test_ingest_prints_a_summary_per_source(sqlite_url: str, tmp_path: Path) -> None:
    rng = random.Random(2)
    rows = [pseudo_row(rng, "health", f"H{i}") for i in range(7)]
    rows += [pseudo_row(rng, "education_leeds", f"E{i}") for i in range(5)]
    path = write_pseudo_csv(tmp_path / "a.csv", rows)
    code, output = cci("ingest", str(path), "--database-url", sqlite_url)
    assert code == 0, output
    assert "registered key id" in output and "12 new records" in output
    lines = {line.split()[0]: line.split() for line in output.splitlines() if line[:2] == "  "}
    assert lines["health"][:3] == ["health", "7", "rows"]
    assert lines["education_leeds"][:3] == ["education_leeds", "5", "rows"]
    code, output = cci("sources", "list", "--database-url", sqlite_url)
    assert "education_leeds          education             5 records" in output


def test_ingest_refusals_exit_2_with_one_line(sqlite_url: str, tmp_path: Path) -> None:
    rng = random.Random(3)
    first = write_pseudo_csv(tmp_path / "a.csv", [pseudo_row(rng, "health", "H1")])
    assert cci("ingest", str(first), "--database-url", sqlite_url)[0] == 0
    foreign = write_pseudo_csv(tmp_path / "b.csv", [pseudo_row(rng, "health", "H2", "kforeign")])
    for path, message in ((foreign, "kforeign"), (tmp_path / "absent.csv", "cannot read")):
        result = runner.invoke(app, ["ingest", str(path), "--database-url", sqlite_url])
        assert result.exit_code == 2
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.output
    listing = runner.invoke(app, ["sources", "list", "--database-url", sqlite_url])
    assert listing.output.split() == ["health", "health", "1", "records"]


def test_an_unusable_database_is_one_line_exit_1(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing' / 'dir' / 'cci.db'}"
    for command in (["db", "upgrade"], ["db", "current"], ["sources", "list"]):
        result = runner.invoke(app, [*command, "--database-url", url])
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("error: cannot use the registry at sqlite:///")
        assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "command",
    [
        ["db"],
        ["db", "upgrade"],
        ["db", "downgrade"],
        ["db", "current"],
        ["ingest"],
        ["sources"],
        ["sources", "add"],
        ["sources", "list"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    code, output = cci(*command, "--help")
    assert code == 0 and "Usage:" in output
    assert len(output.split("Usage:")[1].splitlines()) > 3
