"""Trained models as versions in the registry: one active at a time, runs record which scored."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from linkage.store.models import Model, utcnow


def save_model(
    connection: Connection,
    settings: dict[str, Any],
    summary: dict[str, Any],
    *,
    activate: bool = True,
) -> int:
    """Store a model as the next version (and make it the active one)."""
    version = (connection.scalar(select(func.max(Model.version))) or 0) + 1
    if activate:
        connection.execute(update(Model).values(active=False))
    connection.execute(
        insert(Model).values(
            version=version,
            active=activate,
            settings_json=settings,
            summary_json=summary,
            created_at=utcnow(),
        )
    )
    return version


def active_model(connection: Connection) -> tuple[int, dict[str, Any], dict[str, Any]] | None:
    row = connection.execute(
        select(Model.version, Model.settings_json, Model.summary_json).where(Model.active)
    ).first()
    return (row[0], row[1], row[2] or {}) if row else None


def get_model(connection: Connection, version: int) -> tuple[dict[str, Any], dict[str, Any]] | None:
    row = connection.execute(
        select(Model.settings_json, Model.summary_json).where(Model.version == version)
    ).first()
    return (row[0], row[1] or {}) if row else None


def list_models(connection: Connection) -> list[tuple[int, bool, str, dict[str, Any]]]:
    rows = connection.execute(
        select(Model.version, Model.active, Model.created_at, Model.summary_json).order_by(
            Model.version
        )
    )
    return [(v, bool(a), str(c), s or {}) for v, a, c, s in rows]
