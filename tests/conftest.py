"""Suite-wide fixtures and hooks.

- Tests marked ``postgres`` need a real server: outside CI they are skipped, with the reason,
  when the server cannot be reached (``make test`` lists them under "short test summary info");
  with ``CI=true`` they fail instead.
- One SparkSession per test run, and an engine-made decision log with its Parquet export (the
  data-lake tests and benchmarks).
- After collection, everything alive (imported modules, collected tests) is frozen out of the
  cyclic garbage collector: it lives for the whole run anyway, and each full collection a test
  triggers no longer walks it (about a fifth less collector time in the statistical tests).
"""

import gc

import pytest
from pg_support import create_schema, drop_schema, in_ci, schema_url, unreachable_reason


def pytest_collection_finish(session):
    gc.collect()  # what is frozen is all reachable: nothing collectable is kept
    gc.freeze()


def pytest_runtest_setup(item):
    if item.get_closest_marker("postgres") is None:
        return
    reason = unreachable_reason()
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"{reason}; CI must run the PostgreSQL tests", pytrace=False)
    pytest.skip(f"{reason}: PostgreSQL tests skipped (they run in CI)")


@pytest.fixture
def pg_url():
    """URL of a fresh PostgreSQL schema, dropped after the test."""
    name = create_schema()
    try:
        yield schema_url(name)
    finally:
        drop_schema(name)


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
