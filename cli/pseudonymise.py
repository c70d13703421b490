"""`cci pseudonymise`: the agency-side step that turns raw records into encodings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.keys import KeyFileOption
from cli.progress import progress_bar
from linkage.errors import KeyFileError, UnusableInputError
from linkage.pseudonymise import pseudonymise_file, read_key_file, rejects_path

MAX_WARNINGS_SHOWN = 20


def pseudonymise(
    key_file: KeyFileOption,
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="Raw CSV or Parquet file.")],
    output_path: Annotated[
        Path,
        typer.Argument(metavar="OUTPUT", help="Pseudonymised file (.csv, or .parquet)."),
    ],
) -> None:
    """Validate raw records and write their keyed encodings to OUTPUT.

    Rejected rows are listed in OUTPUT.rejects.csv (row number, record id, reason; never the
    input values). Exit codes: 0 all rows written, 3 some rows rejected, 2 unusable input
    (nothing written).
    """
    try:
        key = read_key_file(key_file)
        with progress_bar("pseudonymising") as progress:
            summary = pseudonymise_file(key, input_path, output_path, progress=progress)
    except (KeyFileError, UnusableInputError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc

    for row, warning in summary.warning_rows[:MAX_WARNINGS_SHOWN]:
        typer.echo(f"warning: row {row}: {warning}", err=True)
    hidden = sum(summary.warnings.values()) - min(len(summary.warning_rows), MAX_WARNINGS_SHOWN)
    if hidden > 0:
        typer.echo(f"warning: {hidden} more warning(s) not shown", err=True)
    typer.echo(
        f"{summary.rows_read} rows read, {summary.rows_written} written to {output_path}, "
        f"{summary.rows_rejected} rejected (key id {summary.key_id})"
    )
    for warning, count in summary.warnings.most_common():
        typer.echo(f"  {count} x {warning}")
    if summary.rows_rejected:
        for reason, count in summary.reject_reasons.most_common():
            typer.echo(f"  rejected {count} x {reason}")
        typer.echo(f"rejected rows are listed in {rejects_path(output_path)}")
        raise typer.Exit(3)


def register(app: typer.Typer) -> None:
    app.command()(pseudonymise)
