"""The records an incremental run clusters again: closed under links and shared CCIs."""

import pyarrow as pa

from linkage.affected import PRIOR_SCHEMA, affected_records


def links(*pairs: tuple[int, int]) -> pa.Table:
    return pa.table(
        {
            "unique_id_l": pa.array([a for a, _ in pairs], pa.int64()),
            "unique_id_r": pa.array([b for _, b in pairs], pa.int64()),
        }
    )


def held(prior: dict[int, str]) -> pa.Table:
    return pa.table([list(prior), list(prior.values())], schema=PRIOR_SCHEMA)


def ids(*uids: int) -> pa.Array:
    return pa.array(uids, pa.int64())


def test_closure_follows_links_and_shared_identifiers_but_nothing_else() -> None:
    prior = held({1: "A", 2: "A", 3: "B", 4: "C", 5: "C", 6: "D", 7: "E"})
    # 1-2 share A; 2 links to 3 (B); 4 and 5 share C, 5 links to 6; 7 stands alone.
    found = affected_records(ids(*range(1, 8)), prior, links((2, 3), (5, 6)), touched=[1])
    assert found == {1, 2, 3}
    assert affected_records(ids(*range(1, 8)), prior, links((2, 3), (5, 6)), touched=[6]) == {
        4,
        5,
        6,
    }
    assert affected_records(ids(*range(1, 8)), prior, links(), touched=[7, 99]) == {7}


def test_a_record_without_an_identifier_reaches_through_its_links() -> None:
    prior = held({1: "A", 2: "A"})
    assert affected_records(ids(1, 2, 3), prior, links((3, 2)), touched=[3]) == {1, 2, 3}
