"""Reading pseudonymised files (CSV or Parquet) in bounded-memory, contract-typed batches.

CSV conventions (as written by the pseudonymiser): header of contract column names in any
order, empty = NULL, int64 as decimal, int64 sets as space-separated decimals, bool true/false.
Sets are carried as that text form, which is also how the store keeps them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from linkage.contract import COLUMN_TYPES, PSEUDONYMISED_COLUMN_NAMES, PSEUDONYMISED_REQUIRED
from linkage.errors import UnusableInputError

BLOCK_BYTES = 4 << 20
_ARROW = {"int64": pa.int64(), "int64_set": pa.string(), "text": pa.string(), "bool": pa.bool_()}
#: Arrow schema of a batch as yielded: every contract column, sets as text.
BATCH_SCHEMA = pa.schema([(n, _ARROW[COLUMN_TYPES[n]]) for n in PSEUDONYMISED_COLUMN_NAMES])


def _check_columns(names: list[str], path: Path) -> None:
    missing = [c for c in PSEUDONYMISED_REQUIRED if c not in names]
    if missing:
        raise UnusableInputError(f"{path}: missing required column(s): {', '.join(missing)}")


def _conform(batch: pa.RecordBatch | pa.Table) -> pa.Table:
    """Every contract column in contract order (absent optional ones NULL), sets as text."""
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    columns = []
    for field in BATCH_SCHEMA:
        if field.name not in table.column_names:
            columns.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table[field.name]
        if pa.types.is_list(column.type):  # Parquet sets: list<int64> -> "1 2 3"
            text = pc.binary_join(pc.cast(column, pa.list_(pa.string())), " ")
            column = pc.if_else(pc.equal(pc.list_value_length(column), 0), None, text)
        columns.append(pc.cast(column, field.type))
    return pa.Table.from_arrays(columns, schema=BATCH_SCHEMA)


def _csv_batches(path: Path) -> Iterator[pa.Table]:
    try:
        with path.open("rb") as handle:
            head = handle.read(3)
            header_line = (head + handle.readline()).decode("utf-8-sig")
    except OSError as exc:
        raise UnusableInputError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise UnusableInputError(f"{path}: not UTF-8 text") from exc
    if not header_line.strip():
        raise UnusableInputError(f"{path}: empty file (no header row)")
    names = [n.strip() for n in header_line.strip().split(",")]
    _check_columns(names, path)
    convert = pacsv.ConvertOptions(
        column_types={n: BATCH_SCHEMA.field(n).type for n in names if n in COLUMN_TYPES},
        include_columns=[n for n in names if n in COLUMN_TYPES],
        strings_can_be_null=True,
        null_values=[""],
        true_values=["true"],
        false_values=["false"],
    )
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES, encoding="utf8"),
            convert_options=convert,
        )
        for batch in reader:
            yield _conform(batch)
    except pa.ArrowInvalid as exc:
        message = str(exc).splitlines()[0]
        if "UTF8" in message or "utf8" in message or "UTF-8" in message:
            raise UnusableInputError(f"{path}: not UTF-8 text") from exc
        raise UnusableInputError(f"{path}: malformed pseudonymised CSV: {message}") from exc


def _parquet_batches(path: Path) -> Iterator[pa.Table]:
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise UnusableInputError(f"{path}: not a readable Parquet file") from exc
    names = list(parquet.schema_arrow.names)
    _check_columns(names, path)
    wanted = [n for n in names if n in COLUMN_TYPES]
    for batch in parquet.iter_batches(batch_size=50_000, columns=wanted):
        yield _conform(batch)


def read_pseudonymised(path: Path | str) -> Iterator[pa.Table]:
    """Contract-typed batches (BATCH_SCHEMA) of a pseudonymised CSV or Parquet file.

    Raises UnusableInputError with a one-line message when the file cannot be used.
    """
    path = Path(path)
    if path.suffix.lower() in {".parquet", ".pq"}:
        return _parquet_batches(path)
    return _csv_batches(path)
