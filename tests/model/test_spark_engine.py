"""The Spark engine gives what DuckDB gives: the same pair weights, clusters and kept CCIs.

One local SparkSession for the test session (2 cores, 1 GB driver heap fixed before the JVM
starts, 2 shuffle partitions). Two copies of one registry, whose first delivery was linked on
DuckDB, take the second delivery: one links on DuckDB, the other with `cci link --engine
spark`. The registry is small enough for the shipped default model.
"""

from __future__ import annotations

import copy
import csv
import shutil
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from pyspark.sql import SparkSession
from sqlalchemy import Engine
from typer.testing import CliRunner

from cli.main import app
from linkage.demo import write_delivery
from linkage.link import link_files, link_registry, write_assignments
from linkage.model.backend import duckdb_api
from linkage.model.comparisons import COMPARISONS
from linkage.model.default import default_model
from linkage.model.scoring import score_pairs, with_catalogue_sql
from linkage.model.spark import spark_api, spark_session
from linkage.pseudonymise import LinkageKey, pseudonymise_file
from linkage.store import ingest_files, make_engine
from linkage.store.model_versions import active_model
from linkage.store.registry import load_snapshot

KEY = LinkageKey(secret=bytes(range(32)))
CHILDREN = 250
Assignments = dict[tuple[str, str], str]


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    session = spark_session("local[2]", driver_memory="1g", shuffle_partitions=2)
    yield session
    session.stop()


def _ingest_delivery(engine: Engine, folder: Path, number: int) -> None:
    write_delivery(CHILDREN, folder / f"d{number}", seed=11, delivery=number)
    pseudonymise_file(KEY, folder / f"d{number}" / "records.csv", folder / f"d{number}.csv")
    ingest_files(engine, [folder / f"d{number}.csv"])


def _assignments(url: str, path: Path) -> Assignments:
    engine = make_engine(url)
    try:
        write_assignments(engine, path)
    finally:
        engine.dispose()
    with path.open(encoding="utf-8") as handle:
        return {(r["source_system"], r["record_id"]): r["cci"] for r in csv.DictReader(handle)}


def _partition(cci_of: Assignments) -> set[frozenset[tuple[str, str]]]:
    members: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for record, cci in cci_of.items():
        members[cci].add(record)
    return {frozenset(m) for m in members.values()}


