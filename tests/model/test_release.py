"""A run gives its DuckDB back once the pairs are scored (its buffers are most of a run's
memory until then)."""

from __future__ import annotations

import duckdb
import pytest

from linkage.model.backend import duckdb_api, release, set_threads


def test_release_closes_a_duckdb_backend() -> None:
    api = duckdb_api(memory_limit="256MB")
    api.duckdb_con.execute("CREATE TABLE t AS SELECT range AS x FROM range(1000)")
    release(api)
    with pytest.raises(duckdb.ConnectionException):
        api.duckdb_con.execute("SELECT count(*) FROM t")


def test_release_of_no_backend_does_nothing() -> None:
    release(None)


def _threads(api: object) -> int:
    return int(api.duckdb_con.execute("SELECT current_setting('threads')").fetchone()[0])  # type: ignore[attr-defined]


def test_set_threads_caps_a_backend_and_gives_them_back() -> None:
    default = _threads(duckdb_api(memory_limit="256MB"))
    api = duckdb_api(memory_limit="256MB", threads=1)
    assert _threads(api) == 1
    set_threads(api, None)
    assert _threads(api) == default
    set_threads(api, 1)
    assert _threads(api) == 1
    release(api)
    set_threads(api, None)  # released: nothing to do, no error
