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
* peak RSS (``VmHWM``) of a child process streaming the generated log (IPW, SNIPW, DR), at full
  size and on a quarter and a twentieth of its files: ``rss_full_mb``, ``rss_quarter_mb``,
  ``rss_twentieth_mb`` (flat: about the same peak) and the log's size on disk.

Timings are taken in alternating blocks (one call of each per block, best of 3).
"""

import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from bench_utils import best_seconds, scale
from ope_streams import HIGH_WATER_MB, child_json

from engine.ope import evaluate_log
from engine.ope.lake.batch import required_columns
from engine.ope.lake.source import open_source

SCALE = scale(large=100)
N_ROWS = int(10_000 * SCALE)  # 1M rows at large
N_RSS = 100_000 if SCALE == 1 else int(200_000 * SCALE)  # 20M rows at large
ESTIMATORS = ("ipw", "snipw", "dr")
ROOT = Path(__file__).resolve().parents[2]


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


def _alternating(fns: dict, reps: int) -> dict:
    """Best time of each function, timed in alternating blocks (one call of each per block)."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(reps):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


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
    t = _alternating(
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
