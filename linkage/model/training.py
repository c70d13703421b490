"""Unsupervised training of the linkage model with Splink: λ, u by random sampling, m by EM.

The trained model is Splink's settings JSON (with m/u per level) plus a short training summary;
both are stored as a model version in the registry.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from splink import Linker, block_on

from linkage.model.backend import duckdb_api, register_records
from linkage.model.settings import settings_creator

#: Below this many records EM is not sound (too few matching pairs per block); `cci link` then
#: uses the default model shipped with the package.
MIN_RECORDS_FOR_TRAINING = 5_000
DETERMINISTIC_RULES = (
    "l.nhs_number_enc = r.nhs_number_enc",
    "l.given_name_tok = r.given_name_tok AND l.family_name_tok = r.family_name_tok "
    "AND l.dob_tok = r.dob_tok",
)
#: Recall assumed of the deterministic rules when estimating λ.
DETERMINISTIC_RECALL = 0.8
#: Identifier comparisons (name -> encoded column) whose agreement random sampling almost never
#: meets among non-matching pairs: u comes from the token space instead (`agreement_u`).
IDENTIFIERS = {"nhs_number": "nhs_number_enc", "upn": "upn_tok", "la_child_id": "la_child_id_tok"}


@dataclass
class TrainedModel:
    """A Splink model JSON and how it was made."""

    settings: dict[str, Any]
    summary: dict[str, Any] = field(default_factory=dict)


def train_model(
    records: pa.Table,
    *,
    seed: int = 42,
    u_max_pairs: float = 5e6,
    em_max_pairs: float = 2e6,
    db_api: Any = None,
) -> TrainedModel:
    """Train on registry records (contract columns + unique_id)."""
    started = time.perf_counter()
    db_api = db_api or duckdb_api()
    frame = register_records(db_api, records, "training_records")
    linker = Linker(frame, settings_creator(), log_level=logging.WARNING)

    training = linker.training
    training.estimate_probability_two_random_records_match(
        list(DETERMINISTIC_RULES), recall=DETERMINISTIC_RECALL
    )
    training.estimate_u_using_random_sampling(max_pairs=u_max_pairs, seed=seed)
    fixed_u = _identifier_u(linker, records)  # before EM, which keeps u as it finds it
    sessions = []
    for rule in (block_on("dob_tok"), block_on("given_name_tok", "family_name_tok")):
        session = training.estimate_parameters_using_expectation_maximisation(
            rule, estimate_without_term_frequencies=True, max_pairs=em_max_pairs
        )
        sessions.append(session)
    model = linker.misc.save_model_to_json()
    summary = {
        "records": records.num_rows,
        "seed": seed,
        "probability_two_random_records_match": model["probability_two_random_records_match"],
        "em_sessions": len(sessions),
        "u_from_token_space": fixed_u,
        "seconds": round(time.perf_counter() - started, 2),
    }
    return TrainedModel(settings=model, summary=summary)


def agreement_u(values: pa.ChunkedArray | pa.Array) -> float | None:
    """u of exact agreement on an identifier: the chance that two records drawn at random
    agree on it, sum over values of (share of non-null records holding the value)^2.

    Random sampling cannot estimate this. A unique identifier agrees between two different
    children only by error, so among millions of random pairs the level is met a handful of
    times or never (Splink then leaves u untrained and warns), and the few agreeing pairs it
    meets are mostly the same child. The token-space figure counts same-child pairs as if
    they were not matches, so it is an upper bound on u: the weight it gives agreement is
    conservative, and it is stable from run to run. None when fewer than two values exist.
    """
    counts = pc.value_counts(values.drop_null()).field("counts")
    if len(counts) < 2:
        return None
    # Exact integer sums in Arrow (a million records' counts as Python ints took 0.15 s).
    total = int(pc.sum(counts).as_py())
    squares = int(pc.sum(pc.multiply(counts, counts)).as_py())
    return float(squares / (total * total))


def _identifier_u(linker: Linker, records: pa.Table) -> dict[str, float]:
    """Set u of each identifier comparison's agreement level (and of its ELSE level, so
    they sum to one) from the token space; returns the values set."""
    fixed: dict[str, float] = {}
    for comparison in linker._settings_obj.comparisons:
        column = IDENTIFIERS.get(comparison.output_column_name)
        if column is None:
            continue
        u = agreement_u(records[column])
        if u is None:
            continue
        # Splink re-derives u from each level's list of estimates after EM: replace the
        # sampled estimate there, not only the current value.
        levels = comparison._comparison_levels_excluding_null  # agreement, ELSE
        for level, value in zip(levels, (u, 1.0 - u), strict=True):
            level._trained_u_probabilities = []
            level._add_trained_u_probability(value, "token space (agreement_u)")
            level.u_probability = value
        fixed[comparison.output_column_name] = u
    return fixed
