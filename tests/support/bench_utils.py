"""Helpers for benchmarks that report ratios against a reference measured in the same run."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

SCALE_NAME = os.environ.get("CARTWISE_BENCH_SCALE", "small")
LARGE = SCALE_NAME == "large"


def scale(large: float) -> float:
    """Size multiplier from ``CARTWISE_BENCH_SCALE``: 1 for ``small`` (the default, what CI runs
    with ``--benchmark-disable``), ``large`` for ``large`` (``make bench``), or the number given."""
    if SCALE_NAME == "small":
        return 1.0
    if SCALE_NAME == "large":
        return float(large)
    try:
        value = float(SCALE_NAME)
    except ValueError:
        raise ValueError(
            f"CARTWISE_BENCH_SCALE == {SCALE_NAME!r}, must be 'small', 'large' or a number"
        ) from None
    if value < 1:
        raise ValueError(f"CARTWISE_BENCH_SCALE == {SCALE_NAME!r}, must be >= 1")
    return value


def per_call_seconds(fn: Callable[[], object], calls: int, repeats: int = 5) -> float:
    """Best-of-``repeats`` mean time of ``fn`` over ``calls`` calls (robust to noisy neighbours)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def best_seconds(fn: Callable[[], object], repeats: int = 5) -> float:
    """Best-of-``repeats`` time of one call of ``fn``."""
    return per_call_seconds(fn, 1, repeats)


def record_ratio(benchmark, name: str, subject_seconds: float, reference_seconds: float) -> float:
    """Store subject/reference in the benchmark's extra_info and return it."""
    ratio = subject_seconds / reference_seconds
    benchmark.extra_info[name] = round(ratio, 3)
    benchmark.extra_info[name + "_subject_us"] = round(subject_seconds * 1e6, 3)
    benchmark.extra_info[name + "_reference_us"] = round(reference_seconds * 1e6, 3)
    return ratio
