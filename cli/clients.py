"""`cci clients ...`: API keys for agency systems, bound to source systems and scopes."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.db import DatabaseOption, registry
from linkage.store.clients import SCOPES, ClientError, create_client, list_clients, revoke_client
from linkage.store.database import write_transaction

clients_app = typer.Typer(
    help="API keys for agency systems (stored as SHA-256; shown once).", no_args_is_help=True
)


@clients_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="Who the key is for, e.g. 'Leeds MIS'.")],
    source_systems: Annotated[
        list[str] | None,
        typer.Option("--source-system", "-s", help="Source system the key acts for (repeatable)."),
    ] = None,
    scopes: Annotated[
        list[str] | None,
        typer.Option("--scope", help=f"Scope to grant (repeatable): {', '.join(SCOPES)}."),
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Make an API key and print it once: store it in the agency system's secret store."""
    with registry(database_url) as engine, write_transaction(engine) as connection:
        try:
            client, key = create_client(connection, name, source_systems or [], scopes or [])
        except ClientError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2) from error
    typer.echo(f"client {client.id} ({client.name}): scopes {', '.join(sorted(client.scopes))}")
    typer.echo("API key (shown only now):", err=True)
    typer.echo(key)


@clients_app.command("list")
def list_(database_url: DatabaseOption = None) -> None:
    """Every client: id, name, source systems, scopes, and whether it is revoked."""
    with registry(database_url) as engine, engine.connect() as connection:
        clients = list_clients(connection)
    if not clients:
        typer.echo("no clients (make one with `cci clients create`)")
    for c in clients:
        state = f"revoked {c.revoked_at:%Y-%m-%d}" if c.revoked_at else "live"
        typer.echo(
            f"{c.id:>4}  {c.name:<24} sources={','.join(sorted(c.sources)) or '-':<24} "
            f"scopes={','.join(sorted(c.scopes))}  {state}"
        )


@clients_app.command("revoke")
def revoke(
    client_id: Annotated[int, typer.Argument(help="The client's id (see `cci clients list`).")],
    database_url: DatabaseOption = None,
) -> None:
    """Revoke a client's key at once; its calls get 401 from then on."""
    with registry(database_url) as engine, write_transaction(engine) as connection:
        if not revoke_client(connection, client_id):
            typer.echo(f"error: no live client {client_id}", err=True)
            raise typer.Exit(2)
    typer.echo(f"client {client_id} revoked")


def register(app: typer.Typer) -> None:
    app.add_typer(clients_app, name="clients")
