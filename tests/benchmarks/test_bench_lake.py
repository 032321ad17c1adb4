"""Data-lake OPE: stream/spark/memory throughput against a bare Parquet scan, and flat memory.

Sizes (``CARTWISE_BENCH_SCALE``): the throughput log is an engine-made log (LinUCB on the
simulator, 3,001 decisions over 3 days, exported with ``export_lake``) tiled to
``N_ROWS = 10,000 * scale`` rows with fresh ids (``large``: scale 100, 1M rows); the memory log
is written by :mod:`lake_generator` with ``N_RSS = 200,000 * scale`` rows (100,000 with the
default small scale; ``large``: 20M).
With ``--benchmark-disable`` (CI) every timing runs once and Spark is left out (its agreement is
tested in ``tests/engine/test_ope_lake.py``).

* ``stream_vs_scan`` = stream rows/s over a bare ``pyarrow.dataset`` scan of the same columns to a
  table (goal >= 0.5); for IPW+SNIPW (one pass) and with DR (two passes: the reward model on its
  default sample of the log, ``reward_model_rows``, then terms; ``_every_row``: the first pass
  over every row);
* ``spark_rows_per_s`` (local[2]) and ``spark_startup_s`` (session start plus a first tiny job,
  timed by the shared session fixture);
  ``memory_rows_per_s``; ``max_rel_diff`` between the three backends' tables;
* ``policy_alone_s``: the saved model's probabilities on every evaluated row, the features already
  in memory, on one thread; ``policy_ceiling_vs_scan`` = scan wall * cores / (scan CPU +
  policy_alone_s): the most any backend could reach against the scan if decoding cost it no more
  CPU than the scan (``scan_cpu_s``), its cores were kept busy all the time, and DR, the checks
  and the fold cost nothing. ``dense_product_s`` and ``product_ceiling_vs_scan``: the same with
  the policy reduced to the float64 matrix product its quadratic forms take
  (``(rows, d + 1) @ (d + 1, A * (d + 1))``);
* peak RSS (``VmHWM``) of a child process streaming the generated log (IPW, SNIPW, DR), at full
  size and on a quarter and a twentieth of its files: ``rss_full_mb``, ``rss_quarter_mb``,
  ``rss_twentieth_mb`` (flat: about the same peak) and the log's size on disk.

Timings are taken in alternating blocks (one call of each per block, best of 3).
"""

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from bench_utils import best_seconds, scale
from ope_streams import HIGH_WATER_MB, child_json

from engine.ope import evaluate_log
from engine.ope.lake.backends import one_blas_thread
from engine.ope.lake.batch import required_columns
from engine.ope.lake.source import open_source
from engine.ope.lake.target import target_spec

