"""`cci demo-data`: synthetic raw records with ground truth, for demos, tests and benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from linkage.demo import write_delivery


def demo_data(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write into.")],
    children: Annotated[int, typer.Option(help="Children in the population.", min=1)] = 2000,
    seed: Annotated[int, typer.Option(help="Same seed, same data.")] = 7,
    delivery: Annotated[
        int, typer.Option(help="1: first delivery; 2: the later one (updates, new records).")
    ] = 1,
    split_by_source: Annotated[
        bool, typer.Option("--split-by-source", help="One file per source system.")
    ] = False,
) -> None:
    """Write raw records (the record contract) about a synthetic population of children in
    England, with the errors agencies make, and truth.csv (source_system,record_id,child_id).
    The data is synthetic; never mix it with real records."""
    if delivery not in (1, 2):
        typer.echo("error: --delivery must be 1 or 2", err=True)
        raise typer.Exit(2)
    counts = write_delivery(
        children, out, seed=seed, delivery=delivery, split_by_source=split_by_source
    )
    total = sum(counts.records.values())
    per_source = ", ".join(f"{n} {s}" for s, n in sorted(counts.records.items()))
    files = "one file per source" if split_by_source else f"{out / 'records.csv'}"
    typer.echo(f"wrote {total} records about {counts.children} children ({per_source}) to {files}")
    typer.echo(f"ground truth in {out / 'truth.csv'}")


def register(app: typer.Typer) -> None:
    app.command("demo-data")(demo_data)
