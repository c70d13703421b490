"""A run gives its DuckDB back once the pairs are scored (its buffers are most of a run's
memory until then)."""

from __future__ import annotations

import duckdb
import pytest

from linkage.model.backend import duckdb_api, release


def test_release_closes_a_duckdb_backend() -> None:
    api = duckdb_api(memory_limit="256MB")
    api.duckdb_con.execute("CREATE TABLE t AS SELECT range AS x FROM range(1000)")
    release(api)
    with pytest.raises(duckdb.ConnectionException):
        api.duckdb_con.execute("SELECT count(*) FROM t")


def test_release_of_no_backend_does_nothing() -> None:
    release(None)
