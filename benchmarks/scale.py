"""How linkage cost grows with the number of records, on DuckDB and on Spark (local mode).

    .venv/bin/python benchmarks/scale.py [--sizes 100000,300000,1000000,3000000]
        [--engines duckdb,spark] [--out docs/scale]   # writes scale.json and scale.png

For each size: a synthetic population (`linkage.demo`) pseudonymised under a throwaway key,
then per engine, in a fresh spawned process: ingest into a new SQLite registry, train the
model, block+score, cluster and assign (the stages of a full `cci link`, as `run_linkage`
times them). Peak memory is the largest resident set of the process tree, sampled every
0.2 s: on Spark the JVM is a child process and would be missed by getrusage(RUSAGE_SELF).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _measure import spawned

RECORDS_PER_CHILD = 1.79  # what linkage.demo makes (560,000 children -> ~1,000,000 records)
PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree_rss_mib(root: int) -> float:
    """Resident memory of `root` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)  # ppid
        rss[pid] = int(fields[21]) * PAGE  # rss in pages
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total / 2**20


class PeakMemory:
    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, _tree_rss_mib(os.getpid()))

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def generate(children: int, folder: Path) -> Path:
    from linkage.demo import write_delivery
    from linkage.pseudonymise import generate_key, pseudonymise_file

    write_delivery(children, folder, seed=3)
    pseudonymise_file(generate_key(), folder / "records.csv", folder / "pseudo.csv")
    (folder / "records.csv").unlink()
    return folder / "pseudo.csv"


def run_engine(engine_name: str, pseudo: str, folder: str) -> dict[str, Any]:
    """One full linkage of `pseudo` on `engine_name`: seconds per stage, pairs, peak memory."""
    from linkage.model.backend import engine_api
    from linkage.model.training import train_model
    from linkage.run import RegistrySnapshot, Thresholds, run_linkage
    from linkage.settings import linkage_settings
    from linkage.store import ingest_files, make_engine
    from linkage.store.registry import load_snapshot

    seconds: dict[str, float] = {}
    with PeakMemory() as memory:
        if engine_name == "spark":
            from linkage.model.spark import spark_session

            started = time.perf_counter()
            spark_session(driver_memory="8g", shuffle_partitions=8)
            seconds["spark_start"] = time.perf_counter() - started
        engine = make_engine(f"sqlite:///{Path(folder) / f'{engine_name}.db'}")
        started = time.perf_counter()
        ingest_files(engine, [Path(pseudo)])
        with engine.connect() as connection:
            snapshot: RegistrySnapshot = load_snapshot(connection)
        seconds["ingest"] = time.perf_counter() - started
        engine.dispose()

        started = time.perf_counter()
        records = snapshot.records.drop_columns(["source_kind"])
        trained = train_model(records, db_api=engine_api(engine_name))
        seconds["train"] = time.perf_counter() - started

        settings = linkage_settings()
        outcome = run_linkage(
            snapshot,
            trained.settings,
            Thresholds(settings.auto_link_weight, settings.review_weight),
            db_api=engine_api(engine_name),
        )
    stage = outcome.stats["seconds"]
    seconds["block_score"] = stage["score"]
    seconds["cluster"] = stage["cluster"]
    seconds["assign"] = stage["assign"]
    return {
        "engine": engine_name,
        "records": outcome.stats["records"],
        "pairs": outcome.stats["pairs_above_review_threshold"],
        "clusters": outcome.stats["clusters"],
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "peak_mib": round(memory.peak),
    }


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (times, memory) = plt.subplots(1, 2, figsize=(12, 4.5))
    styles = {"duckdb": "-", "spark": "--"}
    for engine_name in sorted({r["engine"] for r in results}):
        rows = sorted(
            (r for r in results if r["engine"] == engine_name), key=lambda r: r["records"]
        )
        x = [r["records"] for r in rows]
        for stage in ("ingest", "train", "block_score", "cluster", "assign"):
            times.plot(
                x,
                [r["seconds"][stage] for r in rows],
                styles[engine_name],
                marker="o",
                label=f"{engine_name} {stage}",
            )
        memory.plot(
            x,
            [r["peak_mib"] / 1024 for r in rows],
            styles[engine_name],
            marker="o",
            label=engine_name,
        )
    for axis in (times, memory):
        axis.set_xscale("log")
        axis.set_xlabel("records")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    times.set_yscale("log")
    times.set_ylabel("seconds")
    times.set_title("wall time per stage")
    memory.set_ylabel("GiB")
    memory.set_title("peak resident memory (process tree)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,300000,1000000,3000000")
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--out", type=Path, default=Path("docs/scale"))
    args = parser.parse_args()
    results_path = args.out.with_suffix(".json")
    results: list[dict[str, Any]] = (
        json.loads(results_path.read_text()) if results_path.exists() else []
    )
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            pseudo = generate(round(size / RECORDS_PER_CHILD), Path(tmp))
            print(
                f"{size:,} records generated in {time.perf_counter() - started:.0f} s", flush=True
            )
            for engine_name in args.engines.split(","):
                result = spawned(run_engine, engine_name, str(pseudo), tmp)
                result["target"] = size
                print(json.dumps(result), flush=True)
                results = [
                    r for r in results if (r["engine"], r["target"]) != (engine_name, size)
                ] + [result]
                results_path.write_text(json.dumps(results, indent=1) + "\n")
                plot(results, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
