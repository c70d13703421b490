"""The `cci` command: one console script with a sub-command per job."""

from __future__ import annotations

import typer

from cli import clients, db, demo, keys, link, pseudonymise, serve

app = typer.Typer(
    name="cci",
    help="Consistent Childhood Identifier service: pseudonymise, ingest, link and serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

keys.register(app)
pseudonymise.register(app)
db.register(app)
link.register(app)
demo.register(app)
serve.register(app)
clients.register(app)

if __name__ == "__main__":
    app()
