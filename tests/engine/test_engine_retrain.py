"""Batch retraining from the decision log, and the engine learning online against baselines."""

import numpy as np
import pytest

from engine import DecisionEngine, read_log
from engine.retrain import retrain_from_log


def _serve(eng, records, rewards_from_truth=True):
    for info in records:
        d = eng.decide(info["context"])
        a = eng.action_names.index(d.action)
        eng.reward(d.decision_id, float(info["expected_reward"][a]))


def test_retraining_linucb_from_the_log_recovers_the_online_model(tmp_path, sim_records):
    """LinUCB's statistics are sums over outcomes, so replaying the log gives the online model
    back (up to the log's float32 feature storage)."""
    eng = DecisionEngine(tmp_path / "d.db", seed=0, learner="linucb")
    _serve(eng, sim_records[:800])
    eng.flush()
    retrained = retrain_from_log(
        tmp_path / "d.db",
        eng.action_names,
        eng.features.feature_names,
        "linucb",
        reward_divisor=eng.features.reward_divisor,
    )
    assert retrained.n_updates == eng.learner.n_updates == 800
    np.testing.assert_allclose(
        retrained.coefficients, eng.learner.coefficients, rtol=1e-3, atol=1e-4
    )
    X = np.stack([eng.features.transform(i["context"]) for i in sim_records[800:900]])
    eligible = np.ones((100, 7), dtype=bool)
    np.testing.assert_array_equal(
        retrained.greedy_batch(X, eligible), eng.learner.greedy_batch(X, eligible)
    )
    eng.close()


def test_engine_retrains_and_hot_swaps(tmp_path, sim_records):
    eng = DecisionEngine(tmp_path / "d.db", seed=0, learner="vw")
    _serve(eng, sim_records[:300])
    eng.flush()
    first = read_log(tmp_path / "d.db")["timestamp"].median()
    version = eng.retrain_from_log(learner="linucb", since=first)
    assert eng.model_version == version and version.startswith("linucb-retrained-")
    assert 100 < eng.learner.n_updates < 300  # only decisions since `first`
    assert not any(eng.decide(i["context"]).fallback for i in sim_records[300:350])
    eng.close()


def test_retraining_errors_are_clear(tmp_path, sim_records):
    with pytest.raises(ValueError, match="needs a decision log"):
        DecisionEngine(seed=0, learner="linucb").retrain_from_log()
    eng = DecisionEngine(tmp_path / "d.db", seed=0, learner="linucb")
    _serve(eng, sim_records[:20])
    eng.flush()
    with pytest.raises(ValueError, match="no feature 'loyalty_tier'"):
        retrain_from_log(tmp_path / "d.db", eng.action_names, ("loyalty_tier",), "linucb")
    eng.close()


def test_default_engine_beats_the_best_static_action_within_30k_carts():
    """Issue #3's bar, on the default shop, fixed seed: the default engine (tuned VW, online from
    `reward`) ends above the best single static action (ineligible -> nothing) and captures a clear
    share of the oracle's gain over doing nothing, on the last 20% of 30,000 carts (measured: 3.22
    vs 2.98 USD per cart, 60% of the oracle's gain; seed 1: 2.71 vs 2.50, 59%. Before VW's
    ``--noconstant``: 3.06 vs 2.78, 60%. Before purchase intent (issue 22): 3.31 vs
    2.95, 62%; seeds 1 and 2: 64% and 66%. Before the learner regressed on profit per cart value:
    3.01 vs 2.83, 51%)."""
    import gymnasium as gym

    import simulator

    eng = DecisionEngine(seed=0)
    env = gym.make("CartRecovery-v0")
    _, info = env.reset(seed=0)
    carts = 30_000
    value, none, static, oracle = [], [], [], []
    for _ in range(carts):
        d = eng.decide(info["context"])
        a = simulator.ACTION_NAMES.index(d.action)
        _, reward, _, _, _ = env.step(a)
        eng.reward(d.decision_id, reward)
        er, mask = info["expected_reward"], info["action_mask"] > 0
        value.append(er[a])
        none.append(er[0])
        static.append(np.where(mask, er, er[0]))
        oracle.append(er[mask].max())
        _, info = env.reset()
    last = slice(-carts // 5, None)
    v, n, o = np.mean(value[last]), np.mean(none[last]), np.mean(oracle[last])
    best_static = np.array(static[last]).mean(axis=0).max()
    assert v > best_static + 0.2
    assert (v - n) / (o - n) > 0.55
    assert eng.health()["fallbacks"] == 0
