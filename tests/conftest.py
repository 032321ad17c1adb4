"""Fixtures shared across test folders: one SparkSession per test run, and an engine-made
decision log with its Parquet export (the data-lake tests and benchmarks)."""

import pytest


@pytest.fixture(scope="session")
def spark():
    """One local[2] SparkSession for the whole test run (skipped without the spark extra)."""
    pytest.importorskip("pyspark")
    import time

    from engine.ope.lake.backends import spark_session

    start = time.perf_counter()
    session = spark_session("local[2]", app_name="cartwise-tests")
    session.range(10).count()  # the first job pays the JVM's and the workers' start-up
    session.cartwise_startup_s = time.perf_counter() - start  # reported by the lake benchmark
    yield session
    session.stop()


@pytest.fixture(scope="session")
def lake(tmp_path_factory):
    """An engine-made log (3,001 decisions over 3 days, 2 model versions), its final model and
    its Parquet export (hive folders by day, several files per day)."""
    from lake_log import make_engine_log

    from engine.decision_log.lake import export_lake

    root = tmp_path_factory.mktemp("lake")
    log_path, model_path = make_engine_log(root, n_batches=6, batch=500)
    out = export_lake(log_path, root / "logs", partition="day", chunk_rows=700)
    return log_path, model_path, out
