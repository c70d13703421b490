"""`cci link` runs linkage over the registry; `cci model ...` manages the trained models."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import Engine

from cli.db import DatabaseOption, _url, registry
from cli.progress import progress_bar
from linkage.errors import CCIError, UnknownKeyError, UnusableInputError
from linkage.link import STAGES, LinkReport, link_files, link_registry, write_assignments
from linkage.model.backend import ENGINES
from linkage.model.training import train_model
from linkage.store import batch_engine
from linkage.store.database import write_transaction
from linkage.store.model_versions import active_model, get_model, list_models, save_model
from linkage.store.registry import load_snapshot

model_app = typer.Typer(
    help="Trained linkage models, versioned in the registry.", no_args_is_help=True
)


def _print_stats(stats: dict[str, Any]) -> None:
    order = (
        "records",
        "records_scored",
        "records_reclustered",
        "pairs_above_review_threshold",
        "links",
        "clusters",
        "new",
        "kept",
        "merged",
        "split",
        "reinstated",
        "retired",
        "reassigned_records",
        "review_items",
        "nhs_anchored_clusters",
        "refused_nhs_conflict",
        "refused_cannot_link",
    )
    for key in order:
        typer.echo(f"  {key.replace('_', ' '):<30} {stats.get(key, 0):>12,}")
    typer.echo(f"  {'scoring':<30} {stats.get('scoring', 'full'):>12}")
    seconds = stats.get("seconds", {})
    typer.echo("  seconds per stage: " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()))


def link(
    inputs: Annotated[
        list[Path] | None,
        typer.Option("--input", "-i", help="Pseudonymised file to ingest first (repeatable)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write source_system,record_id,cci of every record."),
    ] = None,
    database_url: DatabaseOption = None,
    engine_name: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="Where Splink runs: duckdb (embedded) or spark (CCI_SPARK_MASTER, or the "
            "session spark-submit made). Default: CCI_LINK_ENGINE, else duckdb.",
        ),
    ] = None,
) -> None:
    """Link every record in the registry: score candidate pairs with the active model (or
    train one, or use the shipped default for small registries), cluster under the data
    officers' decisions, and carry CCIs over stably. Exit 2 on unusable input."""
    if engine_name not in (None, *ENGINES):
        typer.echo(f"error: --engine must be one of {', '.join(ENGINES)}", err=True)
        raise typer.Exit(2)
    started = time.perf_counter()
    try:
        with batch_engine(_url(database_url)) as engine:
            report = _link(engine, inputs, output, engine_name)
    except (UnusableInputError, UnknownKeyError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except CCIError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"linkage run {report.run_id} with {report.model_source}")
    _print_stats(report.stats)
    typer.echo(f"  total seconds {time.perf_counter() - started:.1f}")


def _link(
    engine: Engine, inputs: list[Path] | None, output: Path | None, engine_name: str | None
) -> LinkReport:
    """Ingest `inputs`, run linkage, write `output`: what `cci link` does inside its engine."""
    with progress_bar("ingesting and linking" if inputs else "linking") as progress:

        def stage(name: str) -> None:
            if progress is None:  # not a terminal: a line per stage
                typer.echo(f"  ... {name} done", err=True)
            elif name in STAGES:
                progress(STAGES.index(name) + 1, len(STAGES))

        if inputs:
            # Into an empty registry the run works on the files' records while they are
            # written; else it follows the ingest and builds its look-up indexes as it scores.
            summary, report = link_files(
                engine, inputs, stage=stage, link_engine=engine_name, progress=progress
            )
        else:
            report = link_registry(engine, stage=stage, link_engine=engine_name)
    if inputs:
        typer.echo(
            f"ingested {summary.rows_read} rows: {summary.records_added} new records, "
            f"{summary.versions_added} new versions, {summary.unchanged} unchanged"
        )
    if output is not None:
        rows = write_assignments(engine, output)
        typer.echo(f"wrote {rows} assignments to {output}")
    return report


