"""Frozen term-frequency tables read back as they were counted, on both databases."""

from __future__ import annotations

from sqlalchemy import Engine

from linkage.model.default import default_model
from linkage.store import make_engine, upgrade, write_transaction
from linkage.store.model_versions import save_model
from linkage.store.term_frequencies import freeze_frequencies, load_frequencies


def test_frozen_tables_read_back_equal(migrated_engine: Engine) -> None:
    with write_transaction(migrated_engine) as connection:
        version = save_model(connection, default_model(), {"source": "test"})
    counted = {
        "postcode_tok": {-(2**63): 0.25, 7: 0.5, 2**63 - 1: 0.25},  # int64 tokens, both ends
        "nhs_number_enc": {"c2l2LWNpcGhlcg": 0.75, "b3RoZXI": 0.25},  # ciphertext text
    }
    assert freeze_frequencies(migrated_engine, version, list(counted), lambda: counted) == counted
    with migrated_engine.connect() as connection:
        assert load_frequencies(connection, version) == counted
        assert load_frequencies(connection, version + 1) is None
    # Asked again, the frozen tables stand: nothing is counted twice.
    assert freeze_frequencies(migrated_engine, version, list(counted), lambda: {}) == counted


def test_an_empty_registry_freezes_empty_tables(migrated_engine: Engine) -> None:
    with write_transaction(migrated_engine) as connection:
        version = save_model(connection, default_model(), {"source": "test"})
    assert freeze_frequencies(migrated_engine, version, ["postcode_tok"], dict) == {}
    with migrated_engine.connect() as connection:
        assert load_frequencies(connection, version) == {}


def test_sqlite_keeps_them_in_primary_key_order(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    with engine.connect() as connection:
        sql = connection.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE name = 'model_term_frequencies'"
        ).scalar()
    engine.dispose()
    assert "WITHOUT ROWID" in str(sql)
