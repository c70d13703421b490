"""Real-time matching through HTTP against a large registry, with Splink's own per-record match
timed on the same registry in the same run.

    python benchmarks/realtime.py --children 560000   # about 1,000,000 records

Set-up: demo children are generated, pseudonymised and ingested into an SQLite registry; to
keep set-up to minutes, the registry's CCIs come from the generator's ground truth (one CCI per
child) instead of a full linkage run, and the model is the default one shipped with the
package (its term-frequency tables are frozen from this registry). Then `cci serve` runs in its
own process and a separate load process sends `POST /v1/records` from a pool of connections:
half are known children under new record ids (linked), half are children the registry has
never seen (new). Latency is measured per request by the load process, end to end.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parents[1]))

from linkage.demo import write_delivery
from linkage.identity.cci import new_cci
from linkage.model.default import default_model
from linkage.pseudonymise import generate_key, pseudonymise_file
from linkage.pseudonymised_file import read_pseudonymised
from linkage.store import ingest_files, make_engine
from linkage.store.bulk import bulk_insert
from linkage.store.clients import create_client
from linkage.store.database import write_transaction
from linkage.store.model_versions import save_model
from linkage.store.models import stored_timestamp

#: Children never seen by the registry, generated once with it: each run submits its own
#: slice, so a run on a kept registry (--folder) meets none of an earlier run's submissions.
NEW_CHILDREN = 60_000


def _rows(path: Path, limit: int, skip: int = 0) -> list[dict[str, Any]]:
    """Rows `skip` to `skip + limit` of a pseudonymised file, sets as space-separated text."""
    rows: list[dict[str, Any]] = []
    seen = 0
    for batch in read_pseudonymised(path):
        if seen + batch.num_rows <= skip:
            seen += batch.num_rows
            continue
        for row in batch.slice(max(0, skip - seen)).to_pylist():
            for name, value in row.items():
                if isinstance(value, list):
                    row[name] = " ".join(str(t) for t in value)
            rows.append(row)
            if len(rows) >= limit:
                return rows
        seen += batch.num_rows
    return rows


def build(folder: Path, children: int) -> tuple[str, str, int]:
    """An SQLite registry with ground-truth CCIs; returns (url, API key, records)."""
    key = generate_key()
    url = f"sqlite:///{folder / 'registry.db'}"
    started = time.perf_counter()
    write_delivery(children, folder / "reg", seed=41)
    pseudonymise_file(key, folder / "reg" / "records.csv", folder / "reg" / "pseudo.csv")
    write_delivery(NEW_CHILDREN, folder / "new", seed=4242)
    pseudonymise_file(key, folder / "new" / "records.csv", folder / "new" / "pseudo.csv")
    print(f"generated and pseudonymised in {time.perf_counter() - started:.0f} s", flush=True)
    engine = make_engine(url)
    summary = ingest_files(engine, [folder / "reg" / "pseudo.csv"])
    print(f"ingested {summary.records_added:,} records in {summary.seconds:.0f} s", flush=True)
    with (folder / "reg" / "truth.csv").open(encoding="utf-8") as handle:
        child_of = {
            (r["source_system"], r["record_id"]): r["child_id"] for r in csv.DictReader(handle)
        }
    with write_transaction(engine) as connection:
        pks = connection.exec_driver_sql(
            "SELECT r.id, s.code, r.record_id FROM records r "
            "JOIN source_systems s ON s.id = r.source_system_id"
        ).all()
        cci_of_child: dict[str, str] = defaultdict(new_cci)
        # As the store writes times (on SQLite, text with no zone: the snapshot parses it).
        now = stored_timestamp(connection.dialect)
        assignments = [
            (pk, cci_of_child[child_of[(code, rid)]], "auto", now) for pk, code, rid in pks
        ]
        bulk_insert(
            connection,
            "identifiers",
            ("cci", "status", "nhs_anchored", "created_at", "changed_at"),
            [(c, "active", False, now, now) for c in cci_of_child.values()],
        )
        bulk_insert(
            connection, "assignments", ("record_pk", "cci", "method", "assigned_at"), assignments
        )
        save_model(connection, default_model(), {"source": "default model (benchmark)"})
        _, api_key = create_client(
            connection, "bench", ["education", "health", "social_care"], ["submit", "read"]
        )
    engine.dispose()
    return url, api_key, len(pks)


def submissions(folder: Path, count: int) -> list[dict[str, Any]]:
    """Known children under new record ids and children never seen, with record ids unique
    to this run. Each run on a kept registry (--folder) takes the next slice of both files:
    resubmitting an earlier run's records would grow every child's candidate list run by run
    and measure a registry of duplicates."""
    counter = folder / "runs"
    run = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(run + 1))
    half = count // 2
    known = _rows(folder / "reg" / "pseudo.csv", half, skip=run * half)
    fresh = _rows(folder / "new" / "pseudo.csv", count - len(known), skip=run * (count - half))
    if len(known) < half or len(fresh) < count - half:
        raise SystemExit(
            f"{folder} has no unused records left for run {run + 1}: use a new --folder"
        )
    tag = f"{int(time.time())}-{os.getpid()}"
    out = []
    for i, row in enumerate(known):
        out.append(dict(row, record_id=f"bench-{tag}-known-{i}"))
    for i, row in enumerate(fresh):
        out.append(dict(row, record_id=f"bench-{tag}-new-{i}"))
    # Interleave: known, new, known, ...
    mixed = [r for pair in zip(out[:half], out[half:], strict=False) for r in pair]
    return mixed + out[2 * min(half, len(out) - half) :]


def load(url: str, key: str, rows: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    """Send every row once from `concurrency` threads with keep-alive clients."""
    latencies: list[float] = []
    errors: list[str] = []
    decisions: dict[str, int] = defaultdict(int)
    lock = threading.Lock()
    position = iter(range(len(rows)))

    def worker() -> None:
        with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=30) as client:
            while True:
                with lock:
                    index = next(position, None)
                if index is None:
                    return
                started = time.perf_counter()
                try:
                    answer = client.post("/v1/records", json=rows[index])
                    ok = answer.status_code == 200
                    decision = answer.json().get("decision") if ok else None
                except httpx.HTTPError as error:
                    ok, decision, answer = False, None, error  # type: ignore[assignment]
                elapsed = time.perf_counter() - started
                with lock:
                    if ok:
                        latencies.append(elapsed)
                        decisions[str(decision)] += 1
                    else:
                        errors.append(str(getattr(answer, "text", answer))[:200])

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "requests": len(rows),
        "errors": len(errors),
        "first_errors": errors[:3],
        "seconds": round(seconds, 2),
        "req_per_s": round(len(latencies) / seconds, 1),
        "p50_ms": round(pct(0.50), 2),
        "p95_ms": round(pct(0.95), 2),
        "p99_ms": round(pct(0.99), 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
        "decisions": dict(decisions),
    }


WRK_SCRIPT = """
local bodies, sent, tid, nthreads, key = {}, 0, 0, 1, ""
local made = 0
function setup(thread) thread:set("tid", made); made = made + 1 end
function init(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
  nthreads, key = tonumber(args[2]), args[3]
end
function request()
  sent = sent + 1
  local i = (sent - 1) * nthreads + tid + 1
  if i > #bodies then i = #bodies end
  return wrk.format("POST", "/v1/records",
    {["Content-Type"] = "application/json", ["X-API-Key"] = key}, bodies[i])
end
"""


def load_wrk(
    url: str, key: str, rows: list[dict[str, Any]], concurrency: int, seconds: int, folder: Path
) -> dict[str, Any]:
    """The same load from wrk (C, one thread per core of its own): the Python load process
    itself took a core's worth of CPU from the 2-core machine. Each request sends another
    record; the run is sized so that bodies do not run out."""
    bodies = folder / "bodies.jsonl"
    bodies.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    script = folder / "submit.lua"
    script.write_text(WRK_SCRIPT, encoding="utf-8")
    threads = 1
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{concurrency}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
            "--",
            str(bodies),
            str(threads),
            key,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        value = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)", out, re.MULTILINE)
        assert value is not None, out
        number, unit = float(value.group(1)), value.group(2)
        return round(number / 1000 if unit == "us" else number * 1000 if unit == "s" else number, 2)

    total = re.search(r"(\d+) requests in", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    sent = int(total.group(1)) if total else 0
    if sent > len(rows):
        # Past the last body wrk sends it again, which answers "existing" without matching.
        raise SystemExit(f"wrk sent {sent} requests but had {len(rows)} records: raise --requests")
    return {
        "load": "wrk",
        "requests": sent,
        "bodies": len(rows),
        "errors": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else None,
        "seconds": seconds,
        "req_per_s": float(rate.group(1)) if rate else 0.0,
        "p50_ms": ms("50%"),
        "p90_ms": ms("90%"),
        "p99_ms": ms("99%"),
    }


def splink_baseline(url: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Splink's own per-record path on the same registry: predict_between(registry, record)."""
    import pyarrow as pa
    from splink import Linker

    from linkage.model.backend import duckdb_api, register_records
    from linkage.store.registry import load_snapshot
    from linkage.store.term_frequencies import load_frequencies

    engine = make_engine(url)
    with engine.connect() as connection:
        snapshot = load_snapshot(connection)
        frequencies = load_frequencies(connection, 1) or {}
    existing = snapshot.records.drop_columns(["source_kind"])
    api = duckdb_api()
    frame = register_records(api, existing, "existing")
    linker = Linker(frame, default_model(), log_level=logging.ERROR)
    for column, values in frequencies.items():
        table = pa.table({column: list(values), f"tf_{column}": list(values.values())})
        linker.table_management.register_term_frequency_lookup(api.register(table), column)
    times = []
    for i, row in enumerate(rows):
        one = pa.Table.from_pylist(
            [
                {c: row.get(c) for c in existing.column_names if c != "unique_id"}
                | {"unique_id": -1 - i}
            ],
            schema=existing.schema,
        )
        started = time.perf_counter()
        new = register_records(api, one, f"new_{i}")
        linker.inference.predict_between(frame, new).as_record_list()
        times.append(time.perf_counter() - started)
    engine.dispose()
    times.sort()
    return {"records": len(rows), "p50_ms": round(times[len(times) // 2] * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--children", type=int, default=560_000)
    parser.add_argument(
        "--requests",
        type=int,
        default=14_000,
        help="records sent (wrk: more than it can send in --seconds; it stops there)",
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--splink-records", type=int, default=20)
    parser.add_argument("--folder", type=Path, default=None, help="reuse/keep the registry here")
    parser.add_argument(
        "--load",
        choices=("wrk", "python"),
        default="wrk" if shutil.which("wrk") else "python",
        help="load generator: wrk (Debian package) or Python threads with httpx",
    )
    parser.add_argument("--seconds", type=int, default=20, help="wrk run length")
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="cci_realtime_"))
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / "registry.json"
    if marker.exists():
        url, api_key, records = json.loads(marker.read_text()).values()
    else:
        url, api_key, records = build(folder, args.children)
        marker.write_text(json.dumps({"url": url, "key": api_key, "records": records}))
    rows = submissions(folder, args.requests + 400)
    warm, measured = rows[:400], rows[400:]

    port = 18000 + os.getpid() % 1000
    env = dict(os.environ, CCI_DATABASE_URL=url)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli.main",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ],
        env=env,
        cwd=Path(__file__).parents[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=120).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "service did not start"
            time.sleep(0.5)
        load(base, api_key, warm, args.concurrency)  # every worker loads the model and its TF
        if args.load == "wrk":
            result = load_wrk(base, api_key, measured, args.concurrency, args.seconds, folder)
        else:
            result = load(base, api_key, measured, args.concurrency)
    finally:
        server.terminate()
        server.wait(timeout=30)
    baseline = splink_baseline(url, measured[: args.splink_records])
    print(
        json.dumps(
            {
                "registry_records": records,
                "workers": args.workers,
                "concurrency": args.concurrency,
                "service": result,
                "splink_predict_between": baseline,
                "p50_ratio_service_vs_splink": round(result["p50_ms"] / baseline["p50_ms"], 4),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
