"""Shared fixtures for engine tests: realistic context records from the simulator."""

import gymnasium as gym
import numpy as np
import pytest

import simulator  # noqa: F401  (registers CartRecovery-v0)


@pytest.fixture(scope="session")
def sim_records():
    """2,000 (context, info) pairs from CartRecovery-v0 with a random sending policy."""
    env = gym.make("CartRecovery-v0", n_shoppers=2000, n_items=200)
    _, info = env.reset(seed=123)
    rng = np.random.default_rng(0)
    out = []
    for _ in range(2000):
        out.append(info)
        env.step(int(rng.integers(0, 7)))
        _, info = env.reset()
    return out


@pytest.fixture(scope="session")
def sim_contexts(sim_records):
    return [info["context"] for info in sim_records]


@pytest.fixture(scope="session")
def spark():
    """One local[2] SparkSession for the whole test run (skipped without the spark extra)."""
    pytest.importorskip("pyspark")
    from engine.ope.lake.backends import spark_session

    session = spark_session("local[2]", app_name="cartwise-tests")
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
