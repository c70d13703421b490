"""`cci keygen` and `cci reveal`: the agency side's linkage key."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from linkage.errors import KeyFileError
from linkage.pseudonymise import generate_key, read_key_file, write_key_file

KeyFileOption = Annotated[
    Path, typer.Option("--key-file", "-k", help="Linkage key file made by `cci keygen`.")
]


def keygen(
    out: Annotated[Path, typer.Option("--out", "-o", help="Key file to create (mode 0600).")],
) -> None:
    """Create a new random linkage key in a new file and print its key id.

    The key stays with the agencies that share it; the service only ever learns its id.
    An existing file is never overwritten.
    """
    key = generate_key()
    try:
        write_key_file(key, out)
    except KeyFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(key.key_id)


def reveal(
    key_file: KeyFileOption,
    ciphertexts: Annotated[
        list[str] | None,
        typer.Argument(help="NHS number ciphertexts; read one per line from stdin if none."),
    ] = None,
) -> None:
    """Decrypt NHS number ciphertexts (`nhs_number_enc`, or the service's trace answer)."""
    try:
        key = read_key_file(key_file)
    except KeyFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    values = ciphertexts or [line.strip() for line in sys.stdin if line.strip()]
    failed = 0
    for ciphertext in values:
        try:
            typer.echo(key.reveal_nhs_number(ciphertext))
        except KeyFileError:
            failed += 1
            typer.echo("", nl=True)
    if failed:
        typer.echo(f"error: {failed} ciphertext(s) not produced under key {key.key_id}", err=True)
        raise typer.Exit(3)


def register(app: typer.Typer) -> None:
    app.command()(keygen)
    app.command()(reveal)
