"""Retraining from a Parquet lake or a store in bounded memory gives today's in-memory model."""

import numpy as np
import pytest

from engine import DecisionEngine
from engine.decision_log import read_log
from engine.retrain import retrain_from_log

SINCE = 1_767_225_600.0 + 3_600.0


def _retrain(source, engine, learner, **kw):
    return retrain_from_log(
        source,
        engine.action_names,
        engine.features.feature_names,
        learner,
        reward_divisor=engine.features.reward_divisor,
        since=SINCE,
        **kw,
    )


@pytest.mark.parametrize("learner", ["linucb", "lints"])
def test_ridge_learners_stream_to_the_in_memory_model(lake, learner):
    log_path, model_path, out = lake
    engine = DecisionEngine.load(model_path)
    reference = _retrain(read_log(log_path), engine, learner)
    for source in (out, log_path):
        model = _retrain(source, engine, learner, backend="stream", batch_rows=333)
        assert model.n_updates == reference.n_updates > 2_500
        np.testing.assert_allclose(
            model.coefficients, reference.coefficients, rtol=1e-9, atol=1e-12
        )
        if learner == "lints":  # its probabilities are Monte Carlo draws: the posterior is compared
            np.testing.assert_allclose(
                model.score_distribution(X := np.eye(len(engine.features.feature_names)))[1],
                reference.score_distribution(X)[1],
                rtol=1e-9,
            )
            continue
        X = np.random.default_rng(1).normal(size=(200, len(engine.features.feature_names)))
        eligible = np.ones((200, len(engine.action_names)), dtype=bool)
        np.testing.assert_allclose(
            model.probabilities_batch(X, eligible),
            reference.probabilities_batch(X, eligible),
            rtol=1e-9,
            atol=1e-12,
        )


def test_vw_streams_in_timestamp_order_to_the_same_bytes(lake):
    log_path, model_path, out = lake
    engine = DecisionEngine.load(model_path)
    reference = _retrain(read_log(log_path), engine, "vw")
    for source in (out, log_path):
        model = _retrain(source, engine, "vw", backend="stream", batch_rows=400)
        assert model.n_updates == reference.n_updates
        assert model.to_bytes() == reference.to_bytes()


def test_linucb_on_spark_is_the_same_model(lake, spark):
    log_path, model_path, out = lake
    engine = DecisionEngine.load(model_path)
    reference = _retrain(read_log(log_path), engine, "linucb")
    model = _retrain(out, engine, "linucb", backend="spark", spark=spark)
    assert model.n_updates == reference.n_updates
    np.testing.assert_allclose(model.coefficients, reference.coefficients, rtol=1e-9, atol=1e-12)


def test_bad_backend_and_sequential_learner_on_spark_are_refused(lake):
    _log_path, model_path, out = lake
    engine = DecisionEngine.load(model_path)
    with pytest.raises(ValueError, match="backend == 'gpu'"):
        _retrain(out, engine, "linucb", backend="gpu")
    with pytest.raises(ValueError, match="learns sequentially"):
        _retrain(out, engine, "vw", backend="spark")
    with pytest.raises(ValueError, match="has no feature 'nope'"):
        retrain_from_log(out, engine.action_names, ("nope",), "linucb", backend="stream")
