"""Fast bulk inserts: pysqlite executemany on SQLite, COPY on PostgreSQL.

ORM or Core executemany with dictionaries costs tens of microseconds a row; these paths cost a
few, which is what makes a million-row ingest take seconds rather than minutes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, text


def bulk_insert(
    connection: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    if not rows:
        return
    names = ", ".join(columns)
    if connection.dialect.name == "postgresql":
        driver = connection.connection.driver_connection
        assert driver is not None
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in columns)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
    finally:
        cursor.close()


def allocate_ids(connection: Connection, table: str, count: int) -> list[int]:
    """`count` fresh primary keys for `table` (inside a write transaction)."""
    if count == 0:
        return []
    if connection.dialect.name == "postgresql":
        return list(
            connection.scalars(
                text(
                    f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) "
                    "FROM generate_series(1, :n)"
                ),
                {"n": count},
            )
        )
    start = connection.scalar(text(f"SELECT coalesce(max(id), 0) FROM {table}")) or 0
    return list(range(start + 1, start + 1 + count))
