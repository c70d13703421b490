"""Reading pseudonymised files: typed per the contract, and one-line errors for unusable ones."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from linkage.contract import PSEUDONYMISED_COLUMN_NAMES
from linkage.errors import UnusableInputError
from linkage.pseudonymise.files import ARROW_SCHEMA
from linkage.pseudonymised_file import BATCH_SCHEMA, read_pseudonymised
from tests.store.pseudo_rows import pseudo_row, write_pseudo_csv


def _rows(count: int) -> list[dict[str, Any]]:
    rng = random.Random(17)
    return [pseudo_row(rng, "health", f"H{i}") for i in range(count)]


def _read(path: Path) -> list[dict[str, Any]]:
    return [row for batch in read_pseudonymised(path) for row in batch.to_pylist()]


def test_csv_is_typed_per_the_contract_in_any_column_order(tmp_path: Path) -> None:
    rows = _rows(4)
    rows[0]["upn_tok"] = None
    rows[1]["given_name_canon"] = None
    rows[2]["restricted"] = True
    path = write_pseudo_csv(tmp_path / "a.csv", rows)
    # Reverse the column order: the header names the columns, not their position.
    lines = [line.split(",") for line in path.read_text(encoding="utf-8").splitlines()]
    path.write_text("\n".join(",".join(reversed(cells)) for cells in lines) + "\n", "utf-8")
    read = _read(path)
    assert [list(r) for r in read] == [list(PSEUDONYMISED_COLUMN_NAMES)] * 4
    assert read[0]["upn_tok"] is None
    assert read[1]["given_name_canon"] is None
    assert read[2]["restricted"] is True
    for original, got in zip(rows, read, strict=True):
        assert got["dob_tok"] == original["dob_tok"]
        assert got["encoding_version"] == original["encoding_version"]
        assert got["given_name_canon"] == original["given_name_canon"]


def test_parquet_written_with_the_pseudonymiser_schema_reads_the_same(tmp_path: Path) -> None:
    rows = _rows(5)
    rows[3]["given_name_canon"] = None
    csv_rows = _read(write_pseudo_csv(tmp_path / "a.csv", rows))

    def as_parquet(row: dict[str, Any]) -> dict[str, Any]:
        canon = row["given_name_canon"]
        return {**row, "given_name_canon": [int(t) for t in canon.split()] if canon else []}

    table = pa.Table.from_pylist([as_parquet(r) for r in rows], schema=ARROW_SCHEMA)
    pq.write_table(table, tmp_path / "a.parquet")
    assert _read(tmp_path / "a.parquet") == csv_rows


def test_batches_are_bounded(tmp_path: Path) -> None:
    path = write_pseudo_csv(tmp_path / "a.csv", _rows(10_000))
    batches = list(read_pseudonymised(path))
    assert len(batches) > 1
    assert sum(b.num_rows for b in batches) == 10_000
    assert all(b.schema == BATCH_SCHEMA for b in batches)


def _header_without(column: str) -> str:
    return ",".join(c for c in PSEUDONYMISED_COLUMN_NAMES if c != column)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"a\.csv: empty file"),
        (b"\n\n", "empty file"),
        (_header_without("dob_tok").encode() + b"\n", "missing required column.*: dob_tok$"),
        (b"\xff\xfe\x00g\x00\n", "not UTF-8"),
    ],
)
def test_unusable_files_raise_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(content)
    with pytest.raises(UnusableInputError, match=message) as caught:
        _read(path)
    assert "\n" not in str(caught.value)


def test_non_utf8_in_a_data_row(tmp_path: Path) -> None:
    path = write_pseudo_csv(tmp_path / "a.csv", _rows(3))
    path.write_bytes(path.read_bytes().replace(b"health", b"h\xe9alth", 1))
    with pytest.raises(UnusableInputError, match="not UTF-8"):
        _read(path)


def test_bad_int_names_the_column_not_the_value(tmp_path: Path) -> None:
    rows = _rows(2)
    rows[1]["postcode_tok"] = "SW1A1AA"
    path = write_pseudo_csv(tmp_path / "a.csv", rows)
    with pytest.raises(UnusableInputError, match="column postcode_tok") as caught:
        _read(path)
    assert "SW1A1AA" not in str(caught.value)


def test_missing_required_value(tmp_path: Path) -> None:
    rows = _rows(3)
    rows[2]["family_name_tok"] = None
    with pytest.raises(UnusableInputError, match="data row 3: no value for family_name_tok"):
        _read(write_pseudo_csv(tmp_path / "a.csv", rows))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UnusableInputError, match="cannot read"):
        _read(tmp_path / "absent.csv")


def test_bom_is_accepted(tmp_path: Path) -> None:
    path = write_pseudo_csv(tmp_path / "a.csv", _rows(2))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert len(_read(path)) == 2


def test_parquet_with_a_wrong_column_type_names_no_value(tmp_path: Path) -> None:
    rows = _rows(2)
    table = pa.Table.from_pylist(
        [{**r, "dob_tok": "not-a-number-SW1A1AA", "given_name_canon": None} for r in rows]
    )
    pq.write_table(table, tmp_path / "a.parquet")
    with pytest.raises(UnusableInputError, match="do not match the contract") as caught:
        _read(tmp_path / "a.parquet")
    assert "SW1A1AA" not in str(caught.value)


def test_quoted_header_and_values_are_read(tmp_path: Path) -> None:
    rows = _rows(2)
    table = pa.Table.from_pylist(rows).select(list(PSEUDONYMISED_COLUMN_NAMES))
    path = tmp_path / "quoted.csv"
    pacsv.write_csv(table, path)  # pyarrow quotes the header and every text value
    assert path.read_text(encoding="utf-8").startswith('"source_system"')
    assert [r["record_id"] for r in _read(path)] == ["H0", "H1"]
