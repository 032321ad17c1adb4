"""Tests of engine.risk: logistic abandonment-risk model on data with a known true logit."""

from __future__ import annotations

import math
import pickle

import context_factory as factory
import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from engine.profile import PROFILE_FEATURES, profile_matrix
from engine.risk import RiskModel


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney AUC, computed independently of scikit-learn."""
    ranks = rankdata(scores)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    return (ranks[labels == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


TRUE_COEF = np.array([1.2, -0.8, 0.0, 0.05, -1.5])
TRUE_INTERCEPT = 1.0
NAMES = ("a", "b", "noise", "scaled", "offset")


@pytest.fixture(scope="module")
def synthetic():
    rng = np.random.default_rng(11)
    n = 20_000
    X = rng.normal(size=(n, 5))
    X[:, 3] = rng.normal(100.0, 20.0, size=n)  # large scale, small coefficient
    X[:, 4] = rng.normal(0.0, 1.0, size=n) + 3.0  # offset column
    logit = X @ TRUE_COEF + TRUE_INTERCEPT
    y = (rng.random(n) < sigmoid(logit)).astype(int)
    return X, y, logit


def test_recovers_known_logit(synthetic):
    X, y, logit = synthetic
    train, test = slice(0, 15_000), slice(15_000, None)
    model = RiskModel(feature_names=NAMES, C=10.0).fit(X[train], y[train])
    p = model.predict_proba(X[test])
    oracle_auc = auc(logit[test], y[test])
    model_auc = auc(p, y[test])
    assert model_auc > 0.75
    assert model_auc == pytest.approx(oracle_auc, abs=0.01)
    nonzero = TRUE_COEF != 0
    assert np.array_equal(np.sign(model.coef_[nonzero]), np.sign(TRUE_COEF[nonzero]))
    # coefficients on the raw (unscaled, offset) features: standard errors are ~0.02-0.03 here
    np.testing.assert_allclose(model.coef_, TRUE_COEF, atol=0.1)
    assert abs(model.coef_[3] - 0.05) < 0.005
    assert model.intercept_ == pytest.approx(TRUE_INTERCEPT, abs=0.6)
    # calibration: mean predicted probability matches the observed base rate
    assert p.mean() == pytest.approx(y[test].mean(), abs=0.015)


def test_fast_path_matches_sklearn_pipeline(synthetic):
    X, y, _ = synthetic
    model = RiskModel(feature_names=NAMES, C=0.5).fit(X[:3000], y[:3000])
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=1000))
    reference.fit(X[:3000], y[:3000])
    expected = reference.predict_proba(X[3000:3200])[:, 1]
    np.testing.assert_allclose(model.predict_proba(X[3000:3200]), expected, rtol=1e-9)
    for row, want in zip(X[3000:3050], expected[:50], strict=True):
        assert model.predict_one(row.tolist()) == pytest.approx(want, rel=1e-9)
    np.testing.assert_allclose(
        model.decision_function(X[:10]), reference.decision_function(X[:10]), rtol=1e-9
    )


def test_extreme_logits_do_not_overflow(synthetic):
    X, y, _ = synthetic
    model = RiskModel(feature_names=NAMES).fit(X[:2000], y[:2000])
    huge = [1e6, -1e6, 0.0, 1e6, -1e6]
    tiny = [-1e6, 1e6, 0.0, -1e6, 1e6]
    assert model.predict_one(huge) == 1.0 and model.predict_one(tiny) == 0.0
    probs = model.predict_proba([huge, tiny])
    assert probs.tolist() == [1.0, 0.0]


def test_profile_features_with_known_effects():
    """Risk from real profile features; the true logit uses four independent ones."""
    world = factory.make_world(seed=9, n_users=2000, n_items=40)
    contexts = factory.make_contexts(world, seed=4)
    X = profile_matrix(contexts)
    col = {name: i for i, name in enumerate(PROFILE_FEATURES)}
    effects = {
        "cart_to_abandon_log": 1.0,
        "since_abandon_log": -1.5,
        "cart_value_log": -0.8,
        "device_mobile": 0.7,
    }
    logit = -1.0 + sum(
        beta * (X[:, col[name]] - X[:, col[name]].mean()) for name, beta in effects.items()
    )
    y = (np.random.default_rng(5).random(len(X)) < sigmoid(logit)).astype(int)
    model = RiskModel().fit(X[:1400], y[:1400])
    for name, beta in effects.items():
        assert np.sign(model.coef_[col[name]]) == np.sign(beta), name
    held_out = auc(model.predict_proba(X[1400:]), y[1400:])
    assert held_out > 0.7
    assert held_out > auc(logit[1400:], y[1400:]) - 0.05


def test_round_trips(synthetic):
    X, y, _ = synthetic
    model = RiskModel(feature_names=NAMES).fit(X[:2000], y[:2000])
    for clone in (RiskModel.from_dict(model.to_dict()), pickle.loads(pickle.dumps(model))):
        assert clone.feature_names == NAMES
        np.testing.assert_array_equal(clone.predict_proba(X[:50]), model.predict_proba(X[:50]))
        assert clone.predict_one(X[0].tolist()) == model.predict_one(X[0].tolist())


@pytest.mark.parametrize(
    ("X", "y", "message"),
    [
        (np.ones((4, 5)), [0, 1, 0, 2], r"y values == \[0, 1, 2\], must be 0/1"),
        (np.ones((4, 5)), [1, 1, 1, 1], "only class 1"),
        (np.ones((4, 3)), [0, 1, 0, 1], r"X shape == \(4, 3\), must be \(n, 5\)"),
        (np.full((4, 5), np.nan), [0, 1, 0, 1], "non-finite"),
        (np.ones((4, 5)), [0, 1, 0], r"y shape == \(3,\), must be \(4,\)"),
    ],
)
def test_bad_training_data(X, y, message):
    with pytest.raises(ValueError, match=message):
        RiskModel(feature_names=NAMES).fit(X, y)


def test_bad_parameters_and_unfitted():
    with pytest.raises(ValueError, match="C == 0"):
        RiskModel(C=0)
    with pytest.raises(ValueError, match="must not repeat"):
        RiskModel(feature_names=("a", "a"))
    with pytest.raises(ValueError, match="max_iter == 0"):
        RiskModel(max_iter=0)
    with pytest.raises(ValueError, match="not fitted"):
        RiskModel().predict_one([0.0] * len(PROFILE_FEATURES))
    with pytest.raises(ValueError, match="not fitted"):
        RiskModel().to_dict()
    assert math.isclose(RiskModel().C, 1.0)