@pytest.fixture(scope="module")
def registries(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """Two identical registries: delivery 1 linked on DuckDB (the prior CCIs), delivery 2
    ingested and not yet linked."""
    folder = tmp_path_factory.mktemp("spark_engine")
    engine = make_engine(f"sqlite:///{folder / 'duckdb.db'}")
    try:
        _ingest_delivery(engine, folder, 1)
        link_registry(engine, link_engine="duckdb")
        _ingest_delivery(engine, folder, 2)
    finally:
        engine.dispose()
    shutil.copy(folder / "duckdb.db", folder / "spark.db")
    return folder, f"sqlite:///{folder / 'duckdb.db'}", f"sqlite:///{folder / 'spark.db'}"


def test_shipped_default_model_holds_the_catalogues_sql() -> None:
    """Saved SQL is read in the backend's dialect: DuckDB-only functions or double-quoted
    names (string literals to Spark) in the shipped model would break small registries there."""
    model = default_model()
    assert with_catalogue_sql(model) == model


def _by_pair(pairs: pa.Table) -> dict[tuple[int, int], dict[str, object]]:
    return {(r["unique_id_l"], r["unique_id_r"]): r for r in pairs.to_pylist()}


def test_pair_weights_and_levels_equal_duckdb(
    spark: SparkSession, registries: tuple[Path, str, str]
) -> None:
    _, url, _ = registries
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            records = load_snapshot(connection).records.drop_columns(["source_kind"])
            found = active_model(connection)
    finally:
        engine.dispose()
    assert found is not None
    # As saved before the catalogue's SQL was backend-neutral: scoring takes the SQL from the
    # catalogue, so old models run on Spark too.
    old_sql = 'array_length(list_intersect("given_name_canon_l", "given_name_canon_r")) >= 1'
    model = copy.deepcopy(found[1])
    given = next(c for c in model["comparisons"] if c["output_column_name"] == "given_name")
    given["comparison_levels"][2]["sql_condition"] = old_sql
    # Every blocked pair, not only likely matches: low and negative weights must agree too.
    threshold = -1000.0
    on_duckdb = _by_pair(
        score_pairs(records, model, threshold_match_weight=threshold, db_api=duckdb_api())
    )
    on_spark = _by_pair(
        score_pairs(records, model, threshold_match_weight=threshold, db_api=spark_api(spark))
    )
    assert on_spark.keys() == on_duckdb.keys()
    weights = [float(p["match_weight"]) for p in on_duckdb.values()]  # type: ignore[arg-type]
    assert len(weights) > 200 and min(weights) < 0 < 12 < max(weights)
    worst = max(
        abs(float(on_spark[k]["match_weight"]) - float(on_duckdb[k]["match_weight"]))  # type: ignore[arg-type]
        for k in on_duckdb
    )
    assert worst < 1e-9
    for name in (c.name for c in COMPARISONS):
        column = f"gamma_{name}"
        assert all(on_spark[k][column] == on_duckdb[k][column] for k in on_duckdb), name
        # the data reaches more than one level of every comparison
        assert len({p[column] for p in on_duckdb.values()}) > 1, name


def test_cci_link_on_spark_makes_the_same_clusters_and_keeps_the_same_ccis(
    spark: SparkSession, registries: tuple[Path, str, str]
) -> None:
    folder, duckdb_url, spark_url = registries
    prior = _assignments(spark_url, folder / "prior.csv")

    engine = make_engine(duckdb_url)
    try:
        on_duckdb = link_registry(engine, link_engine="duckdb")
    finally:
        engine.dispose()
    result = CliRunner().invoke(app, ["link", "--engine", "spark", "--database-url", spark_url])
    assert result.exit_code == 0, str(result.exception)[-3000:]

    duck, sparked = (
        _assignments(duckdb_url, folder / "a_duckdb.csv"),
        _assignments(spark_url, folder / "a_spark.csv"),
    )
    assert duck.keys() == sparked.keys() and len(duck) > len(prior)
    assert _partition(sparked) == _partition(duck)
    prior_ccis = set(prior.values())
    kept = {r: c for r, c in duck.items() if c in prior_ccis}
    assert kept == {r: c for r, c in sparked.items() if c in prior_ccis}
    assert len(set(kept.values())) > 0.8 * len(prior_ccis)
    # new clusters get fresh random CCIs, so only the counts can agree
    stats = on_duckdb.stats
    for key in ("clusters", "new", "kept", "merged", "split", "review_items"):
        assert f"  {key.replace('_', ' '):<30} {stats[key]:>12,}" in result.output, key


def test_a_first_load_linked_on_spark_while_written_makes_duckdbs_clusters(
    spark: SparkSession, registries: tuple[Path, str, str]
) -> None:
    """`cci link --input` into an empty registry: the run trains and scores on Spark while
    the ingest writes the rows (`link_files`), and clusters as the same flow on DuckDB does."""
    folder = registries[0]
    urls = {name: f"sqlite:///{folder / f'first_{name}.db'}" for name in ("duckdb", "spark")}
    for name, url in urls.items():
        engine = make_engine(url)
        try:
            summary, report = link_files(engine, [folder / "d1.csv"], link_engine=name)
        finally:
            engine.dispose()
        assert "ingest" in report.stats["seconds"]  # linked while the ingest wrote
        assert summary.records_added == report.stats["records"]
    on_duckdb = _assignments(urls["duckdb"], folder / "first_duckdb.csv")
    on_spark = _assignments(urls["spark"], folder / "first_spark.csv")
    assert on_duckdb.keys() == on_spark.keys()
    assert _partition(on_spark) == _partition(on_duckdb)
