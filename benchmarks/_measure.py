"""Shared helpers for benchmarks: wall time and peak memory of a step run in a fresh process."""

from __future__ import annotations

import multiprocessing
import resource
import time
import traceback
from collections.abc import Callable
from typing import Any


def peak_rss_mib() -> float:
    """This process's peak resident memory since it started, in MiB.

    Linux's VmHWM, not getrusage's ru_maxrss: a spawned process is forked from the benchmark
    before it executes Python, and ru_maxrss keeps the parent's resident size from that fork
    across the exec, so every step measured at least as much as the parent then held (both
    sides of benchmarks/link.py reported the same 3,427 MiB)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(function: Callable[..., Any], *args: Any) -> tuple[float, float, Any]:
    started = time.perf_counter()
    result = function(*args)
    seconds = time.perf_counter() - started
    return seconds, peak_rss_mib(), result


def _child(queue: Any, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        queue.put(("ok", function(*args)))
    except BaseException:  # report any failure instead of leaving the parent waiting
        queue.put(("error", traceback.format_exc()))


def spawned(function: Callable[..., Any], *args: Any) -> Any:
    """function(*args) in a fresh (spawned) process; its exception's traceback if it fails.

    Spawned, not forked: pyarrow and database drivers hold threads that do not survive fork.
    """
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(queue, function, args))
    process.start()
    status, payload = queue.get()
    process.join()
    if status != "ok":
        raise RuntimeError(f"benchmark step failed:\n{payload}")
    return payload


def measure(function: Callable[..., Any], *args: Any) -> tuple[float, float, Any]:
    """(seconds, peak RSS MiB, result) of function(*args) in a fresh (spawned) process."""
    return spawned(_timed, function, *args)  # type: ignore[no-any-return]