SCALE = scale(large=100)
N_ROWS = int(10_000 * SCALE)  # 1M rows at large
N_RSS = 100_000 if SCALE == 1 else int(200_000 * SCALE)  # 20M rows at large
ESTIMATORS = ("ipw", "snipw", "dr")
ROOT = Path(__file__).resolve().parents[2]
POLICY_BATCH = 65_536
DENSE_BLOCK = 512
"""Rows per product in ``_dense_product``: the block ``RidgeStats.scores`` uses, the fastest
measured here (blocks of 65,536 rows: about 1.2x slower)."""
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _tile(src: Path, out: Path, n_rows: int, rows_per_file: int = 100_000) -> Path:
    """Copies of the exported log's rows with fresh decision ids until ``n_rows`` rows, written per
    day in files of ``rows_per_file`` rows (row groups of 65,536)."""
    dataset = ds.dataset(
        src,
        format="parquet",
        partitioning=ds.partitioning(pa.schema([("day", pa.string())]), flavor="hive"),
    )
    days = {}
    for day in sorted(set(dataset.to_table(columns=["day"])["day"].to_pylist())):
        days[day] = dataset.to_table(filter=ds.field("day") == day).drop_columns(["day"])
    per_day = -(-n_rows // len(days))
    for d, (day, table) in enumerate(days.items()):
        want = min(per_day, n_rows - d * per_day)
        parts, have, copy = [], 0, 0
        while have < want:
            part = table.slice(0, want - have)
            ids = np.char.add(f"c{copy}-", np.asarray(part["decision_id"].to_pylist(), dtype=str))
            parts.append(part.set_column(0, "decision_id", pa.array(ids)))
            have += part.num_rows
            copy += 1
        whole = pa.concat_tables(parts)
        folder = out / f"day={day}"
        folder.mkdir(parents=True, exist_ok=True)
        for k, start in enumerate(range(0, whole.num_rows, rows_per_file)):
            pq.write_table(
                whole.slice(start, rows_per_file),
                folder / f"part-{k:06d}.parquet",
                row_group_size=65_536,
            )
    return out


@pytest.fixture(scope="module")
def big_lake(lake, tmp_path_factory):
    _, model_path, out = lake
    return _tile(out, tmp_path_factory.mktemp("big_lake"), N_ROWS), model_path


def _max_rel(a, b):
    cols = ["value", "ci_low", "ci_high", "se", "ess"]
    x, y = a[cols].to_numpy(float), b.loc[a.index, cols].to_numpy(float)
    ok = np.isfinite(x)
    return float(np.max(np.abs(x[ok] - y[ok]) / np.maximum(np.abs(x[ok]), 1e-300)))


def _alternating(fns: dict, reps: int) -> tuple[dict, dict]:
    """Best wall time and best CPU time (this process, every thread) of each function, timed in
    alternating blocks (one call of each per block)."""
    best = dict.fromkeys(fns, float("inf"))
    cpu = dict.fromkeys(fns, float("inf"))
    for _ in range(reps):
        for name, fn in fns.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
            cpu[name] = min(cpu[name], time.process_time() - start_cpu)
    return best, cpu


def _policy_alone(path: Path, model_path: Path, src) -> tuple[Callable[[], None], int]:
    """The saved model's probabilities on every row of the log, already in memory, on one thread
    (and the number of rows evaluated).

    The least work any backend does beyond reading: it must apply the target policy to each row.
    The rows go in batches of :data:`POLICY_BATCH`, as the stream's row groups (a whole-log
    matrix would run out of the caches and overstate that floor).
    """
    table = ds.dataset(path, format="parquet", partitioning="hive").to_table(
        columns=[f"f_{f}" for f in src.feature_names] + [f"p_{a}" for a in src.action_names],
        filter=~ds.field("fallback") & ds.field("reward").is_valid(),  # the rows evaluated
    )
    features = np.empty((table.num_rows, len(src.feature_names)), order="F")  # as a batch's
    for j, f in enumerate(src.feature_names):
        features[:, j] = table[f"f_{f}"].to_numpy(zero_copy_only=False)
    eligible = np.column_stack([table[f"p_{a}"].to_numpy() > 0.0 for a in src.action_names])
    policy = target_spec(str(model_path)).build()
    starts = range(0, features.shape[0], POLICY_BATCH)

    def run() -> None:
        with one_blas_thread():
            for i in starts:
                rows = slice(i, i + POLICY_BATCH)
                policy.feature_probabilities(features[rows], src.feature_names, eligible[rows])

    return run, features.shape[0]


def _dense_product(n_rows: int, n_dims: int, n_actions: int) -> Callable[[], None]:
    """The product the quadratic forms ``z^T C_a z`` of every row and action take in float64
    BLAS, alone: ``(rows, p) @ (p, A * p)`` in blocks of :data:`DENSE_BLOCK` rows, on one thread
    (random numbers: its time depends on the shapes only)."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(min(n_rows, DENSE_BLOCK), n_dims))
    stacked = rng.normal(size=(n_dims, n_actions * n_dims))
    out = np.empty((z.shape[0], stacked.shape[1]))
    sizes = [min(DENSE_BLOCK, n_rows - i) for i in range(0, n_rows, DENSE_BLOCK)]

    def run() -> None:
        with one_blas_thread():
            for size in sizes:
                np.matmul(z[:size], stacked, out=out[:size])

    return run


def test_bench_lake_backends(benchmark, big_lake, request):
    path, model_path = big_lake
    src = open_source(path)
    by = ("model_version", "day")
    columns = required_columns(src.action_names, src.feature_names, by)
    reps = 1 if benchmark.disabled else 3

    def run(backend, estimators=ESTIMATORS, policy=str(model_path), **kw):
        return evaluate_log(
            path, policy=policy, estimators=estimators, backend=backend, by=by, **kw
        )

    stream = benchmark.pedantic(lambda: run("stream"), rounds=1, iterations=1)
    memory = run("memory")
    policy_alone, n_evaluated = _policy_alone(path, model_path, src)
    t, cpu = _alternating(
        {
            "scan": lambda: ds.dataset(path, format="parquet", partitioning="hive").to_table(
                columns=columns
            ),
            "stream_dr": lambda: run("stream"),
            "stream_dr_every_row": lambda: run("stream", reward_rows=None),
            "stream_ipw": lambda: run("stream", ("ipw", "snipw")),
            "stream_rule": lambda: run("stream", ("ipw", "snipw"), "rule"),
            "stream_rule_dr": lambda: run("stream", policy="rule"),
            "memory": lambda: run("memory"),
            "policy_alone": policy_alone,
            "dense_product": _dense_product(
                n_evaluated,
                len(src.feature_names) + 1,
                len(src.action_names),
            ),
        },
        reps,
    )
    if benchmark.disabled:  # CI: Spark's agreement is tested in tests/engine/test_ope_lake.py
        assert _max_rel(memory, stream) < 1e-9
        return
    spark = request.getfixturevalue("spark")
    start = time.perf_counter()
    on_spark = run("spark", spark=spark)
    t_spark_first = time.perf_counter() - start
    t_spark = best_seconds(lambda: run("spark", spark=spark), reps)
    n = N_ROWS
    info = benchmark.extra_info
    info.update(
        rows=n,
        scan_rows_per_s=round(n / t["scan"]),
        stream_rows_per_s=round(n / t["stream_dr"]),
        stream_ipw_rows_per_s=round(n / t["stream_ipw"]),
        stream_vs_scan_dr=round(t["scan"] / t["stream_dr"], 3),
        stream_vs_scan_dr_every_row=round(t["scan"] / t["stream_dr_every_row"], 3),
        reward_model_rows=stream.attrs["reward_model_rows"],
        stream_vs_scan_ipw=round(t["scan"] / t["stream_ipw"], 3),
        stream_vs_scan_rule_ipw=round(t["scan"] / t["stream_rule"], 3),
        stream_vs_scan_rule_dr=round(t["scan"] / t["stream_rule_dr"], 3),
        memory_rows_per_s=round(n / t["memory"]),
        scan_cpu_s=round(cpu["scan"], 3),
        policy_alone_s=round(t["policy_alone"], 3),
        policy_ceiling_vs_scan=round(t["scan"] * CORES / (cpu["scan"] + t["policy_alone"]), 3),
        dense_product_s=round(t["dense_product"], 3),
        product_ceiling_vs_scan=round(t["scan"] * CORES / (cpu["scan"] + t["dense_product"]), 3),
        spark_rows_per_s=round(n / t_spark),
        spark_first_call_s=round(t_spark_first, 2),
        spark_startup_s=round(getattr(spark, "cartwise_startup_s", float("nan")), 2),
        max_rel_diff_stream=_max_rel(memory, stream),
        max_rel_diff_spark=_max_rel(memory, on_spark),
    )
    assert _max_rel(memory, stream) < 1e-9 and _max_rel(memory, on_spark) < 1e-9


RSS_CHILD = (
    """
import json, sys, time
from engine.ope import evaluate_log
"""
    + HIGH_WATER_MB
    + """
t = time.perf_counter()
estimators = ("ipw", "snipw", "dr")
table = evaluate_log(sys.argv[1], policy="rule", estimators=estimators, backend="stream")
print(json.dumps({"rss_mb": high_water_mb(), "seconds": time.perf_counter() - t,
                  "n": int(table.loc["ipw", "n"])}))
"""
)
FILES_PER_DAY, DAYS = 8, 10


def _stream_rss(path: Path) -> dict:
    return child_json(RSS_CHILD, path, ROOT)


def _subset(full: Path, out: Path, days: int, files: int) -> Path:
    """The first ``files`` files of the first ``days`` days of ``full``, hard-linked."""
    for folder in sorted(full.iterdir())[:days]:
        (out / folder.name).mkdir(parents=True)
        for file in sorted(folder.iterdir())[:files]:
            os.link(file, out / folder.name / file.name)
    return out


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc")
def test_bench_stream_memory_is_flat(benchmark, tmp_path):
    """Peak RSS of streaming N_RSS rows, a quarter and a twentieth of them (same files)."""
    from lake_generator import write_lake

    full = write_lake(
        tmp_path / "full", N_RSS, rows_per_file=N_RSS // (DAYS * FILES_PER_DAY), days=DAYS
    )
    quarter = _subset(full, tmp_path / "quarter", DAYS, FILES_PER_DAY // 4)
    twentieth = _subset(full, tmp_path / "twentieth", 4, 1)  # 4 of the 80 files
    big = benchmark.pedantic(lambda: _stream_rss(full), rounds=1, iterations=1)
    mid, small = _stream_rss(quarter), _stream_rss(twentieth)
    size_mb = sum(f.stat().st_size for f in full.rglob("*.parquet")) / 2**20
    benchmark.extra_info.update(
        rows=big["n"],
        log_mb_on_disk=round(size_mb),
        rss_full_mb=round(big["rss_mb"]),
        rss_quarter_mb=round(mid["rss_mb"]),
        rss_twentieth_mb=round(small["rss_mb"]),
        rss_growth=round(big["rss_mb"] / small["rss_mb"], 3),
        stream_rows_per_s=round(big["n"] / big["seconds"]),
    )
    assert (small["n"], mid["n"], big["n"]) == (N_RSS // 20, N_RSS // 4, N_RSS)
    assert big["rss_mb"] < 1024
    assert big["rss_mb"] < small["rss_mb"] + 64  # flat: 20x the rows, about the same peak
