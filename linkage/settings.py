"""Settings for the store and the linkage engine, read from `CCI_*` environment variables.

Small classes per concern; the service has its own in `service/settings.py`.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class StoreSettings(BaseSettings):
    """Where the registry lives. Default: an SQLite file in the working directory."""

    model_config = SettingsConfigDict(env_prefix="CCI_", extra="ignore")

    database_url: str = "sqlite:///cci.db"


@lru_cache
def store_settings() -> StoreSettings:
    return StoreSettings()
