"""The default model shipped with the package, for registries too small to train on.

EM needs many matching pairs per block to be sound; a local authority's first small delivery
does not have them. The default model was trained on the project's synthetic population
(never real data) and is regenerated with:

    python -m linkage.model.default --children 50000
"""

from __future__ import annotations

import argparse
import json
import tempfile
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

DEFAULT_MODEL_FILE = "default_model.json"


@cache
def _load() -> str:
    return resources.files(__package__).joinpath(DEFAULT_MODEL_FILE).read_text("utf-8")


def default_model() -> dict[str, Any]:
    model: dict[str, Any] = json.loads(_load())
    return model


def build_default_model(children: int, seed: int = 1) -> dict[str, Any]:
    """Train on a synthetic population pseudonymised under a throwaway key."""
    import pyarrow as pa

    from linkage.demo import write_delivery
    from linkage.model.training import train_model
    from linkage.pseudonymise import generate_key, pseudonymise_file
    from linkage.pseudonymised_file import read_pseudonymised

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_delivery(children, folder, seed=seed)
        pseudonymise_file(generate_key(), folder / "records.csv", folder / "pseudo.csv")
        table = pa.concat_tables(list(read_pseudonymised(folder / "pseudo.csv")))
    table = table.append_column("unique_id", pa.array(range(1, table.num_rows + 1), pa.int64()))
    trained = train_model(table)
    return trained.settings


def main() -> None:
    parser = argparse.ArgumentParser(description="Regenerate the shipped default model.")
    parser.add_argument("--children", type=int, default=50_000)
    args = parser.parse_args()
    target = Path(__file__).with_name(DEFAULT_MODEL_FILE)
    target.write_text(json.dumps(build_default_model(args.children), indent=1) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
