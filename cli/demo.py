"""`cci demo-data`: synthetic raw records with ground truth, for demos, tests and benchmarks."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from linkage.demo import DEFAULT_TODAY, first_extract_date, generate


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter("expected YYYY-MM-DD") from exc


def demo_data(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write into.")],
    children: Annotated[
        int, typer.Option("--children", "-n", help="Children in the population.", min=1)
    ] = 2000,
    seed: Annotated[int, typer.Option(help="Same seed, same data.")] = 7,
    delivery: Annotated[
        int,
        typer.Option(
            help="1: the first delivery. 2: the same records re-sent (some updated) plus new "
            "records (school starters, children entering social care, births).",
            min=1,
            max=2,
        ),
    ] = 1,
    split_by_source: Annotated[
        bool,
        typer.Option(
            "--split-by-source",
            help="Write health.csv, education.csv and social_care.csv instead of records.csv.",
        ),
    ] = False,
    today: Annotated[
        str,
        typer.Option(
            help="Date of the second extract (YYYY-MM-DD); the first is 91 days earlier.",
        ),
    ] = DEFAULT_TODAY.isoformat(),
) -> None:
    """Write raw records (the record contract, CSV) about a synthetic population of children
    in England as health, education and social care hold them, with the errors agencies make
    (typos, nicknames, swapped dates, old addresses, wrong NHS numbers, duplicates, a few
    invalid rows), and truth.csv (source_system,record_id,child_id). Deterministic for a seed.
    The data is synthetic; never mix it with real records."""
    extract = _parse_date(today)
    summary = generate(
        out,
        children,
        seed=seed,
        delivery=delivery,
        split_by_source=split_by_source,
        today=extract,
    )
    per_source = ", ".join(f"{summary.records[s]} {s}" for s in sorted(summary.records))
    on = extract if delivery == 2 else first_extract_date(extract)
    typer.echo(
        f"delivery {delivery} (extracted {on}): {summary.total} records about "
        f"{summary.children} children ({per_source})"
    )
    for path in summary.files:
        typer.echo(f"  wrote {path}")
    typer.echo(f"  wrote {summary.truth} (ground truth)")
    invalid = summary.errors.get("invalid_row", 0)
    typer.echo(f"{invalid} rows are invalid on purpose (validation should reject them)")
    if summary.changes:
        changes = ", ".join(f"{n} {kind}" for kind, n in sorted(summary.changes.items()))
        typer.echo(f"changes since delivery 1: {changes}")


def register(app: typer.Typer) -> None:
    app.command("demo-data")(demo_data)
