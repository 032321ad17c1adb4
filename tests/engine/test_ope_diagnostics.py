"""engine.ope.diagnostics: importance-weight diagnostics and their warnings."""

import logging

import numpy as np
import pandas as pd
import pytest

from engine.ope import diagnostics as diag
from engine.ope.diagnostics import weight_diagnostics
from engine.ope.logs import evaluate_decision_log, read_log_dataset

ACTIONS = ("none", "coupon_5", "coupon_20")


def logged_frame(logging_probs: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """A read_log-like frame whose actions are drawn from ``logging_probs`` (rows x ACTIONS)."""
    rng = np.random.default_rng(seed)
    n = logging_probs.shape[0]
    cdf = logging_probs.cumsum(axis=1)
    actions = np.minimum((rng.random(n)[:, None] >= cdf).sum(axis=1), len(ACTIONS) - 1)
    frame = {
        "decision_id": [f"d{i}" for i in range(n)],
        "action": [ACTIONS[a] for a in actions],
        "probability": logging_probs[np.arange(n), actions],
        "reward": rng.normal(1.0, 1.0, n),
        "fallback": np.zeros(n, dtype=bool),
        "f_x": rng.normal(size=n),
    }
    frame.update({f"p_{a}": logging_probs[:, j] for j, a in enumerate(ACTIONS)})
    return pd.DataFrame(frame)


def always(action: str):
    j = ACTIONS.index(action)
    return lambda X, names, eligible: np.eye(len(ACTIONS))[np.full(X.shape[0], j)]


def test_target_needing_an_action_the_logger_never_tried_is_flagged(caplog) -> None:
    # coupon_20 is eligible everywhere but logged with probability 0.001: 2,000 rows hold
    # about 2 of them. Always sending coupon_20 cannot be valued from this log.
    n = 2_000
    probs = np.tile([0.699, 0.3, 0.001], (n, 1))
    data = read_log_dataset(logged_frame(probs))
    assert np.count_nonzero(data.actions == 2) < diag.MIN_LOGGED
    with caplog.at_level(logging.WARNING, logger="engine.ope.diagnostics"):
        table = evaluate_decision_log(data, always("coupon_20"), estimators=["ipw", "dr"], seed=0)
    d = table.attrs["diagnostics"]
    assert d.unlogged == ("coupon_20",)
    assert d.rare_share == 1.0  # every row needs an action logged with probability < 0.01
    assert not d.ok
    assert any("coupon_20" in w and "never took" in w for w in d.warnings)
    assert any("coupon_20" in r.getMessage() for r in caplog.records)


def test_well_covered_target_has_no_warning() -> None:
    n = 2_000
    probs = np.tile([0.4, 0.3, 0.3], (n, 1))
    table = evaluate_decision_log(
        logged_frame(probs, seed=1), always("coupon_5"), estimators=["ipw"]
    )
    d = table.attrs["diagnostics"]
    assert d.ok and d.warnings == ()
    assert d.unlogged == () and d.rare_share == 0.0
    # ESS of a static target under a constant 0.3 propensity: the rows that took it.
    data = read_log_dataset(logged_frame(probs, seed=1))
    assert d.ess == pytest.approx(np.count_nonzero(data.actions == 1))
    assert d.max_weight == pytest.approx(1 / 0.3)


def test_weight_numbers_match_a_direct_computation() -> None:
    rng = np.random.default_rng(3)
    n, k = 500, 3
    mu = rng.dirichlet(np.ones(k), size=n) * 0.9 + 0.1 / k
    pi = rng.dirichlet(np.ones(k), size=n)
    a = np.array([rng.choice(k, p=m) for m in mu])
    p = mu[np.arange(n), a]
    d = weight_diagnostics(a, p, pi, logging_probs=mu)
    w = pi[np.arange(n), a] / p
    assert d.ess == pytest.approx(w.sum() ** 2 / (w @ w))
    assert d.max_weight == pytest.approx(w.max())
    assert d.max_weight_share == pytest.approx(w.max() / w.sum())
    assert d.rare_share == pytest.approx(float(((pi >= 0.01) & (mu < 0.01)).any(axis=1).mean()))
    assert np.isnan(weight_diagnostics(a, p, pi).rare_share)  # no full logging distribution


def test_one_dominant_weight_is_flagged() -> None:
    n = 1_000
    a = np.zeros(n, dtype=int)
    a[0] = 1
    p = np.full(n, 0.9)
    p[0] = 0.002  # weight 500 on one row vs 0.1 / 0.9 on the others
    pi = np.tile([0.1, 0.9], (n, 1))
    d = weight_diagnostics(a, p, pi)
    assert d.max_weight_share > diag.MAX_WEIGHT_SHARE
    assert any("One row carries" in w for w in d.warnings)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"actions": [0, 1], "logged_probs": [0.5]}, "must be equal"),
        ({"actions": [0, 3], "logged_probs": [0.5, 0.5]}, "must be integers in"),
        ({"actions": [0, 1], "logged_probs": [0.5, 0.0]}, r"must be in \(0, 1\]"),
    ],
)
def test_bad_input_names_the_field(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        weight_diagnostics(target_probs=[[0.5, 0.5], [0.5, 0.5]], **kwargs)
