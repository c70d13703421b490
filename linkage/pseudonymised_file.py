"""Reading pseudonymised files (CSV or Parquet) in bounded-memory, contract-typed batches.

CSV conventions (as written by the pseudonymiser): UTF-8 (a BOM is accepted), a header of
contract column names in any order, empty = NULL, int64 as decimal, int64 sets as
space-separated decimals, bool `true`/`false`. Parquet: int64, list<int64>, bool, string.
Sets are yielded in their CSV text form (NULL when empty), which is also how the store keeps
them. Unknown columns are ignored; absent optional columns are NULL.

Anything that makes a file unusable raises UnusableInputError with a one-line message naming
the file and the problem, never a cell value (a mis-sent raw file must not be echoed).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from linkage.contract import COLUMN_TYPES, PSEUDONYMISED_COLUMN_NAMES, PSEUDONYMISED_REQUIRED
from linkage.errors import UnusableInputError

BLOCK_BYTES = 4 << 20
PARQUET_BATCH_ROWS = 50_000
MAX_HEADER_BYTES = 1 << 16
_ARROW = {"int64": pa.int64(), "int64_set": pa.string(), "text": pa.string(), "bool": pa.bool_()}
#: Arrow schema of a batch as yielded: every contract column, in contract order, sets as text.
BATCH_SCHEMA = pa.schema([(n, _ARROW[COLUMN_TYPES[n]]) for n in PSEUDONYMISED_COLUMN_NAMES])
_SET_PATTERN = r"^-?[0-9]{1,19}( -?[0-9]{1,19})*$"
_SEXES = pa.array(["F", "M", "U", None])  # a NULL matches the NULL in the set


class PseudonymisedFile:
    """One pseudonymised file, read batch by batch; `bytes_read` follows the batches handed
    out (for progress; pyarrow's own reading runs ahead of them)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.bytes_read = 0
        self._rows = 0

    @property
    def size(self) -> int:
        """The file's size in bytes (0 when it cannot be read; reading then says why)."""
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def batches(self) -> Iterator[pa.Table]:
        """Tables of BATCH_SCHEMA, a few MiB each, checked against the contract."""
        if self.path.suffix.lower() in {".parquet", ".pq"}:
            return self._checked(self._parquet())
        return self._checked(self._csv())

    def _fail(self, problem: str) -> UnusableInputError:
        return UnusableInputError(f"{self.path}: {problem}")

    def _checked(self, batches: Iterator[pa.Table]) -> Iterator[pa.Table]:
        for batch in batches:
            self._check_values(batch)
            self._rows += batch.num_rows
            yield batch

    # -- CSV -------------------------------------------------------------------------------

    def _header(self) -> list[str]:
        try:
            with self.path.open("rb") as handle:
                line = handle.readline(MAX_HEADER_BYTES)
        except OSError as exc:
            raise self._fail(f"cannot read: {exc.strerror}") from exc
        if not line.strip():
            raise self._fail("empty file (no header row)")
        if not line.endswith(b"\n") and len(line) == MAX_HEADER_BYTES:
            raise self._fail("not a pseudonymised CSV (no header row)")
        try:
            text = line.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise self._fail("not UTF-8 text") from exc
        return [name.strip() for name in next(csv.reader([text]))]

    def _csv(self) -> Iterator[pa.Table]:
        names = self._header()
        self._check_columns(names)
        wanted = [n for n in names if n in COLUMN_TYPES]
        convert = pacsv.ConvertOptions(
            column_types={n: BATCH_SCHEMA.field(n).type for n in wanted},
            include_columns=wanted,
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            null_values=[""],
            true_values=["true"],
            false_values=["false"],
        )
        size = self.size
        try:
            reader = pacsv.open_csv(
                self.path,
                read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES),
                convert_options=convert,
            )
            for batch in reader:
                # Each batch is one block of the file (the last one shorter).
                self.bytes_read = min(size, self.bytes_read + BLOCK_BYTES)
                yield _conform(pa.Table.from_batches([batch]))
            self.bytes_read = size
        except pa.ArrowInvalid as exc:
            raise self._fail(_describe_csv_error(str(exc), names)) from exc
        except OSError as exc:
            raise self._fail(f"cannot read: {exc.strerror or exc}") from exc

    # -- Parquet ---------------------------------------------------------------------------

    def _parquet(self) -> Iterator[pa.Table]:
        try:
            parquet = pq.ParquetFile(self.path)
        except (OSError, pa.ArrowException) as exc:
            raise self._fail("not a readable Parquet file") from exc
        names = list(parquet.schema_arrow.names)
        self._check_columns(names)
        total_rows = max(parquet.metadata.num_rows, 1)
        wanted = [n for n in names if n in COLUMN_TYPES]
        try:
            for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=wanted):
                table = _conform(pa.Table.from_batches([batch]), empty_is_null=True)
                self.bytes_read = self.size * (self._rows + table.num_rows) // total_rows
                yield table
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            # Not pyarrow's message: it can quote a value.
            raise self._fail("column types do not match the contract") from exc
        except (OSError, pa.ArrowException) as exc:
            raise self._fail("not a readable Parquet file") from exc

    # -- checks ----------------------------------------------------------------------------

    def _check_columns(self, names: list[str]) -> None:
        missing = [c for c in PSEUDONYMISED_REQUIRED if c not in names]
        if missing:
            raise self._fail(f"missing required column(s): {', '.join(missing)}")
        repeated = sorted({n for n in names if names.count(n) > 1 and n in COLUMN_TYPES})
        if repeated:
            raise self._fail(f"repeated column(s): {', '.join(repeated)}")

    def _check_values(self, batch: pa.Table) -> None:
        for name in PSEUDONYMISED_REQUIRED:
            column = batch[name]
            if column.null_count:
                first = pc.index(pc.is_null(column), True).as_py()
                raise self._fail(f"data row {self._rows + first + 1}: no value for {name}")
        for name, kind in COLUMN_TYPES.items():
            if kind == "int64_set":
                matches = pc.match_substring_regex(batch[name], _SET_PATTERN)
                if pc.any(pc.invert(matches)).as_py():
                    raise self._fail(f"column {name}: not space-separated 64-bit integers")
        if not pc.all(pc.is_in(batch["sex"], value_set=_SEXES)).as_py():
            raise self._fail("column sex: values must be F, M, U or empty")


