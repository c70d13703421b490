"""API clients: agency systems' keys, bound to source systems and scopes (DESIGN.md, Access).

A key is shown once, when made; the registry keeps only its SHA-256, so a copy of the database
does not let anyone call the service.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, insert, select, update

from linkage.errors import CCIError
from linkage.store.models import ApiClient, SourceSystem, api_client_sources, utcnow

#: The scopes, named exactly as DESIGN.md names them.
SCOPES: tuple[str, ...] = ("submit", "read", "resolve", "trace", "review", "admin")
KEY_PREFIX = "cci_"


class ClientError(CCIError):
    """A client cannot be made or changed as asked (unknown scope or source system)."""


@dataclass(frozen=True)
class Client:
    id: int
    name: str
    scopes: frozenset[str]
    #: source system code -> id, the systems this client submits and reads for.
    sources: dict[str, int]
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def actor(self) -> str:
        """How the audit log names this client."""
        return f"client:{self.id}:{self.name}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_client(
    connection: Connection, name: str, source_codes: list[str], scopes: list[str]
) -> tuple[Client, str]:
    """Make a client and its key; the key is returned here and never again."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ClientError(
            f"unknown scope {', '.join(unknown)}"
            if unknown
            else f"give at least one scope (scopes: {', '.join(SCOPES)})"
        )
    found = dict(
        connection.execute(
            select(SourceSystem.code, SourceSystem.id).where(SourceSystem.code.in_(source_codes))
        ).all()
    )
    missing = sorted(set(source_codes) - set(found))
    if missing:
        raise ClientError(
            f"unknown source system {', '.join(missing)} (register it with `cci sources add`)"
        )
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    client_id = connection.execute(
        insert(ApiClient)
        .values(name=name, key_hash=hash_key(key), scopes=sorted(set(scopes)), created_at=now)
        .returning(ApiClient.id)
    ).scalar_one()
    if found:
        connection.execute(
            insert(api_client_sources),
            [{"client_id": client_id, "source_system_id": i} for i in found.values()],
        )
    return Client(client_id, name, frozenset(scopes), found, now), key


def _sources(connection: Connection, client_id: int) -> dict[str, int]:
    return dict(
        connection.execute(
            select(SourceSystem.code, SourceSystem.id)
            .join(api_client_sources, api_client_sources.c.source_system_id == SourceSystem.id)
            .where(api_client_sources.c.client_id == client_id)
        ).all()
    )


def authenticate(connection: Connection, key: str) -> Client | None:
    """The live client holding `key`, or None (unknown or revoked)."""
    return _live(connection, ApiClient.key_hash == hash_key(key))


def live_client(connection: Connection, client_id: int) -> Client | None:
    """The client with this id while its key is live (a signed-in session's), else None."""
    return _live(connection, ApiClient.id == client_id)


def _live(connection: Connection, which: ColumnElement[bool]) -> Client | None:
    row = connection.execute(
        select(ApiClient.id, ApiClient.name, ApiClient.scopes, ApiClient.created_at).where(
            which, ApiClient.revoked_at.is_(None)
        )
    ).first()
    if row is None:
        return None
    return Client(
        row.id, row.name, frozenset(row.scopes), _sources(connection, row.id), row.created_at
    )


def list_clients(connection: Connection) -> list[Client]:
    rows = connection.execute(select(ApiClient).order_by(ApiClient.id)).all()
    return [
        Client(
            r.id,
            r.name,
            frozenset(r.scopes),
            _sources(connection, r.id),
            r.created_at,
            r.revoked_at,
        )
        for r in rows
    ]


def revoke_client(connection: Connection, client_id: int) -> bool:
    """Revoke a client's key at once; False if there is no such live client."""
    result = connection.execute(
        update(ApiClient)
        .where(ApiClient.id == client_id, ApiClient.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return bool(result.rowcount)
