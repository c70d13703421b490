"""The registry store: tables, engines and migrations, ingest, source systems."""

from linkage.store.database import (
    batch_engine,
    current_revision,
    database_url,
    downgrade,
    head_revision,
    make_engine,
    upgrade,
    write_transaction,
)
from linkage.store.ingest import IngestSummary, SourceCounts, ingest_files
from linkage.store.sources import add_source, kind_from_code, list_sources

__all__ = [
    "IngestSummary",
    "SourceCounts",
    "add_source",
    "batch_engine",
    "current_revision",
    "database_url",
    "downgrade",
    "head_revision",
    "ingest_files",
    "kind_from_code",
    "list_sources",
    "make_engine",
    "upgrade",
    "write_transaction",
]
