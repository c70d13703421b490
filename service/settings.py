"""Service settings, read from `CCI_*` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CCI_", extra="ignore")

    #: Largest JSON request body accepted (bytes); larger ones get 413.
    max_request_bytes: int = 64 * 1024
    #: Largest batch upload accepted (bytes).
    max_upload_bytes: int = 512 * 1024 * 1024
    #: Where uploaded batch files are kept until their job finishes.
    batch_dir: Path = Path("cci-batches")
    #: Largest page of the change feed.
    max_feed_page: int = 1000
    #: How long a worker trusts a key it has checked (seconds): a revoked key stops working
    #: within this time. 0 checks the store on every request.
    auth_cache_seconds: float = 5.0


@lru_cache
def service_settings() -> ServiceSettings:
    return ServiceSettings()
