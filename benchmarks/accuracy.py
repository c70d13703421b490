"""Accuracy of the service's linkage against plain Splink on the same records in clear.

    .venv/bin/python benchmarks/accuracy.py [--children 100000] [--seed 11]

Both sides see the same valid records of the generated population (delivery 1). The service
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
from pathlib import Path
from typing import Any

import pyarrow as pa
import splink.comparison_library as cl
from splink import Linker, SettingsCreator, block_on

from linkage.demo import DEFAULT_TODAY, population, write_delivery
from linkage.evaluation import accuracy
from linkage.identity.clustering import cluster_records
from linkage.link import link_registry, write_assignments
from linkage.model.backend import duckdb_api
from linkage.pseudonymise import generate_key, pseudonymise_file
from linkage.pseudonymise.normalise import normalise_name, normalise_nhs_number, normalise_postcode
from linkage.settings import linkage_settings
from linkage.store import ingest_files, make_engine

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


def plain_splink_pairs(records: pa.Table) -> tuple[list[tuple[int, int, float]], float]:
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
    started = time.perf_counter()
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
    pairs = linker.inference.predict(threshold_match_weight=min(SWEEP)).as_pyarrow_table()
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    auto = linkage_settings().auto_link_weight
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for delivery in (1, 2):
            write_delivery(
                args.children, folder / f"d{delivery}", seed=args.seed, delivery=delivery
            )
        key = generate_key()
        for delivery in (1, 2):
            d = folder / f"d{delivery}"
            pseudonymise_file(key, d / "records.csv", d / "pseudo.csv")
        truth = {
            f"{r['source_system']}|{r['record_id']}": r["child_id"]
            for r in read_csv(folder / "d1" / "truth.csv")
        }
        records_of: dict[str, list[str]] = defaultdict(list)
        for record, child in truth.items():
            records_of[child].append(record)
        people = population(args.children, args.seed, DEFAULT_TODAY)
        by_birth: dict[tuple[int, object], list[str]] = defaultdict(list)
        for child in people:
            by_birth[(child.household.number, child.date_of_birth)].append(child.child_id)
        twin_pairs = [(g[0], g[1]) for g in by_birth.values() if len(g) > 1]

        # -- the service, pseudonymised ---------------------------------------------------
        engine = make_engine(f"sqlite:///{folder / 'registry.db'}")
        started = time.perf_counter()
        ingest_files(engine, [folder / "d1" / "pseudo.csv"])
        report = link_registry(engine)
        service_seconds = time.perf_counter() - started
        write_assignments(engine, folder / "a1.csv")
        ours = {
            f"{r['source_system']}|{r['record_id']}": r["cci"] for r in read_csv(folder / "a1.csv")
        }
        kept_keys = {tuple(k.split("|", 1)) for k in ours}

        # -- plain Splink in clear --------------------------------------------------------
        clear = clear_records(folder / "d1" / "records.csv", kept_keys)  # type: ignore[arg-type]
        keys = clear["key"].to_pylist()
        ids = clear["unique_id"].to_pylist()
        key_of = dict(zip(ids, keys, strict=True))
        pairs, splink_seconds = plain_splink_pairs(clear.drop_columns(["key"]))

        print(
            f"{len(ours):,} valid records of {args.children:,} children; "
            f"{len(twin_pairs):,} twin pairs; model: {report.model_source}"
        )
        truth_kept = {k: truth[k] for k in ours}
        print(
            f"service (pseudonymised) at auto-link {auto}: {scores(ours, truth_kept)}; "
            f"twins merged {twins_merged(ours, twin_pairs, records_of)}; "
            f"ingest+link {service_seconds:.0f} s"
        )
        for threshold in SWEEP:
            links = [(a, b, w) for a, b, w in pairs if w >= threshold]
            result = cluster_records(ids, links)
            plain = {key_of[u]: i for i, members in enumerate(result.clusters) for u in members}
            marker = " <- auto-link weight" if threshold == auto else ""
            print(
                f"plain Splink, clear, weight {threshold:>2}: {scores(plain, truth_kept)}; "
                f"twins merged {twins_merged(plain, twin_pairs, records_of)}{marker}"
            )
        print(f"plain Splink train+predict {splink_seconds:.0f} s")

        # -- stability across the second delivery ------------------------------------------
        ingest_files(engine, [folder / "d2" / "pseudo.csv"])
        second_report = link_registry(engine)
        write_assignments(engine, folder / "a2.csv")
        second = {
            f"{r['source_system']}|{r['record_id']}": r["cci"] for r in read_csv(folder / "a2.csv")
        }
        members: dict[str, set[str]] = defaultdict(set)
        for record, cci in ours.items():
            members[cci].add(record)
        unchanged = [
            c
            for c, m in members.items()
            if {second.get(r) for r in m} == {c}
            and sum(1 for v in second.values() if v == c) == len(m)
        ]
        changed_cci = sum(1 for c, m in members.items() if {second.get(r) for r in m} != {c})
        print(
            f"second delivery: {second_report.stats['new']} new, {second_report.stats['merged']} "
            f"merged, {second_report.stats['split']} split; CCIs of unchanged clusters kept: "
            f"{len(unchanged):,}; CCIs changed for some of their first-delivery records: "
            f"{changed_cci:,} of {len(members):,}"
        )
        engine.dispose()


if __name__ == "__main__":
    main()
