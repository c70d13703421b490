"""Pseudonymising whole files through the `cci pseudonymise` command."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from cli import keys, pseudonymise
from linkage.contract import PSEUDONYMISED_COLUMN_NAMES
from linkage.pseudonymise import generate_key, read_key_file, write_key_file

HEADER = "source_system,record_id,nhs_number,upn,given_name,family_name,date_of_birth,sex,postcode"
GOOD = [
    "health,H1,943 476 5919,,Will,Smith,2015-03-07,F,ls61ab",
    "education,E1,,A801200300012,William,Smith,2015-03-07,,LS6 1AB",
]


def cci() -> typer.Typer:
    app = typer.Typer()
    keys.register(app)
    pseudonymise.register(app)
    return app


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "linkage.key"
    write_key_file(generate_key(), path)
    return path


def run(key_file: Path, source: Path, out: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cci(), ["pseudonymise", "-k", str(key_file), str(source), str(out)])
    return result.exit_code, result.output


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def write(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


def test_good_file_exits_0_with_an_empty_rejects_file(tmp_path: Path, key_file: Path) -> None:
    out = tmp_path / "out.csv"
    code, _ = run(key_file, write(tmp_path / "raw.csv", [HEADER, *GOOD]), out)
    assert code == 0
    rows = read_rows(out)
    assert [r["record_id"] for r in rows] == ["H1", "E1"]
    assert list(rows[0]) == list(PSEUDONYMISED_COLUMN_NAMES)
    assert rows[0]["key_id"] == read_key_file(key_file).key_id
    assert (tmp_path / "out.csv.rejects.csv").read_text() == "row,record_id,reason\n"


def test_bad_rows_are_rejected_without_echoing_values(tmp_path: Path, key_file: Path) -> None:
    lines = [
        HEADER,
        GOOD[0],
        "health,H2,,,Amy,Jones,2019-02-30,F,",  # impossible date
        "health,H3,,,,Jones,2019-02-03,F,",  # empty given name
        "health,H4,9434765918,,Amy,Jones,2019-02-03,F,nowhere",  # bad optionals: kept
        ",H5,,,Amy,Jones,2019-02-03,F,",  # no source system
    ]
    out = tmp_path / "out.csv"
    code, output = run(key_file, write(tmp_path / "raw.csv", lines), out)
    assert code == 3
    assert "3 rejected" in output
    rejects = read_rows(tmp_path / "out.csv.rejects.csv")
    assert [(r["row"], r["record_id"]) for r in rejects] == [("2", "H2"), ("3", "H3"), ("5", "H5")]
    text = (tmp_path / "out.csv.rejects.csv").read_text() + output
    for value in ("2019-02-30", "Jones", "Amy", "9434765918", "nowhere"):
        assert value not in text
    kept = [r["record_id"] for r in read_rows(out)]
    assert kept == ["H1", "H4"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"source_system,record_id,given_name\nhealth,H1,Amy\n", "family_name, date_of_birth"),
        (HEADER.encode() + b"\nhealth,H1,,,Zo\xeb,Smith,2015-03-07,F,\n", "not UTF-8"),
    ],
)
def test_unusable_input_exits_2_and_leaves_no_output(
    tmp_path: Path, key_file: Path, content: bytes, message: str
) -> None:
    source = tmp_path / "raw.csv"
    source.write_bytes(content)
    out = tmp_path / "out.csv"
    code, output = run(key_file, source, out)
    assert code == 2
    assert message in output
    assert len(output.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["linkage.key", "raw.csv"]


def test_missing_input_file_exits_2(tmp_path: Path, key_file: Path) -> None:
    code, output = run(key_file, tmp_path / "absent.csv", tmp_path / "out.csv")
    assert code == 2 and "cannot read" in output


def test_utf8_bom_and_unknown_columns_are_accepted(tmp_path: Path, key_file: Path) -> None:
    source = tmp_path / "raw.csv"
    source.write_text(HEADER + ",ethnicity\n" + GOOD[0] + ",X\n", encoding="utf-8-sig")
    code, _ = run(key_file, source, tmp_path / "out.csv")
    assert code == 0
    assert "ethnicity" not in (tmp_path / "out.csv").read_text()


def test_parquet_in_and_out_match_csv(tmp_path: Path, key_file: Path) -> None:
    raw_csv = write(tmp_path / "raw.csv", [HEADER, *GOOD])
    rows = read_rows(raw_csv)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "raw.parquet")
    assert run(key_file, raw_csv, tmp_path / "a.csv")[0] == 0
    assert run(key_file, tmp_path / "raw.parquet", tmp_path / "b.parquet")[0] == 0
    from_csv = read_rows(tmp_path / "a.csv")
    from_parquet = pq.read_table(tmp_path / "b.parquet").to_pylist()
    assert len(from_parquet) == 2
    for a, b in zip(from_csv, from_parquet, strict=True):
        assert a["given_name_tok"] == str(b["given_name_tok"])
        assert a["nhs_number_enc"] == (b["nhs_number_enc"] or "")
        assert a["given_name_canon"] == " ".join(map(str, b["given_name_canon"]))


def test_keygen_refuses_to_overwrite_and_reveal_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    first = CliRunner().invoke(cci(), ["keygen", "--out", str(path)])
    assert first.exit_code == 0, first.output  # (once seen failing with 2: keep what it said)
    assert first.output.strip() == read_key_file(path).key_id
    assert path.stat().st_mode & 0o777 == 0o600
    before = path.read_bytes()
    second = CliRunner().invoke(cci(), ["keygen", "--out", str(path)])
    assert second.exit_code == 2 and path.read_bytes() == before

    raw = write(tmp_path / "raw.csv", [HEADER, *GOOD])
    assert run(path, raw, tmp_path / "out.csv")[0] == 0
    ciphertext = read_rows(tmp_path / "out.csv")[0]["nhs_number_enc"]
    revealed = CliRunner().invoke(cci(), ["reveal", "-k", str(path), ciphertext])
    assert revealed.exit_code == 0, revealed.output
    assert revealed.output.strip() == "9434765919"
    other = tmp_path / "other.key"
    write_key_file(generate_key(), other)
    assert CliRunner().invoke(cci(), ["reveal", "-k", str(other), ciphertext]).exit_code == 3
