"""Pseudonymising whole files: streamed in, validated row by row, written atomically.

Output is written to a temporary file beside OUTPUT and renamed only when the whole input has
been read, so an unusable input (exit 2) never leaves a half-written OUTPUT behind. Rejected
rows go to `OUTPUT.rejects.csv` (always written) without any input value.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from linkage.contract import (
    COLUMN_TYPES,
    PSEUDONYMISED_COLUMN_NAMES,
    RAW_COLUMNS,
    RAW_REQUIRED_COLUMNS,
)
from linkage.errors import UnusableInputError
from linkage.pseudonymise.encoder import EncodedRecord, RecordEncoder, Rejected
from linkage.pseudonymise.keys import LinkageKey

Progress = Callable[[int, int], None]  # (units done, units total) — bytes or rows
PARQUET_BATCH_ROWS = 50_000
RECORD_ID = RAW_COLUMNS.index("record_id")
MAX_WARNINGS_KEPT = 1_000


@dataclass
class PseudonymiseSummary:
    rows_read: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    reject_reasons: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    #: The first warnings, as (row number, warning); counts of all are in `warnings`.
    warning_rows: list[tuple[int, str]] = field(default_factory=list)
    key_id: str = ""


def rejects_path(output: Path) -> Path:
    return output.with_name(output.name + ".rejects.csv")


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in {".parquet", ".pq"}


# -- readers ---------------------------------------------------------------------------------
def _check_header(columns: list[str], path: Path) -> None:
    missing = [c for c in RAW_REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise UnusableInputError(f"{path}: missing required column(s): {', '.join(missing)}")


def _csv_rows(path: Path, progress: Progress | None) -> Iterator[tuple[str, ...]]:
    try:
        handle = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115
    except OSError as exc:
        raise UnusableInputError(f"{path}: cannot read: {exc.strerror}") from exc
    total = os.fstat(handle.fileno()).st_size
    with handle:
        try:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise UnusableInputError(f"{path}: empty file (no header row)")
            names = [h.strip().lower() for h in header]
            _check_header(names, path)
            # Position of each raw column in the file (-1: absent), so rows become tuples in
            # RAW_COLUMNS order without building a dict per row.
            positions = [names.index(c) if c in names else -1 for c in RAW_COLUMNS]
            width = len(names)
            for count, values in enumerate(reader, 1):
                if progress is not None and count % 10_000 == 0:
                    progress(os.lseek(handle.fileno(), 0, os.SEEK_CUR), total)
                if not values:
                    continue
                if len(values) < width:  # short row: missing trailing fields are empty
                    values += [""] * (width - len(values))
                yield tuple(values[p] if p >= 0 else "" for p in positions)
        except UnicodeDecodeError as exc:
            raise UnusableInputError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
        except csv.Error as exc:
            raise UnusableInputError(f"{path}: malformed CSV: {exc}") from exc
    if progress is not None:
        progress(total, total)


def _parquet_rows(path: Path, progress: Progress | None) -> Iterator[tuple[str, ...]]:
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise UnusableInputError(f"{path}: not a readable Parquet file") from exc
    names = list(parquet.schema_arrow.names)
    _check_header(names, path)
    columns = [n for n in names if n in RAW_COLUMNS]
    total, done = parquet.metadata.num_rows, 0
    for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns):
        for row in batch.to_pylist():
            yield tuple(_as_text(row.get(c)) for c in RAW_COLUMNS)
        done += batch.num_rows
        if progress is not None:
            progress(done, total)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


# -- writers ---------------------------------------------------------------------------------
_ARROW_TYPES = {
    "text": pa.string(),
    "int64": pa.int64(),
    "int64_set": pa.list_(pa.int64()),
    "bool": pa.bool_(),
}
ARROW_SCHEMA = pa.schema([(n, _ARROW_TYPES[COLUMN_TYPES[n]]) for n in PSEUDONYMISED_COLUMN_NAMES])


class _CsvSink:
    def __init__(self, handle: IO[str]) -> None:
        self._handle = handle
        handle.write(",".join(PSEUDONYMISED_COLUMN_NAMES) + "\n")

    def write(self, record: EncodedRecord) -> None:
        self._handle.write(record.csv_line())


class _ParquetSink:
    def __init__(self, path: Path) -> None:
        self._writer = pq.ParquetWriter(path, ARROW_SCHEMA)
        self._rows: list[list[Any]] = []

    def write(self, record: EncodedRecord) -> None:
        self._rows.append(record.values())
        if len(self._rows) >= PARQUET_BATCH_ROWS:
            self._flush()

    def _flush(self) -> None:
        columns = list(zip(*self._rows, strict=True)) if self._rows else [()] * len(ARROW_SCHEMA)
        arrays = [
            pa.array([list(v) if isinstance(v, tuple) else v for v in col], type=f.type)
            for col, f in zip(columns, ARROW_SCHEMA, strict=True)
        ]
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA))
        self._rows = []

    def close(self) -> None:
        if self._rows:
            self._flush()
        self._writer.close()


@contextmanager
def _open_sink(output_path: Path, partial: Path) -> Iterator[_CsvSink | _ParquetSink]:
    """A CSV or Parquet sink writing to `partial`, chosen by the final output's extension."""
    if _is_parquet(output_path):
        parquet_sink = _ParquetSink(partial)
        yield parquet_sink
        parquet_sink.close()
        return
    with open(partial, "w", encoding="utf-8", newline="") as handle:
        yield _CsvSink(handle)


def pseudonymise_file(
    key: LinkageKey,
    input_path: Path,
    output_path: Path,
    *,
    progress: Progress | None = None,
) -> PseudonymiseSummary:
    """Validate and encode every row of INPUT into OUTPUT (CSV, or Parquet by extension).

    Raises UnusableInputError (and leaves no OUTPUT) when the input cannot be used at all.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    rows = (_parquet_rows if _is_parquet(input_path) else _csv_rows)(input_path, progress)
    encoder = RecordEncoder(key)
    summary = PseudonymiseSummary(key_id=encoder.key_id)
    partial = output_path.with_name(f".{output_path.name}.partial")
    rejects_partial = partial.with_name(partial.name + ".rejects")
    try:
        with open(rejects_partial, "w", encoding="utf-8", newline="") as rejects_handle:
            rejects = csv.writer(rejects_handle, lineterminator="\n")
            rejects.writerow(["row", "record_id", "reason"])
            with _open_sink(output_path, partial) as sink:
                for number, raw in enumerate(rows, 1):
                    summary.rows_read = number
                    try:
                        record, warnings = encoder.encode_row(raw)
                    except Rejected as reason:
                        summary.rows_rejected += 1
                        summary.reject_reasons[str(reason)] += 1
                        rejects.writerow([number, raw[RECORD_ID].strip(), reason])
                        continue
                    sink.write(record)
                    summary.rows_written += 1
                    for warning in warnings:
                        summary.warnings[warning] += 1
                        if len(summary.warning_rows) < MAX_WARNINGS_KEPT:
                            summary.warning_rows.append((number, warning))
        os.replace(partial, output_path)
        os.replace(rejects_partial, rejects_path(output_path))
    except BaseException:
        partial.unlink(missing_ok=True)
        rejects_partial.unlink(missing_ok=True)
        raise
    return summary