@model_app.command("train")
def model_train(
    database_url: DatabaseOption = None,
    seed: Annotated[int, typer.Option(help="Seed for u sampling.")] = 42,
) -> None:
    """Train a model on the registry's current records and make it the active version."""
    with registry(database_url) as engine:
        with engine.connect() as connection:
            records = load_snapshot(connection).records.drop_columns(["source_kind"])
        if records.num_rows < 2:
            typer.echo("error: the registry has too few records to train on", err=True)
            raise typer.Exit(2)
        trained = train_model(records, seed=seed)
        with write_transaction(engine) as connection:
            version = save_model(connection, trained.settings, trained.summary)
    typer.echo(f"model v{version} trained on {records.num_rows} records and made active")


def _model(
    database_url: str | None, version: int | None
) -> tuple[int, dict[str, Any], dict[str, Any]]:
    with registry(database_url) as engine, engine.connect() as connection:
        if version is None:
            found = active_model(connection)
            if found is None:
                typer.echo("error: no active model (run `cci model train` or `cci link`)", err=True)
                raise typer.Exit(2)
            return found
        stored = get_model(connection, version)
    if stored is None:
        typer.echo(f"error: no model v{version}", err=True)
        raise typer.Exit(2)
    return version, stored[0], stored[1]


@model_app.command("show")
def model_show(
    version: Annotated[int | None, typer.Option(help="Model version (default: active).")] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Print a model: m and u per level, match weights, and the decision thresholds."""
    from linkage.model.realtime import CompiledModel
    from linkage.settings import linkage_settings

    number, settings, summary = _model(database_url, version)
    compiled = CompiledModel(settings)
    thresholds = linkage_settings()
    typer.echo(f"model v{number}: {json.dumps(summary)}")
    typer.echo(
        f"prior match weight {compiled.prior_weight:.2f}; auto-link at match weight >= "
        f"{thresholds.auto_link_weight}, review at >= {thresholds.review_weight}"
    )
    for comparison, levels in compiled.comparisons:
        typer.echo(f"{comparison.name}: {comparison.description}")
        for gamma in sorted(levels, reverse=True):
            level = levels[gamma]
            m = "-" if level.m_probability is None else f"{level.m_probability:.4g}"
            u = "-" if level.u_probability is None else f"{level.u_probability:.4g}"
            tf = f" (+ term frequency of {level.tf_column})" if level.tf_column else ""
            typer.echo(
                f"  {gamma:>2} {level.label:<58} m={m:<10} u={u:<10} "
                f"weight={level.match_weight:+.2f}{tf}"
            )


@model_app.command("list")
def model_list(database_url: DatabaseOption = None) -> None:
    """List model versions."""
    with registry(database_url) as engine, engine.connect() as connection:
        rows = list_models(connection)
    for version, active, created, summary in rows:
        typer.echo(f"v{version}{' (active)' if active else ''}  {created}  {json.dumps(summary)}")


@model_app.command("export")
def model_export(
    out: Annotated[Path, typer.Option("--out", "-o", help="JSON file to write.")],
    version: Annotated[int | None, typer.Option(help="Model version (default: active).")] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Export a model as Splink JSON (loadable by Splink and by `cci model import`)."""
    number, settings, _ = _model(database_url, version)
    out.write_text(json.dumps(settings, indent=1) + "\n", encoding="utf-8")
    typer.echo(f"wrote model v{number} to {out}")


@model_app.command("import")
def model_import(
    path: Annotated[Path, typer.Argument(help="Splink model JSON.")],
    database_url: DatabaseOption = None,
) -> None:
    """Import a Splink model JSON as a new active version."""
    from linkage.model.realtime import CompiledModel

    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
        CompiledModel(settings)  # refuse a model that does not fit the comparison catalogue
    except Exception as exc:  # any failure to load means the file is unusable
        typer.echo(f"error: {path} is not a usable model: {exc}", err=True)
        raise typer.Exit(2) from exc
    with registry(database_url) as engine, write_transaction(engine) as connection:
        version = save_model(connection, settings, {"source": f"imported from {path.name}"})
    typer.echo(f"imported as model v{version} (active)")


def register(app: typer.Typer) -> None:
    app.command()(link)
    app.add_typer(model_app, name="model")
