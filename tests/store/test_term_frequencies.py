"""Frozen term-frequency tables read back as they were counted, on both databases."""

from __future__ import annotations

from sqlalchemy import Engine, text

from linkage.model.default import default_model
from linkage.store import downgrade, make_engine, upgrade, write_transaction
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


def test_migration_0008_carries_frozen_rows_into_blocks_and_back(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0007")
        with write_transaction(engine) as connection:
            connection.execute(
                text(
                    "INSERT INTO models (version, active, settings_json, created_at) "
                    "VALUES (1, false, '{}', '2026-12-05'), (2, false, '{}', '2026-12-05')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO model_term_frequencies VALUES (1, 'postcode_tok', :big, 0.5), "
                    "(1, 'postcode_tok', '-7', 0.5), (1, 'nhs_number_enc', 'c2l2', 1.0), "
                    "(2, '', '', 0.0)"  # the marker of a registry empty when frozen
                ),
                {"big": str(2**63 - 1)},
            )
        upgrade(engine)
        expected = {"postcode_tok": {2**63 - 1: 0.5, -7: 0.5}, "nhs_number_enc": {"c2l2": 1.0}}
        with engine.connect() as connection:
            assert load_frequencies(connection, 1) == expected
            assert load_frequencies(connection, 2) == {}
        downgrade(engine, "0007")
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT * FROM model_term_frequencies ORDER BY 1, 2, 3")
            ).all()
        assert [tuple(r) for r in rows] == [
            (1, "nhs_number_enc", "c2l2", 1.0),
            (1, "postcode_tok", "-7", 0.5),
            (1, "postcode_tok", str(2**63 - 1), 0.5),
            (2, "", "", 0.0),
        ]
        upgrade(engine)
        with engine.connect() as connection:
            assert load_frequencies(connection, 1) == expected
    finally:
        engine.dispose()
