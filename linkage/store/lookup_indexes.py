"""Real-time matching's look-up indexes (record_versions' LOOKUP_INDEXES), built again where
a registry lacks them.

A large load drops them and sorts each once at its end, before it commits (`DeferredIndexes`):
about 10 s for 1M records on SQLite, one table scan and sort per index. `cci link --input`
works on the load while it is written, so that time is spent beside the run's own
(`linkage.link.link_files`). Earlier versions committed a large load into a registry that
held records without them, for the run after it to build; a registry left so (a process
stopped between the two) gets them back at its next run (`building_lookup_indexes`: in a
thread while the run loads, trains and scores), or before the service starts answering
(`cci serve`). Until they are back, real-time look-ups scan the table: slow, never wrong.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, Index, inspect
from sqlalchemy.schema import CreateIndex

from linkage.store.database import write_transaction
from linkage.store.models import record_versions

log = logging.getLogger(__name__)


def lookup_indexes() -> list[Index]:
    """The look-up indexes, in name order."""
    return sorted(record_versions.indexes, key=lambda index: str(index.name))


def missing_lookup_indexes(connection: Connection) -> list[Index]:
    """The look-up indexes the registry does not hold."""
    present = {i["name"] for i in inspect(connection).get_indexes(record_versions.name)}
    return [index for index in lookup_indexes() if index.name not in present]


def build_lookup_indexes(engine: Engine) -> int:
    """Create the missing look-up indexes, each in its own write transaction (another writer
    waits for one index, not for all of them); how many were made. A registry that has them
    all (every `cci serve` start but the first after an interrupted load) is only read."""
    with engine.connect() as connection:
        wanted = missing_lookup_indexes(connection)
    made = 0
    for index in wanted:
        with write_transaction(engine) as connection:
            if index in missing_lookup_indexes(connection):  # nobody made it meanwhile
                connection.execute(CreateIndex(index, if_not_exists=True))
                made += 1
    if made:
        log.info("built %d look-up indexes on %s", made, record_versions.name)
    return made


@contextmanager
def building_lookup_indexes(engine: Engine) -> Iterator[Callable[[], bool]]:
    """Build any missing look-up indexes in a thread while the block runs. Yields `wait`,
    which returns once they are all made (True if any were missing) and raises what stopped
    the thread, if anything. Leaving the block waits too: the thread never outlives it."""
    with engine.connect() as connection:
        missing = bool(missing_lookup_indexes(connection))
    if not missing:
        yield lambda: False
        return
    failure: list[BaseException] = []

    def build() -> None:
        try:
            build_lookup_indexes(engine)
        except BaseException as error:  # handed to the waiting thread
            failure.append(error)

    thread = threading.Thread(target=build, name="lookup-indexes", daemon=True)
    thread.start()

    def wait() -> bool:
        thread.join()
        if failure:
            raise failure[0]
        return True

    try:
        yield wait
    finally:
        thread.join()
