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
        "seconds": round(time.perf_counter() - started, 2),
    }
    return TrainedModel(settings=model, summary=summary)
