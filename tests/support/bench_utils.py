"""Helpers for benchmarks that report ratios against a reference measured in the same run."""

from __future__ import annotations

import os
import time
from typing import Callable

LARGE = os.environ.get("CARTWISE_BENCH_SCALE", "small") == "large"


def per_call_seconds(fn: Callable[[], object], calls: int, repeats: int = 5) -> float:
    """Best-of-``repeats`` mean time of ``fn`` over ``calls`` calls (robust to noisy neighbours)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def record_ratio(benchmark, name: str, subject_seconds: float, reference_seconds: float) -> float:
    """Store subject/reference in the benchmark's extra_info and return it."""
    ratio = subject_seconds / reference_seconds
    benchmark.extra_info[name] = round(ratio, 3)
    benchmark.extra_info[name + "_subject_us"] = round(subject_seconds * 1e6, 3)
    benchmark.extra_info[name + "_reference_us"] = round(reference_seconds * 1e6, 3)
    return ratio
