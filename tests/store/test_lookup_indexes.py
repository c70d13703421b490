"""Every blocking rule's candidate look-up is an index search on its equalities: on all of
them, or on a prefix of an index that holds the rest (checked in its entries, so no table row
is read for an entry that does not match), or on the shared names index. A rule left to filter
a common column's rows from the table (every child born that day) made real-time matching
several times slower on a large registry."""

from __future__ import annotations

import re

import pytest

from linkage.model.settings import BLOCKING_RULES, BlockingRule
from linkage.store import make_engine, upgrade
from linkage.store.models import LOOKUP_INDEXES, SPARSE_LOOKUPS

#: The one index allowed to serve a rule by a prefix of its equalities: a given and family
#: name token pair leaves a handful of rows to filter.
SHARED = "ix_record_versions_names"


@pytest.mark.parametrize("rule", BLOCKING_RULES, ids=lambda rule: rule.name)
def test_each_blocking_rule_is_an_index_search(sqlite_url: str, rule: BlockingRule) -> None:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    where = " AND ".join(f"{candidate} = ?" for _, candidate in rule.equalities)
    with engine.connect() as connection:
        driver = connection.connection.driver_connection
        assert driver is not None
        plan = " ".join(
            str(row[-1])
            for row in driver.execute(
                f"EXPLAIN QUERY PLAN SELECT record_pk FROM record_versions WHERE {where}",
                [1] * len(rule.equalities),
            )
        )
    used = re.search(r"USING (?:COVERING )?INDEX (\w+) \(([^)]*)\)", plan)
    assert used is not None, plan
    name, searched = used.group(1), used.group(2)
    columns = {candidate for _, candidate in rule.equalities}
    searched_columns = {c.split("=")[0] for c in searched.split(" AND ")}
    assert searched_columns <= columns, plan
    if name != SHARED:
        assert columns <= set(dict(LOOKUP_INDEXES)[name]), plan
    assert name in dict(LOOKUP_INDEXES)
    engine.dispose()


def test_the_identifier_look_ups_leave_out_versions_without_one(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            rows = connection.exec_driver_sql("PRAGMA index_list(record_versions)").all()
            partial = {row[1] for row in rows if row[4]}
        else:
            rows = connection.exec_driver_sql(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'record_versions' "
                "AND indexdef LIKE '%%WHERE%%'"
            ).all()
            partial = {row[0] for row in rows}
    engine.dispose()
    assert partial == {f"ix_record_versions_{column}" for column in SPARSE_LOOKUPS}
