"""The three ways to fold a lake into statistics: in memory, streamed, or on Spark.

Each backend applies a per-batch function (``fn(batch, plan)``, returning something with ``+``)
to its batches and merges the results: ``memory`` reads the whole source as one batch,
``stream`` hands the Parquet row groups (:meth:`~engine.ope.lake.source.Source.pieces`) to a
few worker threads and merges their results in row-group order (memory bounded by a few batches
per worker; a store source is read by one thread with a bounded read-ahead),
``spark`` runs the function in ``mapInArrow`` on every partition with the plan broadcast, and the
driver merges the pickled per-partition results with the same ``+``.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import os
import pickle
import sys
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from engine.ope.lake.source import BATCH_ROWS, Source
from engine.ope.lake.target import set_worker_slot

logger = logging.getLogger(__name__)

BACKENDS = ("memory", "stream", "spark")
MAX_WORKERS = 4
"""Most worker threads the stream backend starts by default (each holds a batch or two)."""


@contextlib.contextmanager
def one_blas_thread():
    """Limit BLAS to one thread while the backend's own threads or processes fold batches.

    The fold already keeps the cores busy (worker threads here, one Python worker per Spark
    task); a multi-threaded BLAS inside each of them only oversubscribes the cores (measured
    on 2 cores: the LinUCB + DR evaluation took 1.6x the wall time with OpenBLAS's default
    threads). The limit is process-wide (``threadpoolctl``) and restored on exit.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _merge(total: Any, part: Any) -> Any:
    if part is None:
        return total
    return part if total is None else total + part


def run_memory(source: Source, columns: Sequence[str], fn: Callable, plan: Any, **_: Any) -> Any:
    """``fn`` on the whole source read into one Arrow table."""
    table = source.table(columns)
    with one_blas_thread():  # the fold's products are small per call: threads only cost
        return fn(table, plan)


def default_workers() -> int:
    """Worker threads of the stream backend: the machine's cores, at most :data:`MAX_WORKERS`."""
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def run_stream(
    source: Source,
    columns: Sequence[str],
    fn: Callable,
    plan: Any,
    *,
    batch_rows: int = BATCH_ROWS,
    progress: Any = None,
    workers: int | None = None,
    **_: Any,
) -> Any:
    """``fn`` batch by batch; only the running merge and the batches in work are held.

    A Parquet source is read and folded by ``workers`` threads, one row group per task (Parquet
    decoding and numpy release the GIL); the results are merged in row-group order, so the
    answer is the same bit for bit whatever the number of workers. At most ``2 * workers``
    row groups are in flight, ``workers`` of them decoded at once.
    """
    workers = default_workers() if workers is None else workers
    with one_blas_thread():
        if source.kind != "parquet" or workers <= 1:
            return _run_sequential(source, columns, fn, plan, batch_rows, progress)
        return _run_pool(source, list(columns), fn, plan, batch_rows, progress, workers)


def _run_pool(
    source: Source,
    cols: list[str],
    fn: Callable,
    plan: Any,
    batch_rows: int,
    progress: Any,
    workers: int,
) -> Any:
    """The Parquet row groups folded by ``workers`` threads, merged in row-group order."""

    def work(piece) -> tuple[Any, int]:
        total, rows = None, 0
        for batch in piece.batches(cols, batch_rows):
            total = _merge(total, fn(batch, plan))
            rows += batch.num_rows
            del batch
        return total, rows

    slots = itertools.count()
    total = None
    pending: collections.deque = collections.deque()
    pool = ThreadPoolExecutor(
        workers,
        thread_name_prefix="cartwise-lake-worker",
        initializer=lambda: set_worker_slot(next(slots)),
    )
    try:
        for piece in source.pieces():
            pending.append(pool.submit(work, piece))
            while len(pending) > 2 * workers or (pending and pending[0].done()):
                total = _merge_result(total, pending.popleft().result(), progress)
        while pending:
            total = _merge_result(total, pending.popleft().result(), progress)
    finally:
        for future in pending:  # an error: drop the work not started yet
            future.cancel()
        pool.shutdown(wait=True)
    return total


def _merge_result(total: Any, result: tuple[Any, int], progress: Any) -> Any:
    if progress is not None:
        progress.update(result[1])
    return _merge(total, result[0])


