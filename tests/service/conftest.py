"""A live service over real HTTP: uvicorn in a thread on a free port, on a linked registry.

The registry (SQLite file or PostgreSQL database) holds 300 demo children linked with the
default model, source systems health / education / social_care, and one API client per role.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from linkage.demo import write_delivery
from linkage.link import link_registry
from linkage.pseudonymise import LinkageKey, pseudonymise_file
from linkage.pseudonymised_file import read_pseudonymised
from linkage.store import ingest_files, make_engine
from linkage.store.clients import create_client
from linkage.store.database import write_transaction
from service.app import create_app

KEY = LinkageKey(secret=bytes(range(32)))

#: name -> (source systems, scopes)
ROLES: dict[str, tuple[list[str], list[str]]] = {
    "school": (["education"], ["submit", "read"]),
    "gp": (["health"], ["submit", "read", "resolve", "trace"]),
    "social": (["social_care"], ["submit", "read", "resolve"]),
    "reader": (["education"], ["read"]),
    "reviewer": (["education"], ["review"]),
    "admin": ([], ["admin"]),
    "everything": (
        ["education", "health", "social_care"],
        ["submit", "read", "resolve", "trace", "review", "admin"],
    ),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveService:
    url: str
    database_url: str
    keys: dict[str, str]
    #: Pseudonymised rows of the registry's records and of records it has not seen.
    rows: list[dict[str, Any]]
    unseen: list[dict[str, Any]] = field(default_factory=list)
    opened: list[httpx.Client] = field(default_factory=list)

    def client(self, role: str | None = None, **kwargs: Any) -> httpx.Client:
        """An HTTP client sending `role`'s key (none without a role); closed at teardown."""
        headers = {"Authorization": f"Bearer {self.keys[role]}"} if role else {}
        headers.update(kwargs.pop("headers", {}))
        client = httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)
        self.opened.append(client)
        return client

    def close(self) -> None:
        for client in self.opened:
            client.close()


def _rows(path: Path) -> list[dict[str, Any]]:
    rows = [row for batch in read_pseudonymised(path) for row in batch.to_pylist()]
    for row in rows:
        for name, value in row.items():
            if isinstance(value, list):
                row[name] = " ".join(str(t) for t in value)
    return rows


def serve(app: Any) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "service did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def build_registry(database_url: str, folder: Path, children: int = 300) -> LiveService:
    write_delivery(children, folder / "d1", seed=21, delivery=1)
    pseudonymise_file(KEY, folder / "d1" / "records.csv", folder / "d1" / "pseudo.csv")
    write_delivery(60, folder / "other", seed=77, delivery=1)
    pseudonymise_file(KEY, folder / "other" / "records.csv", folder / "other" / "pseudo.csv")
    engine = make_engine(database_url)
    try:
        ingest_files(engine, [folder / "d1" / "pseudo.csv"])
        link_registry(engine)
        keys = {}
        with write_transaction(engine) as connection:
            for role, (sources, scopes) in ROLES.items():
                _, keys[role] = create_client(connection, role, sources, scopes)
    finally:
        engine.dispose()
    unseen = _rows(folder / "other" / "pseudo.csv")
    for row in unseen:
        row["record_id"] = "new-" + row["record_id"]
    return LiveService("", database_url, keys, _rows(folder / "d1" / "pseudo.csv"), unseen)


@pytest.fixture(scope="module")
def live_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """Module-wide live service on an SQLite file (tests that change data use own records)."""
    folder = tmp_path_factory.mktemp("live")
    service = build_registry(f"sqlite:///{folder / 'registry.db'}", folder)
    for url in serve(create_app(service.database_url)):
        service.url = url
        yield service
        service.close()


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[LiveService]:
    """A fresh live service per test, on SQLite and on PostgreSQL (committed data)."""
    service = build_registry(db_url, tmp_path, children=120)
    for url in serve(create_app(db_url)):
        service.url = url
        yield service
        service.close()