def read_pseudonymised(path: Path | str) -> Iterator[pa.Table]:
    """Contract-typed batches (BATCH_SCHEMA) of a pseudonymised CSV or Parquet file.

    Raises UnusableInputError with a one-line message when the file cannot be used.
    """
    return PseudonymisedFile(path).batches()


def _conform(table: pa.Table, *, empty_is_null: bool = False) -> pa.Table:
    """Every contract column in contract order (absent optional ones NULL), sets as text."""
    columns = []
    for field in BATCH_SCHEMA:
        if field.name not in table.column_names:
            columns.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table[field.name]
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            text = pc.binary_join(pc.cast(column, pa.list_(pa.string())), " ")
            column = pc.if_else(pc.equal(pc.list_value_length(column), 0), None, text)
        if column.type != field.type:
            column = pc.cast(column, field.type)
        if empty_is_null and field.type == pa.string():
            column = pc.if_else(pc.equal(column, ""), None, column)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=BATCH_SCHEMA)


def _describe_csv_error(message: str, names: list[str]) -> str:
    """pyarrow's error, without the offending value or line (they could be raw data)."""
    first = message.splitlines()[0] if message else "unreadable"
    if "UTF8" in first or "UTF-8" in first:
        return "not UTF-8 text"
    column = re.search(r"CSV column #(\d+)", first)
    wanted = re.search(r"conversion error to (\w+)", first)
    if column and wanted:
        index = int(column.group(1))
        name = names[index] if index < len(names) else f"#{index}"
        kind = COLUMN_TYPES.get(name, wanted.group(1))
        return f"column {name}: a value is not a valid {kind}"
    counts = re.search(r"Expected \d+ columns, got \d+", first)
    if counts:
        return f"malformed CSV: {counts.group(0).lower()}"
    return "malformed pseudonymised CSV"
