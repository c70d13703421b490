"""The registry store: tables, engines and migrations, ingest, source systems."""

from linkage.store.database import current_revision, downgrade, make_engine, upgrade
from linkage.store.ingest import IngestSummary, ingest_files
from linkage.store.sources import add_source, kind_from_code, list_sources

__all__ = [
    "IngestSummary",
    "add_source",
    "current_revision",
    "downgrade",
    "ingest_files",
    "kind_from_code",
    "list_sources",
    "make_engine",
    "upgrade",
]
