"""Settings for the store and the linkage engine, read from `CCI_*` environment variables.

Small classes per concern; the service has its own in `service/settings.py`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class StoreSettings(BaseSettings):
    """Where the registry lives. Default: an SQLite file in the working directory."""

    model_config = SettingsConfigDict(env_prefix="CCI_", extra="ignore")

    database_url: str = "sqlite:///cci.db"


@lru_cache
def store_settings() -> StoreSettings:
    return StoreSettings()


class LinkageSettings(BaseSettings):
    """Decision thresholds (match weights) and engine resources for linkage runs."""

    model_config = SettingsConfigDict(env_prefix="CCI_", extra="ignore")

    #: At or above: records are linked automatically.
    auto_link_weight: float = 12.0
    #: At or above (and below auto_link_weight): a review item for a data officer.
    review_weight: float = 4.0
    #: DuckDB memory cap for Splink runs.
    duckdb_memory_limit: str = "4GB"
    #: Where `cci link` runs Splink: embedded DuckDB, or Spark for national batches.
    link_engine: Literal["duckdb", "spark"] = "duckdb"
    #: Spark master for the Spark engine when not under spark-submit.
    spark_master: str = "local[*]"


@lru_cache
def linkage_settings() -> LinkageSettings:
    return LinkageSettings()