def _run_sequential(
    source: Source, columns: Sequence[str], fn: Callable, plan: Any, batch_rows: int, progress: Any
) -> Any:
    total = None
    with contextlib.closing(source.batches(columns, batch_rows)) as batches:
        for batch in batches:  # closed on an error too: the reader thread stops at once
            part = fn(batch, plan)
            if progress is not None:
                progress.update(batch.num_rows)
            total = _merge(total, part)
            del batch, part
    return total


def spark_session(master: str = "local[2]", app_name: str = "cartwise"):
    """A SparkSession (the active one if any, else a new one on ``master``) with Arrow enabled."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:  # pragma: no cover - the extra is installed in CI
        raise ValueError(
            "backend == 'spark' needs PySpark: pip install 'cartwise[spark]'"
        ) from None
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    # local workers must run this interpreter (its packages), not the first python3 on PATH
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.pyspark.python", os.environ["PYSPARK_PYTHON"])
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )


def _partition_fn(fn: Callable, plan_bytes: Any) -> Callable:
    def run(batches):
        import pyarrow as pa

        plan = pickle.loads(plan_bytes.value)
        total = None
        with one_blas_thread():  # local[k] runs k Python workers side by side
            for batch in batches:
                total = _merge(total, fn(batch, plan))
        yield pa.RecordBatch.from_pydict(
            {"stats": [pickle.dumps(total)]}, schema=pa.schema([("stats", pa.binary())])
        )

    return run


def run_spark(
    source: Source,
    columns: Sequence[str],
    fn: Callable,
    plan: Any,
    *,
    spark: Any = None,
    master: str = "local[2]",
    progress: Any = None,
    **_: Any,
) -> Any:
    """``fn`` on every Spark partition (``mapInArrow``); the driver merges in partition order."""
    if source.kind != "parquet":
        raise ValueError(
            f"backend == 'spark' reads Parquet; export {source.location!r} first "
            "(cartwise export --log ... --to ...)"
        )
    from pyspark.sql import functions as F

    session = spark or spark_session(master)
    reader = session.read
    if source.hive:
        reader = reader.option("basePath", source.location)
    df = reader.parquet(source.location)
    if "day" in df.columns:
        df = df.withColumn(
            "day", F.col("day").cast("string")
        )  # hive values may be inferred as dates
    df = df.select(*columns)
    sc = session.sparkContext
    plan_bytes = sc.broadcast(pickle.dumps(plan))
    try:
        out = df.mapInArrow(_partition_fn(fn, plan_bytes), "stats binary")
        rows = _collect_with_progress(sc, out, progress)
    finally:
        plan_bytes.unpersist()
    total = None
    for row in rows:  # partition order: the same merge order on every run
        total = _merge(total, pickle.loads(row["stats"]))
    return total


def _collect_with_progress(sc: Any, df: Any, progress: Any) -> list:
    """``df.collect()``; with a progress bar, polls Spark's status tracker for finished tasks."""
    if progress is None:
        return df.collect()
    group = f"cartwise-{uuid.uuid4().hex}"
    result: dict[str, Any] = {}

    def collect() -> None:
        try:
            sc.setJobGroup(group, "cartwise evaluate")  # a thread-local property: set it here
            result["rows"] = df.collect()
        except BaseException as exc:  # re-raised in the caller's thread
            result["error"] = exc

    worker = threading.Thread(target=collect, daemon=True)
    worker.start()
    tracker, done = sc.statusTracker(), 0
    while True:
        worker.join(0.2)
        alive = worker.is_alive()
        finished, total = 0, 0
        for job in tracker.getJobIdsForGroup(group):
            info = tracker.getJobInfo(job)
            for stage in info.stageIds if info else ():
                s = tracker.getStageInfo(stage)
                if s is not None:
                    finished, total = finished + s.numCompletedTasks, total + s.numTasks
        if total and progress.total != total:
            progress.total = total
        if finished > done:
            progress.update(finished - done)
            done = finished
        if not alive:
            break
    if "error" in result:
        raise result["error"]
    return result["rows"]


RUNNERS = {"memory": run_memory, "stream": run_stream, "spark": run_spark}
