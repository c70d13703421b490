"""Pseudonymised rows made directly per the contract (random tokens), for store tests."""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

from linkage.contract import (
    COLUMN_TYPES,
    ENCODING_VERSION,
    PSEUDONYMISED_COLUMN_NAMES,
    PSEUDONYMISED_REQUIRED,
)

KEY_ID = "k0123456789abcde"


def pseudo_row(
    rng: random.Random, source: str, record_id: str, key_id: str = KEY_ID
) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in PSEUDONYMISED_COLUMN_NAMES:
        kind = COLUMN_TYPES[name]
        if kind == "int64":
            missing = name not in PSEUDONYMISED_REQUIRED and rng.random() < 0.1
            row[name] = None if missing else rng.randint(-(2**63), 2**63 - 1)
        elif kind == "int64_set":
            row[name] = " ".join(str(rng.randint(-(2**63), 2**63 - 1)) for _ in range(2))
        elif kind == "bool":
            row[name] = rng.random() < 0.05
        else:
            row[name] = f"ct{rng.getrandbits(64):x}"
    row.update(
        source_system=source,
        record_id=record_id,
        key_id=key_id,
        encoding_version=ENCODING_VERSION,
        sex=rng.choice(["F", "M", None]),
    )
    return row


def write_pseudo_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    def cell(value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return value

    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(PSEUDONYMISED_COLUMN_NAMES)
        for row in rows:
            writer.writerow([cell(row[c]) for c in PSEUDONYMISED_COLUMN_NAMES])
    return path
