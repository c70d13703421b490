"""`cci demo-data` writes the files it reports."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cli.main import app


def test_demo_data_writes_records_and_truth(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["demo-data", "--children", "150", "--out", str(tmp_path), "--seed", "2"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "records.csv").exists() and (tmp_path / "truth.csv").exists()
    assert "records about" in result.output and "truth.csv" in result.output


def test_demo_data_second_delivery_split_by_source(tmp_path: Path) -> None:
    args = ["demo-data", "-n", "150", "-o", str(tmp_path), "--delivery", "2", "--split-by-source"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert {p.name for p in tmp_path.iterdir()} == {
        "health.csv", "education.csv", "social_care.csv", "truth.csv"
    }  # fmt: skip
    assert "changes since delivery 1" in result.output


def test_demo_data_rejects_a_third_delivery(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo-data", "-o", str(tmp_path), "--delivery", "3"])
    assert result.exit_code == 2
