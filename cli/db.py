"""`cci db ...`, `cci ingest` and `cci sources ...`: the registry store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from cli.progress import progress_bar
from linkage.contract import SOURCE_KINDS
from linkage.errors import CCIError, UnknownKeyError, UnusableInputError
from linkage.store import (
    add_source,
    batch_engine,
    current_revision,
    database_url,
    downgrade,
    ingest_files,
    list_sources,
    make_engine,
    upgrade,
)

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="Registry database (default: CCI_DATABASE_URL, else sqlite:///cci.db).",
        show_default=False,
    ),
]

db_app = typer.Typer(help="Create and migrate the registry database.", no_args_is_help=True)
sources_app = typer.Typer(help="Registered source systems.", no_args_is_help=True)


def _url(database_url_option: str | None) -> str:
    return database_url(database_url_option)


@contextmanager
def _reachable(url: str) -> Iterator[None]:
    """A registry that cannot be opened is a one-line error (exit 1), not a traceback."""
    try:
        yield
    except (OperationalError, ArgumentError) as exc:
        try:
            shown = make_url(url).render_as_string(hide_password=True)
        except ArgumentError:
            shown = "the given URL"
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        typer.echo(f"error: cannot use the registry at {shown}: {reason}", err=True)
        raise typer.Exit(1) from exc


@contextmanager
def registry(database_url: str | None) -> Iterator[Engine]:
    """The registry's engine, migrated to the latest schema, disposed of afterwards."""
    url = _url(database_url)
    with _reachable(url):
        engine = make_engine(url)
    try:
        with _reachable(url):
            upgrade(engine)
        yield engine
    finally:
        engine.dispose()


@db_app.command("upgrade")
def db_upgrade(
    database_url: DatabaseOption = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Migrate the registry to the latest schema (creates it if missing)."""
    url = _url(database_url)
    with _reachable(url):
        upgrade(url, revision)
        typer.echo(f"registry at revision {current_revision(url)}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, e.g. base or -1.")],
    database_url: DatabaseOption = None,
) -> None:
    """Migrate the registry back to an earlier revision (`base` drops every table)."""
    url = _url(database_url)
    with _reachable(url):
        downgrade(url, revision)
        typer.echo(f"registry at revision {current_revision(url) or 'base (no schema)'}")


@db_app.command("current")
def db_current(database_url: DatabaseOption = None) -> None:
    """Print the registry's schema revision."""
    url = _url(database_url)
    with _reachable(url):
        typer.echo(current_revision(url) or "empty (no schema)")


def ingest(
    files: Annotated[list[Path], typer.Argument(help="Pseudonymised CSV or Parquet files.")],
    database_url: DatabaseOption = None,
) -> None:
    """Load pseudonymised files into the registry (idempotent; changed records get a new
    version). Exit 2 when a file is unusable or encoded under an unregistered key id; nothing
    of the call is then ingested."""
    url = _url(database_url)
    with _reachable(url):
        try:
            with batch_engine(url) as engine, progress_bar("ingesting") as progress:
                summary = ingest_files(engine, files, progress=progress)
        except (UnusableInputError, UnknownKeyError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
    for key_id in summary.key_ids_registered:
        typer.echo(f"registered key id {key_id}")
    typer.echo(
        f"{summary.rows_read} rows from {summary.files} file(s): {summary.records_added} new "
        f"records, {summary.versions_added} new versions, {summary.unchanged} unchanged "
        f"({summary.seconds:.1f} s, {summary.rows_per_second:,.0f} rows/s)"
    )
    for code, counts in sorted(summary.per_source.items()):
        typer.echo(
            f"  {code:<24} {counts.rows:>10,} rows {counts.records_added:>10,} new records "
            f"{counts.versions_added:>10,} new versions"
        )


@sources_app.command("add")
def sources_add(
    code: Annotated[str, typer.Argument(help="Source system code, e.g. education_leeds.")],
    kind: Annotated[str, typer.Option(help=f"One of: {', '.join(SOURCE_KINDS)}.")],
    database_url: DatabaseOption = None,
) -> None:
    """Register a source system with its kind (or change the kind of a registered one)."""
    try:
        with registry(database_url) as engine, engine.begin() as connection:
            added = add_source(connection, code, kind)
    except CCIError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"{'added' if added else 'updated'} {code} ({kind})")


@sources_app.command("list")
def sources_list(database_url: DatabaseOption = None) -> None:
    """List source systems with their kind and number of active records."""
    with registry(database_url) as engine, engine.connect() as connection:
        rows = list_sources(connection)
    for code, kind, count in rows:
        typer.echo(f"{code:<24} {kind:<12} {count:>10,} records")


def register(app: typer.Typer) -> None:
    """Add `db`, `ingest` and `sources` to the `cci` command."""
    app.add_typer(db_app, name="db")
    app.command()(ingest)
    app.add_typer(sources_app, name="sources")
